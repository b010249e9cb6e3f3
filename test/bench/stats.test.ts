import { describe, expect, it } from 'vitest';
import { fmt, meets, mergeRounds, percentile, renderRows, renderTable, steadyThroughput, summarize } from '../../bench/stats.js';
import { benchSettings } from '../../bench/run.js';

describe('bench arithmetic', () => {
  it('percentiles are nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('throughput counts only what finished while every lane was busy', () => {
    // Two lanes: 0-100, 100-200 (lane 1) and 0-150 (lane 2), which then finds no work at 150.
    const ops = [
      { start: 0, end: 100 },
      { start: 100, end: 200 },
      { start: 0, end: 150 },
    ];
    expect(steadyThroughput(ops, 150)).toBeCloseTo(2 / 0.15);
    const merged = mergeRounds([
      { ops, firstIdle: 150 },
      { ops: [{ start: 1000, end: 1100 }], firstIdle: 1100 },
    ]);
    expect(merged.n).toBe(4);
    expect(merged.opsPerSec).toBeCloseTo(3 / 0.25);
    expect(merged.p50).toBe(100);
    expect(summarize(ops, 1).max).toBe(150);
  });

  it('aims, numbers and the table', () => {
    expect(meets(1.2, { kind: 'max', value: 1.3 })).toBe(true);
    expect(meets(0.7, { kind: 'min', value: 0.75 })).toBe(false);
    expect(meets(Number.NaN, { kind: 'max', value: 1 })).toBe(false);
    expect(fmt(1234.5)).toBe('1,235');
    expect(fmt(12.34)).toBe('12.3');
    expect(fmt(Number.NaN)).toBe('n/a');
    const text = renderRows([
      { label: 'b/a p50', value: 0.9, unit: '×', aim: { kind: 'max', value: 1.3 }, digits: 2 },
      { label: 'RSS', value: 412, unit: 'MiB', aim: { kind: 'max', value: 300 }, digits: 0, note: 'idle 250' },
    ]);
    expect(text).toMatch(/b\/a p50\s+0\.90\s+×\s+≤ 1\.30\s+✓/);
    expect(text).toMatch(/RSS\s+412\s+MiB\s+≤ 300\s+✗\s+idle 250/);
    expect(renderTable(['a', 'b'], [['1', '22']], [false, true]).split('\n')).toEqual(['a   b', '-  --', '1  22']);
  });

  it('settings come from the environment, with small counts for a smoke run', () => {
    expect(benchSettings({})).toMatchObject({ n1: 100, nHigh: 320, concurrency: 32, waiting: 10_000, approvals: 200, workerRuntime: 'built' });
    expect(benchSettings({ BENCH_WORKER_RUNTIME: 'tsx' }).workerRuntime).toBe('tsx');
    expect(() => benchSettings({ BENCH_WORKER_RUNTIME: 'docker' })).toThrow(/BENCH_WORKER_RUNTIME/);
    expect(benchSettings({ BENCH_QUICK: '1', BENCH_WAITING: '12' })).toMatchObject({ concurrency: 4, waiting: 12 });
    expect(benchSettings({ BENCH_WORKER: '{"maxCachedWorkflows":50}' }).workerTuning).toEqual({ maxCachedWorkflows: 50 });
    expect(() => benchSettings({ BENCH_N1: '0' })).toThrow(/BENCH_N1/);
    expect(benchSettings({}).visibilityRps).toBeUndefined();
    expect(benchSettings({ BENCH_VISIBILITY_RPS: '10', BENCH_LIST_ROUNDS: '5' })).toMatchObject({ visibilityRps: 10, listRounds: 5 });
  });
});
