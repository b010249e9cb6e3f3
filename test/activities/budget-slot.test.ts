/**
 * The execute activity marks a budgeted plan's charge applying before anything is sent, and sends
 * nothing once the charge's expiry has passed without that mark (docs/policy.md, "Budgets"): the slot
 * was given up then, and another plan may hold it. Against the simulator, a real file budget ledger
 * and a file audit store, one attempt at a time (MockActivityEnvironment).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import type { ExecuteInput, ExecuteResult } from '../../src/activities/types.js';
import { openFileAuditStore } from '../../src/audit/file-store.js';
import type { AuditStore } from '../../src/audit/store.js';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';
import type { BudgetStore } from '../../src/budgets/store.js';
import { loadConfig } from '../../src/config/load.js';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import { safeguardJournalId } from '../../src/domain/safeguard.js';
import { normalizeRequest } from '../../src/domain/request.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { startDemoCluster } from '../support/simulated-proxmox.js';

let sim: ProxmoxSimulator;
let close: () => Promise<void>;
let audit: AuditStore;
let budgets: BudgetStore;
let activities: ReturnType<typeof createActivities>;

beforeAll(async () => {
  const cluster = await startDemoCluster('lab', 'lab-secret-for-budget-slot-tests', { taskDurationMs: 20 });
  ({ sim, close } = cluster);
  const dir = mkdtempSync(join(tmpdir(), 'pa-budget-slot-'));
  audit = await openFileAuditStore(join(dir, 'audit.jsonl'));
  budgets = await openFileBudgetStore(join(dir, 'audit.jsonl.budgets.json'));
  const { config } = loadConfig({});
  activities = createActivities({
    environments: new Map([['lab', { tier: 'nonprod', client: cluster.client, tokenId: 'proxmox-agent@pve!agent' }]]),
    policy: () => config.policy,
    audit,
    journal: await openFileDispatchJournal(),
    budgets: { store: budgets, limits: () => ({ 'agent:pi': { concurrent: 1 } }) },
    pollIntervalMs: 20,
  });
});
afterAll(async () => {
  await Promise.all([close(), audit.close(), budgets.close()]);
});
beforeEach(() => sim.reset());

const execute = (input: ExecuteInput) => new MockActivityEnvironment({ attempt: 1 } as Partial<Info>).run(activities.executeAction, input) as Promise<ExecuteResult>;
const start = (planId: string): ExecuteInput => ({ planId, request: normalizeRequest({ action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'budget slot test' }), node: 'pve-lab' });
const charge = (planId: string, expiresInMs: number) => budgets.charge({ concurrent: 1 }, { planId, principal: 'agent:pi', destructive: false, guest: 'lab/101', expiresAt: Date.now() + expiresInMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('execute and the budget slot', () => {
  it('a plan charged and still within its expiry is marked applying, and holds its slot past the expiry', async () => {
    expect((await charge('plan_SLOT_OK', 500)).admitted).toBe(true);
    expect(await execute(start('plan_SLOT_OK'))).toMatchObject({ outcome: 'applied' });
    expect((await budgets.snapshot()).charges.find((c) => c.planId === 'plan_SLOT_OK')).toMatchObject({ applyingAt: expect.any(Number) });
    await sleep(700);
    expect(await charge('plan_SLOT_NEXT', 60_000)).toMatchObject({ admitted: false, refusals: [{ budget: 'concurrent', heldBy: ['plan_SLOT_OK'] }] });
    await budgets.release('plan_SLOT_OK', { sent: true });
  });

  it('a run late past its charge\'s expiry sends nothing, for the action or its safeguard snapshot, and says why', async () => {
    expect((await charge('plan_SLOT_LATE', 200)).admitted).toBe(true);
    await sleep(400);
    for (const planId of [safeguardJournalId('plan_SLOT_LATE'), 'plan_SLOT_LATE']) {
      const err = await execute(start(planId)).catch((e: unknown) => e);
      expect(err).toMatchObject({ type: 'BudgetSlotLapsed', nonRetryable: true });
      expect((err as Error).message).toMatch(/slot lapsed at .*nothing was sent to Proxmox/);
    }
    expect(sim.mutations.all()).toEqual([]);
    // The slot it gave up is another plan's now.
    expect((await charge('plan_SLOT_OTHER', 60_000)).admitted).toBe(true);
    await budgets.release('plan_SLOT_OTHER', { sent: false });
  });

  it('a plan never charged (no budget for its principal) goes on', async () => {
    expect(await execute(start('plan_SLOT_FREE'))).toMatchObject({ outcome: 'applied' });
  });
});
