/**
 * Following a plan without a workflow change: the plan its run published (its memo), read again 100 ms after the
 * first read (or the last change), then at doubling intervals up to `intervalMs` (500 ms by default:
 * one cheap DescribeWorkflowExecution per open stream or long poll). A plan that moves soon (an apply running a short
 * task) is seen moving within ~100 ms; one that waits costs two reads a second. Used by the long poll
 * `GET /v1/actions/{planId}?wait=30s` and the event stream `GET /v1/actions/{planId}/events`.
 */
import { isTerminal, type PlanStatus } from '../../domain/lifecycle.js';
import type { PlanView } from '../../domain/plan-view.js';

export const WATCH_INTERVAL_MS = 500;
export const WATCH_FIRST_INTERVAL_MS = 100;

/** The pause before read `n` (1, 2, ...) since the last change: 100, 200, 400, then `max` ms. */
export function watchDelay(n: number, max = WATCH_INTERVAL_MS): number {
  return Math.min(max, WATCH_FIRST_INTERVAL_MS * 2 ** Math.max(0, n - 1));
}
export const MAX_WAIT_MS = 60_000;

/** `30s`, `500ms`, `1m` or a bare number of seconds → milliseconds, capped at MAX_WAIT_MS. */
export function parseWait(value: string): number {
  const m = /^(\d{1,6})(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new RangeError(`wait must look like 30s, 500ms or 1m, got '${value}'`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  return Math.min(ms, MAX_WAIT_MS);
}

export const WAIT_PATTERN = /^\d{1,6}(ms|s|m)?$/;

export interface WaitOptions {
  /** The status the caller knows; default: the status at the first read. */
  from?: PlanStatus;
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Returns the plan as soon as its status differs from `from` (or it is terminal), or as it is when
 * `timeoutMs` has passed or the caller went away.
 */
export async function waitForChange(read: () => Promise<PlanView>, opts: WaitOptions): Promise<PlanView> {
  const deadline = Date.now() + opts.timeoutMs;
  let view = await read();
  const from = opts.from ?? view.status;
  for (let n = 1; view.status === from && !isTerminal(view.status) && Date.now() < deadline && !opts.signal?.aborted; n++) {
    await sleep(Math.min(watchDelay(n, opts.intervalMs), Math.max(0, deadline - Date.now())), opts.signal);
    if (opts.signal?.aborted) break;
    view = await read();
  }
  return view;
}

/**
 * Yields the plan now, then every time it changes (status, approvals, result: its `updatedAt` or
 * status moves), and ends after a terminal status or when `signal` aborts.
 */
export async function* watchPlan(read: () => Promise<PlanView>, opts: { intervalMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<PlanView> {
  let last: PlanView | undefined;
  let sinceChange = 0;
  while (!opts.signal?.aborted) {
    const view = await read();
    sinceChange++;
    if (!last || view.status !== last.status || view.updatedAt !== last.updatedAt || view.approval.received !== last.approval.received) {
      last = view;
      sinceChange = 1;
      yield view;
    }
    if (isTerminal(view.status)) return;
    await sleep(watchDelay(sinceChange, opts.intervalMs), opts.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
