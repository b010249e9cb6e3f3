/**
 * Probes of the state the two API replicas share.
 *
 * - Guarantee 3 (a token's rate limit holds across replicas): a flood, not an outage. The shared
 *   bucket lives in PostgreSQL behind a pool of 8 connections per replica. A token that sends enough
 *   requests at once must not get more than one bucket's worth. (Found at ddbe16f: 218 allowed against
 *   a bound of 149, the flood exhausting the pools and pushing each replica into a full bucket of its
 *   own; since 2309366 a replica sends one statement per token at a time and a busy database refuses.)
 * - Guarantee 2 (a human "no" stops it): an approval and a rejection of the same plan race through
 *   the two replicas, with and without a slow apply-time re-read of the target. Whatever wins, a
 *   rejection the API answered as "rejected" must never be followed by a mutation, and a plan whose
 *   view says "rejected" never mutated.
 * - Guarantee 4 (separation of duties): a token with plan, apply and approve scopes (added to the
 *   config, API replicas restarted) approves its own plan through both replicas at once, and a webhook
 *   approver mapped to the requesting principal approves it through the other replica.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ARTIFACTS, RATE_LIMIT, startDeployment, TOKENS, type Answer, type Deployment } from './support/deployment.js';
import { flows, sleep, type Flows, type Run } from './support/flows.js';

let d: Deployment;
let f: Flows;
beforeAll(async () => {
  d = await startDeployment({ log: () => undefined });
  f = flows(d);
  console.log(`[probe] deployment up; logs in ${ARTIFACTS}`);
}, 600_000);
afterAll(async () => d?.stop(), 120_000);

const problem = (a: { body: any }) => String(a.body?.type ?? '').split('/').pop();
const logs = () => [...d.apis].map((a) => readFileSync(a.logFile, 'utf8')).join('\n');

describe('guarantee 3: one rate across replicas', () => {
  it('a flood of one token through both replicas gets no more than one bucket allows', async () => {
    const perReplica = 2000;
    const t0 = Date.now();
    const answers = await Promise.all(
      d.apis.flatMap((a) =>
        Array.from({ length: perReplica }, () =>
          d.call(a, 'GET', '/v1/catalog', { token: TOKENS.rate, timeoutMs: 120_000 }).catch((err: Error) => ({ status: -1, body: err.message, headers: new Headers() }) as Answer),
        ),
      ),
    );
    const elapsedS = (Date.now() - t0) / 1000;
    const count = (s: number) => answers.filter((a) => a.status === s).length;
    const allowed = count(200);
    const bound = RATE_LIMIT.burst + Math.ceil(RATE_LIMIT.requestsPerSecond * elapsedS);
    const others = [...new Set(answers.filter((a) => a.status !== 200 && a.status !== 429).map((a) => `${a.status} ${JSON.stringify(a.body).slice(0, 120)}`))];
    const fallback = logs()
      .split('\n')
      .filter((l) => l.includes('shared rate limit in PostgreSQL'))
      .map((l) => l.slice(0, 300));
    const seen = `${allowed} allowed, ${count(429)} refused (429), other answers ${JSON.stringify(others)} of ${answers.length} in ${elapsedS.toFixed(2)} s; one bucket allows at most ${bound}; API log lines about the shared limit: ${JSON.stringify(fallback.slice(0, 6))}`;
    console.log(`[probe] rate flood: ${seen}`);
    expect(allowed, seen).toBeLessThanOrEqual(bound);
  });
});

describe('guarantee 2: a rejection racing the approval through the other replica', () => {
  // Stopped lab VMs: a lab delete needs one approval.
  const cases = [
    { vmid: 101, slowRecheck: false },
    { vmid: 102, slowRecheck: true },
    { vmid: 110, slowRecheck: false },
    { vmid: 111, slowRecheck: true },
    { vmid: 114, slowRecheck: false },
  ];
  it.each(cases.map((c, i) => ({ ...c, i })))('vm $vmid (slow re-check: $slowRecheck)', async ({ vmid, slowRecheck, i }) => {
    const approveVia = d.apis[i % 2]!;
    const rejectVia = d.apis[1 - (i % 2)]!;
    const { run } = await f.plan(approveVia, `race-${vmid}`, { action: 'vm.delete', environment: 'lab', target: { vmid }, params: { purge: true } }, 'destroy');
    expect(run.final).toBeUndefined();
    const applied = await f.apply(rejectVia, run);
    expect(applied.body?.status, JSON.stringify(applied.body)).toBe('awaiting_approval');
    const rule = slowRecheck ? d.sims.lab.faults.slowResponses(6_500, { method: 'GET', path: `/nodes/*/qemu/${vmid}/status/current`, times: 1 }) : undefined;
    try {
      // Stagger the rejection by a few ms per case, so the two signals land in both orders.
      const [approved, rejected] = await Promise.all([
        d.call(approveVia, 'POST', `/v1/actions/${run.planId}/approvals`, { token: TOKENS.alice, body: { decision: 'approve' } }),
        sleep(i % 3 === 0 ? 0 : (i % 3) * 8).then(() => d.call(rejectVia, 'POST', `/v1/actions/${run.planId}/approvals`, { token: TOKENS.bob, body: { decision: 'reject', comment: 'no' } })),
      ]);
      const done = await f.settle(run, 120_000);
      await sleep(2_000);
      const mutations = d.sims.lab.mutations.all().filter((m) => m.vmid === vmid && m.op === 'destroy');
      const evidence = JSON.stringify({
        approve: [approved.status, approved.body?.status ?? problem(approved), approved.body?.recorded],
        reject: [rejected.status, rejected.body?.status ?? problem(rejected), rejected.body?.recorded],
        final: done?.status,
        refused: done?.approval?.refused,
        mutations: mutations.map((m) => m.upid),
      });
      console.log(`[probe] race vm ${vmid}: ${evidence}`);
      expect(mutations.length, evidence).toBeLessThanOrEqual(1);
      if (rejected.status === 202 && rejected.body?.status === 'rejected') expect(mutations, `answered "rejected", yet mutated: ${evidence}`).toEqual([]);
      if (done?.status === 'rejected') expect(mutations, evidence).toEqual([]);
      if (mutations.length > 0) expect(rejected.status, evidence).toBe(409);
      // The approval and the rejection cannot both have been answered as taking effect.
      expect(approved.status === 202 && rejected.status === 202 && rejected.body?.status === 'rejected' && done?.status === 'succeeded', evidence).toBe(false);
    } finally {
      if (rule) d.sims.lab.faults.remove(rule);
    }
  });
});

describe('guarantee 4: separation of duties through either replica', () => {
  const SELF_TOKEN = 'probe-self-token';
  const SELF_PRINCIPAL = 'human:carol';
  beforeAll(async () => {
    // Carol may plan, apply and approve; the webhook bot also speaks for the agent and for carol.
    const config = parse(readFileSync(d.configPath, 'utf8')) as Record<string, any>;
    config.tokens.push({ id: 'probe-self', principal: SELF_PRINCIPAL, secretSha256: createHash('sha256').update(SELF_TOKEN).digest('hex'), scopes: ['plan', 'apply', 'approve', 'read'], environments: ['*'], roles: ['sre', 'dba'], channels: ['api', 'cli'] });
    config.channels.webhooks[0].approvers['pi@example.com'] = { principal: 'agent:pi-demo', roles: ['sre'] };
    config.channels.webhooks[0].approvers['carol@example.com'] = { principal: SELF_PRINCIPAL, roles: ['sre'] };
    writeFileSync(d.configPath, stringify(config));
    for (const api of d.apis) {
      await api.kill();
      await api.start();
    }
  }, 300_000);

  const signed = (run: Run, approver: string) => {
    const rawBody = JSON.stringify({ planId: run.planId, requestHash: run.requestHash, decision: 'approve', approver, nonce: randomUUID() });
    const ts = Math.floor(Date.now() / 1000);
    return { rawBody, headers: { 'x-pa-timestamp': String(ts), 'x-pa-signature': `sha256=${createHmac('sha256', d.webhookSecret).update(`${ts}.${rawBody}`).digest('hex')}` } };
  };

  it('a requester cannot approve its own plan: REST through both replicas at once, CLI channel, and webhook through the other replica', async () => {
    // Carol plans a prod delete (two approvals, one via api/cli) and applies it.
    const plan = await d.call(d.apis[0]!, 'POST', '/v1/actions/plan', {
      token: SELF_TOKEN,
      body: { action: 'vm.delete', environment: 'prod', target: { vmid: 202 }, params: { purge: true }, reason: 'probe: self approval' },
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    const run: Run = { label: 'self', planId: plan.body.planId, requestHash: plan.body.requestHash, environment: 'prod', vmid: 202, op: 'destroy', planRetried: [], approvedBy: [] };
    expect((await d.call(d.apis[1]!, 'POST', '/v1/actions/apply', { token: SELF_TOKEN, body: { planId: run.planId, requestHash: run.requestHash } })).status).toBe(202);

    const answers = await Promise.all([
      d.call(d.apis[0]!, 'POST', `/v1/actions/${run.planId}/approvals`, { token: SELF_TOKEN, body: { decision: 'approve' } }),
      d.call(d.apis[1]!, 'POST', `/v1/actions/${run.planId}/approvals`, { token: SELF_TOKEN, body: { decision: 'approve' }, headers: { 'x-proxmox-agent-channel': 'cli' } }),
      d.call(d.apis[1]!, 'POST', '/v1/channels/webhook/approvals', signed(run, 'carol@example.com')),
    ]);
    // And one legitimate approval, so that a single miscounted self-approval would complete the quorum.
    const bob = await d.call(d.apis[0]!, 'POST', `/v1/actions/${run.planId}/approvals`, { token: TOKENS.bob, body: { decision: 'approve' } });
    await sleep(5_000);
    const view = (await d.call(d.apis[1]!, 'GET', `/v1/actions/${run.planId}`, { token: TOKENS.bob })).body;
    const evidence = JSON.stringify({ answers: answers.map((a) => [a.status, problem(a) || a.body?.status]), bob: [bob.status, bob.body?.approval], status: view?.status, approvers: view?.approval?.approvers?.map((a: any) => `${a.principal} via ${a.channel}`), mutations: d.sims.prod.mutations.all().filter((m) => m.vmid === 202) });
    console.log(`[probe] self approval: ${evidence}`);
    expect(answers.map((a) => a.status), evidence).toEqual([403, 403, 403]);
    expect(view?.approval?.approvers?.map((a: any) => a.principal), evidence).toEqual(['human:bob']);
    expect(view?.status, evidence).toBe('awaiting_approval');
    expect(d.sims.prod.mutations.all().filter((m) => m.vmid === 202), evidence).toEqual([]);
  });

  it("the agent's own plan cannot be approved by a chat identity mapped to the agent", async () => {
    // vm 117 (stopped) is kept out of the race above for this.
    const { run, answer } = await f.plan(d.apis[0]!, 'self-webhook', { action: 'vm.delete', environment: 'lab', target: { vmid: 117 }, params: { purge: true } }, 'destroy');
    expect(answer.body.decision).toBe('requires_approval');
    await f.apply(d.apis[0]!, run);
    const viaOther = await d.call(d.apis[1]!, 'POST', '/v1/channels/webhook/approvals', signed(run, 'pi@example.com'));
    const view = (await d.call(d.apis[0]!, 'GET', `/v1/actions/${run.planId}`, { token: TOKENS.agent })).body;
    const evidence = JSON.stringify({ answer: [viaOther.status, problem(viaOther) || viaOther.body?.status], status: view?.status, decision: view?.decision, approvers: view?.approval?.approvers });
    console.log(`[probe] self approval via webhook: ${evidence}`);
    expect(viaOther.status, evidence).toBe(403);
    expect(problem(viaOther), evidence).toBe('self-approval');
    expect(view?.approval?.approvers ?? [], evidence).toEqual([]);
    expect(d.sims.lab.mutations.all().filter((m) => m.vmid === 117), evidence).toEqual([]);
  });
});
