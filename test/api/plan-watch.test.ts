/**
 * Long poll and event stream over a fake plan gateway whose plan moves on a script: the long poll
 * answers on a change, on a terminal status or at the deadline; the stream sends the current state,
 * then each change, and ends after a terminal status.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { MAX_WAIT_MS, parseWait, waitForChange, watchDelay, watchPlan } from '../../src/api/plans/plan-watch.js';
import { sha256Hex } from '../../src/domain/hashing.js';
import type { PlanStatus } from '../../src/domain/lifecycle.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

/** A plan whose status follows `script`, one step per read. */
function scripted(script: PlanStatus[]) {
  let reads = 0;
  const read = async (): Promise<PlanView> => {
    const status = script[Math.min(reads, script.length - 1)]!;
    reads++;
    return pendingPlan({ status, updatedAt: `2026-03-01T12:00:0${Math.min(reads, 9)}.000Z` });
  };
  return { read, reads: () => reads };
}

describe('parseWait', () => {
  it.each([['30s', 30_000], ['500ms', 500], ['1m', 60_000], ['45', 45_000], ['10m', MAX_WAIT_MS], ['0', 0]])('%s → %d ms', (input, ms) => expect(parseWait(input)).toBe(ms));
  it.each(['', '1h', '-1s', 'soon', '1.5s'])('refuses %j', (input) => expect(() => parseWait(input)).toThrow(RangeError));
});

describe('waitForChange', () => {
  it('returns as soon as the status differs from the one at the first read', async () => {
    const s = scripted(['awaiting_approval', 'awaiting_approval', 'applying']);
    expect((await waitForChange(s.read, { timeoutMs: 10_000, intervalMs: 1 })).status).toBe('applying');
    expect(s.reads()).toBe(3);
  });
  it('returns at once when the status already differs from the one the caller knows', async () => {
    const s = scripted(['applying', 'succeeded']);
    expect((await waitForChange(s.read, { from: 'awaiting_approval', timeoutMs: 10_000, intervalMs: 1 })).status).toBe('applying');
    expect(s.reads()).toBe(1);
  });
  it('returns at once on a terminal status', async () => {
    const s = scripted(['succeeded']);
    expect((await waitForChange(s.read, { from: 'succeeded', timeoutMs: 10_000, intervalMs: 1 })).status).toBe('succeeded');
    expect(s.reads()).toBe(1);
  });
  it('returns the unchanged plan when the wait ends', async () => {
    const s = scripted(['awaiting_approval']);
    expect((await waitForChange(s.read, { timeoutMs: 300, intervalMs: 5 })).status).toBe('awaiting_approval');
    expect(s.reads()).toBeGreaterThan(1);
  });
  it('stops when the caller goes away', async () => {
    const s = scripted(['awaiting_approval']);
    const abort = new AbortController();
    const waiting = waitForChange(s.read, { timeoutMs: 60_000, intervalMs: 10_000, signal: abort.signal });
    setTimeout(() => abort.abort(), 10);
    expect((await waiting).status).toBe('awaiting_approval');
  });
});

describe('watchPlan', () => {
  it('yields the first state, then each change once, and ends after a terminal status', async () => {
    const s = scripted(['awaiting_approval', 'awaiting_approval', 'approved', 'applying', 'applying', 'succeeded', 'succeeded']);
    // The repeated reads carry a new updatedAt each time: only status/updatedAt/approvals changes are yielded.
    const seen: string[] = [];
    for await (const v of watchPlan(s.read, { intervalMs: 1 })) seen.push(v.status);
    expect(seen[0]).toBe('awaiting_approval');
    expect(seen.at(-1)).toBe('succeeded');
    expect(seen.filter((x) => x === 'succeeded')).toHaveLength(1);
    expect(s.reads()).toBe(6);
  });
  it('does not repeat a state that did not change', async () => {
    let n = 0;
    const same = pendingPlan({ status: 'awaiting_approval' });
    const read = async () => (++n >= 4 ? { ...same, status: 'expired' as const, updatedAt: 'later' } : same);
    const seen: string[] = [];
    for await (const v of watchPlan(read, { intervalMs: 1 })) seen.push(v.status);
    expect(seen).toEqual(['awaiting_approval', 'expired']);
  });
});

describe('GET /v1/actions/{planId}?wait= and /events through the app', () => {
  /** The API over a plan whose status follows `script`. */
  function app(script: PlanStatus[]) {
    const s = scripted(script);
    return appOver({ state: async (planId: string) => ({ ...(await s.read()), planId }) } as unknown as PlanGateway);
  }
  function appOver(gateway: PlanGateway) {
    const deps: ApiDeps = {
      plans: gateway,
      authenticate: createAuthenticator([{ id: 'r', principal: 'agent:r', secretSha256: sha256Hex('r-secret'), scopes: ['read'], environments: ['*'], roles: [] }]),
      environments: new Set(['prod']),
      health: async () => ({ ok: true, checks: {} }),
      evaluate: async () => {
        throw new Error('unused');
      },
    };
    return createApp(deps);
  }
  const auth = { headers: { authorization: 'Bearer r-secret' } };
  const id = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';

  it('long-polls until the status differs from ?status=', async () => {
    const res = await app(['awaiting_approval', 'awaiting_approval', 'applying']).request(`/v1/actions/${id}?wait=5s&status=awaiting_approval`, auth);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('applying');
  });
  it('refuses a wait that is not a duration', async () => {
    const res = await app(['applying']).request(`/v1/actions/${id}?wait=forever`, auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { path: string }[] }).errors[0]!.path).toBe('wait');
  });
  it('streams the current state, then each change, and closes after the terminal one', async () => {
    const res = await app(['awaiting_approval', 'applying', 'succeeded']).request(`/v1/actions/${id}/events`, auth);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const events = text.split('\n\n').filter((b) => b.includes('event: status'));
    const statuses = events.map((e) => JSON.parse(e.split('\n').find((l) => l.startsWith('data: '))!.slice(6)).status);
    expect(statuses).toEqual(['awaiting_approval', 'applying', 'succeeded']);
    expect(events[0]).toContain('id: 1');
    expect(text.startsWith('retry: 2000')).toBe(true);
  });
  it('stops reading the plan when the client goes away', async () => {
    let reads = 0;
    const gateway = { state: async (planId: string) => (reads++, pendingPlan({ planId, status: 'awaiting_approval' })) } as unknown as PlanGateway;
    const res = await appOver(gateway).request(`/v1/actions/${id}/events`, auth);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('retry: 2000');
    await new Promise((r) => setTimeout(r, 1200));
    expect(reads).toBeGreaterThan(1); // polling while connected
    await reader.cancel();
    await new Promise((r) => setTimeout(r, 600));
    const after = reads;
    await new Promise((r) => setTimeout(r, 1500));
    expect(reads).toBe(after);
  });

  it('answers a problem, not a stream, for an unknown plan or a missing token', async () => {
    const a = app(['applying']);
    expect((await a.request(`/v1/actions/${id}/events`)).status).toBe(401);
    expect((await a.request('/v1/actions/not-a-plan/events', auth)).status).toBe(400);
  });
});

describe('watchDelay', () => {
  it('reads again after 100 ms, then backs off by doubling to the interval', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => watchDelay(n))).toEqual([100, 200, 400, 500, 500, 500]);
  });
  it('never waits longer than a shorter interval', () => {
    expect([1, 2, 3].map((n) => watchDelay(n, 1))).toEqual([1, 1, 1]);
  });
});
