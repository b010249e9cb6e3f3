import { mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { AuditEventInput, AuditReceipt } from '../activities/types.js';
import type { Logger } from '../logging.js';
import { GENESIS_HEAD, sealBatch, type AuditHead, type AuditRecord } from './record.js';
import type { SignedCheckpoint } from './signing.js';
import { createAuditStore, type AuditBackend, type AuditStore, type SigningPolicy } from './store.js';

/** `<log>.checkpoints.jsonl`: the signed heads of a file log, beside it. */
export const checkpointsPathFor = (path: string) => `${path}.checkpoints.jsonl`;
export const lockPathFor = (path: string) => `${path}.lock`;

export class AuditStoreLockedError extends Error {
  override readonly name = 'AuditStoreLockedError';
}

/**
 * The embedded audit store: one JSON line per record, fsync'd before `append` resolves, so an
 * activity never completes on evidence that a crash could lose.
 *
 * ONE WRITER PROCESS per file. Appends inside the process are serialized and group-committed (one
 * write and one fsync per batch); a second process must not append, because each process keeps the
 * head in memory and two writers would fork the chain. `<log>.lock` enforces this: opening refuses
 * while another live process on this host holds it, and a lock left by a crashed process (its pid is
 * gone) is taken over. Several workers need the PostgreSQL store. Readers (`audit verify`, the
 * evidence endpoint of an API-only process) use `readRecords`, which takes no lock.
 */
export async function openFileAuditStore(path: string, opts: { signing?: SigningPolicy; log?: Logger } = {}): Promise<AuditStore> {
  await mkdir(dirname(path), { recursive: true });
  const releaseLock = await acquireLock(lockPathFor(path));
  try {
    const backend = await openFileBackend(path, opts.log);
    return await createAuditStore(
      {
        ...backend,
        close: async () => {
          try {
            await backend.close();
          } finally {
            await releaseLock();
          }
        },
      },
      opts,
    );
  } catch (err) {
    await releaseLock();
    throw err;
  }
}

async function openFileBackend(path: string, log?: Logger): Promise<AuditBackend> {
  const { records, validBytes, tornBytes } = await readLog(path);
  const file: FileHandle = await open(path, 'a+');
  let size = validBytes;
  if (tornBytes > 0) {
    // A write cut short by a crash: never acknowledged (fsync comes after the write), so it is not
    // evidence of anything; remove it so the next record starts on a line of its own.
    log?.warn({ file: path, bytes: tornBytes }, 'audit log ended in an incomplete line (crash during a write); removing it');
    await file.truncate(validBytes);
    await file.sync();
  }
  const byEvent = new Map<string, AuditReceipt>(records.map((r) => [r.eventId, { seq: r.seq, hash: r.hash }]));
  let head: AuditHead = records.length ? { seq: records.at(-1)!.seq, hash: records.at(-1)!.hash } : GENESIS_HEAD;
  let broken: Error | undefined;
  const checkpointsPath = checkpointsPathFor(path);

  return {
    description: `file ${path}`,
    async appendBatch(events) {
      if (broken) throw broken;
      const sealed = sealBatch(head, events, (id) => byEvent.get(id));
      if (sealed.records.length > 0) {
        const text = Buffer.from(sealed.records.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');
        try {
          await file.appendFile(text);
          await file.sync();
        } catch (err) {
          // Put the file back to its last durable length; if even that fails, refuse further appends
          // rather than chain onto a line that may be half written.
          await file
            .truncate(size)
            .then(() => file.sync())
            .catch((e: unknown) => {
              broken = new Error(`audit log ${path} is in an unknown state after a failed write: ${(e as Error).message}; restart to repair`);
            });
          throw err;
        }
        size += text.length;
        head = sealed.head;
        for (const r of sealed.records) byEvent.set(r.eventId, { seq: r.seq, hash: r.hash });
      }
      return { receipts: sealed.receipts, head, written: sealed.records.length };
    },
    async forPlan(planId) {
      return (await readRecords(path)).filter((r) => r.planId === planId);
    },
    all: () => readRecords(path),
    head: async () => head,
    async appendCheckpoint(checkpoint) {
      const cp = await open(checkpointsPath, 'a');
      try {
        await cp.appendFile(`${JSON.stringify(checkpoint)}\n`, 'utf8');
        await cp.sync();
      } finally {
        await cp.close();
      }
    },
    checkpoints: () => readCheckpoints(checkpointsPath),
    async close() {
      await file.close();
    },
  };
}

/**
 * A process that runs no worker (an API-only process) reads the log its worker writes: no lock, no
 * appends; `checkpoint()` returns the newest checkpoint the writer has stored.
 */
export function openFileAuditReader(path: string, opts: { publicKeyPem?: string } = {}): AuditStore {
  const checkpointsPath = checkpointsPathFor(path);
  return {
    description: `file ${path} (read-only)`,
    ...(opts.publicKeyPem ? { publicKeyPem: opts.publicKeyPem } : {}),
    append: () => Promise.reject(new Error(`the audit log ${path} is read-only in this process (it runs no worker)`)),
    forPlan: async (planId) => (await readRecords(path)).filter((r) => r.planId === planId),
    all: () => readRecords(path),
    async head() {
      const last = (await readRecords(path)).at(-1);
      return last ? { seq: last.seq, hash: last.hash } : GENESIS_HEAD;
    },
    checkpoints: () => readCheckpoints(checkpointsPath),
    checkpoint: async () => (await readCheckpoints(checkpointsPath)).at(-1),
    close: async () => undefined,
  };
}

/** Every complete record of a log file (a reader may meet a line still being written: it is skipped). */
export async function readRecords(path: string): Promise<AuditRecord[]> {
  return (await readLog(path)).records;
}

export async function readCheckpoints(path: string): Promise<SignedCheckpoint[]> {
  return parseLines<SignedCheckpoint>(path, await readText(path), 'checkpoint').items;
}

async function readLog(path: string): Promise<{ records: AuditRecord[]; validBytes: number; tornBytes: number }> {
  const text = await readText(path);
  const { items, validBytes, tornBytes } = parseLines<AuditRecord>(path, text, 'audit record');
  return { records: items, validBytes, tornBytes };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/**
 * Parse a JSONL file. A final segment without its newline is a write in progress (or cut short by a
 * crash) and is not returned; a bad complete line is an error (that is tampering or corruption, for
 * `verify` to report, not for a reader to skip).
 */
function parseLines<T>(path: string, text: string, what: string): { items: T[]; validBytes: number; tornBytes: number } {
  const end = text.lastIndexOf('\n') + 1;
  const complete = text.slice(0, end);
  const items: T[] = [];
  complete.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      items.push(JSON.parse(line) as T);
    } catch {
      throw new Error(`${path}:${i + 1}: not a JSON ${what}`);
    }
  });
  return { items, validBytes: Buffer.byteLength(complete, 'utf8'), tornBytes: Buffer.byteLength(text, 'utf8') - Buffer.byteLength(complete, 'utf8') };
}

