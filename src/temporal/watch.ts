/**
 * What this process knows of its Temporal namespace, kept current in the background so that
 * readiness never waits on Temporal:
 *
 *  - **reachable**: a DescribeNamespace every 0.5 s under a 1 s deadline, without the SDK's retries
 *    (the probe is its own retry). A miss is a failure without an answer (UNAVAILABLE, DEADLINE_EXCEEDED)
 *    *or* a probe still unanswered 0.6 s after it was sent: a killed server refuses at once, but a hung
 *    one (frozen process, partition) keeps the connection open and would cost the whole deadline. Two
 *    misses in a row (the second probe sent 0.1 s after the first miss) say "down"; one answer, even a
 *    late one from an overdue probe, says "up". So a server killed is noticed in well under a second,
 *    one that hangs within 0.5 + 0.6 + 0.1 + 0.6 = 1.8 s at worst, leaving room under the 3 s bound
 *    (issue 13) for a loaded event loop and the endpoint's own poll.
 *  - **namespace and search attributes**: whether the namespace exists and knows the project's search
 *    attributes (operator ListSearchAttributes, then a count query naming all of them, which the
 *    frontend checks against the same cache a workflow start does: a real server takes a few seconds
 *    to see attributes just registered). Checked at start, every probe while something is missing
 *    (so readiness turns by itself once they are registered), and once a minute otherwise.
 *
 * While the verdict is "down", calls on the connection stop retrying (the SDK's own retry interceptor,
 * whose decider also asks the watch) and fail at once, so the API answers 503 instead of riding out
 * ~20 s of retries. The connection reconnects at most a second apart (`RECONNECT_CHANNEL_ARGS`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { defaultGrpcRetryOptions, makeGrpcRetryInterceptor, type Connection, type ConnectionOptions } from '@temporalio/client';
import type { Logger } from '../logging.js';
import { compareSearchAttributes, listCustomSearchAttributes } from './search-attributes-admin.js';
import { PROJECT_SEARCH_ATTRIBUTES, type SearchAttributeDef } from './search-attributes.js';

export interface Check {
  ok: boolean;
  detail: string;
}

export interface TemporalStatus {
  /** The frontend answers, the namespace exists and knows every project search attribute. */
  ok: boolean;
  /** The frontend answered the latest probe (false: calls fail at once instead of retrying). */
  reachable: boolean;
  /** Project search attributes the namespace lacks, or that the frontend does not know yet. */
  missingAttributes: string[];
  /** `temporal` (frontend and namespace) and `searchAttributes`, as `/healthz` and `/readyz` show them. */
  checks: { temporal: Check; searchAttributes: Check };
}

export interface TemporalWatchOptions {
  /** `host:port` of the frontend, for messages and the registration command. */
  address: string;
  namespace: string;
  log?: Pick<Logger, 'info' | 'warn'>;
  attrs?: readonly SearchAttributeDef[];
  /** Between probes (default 500 ms). */
  intervalMs?: number;
  /** Deadline of one probe call (default 1 s); a late answer within it still says "up". */
  timeoutMs?: number;
  /** A probe unanswered this long counts as a miss without waiting for its deadline (default 600 ms). */
  overdueMs?: number;
  /** Between search-attribute checks once all are there (default 60 s). */
  attributesEveryMs?: number;
}

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

export interface TemporalWatch {
  /** The latest verdict; never waits. */
  status(): TemporalStatus;
  /** For the connection: the SDK's retries, which stop while the watch says Temporal is down. */
  readonly interceptors: Interceptor[];
  /** Probes once (resolves when the first verdict is in), then keeps probing in the background. */
  start(connection: Connection): Promise<void>;
  /** A call just failed on an unknown search attribute: check them again at the next probe. */
  recheck(): void;
  /** The command that registers the project's search attributes on this namespace. */
  readonly registerCommand: string;
  stop(): Promise<void>;
}

