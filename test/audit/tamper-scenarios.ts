/**
 * Tamper scenarios shared by the file and PostgreSQL audit stores: each store provides a way to read
 * its raw log and to overwrite it (as an attacker with write access to the storage would); each
 * scenario changes the log and states what `verifyAudit` (and `audit verify`) must then report.
 */
import { expect, it } from 'vitest';
import { sealRecord, type AuditRecord } from '../../src/audit/record.js';
import { createCheckpointSigner, generateAuditKeyPair, parsePublicKey, type SignedCheckpoint } from '../../src/audit/signing.js';
import type { AuditStore, SigningPolicy } from '../../src/audit/store.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { runCli } from '../../src/cli/main.js';

export interface TamperTarget {
  /** A fresh, empty store of this kind (signed with `signing` when given). */
  open(signing?: SigningPolicy): Promise<{ store: AuditStore; read(): Promise<{ records: AuditRecord[]; checkpoints: SignedCheckpoint[] }>; overwrite(records: AuditRecord[], checkpoints: SignedCheckpoint[]): Promise<void>; verifyArgs: string[] }>;
}

const HASH = `sha256:${'b'.repeat(64)}`;
const events = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ eventId: `plan_${i + 1}/1/plan.created`, planId: `plan_${i + 1}`, event: 'plan.created' as const, actor: 'agent:pi', channel: 'api', requestHash: HASH }));

/** Re-seal `records` from index `from` on, as an attacker without the signing key but with the code would. */
function reseal(records: AuditRecord[], from: number): AuditRecord[] {
  const out = records.slice(0, from);
  for (const r of records.slice(from)) {
    const prev = out.at(-1);
    const { hash: _old, ...body } = r;
    out.push(sealRecord({ ...body, seq: out.length + 1, prevHash: prev ? prev.hash : r.prevHash }));
  }
  return out;
}

