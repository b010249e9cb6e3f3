import type { KeyObject } from 'node:crypto';
import { requestHash } from '../domain/hashing.js';
import type { PlanView } from '../domain/plan-view.js';
import type { NormalizedRequest } from '../domain/request.js';
import { parseUpid } from '../proxmox/upid.js';
import { recordHash, type AuditHead, type AuditRecord } from './record.js';
import { checkpointSignatureProblem, type SignedCheckpoint } from './signing.js';

export const EVIDENCE_FORMAT = 'proxmox-agent.evidence.v1';

/** Lines of a Proxmox task log put in a bundle at most. */
export const TASK_LOG_LIMIT = 5000;

/**
 * Everything an auditor needs about one run, self-contained: the request exactly as it was hashed,
 * who asked, what policy decided and why, who approved through which channel, what Proxmox ran (task
 * id and log), the outcome, and the run's audit records with their chain hashes plus a signed chain
 * head. `verifyEvidenceBundle` checks it offline; `proxmox-agent audit verify --bundle` also checks
 * it against the full log.
 */
export interface EvidenceBundle {
  format: typeof EVIDENCE_FORMAT;
  generatedAt: string;
  planId: string;
  /** The normalized request the run was started with (the hashed object), when the run's history has it. */
  request?: NormalizedRequest;
  requestHash: string;
  requester: PlanView['requester'];
  decision: Pick<PlanView, 'risk' | 'decision' | 'policyVersion' | 'reasons'>;
  approval: PlanView['approval'];
  proxmox: {
    node?: string;
    upid?: string;
    exitstatus?: string;
    taskLog?: { lines: string[]; total?: number; truncated: boolean };
    /** Why the task log could not be read (the bundle is still returned). */
    taskLogError?: string;
  };
  outcome: { status: PlanView['status']; result?: PlanView['result'] };
  /** The plan's inverse, and its undo links both ways (docs/approvals.md, "Undo"). */
  undo?: NonNullable<PlanView['undo']> & Pick<PlanView, 'undoes' | 'undoneBy'>;
  /** The snapshot policy asked for before the action (docs/policy.md, "Safeguards"), and its task once taken. */
  safeguard?: PlanView['safeguard'];
  audit: {
    records: AuditRecord[];
    /** The chain's head, read before the records: every record of the run up to it is in `records`. */
    head: AuditHead;
    /**
     * The newest signed checkpoint the store had written, when it is at or after the run's last record
     * (it covers every record of the run). Absent when none covers the last record yet (then
     * `checkpointNote` says so) or when signing is not configured (no note). Never signed for the
     * request: checkpoints come from the store's own schedule.
     */
    checkpoint?: SignedCheckpoint;
    /** Present when signing is on but no checkpoint covers the run's last record yet: which, and when to ask again. */
    checkpointNote?: string;
    /** The public key that verifies `checkpoint` (compare it with the one you trust). */
    publicKey?: string;
  };
}

export interface EvidenceSources {
  view: PlanView;
  request?: NormalizedRequest;
  records: AuditRecord[];
  head: AuditHead;
  /** The store's newest checkpoint (`AuditStore.latestCheckpoint`), whether or not it covers the run. */
  latestCheckpoint?: SignedCheckpoint;
  /** Whether checkpoints are signed at all: then a missing cover is said (`checkpointNote`). */
  signing?: boolean;
  publicKeyPem?: string;
  taskLog?: (node: string, upid: string) => Promise<{ lines: string[]; total?: number }>;
  now?: Date;
}

