import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GENESIS_HASH, sealRecord, type AuditRecord } from './record.js';
import type { AuditStore } from './store.js';
import type { AuditEventInput, AuditReceipt } from '../activities/types.js';

/**
 * The embedded audit store: one JSON line per record, fsync'd before `append` resolves, so an
 * activity never completes on evidence that a crash could lose. One writer process per file
 * (the worker); appends inside it are serialized by a promise chain.
 */
export async function openFileAuditStore(path: string): Promise<AuditStore> {
  await mkdir(dirname(path), { recursive: true });
  const existing = await readRecords(path);
  const byEvent = new Map<string, AuditReceipt>(existing.map((r) => [r.eventId, { seq: r.seq, hash: r.hash }]));
  let head = existing.at(-1) ?? { seq: 0, hash: GENESIS_HASH };
  const file: FileHandle = await open(path, 'a');
  let queue: Promise<unknown> = Promise.resolve();

  const append = (event: AuditEventInput): Promise<AuditReceipt> => {
    const run = queue.then(async () => {
      const seen = byEvent.get(event.eventId);
      if (seen) return seen; // a retried activity: the record is already there
      const record = sealRecord({ ...event, seq: head.seq + 1, time: new Date().toISOString(), prevHash: head.hash });
      await file.appendFile(`${JSON.stringify(record)}\n`, 'utf8');
      await file.sync();
      head = record;
      const receipt = { seq: record.seq, hash: record.hash };
      byEvent.set(event.eventId, receipt);
      return receipt;
    });
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    append,
    async forPlan(planId) {
      await queue;
      return (await readRecords(path)).filter((r) => r.planId === planId);
    },
    async all() {
      await queue;
      return readRecords(path);
    },
    async close() {
      await queue;
      await file.close();
    },
  };
}

export async function readRecords(path: string): Promise<AuditRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as AuditRecord;
      } catch {
        throw new Error(`${path}:${i + 1}: not a JSON audit record`);
      }
    });
}
