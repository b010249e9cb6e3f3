/**
 * A run's audit records as the workflow decides them: numbered in decision order (deterministic on
 * replay, so a retried write is the same record), held until an activity has written them, and
 * handed to whichever activity runs next. Message handlers only add records; the main loop's
 * activities write them. Workflow-safe: no I/O, no clocks.
 */
import type { PlanView } from './messages.js';
import { auditEventId, finalEventId, type AuditEvent, type AuditEventInput, type FinalEvent } from '../audit/events.js';
import type { OutcomeFields } from '../audit/records.js';

export type AuditExtra = Pick<AuditEventInput, 'actor' | 'channel' | 'upid' | 'outcome' | 'detail'>;

export class AuditTrail {
  private seq: number;
  private pending: AuditEventInput[];

  constructor(
    private readonly planId: string,
    private readonly requestHash: string,
    /** The plan as it stands: every record carries its decision and approvals. */
    private readonly view: () => PlanView | undefined,
    carried: { seq: number; pending: AuditEventInput[] } = { seq: 0, pending: [] },
  ) {
    this.seq = carried.seq;
    this.pending = [...carried.pending];
  }

  /** What every record of the run carries: the plan, and the decision and approvals as they stand. */
  fields(): Omit<OutcomeFields, 'seq'> {
    const v = this.view();
    return {
      planId: this.planId,
      requestHash: this.requestHash,
      ...(v ? { decision: { risk: v.risk, decision: v.decision, policyVersion: v.policyVersion, reasons: v.reasons } } : {}),
      ...(v && v.approval.approvers.length ? { approvals: v.approval.approvers } : {}),
    };
  }

  /** A sequence number for a record an activity builds itself (the plan's decision, the outcome). */
  reserve(): number {
    return ++this.seq;
  }

  /** Adds a record, to be written by the next activity. */
  add(event: AuditEvent, extra: AuditExtra = {}): AuditEventInput {
    const record = { eventId: auditEventId(this.planId, ++this.seq, event), event, ...this.fields(), ...extra };
    this.pending.push(record);
    return record;
  }

  /**
   * The run's terminal decision without an execute (rejected, expired, stale, denied): one event id
   * per run, whatever number it would have had, so that a run that decides again after a lost
   * workflow task (messages seen in another order) cannot put a second decision on the chain.
   */
  final(event: FinalEvent, extra: AuditExtra = {}): AuditEventInput {
    return { eventId: finalEventId(this.planId), event, ...this.fields(), ...extra };
  }

  /** Adds a record built elsewhere (the outcome record of a failed execute). */
  push(record: AuditEventInput): void {
    this.pending.push(record);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Runs `write` with the pending records; they stop being pending once it completes, and stay
   * pending (for the next activity) if it does not.
   */
  async writing<T>(write: (records: AuditEventInput[]) => Promise<T>): Promise<T> {
    const records = [...this.pending];
    const out = await write(records);
    this.pending.splice(0, records.length);
    return out;
  }

  /** What a continued run needs to go on numbering and writing. */
  carry(): { seq: number; pending: AuditEventInput[] } {
    return { seq: this.seq, pending: [...this.pending] };
  }
}
