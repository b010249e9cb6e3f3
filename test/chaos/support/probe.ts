/**
 * Focused probes (test/chaos/probe-*.test.ts): one failure scenario each, on the same deployment as
 * the model-based suite (API and worker processes, PostgreSQL audit, simulators) and judged by the
 * same oracle, so a probe fails with the same rule and evidence as the big run and passes once the
 * code keeps the guarantee in that one scenario.
 */
import type { SimGuestSeed } from '../../../src/simulator/index.js';
import { judge, RULES, type ChaosEvent, type Decision, type Observations, type PlanRun, type Violation } from '../model/oracle.js';
import { modelOf, scenarioPolicy, scenarioTokens, TOKENS, type Approver, type Cluster, type Intent, type PlanSpec } from '../model/scenario.js';
import { sha256, startModelEnv, type CallResult, type ModelEnv } from './model-env.js';

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown']);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export interface ProbeOptions {
  name: string;
  /** Lab guests (qemu); prod gets one idle guest. */
  guests: Omit<SimGuestSeed, 'type' | 'node'>[];
  workers?: number;
  shutdownGraceSeconds?: number;
  taskDurationMs?: number;
  planTtlSeconds?: number;
}

export interface Probe {
  env: ModelEnv;
  t0: number;
  runs: PlanRun[];
  events: ChaosEvent[];
  event(kind: ChaosEvent['kind'], target: string, detail?: string): void;
  /** Plans `action` on lab guest `vmid` (the model decides what it may mutate). */
  plan(action: string, vmid: number, params?: Record<string, unknown>, intent?: Intent): Promise<PlanRun>;
  apply(run: PlanRun): Promise<CallResult>;
  decide(run: PlanRun, who: Approver, decision: 'approve' | 'reject'): Promise<CallResult>;
  /** Waits until the plan is terminal (or the time is up); returns its view. */
  settle(run: PlanRun, timeoutMs?: number): Promise<any>;
  /** Operator cancel through Temporal's client. */
  cancel(run: PlanRun): Promise<void>;
  /** Waits until no Proxmox task runs (the guest is unlocked again) before the next plan. */
  quiet(timeoutMs?: number): Promise<void>;
  /** The oracle's verdict on everything seen so far, and a printable account of it. */
  verdict(): Promise<{ violations: Violation[]; text: string }>;
  stop(): Promise<void>;
}

