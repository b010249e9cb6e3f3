import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../logging.js';
import { GENESIS_HEAD, sealBatch, type AuditHead, type AuditRecord } from './record.js';
import { parsePublicKey, publicKeyId, type SignedCheckpoint } from './signing.js';
import { createAuditStore, type AuditBackend, type AuditStore, type SigningPolicy } from './store.js';
import type { AuditEventInput, AuditReceipt } from './events.js';
import { readHostLockHolder, tryHostLock } from '../locks/host-lock.js';

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
 * head in memory and two writers would fork the chain. The host lock `<log>.lock` enforces this
 * (locks/host-lock.ts): opening refuses while another live process on this host holds it, and a
 * crashed holder's lock is freed by the kernel. Several workers need the PostgreSQL store. Readers take no lock: `audit
 * verify` uses `readRecords`, the evidence endpoint of an API-only process `openFileAuditReader`.
 *
 * A plan's records are found through an index (plan id → byte offsets of its lines), built while the
 * log is read at open and extended on every append, so `forPlan` reads a few lines, never the log.
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
  const file: FileHandle = await open(path, 'a+');
  const index = new PlanIndex();
  const byEvent = new Map<string, AuditReceipt>();
  let head: AuditHead = GENESIS_HEAD;
  let size: number;
  try {
    const scanned = await scanLog(file, path, 0, { lines: 0 }, (record, at, length) => {
      byEvent.set(record.eventId, { seq: record.seq, hash: record.hash });
      index.add(record.planId, at, length);
      head = { seq: record.seq, hash: record.hash };
    });
    size = scanned.end;
    if (scanned.torn > 0) {
      // A write cut short by a crash: never acknowledged (fsync comes after the write), so it is not
      // evidence of anything; remove it so the next record starts on a line of its own.
      log?.warn({ file: path, bytes: scanned.torn }, 'audit log ended in an incomplete line (crash during a write); removing it');
      await file.truncate(size);
      await file.sync();
    }
  } catch (err) {
    await file.close();
    throw err;
  }
  let broken: Error | undefined;
  const checkpointsPath = checkpointsPathFor(path);

  return {
    description: `file ${path}`,
    async appendBatch(events) {
      if (broken) throw broken;
      const sealed = sealBatch(head, events, (id) => byEvent.get(id));
      if (sealed.records.length > 0) {
        const lines = sealed.records.map((r) => Buffer.from(`${JSON.stringify(r)}\n`, 'utf8'));
        const text = Buffer.concat(lines);
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
        let at = size;
        sealed.records.forEach((r, i) => {
          index.add(r.planId, at, lines[i]!.length);
          at += lines[i]!.length;
          byEvent.set(r.eventId, { seq: r.seq, hash: r.hash });
        });
        size += text.length;
        head = sealed.head;
      }
      return { receipts: sealed.receipts, head, written: sealed.records.length };
    },
    forPlan: (planId) => index.read(file, path, planId),
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
    // One writer process: the checkpoints this process wrote (or found at open) are all there are.
    singleWriter: true,
    async close() {
      await file.close();
    },
  };
}

/**
 * A process that runs no worker (an API-only process) reads the log its worker writes: no lock, no
 * appends, no signing. It indexes the log at its first request and then, at each request, only the
 * bytes appended since (a file replaced by rotation, or cut shorter, is indexed again from the start),
 * so a request reads the plan's own lines, not the log. `latestCheckpoint()` is the newest checkpoint
 * the writer stored (signed by `publicKeyPem`'s key when given), read the same incremental way.
 */
export function openFileAuditReader(path: string, opts: { publicKeyPem?: string } = {}): AuditStore {
  const checkpointsPath = checkpointsPathFor(path);
  const keyId = opts.publicKeyPem ? publicKeyId(parsePublicKey(opts.publicKeyPem)) : undefined;
  let log: LogFollower | undefined;
  let cps: CheckpointFollower | undefined;
  // One refresh at a time: concurrent requests share the index, and each reads what it needs after it.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  /** Open the log, bring the index up to its current length, and hand the open file to `fn`. */
  const withLog = <T>(fn: (state: LogFollower, file: FileHandle | undefined) => Promise<T>): Promise<T> =>
    serialized(async () => {
      const file = await openIfExists(path, 'r');
      try {
        const stats = file ? await file.stat() : undefined;
        let state = log && stats && log.sameFile(stats) && stats.size >= log.end ? log : new LogFollower(stats);
        log = undefined; // until it is consistent again
        if (file && stats && stats.size > state.end && !(await state.follow(file, path))) {
          // The new bytes do not continue the chain the index holds (the file was rewritten in place):
          // index it again from the start.
          state = new LogFollower(stats);
          await state.follow(file, path);
        }
        log = state;
        return await fn(state, file);
      } finally {
        await file?.close();
      }
    });

  return {
    description: `file ${path} (read-only)`,
    ...(opts.publicKeyPem ? { publicKeyPem: opts.publicKeyPem } : {}),
    append: () => Promise.reject(new Error(`the audit log ${path} is read-only in this process (it runs no worker)`)),
    forPlan: (planId) => withLog((state, file) => (file ? state.index.read(file, path, planId) : Promise.resolve([]))),
    all: () => readRecords(path),
    head: () => withLog(async (state) => state.head),
    checkpoints: () => readCheckpoints(checkpointsPath),
    latestCheckpoint: () =>
      serialized(async () => {
        const file = await openIfExists(checkpointsPath, 'r');
        try {
          const stats = file ? await file.stat() : undefined;
          if (!cps || !stats || !cps.sameFile(stats) || stats.size < cps.end) cps = new CheckpointFollower(stats, keyId);
          if (file && stats && stats.size > cps.end) await cps.follow(file, checkpointsPath);
          return cps.latest;
        } finally {
          await file?.close();
        }
      }),
    close: async () => undefined,
  };
}

/** Plan id → the byte offset and length of each of its lines, in chain order (two numbers a record). */
class PlanIndex {
  private readonly plans = new Map<string, number[]>();

  add(planId: string, offset: number, length: number): void {
    const at = this.plans.get(planId);
    if (at) at.push(offset, length);
    else this.plans.set(planId, [offset, length]);
  }

  /** The plan's records, read at their offsets (one positional read per record). */
  async read(file: FileHandle, path: string, planId: string): Promise<AuditRecord[]> {
    const at = this.plans.get(planId);
    if (!at) return [];
    const records: AuditRecord[] = [];
    for (let i = 0; i < at.length; i += 2) {
      const [offset, length] = [at[i]!, at[i + 1]!];
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await file.read(buffer, 0, length, offset);
      let record: AuditRecord | undefined;
      try {
        record = JSON.parse(buffer.toString('utf8', 0, bytesRead)) as AuditRecord;
      } catch {
        /* reported below */
      }
      if (record?.planId !== planId) throw new Error(`${path}: the record at byte ${offset} is no longer the one indexed for plan ${planId} (the file changed under the index)`);
      records.push(record);
    }
    return records;
  }
}

/** What a reader has indexed of one log file: up to `end` (the end of its last complete line). */
class LogFollower {
  readonly index = new PlanIndex();
  head: AuditHead = GENESIS_HEAD;
  end = 0;
  private readonly lines = { lines: 0 };
  private readonly identity: { dev: number; ino: number } | undefined;

  constructor(stats: Stats | undefined) {
    this.identity = stats ? { dev: stats.dev, ino: stats.ino } : undefined;
  }

  sameFile(stats: Stats): boolean {
    return this.identity !== undefined && this.identity.dev === stats.dev && this.identity.ino === stats.ino;
  }

  /**
   * Index the complete lines after `end`. False when they do not continue the chain indexed so far
   * (the first new record does not follow the head, or `end` is no longer a line boundary): the file
   * was rewritten in place. After false or an error this follower is half updated: discard it.
   */
  async follow(file: FileHandle, path: string): Promise<boolean> {
    const incremental = this.end > 0;
    let first = true;
    let scanned;
    try {
      scanned = await scanLog(file, path, this.end, this.lines, (record, at, length) => {
        if (first && incremental && (record.seq !== this.head.seq + 1 || record.prevHash !== this.head.hash)) throw new NotAContinuation();
        first = false;
        this.index.add(record.planId, at, length);
        this.head = { seq: record.seq, hash: record.hash };
      });
    } catch (err) {
      if (incremental) return false; // start over, from where a bad line is reported as such
      throw err;
    }
    this.end = scanned.end;
    return true;
  }
}

class NotAContinuation extends Error {}

/** The newest checkpoint (by seq) in a checkpoints file, signed by `keyId` when given; read incrementally. */
class CheckpointFollower {
  latest: SignedCheckpoint | undefined;
  end = 0;
  private readonly lines = { lines: 0 };
  private readonly identity: { dev: number; ino: number } | undefined;

  constructor(
    stats: Stats | undefined,
    private readonly keyId: string | undefined,
  ) {
    this.identity = stats ? { dev: stats.dev, ino: stats.ino } : undefined;
  }

  sameFile(stats: Stats): boolean {
    return this.identity !== undefined && this.identity.dev === stats.dev && this.identity.ino === stats.ino;
  }

  async follow(file: FileHandle, path: string): Promise<void> {
    const scanned = await scanLines<SignedCheckpoint>(file, path, this.end, this.lines, 'checkpoint', (cp) => {
      if (this.keyId && cp.keyId !== this.keyId) return;
      if (!this.latest || cp.seq >= this.latest.seq) this.latest = cp;
    });
    this.end = scanned.end;
  }
}

async function openIfExists(path: string, flags: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const SCAN_CHUNK = 1 << 20;

function scanLog(
  file: FileHandle,
  path: string,
  from: number,
  lines: { lines: number },
  onRecord: (record: AuditRecord, offset: number, length: number) => void,
): Promise<{ end: number; torn: number }> {
  return scanLines<AuditRecord>(file, path, from, lines, 'audit record', onRecord);
}

/**
 * Read a JSONL file from byte `from` in chunks (memory: one chunk plus the longest line), calling
 * `onItem` with each complete line's value, byte offset and length (newline included). A final segment
 * without its newline is a write in progress (or cut short by a crash) and is not returned: `end` is
 * where it starts, `torn` its length. A bad complete line is an error (tampering or corruption, for
 * `verify` to report, not for a reader to skip). `lines` counts lines, for messages.
 */
async function scanLines<T>(
  file: FileHandle,
  path: string,
  from: number,
  lines: { lines: number },
  what: string,
  onItem: (item: T, offset: number, length: number) => void,
): Promise<{ end: number; torn: number }> {
  let chunk = Buffer.alloc(SCAN_CHUNK);
  let carry = 0; // bytes at the start of `chunk` left from the previous read (an unfinished line)
  let lineStart = from; // file offset of chunk[0]
  let position = from;
  for (;;) {
    if (carry === chunk.length) {
      const bigger = Buffer.alloc(chunk.length * 2); // a line longer than the chunk
      chunk.copy(bigger, 0, 0, carry);
      chunk = bigger;
    }
    const { bytesRead } = await file.read(chunk, carry, chunk.length - carry, position);
    if (bytesRead === 0) return { end: lineStart, torn: carry };
    position += bytesRead;
    const filled = carry + bytesRead;
    const view = chunk.subarray(0, filled);
    let start = 0;
    for (let nl = view.indexOf(10, start); nl !== -1; nl = view.indexOf(10, start)) {
      lines.lines++;
      const text = view.toString('utf8', start, nl);
      if (text.trim() !== '') {
        let item: T;
        try {
          item = JSON.parse(text) as T;
        } catch {
          throw new Error(`${path}:${lines.lines}: not a JSON ${what}`);
        }
        onItem(item, lineStart + start, nl + 1 - start);
      }
      start = nl + 1;
    }
    chunk.copy(chunk, 0, start, filled);
    carry = filled - start;
    lineStart += start;
  }
}

/** Every complete record of a log file (a reader may meet a line still being written: it is skipped). */
export async function readRecords(path: string): Promise<AuditRecord[]> {
  return parseLines<AuditRecord>(path, await readText(path), 'audit record');
}

export async function readCheckpoints(path: string): Promise<SignedCheckpoint[]> {
  return parseLines<SignedCheckpoint>(path, await readText(path), 'checkpoint');
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
 * Parse a whole JSONL file. A final segment without its newline is a write in progress (or cut short
 * by a crash) and is not returned; a bad complete line is an error (that is tampering or corruption,
 * for `verify` to report, not for a reader to skip).
 */
function parseLines<T>(path: string, text: string, what: string): T[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  const items: T[] = [];
  complete.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      items.push(JSON.parse(line) as T);
    } catch {
      throw new Error(`${path}:${i + 1}: not a JSON ${what}`);
    }
  });
  return items;
}

/**
 * An advisory lock file holding `{pid, host, since}`, created exclusively. Refuses while the holder
 * lives; takes over a lock whose process is gone (same host). Returns the release function.
 */
async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  const lock = await tryHostLock(lockPath);
  if (lock) return () => lock.release();
  const holder = await readHostLockHolder(lockPath);
  const who = holder ? `process ${holder.pid} on ${holder.host} (since ${holder.since})` : 'another process';
  throw new AuditStoreLockedError(
    `the audit log is in use by ${who}: the file store allows one writer process. ` +
      `Use the PostgreSQL audit store for several workers.`,
  );
}
