/**
 * The file store's plan index (issue 12, item 10): a plan's records are read at their offsets, not by
 * reading the whole log again, in the writer (index built at open, kept up to date on append) and in
 * the read-only reader of an API-only process (index built at its first request, then extended from
 * the size it last read). "Bytes read" is the process's own count (`rchar` of /proc/self/io): every
 * read(2)/pread(2) of this process, whatever API made it.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileAuditReader, openFileAuditStore, readRecords } from '../../src/audit/file-store.js';
import { GENESIS_HEAD, sealBatch, verifyChain, type AuditHead, type AuditRecord } from '../../src/audit/record.js';
import type { AuditEventInput } from '../../src/audit/events.js';

const HASH = `sha256:${'a'.repeat(64)}`;
const PLANS = 2000;
const PER_PLAN = 10;
const event = (planId: string, n: number): AuditEventInput => ({ eventId: `${planId}/${n}/e`, planId, event: 'plan.created', requestHash: HASH, detail: { note: 'x'.repeat(120) } });

/** Bytes this process has read so far (every read syscall, from any file). */
function bytesRead(): number {
  return Number(/rchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; bytes: number }> {
  const before = bytesRead();
  const value = await fn();
  return { value, bytes: bytesRead() - before };
}

/** A log of PLANS × PER_PLAN records, the plans' records interleaved as concurrent runs write them. */
function writeLog(path: string, head: AuditHead = GENESIS_HEAD, prefix = 'p'): { records: AuditRecord[]; bytes: number } {
  const events: AuditEventInput[] = [];
  for (let n = 1; n <= PER_PLAN; n++) for (let p = 0; p < PLANS; p++) events.push(event(`${prefix}${p}`, n));
  const { records } = sealBatch(head, events, () => undefined);
  const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
  appendFileSync(path, text);
  return { records, bytes: Buffer.byteLength(text) };
}

const tmpLog = () => join(mkdtempSync(join(tmpdir(), 'pa-audit-index-')), 'audit.jsonl');

describe.runIf(existsSync('/proc/self/io'))('file audit store: a plan\'s records without reading the log', () => {
  it('the writer reads a plan\'s records at their offsets, including records appended since open', async () => {
    const path = tmpLog();
    const { records, bytes: logBytes } = writeLog(path);
    expect(logBytes).toBeGreaterThan(4_000_000);
    const store = await openFileAuditStore(path);

    const { value: got, bytes } = await measured(async () => {
      const out: AuditRecord[][] = [];
      for (let i = 0; i < 20; i++) out.push(await store.forPlan(`p${i * 97}`));
      return out;
    });
    // 20 plans × 10 records of ~330 bytes: a few tens of KB, never the 6 MB log (old code: 20 × 6 MB).
    expect(bytes).toBeLessThan(logBytes / 20);
    expect(got[3]).toEqual(records.filter((r) => r.planId === 'p291'));
    expect(await store.forPlan('nobody')).toEqual([]);

    // Appends land in the index: the new record is found without reading the log again.
    const receipt = await store.append(event('p291', 11));
    const after = await measured(() => store.forPlan('p291'));
    expect(after.bytes).toBeLessThan(logBytes / 100);
    expect(after.value.map((r) => r.seq)).toEqual([...records.filter((r) => r.planId === 'p291').map((r) => r.seq), receipt.seq]);
    expect(after.value.at(-1)).toMatchObject({ eventId: 'p291/11/e', hash: receipt.hash });
    await store.close();
    expect(verifyChain(await readRecords(path)).ok).toBe(true);
  }, 60_000);

  it('the read-only reader indexes once, then reads only what was appended since', async () => {
    const path = tmpLog();
    const { records, bytes: logBytes } = writeLog(path);
    const reader = openFileAuditReader(path);

    // The first request builds the index (one read of the log) ...
    const first = await measured(() => reader.forPlan('p5'));
    expect(first.value).toEqual(records.filter((r) => r.planId === 'p5'));
    // ... later ones read the plan's records and nothing else.
    const later = await measured(async () => {
      for (let i = 0; i < 20; i++) {
        await reader.head();
        await reader.forPlan(`p${i * 89}`);
      }
    });
    expect(later.bytes).toBeLessThan(logBytes / 20);
    expect(await reader.head()).toEqual({ seq: records.at(-1)!.seq, hash: records.at(-1)!.hash });

    // The writer (another process) appends: the reader reads those bytes, not the log again.
    const writer = await openFileAuditStore(path);
    const receipts = [await writer.append(event('p5', 11)), await writer.append(event('fresh', 1))];
    const grown = await measured(async () => ({ p5: await reader.forPlan('p5'), fresh: await reader.forPlan('fresh'), head: await reader.head() }));
    expect(grown.bytes).toBeLessThan(logBytes / 100);
    expect(grown.value.p5.at(-1)).toMatchObject({ seq: receipts[0]!.seq, eventId: 'p5/11/e' });
    expect(grown.value.fresh.map((r) => r.seq)).toEqual([receipts[1]!.seq]);
    expect(grown.value.head).toEqual(receipts[1]);
    await writer.close();
  }, 60_000);
});

describe('file audit reader: following the log', () => {
  it('skips a line still being written and picks it up once complete', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('a', 1));
    await store.close();
    const reader = openFileAuditReader(path);
    expect((await reader.forPlan('a')).length).toBe(1);
    const [r1] = await readRecords(path);
    const { records } = sealBatch({ seq: r1!.seq, hash: r1!.hash }, [event('a', 2)], () => undefined);
    const line = `${JSON.stringify(records[0])}\n`;
    appendFileSync(path, line.slice(0, 40));
    expect((await reader.forPlan('a')).map((r) => r.seq)).toEqual([1]);
    expect((await reader.head()).seq).toBe(1);
    appendFileSync(path, line.slice(40));
    expect((await reader.forPlan('a')).map((r) => r.seq)).toEqual([1, 2]);
    expect(await reader.head()).toEqual({ seq: 2, hash: records[0]!.hash });
  });

  it('starts over when the file is replaced (rotation) or cut shorter', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('old', 1));
    await store.close();
    const reader = openFileAuditReader(path);
    expect((await reader.forPlan('old')).length).toBe(1);
    // Rotation: the old log archived, a new one started from genesis under the same name.
    renameSync(path, `${path}.1`);
    // It is longer than the part of the old one the reader had read: only its identity tells them apart.
    const fresh = await openFileAuditStore(path);
    for (let i = 1; i <= 3; i++) await fresh.append(event('new', i));
    await fresh.close();
    expect(await reader.forPlan('old')).toEqual([]);
    expect((await reader.forPlan('new')).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect((await reader.head()).seq).toBe(3);
    // Cut shorter in place (what `audit verify` reports as truncation): the reader follows the file.
    writeFileSync(path, '');
    expect(await reader.forPlan('new')).toEqual([]);
    expect(await reader.head()).toEqual(GENESIS_HEAD);
  });

  it('starts over when the file was rewritten in place with another chain, longer than what it had read', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('old', 1));
    await store.close();
    const reader = openFileAuditReader(path);
    expect((await reader.forPlan('old')).length).toBe(1);
    // Same inode, more bytes: only the chain tells that the new bytes do not continue the old ones.
    const { records } = sealBatch(GENESIS_HEAD, [event('new', 1), event('new', 2), event('new', 3)], () => undefined);
    writeFileSync(path, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    expect(await reader.forPlan('old')).toEqual([]);
    expect(await reader.forPlan('new')).toEqual(records);
    expect(await reader.head()).toEqual({ seq: 3, hash: records[2]!.hash });
  });

  it('refuses a corrupt complete line, as the writer does', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('a', 1));
    await store.close();
    appendFileSync(path, 'garbage\n');
    await expect(openFileAuditReader(path).forPlan('a')).rejects.toThrow(/:2: not a JSON audit record/);
  });
});
