/**
 * `npm run bench`: what a plan costs over bare Temporal, on one dev server started here. Prints one
 * table (stdout; progress goes to stderr). What each figure means and how it is measured:
 * docs/benchmarks.md.
 *
 * `npm run bench -- --temporal cluster` (or BENCH_TEMPORAL=cluster): the same on a throw-away real
 * cluster instead (src/temporal/cluster.ts: the Temporal server on PostgreSQL, 4 history shards); the
 * CPU table then has a `postgres` column (the postmaster and its backends).
 *
 * Settings (environment): BENCH_QUICK=1 (tiny counts, for the smoke test), BENCH_N1 / BENCH_N32
 * (samples per cell at concurrency 1 / high), BENCH_CONCURRENCY (high concurrency, 32), BENCH_ROUNDS
 * (each cell is measured in this many rounds interleaved with the other cells, 4), BENCH_WARMUP,
 * BENCH_WAITING (plans left awaiting approval, 10000), BENCH_APPROVALS (of those, approved and timed,
 * 200), BENCH_LONG_POLL (plan + apply runs timed through the API's long poll, 30), BENCH_JSON (write the
 * results there too), BENCH_KEEP=1 (keep the temp directory with the logs), BENCH_WORKER_RUNTIME (how
 * the worker runs: `built`, the default, as the Dockerfile runs it: `npm run build`'s dist/bin/worker.mjs
 * by plain node with its workflow bundle; `tsx`: the sources through tsx with a workflow bundle built
 * ahead; `source`: the sources through tsx, bundling the workflows at start), BENCH_WORKER (JSON
 * merged into the config's `worker` section, e.g. '{"maxCachedWorkflows":100}'), BENCH_LIST_ROUNDS (rounds of
 * ten parallel GET /v1/approvals, for the first page and then a middle page, 3), BENCH_VISIBILITY_RPS
 * (cluster only: the server's `frontend.namespaceRPS.visibility` instead of the configured 100, e.g. 10,
 * its default, to see what the setting buys). With BENCH_KEEP=1 the cluster's server log is kept too.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, WithStartWorkflowOperation } from '@temporalio/client';
import proto, { type temporal } from '@temporalio/proto';
import { pino } from 'pino';
import { parse as parseYaml, stringify } from 'yaml';
import { buildEntryPoints } from '../scripts/build.js';
import { buildWorkflowBundle } from '../scripts/build-workflow-bundle.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logging.js';
import { startService, type RunningService } from '../src/service.js';
import { DEMO_TOKEN_ID, type SimClusterSeed, type SimGuestSeed } from '../src/simulator/index.js';
import { ensureTemporalCli, readTemporalCliVersion, TEMPORAL_SERVER_VERSION } from '../src/temporal/cli-locator.js';
import { connectConnection } from '../src/temporal/connection.js';
import { startTemporalCluster } from '../src/temporal/cluster.js';
import { CLUSTER_HISTORY_SHARDS } from '../src/temporal/cluster-config.js';
import { DevServerError, getFreePort, startDevServer, type DevServerHandle } from '../src/temporal/dev-server.js';
import { floorUpdate, type floorWorkflow } from './floor-workflow.js';
import { CpuMeter, httpClient, processTree, readRss, runLanes, sleep, spawnReady, processCpuSeconds, type Child, type LaneRun } from './harness.js';
import { fmt, mergeRounds, percentile, renderRows, renderTable, type CellResult, type Row } from './stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOKENS = { agent: 'demo-agent-token', approver: 'demo-approver-1-token' };
/** V8's young generation capped at 4 MiB per semi-space, as the Docker image runs the worker. */
const WORKER_V8_FLAG = '--max-semi-space-size=4';
const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied']);

export interface BenchSettings {
  n1: number;
  nHigh: number;
  concurrency: number;
  rounds: number;
  warmup: number;
  waiting: number;
  approvals: number;
  approvalConcurrency: number;
  longPoll: number;
  keep: boolean;
  /** How the worker process runs (BENCH_WORKER_RUNTIME): see the header. */
  workerRuntime: 'built' | 'tsx' | 'source';
  /** Overrides of the config's `worker` section (BENCH_WORKER, JSON), e.g. {"maxCachedWorkflows": 100}. */
  workerTuning: Record<string, unknown>;
  /** The Temporal server (BENCH_TEMPORAL or --temporal): the dev server, or a real cluster on PostgreSQL. */
  temporal: BenchTemporalKind;
  /** The cluster's `frontend.namespaceRPS.visibility` instead of its configured 100 (BENCH_VISIBILITY_RPS; cluster only). */
  visibilityRps?: number;
  /** Rounds of ten parallel GET /v1/approvals (BENCH_LIST_ROUNDS, 3). */
  listRounds: number;
}

export type BenchTemporalKind = 'dev' | 'cluster';

function temporalKind(raw: string | undefined): BenchTemporalKind {
  if (raw === undefined || raw === '' || raw === 'dev') return 'dev';
  if (raw === 'cluster') return 'cluster';
  throw new Error(`BENCH_TEMPORAL (--temporal) must be dev or cluster, got '${raw}'`);
}

