import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileAuditStore, readRecords } from '../../src/audit/file-store.js';
import { verifyChain } from '../../src/audit/record.js';

const HASH = `sha256:${'a'.repeat(64)}`;
const event = (planId: string, n: number) => ({ eventId: `${planId}/${n}/e`, planId, event: 'plan.created', requestHash: HASH });

describe('file audit store', () => {
  it('chains records and survives reopening', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-audit-')), 'a', 'audit.jsonl');
    const store = await openFileAuditStore(path);
    const r1 = await store.append(event('p1', 1));
    const r2 = await store.append(event('p2', 1));
    expect([r1.seq, r2.seq]).toEqual([1, 2]);
    await store.close();
    const again = await openFileAuditStore(path);
    expect((await again.append(event('p1', 2))).seq).toBe(3);
    const records = await again.all();
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 3 });
    expect((await again.forPlan('p1')).map((r) => r.seq)).toEqual([1, 3]);
    await again.close();
  });

  it('writes a retried event once', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-audit-')), 'audit.jsonl');
    const store = await openFileAuditStore(path);
    const [a, b] = await Promise.all([store.append(event('p', 1)), store.append(event('p', 1))]);
    expect(a).toEqual(b);
    await store.close();
    const reopened = await openFileAuditStore(path);
    expect(await reopened.append(event('p', 1))).toEqual(a);
    expect((await reopened.all()).length).toBe(1);
    await reopened.close();
  });

  it('serializes concurrent appends into one valid chain', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-audit-')), 'audit.jsonl');
    const store = await openFileAuditStore(path);
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.append(event(`p${i}`, 1))));
    const records = await readRecords(path);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(verifyChain(records).ok).toBe(true);
    await store.close();
  });

  it('detects an edited, deleted or reordered record', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pa-audit-')), 'audit.jsonl');
    const store = await openFileAuditStore(path);
    for (let i = 1; i <= 4; i++) await store.append(event(`p${i}`, 1));
    await store.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    const check = (ls: string[]) => verifyChain(ls.map((l) => JSON.parse(l)));
    expect(check([...lines.slice(0, 1), lines[1]!.replace('plan.created', 'plan.deleted'), ...lines.slice(2)])).toMatchObject({ ok: false, first: { seq: 2 } });
    expect(check([lines[0]!, lines[2]!, lines[3]!])).toMatchObject({ ok: false, first: { line: 2 } });
    expect(check([lines[0]!, lines[2]!, lines[1]!, lines[3]!])).toMatchObject({ ok: false, first: { line: 2 } });
    writeFileSync(path, lines.join('\n') + '\n');
    expect(check(lines).ok).toBe(true);
  });
});
