/**
 * The budget ledger's decisions, pure (docs/policy.md, "Budgets"): given a principal's charges and
 * the time, whether one more plan fits, and if not which budget it would overrun and when that budget
 * frees. The file and PostgreSQL stores run exactly this under their own lock, so both backends
 * decide alike and the rules are unit-tested without either.
 *
 * A charge is one admitted plan. It counts against:
 * - `destructive` (sliding hour): if its action is destructive, for one hour from its admission;
 * - `guests` (sliding hour): its target guest, for one hour from the guest's latest admission;
 * - `concurrent`: the plans that may still send to Proxmox. A run marks its charge applying before
 *   it sends anything (`beginApplying`), which is refused once the charge's `expiresAt` has passed.
 *   So a plan not applying by then can no longer send (it expired, or its run is late and will end
 *   `BudgetSlotLapsed`), and its slot frees at `expiresAt` even if its run cannot say so (its records
 *   cannot be written). An applying plan holds its slot until its run ends (`releasedAt`), or, as a
 *   backstop for a run terminated without running its end (no code runs then), until `lapseAt`.
 * A run that ends without sending anything to Proxmox (rejected, expired, denied or stale at apply,
 * cancelled before applying) is `refunded`: it no longer counts against the hourly budgets either.
 */
import { limitOf, type BudgetLimits, type BudgetName } from './schema.js';

export const WINDOW_MS = 60 * 60 * 1000;
/** How long after its plan's expiry a charge nobody released stops holding a concurrency slot. */
export const LAPSE_AFTER_EXPIRY_MS = 6 * 60 * 60 * 1000;

export interface Charge {
  planId: string;
  principal: string;
  /** When the plan was admitted (ms since the epoch). */
  at: number;
  destructive: boolean;
  /** `<environment>/<vmid>`. */
  guest: string;
  /** The plan's expiry, with a minute for its run to record it and release: a plan not applying by then can no longer send. */
  expiresAt: number;
  lapseAt: number;
  /** When its run began its Proxmox step (beginApplying): from then on only its end or `lapseAt` frees the slot. */
  applyingAt?: number;
  releasedAt?: number;
  refunded?: boolean;
}

export interface ChargeRequest {
  planId: string;
  principal: string;
  destructive: boolean;
  guest: string;
  expiresAt: number;
}

/** One budget a plan would overrun: the machine-readable half of its refusal reason. */
export interface BudgetRefusal {
  principal: string;
  budget: BudgetName;
  limit: number;
  used: number;
  /**
   * When the budget has room again (ISO 8601), at the latest. For `concurrent`: sooner if one of its
   * plans ends, later if one not applying now begins applying before then (it then holds until it ends).
   */
  freesAt: string;
  /** For `concurrent`: the plans holding its slots. */
  heldBy?: string[];
}

export type ChargeVerdict = { admitted: true; charge: Charge } | { admitted: false; refusals: BudgetRefusal[] };

/** Where one budget of one principal stands: the read view and the metrics. */
export interface BudgetUsage {
  principal: string;
  budget: BudgetName;
  limit: number;
  used: number;
  /** Present when the budget is full. */
  freesAt?: string;
  heldBy?: string[];
}

export const guestKey = (environment: string, vmid: number) => `${environment}/${vmid}`;

const inWindow = (c: Charge, now: number) => !c.refunded && c.at > now - WINDOW_MS;
/** Until when a charge holds its concurrency slot, unless its run ends first. */
const slotUntil = (c: Charge) => (c.applyingAt !== undefined ? c.lapseAt : c.expiresAt);
const holding = (c: Charge, now: number) => c.releasedAt === undefined && slotUntil(c) > now;
const iso = (ms: number) => new Date(ms).toISOString();

/** What counts against each budget now: the instants at which each counted unit stops counting. */
function counted(charges: readonly Charge[], now: number): Record<BudgetName, { frees: number[]; heldBy?: string[]; keys?: Set<string> }> {
  const recent = charges.filter((c) => inWindow(c, now));
  const latestPerGuest = new Map<string, number>();
  for (const c of recent) latestPerGuest.set(c.guest, Math.max(latestPerGuest.get(c.guest) ?? 0, c.at));
  const holders = charges.filter((c) => holding(c, now));
  return {
    destructive: { frees: recent.filter((c) => c.destructive).map((c) => c.at + WINDOW_MS) },
    guests: { frees: [...latestPerGuest.values()].map((at) => at + WINDOW_MS), keys: new Set(latestPerGuest.keys()) },
    // A plan not applying ends by its expiry; an applying one when Proxmox is done, at the latest its lapse.
    concurrent: { frees: holders.map(slotUntil), heldBy: holders.map((c) => c.planId) },
  };
}