/**
 * Channel arguments for every client connection: grpc-js backs off reconnects exponentially up to
 * 120 s, so after an outage of a minute the connection would try again only every minute or two.
 * At most a second apart, a returning server is found within about a second.
 */
export const RECONNECT_CHANNEL_ARGS = { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 } as const;

/** gRPC codes that mean "no answer": the frontend is not there, or did not answer in time. */
const NO_ANSWER = new Set([14 /* UNAVAILABLE */, 4 /* DEADLINE_EXCEEDED */]);

export function createTemporalWatch(opts: TemporalWatchOptions): TemporalWatch {
  const { address, namespace } = opts;
  const attrs = opts.attrs ?? PROJECT_SEARCH_ATTRIBUTES;
  const intervalMs = opts.intervalMs ?? 500;
  const timeoutMs = opts.timeoutMs ?? 1000;
  // A DescribeNamespace is answered from the frontend's namespace cache, without a database read:
  // two in a row each unanswered after 0.6 s (0.7 s apart) is a frontend that hangs, not one that is
  // busy. Answers within about 0.7 s never make two misses in a row: the overdue probe's answer comes
  // before the next probe (sent 0.1 s after the miss) is overdue in turn.
  const overdueMs = Math.min(opts.overdueMs ?? 600, timeoutMs);
  const attributesEveryMs = opts.attributesEveryMs ?? 60_000;
  const registerCommand = `npm run temporal:search-attributes -- --address ${address} --namespace ${namespace}`;

  let status: TemporalStatus = {
    ok: false,
    reachable: true,
    missingAttributes: [],
    checks: { temporal: { ok: false, detail: 'not probed yet' }, searchAttributes: { ok: false, detail: 'not checked yet' } },
  };
  let failures = 0;
  // The last completed verdict on the search attributes: kept across an outage (a restart does not
  // remove them), so readiness returns with the frontend and the check runs again just after.
  let attributes: { check: Check; missing: string[] } = { check: { ok: false, detail: 'not checked yet' }, missing: [] };
  let attributesCheckedAt = -Infinity;
  let attributesDue = true;
  let timer: NodeJS.Timeout | undefined;
  // Probes (and attribute checks) not yet ended: an overdue one runs on while the next is sent.
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  // Calls made inside `probing.run` skip the SDK's retries: a probe that fails is the news.
  const probing = new AsyncLocalStorage<true>();
  const defaults = defaultGrpcRetryOptions();
  const retry = makeGrpcRetryInterceptor({
    delayFunction: defaults.delayFunction,
    retryableDecider: (attempt, s) => status.reachable && defaults.retryableDecider(attempt, s),
  });
  // grpc-js types an interceptor's result as its InterceptingCall class, but chains calls through
  // their interface only: passing the next call on is what an interceptor with nothing to do does.
  const interceptors: Interceptor[] = [(options, nextCall) => (probing.getStore() ? (nextCall(options) as ReturnType<Interceptor>) : retry(options, nextCall))];

  const set = (next: TemporalStatus) => {
    const before = status;
    status = next;
    const { temporal } = next.checks;
    if (temporal.ok !== before.checks.temporal.ok || next.reachable !== before.reachable) {
      if (temporal.ok) opts.log?.info({ address, namespace }, temporal.detail);
      else opts.log?.warn({ address, namespace }, temporal.detail);
    }
    if (next.checks.searchAttributes.detail !== before.checks.searchAttributes.detail && temporal.ok) {
      if (next.checks.searchAttributes.ok) opts.log?.info({ namespace }, next.checks.searchAttributes.detail);
      else opts.log?.warn({ namespace }, next.checks.searchAttributes.detail);
    }
  };

  const call = <T>(connection: Connection, fn: () => Promise<T>) => probing.run(true, () => connection.withDeadline(Date.now() + timeoutMs, fn));

  /** The search attributes' check: undefined when all are known to the frontend. */
  async function missingAttributes(connection: Connection): Promise<{ missing: string[]; detail: string } | undefined> {
    let listed = false;
    try {
      const { missing, wrongType } = compareSearchAttributes(await call(connection, () => listCustomSearchAttributes(connection, namespace)), namespace, attrs);
      if (wrongType.length > 0) return { missing: wrongType.map((w) => w.name), detail: wrongType.map((w) => w.problem).join(' ') };
      if (missing.length > 0) {
        const names = missing.map((a) => a.name);
        return { missing: names, detail: `namespace "${namespace}" lacks the search attribute(s) ${names.join(', ')}, so no plan can start; register them with: ${registerCommand}` };
      }
      listed = true;
    } catch (err) {
      // Temporal Cloud and restricted identities may not use the operator service: the count below still tells.
      if (NO_ANSWER.has(grpcCode(err) ?? -1)) throw err;
    }
    const query = attrs.map((a) => `${a.name} = ${a.type === 'INT' ? '0' : '""'}`).join(' AND ');
    try {
      await call(connection, () => connection.workflowService.countWorkflowExecutions({ namespace, query }));
      return undefined;
    } catch (err) {
      const name = unknownSearchAttribute(err);
      if (name === undefined) throw err;
      return {
        missing: [name],
        detail: listed
          ? `namespace "${namespace}" lists the project's search attributes, but its frontend does not know ${name} yet (a server refreshes its cache within seconds of a registration)`
          : `namespace "${namespace}" does not know the search attribute ${name}, so no plan can start; register the project's search attributes with: ${registerCommand}`,
      };
    }
  }

  /** What a probe that got no answer says: the second miss in a row is "down". */
  const miss = (message: string) => {
    failures += 1;
    attributesDue = true;
    // One missed answer may be a connection the server just recycled: say "down" at the second.
    if (failures < 2) return;
    const detail = `Temporal at ${address} is not reachable: ${message}`;
    set({ ok: false, reachable: false, missingAttributes: attributes.missing, checks: { temporal: { ok: false, detail }, searchAttributes: { ok: false, detail: 'unknown while Temporal does not answer' } } });
  };

  const answered = () => {
    const temporal = { ok: true, detail: `namespace ${namespace} reachable at ${address}` };
    set({ ok: attributes.check.ok, reachable: true, missingAttributes: attributes.missing, checks: { temporal, searchAttributes: attributes.check } });
  };

  let checkingAttributes: Promise<void> | undefined;
  /** The search attributes' check, one at a time, after an answer; the verdict is set when it ends. */
  const checkAttributes = (connection: Connection): Promise<void> => {
    if (!attributesDue && attributes.check.ok && Date.now() - attributesCheckedAt < attributesEveryMs) return Promise.resolve();
    checkingAttributes ??= (async () => {
      try {
        const found = await missingAttributes(connection);
        attributes = found
          ? { check: { ok: false, detail: found.detail }, missing: found.missing }
          : { check: { ok: true, detail: `all ${attrs.length} project search attributes known on namespace ${namespace}` }, missing: [] };
        attributesCheckedAt = Date.now();
        attributesDue = false;
      } catch (err) {
        // Keep the last verdict and try again at the next probe; say why only when there is none.
        if (attributesCheckedAt === -Infinity) attributes = { check: { ok: false, detail: `not checked: ${(err as Error).message}` }, missing: [] };
      } finally {
        checkingAttributes = undefined;
      }
      // Only while the frontend still answers: the check may end after a probe said "down".
      if (status.checks.temporal.ok) answered();
    })();
    return checkingAttributes;
  };

  /**
   * One DescribeNamespace. `decided` resolves once the probe has said something about reachability:
   * an answer, a failure, or `overdueMs` without either (a miss; the call runs on to its deadline, and
   * an answer then still counts). `done` resolves when the call and any attribute check have ended.
   */
  function probe(connection: Connection): { decided: Promise<void>; done: Promise<void> } {
    let decide!: () => void;
    const decided = new Promise<void>((resolve) => (decide = resolve));
    let settled = false;
    let overdue = false;
    // The timer gives way to one turn of the event loop before it counts the miss: on a busy loop an
    // answer already received (I/O phase) is read first instead of losing the race to a late timer.
    const overdueTimer = setTimeout(
      () =>
        setImmediate(() => {
          if (settled || stopped) return;
          overdue = true;
          miss(`no answer to DescribeNamespace within ${overdueMs} ms`);
          decide();
        }),
      overdueMs,
    );
    overdueTimer.unref();
    const done = call(connection, () => connection.workflowService.describeNamespace({ namespace })).then(
      () => {
        settled = true;
        clearTimeout(overdueTimer);
        failures = 0;
        answered();
        const checked = checkAttributes(connection);
        decide();
        return checked;
      },
      (err: unknown) => {
        settled = true;
        clearTimeout(overdueTimer);
        decide();
        const code = grpcCode(err);
        const noAnswer = code === undefined || NO_ANSWER.has(code);
        // Already counted when it went overdue: its deadline passing is the same miss.
        if (overdue && noAnswer) return;
        attributesDue = true;
        if (code === 5 /* NOT_FOUND */) {
          failures = 0;
          attributes = { check: { ok: false, detail: 'unknown while the namespace does not exist' }, missing: [] };
          const detail = `namespace "${namespace}" does not exist on ${address}; create it (temporal operator namespace create --namespace ${namespace} --address ${address}), or set temporal.namespace / TEMPORAL_NAMESPACE to one that exists`;
          return set({ ok: false, reachable: true, missingAttributes: [], checks: { temporal: { ok: false, detail }, searchAttributes: attributes.check } });
        }
        const message = (err as Error).message;
        if (noAnswer) return miss(message);
        failures += 1;
        const detail = `Temporal at ${address} refuses namespace "${namespace}": ${message}`;
        set({ ok: false, reachable: true, missingAttributes: attributes.missing, checks: { temporal: { ok: false, detail }, searchAttributes: { ok: false, detail: 'unknown while Temporal does not answer' } } });
      },
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
    return { decided, done };
  }

  /** Probes until stopped: the next one `intervalMs` after the last verdict, 0.1 s after a first miss. */
  const schedule = (connection: Connection) => {
    if (stopped) return;
    timer = setTimeout(() => {
      void probe(connection).decided.then(() => schedule(connection));
    }, failures === 1 ? 100 : intervalMs);
    timer.unref();
  };

  return {
    status: () => status,
    interceptors,
    registerCommand,
    async start(connection) {
      await probe(connection).done;
      schedule(connection);
    },
    recheck() {
      attributesDue = true;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all([...inFlight].map((p) => p.catch(() => {})));
    },
  };
}

/** The gRPC status code of an error, directly or under the SDK's wrapping (`ServiceError.cause`). */
function grpcCode(err: unknown): number | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

/**
 * The search attribute a call failed on because the namespace does not know it (INVALID_ARGUMENT:
 * "Namespace X has no mapping defined for search attribute Y" on a start, "column name 'Y' is not a
 * valid search attribute" on a visibility query, "search attribute Y is not defined" elsewhere).
 */
export function unknownSearchAttribute(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; message?: unknown; details?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code !== 3 /* INVALID_ARGUMENT */) continue;
    const text = `${String(e.details ?? '')} ${String(e.message ?? '')}`;
    const m =
      /no mapping defined for search attribute "?'?([A-Za-z_][\w]*)/i.exec(text) ??
      /'([A-Za-z_]\w*)' is not a valid search attribute/i.exec(text) ??
      /search attribute "?'?([A-Za-z_]\w*)"?'? (?:is not defined|not found|is not a valid)/i.exec(text);
    if (m) return m[1];
  }
  return undefined;
}