function workerRuntime(raw: string | undefined): BenchSettings['workerRuntime'] {
  if (raw === undefined || raw === '') return 'built';
  if (raw === 'built' || raw === 'tsx' || raw === 'source') return raw;
  throw new Error(`BENCH_WORKER_RUNTIME must be built, tsx or source, got '${raw}'`);
}

export function benchSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const quick = env.BENCH_QUICK === '1';
  const int = (name: string, full: number, small: number) => {
    const raw = env[name];
    const n = raw === undefined || raw === '' ? (quick ? small : full) : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${raw}'`);
    return n;
  };
  return {
    n1: int('BENCH_N1', 100, 6),
    nHigh: int('BENCH_N32', 320, 16),
    concurrency: int('BENCH_CONCURRENCY', 32, 4),
    rounds: int('BENCH_ROUNDS', 4, 2),
    warmup: int('BENCH_WARMUP', 64, 4),
    waiting: int('BENCH_WAITING', 10_000, 40),
    approvals: int('BENCH_APPROVALS', 200, 4),
    approvalConcurrency: int('BENCH_APPROVAL_CONCURRENCY', 1, 1),
    longPoll: int('BENCH_LONG_POLL', 30, 2),
    keep: env.BENCH_KEEP === '1',
    workerRuntime: workerRuntime(env.BENCH_WORKER_RUNTIME),
    workerTuning: env.BENCH_WORKER ? (JSON.parse(env.BENCH_WORKER) as Record<string, unknown>) : {},
    temporal: temporalKind(env.BENCH_TEMPORAL),
    ...(env.BENCH_VISIBILITY_RPS ? { visibilityRps: int('BENCH_VISIBILITY_RPS', 100, 100) } : {}),
    listRounds: int('BENCH_LIST_ROUNDS', 3, 1),
  };
}

interface BenchTemporal {
  address: string;
  namespace: string;
  /** For the machine line, e.g. `temporal version … (Server 1.29.1, UI 2.42.1)`. */
  version: string;
  /** Processes to meter: name → pid(s). */
  processes(): Record<string, number | readonly number[]>;
  stop(): Promise<unknown>;
}

