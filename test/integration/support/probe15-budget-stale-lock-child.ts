/**
 * probe15-budget-stale-lock: one process of the race. Opens the file ledger at argv[2]; for each round
 * r < argv[4], at argv[5] + r * argv[6] ms, charges one plan `<argv[3]>-r<r>` of principal
 * `agent:race-r<r>` against `concurrent: 1`. Process `w1` plants, 60 ms before each round, a lock left
 * by a process that is gone (a crashed worker's). Prints the rounds it was admitted in, as JSON.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { openFileBudgetStore } from '../../../src/budgets/file-store.js';

const [path, prefix, rounds, startAt, roundMs] = process.argv.slice(2) as [string, string, string, string, string];
const store = await openFileBudgetStore(path, { lockTimeoutMs: 5_000 });
const admitted: number[] = [];
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
for (let r = 0; r < Number(rounds); r++) {
  const at = Number(startAt) + r * Number(roundMs);
  if (prefix === 'w1') {
    await sleepUntil(at - 60);
    // Only when no live process holds it ('wx'): the planted lock never replaces a real one.
    try {
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: 2 ** 30, host: hostname(), since: new Date().toISOString() }), { flag: 'wx' });
    } catch {
      /* held right now: no stale lock this round */
    }
  }
  await sleepUntil(at);
  const v = await store.charge({ concurrent: 1 }, { planId: `${prefix}-r${r}`, principal: `agent:race-r${r}`, destructive: false, guest: 'lab/100', expiresAt: Date.now() + 3_600_000 });
  if (v.admitted) admitted.push(r);
}
await store.close();
process.stdout.write(JSON.stringify(admitted));
