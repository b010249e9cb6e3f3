/**
 * What the cluster suite does through the API replicas, and what it remembers for the closing
 * checks: every plan it made (which replica, what it expects to see in Proxmox and in the audit log).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { ProxmoxSimulator } from '../../../src/simulator/index.js';
import { TOKENS, WEBHOOK_BOT, type Answer, type CallOptions, type Deployment } from './deployment.js';
import type { ServiceProcess } from './processes.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown']);

export interface Run {
  label: string;
  planId: string;
  requestHash: string;
  environment: 'lab' | 'prod';
  vmid: number;
  /** The mutation the run must cause, exactly once (the simulator's op). */
  op: string;
  /** What the plan request met before its answer (503s, refused connections). */
  planRetried: string[];
  /** `<principal> via <channel>` of each approval the API accepted (202). */
  approvedBy: string[];
  final?: any;
}

export interface Flows {
  runs: Run[];
  /**
   * A request that a careful client retries: 503 (with Retry-After) and refused connections, until
   * `deadlineMs`. `retried` lists what it met before the answer (503s, errors).
   */
  patiently(to: ServiceProcess, method: string, path: string, o?: CallOptions & { deadlineMs?: number }): Promise<Answer & { retried: string[] }>;
  plan(to: ServiceProcess, label: string, body: { action: string; environment: 'lab' | 'prod'; target: { vmid: number }; params: Record<string, unknown> }, op: string): Promise<{ run: Run; answer: Answer }>;
  apply(to: ServiceProcess, run: Run): Promise<Answer>;
  approve(to: ServiceProcess, run: Run, token: string, who: string): Promise<Answer>;
  /** The signed webhook approval of {@link WEBHOOK_BOT} (body bytes and headers, to send as they are). */
  signedApproval(run: Run, nonce?: string, timestamp?: number): { rawBody: string; headers: Record<string, string> };
  /** Polls (through each replica in turn) until the plan is terminal; returns its view. */
  settle(run: Run, timeoutMs?: number): Promise<any>;
  /** Waits until the simulator has a running task whose request matches, and returns its UPID. */
  runningTask(sim: ProxmoxSimulator, match: (path: string) => boolean, timeoutMs?: number): Promise<string>;
  /** The worker (index) Temporal names as running the plan's pending activity (identity `<pid>@<host>`). */
  workerRunning(run: Run, timeoutMs?: number): Promise<number>;
  /** The identities that started and completed the execute activity's attempts, from the run's history. */
  executeHistory(run: Run): Promise<{ started: string[]; completedBy: string[] }>;
}

export function flows(d: Deployment): Flows {
  const runs: Run[] = [];

  const patiently: Flows['patiently'] = async (to, method, path, o = {}) => {
    const deadline = Date.now() + (o.deadlineMs ?? 120_000);
    const retried: string[] = [];
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      try {
        answer = await d.call(to, method, path, o);
        if (answer.status !== 503 || Date.now() > deadline) return { ...answer, retried };
        retried.push('503');
      } catch (err) {
        if (Date.now() > deadline) throw err;
        retried.push((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name);
      }
      const retryAfter = Number(answer?.headers.get('retry-after') ?? '') || 0;
      await sleep(retryAfter ? Math.min(retryAfter, 5) * 1000 : Math.min(250 * 2 ** attempt, 2000));
    }
  };

  const settle: Flows['settle'] = async (run, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      const r = await patiently(d.apis[i % d.apis.length]!, 'GET', `/v1/actions/${run.planId}`, { token: TOKENS.agent, deadlineMs: Math.max(1000, deadline - Date.now()) });
      if (r.status === 200) run.final = r.body;
      if (TERMINAL.has(run.final?.status) || Date.now() > deadline) return run.final;
      await sleep(500);
    }
  };

  return {
    runs,
    patiently,
    async plan(to, label, body, op) {
      const answer = await patiently(to, 'POST', '/v1/actions/plan', { token: TOKENS.agent, body: { ...body, reason: `cluster suite: ${label}` }, headers: { 'idempotency-key': `cluster-${label}` } });
      if (answer.status !== 201) throw new Error(`${label}: the plan was answered ${answer.status} ${JSON.stringify(answer.body)}`);
      const run: Run = { label, planId: answer.body.planId, requestHash: answer.body.requestHash, environment: body.environment, vmid: body.target.vmid, op, planRetried: answer.retried, approvedBy: [] };
      runs.push(run);
      return { run, answer };
    },
    apply: (to, run) => patiently(to, 'POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: run.planId, requestHash: run.requestHash } }),
    async approve(to, run, token, who) {
      const answer = await patiently(to, 'POST', `/v1/actions/${run.planId}/approvals`, { token, body: { decision: 'approve', comment: 'cluster suite' } });
      if (answer.status === 202) run.approvedBy.push(who);
      return answer;
    },
    signedApproval(run, nonce = randomUUID(), timestamp = Math.floor(Date.now() / 1000)) {
      const rawBody = JSON.stringify({ planId: run.planId, requestHash: run.requestHash, decision: 'approve', comment: 'via opsbot', approver: WEBHOOK_BOT.approver, nonce });
      const signature = createHmac('sha256', d.webhookSecret).update(`${timestamp}.${rawBody}`).digest('hex');
      return { rawBody, headers: { 'x-pa-timestamp': String(timestamp), 'x-pa-signature': `sha256=${signature}` } };
    },
    settle,
    async runningTask(sim, match, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const req = sim.requests.all().find((r) => r.upid && match(r.path) && sim.model.task(r.upid)?.status === 'running');
        if (req?.upid) return req.upid;
        if (Date.now() > deadline) throw new Error(`no running task matched within ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    async workerRunning(run, timeoutMs = 30_000) {
      const client = await d.temporalClient();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const desc = await client.workflow.getHandle(run.planId).describe();
        const identity = desc.raw.pendingActivities?.find((a) => a.activityType?.name === 'executeAction')?.lastWorkerIdentity ?? '';
        const pid = Number.parseInt(identity, 10);
        const i = d.workers.findIndex((w) => w.pid === pid);
        if (i >= 0) return i;
        if (Date.now() > deadline) throw new Error(`Temporal named no worker of ours as running ${run.label} (identity '${identity}')`);
        await sleep(200);
      }
    },
    async executeHistory(run) {
      const history = await (await d.temporalClient()).workflow.getHandle(run.planId).fetchHistory();
      const events = history.events ?? [];
      const executeIds = new Set(
        events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeAction').map((e) => String(e.eventId)),
      );
      const started = events.filter((e) => executeIds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId))).map((e) => e.activityTaskStartedEventAttributes!.identity ?? '');
      const startedById = new Map(events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => [String(e.eventId), e.activityTaskStartedEventAttributes!.identity ?? '']));
      const completedBy = events
        .filter((e) => executeIds.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)))
        .map((e) => e.activityTaskCompletedEventAttributes!.identity || startedById.get(String(e.activityTaskCompletedEventAttributes!.startedEventId)) || '');
      return { started, completedBy };
    },
  };
}