export async function buildEvidenceBundle(src: EvidenceSources): Promise<EvidenceBundle> {
  const { view } = src;
  const upid = view.result?.upid;
  const node = (upid ? parseUpid(upid)?.node : undefined) ?? view.target.node;
  const proxmox: EvidenceBundle['proxmox'] = {
    ...(node ? { node } : {}),
    ...(upid ? { upid } : {}),
    ...(view.result?.exitstatus ? { exitstatus: view.result.exitstatus } : {}),
  };
  if (upid && node && src.taskLog) {
    try {
      const log = await src.taskLog(node, upid);
      const total = log.total ?? log.lines.length;
      proxmox.taskLog = { lines: log.lines.slice(0, TASK_LOG_LIMIT), total, truncated: total > TASK_LOG_LIMIT || log.lines.length > TASK_LOG_LIMIT };
    } catch (err) {
      proxmox.taskLogError = err instanceof Error ? err.message : String(err);
    }
  }
  return {
    format: EVIDENCE_FORMAT,
    generatedAt: (src.now ?? new Date()).toISOString(),
    planId: view.planId,
    ...(src.request ? { request: src.request } : {}),
    requestHash: view.requestHash,
    requester: view.requester,
    decision: { risk: view.risk, decision: view.decision, policyVersion: view.policyVersion, reasons: view.reasons },
    approval: view.approval,
    proxmox,
    outcome: { status: view.status, ...(view.result ? { result: view.result } : {}) },
    ...(view.undo ? { undo: { ...view.undo, ...(view.undoes ? { undoes: view.undoes } : {}), ...(view.undoneBy ? { undoneBy: view.undoneBy } : {}) } } : {}),
    ...(view.safeguard ? { safeguard: view.safeguard } : {}),
    audit: {
      records: src.records,
      head: src.head,
      ...coverOf(src.records, src.latestCheckpoint, src.signing ?? src.latestCheckpoint !== undefined),
      ...(src.publicKeyPem ? { publicKey: src.publicKeyPem } : {}),
    },
  };
}

/**
 * What covers the run's records: the newest checkpoint if it is at or after the last record (a
 * checkpoint commits to the whole chain up to its seq), else a note saying none does yet. Nothing
 * when unsigned.
 */
export function coverOf(
  records: readonly AuditRecord[],
  latest: SignedCheckpoint | undefined,
  signing: boolean,
): Pick<EvidenceBundle['audit'], 'checkpoint' | 'checkpointNote'> {
  const last = records.at(-1);
  if (latest && (!last || latest.seq >= last.seq)) return { checkpoint: latest };
  if (!signing) return {};
  return {
    checkpointNote:
      `no signed checkpoint covers record seq ${last!.seq} yet (the newest is ${latest ? `seq ${latest.seq}` : 'none'}): ` +
      'the store signs its head every checkpointEvery records and checkpointIntervalSeconds after an unsigned append; request the evidence again after that',
  };
}

export interface BundleCheck {
  ok: boolean;
  problems: string[];
  /** What the bundle alone cannot prove. */
  notes: string[];
}

/**
 * Offline checks of a bundle: the request hashes to `requestHash`; every record belongs to this plan
 * and request, its hash matches its content, and adjacent records link; the summary fields agree with
 * the records; the signed head verifies
 * under `publicKey` and covers the last record. That the records are in the full log is for
 * `verifyBundleAgainstLog` (the bundle holds only this run's records, not the ones between them).
 */
export function verifyEvidenceBundle(bundle: EvidenceBundle, publicKey?: KeyObject): BundleCheck {
  const problems: string[] = [];
  const notes: string[] = [];
  if (bundle.format !== EVIDENCE_FORMAT) problems.push(`unknown bundle format ${JSON.stringify(bundle.format)}`);
  if (bundle.request) {
    const h = requestHash(bundle.request);
    if (h !== bundle.requestHash) problems.push(`request hashes to ${h}, not to requestHash ${bundle.requestHash}`);
  } else notes.push('the bundle has no request: requestHash could not be recomputed');

  let prev: AuditRecord | undefined;
  for (const record of bundle.audit.records) {
    const { hash, ...body } = record;
    const at = `record seq ${record.seq}`;
    if (record.planId !== bundle.planId) problems.push(`${at} belongs to plan ${record.planId}`);
    if (record.requestHash !== bundle.requestHash) problems.push(`${at} has requestHash ${record.requestHash}`);
    if (recordHash(body) !== hash) problems.push(`${at}: hash does not match its content (edited)`);
    if (prev && record.seq <= prev.seq) problems.push(`${at} follows seq ${prev.seq} (out of order)`);
    if (prev && record.seq === prev.seq + 1 && record.prevHash !== prev.hash) problems.push(`${at}: prevHash does not link to seq ${prev.seq}`);
    prev = record;
  }
  if (bundle.audit.records.length === 0) problems.push('the bundle has no audit records');

  problems.push(...summaryProblems(bundle));

  const cp = bundle.audit.checkpoint;
  if (cp) {
    if (publicKey) {
      const bad = checkpointSignatureProblem(cp, publicKey);
      if (bad) problems.push(`checkpoint: ${bad}`);
    } else notes.push('no public key given: the checkpoint signature was not checked');
    if (prev && cp.seq < prev.seq) problems.push(`checkpoint seq ${cp.seq} does not cover the last record (seq ${prev.seq})`);
    if (prev && cp.seq === prev.seq && cp.hash !== prev.hash) problems.push(`checkpoint hash differs from record seq ${prev.seq}`);
  } else if (bundle.audit.checkpointNote)
    notes.push(
      `no signed checkpoint covered the last record${prev ? ` (seq ${prev.seq})` : ''} when the bundle was made: truncation of the log cannot be detected from this bundle; request the evidence again once the store has signed one`,
    );
  else notes.push('no signed checkpoint (signing is not configured): truncation of the log cannot be detected from this bundle');
  notes.push('inclusion of the records in the full chain is checked with `proxmox-agent audit verify --bundle` against the log');
  return { ok: problems.length === 0, problems, notes };
}

