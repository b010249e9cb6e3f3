/**
 * Pure arithmetic and formatting of the benchmark: percentiles, throughput over the steady part of a
 * run, the aims, and the table. No I/O, so it is unit-tested (test/bench/stats.test.ts).
 */

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((x, y) => x - y);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** One operation as the load generator saw it (ms on the performance.now() clock). */
export interface OpTiming {
  start: number;
  end: number;
}

export interface CellResult {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
  /** Operations per second while every lane was busy (see steadyThroughput). */
  opsPerSec: number;
}

/**
 * Closed-loop throughput without the ramp-down: lanes take work until none is left, so near the end
 * fewer than `concurrency` operations are in flight. Count the operations that completed before the
 * first lane ran out of work (`firstIdle`), over the time from the first start to that moment.
 */
export function steadyThroughput(ops: readonly OpTiming[], firstIdle: number): number {
  if (ops.length === 0) return Number.NaN;
  const t0 = Math.min(...ops.map((o) => o.start));
  const done = ops.filter((o) => o.end <= firstIdle).length;
  const seconds = (firstIdle - t0) / 1000;
  return seconds > 0 && done > 0 ? done / seconds : Number.NaN;
}

export function summarize(ops: readonly OpTiming[], opsPerSec: number): CellResult {
  const lat = ops.map((o) => o.end - o.start);
  return {
    n: lat.length,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    mean: lat.length ? lat.reduce((s, x) => s + x, 0) / lat.length : Number.NaN,
    max: lat.length ? Math.max(...lat) : Number.NaN,
    opsPerSec,
  };
}

/**
 * Several rounds of one cell (interleaved with the other cells' rounds, so a burst of load from
 * elsewhere hits every cell alike) merged into one: latencies pooled, throughput = all operations
 * counted in steady windows over the sum of those windows.
 */
export function mergeRounds(rounds: readonly { ops: readonly OpTiming[]; firstIdle: number }[]): CellResult {
  let counted = 0;
  let seconds = 0;
  for (const r of rounds) {
    if (r.ops.length === 0) continue;
    const t0 = Math.min(...r.ops.map((o) => o.start));
    counted += r.ops.filter((o) => o.end <= r.firstIdle).length;
    seconds += (r.firstIdle - t0) / 1000;
  }
  return summarize(
    rounds.flatMap((r) => r.ops),
    seconds > 0 && counted > 0 ? counted / seconds : Number.NaN,
  );
}

export type Aim = { kind: 'max' | 'min'; value: number };

export interface Row {
  label: string;
  value: number;
  unit: string;
  aim?: Aim;
  /** Digits after the point (default: 0 for ≥ 100, 1 for ≥ 10, else 2). */
  digits?: number;
  note?: string;
}

export function meets(value: number, aim: Aim): boolean {
  return Number.isFinite(value) && (aim.kind === 'max' ? value <= aim.value : value >= aim.value);
}

export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** A fixed-width text table: label, value, unit, aim, ✓/✗, note. */
export function renderRows(rows: readonly Row[]): string {
  const cells = rows.map((r) => [
    r.label,
    fmt(r.value, r.digits),
    r.unit,
    r.aim ? `${r.aim.kind === 'max' ? '≤' : '≥'} ${fmt(r.aim.value, r.digits)}` : '',
    r.aim ? (meets(r.value, r.aim) ? '✓' : '✗') : '',
    r.note ?? '',
  ]);
  return renderTable(['figure', 'value', 'unit', 'aim', '', 'note'], cells, [false, true, false, false, false, false]);
}

/** Columns padded to their widest cell; `right` aligns numbers. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[] = []): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => {
        const pad = ' '.repeat(widths[i]! - [...c].length);
        return right[i] ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
