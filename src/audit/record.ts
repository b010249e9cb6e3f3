import { canonicalJson, sha256Hex } from '../domain/hashing.js';
import type { AuditEventInput, AuditReceipt } from './events.js';

/**
 * One record of the audit log. `hash` is "sha256:" + SHA-256 over the RFC 8785 canonical JSON of
 * every other field, `prevHash` the hash of the record before it (GENESIS_HASH for the first), so
 * each record commits to the whole log before it. docs/audit.md describes every field.
 */
export interface AuditRecord extends AuditEventInput {
  seq: number;
  time: string;
  prevHash: string;
  hash: string;
}

/** The last record of a chain: its sequence number and hash (seq 0 and GENESIS_HASH when empty). */
export interface AuditHead {
  seq: number;
  hash: string;
}

export const GENESIS_HASH = `sha256:${'0'.repeat(64)}`;
export const GENESIS_HEAD: AuditHead = { seq: 0, hash: GENESIS_HASH };

export function sealRecord(body: Omit<AuditRecord, 'hash'>): AuditRecord {
  return { ...body, hash: recordHash(body) };
}

export function recordHash(body: Omit<AuditRecord, 'hash'>): string {
  return `sha256:${sha256Hex(canonicalJson(body))}`;
}

/**
 * Seal a batch of events onto `head`, in order. Events whose `eventId` is already in the log (`known`)
 * or earlier in the batch are not written again: their receipt is the existing one.
 */
export function sealBatch(
  head: AuditHead,
  events: readonly AuditEventInput[],
  known: (eventId: string) => AuditReceipt | undefined,
  now: () => Date = () => new Date(),
): { records: AuditRecord[]; receipts: AuditReceipt[]; head: AuditHead } {
  const records: AuditRecord[] = [];
  const inBatch = new Map<string, AuditReceipt>();
  let current = head;
  const receipts = events.map((event) => {
    const seen = known(event.eventId) ?? inBatch.get(event.eventId);
    if (seen) return seen;
    const record = sealRecord({ ...event, seq: current.seq + 1, time: now().toISOString(), prevHash: current.hash });
    records.push(record);
    current = { seq: record.seq, hash: record.hash };
    inBatch.set(event.eventId, current);
    return current;
  });
  return { records, receipts, head: current };
}

export interface ChainProblem {
  seq: number;
  /** 1-based position in the log (the line of a JSONL file, the row in seq order of a table). */
  line: number;
  problem: string;
}

/** Walk the chain; report the first record whose sequence, link or own hash is wrong. */
export function verifyChain(records: readonly AuditRecord[]): { ok: true; count: number; head: string } | { ok: false; first: ChainProblem } {
  let prev = GENESIS_HASH;
  for (const [i, record] of records.entries()) {
    const { hash, ...body } = record;
    const fail = (problem: string) => ({ ok: false as const, first: { seq: record.seq, line: i + 1, problem } });
    if (record.seq !== i + 1) return fail(`expected seq ${i + 1}, found ${record.seq} (a record was deleted, inserted or moved)`);
    if (record.prevHash !== prev) return fail('prevHash does not match the previous record (deleted, inserted or reordered)');
    if (recordHash(body) !== hash) return fail('record hash does not match its content (edited)');
    prev = hash;
  }
  return { ok: true, count: records.length, head: prev };
}
