/**
 * What waits for a human: runs whose `ProxmoxStatus` search attribute is `awaiting_approval`, found
 * through Temporal visibility and then read as each run last published it (its memo, read from the server), which is authoritative
 * (visibility is eventually consistent, so a run that moved on since is dropped).
 *
 * Oldest first, in pages. Visibility lists newest first and (on SQL stores) cannot sort, so a page
 * lists pending ids from the cursor on, sorts them by (start time, plan id) and reads the first
 * `limit`: the plans closest to expiry are never hidden behind newer ones. Past one visibility page
 * of pending runs, count queries first narrow the listing to a start-time window (`windowEnd`).
 */
import type { Client } from '@temporalio/client';
import { PLAN_ID_PATTERN } from '../../domain/plan-id.js';
import type { PlanView } from '../../domain/plan-view.js';
import { ProxmoxEnvironment, ProxmoxStatus } from '../../temporal/search-attributes.js';
import type { PlanGateway } from './plan-gateway.js';
import { ApiError } from '../http/problems.js';

export interface ApprovalQueueOptions {
  client: Client;
  taskQueue: string;
  plans: Pick<PlanGateway, 'state'>;
  /** Parallel state queries (default 8). */
  concurrency?: number;
}

/** A position in the queue: the start time (ms) and plan id of the last plan a page held. */
export interface PendingCursor {
  startMs: number;
  planId: string;
}

export interface PendingFilter {
  /** The caller's environments; '*' for all. */
  environments: readonly string[];
  limit: number;
  /** Only plans after this position. */
  after?: PendingCursor;
}

export interface PendingPage {
  items: PlanView[];
  /** Where the next page starts; absent on the last page. */
  next?: PendingCursor;
}

/**
 * The cursor's wire form, `<start ms>.<plan id>`: every string matching it is a valid position (so a
 * well-formed cursor never fails), and the OpenAPI document states the pattern.
 */
export const CURSOR_PATTERN = new RegExp(`^([0-9]{1,13})\\.(${PLAN_ID_PATTERN.source.slice(1, -1)})$`);

export function encodeCursor(c: PendingCursor): string {
  return `${c.startMs}.${c.planId}`;
}

export function decodeCursor(s: string): PendingCursor | undefined {
  const m = CURSOR_PATTERN.exec(s);
  return m ? { startMs: Number(m[1]), planId: m[2]! } : undefined;
}

/** Queue order: start time, then plan id (two plans may start in the same millisecond). */
function compareKeys(a: PendingCursor, b: PendingCursor): number {
  return a.startMs - b.startMs || (a.planId < b.planId ? -1 : a.planId > b.planId ? 1 : 0);
}

