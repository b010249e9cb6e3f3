import type { KeyObject } from 'node:crypto';
import { verifyChain, type AuditHead, type AuditRecord, type ChainProblem } from './record.js';
import { checkpointSignatureProblem, type SignedCheckpoint } from './signing.js';

export interface VerifyOptions {
  /** Signed checkpoints kept with the log (the checkpoints file or table). */
  checkpoints?: readonly SignedCheckpoint[];
  /**
   * Signed heads kept elsewhere (saved from an evidence bundle, shipped off-host): the witnesses
   * that make truncation of the log *and* its checkpoints detectable.
   */
  trustedHeads?: readonly SignedCheckpoint[];
  /** The audit public key. Without it, checkpoints are checked against the chain but not authenticated. */
  publicKey?: KeyObject;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  head: AuditHead;
  /** The first problem found, in chain order: chain problems first, then checkpoint problems. */
  problem?: ChainProblem & { source: 'chain' | 'checkpoint' | 'trusted-head' };
  checkpoints: { count: number; signaturesChecked: boolean; latest?: AuditHead };
  /** Records after the newest signed head: their removal could not be detected (yet). */
  unsignedTail: number;
  warnings: string[];
}

/**
 * Check a whole audit log: the hash chain (any edit, deletion, insertion or reordering), then every
 * signed head against it (truncation, or a rewrite that recomputed the hashes). A checkpoint names
 * (seq, hash): the chain must still hold that record with that hash.
 */
export function verifyAudit(records: readonly AuditRecord[], opts: VerifyOptions = {}): VerifyReport {
  const chain = verifyChain(records);
  const last = records.at(-1);
  const head: AuditHead = last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: chain.ok ? chain.head : '' };
  const checkpoints = opts.checkpoints ?? [];
  const warnings: string[] = [];
  const report = (extra: Partial<VerifyReport>): VerifyReport => ({
    ok: false,
    records: records.length,
    head,
    checkpoints: { count: checkpoints.length, signaturesChecked: Boolean(opts.publicKey), ...(latest ? { latest } : {}) },
    unsignedTail: Math.max(0, head.seq - (latest?.seq ?? 0)),
    warnings,
    ...extra,
  });
  let latest: AuditHead | undefined;

  if (!chain.ok) return report({ problem: { ...chain.first, source: 'chain' } });
  if (!opts.publicKey && (checkpoints.length > 0 || (opts.trustedHeads ?? []).length > 0))
    warnings.push('no public key given: signed heads were compared with the chain but their signatures were not checked');

  const check = (cp: SignedCheckpoint, i: number, source: 'checkpoint' | 'trusted-head'): ChainProblem | undefined => {
    const where = source === 'checkpoint' ? `checkpoint ${i + 1}` : `trusted head ${i + 1}`;
    if (opts.publicKey) {
      const bad = checkpointSignatureProblem(cp, opts.publicKey);
      if (bad) return { seq: cp.seq, line: i + 1, problem: `${where} (seq ${cp.seq}): ${bad}` };
    }
    if (!Number.isInteger(cp.seq) || cp.seq < 1) return { seq: cp.seq, line: i + 1, problem: `${where}: invalid seq ${cp.seq}` };
    const record = records[cp.seq - 1];
    if (!record)
      return {
        seq: cp.seq,
        line: i + 1,
        problem: `${where} signed seq ${cp.seq} at ${cp.time}, but the chain ends at seq ${head.seq}: records were removed from the end (truncated)`,
      };
    if (record.hash !== cp.hash)
      return { seq: cp.seq, line: i + 1, problem: `${where}: record ${cp.seq} no longer has the signed hash (the chain was rewritten)` };
    return undefined;
  };

  for (const [i, cp] of checkpoints.entries()) {
    const bad = check(cp, i, 'checkpoint');
    if (bad) return report({ problem: { ...bad, source: 'checkpoint' } });
    if (!latest || cp.seq > latest.seq) latest = { seq: cp.seq, hash: cp.hash };
  }
  for (const [i, cp] of (opts.trustedHeads ?? []).entries()) {
    const bad = check(cp, i, 'trusted-head');
    if (bad) return report({ problem: { ...bad, source: 'trusted-head' } });
    if (!latest || cp.seq > latest.seq) latest = { seq: cp.seq, hash: cp.hash };
  }
  return { ...report({}), ok: true };
}