/** When `used` units of which `limit` are allowed leave room for one more: the (used - limit + 1)-th to free. */
const freesAt = (frees: number[], limit: number): string => iso([...frees].sort((a, b) => a - b)[Math.max(0, frees.length - limit)]!);

/** Every configured budget of `principal`, as it stands at `now`. */
export function budgetUsage(principal: string, limits: BudgetLimits, charges: readonly Charge[], now: number): BudgetUsage[] {
  const mine = charges.filter((c) => c.principal === principal);
  const units = counted(mine, now);
  const out: BudgetUsage[] = [];
  for (const budget of ['destructive', 'guests', 'concurrent'] as const) {
    const limit = limitOf(limits, budget);
    if (limit === undefined) continue;
    const { frees, heldBy } = units[budget];
    const used = frees.length;
    out.push({ principal, budget, limit, used, ...(used >= limit ? { freesAt: freesAt(frees, limit) } : {}), ...(budget === 'concurrent' && heldBy ? { heldBy } : {}) });
  }
  return out;
}

/**
 * Admit one plan against `principal`'s budgets, or name every budget it would overrun. Charging a
 * plan already charged answers its charge again (a retried activity), whatever the budgets say now.
 */
export function decideCharge(limits: BudgetLimits, charges: readonly Charge[], request: ChargeRequest, now: number): ChargeVerdict {
  const already = charges.find((c) => c.planId === request.planId);
  if (already) return { admitted: true, charge: already };
  const units = counted(
    charges.filter((c) => c.principal === request.principal),
    now,
  );
  const refusals: BudgetRefusal[] = [];
  const check = (budget: BudgetName, applies: boolean) => {
    const limit = limitOf(limits, budget);
    const { frees, heldBy } = units[budget];
    if (limit === undefined || !applies || frees.length + 1 <= limit) return;
    refusals.push({
      principal: request.principal,
      budget,
      limit,
      used: frees.length,
      freesAt: freesAt(frees, limit),
      ...(budget === 'concurrent' && heldBy ? { heldBy } : {}),
    });
  };
  check('destructive', request.destructive);
  // A guest touched within the hour already is no new guest.
  check('guests', !units.guests.keys!.has(request.guest));
  check('concurrent', true);
  if (refusals.length > 0) return { admitted: false, refusals };
  return { admitted: true, charge: { ...request, at: now, lapseAt: request.expiresAt + LAPSE_AFTER_EXPIRY_MS } };
}

/** The run ended: the slot frees; nothing sent to Proxmox refunds the hourly budgets too. Idempotent. */
export function releaseCharge(charge: Charge, ended: { sent: boolean }, now: number): Charge {
  if (charge.releasedAt !== undefined) return charge;
  return { ...charge, releasedAt: now, ...(ended.sent ? {} : { refunded: true }) };
}

/**
 * The run is about to send its first request to Proxmox: from now on its slot is held until it ends.
 * Refused (`lapsed`) once the charge's expiry has passed without it: the slot was given up then, and
 * may be another plan's now. Idempotent: a retried step finds its charge applying.
 */
export function beginApplying(charge: Charge, now: number): { ok: true; charge: Charge } | { ok: false; lapsedAt: number } {
  if (charge.applyingAt !== undefined || charge.releasedAt !== undefined) return { ok: true, charge };
  if (now >= charge.expiresAt) return { ok: false, lapsedAt: charge.expiresAt };
  return { ok: true, charge: { ...charge, applyingAt: now } };
}

/**
 * Charges that no longer count for anything and may be forgotten. A charge nobody released is kept
 * until its lapse even when its slot was given up at its expiry: forgotten, its plan would look never
 * charged, and `beginApplying` would let it go on (probe19-budget-pruned-lapse).
 */
export const isSpent = (c: Charge, now: number): boolean => !inWindow(c, now) && (c.releasedAt !== undefined || c.lapseAt <= now);
