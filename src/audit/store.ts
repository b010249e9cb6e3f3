import type { AuditEventInput, AuditReceipt } from '../activities/types.js';
import type { AuditRecord } from './record.js';

/** Append-only, hash-chained evidence. Implementations must be idempotent by `eventId`. */
export interface AuditStore {
  append(event: AuditEventInput): Promise<AuditReceipt>;
  /** Every record of one plan, in chain order. */
  forPlan(planId: string): Promise<AuditRecord[]>;
  all(): Promise<AuditRecord[]>;
  close(): Promise<void>;
}
