/**
 * `npm run bench` still runs end to end, with tiny counts: its own dev server, simulator, worker
 * processes, every phase and every figure of the table. Nothing here is about speed: no figure is
 * compared with anything.
 */
import { describe, expect, it } from 'vitest';
import { benchSettings, runBench } from '../../bench/run.js';

describe('npm run bench (smoke, tiny counts)', () => {
  it('measures every cell and figure and prints them', async () => {
    const settings = {
      ...benchSettings({ BENCH_QUICK: '1' }),
      n1: 2,
      nHigh: 4,
      rounds: 1,
      warmup: 2,
      waiting: 8,
      approvals: 2,
      longPoll: 1,
    };
    const result = await runBench(settings, () => {});

    for (const cell of ['a@1', 'aLocal@1', 'b@1', 'c@1', `a@${settings.concurrency}`, `aLocal@${settings.concurrency}`, `b@${settings.concurrency}`, `c@${settings.concurrency}`]) {
      expect(result.cells[cell]?.n, cell).toBeGreaterThan(0);
    }
    expect(result.cells['cLongPoll@1']?.n).toBe(1);
    expect(result.history.lowRiskPlanApply.length).toBeGreaterThan(0);
    expect(result.history.highRiskApproved.length).toBeGreaterThan(0);
    expect(result.history.floor[0]).toBeGreaterThan(0);
    expect(result.history.floorLocal[0]).toBeGreaterThan(0);
    expect(result.waiting.approvalToSucceeded.n).toBe(2);
    expect(result.waiting.workerRssWaitingMiB).toBeGreaterThan(0);
    expect(result.waiting.approvalList.n).toBe(10);
    expect(result.waiting.approvalListParallel.first.n).toBe(10 * settings.listRounds);
    expect(result.waiting.approvalListParallel.middle.n).toBe(10 * settings.listRounds);
    for (const label of ["a' floor", 'b/a p50', 'b/a throughput', 'c/a p50', "b/a' p50", "b/a' throughput", "c/a' p50", "c/a' throughput", 'history events, low-risk', 'history events, approved high-risk', 'worker RSS', 'last approval → succeeded', 'GET /v1/approvals (limit 50)', '10 parallel GET /v1/approvals', 'status read while Proxmox stalls']) {
      expect(result.table).toContain(label);
    }
  }, 180_000);
});
