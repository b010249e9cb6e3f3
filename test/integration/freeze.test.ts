/**
 * The kill switch (issue 15 §1), against the dev server and the simulator. The oracle is what an
 * outsider sees: the simulator's request log (no mutating request executed in a frozen environment
 * after the freeze answered), its mutation log (each plan's change made once, after the lift), the
 * plans' views and the audit chain.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/record.js';
import { runCli } from '../../src/cli/main.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { executedMutations } from './support/mutations.js';
import { until } from './support/until.js';



let t: TestService;
let auditFile: string;
beforeAll(async () => {
  auditFile = join(mkdtempSync(join(tmpdir(), 'pa-freeze-')), 'audit.jsonl');
  t = await startTestService((config) => {
    config.audit.file = auditFile;
  });
});
afterAll(async () => {
  await t?.stop();
});

const plan = (body: object, token: string = TOKENS.agent) => t.call('POST', '/v1/actions/plan', { token, body });
const apply = (p: { planId: string; requestHash: string }, token: string = TOKENS.agent) =>
  t.call('POST', '/v1/actions/apply', { token, body: { planId: p.planId, requestHash: p.requestHash } });
const freeze = (environment: string, reason: string, token: string = TOKENS.admin) => t.call('POST', '/v1/freezes', { token, body: { environment, reason } });
const lift = (id: string, token: string = TOKENS.admin) => t.call('DELETE', `/v1/freezes/${id}`, { token });
const view = async (planId: string) => (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;

describe('who may freeze, and what bad input gets', () => {
  it('only an admin of the environment freezes and lifts; readers list; bad input is a problem and changes nothing', async () => {
    for (const token of [TOKENS.agent, TOKENS.approver1, TOKENS.ops]) {
      const r = await freeze('lab', 'not mine to freeze', token);
      expect(r.status).toBe(403);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    const bad = await freeze('lab', '');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'lab', reason: 'x'.repeat(10), extra: 1 } })).status).toBe(400);
    expect((await freeze('nowhere', 'no such environment')).status).toBe(422);
    expect((await lift('frz_nothex')).status).toBe(400);
    expect((await lift('frz_00000000000000000000')).status).toBe(404);
    expect((await t.call('GET', '/v1/freezes', { token: TOKENS.agent })).body).toEqual({ freezes: [] });

    const f = await freeze('lab', 'authz check');
    expect(f.status).toBe(201);
    expect(f.body).toMatchObject({ id: expect.stringMatching(/^frz_[0-9a-f]{20}$/), environment: 'lab', reason: 'authz check', by: 'human:carol', stillSending: [] });
    expect(f.headers.get('location')).toBe(`/v1/freezes/${f.body.id}`);
    expect((await t.call('GET', '/v1/freezes', { token: TOKENS.agent })).body.freezes.map((x: { id: string }) => x.id)).toEqual([f.body.id]);
    // A token of another environment does not see it, and cannot lift it.
    expect((await t.call('GET', '/v1/freezes?environment=prod', { token: TOKENS.agent })).body.freezes).toEqual([]);
    expect((await lift(f.body.id, TOKENS.agent)).status).toBe(403);
    const l = await lift(f.body.id);
    expect(l.status).toBe(200);
    expect(l.body).toMatchObject({ id: f.body.id, liftedBy: 'human:carol', liftedAt: expect.any(String) });
    // Lifting again: the same freeze, as it was lifted.
    expect((await lift(f.body.id)).body).toEqual(l.body);
    expect((await t.call('GET', '/v1/freezes', { token: TOKENS.agent })).body.freezes).toEqual([]);
    expect((await t.call('GET', '/v1/freezes?includeLifted=true', { token: TOKENS.agent })).body.freezes.map((x: { id: string }) => x.id)).toContain(f.body.id);

    // Both are on the audit chain, under the freeze's own subject, and the chain verifies.
    const records = await t.service.audit.forPlan(`freeze/${f.body.id}`);
    expect(records.map((r) => [r.event, r.actor])).toEqual([['freeze.created', 'human:carol'], ['freeze.lifted', 'human:carol']]);
    expect(verifyChain(await t.service.audit.all()).ok).toBe(true);
  });
});

describe('20 applies racing a freeze on shared guests', () => {
  it('none starts after the freeze answered; the held runs wait, say so, and each runs once after the lift', async () => {
    // 20 snapshots on three shared guests: the journal lets one mutation per guest run at a time,
    // so most of them are still waiting for their guest when the freeze lands.
    const targets = [
      { action: 'vm.snapshot.create', vmid: 100 },
      { action: 'vm.snapshot.create', vmid: 101 },
      { action: 'ct.snapshot.create', vmid: 300 },
    ];
    const plans = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const target = targets[i % targets.length]!;
        const r = await plan({ action: target.action, environment: 'lab', target: { vmid: target.vmid }, params: { snapname: `race${i}` }, reason: `freeze race ${i}` });
        expect(r.status).toBe(201);
        expect(r.body.status).toBe('planned');
        return { ...r.body, snapname: `race${i}`, vmid: target.vmid } as { planId: string; requestHash: string; snapname: string; vmid: number };
      }),
    );

    const applies = plans.map((p) => apply(p));
    // The freeze lands while the applies are being accepted and dispatched.
    await new Promise((r) => setTimeout(r, 150));
    const f = await freeze('lab', 'incident 123');
    const answeredAt = Date.now();
    expect(f.status).toBe(201);
    expect(f.body.stillSending).toEqual([]);
    for (const a of await Promise.all(applies)) expect(a.status).toBe(202);

    // Every run either finished (dispatched before the freeze) or is held by it.
    const settled = await until(
      'every run finished or held',
      async () => {
        const views = await Promise.all(plans.map((p) => view(p.planId)));
        return views.every((v) => ['succeeded', 'failed'].includes(v.status) || (v.frozen?.id === f.body.id && ['planned', 'approved'].includes(v.status))) && views;
      },
      60_000,
      200,
    );
    const held = settled.filter((v: { status: string }) => !['succeeded', 'failed'].includes(v.status));
    const ranBefore = settled.filter((v: { status: string }) => ['succeeded', 'failed'].includes(v.status));
    // The race is real only if the freeze caught some runs on their way (on a slow machine, more).
    expect(held.length, `${held.length} held, ${ranBefore.length} ran before the freeze`).toBeGreaterThan(0);

    // The oracle: nothing mutating reached the lab simulator after the freeze answered.
    const late = executedMutations(t.sim('lab')).filter((r) => r.time > answeredAt);
    expect(late, JSON.stringify(late)).toEqual([]);
    // Give any run that would wrongly go on a chance to, then look again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(executedMutations(t.sim('lab')).filter((r) => r.time > answeredAt)).toEqual([]);

    // Held runs say why, with a machine-readable reason, and show in the Web UI's filter.
    for (const v of held) expect(v.frozen).toMatchObject({ id: f.body.id, environment: 'lab', reason: 'incident 123', by: 'human:carol' });
    if (held.length > 0) {
      const listed = await until('held runs in visibility', async () => {
        const ids: string[] = [];
        for await (const w of t.service.client.workflow.list({ query: `ProxmoxFrozen = "${f.body.id}"` })) ids.push(w.workflowId);
        return ids.length === held.length && ids;
      });
      expect(new Set(listed)).toEqual(new Set(held.map((v: { planId: string }) => v.planId)));
    }
    // /healthz details and /metrics show it.
    const health = await t.call('GET', '/healthz');
    expect(health.body.checks.freezes.detail).toContain(f.body.id);
    const metrics = await fetch(`${t.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/proxmox_agent_environment_frozen\{environment="lab"\} 1/);
    expect(metrics).toMatch(/proxmox_agent_environment_frozen\{environment="prod"\} 0/);

    // Lift: every held run goes on, and each snapshot is made exactly once.
    expect((await lift(f.body.id)).status).toBe(200);
    const done = await until(
      'every run finished after the lift',
      async () => {
        const views = await Promise.all(plans.map((p) => view(p.planId)));
        return views.every((v) => v.status === 'succeeded' || v.status === 'failed') && views;
      },
      60_000,
      200,
    );
    // A held run is re-checked before it goes on: one whose guest others changed meanwhile is
    // refused as stale (nothing sent), like any plan applied after its target changed.
    for (const v of done.filter((x: { status: string }) => x.status === 'failed')) expect(v.result, JSON.stringify(v.result)).toMatchObject({ errorType: 'PlanStale' });
    for (const v of done) expect(v.frozen).toBeUndefined();
    const snapshots = t.sim('lab').mutations.all().filter((m) => m.op === 'snapshot' && m.key.startsWith('race'));
    for (const [i, p] of plans.entries()) {
      const made = snapshots.filter((m) => m.vmid === p.vmid && m.key === p.snapname);
      expect(made, p.snapname).toHaveLength(done[i].status === 'succeeded' ? 1 : 0);
    }
    expect(done.filter((v: { status: string }) => v.status === 'succeeded').length).toBeGreaterThan(0);
    expect(t.sim('lab').mutations.duplicates()).toEqual([]);
    expect((await fetch(`${t.url}/metrics`).then((r) => r.text()))).toMatch(/proxmox_agent_environment_frozen\{environment="lab"\} 0/);

    // The held runs' records say they were held and went on; the runs that ran before were never held.
    for (const h of held) {
      const v = done.find((x: { planId: string }) => x.planId === h.planId);
      const events = (await t.service.audit.forPlan(v.planId)).map((r) => r.event);
      expect(events).toContain('apply.held');
      expect(events.indexOf('apply.resumed')).toBeGreaterThan(events.indexOf('apply.held'));
      expect(events.at(-1)).toBe(v.status === 'succeeded' ? 'action.applied' : 'apply.refused_stale');
    }
    for (const v of ranBefore) expect((await t.service.audit.forPlan(v.planId)).map((r) => r.event)).not.toContain('apply.held');
    expect(held.length + ranBefore.length).toBe(20);
  }, 180_000);
});

describe('plans under a freeze', () => {
  it('are still made and say they are frozen; an approved run waits and goes on at the lift; running tasks are left alone', async () => {
    const f = await freeze('prod', 'change freeze for the release');
    expect(f.status).toBe(201);
    const p = await plan({ action: 'vm.shutdown', environment: 'prod', target: { vmid: 200 }, params: {}, reason: 'maintenance under a freeze' });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ status: 'awaiting_approval', frozen: { id: f.body.id } });
    expect(p.body.reasons).toContainEqual(expect.objectContaining({ rule: 'freeze.active', hint: expect.stringContaining('lift') }));
    const accepted = await apply(p.body);
    expect(accepted.status).toBe(202);
    const approved = await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok once lifted' } });
    expect(approved.status).toBeLessThan(300);
    // The approved run re-checks, meets the freeze and holds: a positive event, not a sleep.
    await until('the run holds', async () => {
      const events = (await t.service.audit.forPlan(p.body.planId)).map((r) => r.event);
      return events.includes('apply.held');
    });
    const before = executedMutations(t.sim('prod')).length;
    expect((await view(p.body.planId)).status).toBe('approved');
    expect(t.sim('prod').model.guest(200)?.status).toBe('running');

    expect((await lift(f.body.id)).status).toBe(200);
    const done = await t.waitForStatus(p.body.planId, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(t.sim('prod').model.guest(200)?.status).toBe('stopped');
    expect(executedMutations(t.sim('prod')).length).toBe(before + 1);
  }, 120_000);

  it('a run held past its expiry expires, and nothing is sent', async () => {
    t.config.policy.planTtlSeconds = 4;
    try {
      const f = await freeze('lab', 'expiry under a freeze');
      const p = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'expires' }, reason: 'expires while frozen' });
      expect(p.body.frozen?.id).toBe(f.body.id);
      const before = executedMutations(t.sim('lab')).length;
      expect((await apply(p.body)).status).toBe(202);
      const done = await t.waitForStatus(p.body.planId, ['expired', 'succeeded', 'failed'], 30_000);
      expect(done.status).toBe('expired');
      expect(executedMutations(t.sim('lab')).length).toBe(before);
      expect((await lift(f.body.id)).status).toBe(200);
    } finally {
      t.config.policy.planTtlSeconds = 3600;
    }
  }, 60_000);
});

describe('a freeze survives a restart', () => {
  it('the next service on the same store still holds it, until lifted', async () => {
    const f = await freeze('lab', 'survives restarts');
    await t.stop();
    t = await startTestService((config) => {
        config.audit.file = auditFile;
    });
    expect((await t.call('GET', '/v1/freezes', { token: TOKENS.agent })).body.freezes.map((x: { id: string }) => x.id)).toEqual([f.body.id]);
    const p = await plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'after-restart' }, reason: 'after a restart' });
    expect(p.body.frozen?.id).toBe(f.body.id);
    const before = executedMutations(t.sim('lab')).length;
    expect((await apply(p.body)).status).toBe(202);
    await until('the run holds', async () => (await t.service.audit.forPlan(p.body.planId)).some((r) => r.event === 'apply.held'));
    expect(executedMutations(t.sim('lab')).length).toBe(before);
    expect((await lift(f.body.id)).status).toBe(200);
    expect((await t.waitForStatus(p.body.planId, ['succeeded', 'failed'])).status).toBe('succeeded');
    expect(t.sim('lab').mutations.all().filter((m) => m.key === 'after-restart')).toHaveLength(1);
  }, 120_000);
});

describe('the CLI', () => {
  it('freeze, freezes and unfreeze under an admin token; another token is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-freeze-cli-'));
    const file = (name: string, token: string) => {
      const f = join(dir, name);
      writeFileSync(f, token);
      chmodSync(f, 0o600);
      return f;
    };
    const run = async (tokenFile: string, ...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const [log, error] = [console.log, console.error];
      console.log = (...a: unknown[]) => out.push(a.join(' '));
      console.error = (...a: unknown[]) => err.push(a.join(' '));
      try {
        const code = await runCli(['node', 'proxmox-agent', ...args, '--url', t.url, '--token-file', tokenFile]);
        return { code, out: out.join('\n'), err: err.join('\n') };
      } finally {
        [console.log, console.error] = [log, error];
        process.exitCode = 0;
      }
    };
    const admin = file('admin', TOKENS.admin);
    const agent = file('agent', TOKENS.agent);

    const refused = await run(agent, 'freeze', '--environment', 'prod', '--reason', 'not an admin');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/admin/);

    const frozen = await run(admin, 'freeze', '--environment', 'prod', '--reason', 'incident 123', '--json');
    expect(frozen.code).toBe(0);
    const f = JSON.parse(frozen.out) as { id: string };
    expect((await t.call('GET', '/v1/freezes?environment=prod', { token: TOKENS.agent })).body.freezes.map((x: { id: string }) => x.id)).toEqual([f.id]);

    const listed = await run(agent, 'freezes');
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(`${f.id}  prod  frozen`);
    expect(listed.out).toContain('incident 123');

    const lifted = await run(admin, 'unfreeze', f.id);
    expect(lifted.code).toBe(0);
    expect(lifted.out).toMatch(new RegExp(`^lifted: ${f.id}  prod  frozen .* lifted .* by human:carol: incident 123$`));
    expect((await run(agent, 'freezes', '--environment', 'prod')).out).toBe('no environment is frozen');
  });
});
