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
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { readRss } from './harness.js';
import { benchOperations } from './operations.js';
import { measureApprovalLists } from './phases/approval-lists.js';
import { measureApprovals } from './phases/approvals.js';
import { measureCells } from './phases/cells.js';
import { historyReader, sampleHistories } from './phases/histories.js';
import { measureStalledReads } from './phases/stalled-reads.js';
import { createWaitingPlans } from './phases/waiting-plans.js';
import { buildRows, describeMachine, renderReport } from './report.js';
import type { BenchResult, HistoryLengths, WaitingPlans } from './result.js';
import { benchSettings, settingsFromArgv, type BenchSettings } from './settings.js';
import { startEnvironment } from './setup/environment.js';

// The bench's entry points for the tests (test/bench, test/integration/bench-smoke.test.ts).
export { benchSettings, type BenchSettings } from './settings.js';
export type { BenchResult } from './result.js';

const started = performance.now();
const progress = (m: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${m}\n`);

/** The phases in order, on one environment; its processes are stopped and its temp directory removed at the end. */
export async function runBench(settings: BenchSettings = benchSettings(), log: (message: string) => void = progress): Promise<BenchResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'pa-bench-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const bench = await startEnvironment({ settings, log, tmp, tag: randomUUID().slice(0, 8), defer: (stop) => cleanups.push(stop) });
    const ops = benchOperations(bench);
    const cells = await measureCells(bench, ops);
    const floorRss = readRss(bench.workers.floor.pid);
    const reader = historyReader(bench.client);
    const histories = await sampleHistories(ops, reader);
    const stalledReads = await measureStalledReads(bench, ops);
    const created = await createWaitingPlans(bench);
    const lists = await measureApprovalLists(bench, created.sampled);
    const approvals = await measureApprovals(bench, ops, reader, created.sampled);

    const history: HistoryLengths = { lowRiskPlanApply: histories.lowRiskPlanApply, highRiskApproved: approvals.highRiskApproved, floor: histories.floor, floorLocal: histories.floorLocal, planOnly: histories.planOnly };
    const waiting: WaitingPlans = {
      plans: settings.waiting,
      createOpsPerSec: created.create.opsPerSec,
      createP50: created.create.p50,
      createP99: created.create.p99,
      workerRssIdleMiB: created.idleRss.rssMiB,
      floorWorkerRssMiB: floorRss.rssMiB,
      workerRssWaitingMiB: created.waitingRss.rssMiB,
      workerRssAfterMiB: approvals.afterRss.rssMiB,
      workerHwmMiB: approvals.afterRss.hwmMiB,
      rssCurve: created.rssCurve,
      approvalToSucceeded: approvals.approvalToSucceeded,
      ...lists,
    };
    const machine = describeMachine(bench.temporal.version);
    const rows = buildRows(settings, cells, history, waiting, stalledReads);
    const table = renderReport(settings, cells, rows, bench.interference, machine);
    return { settings, machine, cells, history, eventTypes: reader.eventTypes, waiting, interference: bench.interference, stalledReads, rows, table };
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log(`cleanup: ${(err as Error).message}`));
    if (settings.keep) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
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
