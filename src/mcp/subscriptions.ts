/**
 * Resource subscriptions of one MCP connection (`resources/subscribe`): each subscribed plan is
 * followed through the API's long poll, and every change (status, an approval, the result) is sent as
 * `notifications/resources/updated` until the plan is final, the client unsubscribes or the
 * connection closes. The catalog and the risk matrix do not change while the service runs:
 * subscribing to them is accepted and sends nothing.
 */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { ApiProblemError, type ApiClient, type Plan } from '../client/index.js';
import { followPlan } from './follow.js';

export interface SubscriptionDeps {
  maxSubscriptions: number;
  sliceSeconds: number;
  planIdOf: (uri: string) => string | undefined;
  /** A resource that exists and never changes (the catalog, the risk matrix). */
  staticResource: (uri: string) => boolean;
  /** The plan now; rejects with the MCP error the subscriber gets (not found, forbidden). */
  read: (planId: string) => Promise<Plan>;
  wait: ApiClient['wait'];
  updated: (uri: string) => Promise<void>;
}

/** How long a follow that failed for a reason other than access (Temporal or the API busy) waits to try again. */
const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export function watchSubscriptions(deps: SubscriptionDeps) {
  const watching = new Map<string, AbortController>();

  async function follow(uri: string, planId: string, first: Plan, signal: AbortSignal): Promise<void> {
    let plan = first;
    for (let failures = 0; !signal.aborted; ) {
      try {
        plan = await followPlan(deps, planId, {
          start: plan,
          until: 'end',
          sliceSeconds: deps.sliceSeconds,
          signal,
          onChange: (p) => {
            plan = p;
            failures = 0;
            return deps.updated(uri).catch(() => undefined);
          },
        });
        return; // final (or unsubscribed)
      } catch (err) {
        if (signal.aborted) return;
        // The subscriber lost access (token expired, environment taken away): stop following.
        if (err instanceof ApiProblemError && err.status < 500 && err.status !== 429) return;
        await sleep(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]!, signal);
      }
    }
  }

  return {
    async subscribe(uri: string): Promise<void> {
      const planId = deps.planIdOf(uri);
      if (!planId) {
        if (deps.staticResource(uri)) return; // exists, and never changes: nothing to send
        // As reading it would: a subscription to nothing must not leave the client waiting for updates.
        throw new McpError(ErrorCode.InvalidParams, `no such resource: ${uri}`);
      }
      if (watching.has(uri)) return;
      if (watching.size >= deps.maxSubscriptions)
        throw new McpError(ErrorCode.InvalidRequest, `at most ${deps.maxSubscriptions} subscriptions per connection; unsubscribe from a finished plan first`);
      const first = await deps.read(planId); // 404 for a plan this token cannot see, before anything is watched
      const controller = new AbortController();
      watching.set(uri, controller);
      void follow(uri, planId, first, controller.signal).finally(() => {
        if (watching.get(uri) === controller) watching.delete(uri);
      });
    },
    unsubscribe(uri: string): void {
      watching.get(uri)?.abort();
      watching.delete(uri);
    },
    /** Subscriptions being followed now. */
    get size(): number {
      return watching.size;
    },
    close(): void {
      for (const controller of watching.values()) controller.abort();
      watching.clear();
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
