/**
 * Scale-out and lifecycle (issue 7 §3): the API and two workers as separate OS processes, run as a
 * deployment runs them (`npm run build`, then `node dist/bin/api.mjs` and `node dist/bin/worker.mjs`
 * ×2, plain JavaScript with the workflow bundle built beside them) drive a plan end to end; both workers poll the main queue and
 * the environment's queue; each worker serves /metrics (ours and the Temporal SDK's) and /readyz;
 * and a worker SIGTERMed while its Proxmox task runs finishes that task (no retry) before it exits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import proto from '@temporalio/proto';
import { Client } from '@temporalio/client';
import { connectConnection } from '../../src/temporal/connection.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { testConnectionOptions } from '../setup/temporal.js';
import { buildEntryPoints, type BuiltEntryPoints } from '../../scripts/build.js';
import { startSplitService, type SplitService, type WorkerProcess } from './support/split-service.js';
import { until as untilWithin } from './support/until.js';

/** Separate processes start slower than one: a minute, polled every 200 ms. */
const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000) => untilWithin(what, probe, timeoutMs, 200);

const AGENT = 'demo-agent-token';
const { EventType, TaskQueueType, PendingActivityState } = proto.temporal.api.enums.v1;

let s: SplitService;
let pg: TempPostgres;
let workers: WorkerProcess[];
let client: Client;
let built: BuiltEntryPoints;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function planAndApply(vmid: number, action: string): Promise<string> {
  const plan = await s.call('POST', '/v1/actions/plan', { token: AGENT, body: { action, environment: 'lab', target: { vmid }, params: {}, reason: `split ${action}` } });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  const applied = await s.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: plan.body.planId, requestHash: plan.body.requestHash } });
  expect(applied.status, JSON.stringify(applied.body)).toBe(202);
  return plan.body.planId;
}

const status = (planId: string) => s.call('GET', `/v1/actions/${planId}`, { token: AGENT }).then((r) => r.body?.status as string | undefined);

async function history(planId: string) {
  const events = (await client.workflow.getHandle(planId).fetchHistory()).events ?? [];
  const executeScheduled = events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeAction');
  const ids = new Set(executeScheduled.map((e) => String(e.eventId)));
  const of = (type: number, attr: (e: (typeof events)[number]) => { scheduledEventId?: unknown } | null | undefined) =>
    events.filter((e) => e.eventType === type && ids.has(String(attr(e)?.scheduledEventId)));
  return {
    events,
    executeScheduled,
    started: of(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, (e) => e.activityTaskStartedEventAttributes),
    completed: of(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, (e) => e.activityTaskCompletedEventAttributes),
    failed: of(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, (e) => e.activityTaskFailedEventAttributes),
    timedOut: of(EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, (e) => e.activityTaskTimedOutEventAttributes),
  };
}

