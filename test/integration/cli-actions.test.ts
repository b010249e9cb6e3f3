/**
 * `proxmox-agent plan | apply | status` against the real service: the request from flags or a YAML
 * file, apply with the plan's own requestHash, following over the event stream with progress lines,
 * and exit codes that say the outcome (0 succeeded, 10 awaiting approval, 20 denied, 21 rejected,
 * 1 API error, 2 usage). A TTY gets one line rewritten in place.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '../../src/client/index.js';
import { EXIT, follow } from '../../src/cli/commands/actions.js';
import { runCli } from '../../src/cli/main.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

let t: TestService;
let dir: string;
const tokenFile = (name: string, token: string) => {
  const f = join(dir, name);
  writeFileSync(f, token);
  chmodSync(f, 0o600);
  return f;
};
let agentFile: string;

beforeAll(async () => {
  t = await startTestService();
  dir = mkdtempSync(join(tmpdir(), 'pa-cli-'));
  agentFile = tokenFile('agent', TOKENS.agent);
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(() => {
  process.exitCode = 0;
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return cliAs(agentFile, ...args);
}

/** Runs the CLI in this process, capturing what it prints; `out`/`err` fill as it runs. */
function startCli(tokenPath: string, args: string[]): { out: string[]; err: string[]; result: Promise<{ code: number; out: string; err: string }> } {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (err.push(String(chunk).replace(/\n$/, '')), true)) as typeof process.stderr.write;
  const result = (async () => {
    try {
      return { code: await runCli(['node', 'proxmox-agent', ...args, '--url', t.url, '--token-file', tokenPath]), out: out.join('\n'), err: err.join('\n') };
    } finally {
      [console.log, console.error, process.stderr.write] = [log, error, write];
      process.exitCode = 0;
    }
  })();
  return { out, err, result };
}

function cliAs(tokenPath: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return startCli(tokenPath, args).result;
}


const planIdIn = (text: string) => /plan_[0-9A-Z]{26}/.exec(text)![0];

