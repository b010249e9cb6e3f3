/**
 * The cells: each operation at concurrency 1 and high, after a warm-up (JIT, connections, caches),
 * measured in rounds interleaved with the other cells so that a burst of noise hits every cell alike;
 * then (c′) at concurrency 1 through the long poll.
 */
import { runLanes, type LaneRun } from '../harness.js';
import type { BenchOperations } from '../operations.js';
import type { BenchEnvironment } from '../setup/environment.js';
import { mergeRounds, type CellResult } from '../stats.js';

/** The cells in the order of the first round; each later round starts one further along. */
export const CELLS = ['a', 'aLocal', 'b', 'c'] as const;
export type CellName = (typeof CELLS)[number];

/** Cells keyed `name@concurrency`, e.g. `b@32` or `aLocal@1` (a′), and `cLongPoll@1`. */
export async function measureCells(bench: BenchEnvironment, ops: BenchOperations): Promise<Record<string, CellResult>> {
  const { settings, log } = bench;
  log('warming up');
  for (const name of CELLS) {
    await runLanes(1, Math.max(2, Math.ceil(settings.warmup / 8)), ops.cells[name]);
    await runLanes(settings.concurrency, settings.warmup, ops.cells[name]);
  }
  const cells: Record<string, CellResult> = {};
  await bench.measure('a/b/c cells', async () => {
    for (const [conc, n] of [[1, settings.n1], [settings.concurrency, settings.nHigh]] as const) {
      const rounds = Object.fromEntries(CELLS.map((name) => [name, [] as LaneRun[]])) as Record<CellName, LaneRun[]>;
      const perRound = Math.ceil(n / settings.rounds);
      for (let r = 0; r < settings.rounds; r++) {
        const order = CELLS.map((_, i, all) => all[(i + r) % all.length]!);
        for (const name of order) {
          log(`round ${r + 1}/${settings.rounds}: ${name} at concurrency ${conc} (${perRound})`);
          rounds[name].push(await runLanes(conc, perRound, ops.cells[name]));
        }
      }
      for (const name of CELLS) cells[`${name}@${conc}`] = mergeRounds(rounds[name]);
    }
  });
  log(`plan + apply through the long poll (${settings.longPoll})`);
  cells['cLongPoll@1'] = mergeRounds([await runLanes(1, settings.longPoll, ops.planAndApplyLongPoll)]);
  return cells;
}