/**
 * The bundle's summary fields (requester, decision, approvers, task id, outcome) are not hashed
 * themselves: they must agree with the hashed records, which are the evidence.
 */
function summaryProblems(bundle: EvidenceBundle): string[] {
  const problems: string[] = [];
  const records = bundle.audit.records;
  const last = <T>(pick: (r: AuditRecord) => T | undefined): T | undefined => {
    for (let i = records.length - 1; i >= 0; i--) {
      const v = pick(records[i]!);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const created = records.find((r) => r.event === 'plan.created' || r.event === 'plan.denied');
  if (created && created.actor !== undefined && created.actor !== bundle.requester.principal)
    problems.push(`requester ${bundle.requester.principal} differs from the ${created.event} record (${created.actor})`);
  const decision = last((r) => r.decision);
  if (decision && (decision.policyVersion !== bundle.decision.policyVersion || decision.risk !== bundle.decision.risk || decision.decision !== bundle.decision.decision))
    problems.push('decision (risk, decision, policy version) differs from the last audit record that holds one');
  const recorded = (last((r) => r.approvals) ?? []).map((a) => `${a.principal}/${a.channel}`).sort();
  const claimed = bundle.approval.approvers.map((a) => `${a.principal}/${a.channel}`).sort();
  if (recorded.join() !== claimed.join()) problems.push(`approvers ${claimed.join(', ') || 'none'} differ from the audit records (${recorded.join(', ') || 'none'})`);
  const outcome = records.find((r) => r.event.startsWith('action.'));
  if (outcome?.upid && outcome.upid !== bundle.proxmox.upid) problems.push(`Proxmox task ${bundle.proxmox.upid ?? 'none'} differs from the ${outcome.event} record (${outcome.upid})`);
  if (outcome?.outcome && outcome.outcome !== bundle.outcome.status) problems.push(`outcome ${bundle.outcome.status} differs from the ${outcome.event} record (${outcome.outcome})`);
  return problems;
}

/** The bundle's records must be in the log at their seq, unchanged; its checkpoint must match the log too. */
export function verifyBundleAgainstLog(bundle: EvidenceBundle, log: readonly AuditRecord[]): string[] {
  const problems: string[] = [];
  for (const record of bundle.audit.records) {
    const inLog = log[record.seq - 1];
    if (!inLog) problems.push(`bundle record seq ${record.seq} is not in the log (it ends at seq ${log.length})`);
    else if (inLog.hash !== record.hash) problems.push(`bundle record seq ${record.seq} differs from the log's record ${record.seq}`);
  }
  // The bundle's head was read before its records: every record of the plan up to it must be there.
  const missing = log.filter((r) => r.planId === bundle.planId && r.seq <= bundle.audit.head.seq && !bundle.audit.records.some((b) => b.seq === r.seq));
  if (missing.length) problems.push(`the log has records of this plan that the bundle lacks: seq ${missing.map((r) => r.seq).join(', ')}`);
  return problems;
}
