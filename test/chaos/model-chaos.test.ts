/**
 * Model-based chaos suite: about 60 plans over 3 SHARED guests per cluster (two clusters), driven
 * through the real API process while two worker processes are SIGKILLed and SIGTERMed mid-task, the
 * API process is killed, the Temporal dev server restarts, and Proxmox (the simulator) drops,
 * garbles, delays and refuses requests. An oracle that shares nothing with the implementation
 * (test/chaos/model/oracle.ts) then checks the guarantee from what an outsider can see: the
 * simulators' mutation, request and task-stop logs, the API's final views, and the audit chain.
 *
 *   npm run test:chaos -- test/chaos/model-chaos.test.ts
 *   MODEL_CHAOS_SEED=7 npm run test:chaos -- test/chaos/model-chaos.test.ts    # another schedule
 *   MODEL_CHAOS_VERBOSE=1 ...                                                   # follow the run
 *
 * It prints a table of counts and fails on any violation, naming plan, rule and what was seen; the
 * whole run (observations, verdicts) is written to test-artifacts/model-chaos/seed-<seed>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../../src/simulator/faults.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { judge, requestMatches, RULES, type ChaosEvent, type Decision, type Observations, type PlanRun, type Rule } from './model/oracle.js';
import { buildScenario, modelOf, scenarioPolicy, scenarioTokens, TOKENS, type Approver, type Cluster } from './model/scenario.js';
import { sha256, startModelEnv, type CallResult, type ModelEnv } from './support/model-env.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SEED = Number(process.env.MODEL_CHAOS_SEED ?? 1);
const VERBOSE = Boolean(process.env.MODEL_CHAOS_VERBOSE);
/** Long enough for approvals to land across the outages; the expiring plans wait it out. */
const PLAN_TTL_SECONDS = 90;
/** The reboot freeze starts this long after the config is written (the processes start right after). */
const FREEZE_AFTER_CONFIG_MS = 100_000;
const TIMING = { expireWindowMs: 5000, startWindowMs: 75_000 };
const TASK_MS = 1500;
/** Longer than the workers' shutdown grace: a SIGTERM finds them running. */
const SLOW_TASK_MS = 9000;
const BACKUP_MS = 10_000;
const SHUTDOWN_GRACE_S = 2;
/** Longer than the execute activity's heartbeat timeout (10 s). */
const SLOW_READ_MS = 12_000;
/** After the driver starts: every plan must be terminal by then. */
const FINISH_WITHIN_MS = 280_000;
/** After the last plan ended: late work (a zombie attempt's dispatch, a task still running) shows up. */
const SETTLE_MS = 15_000;
const KILLS = 3;
const TERMS = 3;

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const log = (line: string) => {
  if (VERBOSE) console.log(line);
};

const scenario = buildScenario(rng(SEED), TIMING);
/** Each stream of choices draws from its own generator, so concurrent code does not reorder the draws. */
const streams = { workers: rng(SEED * 7919 + 17), infra: rng(SEED * 7919 + 29), plans: scenario.plans.map((_, i) => rng(SEED * 104_729 + i)) };
let env: ModelEnv;

beforeAll(async () => {
  env = await startModelEnv({
    seed: SEED,
    lab: { nodes: scenario.nodes.lab, guests: scenario.guests.lab },
    prod: { nodes: scenario.nodes.prod, guests: scenario.guests.prod },
    taskDurationMs: TASK_MS,
    policy: (writtenAt) => scenarioPolicy(new Date(writtenAt + FREEZE_AFTER_CONFIG_MS), PLAN_TTL_SECONDS),
    tokens: scenarioTokens(sha256),
    shutdownGraceSeconds: SHUTDOWN_GRACE_S,
    log,
  });
}, 400_000);

afterAll(async () => {
  await env?.stop();
});

/**
 * Proxmox misbehaving. Mutating requests: refused before dispatch (lock timeout, 503), executed but
 * answered 502, executed with the connection dropped, executed and answered 200 with a body that is
 * not JSON; the first POST per cluster is answered 502, the next two are dropped and the next two
 * garbled, and the first config write is garbled, so every run has each of them. Reads: 596/503, 3% answered after 12 s (longer than the
 * execute activity's 10 s heartbeat timeout), and 3% of task status reads garbled. Tasks: backups run 10 s, a fifth of the other tasks 9 s
 * (longer than the workers' 2 s shutdown grace).
 */