/** A visibility query string literal; values never carry quotes (names and ids are validated upstream). */
function quote(v: string): string {
  if (/["'\\]/.test(v)) throw new ApiError('internal', 'a visibility query value contains a quote');
  return `"${v}"`;
}

/** The visibility query: this deployment's task queue, open runs, awaiting approval, the caller's environments. */
export function pendingQuery(taskQueue: string, environments: readonly string[], after?: PendingCursor): string {
  const clauses = [
    `WorkflowType = "actionWorkflow"`,
    `TaskQueue = ${quote(taskQueue)}`,
    `ExecutionStatus = "Running"`,
    `${ProxmoxStatus.name} = "awaiting_approval"`,
  ];
  if (!environments.includes('*')) clauses.push(`${ProxmoxEnvironment.name} IN (${environments.map(quote).join(', ')})`);
  // >= and the millisecond floor: visibility keeps microseconds, the cursor milliseconds; the plans of
  // that millisecond up to the cursor's plan id are skipped after sorting.
  if (after) clauses.push(`StartTime >= ${quote(isoTime(after.startMs))}`);
  return clauses.join(' AND ');
}

export function createApprovalQueue({ client, taskQueue, plans, concurrency = 8 }: ApprovalQueueOptions) {
  /**
   * The `state` reads under way, by plan: concurrent listings (several approvers, or one refreshing)
   * share one instead of querying the same run again, since the listing is a snapshot anyway. Measured
   * on a real cluster (docs/benchmarks.md, "On a real cluster"): ten parallel listings of 1,050 waiting
   * plans made ten concurrent queries of each run on the page, most of them runs the worker no longer
   * caches; now and then one was lost on the worker's sticky queue and answered only after the
   * server's 10 s sticky timeout (the worker's stickyQueueScheduleToStartTimeout), from the normal queue.
   */
  const reading = new Map<string, Promise<PlanView>>();
  const readState = (planId: string): Promise<PlanView> => {
    let read = reading.get(planId);
    if (!read) {
      read = plans.state(planId).finally(() => reading.delete(planId));
      reading.set(planId, read);
    }
    return read;
  };
  return {
    async pending({ environments, limit, after }: PendingFilter): Promise<PendingPage> {
      if (environments.length === 0) return { items: [] };
      const base = pendingQuery(taskQueue, environments, after);
      const listKeys = async (query: string): Promise<PendingCursor[]> => {
        const keys: PendingCursor[] = [];
        for await (const run of client.workflow.list({ query, pageSize: LIST_PAGE })) {
          const key = { startMs: run.startTime.getTime(), planId: run.workflowId };
          if (!after || compareKeys(key, after) > 0) keys.push(key);
        }
        return keys.sort(compareKeys);
      };
      const total = (await client.workflow.count(base)).count;
      // Twice the page and some, not limit + 1: the count includes plans the listing drops (the
      // cursor's own, or others of its millisecond) and plans may stop waiting in between, and a short
      // window would cost the full listing below. At most three times that: a listing costs by the id.
      const want = 2 * limit + 50;
      const until =
        total > LIST_PAGE
          ? await windowEnd((q) => client.workflow.count(q).then((c) => c.count), base, { want, most: Math.min(LIST_PAGE, 3 * want), from: after?.startMs, now: Date.now() })
          : undefined;
      let keys = await listKeys(until === undefined ? base : `${base} AND StartTime < ${quote(isoTime(until))}`);
      // The window held no more than this page (more than limit + 50 plans stopped waiting since the
      // count, or clocks far apart): list everything after the cursor, so a next page is never promised in vain.
      if (until !== undefined && keys.length <= limit) keys = await listKeys(base);
      const page = keys.slice(0, limit);
      const views = await mapLimit(page, concurrency, async ({ planId }) => {
        try {
          return await readState(planId);
        } catch (err) {
          if (err instanceof ApiError && (err.code === 'plan-not-found' || err.code === 'plan-not-ready')) return undefined;
          throw err;
        }
      });
      const visible = (v: PlanView) => environments.includes('*') || environments.includes(v.environment);
      return {
        // A plan that moved on since visibility saw it is left out: a page may hold fewer than `limit`.
        items: views.filter((v): v is PlanView => v !== undefined && v.status === 'awaiting_approval' && visible(v)),
        ...(keys.length > limit ? { next: page[page.length - 1]! } : {}),
      };
    },
  };
}

export type ApprovalQueue = ReturnType<typeof createApprovalQueue>;

/** The visibility page size (the server's default maximum). */
const LIST_PAGE = 1000;

const isoTime = (ms: number) => new Date(ms).toISOString();

/**
 * A start time before which at least `want` and at most `most` pending plans started, so that one
 * short listing holds the oldest: visibility lists newest first and cannot sort, and
 * listing 10,000 ids takes ten pages where a count takes about as long as one. First an exponential
 * search for a bracket (forward from the cursor, or back from now without one), then bisection; about
 * 10–35 counts for plans spread over seconds to a year. Undefined when the budget of counts ran out,
 * and the caller lists everything.
 */
export async function windowEnd(
  count: (query: string) => Promise<number>,
  base: string,
  { want, most = LIST_PAGE, from, now }: { want: number; most?: number; from: number | undefined; now: number },
): Promise<number | undefined> {
  let budget = 64;
  const below = async (t: number) => {
    budget -= 1;
    return count(`${base} AND StartTime < ${quote(isoTime(t))}`);
  };
  // Bracket: below(lo) < want <= below(hi). Every pending plan started before `hi` (a minute of
  // clock skew allowed; a larger skew only makes the window short, and the caller lists everything).
  let lo = from ?? 0; // below(from) = 0: the base query starts there
  let hi = now + 60_000;
  if (from !== undefined) {
    for (let step = 1000; from + step < hi && budget > 0; step *= 2) {
      const c = await below(from + step);
      if (c >= want) {
        if (c <= most) return from + step;
        hi = from + step;
        break;
      }
      lo = from + step;
    }
  } else {
    for (let step = 1000; now - step > 0 && budget > 0; step *= 2) {
      const c = await below(now - step);
      if (c < want) {
        lo = now - step;
        break;
      }
      if (c <= most) return now - step;
      hi = now - step;
    }
  }
  while (hi - lo > 1 && budget > 0) {
    const mid = Math.floor((lo + hi) / 2);
    const c = await below(mid);
    if (c < want) lo = mid;
    else if (c > most) hi = mid;
    else return mid;
  }
  // Many plans in one millisecond, or out of counts: the bracket's end still bounds the listing.
  return hi - lo <= 1 ? hi : undefined;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
