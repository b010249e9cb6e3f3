import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  applyClaim,
  decideBegin,
  decideNoop,
  guestKey,
  inFlight,
  intentEntry,
  settleWithoutTask,
  type BeginResult,
  type DispatchEntry,
  type DispatchIntent,
  type DispatchJournal,
} from './journal.js';
import { activeFreezeOf, applyLift, isActive, type Freeze } from '../domain/freeze.js';

/** `<audit log>.dispatch.jsonl`: the file journal lives beside the file audit store, with its one writer. */
export const dispatchJournalPathFor = (auditFile: string) => `${auditFile}.dispatch.jsonl`;

/**
 * The journal of one process: entries in memory, every change appended to a JSON-lines file and
 * fsync'd before the call resolves (the last line of a plan wins when the file is read back). It
 * relies on the file audit store's rule of one writer process per log: several workers need the
 * PostgreSQL journal. Without a path it keeps nothing on disk (tests).
 */
export async function openFileDispatchJournal(path?: string): Promise<DispatchJournal> {
  const entries = new Map<string, DispatchEntry>();
  const freezes = new Map<string, Freeze>();
  let file: FileHandle | undefined;
  if (path) {
    await mkdir(dirname(path), { recursive: true });
    const { entries: read, validBytes } = await readEntries(path);
    for (const line of read) {
      if ('freeze' in line) freezes.set(line.freeze.id, line.freeze);
      else entries.set(line.planId, line);
    }
    file = await open(path, 'a');
    // A line cut short by a crash was never acknowledged (fsync comes after the write): drop it, so
    // the next entry starts on a line of its own.
    if ((await file.stat()).size > validBytes) {
      await file.truncate(validBytes);
      await file.sync();
    }
  }
  // One operation at a time: each decides on the state the previous one left, then persists it.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const aged = (e: DispatchEntry): DispatchEntry => ({ ...e, ageMs: Date.now() - e.intentAt });
  const holderOf = (guest: string) => [...entries.values()].find((e) => e.guest === guest && inFlight(e));
  const claimedBy = (upid: string) => [...entries.values()].find((e) => e.upid === upid)?.planId;
  const persist = async (line: unknown): Promise<void> => {
    if (!file) return;
    await file.appendFile(`${JSON.stringify(line)}\n`);
    await file.sync();
  };
  const save = async (entry: DispatchEntry): Promise<DispatchEntry> => {
    const { ageMs: _age, ...stored } = entry;
    await persist(stored);
    entries.set(entry.planId, entry);
    return aged(entry);
  };
  const saveFreeze = async (freeze: Freeze): Promise<Freeze> => {
    await persist({ freeze });
    freezes.set(freeze.id, freeze);
    return freeze;
  };

  return {
    description: path ? `file ${path}` : 'memory',
    get: async (planId) => {
      const e = entries.get(planId);
      return e && aged(e);
    },
    begin: (intent: DispatchIntent) =>
      serial(async (): Promise<BeginResult> => {
        const own = entries.get(intent.planId);
        const holder = holderOf(guestKey(intent.environment, intent.vmid));
        const decided = decideBegin(intent, own && aged(own), holder && aged(holder));
        if (decided.kind !== 'write') return decided;
        const freeze = activeFreezeOf(freezes.values(), intent.environment);
        if (freeze) return { kind: 'frozen', freeze };
        return { kind: 'begun', entry: await save(intentEntry(intent, Date.now())) };
      }),
    claim: (planId, upid, attempt) => serial(() => save(applyClaim(entries.get(planId), upid, attempt, claimedBy(upid), planId))),
    complete: (planId, attempt) =>
      serial(async () => {
        const own = entries.get(planId);
        if (!own) throw new Error(`no dispatch intent for plan ${planId}`);
        if (own.state === 'done') return aged(own);
        return save({ ...own, state: 'done', attempt: Math.max(own.attempt, attempt) });
      }),
    noop: (intent, note) =>
      serial(async () => {
        const own = entries.get(intent.planId);
        if (decideNoop(own && aged(own)) === 'keep') return aged(own!);
        return save({ ...intentEntry(intent, Date.now()), state: 'noop', note });
      }),
    release: (planId, attempt) =>
      serial(async () => {
        const own = entries.get(planId);
        const settled = settleWithoutTask(own, 'not_dispatched', attempt);
        return settled ? save(settled) : own && aged(own);
      }),
    unknown: (planId, attempt, note) =>
      serial(async () => {
        const own = entries.get(planId);
        const settled = settleWithoutTask(own, 'unknown', attempt, note);
        return settled ? save(settled) : own && aged(own);
      }),
    end: (planId) =>
      serial(async () => {
        const own = entries.get(planId);
        if (!own || own.state !== 'dispatched' || own.ended) return own && aged(own);
        return save({ ...own, ended: true });
      }),
    holder: async (guest) => {
      const h = holderOf(guest);
      return h && aged(h);
    },
    claimedOn: async (guest) =>
      new Map([...entries.values()].filter((e) => e.guest === guest && e.upid !== undefined).map((e) => [e.upid!, e.planId])),
    unknownOn: async (guest) => [...entries.values()].filter((e) => e.guest === guest && e.state === 'unknown').map(aged),
    freeze: (input) => serial(() => saveFreeze({ ...input, at: new Date().toISOString() })),
    lift: (id, by) =>
      serial(async () => {
        const f = freezes.get(id);
        if (!f) return undefined;
        if (!isActive(f)) return { freeze: f, lifted: false };
        return { freeze: await saveFreeze(applyLift(f, by, new Date().toISOString())), lifted: true };
      }),
    freezeById: async (id) => freezes.get(id),
    freezes: async ({ environment, includeLifted } = {}) =>
      [...freezes.values()]
        .filter((f) => (includeLifted || isActive(f)) && (environment === undefined || f.environment === environment))
        .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)),
    sending: async (environment) => [...entries.values()].filter((e) => e.environment === environment && e.state === 'intent').map(aged),
    close: async () => {
      await queue;
      await file?.close();
      file = undefined;
    },
  };
}

type Line = DispatchEntry | { freeze: Freeze };

async function readEntries(path: string): Promise<{ entries: Line[]; validBytes: number }> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], validBytes: 0 };
    throw err;
  }
  const validBytes = raw.lastIndexOf(0x0a) + 1;
  const entries = raw
    .subarray(0, validBytes)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line): Line => {
      const parsed = JSON.parse(line) as Omit<DispatchEntry, 'ageMs'> | { freeze: Freeze };
      return 'freeze' in parsed ? parsed : { ...parsed, ageMs: 0 };
    });
  return { entries, validBytes };
}