function injectFaults(sim: ProxmoxSimulator): void {
  const f = sim.faults;
  f.slowTasks(BACKUP_MS, { method: 'POST', path: '/nodes/*/vzdump' });
  f.slowTasks(SLOW_TASK_MS, { method: 'POST', path: '/nodes/*/qemu/**', rate: 0.2 });
  f.slowTasks(SLOW_TASK_MS, { method: 'DELETE', path: '/nodes/*/qemu/*/snapshot/*', rate: 0.2 });
  f.errorRate({ method: 'POST', path: '/nodes/**', times: 1, status: 502, message: 'Bad Gateway', afterDispatch: true });
  f.dropAfterDispatch({ method: 'POST', path: '/nodes/**', times: 2 });
  f.garbleAfterDispatch({ method: 'POST', path: '/nodes/**', times: 2 });
  f.garbleAfterDispatch({ method: 'PUT', path: '/nodes/*/qemu/*/config', times: 1 });
  for (const [method, path] of [['POST', '/nodes/**'], ['PUT', '/nodes/**'], ['DELETE', '/nodes/*/qemu/**']] as const) {
    f.errorRate({ method, path, rate: 0.04, status: 500 });
    f.errorRate({ method, path, rate: 0.04, status: 503, message: 'Service Unavailable' });
    f.errorRate({ method, path, rate: 0.04, status: 502, message: 'Bad Gateway', afterDispatch: true });
    f.dropAfterDispatch({ method, path, rate: 0.05 });
    f.garbleAfterDispatch({ method, path, rate: 0.05 });
  }
  f.errorRate({ method: 'GET', path: '/nodes/**', rate: 0.04, status: 596, message: 'Broken pipe' });
  f.errorRate({ method: 'GET', path: '/nodes/**', rate: 0.04, status: 503, message: 'Service Unavailable' });
  f.slowResponses(SLOW_READ_MS, { method: 'GET', path: '/nodes/**', rate: 0.03 });
  // A task status read answered 200 with a body cut short, while the task runs on.
  f.garbleAfterDispatch({ method: 'GET', path: '/nodes/*/tasks/*/status', rate: 0.03 });
}

