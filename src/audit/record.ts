import { canonicalJson, sha256Hex } from '../domain/hashing.js';
import type { AuditEventInput } from '../activities/types.js';

/** One line of the audit log. `hash` covers every other field, `prevHash` links it to the line before. */
export interface AuditRecord extends AuditEventInput {
  seq: number;
  time: string;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = `sha256:${'0'.repeat(64)}`;

export function sealRecord(body: Omit<AuditRecord, 'hash'>): AuditRecord {
  return { ...body, hash: recordHash(body) };
}

export function recordHash(body: Omit<AuditRecord, 'hash'>): string {
  return `sha256:${sha256Hex(canonicalJson(body))}`;
}

export interface ChainProblem {
  seq: number;
  line: number;
  problem: string;
}

/** Walk the chain; report the first record whose sequence, link or own hash is wrong. */
export function verifyChain(records: AuditRecord[]): { ok: true; count: number; head: string } | { ok: false; first: ChainProblem } {
  let prev = GENESIS_HASH;
  for (const [i, record] of records.entries()) {
    const { hash, ...body } = record;
    const fail = (problem: string) => ({ ok: false as const, first: { seq: record.seq, line: i + 1, problem } });
    if (record.seq !== i + 1) return fail(`expected seq ${i + 1}, found ${record.seq}`);
    if (record.prevHash !== prev) return fail('prevHash does not match the previous record (deleted, inserted or reordered)');
    if (recordHash(body) !== hash) return fail('record hash does not match its content (edited)');
    prev = hash;
  }
  return { ok: true, count: records.length, head: prev };
}
