/**
 * Freezes (the kill switch): while an environment has an active freeze, no new Proxmox mutation of
 * this service starts in it. The gate is the dispatch journal's `begin`: it reads the environment's
 * freezes inside the same atomic section that writes the intent, and a freeze is written inside that
 * section too. So every dispatch is ordered before or after every freeze: one begun before the freeze
 * is visible to it as an open intent (the freeze's answer waits for those), one after it is refused.
 * Workflow-safe types only; kept by the dispatch journal (src/dispatch: file-journal.ts, pg-journal.ts).
 */

export interface Freeze {
  /** `frz_` + 20 hex digits. */
  id: string;
  environment: string;
  reason: string;
  /** The principal that froze the environment. */
  by: string;
  /** ISO 8601, the journal's clock. */
  at: string;
  liftedBy?: string;
  liftedAt?: string;
}

export interface FreezeInput {
  id: string;
  environment: string;
  reason: string;
  by: string;
}

export const isActive = (f: Freeze): boolean => f.liftedAt === undefined;

/** The freeze a dispatch in `environment` meets: the oldest active one, if any. */
export function activeFreezeOf(freezes: Iterable<Freeze>, environment: string): Freeze | undefined {
  let found: Freeze | undefined;
  for (const f of freezes) if (f.environment === environment && isActive(f) && (!found || f.at < found.at)) found = f;
  return found;
}

/** The one rule for `lift`: an active freeze is lifted once; a lifted one stays as it was lifted. */
export function applyLift(f: Freeze, by: string, at: string): Freeze {
  return isActive(f) ? { ...f, liftedBy: by, liftedAt: at } : f;
}

export const FREEZE_ID_PATTERN = /^frz_[0-9a-f]{20}$/;

/** What a plan made, or held, under a freeze says about it (one of its reasons). */
export function freezeReason(f: Freeze): { rule: string; message: string; hint: string } {
  return {
    rule: 'freeze.active',
    message: `environment ${f.environment} is frozen since ${f.at} by ${f.by}: ${f.reason}`,
    hint: 'the plan can be approved and applied; it runs once an admin lifts the freeze (DELETE /v1/freezes/{id}), unless it expires first',
  };
}