/** The dev server on a fresh SQLite file, or a throw-away real cluster (temp directory, free ports). */
async function startBenchTemporal(kind: BenchTemporalKind, tmp: string, log: (message: string) => void, visibilityRps?: number): Promise<BenchTemporal> {
  if (visibilityRps !== undefined && kind !== 'cluster') throw new Error('BENCH_VISIBILITY_RPS needs --temporal cluster');
  if (kind === 'cluster') {
    const cluster = await startTemporalCluster({ log, ...(visibilityRps !== undefined ? { dynamicConfigOverrides: { 'frontend.namespaceRPS.visibility': visibilityRps } } : {}) });
    const postmaster = () => Number(readFileSync(join(cluster.postgresDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    log(`Temporal cluster ${cluster.address} (server pid ${cluster.serverPid}, ${cluster.dir})`);
    return {
      address: cluster.address,
      namespace: cluster.namespace,
      version: `Temporal server ${TEMPORAL_SERVER_VERSION} on PostgreSQL (${CLUSTER_HISTORY_SHARDS} history shards)`,
      processes: () => ({ ...(cluster.serverPid ? { temporal: cluster.serverPid } : {}), postgres: processTree(postmaster()) }),
      // The server's log beside the others (kept with BENCH_KEEP=1): the cluster deletes its own directory.
      stop: async () => {
        try {
          copyFileSync(cluster.serverLog, join(tmp, 'temporal-server.log'));
        } finally {
          await cluster.stop();
        }
      },
    };
  }
  const cliPath = await ensureTemporalCli({ log });
  let server: DevServerHandle | undefined;
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await startDevServer({ cliPath, port: await getFreePort(), dbFile: join(tmp, 'temporal.sqlite'), headless: true, reuseExisting: false, log });
    } catch (err) {
      if (!(err instanceof DevServerError && err.code === 'PORT_IN_USE' && attempt < 3)) throw err;
    }
  }
  const dev = server;
  log(`dev server ${dev.address} (pid ${dev.pid})`);
  return {
    address: dev.address,
    namespace: dev.namespace,
    version: readTemporalCliVersion(cliPath)?.raw ?? 'unknown',
    processes: (): Record<string, number> => (dev.pid ? { temporal: dev.pid } : {}),
    stop: () => dev.stop(),
  };
}

const started = performance.now();
const progress = (m: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${m}\n`);

/** Guests the load runs against: lanes never share a guest while they mutate it. */
const LAB = { node: 'pve-bench', first: 1000, count: 64 };
const BULK = { node: 'pve-bulk', first: 2000, spread: 50 };

function guest(vmid: number, node: string, status: 'running' | 'stopped'): SimGuestSeed {
  return { vmid, type: 'qemu', node, name: `bench-${vmid}`, status, tags: ['bench'], cores: 2, memory: 2048, disks: { scsi0: `local-lvm:vm-${vmid}-disk-0,size=8G` } };
}

export interface BenchResult {
  settings: BenchSettings;
  machine: Record<string, unknown>;
  cells: Record<string, CellResult>;
  history: { lowRiskPlanApply: number[]; highRiskApproved: number[]; floor: number[]; planOnly: number[] };
  /** The events of one run of each kind (type, and the marker's or activity's name). */
  eventTypes: Record<string, string[]>;
  waiting: {
    plans: number;
    createOpsPerSec: number;
    createP50: number;
    createP99: number;
    workerRssIdleMiB: number;
    /** The floor's worker after the cells (every floor run still open and cached), for comparison. */
    floorWorkerRssMiB: number;
    workerRssWaitingMiB: number;
    workerRssAfterMiB: number;
    workerHwmMiB: number;
    /** Worker RSS as the waiting plans were created. */
    rssCurve: { plans: number; rssMiB: number }[];
    approvalToSucceeded: { n: number; p50: number; p99: number; max: number };
    /** GET /v1/approvals?limit=50 with the plans waiting: first pages and middle pages, alternately. */
    approvalList: { n: number; p50: number; max: number };
    /** Ten GET /v1/approvals at once (the first page, default limit 50), `listRounds` times; then the same for the middle page. */
    approvalListParallel: { first: { n: number; p50: number; max: number; rounds: number[] }; middle: { n: number; p50: number; max: number; rounds: number[] } };
  };
  interference: { phase: string; wallSeconds: number; ownCpuSeconds: number; foreignCpuSeconds: number; foreignCores: number; byProcess: Record<string, number> }[];
  /** GET /v1/actions/{id}, one after another, while the plan's apply-time re-check hangs on Proxmox (issue 18). */
  stalledReads: { n: number; p50: number; p99: number; max: number; stallMs: number };
  rows: Row[];
  table: string;
}

export async function runBench(settings: BenchSettings = benchSettings(), log: (message: string) => void = progress): Promise<BenchResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'pa-bench-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const tag = randomUUID().slice(0, 8);
  try {
    // --- Temporal: a dev server (fresh SQLite, headless, random port) or a throw-away cluster.
    const temporal = await startBenchTemporal(settings.temporal, tmp, log, settings.visibilityRps);
    cleanups.push(() => temporal.stop());
    const { address, namespace } = temporal;
    const temporalVersion = temporal.version;

    // --- Proxmox simulators, in their own process, with zero-length tasks.
    const secret = randomUUID();
    const seeds: SimClusterSeed[] = [
      {
        name: 'bench-lab',
        nodes: [LAB.node],
        guests: Array.from({ length: LAB.count }, (_, i) => guest(LAB.first + i, LAB.node, 'running')),
        apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret }],
      },
      {
        name: 'bench-bulk',
        nodes: [BULK.node],
        guests: Array.from({ length: settings.approvals + BULK.spread }, (_, i) => guest(BULK.first + i, BULK.node, 'stopped')),
        apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret }],
      },
    ];
    writeFileSync(join(tmp, 'sim.json'), JSON.stringify({ taskDurationMs: 0, clusters: seeds }));
    const tsx = ['--import', 'tsx'];
    const sim = await spawnReady('simulator', process.execPath, [...tsx, join(ROOT, 'bench/sim-process.ts'), join(tmp, 'sim.json')], {
      cwd: ROOT,
      env: process.env,
      ready: /^simulators /,
      logFile: join(tmp, 'sim.log'),
    });
    cleanups.push(() => sim.stop());
    const simUrls = JSON.parse(sim.readyLine.replace(/^simulators /, '')) as Record<string, string>;

    // --- The service's config: demo tokens and policy, two simulated environments, a file audit log.
    const demoPath = loadConfig({}).path;
    const demoRaw = parseYaml(readFileSync(demoPath, 'utf8')) as { tokens: unknown; policy: { rules?: { match?: { environments?: string[] } }[] } };
    // The demo's rules, less those about its `prod` environment (the config check refuses rules naming none).
    const policy = { ...demoRaw.policy, rules: (demoRaw.policy.rules ?? []).filter((r) => !r.match?.environments?.includes('prod')) };
    const configPath = join(tmp, 'config.yaml');
    const proxmox = (url: string) => ({ url, tokenId: DEMO_TOKEN_ID, tokenSecret: { env: 'BENCH_SIM_SECRET' } });
    // Each environment's Proxmox rate limit (default 5 actions/s) raised, so that it does not cap the load.
    const unlimited = { maxActivitiesPerSecond: 1000 };
    writeFileSync(
      configPath,
      stringify({
        // The limiter stays on (its cost is part of a request), with room for the load.
        server: { host: '127.0.0.1', port: 0, rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } },
        temporal: { namespace, taskQueue: `bench-${tag}` },
        // The worker's own HTTP server on a free port; tuning as configured by default, unless overridden.
        worker: { port: 0, ...settings.workerTuning },
        environments: {
          lab: { tier: 'nonprod', proxmox: proxmox(simUrls['bench-lab']!), ...unlimited },
          bulk: { tier: 'nonprod', proxmox: proxmox(simUrls['bench-bulk']!), ...unlimited },
        },
        tokens: demoRaw.tokens,
        policy,
        audit: { file: join(tmp, 'audit.jsonl') },
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, PROXMOX_AGENT_CONFIG: configPath, BENCH_SIM_SECRET: secret, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
    delete env.PORT;

    // --- The product's worker: its own process, as the Dockerfile runs it (`npm run build`, then
    // `node dist/bin/worker.mjs` with the workflow bundle built beside it), unless BENCH_WORKER_RUNTIME says otherwise.
    // Under the project (its node_modules resolve the bundle's packages), apart from `npm run build`'s own dist/.
    const builtDir = join(ROOT, 'dist', `bench-${tag}`);
    cleanups.push(async () => rmSync(builtDir, { recursive: true, force: true }));
    const built = settings.workerRuntime === 'built' ? await buildEntryPoints(builtDir) : undefined;
    const bundle = built?.workflowBundle ?? (settings.workerRuntime === 'tsx' ? await buildWorkflowBundle(join(tmp, 'workflow-bundle.js')) : undefined);
    const startWorker = () =>
      // The V8 flag as the image's worker command passes it (Dockerfile, docker-compose.temporal.yml).
      spawnReady('worker', process.execPath, [WORKER_V8_FLAG, ...(built ? [built.worker] : [...tsx, join(ROOT, 'src/worker/main.ts')])], {
        cwd: ROOT,
        // MALLOC_ARENA_MAX as the image sets it (Dockerfile).
        env: { MALLOC_ARENA_MAX: '2', ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'info', ...(bundle ? { WORKFLOW_BUNDLE: bundle } : {}) },
        ready: /worker polling/,
        logFile: join(tmp, 'worker.log'),
      });
    // --- The floor's worker: its own process too, SDK defaults.
    const floorQueue = `bench-floor-${tag}`;
    const [firstWorker, floorWorker] = await Promise.all([
      startWorker(),
      spawnReady('floor worker', process.execPath, [...tsx, join(ROOT, 'bench/floor-worker.ts')], {
        cwd: ROOT,
        env: { ...env, BENCH_FLOOR_QUEUE: floorQueue },
        ready: /floor worker polling/,
        logFile: join(tmp, 'floor-worker.log'),
      }),
    ]);
    let worker: Child = firstWorker;
    cleanups.push(() => worker.stop());
    cleanups.push(() => floorWorker.stop());

    // --- The HTTP API in this process (like `npm run api`), beside the floor's client.
    const { config } = loadConfig(env);
    const api: RunningService = await startService({
      config,
      configPath,
      temporal: { address, namespace },
      log: createLogger({ level: env.LOG_LEVEL ?? 'info', destination: pino.destination({ dest: join(tmp, 'api.log'), sync: false }) }),
      worker: false,
      env,
    });
    cleanups.push(() => api.stop());
    const http = httpClient(api.url!, settings.concurrency * 2 + 8);
    cleanups.push(() => http.close());
    const connection = await connectConnection({ address, namespace });
    cleanups.push(() => connection.close());
    const client = new Client({ connection, namespace });

    const meter = new CpuMeter(() => ({ 'bench+API': process.pid, worker: worker.pid, 'floor worker': floorWorker.pid, simulator: sim.pid, ...temporal.processes() }));
    const interference: BenchResult['interference'] = [];
    const measure = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
      meter.start();
      const out = await fn();
      const m = meter.stop();
      interference.push({ phase, ...m, foreignCores: m.foreignCpuSeconds / m.wallSeconds });
      return out;
    };

    // --- The three operations.
    let floorSeq = 0;
    const opA = async () => {
      await client.workflow.executeUpdateWithStart(floorUpdate, {
        args: ['x'],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof floorWorkflow>('floorWorkflow', {
          workflowId: `floor-${tag}-${++floorSeq}`,
          taskQueue: floorQueue,
          workflowIdConflictPolicy: 'FAIL',
        }),
      });
    };
    let snap = 0;
    const plan = async (vmid: number) => {
      const r = await http.call('POST', '/v1/actions/plan', TOKENS.agent, {
        action: 'vm.snapshot.create',
        environment: 'lab',
        target: { vmid },
        params: { snapname: `b${++snap}` },
        reason: 'benchmark',
      });
      if (r.status !== 201 || r.body.status !== 'planned') throw new Error(`plan: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as { planId: string; requestHash: string };
    };
    const getPlan = async (planId: string, query = '') => {
      const r = await http.call('GET', `/v1/actions/${planId}${query}`, TOKENS.agent);
      if (r.status !== 200) throw new Error(`GET ${planId}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as { status: string };
    };
    /**
     * The end of a run, without loading the service with status queries: a run closes in the
     * workflow task that sets its terminal status, and no query can see that status before the task
     * completes; so the close (a history long poll) is the first moment a client could see it. One
     * GET then confirms it through the API.
     */
    const waitTerminal = async (planId: string, timeoutMs = 60_000) => {
      const timer = sleep(timeoutMs).then(() => {
        throw new Error(`plan ${planId} did not end within ${timeoutMs} ms`);
      });
      await Promise.race([client.workflow.getHandle(planId).result(), timer]);
      return getPlan(planId);
    };
    /** The same through the API only, as an agent would: the long poll, from status to status. */
    const waitTerminalLongPoll = async (planId: string, from: string) => {
      let status = from;
      for (let i = 0; i < 20 && !TERMINAL.has(status); i++) status = (await getPlan(planId, `?wait=30s&status=${status}`)).status;
      return { status };
    };
    const half = LAB.count / 2;
    const opB = async (seq: number) => void (await plan(LAB.first + half + (seq % half)));
    const appliedPlans: string[] = [];
    const planAndApply = async (lane: number, longPoll: boolean) => {
      const p = await plan(LAB.first + (lane % half));
      const a = await http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash });
      if (a.status !== 202) throw new Error(`apply: ${a.status} ${JSON.stringify(a.body)}`);
      const end = longPoll ? await waitTerminalLongPoll(p.planId, a.body.status) : await waitTerminal(p.planId);
      if (end.status !== 'succeeded') throw new Error(`plan ${p.planId} ended ${JSON.stringify(end)}`);
      appliedPlans.push(p.planId);
    };
    const opC = (_seq: number, lane: number) => planAndApply(lane, false);
    const ops = { a: opA, b: opB, c: opC } as const;
    if (settings.concurrency > half) throw new Error(`BENCH_CONCURRENCY may be at most ${half} (lanes need a guest each)`);

    // --- Warm-up (JIT, connections, caches), then the cells, interleaved round by round.
    log('warming up');
    for (const name of ['a', 'b', 'c'] as const) {
      await runLanes(1, Math.max(2, Math.ceil(settings.warmup / 8)), ops[name]);
      await runLanes(settings.concurrency, settings.warmup, ops[name]);
    }
    const cells: Record<string, CellResult> = {};
    await measure('a/b/c cells', async () => {
      for (const [conc, n] of [[1, settings.n1], [settings.concurrency, settings.nHigh]] as const) {
        const rounds: Record<string, LaneRun[]> = { a: [], b: [], c: [] };
        const perRound = Math.ceil(n / settings.rounds);
        for (let r = 0; r < settings.rounds; r++) {
          const order = (['a', 'b', 'c'] as const).map((_, i, all) => all[(i + r) % 3]!);
          for (const name of order) {
            log(`round ${r + 1}/${settings.rounds}: ${name} at concurrency ${conc} (${perRound})`);
            rounds[name]!.push(await runLanes(conc, perRound, ops[name]));
          }
        }
        for (const name of ['a', 'b', 'c']) cells[`${name}@${conc}`] = mergeRounds(rounds[name]!);
      }
    });
    log(`plan + apply through the long poll (${settings.longPoll})`);
    cells['cLongPoll@1'] = mergeRounds([await runLanes(1, settings.longPoll, (_seq, lane) => planAndApply(lane, true))]);

    const floorRss = readRss(floorWorker.pid);

    // --- History events of each kind of run.
    const eventTypes: Record<string, string[]> = {};
    const historyLength = async (workflowId: string, kind?: string) => {
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      if (kind) {
        const t0 = eventMs(events[0]);
        eventTypes[kind] = events.map((e) => `+${String(Math.round(eventMs(e) - t0)).padStart(5)} ms  ${describeEvent(e)}`);
      }
      return events.length;
    };
    const sample = <T>(xs: T[], k: number) => xs.filter((_, i) => i % Math.max(1, Math.floor(xs.length / k)) === 0).slice(0, k);
    const history: BenchResult['history'] = { lowRiskPlanApply: [], highRiskApproved: [], floor: [], planOnly: [] };
    // Runs of their own, one at a time on a quiet system: their timelines show where a run's time goes.
    appliedPlans.length = 0;
    await runLanes(1, 5, opC);
    history.lowRiskPlanApply = await Promise.all(appliedPlans.map((id) => historyLength(id, 'lowRiskPlanApply')));
    await opA();
    history.floor = [await historyLength(`floor-${tag}-${floorSeq}`, 'floor')];
    const lone = await plan(LAB.first + half);
    history.planOnly = [await historyLength(lone.planId, 'planOnly')];

    // --- Status reads while the target's Proxmox stalls: the apply-time re-check of a plan hangs on a
    // held read (/cluster/resources answers after STALL_MS), and its status is read meanwhile.
    const STALL_MS = 8_000;
    const stalled: number[] = [];
    await measure('status reads while Proxmox stalls', async () => {
      const p = await plan(LAB.first + half + 1);
      const armed = await fetch(new URL('/_sim/faults', simUrls['bench-lab']!), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `PVEAPIToken=${DEMO_TOKEN_ID}=${secret}` },
        body: JSON.stringify({ kind: 'slow-response', delayMs: STALL_MS, method: 'GET', path: '/cluster/resources', times: 1 }),
      });
      if (!armed.ok) throw new Error(`arming the stall: ${armed.status} ${await armed.text()}`);
      let applied = false;
      const applying = http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash }).finally(() => void (applied = true));
      await sleep(300);
      while (!applied && stalled.length < 500) {
        const t0 = performance.now();
        await getPlan(p.planId);
        stalled.push(performance.now() - t0);
        await sleep(10);
      }
      await applying;
    });
    const stalledReads = { n: stalled.length, p50: percentile(stalled, 50), p99: percentile(stalled, 99), max: Math.max(...stalled), stallMs: STALL_MS };

    // --- Plans awaiting approval: a fresh worker process, then `waiting` high-risk plans.
    log('restarting the worker for the waiting-plans phase');
    await worker.stop();
    worker = await startWorker();
    await sleep(2000);
    const idle = readRss(worker.pid);
    const every = Math.max(1, Math.floor(settings.waiting / settings.approvals));
    const sampled: { planId: string; requestHash: string; createdAt: string }[] = [];
    const deletePlan = async (seq: number) => {
      const isSample = seq % every === 0 && seq / every < settings.approvals;
      const vmid = isSample ? BULK.first + seq / every : BULK.first + settings.approvals + (seq % BULK.spread);
      const r = await http.call('POST', '/v1/actions/plan', TOKENS.agent, {
        action: 'vm.delete',
        environment: 'bulk',
        target: { vmid },
        params: {},
        reason: 'benchmark: waits for approval',
      });
      if (r.status !== 201 || r.body.status !== 'awaiting_approval') throw new Error(`plan: ${r.status} ${JSON.stringify(r.body)}`);
      if (isSample) sampled.push({ planId: r.body.planId, requestHash: r.body.requestHash, createdAt: r.body.createdAt });
    };
    log(`creating ${settings.waiting} plans that wait for approval`);
    const rssCurve: { plans: number; rssMiB: number }[] = [{ plans: 0, rssMiB: idle.rssMiB }];
    const step = Math.max(1, Math.ceil(settings.waiting / 10));
    let done = 0;
    const created = await measure('waiting plans: create', () =>
      runLanes(settings.concurrency, settings.waiting, async (seq) => {
        await deletePlan(seq);
        if (++done % step === 0) rssCurve.push({ plans: done, rssMiB: readRss(worker.pid).rssMiB });
      }),
    );
    const createCell = mergeRounds([created]);
    await waitQuiet(worker.pid);
    const waitingRss = readRss(worker.pid);
    log(`worker RSS with ${settings.waiting} waiting: ${fmt(waitingRss.rssMiB)} MiB; listing them for approvers`);

    // What an approver's `approvals list` costs with that many waiting: the first page, and a page
    // from the middle of the queue. Its cursor is built from the middle sampled plan (the samples are
    // spread over the whole queue); its createdAt trails its start by the first workflow task, which
    // makes it a valid position all the same.
    const listLatencies: number[] = [];
    const mid = sampled[Math.floor(sampled.length / 2)];
    const middle = mid ? `${Date.parse(mid.createdAt)}.${mid.planId}` : undefined;
    for (let i = 0; i < 10; i++) {
      const query = i % 2 === 1 && middle ? `&cursor=${middle}` : '';
      const t0 = performance.now();
      const r = await http.call('GET', `/v1/approvals?limit=50${query}`, TOKENS.approver);
      listLatencies.push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`approvals list: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // Ten approvers listing at once (issue 13 item 1): what the visibility rate limit costs.
    const parallelList = async (query: string) => {
      const all: number[] = [];
      const rounds: number[] = [];
      for (let round = 0; round < settings.listRounds; round++) {
        const times = await Promise.all(
          Array.from({ length: 10 }, async () => {
            const t0 = performance.now();
            const r = await http.call('GET', `/v1/approvals${query}`, TOKENS.approver);
            if (r.status !== 200) throw new Error(`approvals list: ${r.status} ${JSON.stringify(r.body)}`);
            return performance.now() - t0;
          }),
        );
        all.push(...times);
        rounds.push(Math.max(...times));
        log(`ten parallel GET /v1/approvals${query.slice(0, 12)}: p50 ${fmt(percentile(times, 50), 0)} ms, max ${fmt(Math.max(...times), 0)} ms`);
      }
      return { n: all.length, p50: percentile(all, 50), max: Math.max(...all), rounds };
    };
    const approvalListParallel = { first: await parallelList(''), middle: await parallelList(middle ? `?cursor=${middle}` : '') };
    log(`approving ${sampled.length}`);

    const approvalLatencies: number[] = [];
    await measure('waiting plans: approvals', () =>
      runLanes(settings.approvalConcurrency, sampled.length, async (seq) => {
        const p = sampled[seq]!;
        const a = await http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash });
        if (a.status !== 202 || a.body.status !== 'awaiting_approval') throw new Error(`apply: ${a.status} ${JSON.stringify(a.body)}`);
        const t0 = performance.now();
        const r = await http.call('POST', `/v1/actions/${p.planId}/approvals`, TOKENS.approver, { decision: 'approve' });
        if (r.status !== 202) throw new Error(`approve: ${r.status} ${JSON.stringify(r.body)}`);
        const end = await waitTerminal(p.planId);
        if (end.status !== 'succeeded') throw new Error(`plan ${p.planId} ended ${JSON.stringify(end)}`);
        approvalLatencies.push(performance.now() - t0);
      }),
    );
    const after = readRss(worker.pid);
    history.highRiskApproved = await Promise.all(sample(sampled.map((s) => s.planId), 5).map((id) => historyLength(id, 'highRiskApproved')));

    const waiting: BenchResult['waiting'] = {
      plans: settings.waiting,
      createOpsPerSec: createCell.opsPerSec,
      createP50: createCell.p50,
      createP99: createCell.p99,
      workerRssIdleMiB: idle.rssMiB,
      floorWorkerRssMiB: floorRss.rssMiB,
      workerRssWaitingMiB: waitingRss.rssMiB,
      workerRssAfterMiB: after.rssMiB,
      workerHwmMiB: after.hwmMiB,
      rssCurve,
      approvalToSucceeded: { n: approvalLatencies.length, p50: percentile(approvalLatencies, 50), p99: percentile(approvalLatencies, 99), max: Math.max(...approvalLatencies) },
      approvalList: { n: listLatencies.length, p50: percentile(listLatencies, 50), max: Math.max(...listLatencies) },
      approvalListParallel,
    };
    const machine = {
      cores: availableParallelism(),
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      free: safeExec('free', ['-g']),
      node: process.version,
      temporal: temporalVersion,
      loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
      date: new Date().toISOString(),
    };
    const rows = buildRows(settings, cells, history, waiting, stalledReads);
    const processNames = settings.temporal === 'cluster' ? [...PROCESS_NAMES, 'postgres'] : PROCESS_NAMES;
    const table = [
      renderCells(settings, cells),
      '',
      renderRows(rows),
      '',
      renderTable(
        ['phase', 'wall s', 'others\' cores', 'our CPU s', ...processNames],
        interference.map((i) => [i.phase, fmt(i.wallSeconds, 1), fmt(i.foreignCores, 2), fmt(i.ownCpuSeconds, 1), ...processNames.map((n) => fmt(i.byProcess[n] ?? NaN, 1))]),
        [false, true, true, true, ...processNames.map(() => true)],
      ),
      '',
      `machine: ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.temporal}, load ${machine.loadavgAtEnd.join(' ')}; worker runtime: ${settings.workerRuntime}`,
    ].join('\n');
    return { settings, machine, cells, history, eventTypes, waiting, interference, stalledReads, rows, table };
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
    if (settings.keep) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

/** Wait until the worker has stopped working through a backlog (under 2% of a core for 2 s). */
async function waitQuiet(pid: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quietFor = 0;
  let last = processCpuSeconds(pid);
  while (Date.now() < deadline && quietFor < 2000) {
    await sleep(500);
    const now = processCpuSeconds(pid);
    quietFor = now - last < 0.01 ? quietFor + 500 : 0;
    last = now;
  }
}

function eventMs(e: temporal.api.history.v1.IHistoryEvent | undefined): number {
  const t = e?.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : 0;
}

/** `MARKER_RECORDED recordAudit`, `ACTIVITY_TASK_SCHEDULED executeAction`, `TIMER_STARTED`... */
function describeEvent(e: temporal.api.history.v1.IHistoryEvent): string {
  const type = String(proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? e.eventType).replace(/^EVENT_TYPE_/, '');
  const marker = e.markerRecordedEventAttributes;
  if (marker) {
    const data = marker.details?.data?.payloads?.[0]?.data ?? marker.details?.patch_data?.payloads?.[0]?.data;
    let detail = marker.markerName ?? '';
    try {
      const parsed = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string; id?: string }) : undefined;
      detail = parsed?.activity_type ?? (parsed?.id ? `patch ${parsed.id}` : detail);
    } catch {
      /* not JSON */
    }
    return `${type} ${detail}`;
  }
  const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
  const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
  const signal = e.workflowExecutionSignaledEventAttributes?.signalName;
  const attrs = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
  return [type, activity ?? update ?? signal ?? (attrs ? Object.keys(attrs).join(',') : '')].filter(Boolean).join(' ');
}

