/**
 * The approval queue past one visibility page, on the real dev server: 1,500 runs awaiting approval
 * (started without a worker, so they stay open) make the queue look for a start-time window with
 * counts instead of listing every id. Walking the pages must give every run once, in (start time,
 * plan id) order, exactly as sorting the full listing would.
 */
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApprovalQueue, type PendingCursor } from '../../src/api/plans/approval-queue.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { ProxmoxEnvironment, ProxmoxStatus } from '../../src/temporal/search-attributes.js';
import { until } from './support/until.js';

const RUNS = 1500;
const taskQueue = `window-${Math.random().toString(36).slice(2)}`;
let connection: Connection;
let client: Client;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const crockford = (n: number, width: number) => Array.from({ length: width }, (_, i) => CROCKFORD[Math.floor(n / 32 ** (width - 1 - i)) % 32]).join('');
/** Plan ids of this file's run: a random prefix (the dev server is shared), then the run's number. */
const prefix = crockford(Math.floor(Math.random() * 32 ** 6), 6);
const planId = (k: number) => `plan_${prefix}${crockford(k, 20)}`;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection, namespace: inject('temporalNamespace') });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < RUNS) {
        const k = next++;
        await client.workflow.start('actionWorkflow', {
          taskQueue,
          workflowId: planId(k),
          args: [],
          typedSearchAttributes: [
            { key: ProxmoxStatus, value: 'awaiting_approval' },
            { key: ProxmoxEnvironment, value: k % 5 === 0 ? 'prod' : 'lab' },
          ],
        });
      }
    }),
  );
  // Visibility is eventually consistent: wait until the count sees them all.
  const query = `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`;
  await until(`visibility to count ${RUNS} runs`, async () => (await client.workflow.count(query)).count >= RUNS, 60_000, 250);
}, 180_000);

afterAll(async () => {
  // Terminate what this file started (the dev server is shared by the integration files).
  const ids: string[] = [];
  for await (const run of client.workflow.list({ query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`, pageSize: 1000 })) ids.push(run.workflowId);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let id = ids.pop(); id; id = ids.pop()) await client.workflow.getHandle(id).terminate('test done').catch(() => {});
    }),
  );
  await connection?.close();
}, 180_000);

describe('approval queue over 1,000 pending runs', () => {
  it('walks every run once, oldest first, for all environments and for one', async () => {
    const counted: string[] = [];
    /** Ids each listing returned: none may hold all 1,500 (that would be the full-listing fallback). */
    const listed: number[] = [];
    const countingClient = Object.create(client) as Client;
    Object.defineProperty(countingClient, 'workflow', {
      value: Object.assign(Object.create(client.workflow), {
        count: (q: string) => (counted.push(q), client.workflow.count(q)),
        list: (options: Parameters<Client['workflow']['list']>[0]) => {
          const at = listed.push(0) - 1;
          const inner = client.workflow.list(options);
          return (async function* () {
            for await (const run of inner) {
              listed[at] = (listed[at] ?? 0) + 1;
              yield run;
            }
          })();
        },
      }),
    });
    const envOf = new Map<string, string>();
    const all: { id: string; ms: number }[] = [];
    for await (const r of client.workflow.list({ query: `TaskQueue = "${taskQueue}"`, pageSize: 1000 })) {
      all.push({ id: r.workflowId, ms: r.startTime.getTime() });
      envOf.set(r.workflowId, (r.typedSearchAttributes.get(ProxmoxEnvironment) as string | undefined) ?? '');
    }
    expect(all).toHaveLength(RUNS);
    all.sort((a, b) => a.ms - b.ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // The state reader stands in for the runs' query handler (no worker runs these).
    const plans = { state: async (id: string) => ({ planId: id, status: 'awaiting_approval', environment: envOf.get(id)! }) as PlanView };
    const queue = createApprovalQueue({ client: countingClient, taskQueue, plans });

    for (const environments of [['*'], ['prod']]) {
      const walked: string[] = [];
      let after: PendingCursor | undefined;
      let pages = 0;
      do {
        const page = await queue.pending({ environments, limit: 100, ...(after ? { after } : {}) });
        expect(page.items.length).toBeLessThanOrEqual(100);
        walked.push(...page.items.map((v) => v.planId));
        after = page.next;
        pages += 1;
      } while (after && pages < 100);
      const expected = all.filter((r) => environments.includes('*') || environments.includes(envOf.get(r.id)!)).map((r) => r.id);
      expect(walked, environments.join()).toEqual(expected);
    }
    // The window search ran (start-time counts, not only the totals), and no page listed every run.
    expect(counted.some((q) => q.includes('StartTime <'))).toBe(true);
    expect(Math.max(...listed)).toBeLessThanOrEqual(1000);
  }, 120_000);
});
