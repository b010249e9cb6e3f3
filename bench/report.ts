/**
 * The printed report: the cells, the figures (ratios to the floor, history events, RSS, latencies,
 * each with its aim) and the CPU of each phase, then the machine. What each one means:
 * docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { CELLS } from './phases/cells.js';
import type { HistoryLengths, Machine, PhaseCpu, StalledReads, WaitingPlans } from './result.js';
import type { BenchSettings } from './settings.js';
import { fmt, renderRows, renderTable, type Aim, type CellResult, type Row } from './stats.js';

const PROCESS_NAMES = ['bench+API', 'worker', 'floor worker', 'simulator', 'temporal'];

const CELL_NAMES: Record<string, string> = {
  a: 'a  floor: Update-with-Start + 1 no-op activity',
  aLocal: "a' floor: Update-with-Start + 1 no-op local activity",
  b: 'b  POST /v1/actions/plan (low risk)',
  c: 'c  plan + apply → succeeded (0 ms task)',
  cLongPoll: "c' the same, seen through GET ?wait= (long poll)",
};

function renderCells(s: BenchSettings, cells: Record<string, CellResult>): string {
  const rows: string[][] = [];
  for (const conc of [1, s.concurrency]) {
    for (const name of CELLS) {
      const c = cells[`${name}@${conc}`]!;
      rows.push([CELL_NAMES[name]!, String(conc), String(c.n), fmt(c.p50, 1), fmt(c.p99, 1), fmt(c.mean, 1), fmt(c.opsPerSec, 1)]);
    }
  }
  const lp = cells['cLongPoll@1'];
  if (lp) rows.push([CELL_NAMES.cLongPoll!, '1', String(lp.n), fmt(lp.p50, 1), fmt(lp.p99, 1), fmt(lp.mean, 1), fmt(lp.opsPerSec, 1)]);
  return renderTable(['operation', 'conc', 'n', 'p50 ms', 'p99 ms', 'mean ms', 'ops/s'], rows, [false, true, true, true, true, true, true]);
}

/** A cell over a floor: its p50 (lower is cheaper) and its throughput (higher is better), as ratios. */
function overFloor(name: string, cell: CellResult, floor: CellResult, conc: number, aims?: { p50: Aim; throughput: Aim }): Row[] {
  return [
    { label: `${name} p50, c=${conc}`, value: cell.p50 / floor.p50, unit: '×', ...(aims ? { aim: aims.p50 } : {}), digits: 2 },
    { label: `${name} throughput, c=${conc}`, value: cell.opsPerSec / floor.opsPerSec, unit: '×', ...(aims ? { aim: aims.throughput } : {}), digits: 2 },
  ];
}

export function buildRows(
  s: BenchSettings,
  cells: Record<string, CellResult>,
  history: HistoryLengths,
  waiting: WaitingPlans,
  stalledReads: StalledReads,
): Row[] {
  const rows: Row[] = [];
  for (const conc of [1, s.concurrency]) {
    const a = cells[`a@${conc}`]!;
    const aLocal = cells[`aLocal@${conc}`]!;
    const b = cells[`b@${conc}`]!;
    const c = cells[`c@${conc}`]!;
    rows.push(
      ...overFloor('b/a', b, a, conc, { p50: { kind: 'max', value: 1.3 }, throughput: { kind: 'min', value: 0.75 } }),
      ...overFloor('c/a', c, a, conc),
      // Against the floor in the plan's own shape: no aims until a quiet run has measured them.
      ...overFloor("b/a'", b, aLocal, conc),
      ...overFloor("c/a'", c, aLocal, conc),
    );
  }
  rows.push(
    // The plan published in the memo (one event per workflow task that changed it) and the re-check as
    // an activity cost 9 events of a plan + apply: the price of reads that never wait on a worker.
    { label: 'history events, low-risk plan + apply', value: Math.max(...history.lowRiskPlanApply), unit: 'events', aim: { kind: 'max', value: 33 }, digits: 0, note: `runs ${history.lowRiskPlanApply.join(', ')}; plan only ${history.planOnly.join(', ')}; floor ${history.floor.join(', ')}; floor a' ${history.floorLocal.join(', ')}` },
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

/** The machine the bench ran on, read at the end (its load average covers the last minutes). */
export function describeMachine(temporalVersion: string): Machine {
  return {
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    free: safeExec('free', ['-g']),
    node: process.version,
    temporal: temporalVersion,
    loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))),
    date: new Date().toISOString(),
  };
}

function safeExec(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unavailable';
  }
}

/** The three tables and the machine line, as `npm run bench` prints them. */
export function renderReport(s: BenchSettings, cells: Record<string, CellResult>, rows: readonly Row[], interference: readonly PhaseCpu[], machine: Machine): string {
  const processNames = s.temporal === 'cluster' ? [...PROCESS_NAMES, 'postgres'] : PROCESS_NAMES;
  return [
    renderCells(s, cells),
    '',
    renderRows(rows),
    '',
    renderTable(
      ['phase', 'wall s', 'others\' cores', 'our CPU s', ...processNames],
      interference.map((i) => [i.phase, fmt(i.wallSeconds, 1), fmt(i.foreignCores, 2), fmt(i.ownCpuSeconds, 1), ...processNames.map((n) => fmt(i.byProcess[n] ?? NaN, 1))]),
      [false, true, true, true, ...processNames.map(() => true)],
    ),
    '',
    `machine: ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.temporal}, load ${machine.loadavgAtEnd.join(' ')}; worker runtime: ${s.workerRuntime}`,
  ].join('\n');
}