export async function startProbe(o: ProbeOptions): Promise<Probe> {
  const log = (line: string) => {
    if (process.env.MODEL_CHAOS_VERBOSE) console.log(line);
  };
  const qemu = (g: Omit<SimGuestSeed, 'type' | 'node'>, node: string): SimGuestSeed => ({
    type: 'qemu',
    node,
    cores: 2,
    memory: 2048,
    disks: { scsi0: `local-lvm:vm-${g.vmid}-disk-0,size=8G` },
    ...g,
  });
  const env = await startModelEnv({
    seed: 4242,
    lab: { nodes: ['pve-lab'], guests: o.guests.map((g) => qemu(g, 'pve-lab')) },
    prod: { nodes: ['pve-prod'], guests: [qemu({ vmid: 200, name: 'prod-idle', status: 'stopped' }, 'pve-prod')] },
    taskDurationMs: o.taskDurationMs ?? 1500,
    policy: () => scenarioPolicy(new Date(Date.now() + 86_400_000), o.planTtlSeconds ?? 300),
    tokens: scenarioTokens(sha256),
    shutdownGraceSeconds: o.shutdownGraceSeconds ?? 2,
    workers: o.workers ?? 1,
    log,
  });
  const t0 = Date.now();
  const runs: PlanRun[] = [];
  const events: ChaosEvent[] = [];
  const rel = () => Date.now() - t0;
  const step = (run: PlanRun, name: string, r: CallResult) => {
    run.steps.push({ step: name, at: rel(), status: r.status, ...(typeof r.body?.type === 'string' ? { code: r.body.type.split('/').pop() } : typeof r.body?.status === 'string' ? { code: r.body.status } : {}) });
    return r;
  };
  let n = 0;
  const probe: Probe = {
    env,
    t0,
    runs,
    events,
    event(kind, target, detail) {
      events.push({ at: Date.now(), kind, target, ...(detail ? { detail } : {}) });
      log(`[${o.name}] +${(rel() / 1000).toFixed(1)}s ${kind} ${target}${detail ? ` (${detail})` : ''}`);
    },
    async plan(action, vmid, params = {}, intent = 'run') {
      const { expect, distinct } = modelOf(action, vmid, params);
      const label = `${o.name}-${++n} ${action}`;
      const spec: PlanSpec = { label, cluster: 'lab' as Cluster, vmid, action, params, intent, approvers: [], applies: 1, startAtMs: rel(), expect, distinct };
      const run: PlanRun = { spec, steps: [], decisions: [] };
      runs.push(run);
      const r = step(run, 'plan', await env.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action, environment: 'lab', target: { vmid }, params, reason: `probe ${label}` } }));
      if (r.status !== 201) throw new Error(`${label}: plan answered ${r.status} ${JSON.stringify(r.body)}`);
      run.planned = r.body;
      run.planId = r.body.planId;
      return run;
    },
    apply: async (run) => step(run, 'apply', await env.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: run.planId, requestHash: run.planned.requestHash } })),
    async decide(run, who, decision) {
      const at = rel();
      const r = await env.call('POST', `/v1/actions/${run.planId}/approvals`, { token: TOKENS[who], body: { decision } });
      const d: Decision = { who, decision, at, status: r.status, ...(r.status === 202 ? { answered: r.body?.status, ...(typeof r.body?.recorded === 'boolean' ? { recorded: r.body.recorded } : {}) } : typeof r.body?.type === 'string' ? { answered: r.body.type.split('/').pop() } : {}) };
      run.decisions.push(d);
      return step(run, `${decision}:${who}`, r);
    },
    async settle(run, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await env.call('GET', `/v1/actions/${run.planId}`, { token: TOKENS.agent, deadlineMs: 30_000 });
        if (r.status === 200) run.final = r.body;
        if (TERMINAL.has(run.final?.status) || Date.now() > deadline) return run.final;
        await sleep(1000);
      }
    },
    async cancel(run) {
      run.cancelledAt = Date.now();
      probe.event('cancel', run.spec.label);
      await (await env.temporalClient()).workflow.getHandle(run.planId!).cancel();
    },
    async quiet(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && [env.sims.lab, env.sims.prod].some((sim) => sim.model.tasks().some((t) => t.status === 'running'))) await sleep(250);
    },
    async verdict() {
      // Late work (a second attempt's dispatch, a task still running) shows up within a few seconds.
      await sleep(3000);
      for (const r of runs.filter((x) => x.planId)) {
        const v = await env.call('GET', `/v1/actions/${r.planId}`, { token: TOKENS.agent, deadlineMs: 30_000 });
        if (v.status === 200) r.final = v.body;
      }
      const cluster = (c: Cluster) => ({ mutations: env.sims[c].mutations.all(), requests: env.sims[c].requests.all(), stops: env.sims[c].taskStops(), tasks: env.sims[c].model.tasks() });
      const verify = env.verifyAudit();
      const obs: Observations = { t0, runs, clusters: { lab: cluster('lab'), prod: cluster('prod') }, audit: { rows: await env.auditRecords(), verify: { exit: verify.exit, output: verify.output } }, events };
      const { violations } = judge(obs);
      const text = [
        `[${o.name}] ${runs.map((r) => `${r.spec.label}: ${r.final?.status ?? '?'}${r.final?.result ? ` ${JSON.stringify({ outcome: r.final.result.outcome, errorType: r.final.result.errorType, upid: r.final.result.upid })}` : ''}`).join('; ')}`,
        ...violations.map((v) => `- [${v.rule}] ${v.plan ?? '(no single plan)'}: ${v.message} (${RULES[v.rule]})\n    seen: ${JSON.stringify(v.evidence).slice(0, 2500)}`),
      ].join('\n');
      console.log(text);
      return { violations, text };
    },
    stop: () => env.stop(),
  };
  return probe;
}
