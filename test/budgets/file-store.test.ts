import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';
import type { ChargeRequest } from '../../src/budgets/ledger.js';
import { expectApplyingContract } from './support/applying-contract.js';

const run = promisify(execFile);
const ledgerPath = () => join(mkdtempSync(join(tmpdir(), 'pa-budgets-')), 'audit.jsonl.budgets.json');
const req = (planId: string, o: Partial<ChargeRequest> = {}): ChargeRequest => ({ planId, principal: 'agent:pi', destructive: true, guest: 'lab/100', expiresAt: Date.now() + 3_600_000, ...o });

describe('file budget ledger', () => {
  it('admits exactly the limit when 20 charges race on two stores over one file, and keeps what it admitted', async () => {
    const path = ledgerPath();
    const [a, b] = [await openFileBudgetStore(path), await openFileBudgetStore(path)];
    const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).charge({ perHour: { destructive: 3 } }, req(`p${i}`))));
    const admitted = verdicts.filter((v) => v.admitted);
    expect(admitted).toHaveLength(3);
    for (const v of verdicts) if (!v.admitted) expect(v.refusals).toEqual([expect.objectContaining({ budget: 'destructive', limit: 3, used: 3, freesAt: expect.any(String) })]);
    // A third store opened later reads the same three charges back from the file.
    const c = await openFileBudgetStore(path);
    expect((await c.snapshot()).charges.map((ch) => ch.planId).sort()).toEqual(admitted.map((v) => (v.admitted ? v.charge.planId : '')).sort());
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('admits exactly the limit when four processes race 5 charges each on one file', { timeout: 60_000 }, async () => {
    const path = ledgerPath();
    const child = join(import.meta.dirname, 'support', 'charge-child.ts');
    const startAt = String(Date.now() + 8_000);
    const outputs = await Promise.all(
      ['w1', 'w2', 'w3', 'w4'].map((prefix) => run(process.execPath, ['--import', 'tsx', child, path, prefix, '5', '4', startAt], { cwd: process.cwd() })),
    );
    const admitted = outputs.flatMap((o) => JSON.parse(o.stdout) as string[]);
    expect(admitted).toHaveLength(4);
    const onFile = (JSON.parse(readFileSync(path, 'utf8')) as { charges: { planId: string }[] }).charges.map((c) => c.planId);
    expect(onFile.sort()).toEqual(admitted.sort());
  });

  it('an applying charge holds its slot past its expiry; one not applying by then gives it up and may not begin', async () => {
    const store = await openFileBudgetStore(ledgerPath());
    await expectApplyingContract(store);
    await store.close();
  });

  it('frees a concurrency slot when the plan is released, and is not held back by a lock file a dead process left', async () => {
    const path = ledgerPath();
    // A lock file of a pid that does not run (pid numbers this high are not handed out).
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 2 ** 30, host: (await import('node:os')).hostname() }));
    const store = await openFileBudgetStore(path, { lockTimeoutMs: 2_000 });
    expect((await store.charge({ concurrent: 1 }, req('one'))).admitted).toBe(true);
    expect(await store.charge({ concurrent: 1 }, req('two'))).toMatchObject({ admitted: false, refusals: [{ budget: 'concurrent', heldBy: ['one'] }] });
    await store.release('one', { sent: true });
    expect((await store.charge({ concurrent: 1 }, req('two'))).admitted).toBe(true);
    await store.close();
  });
});
