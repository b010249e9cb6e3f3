/**
 * A waiting plan's history grows only with messages; past the server's suggestion it goes on in a
 * new run of the same workflow id, with its approvals, its apply and its audit numbering. Its own dev
 * server suggests continuing after 40 events (the default is 4 Ki), so a few messages suffice.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTemporalCli } from '../../src/temporal/cli-locator.js';
import { getFreePort, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { approvalSignal } from '../../src/workflows/messages.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

let server: DevServerHandle;
let t: TestService;

beforeAll(async () => {
  server = await startDevServer({
    cliPath: await ensureTemporalCli(),
    port: await getFreePort(),
    dbFile: join(mkdtempSync(join(tmpdir(), 'pa-can-')), 'temporal.sqlite'),
    headless: true,
    reuseExisting: false,
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
  });
  t = await startTestService(() => {}, { service: { temporal: { address: server.address, namespace: server.namespace } } });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await server?.stop();
});

describe('continue-as-new while waiting', () => {
  it('a plan flooded with refused approvals goes on in a new run, keeps its state, and applies once', async () => {
    const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: {}, reason: 'continue-as-new test' } });
    expect(p.status).toBe(201);
    const { planId, requestHash } = p.body as { planId: string; requestHash: string };
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } })).status).toBe(202);
    expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve' } })).status).toBe(202);
    const handle = t.service.client.workflow.getHandle(planId);
    const firstRun = (await handle.describe()).runId;

    // Approvals the API would refuse (a second approval by the same identity), sent straight to the
    // run as a racing chat bot could: each is refused by the run, and recorded.
    const duplicate = { principal: 'human:alice', tokenId: 'approver-1', roles: ['sre'], channel: 'api' as const, decision: 'approve' as const, requestHash };
    for (let i = 0; i < 10; i++) await handle.signal(approvalSignal, duplicate);
    await until('a new run', async () => ((await handle.describe()).runId !== firstRun ? true : undefined));

    const waiting = (await t.call('GET', `/v1/actions/${planId}`, { token: TOKENS.agent })).body;
    expect(waiting).toMatchObject({ status: 'awaiting_approval', applyRequested: true, approval: { received: 1 } });
    expect(waiting.approval.refused.length).toBeGreaterThanOrEqual(1);

    expect((await t.call('POST', `/v1/actions/${planId}/approvals`, { token: TOKENS.approver2, body: { decision: 'approve' } })).status).toBe(202);
    const final = await t.waitForStatus(planId, ['succeeded', 'failed']);
    expect(final.status).toBe('succeeded');
    expect(final.approval.approvers.map((a: { principal: string }) => a.principal)).toEqual(['human:alice', 'human:bob']);
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(1);

    // One chain for the plan across both runs: every record once, numbered without a gap.
    await until('the refused approvals on the chain', async () => {
      const records = await t.service.audit.forPlan(planId);
      return records.filter((r) => r.event === 'approval.refused').length === 10 ? records : undefined;
    });
    const records = await t.service.audit.forPlan(planId);
    const seqs = records.map((r) => Number(r.eventId.split('/')[1]));
    expect(new Set(records.map((r) => r.eventId)).size).toBe(records.length);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: records.length }, (_, k) => k + 1));
    expect(records.filter((r) => r.event.startsWith('action.'))).toHaveLength(1);
  }, 120_000);
});
