/**
 * GET /v1/budgets through the real Hono app over a file ledger: an agent sees its own principal's
 * budgets only; the admin scope sees every configured principal; read scope and a token needed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { openFileBudgetStore } from '../../src/budgets/file-store.js';
import { createBudgetView } from '../../src/budgets/view.js';
import type { BudgetsConfig } from '../../src/budgets/schema.js';
import { bearer, testToken as token } from '../support/tokens.js';

const LIMITS: BudgetsConfig = { 'agent:pi': { perHour: { destructive: 1 }, concurrent: 2 }, 'agent:other': { concurrent: 1 } };

async function app() {
  const store = await openFileBudgetStore(join(mkdtempSync(join(tmpdir(), 'pa-budget-route-')), 'ledger.json'));
  await store.charge(LIMITS['agent:pi']!, { planId: 'plan-1', principal: 'agent:pi', destructive: true, guest: 'lab/100', expiresAt: Date.now() + 3_600_000 });
  return createApp({
    plans: {} as PlanGateway,
    authenticate: createAuthenticator([token('pi'), token('other'), token('root', { scopes: ['admin', 'read'] }), token('planner', { scopes: ['plan'] })]),
    environments: new Set(['lab']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    budgets: createBudgetView(store, () => LIMITS),
  });
}

const get = async (a: Awaited<ReturnType<typeof app>>, id?: string) => {
  const res = await a.request('/v1/budgets', id ? { headers: bearer(id) } : {});
  return { status: res.status, body: (await res.json()) as { budgets: { principal: string; budget: string; used: number; limit: number; freesAt?: string; heldBy?: string[] }[]; type?: string } };
};

describe('GET /v1/budgets', () => {
  it("shows an agent its own principal's budgets: used of limit, and when a full one frees", async () => {
    const { status, body } = await get(await app(), 'pi');
    expect(status).toBe(200);
    expect(body.budgets).toEqual([
      { principal: 'agent:pi', budget: 'destructive', limit: 1, used: 1, freesAt: expect.any(String) },
      { principal: 'agent:pi', budget: 'concurrent', limit: 2, used: 1, heldBy: ['plan-1'] },
    ]);
    expect((await get(await app(), 'other')).body.budgets).toEqual([{ principal: 'agent:other', budget: 'concurrent', limit: 1, used: 0, heldBy: [] }]);
  });

  it('shows every configured principal to the admin scope, and needs read and a token', async () => {
    const a = await app();
    expect(new Set((await get(a, 'root')).body.budgets.map((b) => b.principal))).toEqual(new Set(['agent:pi', 'agent:other']));
    expect(await get(a, 'planner')).toMatchObject({ status: 403, body: { type: '/problems/forbidden' } });
    expect((await get(a)).status).toBe(401);
  });
});
