/**
 * The Temporal watch over a stand-in connection: when it says down and up again, what it says of a
 * namespace without the project's search attributes, and how it reads a call's unknown attribute.
 * (Against a real server: test/integration/temporal-outage.test.ts, temporal-namespace.test.ts.)
 */
import type { Connection } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import { PROJECT_SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.js';
import { createTemporalWatch, unknownSearchAttribute, type TemporalWatch } from '../../src/temporal/watch.js';

const grpcError = (code: number, message: string) => Object.assign(new Error(`${code} ${message}`), { code, details: message });
const ALL = Object.fromEntries(PROJECT_SEARCH_ATTRIBUTES.map((a) => [a.name, a.type === 'INT' ? 3 : 2]));

/** A connection whose answers the test sets; counts the calls. */
function standIn() {
  const state = {
    describe: (): Error | undefined => undefined,
    /** How many DescribeNamespace calls to come get no answer (a frozen server keeps the connection open); each ends at its deadline. */
    hang: 0,
    /** How long an answer takes. */
    delayMs: 0,
    attributes: { ...ALL } as Record<string, number> | Error,
    count: (): Error | undefined => undefined,
    calls: { describe: 0, list: 0, count: 0 },
  };
  let deadline = Infinity;
  const connection = {
    withDeadline: async (at: number, fn: () => Promise<unknown>) => {
      deadline = at;
      return fn();
    },
    workflowService: {
      describeNamespace: async () => {
        state.calls.describe++;
        if (state.delayMs > 0) await sleep(state.delayMs);
        if (state.hang > 0) {
          state.hang--;
          const ms = deadline - Date.now();
          await sleep(Number.isFinite(ms) ? Math.max(0, ms) : 60_000);
          throw grpcError(4, 'DEADLINE_EXCEEDED: Deadline exceeded');
        }
        const err = state.describe();
        if (err) throw err;
        return {};
      },
      countWorkflowExecutions: async () => {
        state.calls.count++;
        const err = state.count();
        if (err) throw err;
        return { count: 0 };
      },
    },
    operatorService: {
      listSearchAttributes: async () => {
        state.calls.list++;
        if (state.attributes instanceof Error) throw state.attributes;
        return { customAttributes: state.attributes };
      },
    },
  } as unknown as Connection;
  return { state, connection };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, probe: () => boolean, ms = 3000) {
  for (const deadline = Date.now() + ms; !probe(); await sleep(10)) if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

let watch: TemporalWatch | undefined;
afterEach(() => watch?.stop());

describe('createTemporalWatch', () => {
  it('is ok once the namespace answers and knows every project search attribute', async () => {
    const { connection } = standIn();
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', intervalMs: 20 });
    await watch.start(connection);
    expect(watch.status()).toMatchObject({ ok: true, reachable: true, missingAttributes: [], checks: { temporal: { ok: true }, searchAttributes: { ok: true } } });
  });

  it('says down at the second missed answer in a row, and up at the first answer', async () => {
    const { state, connection } = standIn();
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', intervalMs: 20 });
    await watch.start(connection);
    let failures = 0;
    state.describe = () => (failures++ === 0 ? grpcError(14, 'UNAVAILABLE: No connection established') : undefined);
    // One miss (a recycled connection) is not an outage.
    await until('the miss and the answer after it', () => failures >= 3);
    expect(watch.status().reachable).toBe(true);

    state.describe = () => grpcError(14, 'UNAVAILABLE: No connection established');
    await until('down', () => !watch!.status().reachable);
    expect(watch.status()).toMatchObject({ ok: false, checks: { temporal: { ok: false, detail: expect.stringContaining('Temporal at t:7233 is not reachable') } } });

    state.describe = () => undefined;
    await until('up', () => watch!.status().ok);
    expect(watch.status().checks.temporal.detail).toBe('namespace ns reachable at t:7233');
  });

  it('comes back with the frontend after an outage, keeping its verdict on the attributes while their check fails', async () => {
    const { state, connection } = standIn();
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', intervalMs: 20 });
    await watch.start(connection);
    state.describe = () => grpcError(14, 'UNAVAILABLE');
    await until('down', () => !watch!.status().reachable);
    expect(watch.status().checks.searchAttributes).toEqual({ ok: false, detail: 'unknown while Temporal does not answer' });
    // Back, but the first checks of the attributes time out (a server still warming up).
    state.count = () => grpcError(4, 'DEADLINE_EXCEEDED');
    const counted = state.calls.count;
    state.describe = () => undefined;
    await until('up', () => watch!.status().ok);
    await until('the attributes checked again', () => state.calls.count > counted + 1);
    expect(watch.status()).toMatchObject({ ok: true, checks: { searchAttributes: { ok: true } } });
  });

  it('names missing search attributes and the command that registers them, and turns ready by itself once they are', async () => {
    const { state, connection } = standIn();
    state.attributes = { ProxmoxAction: 2 };
    watch = createTemporalWatch({ address: 'temporal.internal:7233', namespace: 'ops', intervalMs: 20 });
    await watch.start(connection);
    const s = watch.status();
    expect(s).toMatchObject({ ok: false, reachable: true, checks: { temporal: { ok: true } } });
    expect(s.missingAttributes).toEqual(PROJECT_SEARCH_ATTRIBUTES.map((a) => a.name).filter((n) => n !== 'ProxmoxAction'));
    expect(s.checks.searchAttributes.detail).toContain('ProxmoxPlanId');
    expect(s.checks.searchAttributes.detail).toContain('npm run temporal:search-attributes -- --address temporal.internal:7233 --namespace ops');

    // Registered, but the frontend's cache has not caught up: the count query still refuses one.
    state.attributes = { ...ALL };
    state.count = () => grpcError(3, "INVALID_ARGUMENT: invalid query: invalid expression: column name 'ProxmoxPlanId' is not a valid search attribute");
    await until('the registration seen', () => watch!.status().checks.searchAttributes.detail.includes('does not know ProxmoxPlanId yet'));
    expect(watch.status()).toMatchObject({ ok: false, missingAttributes: ['ProxmoxPlanId'] });

    state.count = () => undefined;
    await until('ready', () => watch!.status().ok);
    expect(watch.status().missingAttributes).toEqual([]);
  });

  it('checks the attributes again only once a minute when all are there, or at once after recheck()', async () => {
    const { state, connection } = standIn();
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', intervalMs: 20 });
    await watch.start(connection);
    await until('a few probes', () => state.calls.describe >= 4);
    expect(state.calls.list).toBe(1);
    state.attributes = {};
    watch.recheck();
    await until('the recheck', () => !watch!.status().ok);
    expect(state.calls.list).toBe(2);
  });

  it('without the operator service (Temporal Cloud) relies on the count query', async () => {
    const { state, connection } = standIn();
    state.attributes = grpcError(7, 'PERMISSION_DENIED: Request unauthorized.');
    state.count = () => grpcError(3, 'INVALID_ARGUMENT: Namespace ops has no mapping defined for search attribute ProxmoxStatus');
    watch = createTemporalWatch({ address: 'ops.acct.tmprl.cloud:7233', namespace: 'ops', intervalMs: 20 });
    await watch.start(connection);
    expect(watch.status()).toMatchObject({ ok: false, missingAttributes: ['ProxmoxStatus'] });
    expect(watch.status().checks.searchAttributes.detail).toContain('does not know the search attribute ProxmoxStatus');
  });

  it('says down within 1.8 s (2.5 s allowed for a loaded host) of a frontend that hangs (never answers), without waiting for the deadlines, and up at its first answer', async () => {
    const { state, connection } = standIn();
    // The production timings (0.5 s apart, 1 s deadline, overdue after 0.6 s): worst case 1.8 s.
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', timeoutMs: 2500 });
    await watch.start(connection);
    expect(watch.status().ok).toBe(true);
    state.hang = Infinity;
    const frozenAt = Date.now();
    await until('down', () => !watch!.status().reachable, 3000);
    const tookMs = Date.now() - frozenAt;
    console.log(`[watch] a hanging frontend said down after ${tookMs} ms`);
    // 1.8 s at worst by the timings; without the overdue rule the 2.5 s deadlines would take 5.6 s.
    expect(tookMs).toBeLessThan(2500);
    expect(watch.status().checks.temporal.detail).toContain('no answer to DescribeNamespace within 600 ms');

    state.hang = 0;
    const thawedAt = Date.now();
    await until('up', () => watch!.status().ok, 3000);
    expect(Date.now() - thawedAt).toBeLessThan(1000);
  });

  it('does not say down for one probe that hangs, nor for answers somewhat slower than the overdue time', async () => {
    const { state, connection } = standIn();
    watch = createTemporalWatch({ address: 't:7233', namespace: 'ns', intervalMs: 20, overdueMs: 100, timeoutMs: 1000 });
    await watch.start(connection);
    let downSeen = false;
    const spy = setInterval(() => (downSeen ||= !watch!.status().reachable), 5);
    try {
      // A single dropped answer: that probe is a miss at 0.1 s, the next one (0.1 s later) answers.
      const sent = state.calls.describe;
      state.hang = 1;
      await until('the dropped probe and two after it', () => state.calls.describe >= sent + 3);
      await sleep(1100); // the hung call's own deadline passes: the same miss, not a second one
      expect(downSeen).toBe(false);
      // Each answer 0.15 s late: overdue, then answered before the next probe can go overdue.
      state.delayMs = 150;
      const slowFrom = state.calls.describe;
      await until('several slow probes', () => state.calls.describe >= slowFrom + 5, 5000);
      expect(downSeen).toBe(false);
      expect(watch.status().ok).toBe(true);
    } finally {
      clearInterval(spy);
    }
  });

  it('says so when the namespace does not exist', async () => {
    const { state, connection } = standIn();
    state.describe = () => grpcError(5, 'NOT_FOUND: Namespace nope is not found.');
    watch = createTemporalWatch({ address: 't:7233', namespace: 'nope', intervalMs: 20 });
    await watch.start(connection);
    expect(watch.status()).toMatchObject({ ok: false, reachable: true, checks: { temporal: { ok: false, detail: expect.stringContaining('namespace "nope" does not exist on t:7233') } } });
  });
});

describe('unknownSearchAttribute', () => {
  it.each([
    ['a start (SQL visibility)', grpcError(3, 'Namespace bare has no mapping defined for search attribute ProxmoxPlanId'), 'ProxmoxPlanId'],
    ['a visibility query', grpcError(3, "invalid query: invalid expression: column name 'ProxmoxStatus' is not a valid search attribute"), 'ProxmoxStatus'],
    ['Elasticsearch', grpcError(3, 'search attribute ProxmoxVmid is not defined'), 'ProxmoxVmid'],
  ])('names the attribute of %s, under the SDK wrapping too', (_what, grpc, name) => {
    expect(unknownSearchAttribute(grpc)).toBe(name);
    expect(unknownSearchAttribute(Object.assign(new Error('Failed to start Workflow'), { name: 'ServiceError', cause: grpc }))).toBe(name);
  });

  it('ignores other errors', () => {
    expect(unknownSearchAttribute(grpcError(14, 'UNAVAILABLE: search attribute X is not defined'))).toBeUndefined();
    expect(unknownSearchAttribute(grpcError(3, 'invalid query'))).toBeUndefined();
    expect(unknownSearchAttribute(new Error('boom'))).toBeUndefined();
  });
});