describe('model-based chaos: shared guests, two workers, kills, terms, restarts, lying Proxmox', () => {
  it('keeps every Proxmox mutation to exactly one plan, and says so truthfully', async () => {
    const events: ChaosEvent[] = [];
    const event = (kind: ChaosEvent['kind'], target: string, detail?: string) => {
      events.push({ at: Date.now(), kind, target, ...(detail ? { detail } : {}) });
      log(`[model-chaos] +${((Date.now() - t0) / 1000).toFixed(1)}s ${kind} ${target}${detail ? ` (${detail})` : ''}`);
    };
    injectFaults(env.sims.lab);
    injectFaults(env.sims.prod);
    const t0 = Date.now();
    const freezeAt = env.configWrittenAt + FREEZE_AFTER_CONFIG_MS;
    const runs: PlanRun[] = scenario.plans.map((spec) => ({ spec, steps: [], decisions: [] }));
    const rel = () => Date.now() - t0;

    const step = (run: PlanRun, name: string, r: CallResult) => {
      run.steps.push({
        step: name,
        at: rel(),
        status: r.status,
        ...(typeof r.body?.type === 'string' ? { code: r.body.type.split('/').pop() } : typeof r.body?.status === 'string' ? { code: r.body.status } : {}),
        ...(r.retried.length ? { retried: r.retried } : {}),
      });
      return r;
    };
    const decide = async (run: PlanRun, who: Approver, decision: 'approve' | 'reject') => {
      const at = rel();
      const r = await env.call('POST', `/v1/actions/${run.planId}/approvals`, { token: TOKENS[who], body: { decision, comment: `model chaos ${decision} by ${who}` } });
      const d: Decision = {
        who,
        decision,
        at,
        status: r.status,
        ...(r.status === 202 ? { answered: r.body?.status, ...(typeof r.body?.recorded === 'boolean' ? { recorded: r.body.recorded } : {}) } : typeof r.body?.type === 'string' ? { answered: r.body.type.split('/').pop() } : {}),
        ...(r.retried.length ? { retried: r.retried } : {}),
      };
      run.decisions.push(d);
      step(run, `${decision}:${who}`, r);
    };
    const apply = (run: PlanRun) => env.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: run.planId, requestHash: run.planned.requestHash } }).then((r) => step(run, 'apply', r));
    const cancelRun = async (run: PlanRun, why: string) => {
      const client = await env.temporalClient();
      for (let i = 0; i < 20; i++) {
        try {
          run.cancelledAt ??= Date.now();
          event('cancel', run.spec.label, why);
          await client.workflow.getHandle(run.planId!).cancel();
          return;
        } catch (err) {
          log(`[model-chaos] cancel of ${run.spec.label} failed: ${(err as Error).message}`);
          await sleep(1500);
        }
      }
    };

    async function drive(run: PlanRun, chance: () => number, attempt = 0): Promise<void> {
      const s = run.spec;
      if (attempt === 0) await sleep(s.intent === 'deny-at-apply' ? freezeAt - s.startAtMs - Date.now() : t0 + s.startAtMs - Date.now());
      const plan = step(
        run,
        'plan',
        await env.call('POST', '/v1/actions/plan', {
          token: TOKENS.agent,
          idempotencyKey: `model-chaos-${SEED}-${s.label.replace(/[^A-Za-z0-9.-]/g, "_")}`,
          body: { action: s.action, environment: s.cluster, target: { vmid: s.vmid }, params: s.params, reason: `model chaos ${s.label}` },
        }),
      );
      if (plan.status !== 201) {
        run.driverError = `plan answered ${plan.status}: ${JSON.stringify(plan.body).slice(0, 300)}`;
        return;
      }
      run.planned = plan.body;
      run.planId = plan.body.planId;
      const approveAll = async () => {
        for (const who of s.approvers) await decide(run, who, 'approve');
      };
      switch (s.intent) {
        case 'run':
          await Promise.all(Array.from({ length: s.applies }, () => apply(run)));
          break;
        case 'approve':
          if (s.approvalOrder === 'before') {
            await approveAll();
            await apply(run);
          } else if (s.approvalOrder === 'after') {
            await apply(run);
            await approveAll();
          } else {
            await Promise.all([apply(run), ...s.approvers.map((who) => decide(run, who, 'approve'))]);
          }
          break;
        case 'reject-after-apply':
          await apply(run);
          await sleep(500 + chance() * 1500);
          await decide(run, s.rejecter!, 'reject');
          break;
        case 'reject-first':
          await decide(run, s.rejecter!, 'reject');
          await apply(run);
          break;
        case 'reject-race': {
          await approveAll();
          // Make the apply-time re-check slow, so the rejection lands while it runs.
          // (3 s a read, twice: slow, yet within the few seconds a re-check may take before it gives up.)
          env.sims[s.cluster].faults.slowResponses(3000, { method: 'GET', path: `/nodes/*/qemu/${s.vmid}/**`, times: 2 });
          event('arm-slow-recheck', s.label, `the next 2 reads of ${s.vmid} answered after 3 s`);
          // The rejection goes out right behind the apply: the API reads the plan still approved, and the
          // signal reaches the run while its re-check reads the (slow) guest.
          const applying = apply(run);
          await sleep(chance() * 300);
          await decide(run, s.rejecter!, 'reject');
          await applying;
          break;
        }
        case 'expire':
          await apply(run);
          await approveAll();
          break;
        case 'deny':
          await apply(run);
          break;
        case 'deny-at-apply':
          await approveAll();
          await sleep(freezeAt + 1000 - Date.now());
          await apply(run);
          break;
        case 'cancel': {
          // Cancel while the backup's Proxmox task runs (it runs 10 s). Watched from before the apply
          // is sent: the apply's answer may come late (it waits for the run's re-check).
          const sim = env.sims[s.cluster];
          const watch = (async () => {
            const deadline = Date.now() + 150_000;
            while (Date.now() < deadline && run.cancelledAt === undefined) {
              const req = sim.requests.all().find((r) => r.upid && requestMatches(s.expect.request, r));
              const task = req?.upid ? sim.model.task(req.upid) : undefined;
              if (VERBOSE) log(`[model-chaos] cancel watch ${s.label}: request ${req?.seq ?? 'none'} task ${task?.status ?? 'none'} ${req ? Date.now() - req.time : '-'} ms`);
              if (task?.status === 'running' && Date.now() - req!.time > 2000) await cancelRun(run, `its task ${task.upid} runs`);
              else if (task?.status === 'stopped') break;
              else if (!req && run.steps.some((st) => st.step === 'apply')) {
                const view = await env.call('GET', `/v1/actions/${run.planId}`, { token: TOKENS.agent });
                if (TERMINAL.has(view.body?.status)) break;
              }
              await sleep(400);
            }
          })();
          await apply(run);
          await watch;
          // The plan ended before its task ran (its shared guest was busy: locked by another plan's
          // task at plan time, the plan is denied): an operator cancel needs a running task, so plan
          // the backup again once the guest is free (a new plan, judged like every other), up to 4 times.
          if (run.cancelledAt === undefined && attempt < 4) {
            const notes = `${String(s.params.notes)}-again${attempt + 1}`;
            const params = { ...s.params, notes };
            const again: PlanRun = { spec: { ...s, label: `${s.label} again${attempt + 1}`, params, ...modelOf(s.action, s.vmid, params) }, steps: [], decisions: [] };
            runs.push(again);
            const free = Date.now() + 60_000;
            await sleep(1000);
            while (Date.now() < free && env.sims[s.cluster].model.guest(s.vmid)?.lock) await sleep(250);
            await drive(again, chance, attempt + 1);
          }
          break;
        }
      }
    }

    /** The worker process running a plan's pending activity (Temporal's describe: lastWorkerIdentity is pid@host). */
    async function workerRunning(planId: string): Promise<number | undefined> {
      try {
        const client = await env.temporalClient();
        const d = await client.workflow.getHandle(planId).describe();
        const identity = d.raw.pendingActivities?.[0]?.lastWorkerIdentity ?? '';
        const pid = Number.parseInt(identity, 10);
        const i = env.workers.findIndex((w) => w.running && w.pid === pid);
        return i >= 0 ? i : undefined;
      } catch {
        return undefined;
      }
    }

    /** A slow task that will still run for a while, and the worker waiting on it (when Temporal tells). */
    async function slowTaskTarget(): Promise<{ worker: number; detail: string } | undefined> {
      for (const c of ['lab', 'prod'] as const) {
        const sim = env.sims[c];
        const fresh = sim.requests.all().filter((r) => r.upid && r.faults.includes('slow-task') && Date.now() - r.time < 4500 && sim.model.task(r.upid)?.status === 'running');
        for (const req of fresh) {
          const owners = runs.filter((r) => r.planId && r.spec.cluster === c && requestMatches(r.spec.expect.request, req));
          for (const o of owners) {
            const worker = await workerRunning(o.planId!);
            if (worker !== undefined) return { worker, detail: `${o.spec.label} waits on ${req.upid} (slow task)` };
          }
          if (owners.length) return { worker: Math.floor(streams.workers() * 2), detail: `a slow task ${req.upid} runs (worker not known)` };
        }
      }
      return undefined;
    }

    // The chaos schedule, from the seed: worker kills and terms in one sequence, the Temporal restart
    // and the API kill in another, so that a term waiting for a slow task does not delay the restart.
    const workerSchedule = [
      ...Array.from({ length: KILLS }, () => ({ at: 8000 + streams.workers() * 72_000, kind: 'sigkill' as const })),
      ...Array.from({ length: TERMS }, () => ({ at: 10_000 + streams.workers() * 75_000, kind: 'sigterm' as const })),
    ].sort((a, b) => a.at - b.at);
    const infraSchedule = [
      { at: 35_000 + streams.infra() * 20_000, kind: 'temporal-restart' as const },
      { at: 20_000 + streams.infra() * 50_000, kind: 'api-kill' as const },
    ].sort((a, b) => a.at - b.at);
    let termsWithSlowTask = 0;
    const workerChaos = (async () => {
      for (const a of workerSchedule) {
        await sleep(t0 + a.at - Date.now());
        if (a.kind === 'sigkill') {
          const w = env.workers[Math.floor(streams.workers() * 2)]!;
          if (!w.running) continue;
          event('sigkill', w.name);
          await w.kill();
          await sleep(1000 + streams.workers() * 2000);
          await w.start();
        } else {
          let target: Awaited<ReturnType<typeof slowTaskTarget>>;
          for (let i = 0; i < 40 && !target; i++) {
            target = await slowTaskTarget();
            if (!target) await sleep(500);
          }
          if (target) termsWithSlowTask++;
          const w = env.workers[target?.worker ?? Math.floor(streams.workers() * 2)]!;
          if (!w.running) continue;
          event('sigterm', w.name, target?.detail ?? 'no slow task found running');
          await w.term();
          await w.start();
        }
      }
    })();
    const infraChaos = (async () => {
      for (const a of infraSchedule) {
        await sleep(t0 + a.at - Date.now());
        if (a.kind === 'temporal-restart') {
          // Down longer than a workflow task's 10 s timeout: the tasks in flight when it went down are lost.
          const down = 11_000 + streams.infra() * 3000;
          event('temporal-restart', 'dev server', `down ${Math.round(down)} ms`);
          await env.temporal.restart(down);
        } else {
          event('api-kill', env.api.name);
          await env.api.kill();
          await env.api.start();
        }
      }
    })();
    const chaos = Promise.all([workerChaos, infraChaos]);

    const driving = Promise.all(runs.map((r, i) => drive(r, streams.plans[i]!).catch((err: unknown) => void (r.driverError = String(err)))));
    await driving;
    await chaos;
    log(`[model-chaos] +${(rel() / 1000).toFixed(0)}s driving done; waiting for terminal states`);

    // Wait for every plan to end, then a little longer for late work to show.
    const readView = async (r: PlanRun, wait = false) => {
      const res = await env.call('GET', `/v1/actions/${r.planId}${wait ? '?wait=5s' : ''}`, { token: TOKENS.agent, deadlineMs: 30_000 });
      if (res.status === 200) r.final = res.body;
    };
    while (rel() < FINISH_WITHIN_MS) {
      const open = runs.filter((r) => r.planId && !TERMINAL.has(r.final?.status));
      if (open.length === 0) break;
      for (const r of open) await readView(r);
      await sleep(2000);
    }
    await sleep(SETTLE_MS);
    for (const r of runs.filter((x) => x.planId)) await readView(r);
    const durationS = Math.round(rel() / 1000);

    // ---- What an outsider sees ---------------------------------------------------------------
    const cluster = (c: Cluster) => ({
      mutations: env.sims[c].mutations.all(),
      requests: env.sims[c].requests.all(),
      stops: env.sims[c].taskStops(),
      tasks: env.sims[c].model.tasks(),
    });
    const verify = env.verifyAudit();
    const obs: Observations = {
      t0,
      runs,
      clusters: { lab: cluster('lab'), prod: cluster('prod') },
      audit: { rows: await env.auditRecords(), verify: { exit: verify.exit, output: verify.output } },
      events,
    };
    const { violations } = judge(obs);

    // ---- The table ---------------------------------------------------------------------------
    const tally = (xs: string[]) => Object.entries(xs.reduce<Record<string, number>>((a, x) => ((a[x] = (a[x] ?? 0) + 1), a), {})).sort((a, b) => b[1] - a[1]);
    const fmt = (xs: [string, number][]) => xs.map(([k, v]) => `${k} ${v}`).join(', ') || '-';
    const finalState = (r: PlanRun) =>
      !r.planId ? 'never planned' : !TERMINAL.has(r.final?.status) ? `not terminal (${r.final?.status ?? '?'})` : r.final.status === 'succeeded' ? `succeeded/${r.final.result?.outcome}` : r.final.status === 'failed' ? `failed/${r.final.result?.errorType ?? '?'}` : r.final.status;
    const faults = tally(['lab', 'prod'].flatMap((c) => obs.clusters[c as Cluster].requests.flatMap((r) => r.faults)));
    const stops = ['lab', 'prod'].flatMap((c) => obs.clusters[c as Cluster].stops);
    const byRule = new Map<Rule, number>();
    for (const v of violations) byRule.set(v.rule, (byRule.get(v.rule) ?? 0) + 1);
    const rejectionsRaced = runs.filter((r) => r.spec.intent === 'reject-race');
    const lines = [
      `[model-chaos] seed ${SEED}: ${runs.length} plans over ${scenario.guests.lab.length + scenario.guests.prod.length} shared guests (2 clusters), 2 worker processes + API process, ${durationS} s`,
      `  plans by final state   ${fmt(tally(runs.map(finalState)))}`,
      `  plans by intent        ${fmt(tally(runs.map((r) => r.spec.intent)))}`,
      ...(['lab', 'prod'] as const).map((c) => `  mutations ${c.padEnd(4)}         ${obs.clusters[c].mutations.length} (${fmt(tally(obs.clusters[c].mutations.map((m) => m.op)))})`),
      `  Proxmox requests       ${obs.clusters.lab.requests.length + obs.clusters.prod.requests.length}; faults injected: ${fmt(faults)}`,
      `  task stops             ${stops.length} (${stops.filter((s) => s.wasRunning).length} of a running task)`,
      `  chaos                  worker SIGKILLs ${events.filter((e) => e.kind === 'sigkill').length}, worker SIGTERMs ${events.filter((e) => e.kind === 'sigterm').length} (${termsWithSlowTask} with a slow task running), Temporal restarts ${env.temporal.restarts}, API kills ${events.filter((e) => e.kind === 'api-kill').length}, operator cancels ${events.filter((e) => e.kind === 'cancel').length}`,
      `  races                  plans applied 3x at once ${runs.filter((r) => r.spec.applies > 1).length}; approvals racing the apply ${runs.filter((r) => r.spec.approvalOrder === 'race').length}; rejections during the re-check ${rejectionsRaced.flatMap((r) => r.decisions.filter((d) => d.decision === 'reject')).filter((d) => d.status === 202).length} accepted of ${rejectionsRaced.length}`,
      `  process starts         ${[env.api, ...env.workers].map((p) => `${p.name} ${p.starts}`).join(', ')}; exits on their own ${[env.api, ...env.workers].reduce((n, p) => n + p.selfExits, 0)}`,
      `  API answers            ${JSON.stringify(Object.fromEntries(env.statuses))}`,
      `  audit                  ${obs.audit.rows.length} records, verify exit ${verify.exit}`,
      `  violations by rule     ${violations.length} in all`,
      ...(Object.keys(RULES) as Rule[]).map((rule) => `    ${String(byRule.get(rule) ?? 0).padStart(3)}  ${rule.padEnd(28)} ${RULES[rule]}`),
    ];
    console.log(lines.join('\n'));

    const journal = await env.dispatchRows().catch(() => []);
    const artifacts = join(ROOT, 'test-artifacts', 'model-chaos');
    mkdirSync(artifacts, { recursive: true });
    const reportFile = join(artifacts, `seed-${SEED}.json`);
    writeFileSync(reportFile, JSON.stringify({ seed: SEED, durationS, table: lines, violations, observations: obs, journal, processOutput: Object.fromEntries([env.api, ...env.workers].map((p) => [p.name, p.output().slice(-60_000)])) }, null, 1));

    // A plan that never ended waits on something: its own journal entry, or the one holding its guest.
    const waitedOn = (v: (typeof violations)[number]) => {
      if (v.rule !== 'not-terminal') return '';
      const run = runs.find((r) => r.planId && v.plan?.includes(r.planId));
      const own = journal.find((j) => j.planId === run?.planId);
      const guest = own?.guest ?? (run ? `${run.spec.cluster}/${run.spec.vmid}` : undefined);
      const planId = run?.planId;
      const holders = journal.filter((j) => j.guest === guest && j.planId !== planId && !j.ended && (j.state === 'intent' || j.state === 'dispatched'));
      const at = (j: (typeof journal)[number]) => ({ ...j, intentAt: `+${((j.intentAt - t0) / 1000).toFixed(1)}s` });
      return `\n    journal: ${JSON.stringify({ own: own && at(own), guestHeldBy: holders.map(at) })}`;
    };
    const explained = violations.map((v) => `- [${v.rule}] ${v.plan ?? '(no single plan)'}: ${v.message}\n    seen: ${JSON.stringify(v.evidence).slice(0, 2500)}${waitedOn(v)}`);
    // The chaos must really have happened, or a pass means nothing.
    const harness: string[] = [];
    if (events.filter((e) => e.kind === 'sigkill').length < 1) harness.push('no worker was SIGKILLed');
    if (termsWithSlowTask < 1) harness.push('no SIGTERM landed while a slow task ran');
    if (!events.some((e) => e.kind === 'cancel')) harness.push('no operator cancelled a run while its task ran');
    if (env.temporal.restarts !== 1) harness.push('the Temporal dev server did not restart once');
    for (const kind of ['drop-after-dispatch', 'garbled-after-dispatch', 'error-after-dispatch', 'slow-response', 'slow-task']) {
      if (!faults.some(([k]) => k === kind)) harness.push(`no ${kind} fault was injected`);
    }
    if (runs.some((r) => !r.planId)) harness.push(`plans never made: ${runs.filter((r) => !r.planId).map((r) => `${r.spec.label}: ${r.driverError}`).join('; ')}`);
    expect(explained.join('\n'), `${violations.length} violation(s) of the guarantee (seed ${SEED}; replay with MODEL_CHAOS_SEED=${SEED}; full report ${reportFile})`).toBe('');
    expect(harness, 'the chaos the suite promises').toEqual([]);
  }, 900_000);
});
