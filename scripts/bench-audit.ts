// Measures the audit stores on this machine: sequential appends (one durable write each), concurrent
// appends (group commit), and verification speed. PostgreSQL is measured when its binaries exist.
//
//   npx tsx scripts/bench-audit.ts [records=2000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileAuditStore } from '../src/audit/file-store.js';
import { openPostgresAuditStore } from '../src/audit/pg-store.js';
import { createCheckpointSigner, generateAuditKeyPair, parsePublicKey } from '../src/audit/signing.js';
import type { AuditStore } from '../src/audit/store.js';
import { verifyAudit } from '../src/audit/verify.js';
import { findPostgresBin, startTempPostgres } from '../test/setup/postgres.js';

const N = Number(process.argv[2] ?? 2000);
const HASH = `sha256:${'d'.repeat(64)}`;
const event = (i: number, tag: string) => ({ eventId: `${tag}-${i}/1/plan.created`, planId: `plan_${tag}_${i}`, event: 'plan.created' as const, actor: 'agent:pi', channel: 'api', requestHash: HASH });
const keys = generateAuditKeyPair();
const signing = { signer: createCheckpointSigner(keys.privateKeyPem), every: 100, intervalMs: 60_000 };

async function measure(name: string, open: () => Promise<AuditStore>): Promise<void> {
  const store = await open();
  const seqN = Math.min(N, 500);
  let t = performance.now();
  for (let i = 0; i < seqN; i++) await store.append(event(i, 'seq'));
  const seqMs = performance.now() - t;
  t = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => store.append(event(i, 'par'))));
  const parMs = performance.now() - t;
  const records = await store.all();
  const checkpoints = await store.checkpoints();
  t = performance.now();
  const report = verifyAudit(records, { checkpoints, publicKey: parsePublicKey(keys.publicKeyPem) });
  const verifyMs = performance.now() - t;
  await store.close();
  console.log(
    `${name}: sequential ${(seqMs / seqN).toFixed(2)} ms/append (${Math.round((seqN * 1000) / seqMs)}/s); ` +
      `${N} concurrent in ${parMs.toFixed(0)} ms (${Math.round((N * 1000) / parMs)}/s); ` +
      `verify ${records.length} records + ${checkpoints.length} signed checkpoints in ${verifyMs.toFixed(0)} ms (${report.ok ? 'ok' : 'FAILED'})`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'pa-bench-'));
try {
  await measure('file (signed every 100)', () => openFileAuditStore(join(dir, 'audit.jsonl'), { signing }));
  if (findPostgresBin()) {
    const pg = await startTempPostgres();
    try {
      const url = await pg.createDatabase();
      await measure('postgres (signed every 100)', () => openPostgresAuditStore(url, { signing }));
    } finally {
      await pg.stop();
    }
  } else console.log('postgres: binaries not found, skipped');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