function safeExec(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unavailable';
  }
}

const PROCESS_NAMES = ['bench+API', 'worker', 'floor worker', 'simulator', 'temporal'];

const CELL_NAMES: Record<string, string> = {
  a: 'a  floor: Update-with-Start + 1 no-op activity',
  b: 'b  POST /v1/actions/plan (low risk)',
  c: 'c  plan + apply → succeeded (0 ms task)',
  cLongPoll: "c' the same, seen through GET ?wait= (long poll)",
};

function renderCells(s: BenchSettings, cells: Record<string, CellResult>): string {
  const rows: string[][] = [];
  for (const conc of [1, s.concurrency]) {
    for (const name of ['a', 'b', 'c']) {
      const c = cells[`${name}@${conc}`]!;
      rows.push([CELL_NAMES[name]!, String(conc), String(c.n), fmt(c.p50, 1), fmt(c.p99, 1), fmt(c.mean, 1), fmt(c.opsPerSec, 1)]);
    }
  }
  const lp = cells['cLongPoll@1'];
  if (lp) rows.push([CELL_NAMES.cLongPoll!, '1', String(lp.n), fmt(lp.p50, 1), fmt(lp.p99, 1), fmt(lp.mean, 1), fmt(lp.opsPerSec, 1)]);
  return renderTable(['operation', 'conc', 'n', 'p50 ms', 'p99 ms', 'mean ms', 'ops/s'], rows, [false, true, true, true, true, true, true]);
}

