import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { beginApplying, decideCharge, isSpent, releaseCharge, type Charge } from './ledger.js';
import type { BudgetStore } from './store.js';
import { tryHostLock } from '../locks/host-lock.js';

/** `<audit log>.budgets.json`: the embedded ledger lives beside the file audit store. */
export const budgetLedgerPathFor = (auditFile: string) => `${auditFile}.budgets.json`;

export interface FileBudgetStoreOptions {
  /** How long to wait for another process's lock before failing the call (default 10 s). */
  lockTimeoutMs?: number;
  now?: () => number;
}

/**
 * The embedded budget ledger: one JSON file, rewritten whole (written beside it, fsync'd, renamed
 * over it, so a reader or a crash sees the old or the new ledger, never half of one). Unlike the
 * audit log it has no single-writer rule: the API process reads it and, with `npm run worker` beside
 * `npm run api`, any process may charge. So every operation takes the host lock `<ledger>.lock`
 * (locks/host-lock.ts: freed by the kernel when its process dies, so never taken over) for the time of
 * one read-decide-write, waiting while another process holds it. The ledger only holds
 * charges that still count (the last hour's, and the open plans'), so it stays small.
 */
export async function openFileBudgetStore(path: string, opts: FileBudgetStoreOptions = {}): Promise<BudgetStore> {
  await mkdir(dirname(path), { recursive: true });
  const now = opts.now ?? Date.now;
  const lockPath = `${path}.lock`;
  const lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;

  // In-process calls queue here first, so the lock file only arbitrates between processes.
  let queue: Promise<unknown> = Promise.resolve();
  const locked = <T>(fn: (charges: Charge[]) => { charges?: Charge[]; value: T }): Promise<T> => {
    const run = queue.then(async () => {
      const unlock = await lockFile(lockPath, lockTimeoutMs);
      try {
        const { charges, value } = fn(await readLedger(path));
        if (charges) await writeLedger(path, charges.filter((c) => !isSpent(c, now())));
        return value;
      } finally {
        await unlock();
      }
    });
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    description: `file ${path}`,
    charge: (limits, request) =>
      locked((charges) => {
        const verdict = decideCharge(limits, charges, request, now());
        const fresh = verdict.admitted && !charges.some((c) => c.planId === request.planId);
        return { value: verdict, ...(fresh ? { charges: [...charges, verdict.charge] } : {}) };
      }),
    beginApplying: (planId) =>
      locked<{ ok: true } | { ok: false; lapsedAt: string }>((charges) => {
        const i = charges.findIndex((c) => c.planId === planId);
        if (i < 0) return { value: { ok: true } };
        const begun = beginApplying(charges[i]!, now());
        if (!begun.ok) return { value: { ok: false, lapsedAt: new Date(begun.lapsedAt).toISOString() } };
        if (begun.charge === charges[i]) return { value: { ok: true } };
        const next = [...charges];
        next[i] = begun.charge;
        return { value: { ok: true }, charges: next };
      }),
    release: (planId, ended) =>
      locked((charges) => {
        const i = charges.findIndex((c) => c.planId === planId);
        if (i < 0 || charges[i]!.releasedAt !== undefined) return { value: undefined };
        const next = [...charges];
        next[i] = releaseCharge(charges[i]!, ended, now());
        return { value: undefined, charges: next };
      }),
    // Reads take no lock: the ledger is replaced by rename, never written in place.
    snapshot: async () => ({ charges: await readLedger(path), now: now() }),
    close: async () => {
      await queue;
    },
  };
}

async function readLedger(path: string): Promise<Charge[]> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const parsed = JSON.parse(raw) as { charges?: Charge[] };
  return parsed.charges ?? [];
}

async function writeLedger(path: string, charges: Charge[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ version: 1, charges })}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

/** Takes the ledger's host lock, waiting while another live process holds it; returns its release. */
async function lockFile(lockPath: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    const lock = await tryHostLock(lockPath);
    if (lock) return () => lock.release();
    if (Date.now() > deadline) throw new Error(`the budget ledger ${lockPath} stayed locked for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
  }
}