export function tamperSuite(target: TamperTarget): void {
  const keys = generateAuditKeyPair();
  const signer = createCheckpointSigner(keys.privateKeyPem);
  const publicKey = parsePublicKey(keys.publicKeyPem);
  const signing: SigningPolicy = { signer, every: 4, intervalMs: 60_000 };

  async function fixture(n = 8, withSigning = true) {
    const t = await target.open(withSigning ? signing : undefined);
    for (const e of events(n)) await t.store.append(e);
    await t.store.close(); // final checkpoint at seq n
    const { records, checkpoints } = await t.read();
    expect(verifyAudit(records, { checkpoints, publicKey }).ok).toBe(true);
    return { ...t, records, checkpoints };
  }

  async function tampered(records: AuditRecord[], checkpoints: SignedCheckpoint[], t: Awaited<ReturnType<typeof fixture>>) {
    await t.overwrite(records, checkpoints);
    const read = await t.read();
    return verifyAudit(read.records, { checkpoints: read.checkpoints, publicKey });
  }

  it('verifies an untouched log (and audit verify exits 0)', async () => {
    const t = await fixture();
    expect(await verifyCli(t.verifyArgs)).toBe(0);
  });

  it('detects an edited record at its seq', async () => {
    const t = await fixture();
    const records = t.records.map((r) => (r.seq === 3 ? { ...r, actor: 'human:mallory' } : r));
    expect(await tampered(records, t.checkpoints, t)).toMatchObject({ ok: false, problem: { seq: 3, line: 3, source: 'chain' } });
    expect(await verifyCli(t.verifyArgs)).toBe(1);
  });

  it('detects an edited record whose own hash was recomputed, at the next record', async () => {
    const t = await fixture();
    const records = t.records.map((r) => (r.seq === 3 ? sealRecord({ ...withoutHash(r), event: 'plan.denied' as const }) : r));
    expect(await tampered(records, t.checkpoints, t)).toMatchObject({ ok: false, problem: { seq: 4, line: 4, problem: expect.stringMatching(/prevHash/) } });
  });

  it('detects a deleted record', async () => {
    const t = await fixture();
    const records = t.records.filter((r) => r.seq !== 5);
    expect(await tampered(records, t.checkpoints, t)).toMatchObject({ ok: false, problem: { seq: 6, line: 5, source: 'chain' } });
  });

  it('detects an inserted record, even one sealed onto its predecessor', async () => {
    const t = await fixture();
    const forged = sealRecord({ ...withoutHash(t.records[2]!), eventId: 'plan_x/1/plan.created', planId: 'plan_x', seq: 3, prevHash: t.records[1]!.hash });
    const records = [...t.records.slice(0, 2), forged, ...t.records.slice(2)];
    expect(await tampered(records, t.checkpoints, t)).toMatchObject({ ok: false, problem: { line: 4, source: 'chain' } });
  });

  it('detects reordered records', async () => {
    const t = await fixture();
    const r = [...t.records];
    [r[3], r[4]] = [r[4]!, r[3]!];
    expect(await tampered(r, t.checkpoints, t)).toMatchObject({ ok: false, problem: { line: 4, source: 'chain' } });
  });

  it('cannot see a truncated tail without signed heads: that is what signing is for', async () => {
    const t = await fixture(8, false);
    expect(await tampered(t.records.slice(0, 6), [], t)).toMatchObject({ ok: true, records: 6 });
  });

  it('detects a truncated tail against the signed checkpoints', async () => {
    const t = await fixture();
    expect(t.checkpoints.map((c) => c.seq)).toEqual([4, 8]);
    const report = await tampered(t.records.slice(0, 6), t.checkpoints, t);
    expect(report).toMatchObject({ ok: false, problem: { seq: 8, source: 'checkpoint', problem: expect.stringMatching(/truncated/) } });
    expect(await verifyCli(t.verifyArgs)).toBe(1);
  });

  it('detects a truncation of log and checkpoints together only against a head kept elsewhere', async () => {
    const t = await fixture();
    const keptElsewhere = t.checkpoints.at(-1)!; // e.g. from an evidence bundle an auditor saved
    const cut = await tampered(t.records.slice(0, 5), t.checkpoints.filter((c) => c.seq <= 5), t);
    expect(cut.ok).toBe(true);
    expect(cut.unsignedTail).toBe(1);
    const read = await t.read();
    expect(verifyAudit(read.records, { checkpoints: read.checkpoints, trustedHeads: [keptElsewhere], publicKey })).toMatchObject({
      ok: false,
      problem: { source: 'trusted-head', seq: 8 },
    });
  });

  it('detects a rewritten chain with every hash recomputed, through the signed heads', async () => {
    const t = await fixture();
    const edited = t.records.map((r) => (r.seq === 2 ? { ...r, actor: 'human:mallory' } : r));
    const rewritten = reseal(edited, 1);
    const report = await tampered(rewritten, t.checkpoints, t);
    expect(report).toMatchObject({ ok: false, problem: { seq: 4, source: 'checkpoint', problem: expect.stringMatching(/rewritten/) } });
  });

  it('detects checkpoints forged with another key or edited', async () => {
    const t = await fixture();
    const rewritten = reseal(t.records.map((r) => (r.seq === 2 ? { ...r, actor: 'human:mallory' } : r)), 1);
    const otherKey = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    const forged = t.checkpoints.map((c) => otherKey.sign({ seq: c.seq, hash: rewritten[c.seq - 1]!.hash }));
    expect(await tampered(rewritten, forged, t)).toMatchObject({ ok: false, problem: { source: 'checkpoint', problem: expect.stringMatching(/not by the trusted key/) } });
    const edited = t.checkpoints.map((c) => ({ ...c, hash: rewritten[c.seq - 1]!.hash }));
    expect(await tampered(rewritten, edited, t)).toMatchObject({ ok: false, problem: { source: 'checkpoint', problem: expect.stringMatching(/signature does not verify/) } });
  });
}

/** `proxmox-agent audit verify ARGS --json` in-process; returns its exit code (and leaves none behind). */
export async function verifyCli(args: string[]): Promise<number> {
  const log = console.log;
  console.log = () => {};
  try {
    return await runCli(['node', 'proxmox-agent', 'audit', 'verify', ...args, '--json']);
  } finally {
    console.log = log;
    process.exitCode = 0;
  }
}

function withoutHash(r: AuditRecord): Omit<AuditRecord, 'hash'> {
  const { hash: _h, ...body } = r;
  return body;
}