describePostgres('API and two workers as separate processes', () => {
  beforeAll(async () => {
    // Several worker processes share one audit log: the PostgreSQL store (the file store has one writer).
    pg = await startTempPostgres();
    built = await buildEntryPoints();
    s = await startSplitService({
      apiProcess: true,
      built,
      audit: { postgres: { url: { env: 'PA_AUDIT_PG_URL' } } },
      env: { PA_AUDIT_PG_URL: await pg.createDatabase() },
      guests: [
        { vmid: 501, type: 'qemu', node: 'pve-f1', name: 'vm-501', status: 'stopped' },
        { vmid: 502, type: 'qemu', node: 'pve-f1', name: 'vm-502', status: 'running' },
      ],
      taskDurationMs: 100,
    });
    workers = await Promise.all([s.startWorker(), s.startWorker()]);
    client = new Client({ connection: await connectConnection(testConnectionOptions()), namespace: testConnectionOptions().namespace });
  }, 180_000);

  afterAll(async () => {
    await s?.stop();
    await client?.connection.close();
    await pg?.stop();
  });

  it('are healthy once both workers poll the main queue and the environment queue', async () => {
    await until('/healthz 200', async () => ((await s.call('GET', '/healthz')).status === 200 ? true : undefined));
    expect(s.api).toBeUndefined();
    expect(s.apiProcess!.child.pid).not.toBe(process.pid);
    // The built JavaScript, by plain node (no tsx loader).
    expect(s.apiProcess!.child.spawnargs.slice(1)).toEqual([built.api]);
    for (const w of workers) expect(w.child.spawnargs.slice(1)).toEqual([built.worker]);
    const pollers = async (name: string, type: proto.temporal.api.enums.v1.TaskQueueType) =>
      new Set(((await client.workflowService.describeTaskQueue({ namespace: testConnectionOptions().namespace, taskQueue: { name }, taskQueueType: type })).pollers ?? []).map((p) => p.identity));
    const identities = await until('two pollers on every queue', async () => {
      const [wf, act, env] = await Promise.all([
        pollers(s.taskQueue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        pollers(s.taskQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        pollers(`${s.taskQueue}-lab`, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
      ]);
      return wf.size >= 2 && act.size >= 2 && env.size >= 2 ? env : undefined;
    });
    const pids = workers.map((w) => String(w.child.pid));
    for (const pid of pids) expect([...identities].some((id) => id?.startsWith(`${pid}@`)), `worker ${pid} polls ${s.taskQueue}-lab`).toBe(true);
  });

  it('drive a plan end to end, its Proxmox activity on the environment queue', async () => {
    const planId = await planAndApply(501, 'vm.start');
    await until('succeeded', async () => ((await status(planId)) === 'succeeded' ? true : undefined));
    expect(s.sim.mutations.countFor(501, 'start')).toBe(1);
    const h = await history(planId);
    expect(h.executeScheduled.map((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name)).toEqual([`${s.taskQueue}-lab`]);
    // One path, no patches yet (no release exists): a run records no patch marker.
    const patches = h.events.filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED && e.markerRecordedEventAttributes?.markerName === 'core_patch');
    expect(patches).toEqual([]);
  });

  it('each worker serves /readyz and /metrics with its own and the Temporal SDK series', async () => {
    let executed = 0;
    for (const w of workers) {
      expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${w.url}/readyz`);
      expect(ready.status, await ready.clone().text()).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', detail: expect.stringContaining(`${s.taskQueue}-lab`) });
      const text = await (await fetch(`${w.url}/metrics`)).text();
      expect(text).toMatch(/^temporal_\w+/m); // the SDK core's series, relayed
      expect(text).toMatch(/^# TYPE proxmox_agent_activity_executions_total counter$/m);
      expect(text).toMatch(/^proxmox_agent_process_cpu_seconds_total /m);
      const m = /^proxmox_agent_activity_executions_total\{activity="executeAction",[^}]*outcome="completed"[^}]*\} (\d+)$/m.exec(text);
      executed += m ? Number(m[1]) : 0;
    }
    expect(executed).toBe(1);
  });

  it('a SIGTERMed worker finishes its running Proxmox task without a retry, then exits', async () => {
    s.sim.faults.slowTasks(4000);
    const planId = await planAndApply(502, 'vm.stop');
    // Mid-task: the activity has started and heartbeated the UPID of the task it dispatched.
    await until('executeAction dispatched', async () => {
      const d = await client.workflow.getHandle(planId).describe();
      const pending = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'executeAction');
      return pending?.state === PendingActivityState.PENDING_ACTIVITY_STATE_STARTED && pending.heartbeatDetails ? true : undefined;
    });
    expect(s.sim.model.tasks().some((t) => t.status === 'running')).toBe(true);
    // Both workers get SIGTERM: neither takes new work, the one running the task lets it finish.
    const exits = workers.map((w) => w.kill('SIGTERM').then(() => w.exited));
    // A fresh worker finishes the run (the workflow task after the activity) once the others have left.
    const codes = await Promise.all(exits);
    expect(codes).toEqual([0, 0]);
    const fresh = await s.startWorker();
    await until('succeeded', async () => ((await status(planId)) === 'succeeded' ? true : undefined), 90_000);

    const h = await history(planId);
    expect(h.executeScheduled).toHaveLength(1);
    expect(h.started.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
    expect(h.completed).toHaveLength(1);
    expect([...h.failed, ...h.timedOut]).toEqual([]);
    expect(s.sim.mutations.countFor(502, 'stop')).toBe(1);
    // The worker that ran it logged the completion after it was told to stop.
    const ran = workers.find((w) => w.output().includes(`"planId":"${planId}"`) && /"activity":"executeAction"[^\n]*"msg":"activity completed"/.test(w.output()))!;
    expect(ran, workers.map((w) => w.output().slice(-2000)).join('\n----\n')).toBeDefined();
    const out = ran.output();
    expect(out.indexOf('worker shutting down')).toBeGreaterThan(-1);
    expect(out.indexOf('"msg":"activity completed"', out.indexOf('worker shutting down'))).toBeGreaterThan(out.indexOf('worker shutting down'));
    expect(out.lastIndexOf('worker stopped')).toBeGreaterThan(out.lastIndexOf('"msg":"activity completed"'));
    workers.push(fresh);
  }, 180_000);

  it('a built worker with tracing on bundles its workflows from src/ (the interceptors go into the bundle) and polls', async () => {
    // Spans go nowhere (nothing listens on port 9): starting and polling is what is checked.
    const traced = await s.startWorker({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_SERVICE_NAME: 'proxmox-agent-built-test' });
    workers.push(traced);
    expect(traced.child.spawnargs.slice(1)).toEqual([built.worker]);
    expect(traced.output()).toContain('worker polling');
  }, 120_000);
});
