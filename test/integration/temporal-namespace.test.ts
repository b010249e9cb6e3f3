/**
 * The config's namespace, and a namespace without the project's search attributes (issue 13,
 * items 2 and 3). The API and a worker run as processes (`src/api/http/main.ts`, `src/worker/main.ts`)
 * whose config names a fresh namespace and whose environment has no TEMPORAL_NAMESPACE:
 *  - before the search attributes are registered, `/readyz` and `/healthz` of both answer 503 naming
 *    the missing attributes and the command that registers them, and a plan and the approval queue
 *    answer 503 `/problems/temporal-misconfigured` saying the same (not 500, not "not reachable");
 *  - once registered, readiness turns 200 by itself and a plan starts, in the config's namespace.
 */
import { randomUUID } from 'node:crypto';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectConnection } from '../../src/temporal/connection.js';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes-admin.js';
import { testConnectionOptions } from '../setup/temporal.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until } from './support/until.js';

const AGENT = 'demo-agent-token';
const NAMESPACE = `pa-config-${randomUUID().slice(0, 8)}`;

let s: SplitService;
let worker: WorkerProcess;
let client: Client;

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as any };
};

describe("a namespace from the config, without the project's search attributes at first", () => {
  beforeAll(async () => {
    const connection = await connectConnection(testConnectionOptions());
    client = new Client({ connection, namespace: NAMESPACE });
    await connection.workflowService.registerNamespace({ namespace: NAMESPACE, workflowExecutionRetentionPeriod: msToTs('1 day') });
    await until('the namespace', () => connection.workflowService.describeNamespace({ namespace: NAMESPACE }).then(() => true, () => false), 30_000, 200);
    s = await startSplitService({ apiProcess: true, namespace: NAMESPACE, guests: [{ vmid: 701, type: 'qemu', node: 'pve-f1', name: 'vm-701', status: 'stopped' }] });
    worker = await s.startWorker();
  }, 180_000);

  afterAll(async () => {
    await s?.stop();
    await client?.connection.close();
  });

  it('readiness names the missing attributes and the command; plans and the approval queue answer temporal-misconfigured', async () => {
    const command = `npm run temporal:search-attributes -- --address ${testConnectionOptions().address} --namespace ${NAMESPACE}`;
    for (const url of [`${s.url}/readyz`, `${s.url}/healthz`, `${worker.url}/readyz`, `${worker.url}/healthz`]) {
      const res = await get(url);
      expect(res.status, url).toBe(503);
      expect(res.body.checks.temporal.ok, url).toBe(true);
      expect(res.body.checks.searchAttributes).toMatchObject({ ok: false, detail: expect.stringContaining('ProxmoxPlanId') });
      expect(res.body.checks.searchAttributes.detail).toContain(command);
    }

    const plan = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.start', environment: 'lab', target: { vmid: 701 }, params: {}, reason: 'misconfigured namespace' } });
    expect(plan.status, JSON.stringify(plan.body)).toBe(503);
    expect(plan.body).toMatchObject({ type: '/problems/temporal-misconfigured', detail: expect.stringMatching(/search attribute Proxmox\w+/) });
    expect(plan.body.detail).toContain(command);

    const approvals = await s.call('GET', '/v1/approvals', { token: 'demo-approver-1-token' });
    expect(approvals.status, JSON.stringify(approvals.body)).toBe(503);
    expect(approvals.body).toMatchObject({ type: '/problems/temporal-misconfigured' });
    expect(approvals.body.detail).toContain(command);
  });

  it("turns ready by itself once they are registered, and plans run in the config's namespace", async () => {
    await ensureSearchAttributes(client.connection, NAMESPACE);
    for (const url of [`${s.url}/readyz`, `${s.url}/healthz`, `${worker.url}/readyz`, `${worker.url}/healthz`]) {
      await until(`${url} 200`, async () => (await get(url)).status === 200, 15_000, 100);
    }
    const plan = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.start', environment: 'lab', target: { vmid: 701 }, params: {}, reason: 'config namespace' } });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    const planId = plan.body.planId as string;
    expect((await client.workflow.getHandle(planId).describe()).taskQueue).toBe(s.taskQueue);
    const suite = new Client({ connection: client.connection, namespace: testConnectionOptions().namespace });
    await expect(suite.workflow.getHandle(planId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
