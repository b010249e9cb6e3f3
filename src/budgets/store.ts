import type { Charge, ChargeRequest, ChargeVerdict } from './ledger.js';
import type { BudgetLimits } from './schema.js';

/**
 * Where budget charges live, shared by every process that decides plans (the workers) or shows
 * usage (the API): a file beside the file audit log, locked across processes for each decision, or
 * a table in the PostgreSQL database of `audit.postgres`, locked per principal. Each `charge` reads
 * the principal's charges, decides (ledger.ts) and records under one lock, so plans racing on any
 * number of replicas and workers cannot overshoot a budget.
 */
export interface BudgetStore {
  /** `file <path>` or `postgres <url without password>`. */
  readonly description: string;
  charge(limits: BudgetLimits, request: ChargeRequest): Promise<ChargeVerdict>;
  /**
   * The plan's run begins its Proxmox step (ledger.ts `beginApplying`): `lapsed` if its charge's
   * expiry passed first (nothing may be sent then). A plan never charged is free to go.
   */
  beginApplying(planId: string): Promise<{ ok: true } | { ok: false; lapsedAt: string }>;
  /** The plan's run ended (`sent`: it sent its request to Proxmox). Nothing happens for a plan never charged. */
  release(planId: string, ended: { sent: boolean }): Promise<void>;
  /** Charges that still count for something, with the store's clock. */
  snapshot(): Promise<{ charges: Charge[]; now: number }>;
  close(): Promise<void>;
}