export function buildRows(
  s: BenchSettings,
  cells: Record<string, CellResult>,
  history: BenchResult['history'],
  waiting: BenchResult['waiting'],
  stalledReads: BenchResult['stalledReads'],
): Row[] {
  const rows: Row[] = [];
  for (const conc of [1, s.concurrency]) {
    const a = cells[`a@${conc}`]!;
    const b = cells[`b@${conc}`]!;
    const c = cells[`c@${conc}`]!;
    rows.push(
      { label: `b/a p50, c=${conc}`, value: b.p50 / a.p50, unit: '×', aim: { kind: 'max', value: 1.3 }, digits: 2 },
      { label: `b/a throughput, c=${conc}`, value: b.opsPerSec / a.opsPerSec, unit: '×', aim: { kind: 'min', value: 0.75 }, digits: 2 },
      { label: `c/a p50, c=${conc}`, value: c.p50 / a.p50, unit: '×', digits: 2 },
      { label: `c/a throughput, c=${conc}`, value: c.opsPerSec / a.opsPerSec, unit: '×', digits: 2 },
    );
  }
  rows.push(
    // The plan published in the memo (one event per workflow task that changed it) and the re-check as
    // an activity cost 9 events of a plan + apply: the price of reads that never wait on a worker.
    { label: 'history events, low-risk plan + apply', value: Math.max(...history.lowRiskPlanApply), unit: 'events', aim: { kind: 'max', value: 33 }, digits: 0, note: `runs ${history.lowRiskPlanApply.join(', ')}; plan only ${history.planOnly.join(', ')}; floor ${history.floor.join(', ')}` },
    { label: 'history events, approved high-risk flow', value: Math.max(...history.highRiskApproved), unit: 'events', aim: { kind: 'max', value: 42 }, digits: 0, note: `sampled ${history.highRiskApproved.join(', ')}` },
    {
      label: `status read while Proxmox stalls, p99 (n=${stalledReads.n})`,
      value: stalledReads.p99,
      unit: 'ms',
      aim: { kind: 'max', value: 1000 },
      digits: 0,
      note: `p50 ${fmt(stalledReads.p50, 1)}, max ${fmt(stalledReads.max, 0)}; the re-check held ${stalledReads.stallMs / 1000} s`,
    },
    { label: `worker RSS, ${waiting.plans} plans awaiting approval`, value: waiting.workerRssWaitingMiB, unit: 'MiB', aim: { kind: 'max', value: 300 }, digits: 0, note: `idle ${fmt(waiting.workerRssIdleMiB, 0)}, after approvals ${fmt(waiting.workerRssAfterMiB, 0)}, peak ${fmt(waiting.workerHwmMiB, 0)}; floor worker ${fmt(waiting.floorWorkerRssMiB, 0)}` },
    { label: `last approval → succeeded p99 (n=${waiting.approvalToSucceeded.n})`, value: waiting.approvalToSucceeded.p99, unit: 'ms', aim: { kind: 'max', value: 1000 }, digits: 0, note: `p50 ${fmt(waiting.approvalToSucceeded.p50, 0)}, max ${fmt(waiting.approvalToSucceeded.max, 0)}` },
    { label: `GET /v1/approvals (limit 50), ${waiting.plans} waiting`, value: waiting.approvalList.p50, unit: 'ms', digits: 0, note: `p50 of ${waiting.approvalList.n}, first and middle pages; max ${fmt(waiting.approvalList.max, 0)}` },
    ...(['first', 'middle'] as const).map(
      (page): Row => ({
        label: `10 parallel GET /v1/approvals, ${page} page`,
        value: waiting.approvalListParallel[page].p50,
        unit: 'ms',
        digits: 0,
        note: `p50 of ${waiting.approvalListParallel[page].n}; max ${fmt(waiting.approvalListParallel[page].max, 0)}; slowest per round ${waiting.approvalListParallel[page].rounds.map((m) => fmt(m, 0)).join(', ')}`,
      }),
    ),
    { label: `creating the ${waiting.plans} waiting plans`, value: waiting.createOpsPerSec, unit: 'plans/s', digits: 1, note: `p50 ${fmt(waiting.createP50, 0)} ms, p99 ${fmt(waiting.createP99, 0)} ms at c=${s.concurrency}` },
  );
  return rows;
}

/** `--temporal dev|cluster` on the command line overrides BENCH_TEMPORAL. */
function settingsFromArgv(argv: string[]): BenchSettings {
  const at = argv.indexOf('--temporal');
  const inline = argv.find((a) => a.startsWith('--temporal='))?.slice('--temporal='.length);
  const kind = inline ?? (at >= 0 ? argv[at + 1] : undefined);
  return benchSettings(kind === undefined ? process.env : { ...process.env, BENCH_TEMPORAL: kind });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runBench(settingsFromArgv(process.argv.slice(2)))
    .then((result) => {
      if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, `${JSON.stringify(result, null, 2)}\n`);
      process.stdout.write(`${result.table}\n`);
      progress('done');
      process.exit(0);
    })
    .catch((err: unknown) => {
      progress(`failed: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    });
}
