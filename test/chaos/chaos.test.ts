/**
 * Issue 8 §1: 100 concurrent plan → apply flows of mixed risk (approvals, rejections, expiries,
 * denials, failures, stale plans) against the Proxmox simulators, while the harness SIGKILLs the
 * worker process 10 times at random moments (seeded) and restarts the Temporal dev server once
 * (same SQLite file), with 20% transient Proxmox faults. Every flow must end in the terminal state
 * decided for it up front, every mutation must appear exactly once in the simulators' logs, and the
 * audit chain must verify. `npm run test:chaos` (CHAOS_SEED picks another schedule).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecords } from '../../src/audit/file-store.js';
import { loadConfig } from '../../src/config/load.js';
import { rng } from '../../src/simulator/faults.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { AGENT, buildFlows, LAB_NODES, PROD_NODES, type Flow, type Terminal } from './scenarios.js';
import { startChaosEnv, type ChaosEnv } from './support/chaos-env.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SEED = Number(process.env.CHAOS_SEED ?? 8);
const KILLS = 10;
const FAULT_RATE = 0.2;
/** Long enough for every flow that should finish to get its approvals in across the outages. */
const PLAN_TTL_SECONDS = 150;
/** Flows start spread over this window, so kills land on every phase of a plan. */
const START_WINDOW_MS = 30_000;
const TERMINAL = new Set<string>(['succeeded', 'failed', 'rejected', 'expired', 'denied']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FlowRun {
  flow: Flow;
  planId?: string;
  plan?: any;
  final?: any;
  /** Answers to the harness's steps (and how long each took, retries included), for the report. */
  answers: { step: string; status: number; code?: string; ms?: number; retries?: number }[];
  error?: string;
}

const flows = buildFlows();
const random = rng(SEED);
const log = (line: string) => {
  if (process.env.CHAOS_VERBOSE) console.log(line);
};
let env: ChaosEnv;

beforeAll(async () => {
  const demo = loadConfig({}).config;
  env = await startChaosEnv({
    seed: SEED,
    lab: { nodes: LAB_NODES, guests: flows.filter((f) => f.environment === 'lab').map((f) => f.guest) },
    prod: { nodes: PROD_NODES, guests: flows.filter((f) => f.environment === 'prod').map((f) => f.guest) },
    // Tasks run 1.5 s, so that kills and restarts find Proxmox tasks in flight.
    taskDurationMs: 1500,
    policy: { ...demo.policy, planTtlSeconds: PLAN_TTL_SECONDS },
    log,
  });
}, 300_000);

afterAll(async () => {
  await env?.stop();
});

/**
 * At least 20% of Proxmox requests fail transiently: before dispatch, after dispatch, or with the
 * connection dropped. The rules' rates are set a little above 20% (≈ 22.5% by the arithmetic below)
 * because the share measured over every request the simulators answered came out at 18.6–19% with
 * rates computed to 20%; the suite prints the measured share.
 */
function injectFaults(sim: ProxmoxSimulator): void {
  const f = sim.faults;
  // Mutating calls: 12% refused before dispatch (lock timeout, 503), 6% executed but answered 502,
  // 6% executed with the connection dropped: 1 - 0.94 * 0.94 * 0.94 * 0.94 ≈ 22%.
  // The first two mutating POSTs on each cluster fail after dispatch (502), the next two are dropped.
  // A run sends only about 60 mutating requests, so the 6% rates below leave these faults, the ones
  // that test exactly-once, to luck: 0.94^60 ≈ 2% of runs drew no drop at all (one CI run at seed 8 did).
  f.errorRate({ method: 'POST', path: '/nodes/**', times: 2, status: 502, message: 'Bad Gateway', afterDispatch: true });
  f.dropAfterDispatch({ method: 'POST', path: '/nodes/**', times: 2 });
  for (const method of ['POST', 'PUT', 'DELETE']) {
    f.errorRate({ method, path: '/nodes/**', rate: 0.06, status: 500 });
    f.errorRate({ method, path: '/nodes/**', rate: 0.06, status: 503, message: 'Service Unavailable' });
    f.errorRate({ method, path: '/nodes/**', rate: 0.06, status: 502, message: 'Bad Gateway', afterDispatch: true });
    f.dropAfterDispatch({ method, path: '/nodes/**', rate: 0.06 });
  }
  // Reads (preflight, re-check, task polls, task lists): 1 - 0.88 * 0.88 ≈ 22.5%, as a loaded pveproxy
  // or a flaky link between nodes answers them (transient in Proxmox's taxonomy: docs/proxmox-client.md).
  f.errorRate({ method: 'GET', path: '/**', rate: 0.12, status: 596, message: 'Broken pipe' });
  f.errorRate({ method: 'GET', path: '/**', rate: 0.12, status: 503, message: 'Service Unavailable' });
}

async function runFlow(run: FlowRun, startAt: number): Promise<void> {
  const { flow } = run;
  await sleep(startAt);
  let t = Date.now();
  const plan = await env.call('POST', '/v1/actions/plan', {
    token: AGENT,
    idempotencyKey: `chaos-${SEED}-${flow.id}`,
    body: { action: flow.action, environment: flow.environment, target: { vmid: flow.guest.vmid }, params: flow.params, reason: `chaos ${flow.id}` },
  });
  run.answers.push({ step: 'plan', status: plan.status, code: plan.body?.code, ms: Date.now() - t, retries: plan.retried.length });
  if (plan.status !== 201) {
    run.error = `plan answered ${plan.status}: ${JSON.stringify(plan.body)}`;
    return;
  }
  run.plan = plan.body;
  run.planId = plan.body.planId;
  for (const step of flow.steps) {
    if (step.do === 'change-guest') {
      const sim = env.sims[flow.environment];
      const g = sim.model.findGuest(flow.guest.vmid)!;
      if (g.status === 'running') sim.model.markStopped(g);
      else sim.model.markRunning(g);
      run.answers.push({ step: step.do, status: 0 });
      continue;
    }
    t = Date.now();
    const res =
      step.do === 'apply'
        ? await env.call('POST', '/v1/actions/apply', { token: AGENT, body: { planId: run.planId, requestHash: plan.body.requestHash } })
        : await env.call('POST', `/v1/actions/${run.planId}/approvals`, { token: step.token, body: { decision: step.do } });
    run.answers.push({ step: step.do, status: res.status, code: res.body?.code, ms: Date.now() - t, retries: res.retried.length });
  }
}

async function waitTerminal(run: FlowRun, deadline: number): Promise<void> {
  while (run.planId && !run.final && Date.now() < deadline) {
    const res = await env.call('GET', `/v1/actions/${run.planId}`, { token: AGENT, deadlineMs: Math.max(1000, deadline - Date.now()) });
    if (res.status === 200 && TERMINAL.has(res.body?.status)) {
      run.final = res.body;
      return;
    }
    await sleep(3000);
  }
}

describe('chaos: 100 flows, 10 worker SIGKILLs, a Temporal restart, 20% Proxmox faults', () => {
  it('ends every flow in its expected state, with every mutation exactly once and an intact audit chain', async () => {
    const t0 = Date.now();
    for (const f of flows.filter((x) => x.failTask)) {
      const kind = f.guest.type === 'qemu' ? 'qemu' : 'lxc';
      env.sims[f.environment].faults.failTasks(`start failed: QEMU exited with code 1 (chaos ${f.id})`, { path: `/nodes/*/${kind}/${f.guest.vmid}/status/start` });
    }
    injectFaults(env.sims.lab);
    injectFaults(env.sims.prod);

    // The schedule, all from the seed: when each flow starts, when each kill lands (counted from the
    // moment the previous worker polled), and in which worker's lifetime the dev server restarts.
    // Flows meant to expire start first: they are the ones that wait out the whole TTL.
    const startAt = flows.map((f) => Math.floor(random() * (f.expect.status === 'expired' ? 5000 : START_WINDOW_MS)));
    const killAfterMs = Array.from({ length: KILLS }, () => 1000 + Math.floor(random() * 5000));
    const restartDuring = 2 + Math.floor(random() * 5);
    const restartAfterMs = Math.floor(random() * 2000);
    const restartDownMs = 500 + Math.floor(random() * 2000);

    await env.worker.start();
    const runs: FlowRun[] = flows.map((flow) => ({ flow, answers: [] }));
    const driving = Promise.all(runs.map((r, i) => runFlow(r, startAt[i]!).catch((err: unknown) => void (r.error = String(err)))));

    // The chaos: kill, restart; once, the Temporal dev server goes down and comes back while a worker runs.
    let kills = 0;
    let progressAfterRestart = false;
    const chaos = (async () => {
      for (let k = 0; k < KILLS; k++) {
        if (k === restartDuring) {
          await sleep(restartAfterMs);
          log(`[chaos] restarting the Temporal dev server (down ${restartDownMs} ms)`);
          await env.temporal.restart(restartDownMs);
          // The worker that lived through the restart must carry on: it is the only audit writer, so a
          // record appended now is its work after reconnecting.
          const before = (await readRecords(env.auditFile)).length;
          for (let i = 0; i < 60 && !progressAfterRestart; i++) {
            await sleep(500);
            progressAfterRestart = (await readRecords(env.auditFile)).length > before;
          }
        }
        await sleep(killAfterMs[k]!);
        const running = env.sims.lab.model.tasks().concat(env.sims.prod.model.tasks()).filter((t) => t.status === 'running').length;
        log(`[chaos] SIGKILL #${k + 1} (${running} Proxmox tasks running)`);
        await env.worker.kill();
        kills++;
        await env.worker.start();
      }
    })();
    await chaos;
    await driving;
    const deadline = Date.now() + (PLAN_TTL_SECONDS + 180) * 1000;
    await Promise.all(runs.map((r) => waitTerminal(r, deadline)));
    const workerLog = env.worker.output();
    await env.worker.stop();
    const durationS = Math.round((Date.now() - t0) / 1000);

    // ---- The figures ------------------------------------------------------------------------------
    const sims = [env.sims.lab, env.sims.prod];
    const hits: Record<string, number> = {};
    for (const s of sims) for (const [k, v] of Object.entries(s.faults.hits())) hits[k] = (hits[k] ?? 0) + v;
    const injected = Object.entries(hits).filter(([k]) => k !== 'task-error').reduce((n, [, v]) => n + v, 0);
    const requests = sims.reduce((n, s) => n + s.requestCount(), 0);
    const duplicates = sims.flatMap((s) => s.mutations.duplicates());
    const lost = runs.filter((r) => !r.final);
    const wrong = runs.filter((r) => r.final && !matches(r));
    const byStatus: Record<string, number> = {};
    for (const r of runs) byStatus[r.final?.status ?? 'lost'] = (byStatus[r.final?.status ?? 'lost'] ?? 0) + 1;
    const api5xx = [...env.statuses].filter(([s]) => typeof s === 'number' && s >= 500 && s !== 503);
    const verify = spawnSync(process.execPath, ['bin/proxmox-agent.mjs', 'audit', 'verify', '--config', env.configPath, '--json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env } });
    const report = JSON.parse(verify.stdout || '{}');
    const records = await readRecords(env.auditFile);

    console.log(
      [
        `[chaos] seed ${SEED}: ${runs.length} flows (${Object.entries(byStatus).map(([k, v]) => `${k} ${v}`).join(', ')}), duration ${durationS} s`,
        `[chaos] worker SIGKILLs ${kills} (worker starts ${env.worker.starts}, ${(env.worker.startMs.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} s spent starting, slowest ${(Math.max(...env.worker.startMs) / 1000).toFixed(1)} s; exits on its own ${env.worker.selfExits}), Temporal dev server restarts ${env.temporal.restarts} (the worker that lived through it kept working: ${progressAfterRestart ? 'yes' : 'NO'})`,
        `[chaos] Proxmox requests ${requests}, transient faults injected ${injected} (${((100 * injected) / requests).toFixed(1)}%) ${JSON.stringify(hits)} (task-error: the failTask flows' permanent failures); mutations ${sims.reduce((n, s) => n + s.mutations.all().length, 0)}`,
        `[chaos] duplicates ${duplicates.length}, lost ${lost.length}, wrong terminal state ${wrong.length}`,
        `[chaos] API answers ${JSON.stringify(Object.fromEntries(env.statuses))}`,
        `[chaos] audit: ${records.length} records, verify ${report.ok ? 'OK' : 'FAILED'} (exit ${verify.status}), ${report.log?.checkpoints?.count ?? 0} signed checkpoints`,
      ].join('\n'),
    );

    // ---- The verdict ------------------------------------------------------------------------------
    const describeRun = (r: FlowRun) =>
      `${r.flow.id} plan ${r.planId ?? '-'}: expected ${JSON.stringify(r.flow.expect)}, got ${JSON.stringify(
        r.final ? { status: r.final.status, decision: r.final.decision, risk: r.final.risk, result: r.final.result } : (r.error ?? 'no terminal state'),
      )}, answers ${JSON.stringify(r.answers)}`;
    expect(kills).toBe(KILLS);
    expect(env.temporal.restarts).toBe(1);
    expect(progressAfterRestart, 'the worker made progress after the Temporal restart').toBe(true);
    expect(env.worker.selfExits, 'worker processes that died on their own').toBe(0);
    expect(lost.map(describeRun), `lost flows; worker log tail:\n${workerLog.slice(-6000)}`).toEqual([]);
    expect(wrong.map(describeRun)).toEqual([]);
    expect(duplicates).toEqual([]);
    // Exactly the expected mutations, each once, on the flow's own guest, and nothing else.
    for (const r of runs) {
      const sim = env.sims[r.flow.environment];
      const own = sim.mutations.all().filter((m) => m.vmid === r.flow.guest.vmid);
      expect(own.map((m) => m.op), r.flow.id).toEqual(r.flow.expect.mutation ? [r.flow.expect.mutation] : []);
    }
    expect(sims.reduce((n, s) => n + s.mutations.all().length, 0)).toBe(flows.filter((f) => f.expect.mutation).length);
    // No 5xx other than 503 (Temporal briefly unavailable, retried by the client).
    expect(api5xx).toEqual([]);
    // The faults really happened.
    for (const kind of ['error', 'error-after-dispatch', 'drop-after-dispatch']) expect(hits[kind] ?? 0, kind).toBeGreaterThan(0);
    expect(injected / requests).toBeGreaterThan(FAULT_RATE * 0.75);
    // The audit chain verifies (signatures included), and every plan's outcome is in it exactly once.
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(new Set(records.map((r) => r.eventId)).size).toBe(records.length);
    for (const r of runs) {
      const events = records.filter((x) => x.planId === r.planId).map((x) => x.event);
      const closing = events.filter((e) => CLOSING_EVENTS[r.flow.expect.status].includes(e));
      expect(closing, `${r.flow.id}: ${events.join(', ')}`).toHaveLength(1);
    }
  }, 900_000);
});

const CLOSING_EVENTS: Record<Terminal, string[]> = {
  succeeded: ['action.applied', 'action.noop'],
  failed: ['action.failed', 'apply.refused_stale'],
  rejected: ['plan.rejected'],
  expired: ['plan.expired'],
  denied: ['plan.denied', 'apply.denied'],
};

function matches(r: FlowRun): boolean {
  const e = r.flow.expect;
  const v = r.final;
  if (v.status !== e.status || v.decision !== (e.decision === 'denied' ? 'denied' : v.decision) || r.plan?.decision !== e.decision || r.plan?.risk !== e.risk) return false;
  if (e.outcome && v.result?.outcome !== e.outcome) return false;
  if (e.errorType && v.result?.errorType !== e.errorType) return false;
  return true;
}
