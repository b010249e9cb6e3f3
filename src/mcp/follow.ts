/**
 * Following a plan through the API's long poll (`GET /v1/actions/{planId}?wait=…&status=…`), in
 * slices: the long poll answers when the status changes, and a slice ending sooner shows what changed
 * without a status change (an approval counted while the plan still waits for another). The status
 * tool follows this way while it sends progress notifications, and so does a resource subscription.
 */
import { TERMINAL, type ApiClient, type Plan, type PlanStatus } from '../client/index.js';

export interface FollowOptions {
  /** The plan as last seen. */
  start: Plan;
  /** The status the caller knows (default: the start's): with `until: 'change'`, any other ends the follow. */
  known?: PlanStatus;
  /** End at the first status change, or only at a final status. */
  until: 'change' | 'end';
  /** Answer with the plan as it is at this time (ms since the epoch); default: not before the end. */
  deadline?: number;
  /** The longest single long poll, in seconds (1-60): how soon a change that keeps the status is seen. */
  sliceSeconds: number;
  signal?: AbortSignal;
  /** Each plan that differs from the one before it (status, approvals, result). */
  onChange?: (plan: Plan, before: Plan) => unknown;
  /** Each slice that ended with nothing new. */
  onIdle?: (plan: Plan) => unknown;
}

export async function followPlan(client: Pick<ApiClient, 'wait'>, planId: string, opts: FollowOptions): Promise<Plan> {
  let current = opts.start;
  const known = opts.known ?? current.status;
  for (;;) {
    if (isFinal(current.status) || (opts.until === 'change' && current.status !== known) || opts.signal?.aborted) return current;
    const left = (opts.deadline ?? Infinity) - Date.now();
    if (left <= 0) return current;
    const waitSeconds = Math.max(1, Math.min(opts.sliceSeconds, Math.ceil(left / 1000)));
    const next = await client.wait(planId, { waitSeconds, status: current.status, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (differs(current, next)) await opts.onChange?.(next, current);
    else await opts.onIdle?.(next);
    current = next;
  }
}

export const isFinal = (status: PlanStatus): boolean => TERMINAL.includes(status);

/** A change a follower cares about: the status, an approval or rejection, the result. */
export function differs(a: Plan, b: Plan): boolean {
  return (
    a.status !== b.status ||
    a.updatedAt !== b.updatedAt ||
    a.approval.received !== b.approval.received ||
    a.approval.rejectedBy?.principal !== b.approval.rejectedBy?.principal ||
    a.result?.outcome !== b.result?.outcome
  );
}

/** One line of what the plan is doing now, for a progress notification. */
export function progressLine(p: Plan): string {
  const approvals = p.approval.required > 0 ? `; ${p.approval.received} of ${p.approval.required} approvals${p.approval.approvers.length ? ` (${p.approval.approvers.map((a) => `${a.principal} via ${a.channel}`).join(', ')})` : ''}` : '';
  const task = p.result?.upid ? `; Proxmox task ${p.result.upid}` : '';
  return `${p.planId}: ${p.status}${approvals}${task}`;
}
