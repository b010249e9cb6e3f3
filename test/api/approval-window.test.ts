/**
 * windowEnd: the start-time cutoff that lets one short listing hold the oldest pending plans. Checked
 * against a model of visibility's count (plans' start times in an array), over spreads from one
 * millisecond to years, with and without a cursor.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { windowEnd } from '../../src/api/plans/approval-queue.js';

const NOW = Date.parse('2026-11-26T04:00:00Z');

/** A count over `starts` that understands the two clauses windowEnd adds to the base query. */
function model(starts: number[]) {
  const calls: string[] = [];
  const count = async (query: string) => {
    calls.push(query);
    const before = /StartTime < "([^"]+)"$/.exec(query);
    const t = before ? Date.parse(before[1]!) : Infinity;
    return starts.filter((s) => s < t).length;
  };
  return { count, calls };
}

const spread = (n: number, from: number, widthMs: number, rand: () => number) => Array.from({ length: n }, () => from + Math.floor(rand() * widthMs));

describe('windowEnd', () => {
  it('finds a cutoff with at least `want` and at most 1,000 plans before it, in few counts', async () => {
    let maxCalls = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1001, max: 20_000 }),
        fc.constantFrom(1, 60_000, 3_600_000, 86_400_000, 365 * 86_400_000),
        fc.constantFrom(1, 51, 150, 450, 500),
        fc.integer({ min: 0, max: 2 ** 31 }),
        async (n, width, want, seed) => {
          let x = seed;
          const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
          const starts = spread(n, NOW - width - 1000, width, rand);
          const { count, calls } = model(starts);
          // As the queue asks: a band of three times `want` (capped at a listing page), or the whole page.
          const most = want >= 150 ? Math.min(1000, 3 * want) : 1000;
          const t = await windowEnd(count, 'BASE', { want, most, from: undefined, now: NOW });
          expect(t).toBeDefined();
          const before = starts.filter((s) => s < t!).length;
          expect(before).toBeGreaterThanOrEqual(want);
          // Over `most` only when more than that many share the last millisecond.
          if (before > most) expect(starts.filter((s) => s === t! - 1).length).toBeGreaterThan(0);
          // Well inside the budget of 64: ~25 to find a bracket a year back, then a few halvings.
          expect(calls.length).toBeLessThanOrEqual(40);
          maxCalls = Math.max(maxCalls, calls.length);
        },
      ),
      { numRuns: 60 },
    );
    expect(maxCalls).toBeGreaterThan(0);
  });

  it('with a cursor, searches forward from it', async () => {
    const starts = Array.from({ length: 10_000 }, (_, i) => NOW - 600_000 + i * 60); // ten minutes, one every 60 ms
    const from = starts[4000]!;
    const { count, calls } = model(starts.filter((s) => s >= from));
    const t = await windowEnd(count, 'BASE', { want: 500, from, now: NOW });
    const before = starts.filter((s) => s >= from && s < t!).length;
    expect(before).toBeGreaterThanOrEqual(500);
    expect(before).toBeLessThanOrEqual(1000);
    expect(calls.length).toBeLessThan(12);
  });

  it('returns the bracket when thousands of plans share one millisecond', async () => {
    const starts = Array.from({ length: 3000 }, () => NOW - 10_000);
    const { count } = model(starts);
    const t = await windowEnd(count, 'BASE', { want: 500, from: undefined, now: NOW });
    expect(t).toBe(NOW - 10_000 + 1);
  });
});
