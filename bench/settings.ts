/**
 * The bench's settings, from the environment (bench/run.ts's header lists them) and `--temporal` on
 * the command line. Pure, so the unit tests check them (test/bench/stats.test.ts).
 */
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
  /** How the worker process runs (BENCH_WORKER_RUNTIME): see bench/run.ts's header. */
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

/** `--temporal dev|cluster` on the command line overrides BENCH_TEMPORAL. */
export function settingsFromArgv(argv: string[]): BenchSettings {
  const at = argv.indexOf('--temporal');
  const inline = argv.find((a) => a.startsWith('--temporal='))?.slice('--temporal='.length);
  const kind = inline ?? (at >= 0 ? argv[at + 1] : undefined);
  return benchSettings(kind === undefined ? process.env : { ...process.env, BENCH_TEMPORAL: kind });
}
