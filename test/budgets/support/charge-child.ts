/**
 * One process of the file ledger's cross-process race (test/budgets/file-store.test.ts): opens the
 * ledger at argv[2] and charges argv[4] plans named `<argv[3]>-<i>` at once, all against one
 * destructive budget of argv[5], at the instant argv[6] (ms since the epoch: every process starts
 * charging together, whatever its start-up took); prints the planIds admitted as JSON.
 */
import { openFileBudgetStore } from '../../../src/budgets/file-store.js';

const [path, prefix, count, limit, startAt] = process.argv.slice(2) as [string, string, string, string, string];
const store = await openFileBudgetStore(path);
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const verdicts = await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    store.charge({ perHour: { destructive: Number(limit) } }, { planId: `${prefix}-${i}`, principal: 'agent:race', destructive: true, guest: `lab/${i}`, expiresAt: Date.now() + 3_600_000 }),
  ),
);
await store.close();
process.stdout.write(JSON.stringify(verdicts.flatMap((v, i) => (v.admitted ? [`${prefix}-${i}`] : []))));
