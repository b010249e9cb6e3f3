/**
 * The API's `/healthz` and `/readyz` checks (src/api/http/health.ts) over a stand-in client and watch:
 * they answer from the watch at once while Temporal is down, never wait long on a frontend that hangs,
 * and a poller seen before a server restart still counts within its 90 s, as one the server reports does.
 */
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createHealthCheck, createReadinessCheck } from '../../src/api/http/health.js';
import type { TemporalStatus } from '../../src/temporal/watch.js';

const up: TemporalStatus = {
  ok: true,
  reachable: true,
  missingAttributes: [],
  checks: { temporal: { ok: true, detail: 'namespace ns reachable' }, searchAttributes: { ok: true, detail: 'all known' } },
};
const down: TemporalStatus = { ...up, ok: false, reachable: false, checks: { temporal: { ok: false, detail: 'Temporal at t:7233 is not reachable' }, searchAttributes: { ok: false, detail: 'unknown' } } };

function standIn() {
  const state = { pollers: [{ lastAccessTime: { seconds: Math.floor(Date.now() / 1000) } }] as unknown[], calls: 0, hang: false };
  const client = {
    options: { namespace: 'ns' },
    connection: { withDeadline: (_d: number, fn: () => Promise<unknown>) => fn() },
    workflowService: {
      describeTaskQueue: async () => {
        state.calls++;
        if (state.hang) await new Promise((r) => setTimeout(r, 5000));
        return { pollers: state.pollers };
      },
    },
  } as unknown as Client;
  return { state, client };
}

describe('createHealthCheck', () => {
  it('is healthy when the watch says ok and every queue has a poller', async () => {
    const { client } = standIn();
    const report = await createHealthCheck(client, { status: () => up }, 'q', ['lab'])();
    expect(report.ok).toBe(true);
    expect(report.checks).toMatchObject({ worker: { ok: true, detail: '1 workflow poller(s) and 1 activity poller(s) on task queue q' }, 'worker.lab': { ok: true } });
  });

  it('answers from the watch without asking Temporal while it is down', async () => {
    const { state, client } = standIn();
    const report = await createHealthCheck(client, { status: () => down }, 'q', ['lab'])();
    expect(report).toMatchObject({ ok: false, checks: { temporal: { ok: false, detail: 'Temporal at t:7233 is not reachable' }, worker: { ok: false } } });
    expect(state.calls).toBe(0);
  });

  it('counts a poller seen before the server restarted, within 90 s, and says so', async () => {
    const { state, client } = standIn();
    const check = createHealthCheck(client, { status: () => up }, 'q', []);
    expect((await check()).ok).toBe(true);
    state.pollers = []; // a restarted server has not heard from the workers yet
    const report = await check();
    expect(report.ok).toBe(true);
    expect(report.checks.worker!.detail).toMatch(/^no workflow poller reported since the server restarted \(one polled \d+ s ago\)/);
  });

  it('is unhealthy with no poller ever seen, and when the namespace lacks search attributes', async () => {
    const { state, client } = standIn();
    state.pollers = [];
    expect(await createHealthCheck(client, { status: () => up }, 'q', [])()).toMatchObject({ ok: false, checks: { worker: { ok: false, detail: '0 workflow poller(s) and 0 activity poller(s) on task queue q' } } });
    state.pollers = [{ lastAccessTime: { seconds: Math.floor(Date.now() / 1000) } }];
    const missing = { ...up, ok: false, checks: { ...up.checks, searchAttributes: { ok: false, detail: 'lacks ProxmoxPlanId' } } };
    expect(await createHealthCheck(client, { status: () => missing }, 'q', [])()).toMatchObject({ ok: false, checks: { searchAttributes: { ok: false }, worker: { ok: true } } });
  });
  it('does not wait on a frontend that hangs: 503 as soon as the watch says down, else the last answer after 0.8 s', async () => {
    const { state, client } = standIn();
    let temporal = up;
    const check = createHealthCheck(client, { status: () => temporal }, 'q', []);
    expect((await check()).ok).toBe(true);
    state.hang = true; // the frontend froze: the poller question gets no answer

    // Still "up" by the watch: answered from the last poller answer after 0.8 s, not after the 2 s deadline.
    let started = Date.now();
    const stale = await check();
    expect(Date.now() - started).toBeLessThan(1500);
    expect(stale).toMatchObject({ ok: true, checks: { worker: { ok: true, detail: '1 workflow poller(s) and 1 activity poller(s) on task queue q' } } });

    // The watch turns to down while a question is pending: the answer follows at once.
    started = Date.now();
    const pending = check();
    setTimeout(() => (temporal = down), 200);
    expect(await pending).toMatchObject({ ok: false, checks: { temporal: { ok: false }, worker: { ok: false, detail: 'unknown while Temporal is unreachable' } } });
    expect(Date.now() - started).toBeLessThan(500);
    // One question at a time (two calls: workflow and activity pollers): the hung one was shared, not asked again.
    expect(state.calls).toBe(4);
  });
});

describe('createReadinessCheck', () => {
  it("is the watch's verdict, and not ready while shutting down", async () => {
    expect(await createReadinessCheck({ status: () => up }, () => false)()).toMatchObject({ ok: true, checks: { process: { ok: true }, temporal: { ok: true }, searchAttributes: { ok: true } } });
    expect((await createReadinessCheck({ status: () => down }, () => false)()).ok).toBe(false);
    expect(await createReadinessCheck({ status: () => up }, () => true)()).toEqual({ ok: false, checks: { process: { ok: false, detail: 'shutting down' } } });
  });
});