describe('proxmox-agent plan | apply | status', () => {
  it('plans from flags (exit 0: ready), applies with the plan\'s requestHash and follows to success', async () => {
    const p = await cli('plan', '-a', 'vm.snapshot.create', '-e', 'lab', '--vmid', '100', '-p', 'snapname=cli-snap', '-r', 'cli test snapshot');
    expect(p.code).toBe(EXIT.succeeded);
    expect(p.out).toContain('vm.snapshot.create');
    expect(p.out).toContain('Next: proxmox-agent apply plan_');
    const planId = planIdIn(p.out);
    const plan = await createApiClient({ baseUrl: t.url, token: TOKENS.agent }).get(planId);

    const a = await cli('apply', planId);
    expect(a.err).toContain(`Applying ${planId} with requestHash ${plan.requestHash}`);
    // Not a terminal: one progress line per change, ending with the outcome.
    expect(a.err).toMatch(new RegExp(`${planId}  vm.snapshot.create lab/100  (planned|applying|succeeded)`));
    expect(a.out).toMatch(new RegExp(`${planId} succeeded: UPID:pve-lab:`));
    expect(a.code).toBe(EXIT.succeeded);
    expect(t.sim('lab').model.guest(100)?.snapshots.includes('cli-snap')).toBe(true);

    const s = await cli('status', planId);
    expect(s.code).toBe(EXIT.succeeded);
    expect(s.out).toContain('Result');
    expect(s.out).toMatch(/Undo\s+vm\.snapshot\.delete \{"snapname":"cli-snap"\}/);

    // `undo`: the inverse as a new plan, applied and followed like any plan.
    expect((await cli('undo', planId)).code).toBe(EXIT.usage);
    const u = await cli('undo', planId, '-r', 'cli test done', '--apply', '--follow');
    expect(u.code, u.err).toBe(EXIT.succeeded);
    const undoId = /Undo of plan_[0-9A-Z]{26}: (plan_[0-9A-Z]{26})/.exec(u.err)?.[1];
    expect(undoId).toBeDefined();
    expect(u.out).toMatch(new RegExp(`${undoId} succeeded: UPID:pve-lab:`));
    expect(t.sim('lab').model.guest(100)?.snapshots.includes('cli-snap')).toBe(false);
    expect((await cli('status', undoId!)).out).toMatch(new RegExp(`Undoes\\s+${planId}`));
    expect((await cli('status', planId)).out).toMatch(new RegExp(`Undone by\\s+${undoId}`));
    const again = await cli('undo', planId, '-r', 'once more');
    expect(again.code).toBe(EXIT.api);
    expect(again.err).toContain('/problems/plan-already-undone');
  });

  it('plans from a YAML file; a prod delete waits for approval (exit 10), then follows to success once approved', async () => {
    const file = join(dir, 'delete.yaml');
    writeFileSync(file, 'action: vm.delete\nenvironment: prod\ntarget:\n  vmid: 201\nparams:\n  purge: true\nreason: cli test decommission\n');
    const p = await cli('plan', '--file', file);
    expect(p.code).toBe(EXIT.awaitingApproval);
    expect(p.out).toMatch(/Needs 2 more approval\(s\)/);
    const planId = planIdIn(p.out);

    const a = await cli('apply', planId, '--no-follow');
    expect(a.code).toBe(EXIT.awaitingApproval);
    expect(a.out).toContain(`Follow it with: proxmox-agent status ${planId} --follow`);
    expect((await cli('status', planId)).code).toBe(EXIT.awaitingApproval);

    const follower = startCli(agentFile, ['status', planId, '--follow']);
    // The follower prints the waiting state before anyone approves (and before another in-process
    // CLI run takes the console over).
    await until('the follower shows 0/2', () => follower.err.some((l) => /awaiting_approval {2}approvals 0\/2/.test(l)));
    // One approval from the approvals CLI (channel cli), one over the API.
    const approver = tokenFile('approver1', TOKENS.approver1);
    // The list reads Temporal visibility, which is eventually consistent: ask until the plan shows.
    await until('the plan in approvals list', async () => {
      const l = await cliAs(approver, 'approvals', 'list', '--json');
      expect(l.code).toBe(0);
      return JSON.parse(l.out).items.some((i: { planId: string }) => i.planId === planId);
    });
    const approved = await cliAs(approver, 'approvals', 'approve', planId, '--yes', '-m', 'cli ok');
    expect(approved.code).toBe(0);
    expect(approved.out).toContain(`Approved ${planId}`);
    const res = await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve' } });
    expect(res.status).toBe(202);
    const f = await follower.result;
    expect(f.err).toMatch(/awaiting_approval {2}approvals 0\/2/);
    expect(f.err).toMatch(/succeeded {2}approvals 2\/2/);
    expect(f.code).toBe(EXIT.succeeded);
    expect(t.sim('prod').model.guest(201)).toBeUndefined();
  });

  it('says denied (20) and rejected (21) in the exit code', async () => {
    // Deleting a running guest: Proxmox would refuse, so policy denies it.
    const d = await cli('plan', '-a', 'vm.delete', '-e', 'lab', '--vmid', '100', '-r', 'cli test denied');
    expect(d.code).toBe(EXIT.denied);
    expect(d.out).toContain('Denied: read the reasons');

    const p = await cli('plan', '-a', 'vm.stop', '-e', 'prod', '--vmid', '200', '-r', 'cli test rejected', '--apply');
    const planId = planIdIn(p.out);
    expect(p.code).toBe(EXIT.awaitingApproval);
    expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'reject', comment: 'not today' } })).status).toBe(202);
    const s = await cli('status', planId, '--follow');
    expect(s.out).toBe(`${planId} rejected by human:alice: not today`);
    expect(s.code).toBe(EXIT.rejected);
  });

  it('reports API errors (1) and usage errors (2)', async () => {
    const missing = await cli('status', 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G');
    expect(missing.code).toBe(EXIT.api);
    expect(missing.err).toContain('/problems/plan-not-found');
    const usage = await cli('plan', '-a', 'vm.start', '-e', 'lab');
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.err).toContain('missing reason, vmid');
  });

  it('rewrites one progress line in place on a terminal', async () => {
    const api = createApiClient({ baseUrl: t.url, token: TOKENS.agent });
    const plan = await api.plan({ action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'tty-snap' }, reason: 'tty' });
    await api.apply(plan.planId, plan.requestHash);
    const written: string[] = [];
    const tty = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const final = await follow(api, plan.planId, tty);
    expect(final.status).toBe('succeeded');
    expect(written.every((w) => w.startsWith('\r\x1b[2K') || w === '\n')).toBe(true);
    expect(written.at(-2)).toMatch(/succeeded/);
    expect(written.at(-1)).toBe('\n');
  });
});
