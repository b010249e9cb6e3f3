import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditStoreLockedError, checkpointsPathFor, lockPathFor, openFileAuditStore, readCheckpoints, readRecords } from '../../src/audit/file-store.js';
import { verifyChain } from '../../src/audit/record.js';
import { createCheckpointSigner, generateAuditKeyPair } from '../../src/audit/signing.js';

const HASH = `sha256:${'a'.repeat(64)}`;
const event = (planId: string, n: number) => ({ eventId: `${planId}/${n}/e`, planId, event: 'plan.created' as const, requestHash: HASH });
const tmpLog = (sub = '') => join(mkdtempSync(join(tmpdir(), 'pa-audit-')), sub, 'audit.jsonl');

describe('file audit store', () => {
  it('chains records and survives reopening', async () => {
    const path = tmpLog('a');
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
    expect(await again.head()).toEqual({ seq: 3, hash: records[2]!.hash });
    await again.close();
  });

  it('writes a retried event once, within a batch and after reopening', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    const [a, b] = await Promise.all([store.append(event('p', 1)), store.append(event('p', 1))]);
    expect(a).toEqual(b);
    await store.close();
    const reopened = await openFileAuditStore(path);
    expect(await reopened.append(event('p', 1))).toEqual(a);
    expect((await reopened.all()).length).toBe(1);
    await reopened.close();
  });

  it('serializes concurrent appends into one valid chain (group commit)', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    const receipts = await Promise.all(Array.from({ length: 600 }, (_, i) => store.append(event(`p${i}`, 1))));
    expect(new Set(receipts.map((r) => r.seq)).size).toBe(600);
    const records = await readRecords(path);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    // Each receipt names the record written for its event.
    records.forEach((r) => expect(receipts[Number(r.planId.slice(1))]).toEqual({ seq: r.seq, hash: r.hash }));
    expect(verifyChain(records).ok).toBe(true);
    await store.close();
  });

  it('does not strand an append made just as a batch finishes', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    for (let round = 0; round < 20; round++) {
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.append(event(`r${round}-${i}`, 1))));
      // Issued from the continuation of the batch that just completed.
      await store.append(event(`after-${round}`, 1));
    }
    expect((await store.all()).length).toBe(120);
    await store.close();
  });

  it('refuses a second writer while the first holds the lock, and takes over a dead process\'s lock', async () => {
    const path = tmpLog();
    const first = await openFileAuditStore(path);
    await expect(openFileAuditStore(path)).rejects.toThrow(AuditStoreLockedError);
    await expect(openFileAuditStore(path)).rejects.toThrow(/one writer process.*PostgreSQL/);
    await first.close();
    expect(existsSync(lockPathFor(path))).toBe(false);

    // A lock left by a process that no longer exists (a crash) does not block the next start.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(lockPathFor(path), JSON.stringify({ pid: Number(dead.stdout), host: (await import('node:os')).hostname(), since: 'x' }));
    const second = await openFileAuditStore(path);
    await second.append(event('p', 1));
    await second.close();
  });

  it('removes a torn final line (a crash mid-write) on open and chains on cleanly', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('p1', 1));
    await store.close();
    appendFileSync(path, '{"eventId":"p2/1/e","planId":"p2","ev'); // never fsync'd, never acknowledged
    // A reader skips the incomplete line rather than failing.
    expect((await readRecords(path)).length).toBe(1);
    const again = await openFileAuditStore(path);
    expect((await again.append(event('p2', 1))).seq).toBe(2);
    await again.close();
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    expect(verifyChain(await readRecords(path)).ok).toBe(true);
  });

  it('refuses a log with a corrupt complete line instead of chaining onto it', async () => {
    const path = tmpLog();
    const store = await openFileAuditStore(path);
    await store.append(event('p1', 1));
    await store.close();
    appendFileSync(path, 'garbage\n');
    await expect(openFileAuditStore(path)).rejects.toThrow(/:2: not a JSON audit record/);
  });

  it('writes signed checkpoints every N records and at close', async () => {
    const path = tmpLog();
    const { privateKeyPem } = generateAuditKeyPair();
    const signer = createCheckpointSigner(privateKeyPem);
    const store = await openFileAuditStore(path, { signing: { signer, every: 3, intervalMs: 60_000 } });
    for (let i = 1; i <= 7; i++) await store.append(event(`p${i}`, 1));
    expect((await readCheckpoints(checkpointsPathFor(path))).map((c) => c.seq)).toEqual([3, 6]);
    await store.close();
    const checkpoints = await readCheckpoints(checkpointsPathFor(path));
    expect(checkpoints.map((c) => c.seq)).toEqual([3, 6, 7]);
    const records = await readRecords(path);
    for (const c of checkpoints) expect(c.hash).toBe(records[c.seq - 1]!.hash);
    expect(checkpoints[0]).toMatchObject({ type: 'proxmox-agent.audit.checkpoint.v1', keyId: signer.keyId });
  });

  it('signs the head soon after an append when fewer than N records follow', async () => {
    const path = tmpLog();
    const signer = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    const store = await openFileAuditStore(path, { signing: { signer, every: 1000, intervalMs: 30 } });
    expect(await store.latestCheckpoint()).toBeUndefined();
    await store.append(event('p1', 1));
    for (let i = 0; i < 100 && (await store.checkpoints()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store.checkpoints()).map((c) => c.seq)).toEqual([1]);
    expect(await store.latestCheckpoint()).toMatchObject({ seq: 1, keyId: signer.keyId });
    await store.append(event('p2', 1));
    for (let i = 0; i < 100 && (await store.checkpoints()).length === 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store.latestCheckpoint())?.seq).toBe(2);
    await store.close();
    expect((await readCheckpoints(checkpointsPathFor(path))).map((c) => c.seq)).toEqual([1, 2]);
  });

  it('hands out the newest checkpoint without ever signing one to answer', async () => {
    const path = tmpLog();
    const signer = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    const store = await openFileAuditStore(path, { signing: { signer, every: 2, intervalMs: 3_600_000 } });
    await store.append(event('p1', 1));
    for (let i = 0; i < 3; i++) expect(await store.latestCheckpoint()).toBeUndefined();
    await store.append(event('p2', 1)); // the second record: a checkpoint (every 2)
    const first = await store.latestCheckpoint();
    expect(first).toMatchObject({ seq: 2 });
    await store.append(event('p3', 1)); // not covered yet
    for (let i = 0; i < 3; i++) expect(await store.latestCheckpoint()).toEqual(first);
    expect((await readCheckpoints(checkpointsPathFor(path))).map((c) => c.seq)).toEqual([2]);
    await store.close(); // signs the last record on the way out
    expect((await readCheckpoints(checkpointsPathFor(path))).map((c) => c.seq)).toEqual([2, 3]);
  });

  it('without signing has no checkpoint to hand out', async () => {
    const store = await openFileAuditStore(tmpLog());
    await store.append(event('p1', 1));
    expect(await store.latestCheckpoint()).toBeUndefined();
    await store.close();
  });

  it('signs, after a restart, the records a crash left unsigned', async () => {
    const path = tmpLog();
    const signer = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    const plain = await openFileAuditStore(path);
    await plain.append(event('p1', 1));
    await plain.close(); // unsigned, as if the signing process had crashed before checkpointing
    const signed = await openFileAuditStore(path, { signing: { signer, every: 1000, intervalMs: 20 } });
    for (let i = 0; i < 100 && (await signed.checkpoints()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await signed.checkpoints()).map((c) => c.seq)).toEqual([1]);
    await signed.close();
  });
});