/**
 * An advisory lock file holding `{pid, host, since}`, created exclusively. Refuses while the holder
 * lives; takes over a lock whose process is gone (same host). Returns the release function.
 */
async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  const me = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o644);
      await handle.writeFile(`${JSON.stringify(me)}\n`, 'utf8');
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readLockHolder(lockPath);
    if (holder && holder.host === me.host && !processAlive(holder.pid)) {
      await unlink(lockPath).catch(() => undefined); // stale: its process is gone
      continue;
    }
    const who = holder ? `process ${holder.pid} on ${holder.host} (since ${holder.since})` : 'another process';
    throw new AuditStoreLockedError(
      `the audit log is in use by ${who}: the file store allows one writer process. ` +
        `Use the PostgreSQL audit store for several workers, or remove ${lockPath} if that process is gone.`,
    );
  }
  throw new AuditStoreLockedError(`could not take the audit lock ${lockPath}`);
}

async function readLockHolder(lockPath: string): Promise<{ pid: number; host: string; since: string } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(lockPath, 'utf8')) as { pid?: unknown; host?: unknown; since?: unknown };
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') return { pid: parsed.pid, host: parsed.host, since: String(parsed.since ?? '?') };
  } catch {
    /* unreadable or half written: treat as held by an unknown process */
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
