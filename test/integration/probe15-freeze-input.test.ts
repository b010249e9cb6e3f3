/**
 * Probe 15 / freeze: who may freeze and lift, and what bad input gets. Every refusal must be a 4xx
 * application/problem+json and change nothing: no freeze in the journal (GET /v1/freezes with
 * includeLifted), no freeze record on the audit chain, and plans made afterwards not frozen.
 * Also: an admin limited to one environment cannot freeze or lift another's; lifting twice by two
 * admins at once leaves one lifted record; the audit chain verifies.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/record.js';
import type { Config } from '../../src/config/schema.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const ADMIN2 = 'probe15-admin2-token';
const LAB_ADMIN = 'probe15-lab-admin-token';
const ADMIN_NO_READ = 'probe15-admin-noread-token';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const withAdmins = (config: Config) => {
  config.tokens.push(
    { id: 'probe15-admin2', principal: 'human:dave', secretSha256: sha(ADMIN2), scopes: ['admin', 'read'], environments: ['*'], roles: [] },
    { id: 'probe15-lab-admin', principal: 'human:erin', secretSha256: sha(LAB_ADMIN), scopes: ['admin', 'read'], environments: ['lab'], roles: [] },
    { id: 'probe15-admin-noread', principal: 'human:frank', secretSha256: sha(ADMIN_NO_READ), scopes: ['admin'], environments: ['*'], roles: [] },
  );
};

let t: TestService;
beforeAll(async () => {
  t = await startTestService(withAdmins);
});
afterAll(async () => {
  await t?.stop();
});

const raw = async (method: string, path: string, token: string | undefined, body?: string, contentType = 'application/json') => {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text };
};
const allFreezes = async (): Promise<{ id: string; environment: string }[]> => {
  // One retry: a keep-alive socket the server closed after a 413 may be handed out once more.
  const get = () => t.call('GET', '/v1/freezes?includeLifted=true', { token: TOKENS.admin });
  const r = await get().catch(() => get());
  return r.body.freezes;
};
const freezeRecords = async () => (await t.service.audit.all()).filter((r) => r.event.startsWith('freeze.'));

describe('bad input and the wrong tokens change nothing', () => {
  it('every refusal is a 4xx problem+json; no freeze is written, none audited', async () => {
    const cases: [string, string, string | undefined, string | undefined, string?][] = [
      // [what, method+path, token, body, content-type]
      ['no token', 'POST /v1/freezes', undefined, JSON.stringify({ environment: 'lab', reason: 'no token here' })],
      ['bad token', 'POST /v1/freezes', 'nope-not-a-token', JSON.stringify({ environment: 'lab', reason: 'bad token here' })],
      ['agent', 'POST /v1/freezes', TOKENS.agent, JSON.stringify({ environment: 'lab', reason: 'agent tries' })],
      ['approver', 'POST /v1/freezes', TOKENS.approver1, JSON.stringify({ environment: 'prod', reason: 'approver tries' })],
      ['ops', 'POST /v1/freezes', TOKENS.ops, JSON.stringify({ environment: 'prod', reason: 'ops tries' })],
      ['lab-only reader', 'POST /v1/freezes', TOKENS.labOnly, JSON.stringify({ environment: 'lab', reason: 'lab reader tries' })],
      ['lab admin on prod', 'POST /v1/freezes', LAB_ADMIN, JSON.stringify({ environment: 'prod', reason: 'lab admin tries prod' })],
      ['lab admin on *', 'POST /v1/freezes', LAB_ADMIN, JSON.stringify({ environment: '*', reason: 'lab admin tries star' })],
      ['admin on *', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: '*', reason: 'everything at once' })],
      ['not json', 'POST /v1/freezes', TOKENS.admin, '{environment: lab'],
      ['array', 'POST /v1/freezes', TOKENS.admin, JSON.stringify([{ environment: 'lab', reason: 'in an array' }])],
      ['null', 'POST /v1/freezes', TOKENS.admin, 'null'],
      ['empty object', 'POST /v1/freezes', TOKENS.admin, '{}'],
      ['no reason', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab' })],
      ['blank reason', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: '      ' })],
      ['short reason', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: ' ab ' })],
      ['long reason', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: 'x'.repeat(501) })],
      ['reason number', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: 12345 })],
      ['env number', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 1, reason: 'number env' })],
      ['env array', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: ['lab'], reason: 'array env' })],
      ['env unknown', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'staging', reason: 'no such env' })],
      ['env case', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'LAB', reason: 'upper case env' })],
      ['env padded', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: ' lab', reason: 'padded env' })],
      ['env proto', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: '__proto__', reason: 'proto env' })],
      ['env toString', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'toString', reason: 'toString env' })],
      ['extra field', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: 'extra field', id: 'frz_00000000000000000000' })],
      ['text/plain', 'POST /v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: 'as text plain' }), 'text/plain'],
      ['form', 'POST /v1/freezes', TOKENS.admin, 'environment=lab&reason=as+a+form', 'application/x-www-form-urlencoded'],
      ['lift bad id', 'DELETE /v1/freezes/frz_nothex', TOKENS.admin, undefined],
      ['lift upper', 'DELETE /v1/freezes/FRZ_00000000000000000000', TOKENS.admin, undefined],
      ['lift long', 'DELETE /v1/freezes/frz_000000000000000000000', TOKENS.admin, undefined],
      ['lift traversal', 'DELETE /v1/freezes/..%2Ffrz_00000000000000000000', TOKENS.admin, undefined],
      ['lift unknown', 'DELETE /v1/freezes/frz_00000000000000000000', TOKENS.admin, undefined],
      ['lift agent', 'DELETE /v1/freezes/frz_00000000000000000000', TOKENS.agent, undefined],
      ['list bad flag', 'GET /v1/freezes?includeLifted=yes', TOKENS.admin, undefined],
      ['list no read', 'GET /v1/freezes', ADMIN_NO_READ, undefined],
    ];
    const seen: Record<string, number> = {};
    for (const [what, route, token, body, ct] of cases) {
      const [method, path] = route.split(' ') as [string, string];
      const r = await raw(method, path, token, body, ct);
      seen[what] = r.status;
      expect(r.status, `${what}: ${r.status} ${r.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${what}: ${r.status} ${r.text.slice(0, 200)}`).toBeLessThan(500);
      expect(r.type, `${what}: ${r.type}`).toMatch(/application\/problem\+json/);
    }
    expect(await allFreezes(), JSON.stringify(seen)).toEqual([]);
    expect(await freezeRecords()).toEqual([]);
    const p = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'p15input' }, reason: 'probe15 input' } });
    expect(p.body.frozen).toBeUndefined();
    // Over the 64 KiB body limit: a 413 problem, or the connection closed while the body still arrives (either changes nothing).
    const huge = await raw('POST', '/v1/freezes', TOKENS.admin, JSON.stringify({ environment: 'lab', reason: 'huge body', pad: 'y'.repeat(300_000) })).catch((err: Error) => ({ status: 413, type: 'application/problem+json', text: `closed: ${err.message}` }));
    expect(huge.status).toBe(413);
    await new Promise((r) => setTimeout(r, 500));
    expect(await allFreezes()).toEqual([]);
  }, 60_000);

  it('a lab admin cannot lift a prod freeze; two admins lifting at once leave one lifted record; the chain verifies', async () => {
    const f = await t.call('POST', '/v1/freezes', { token: TOKENS.admin, body: { environment: 'prod', reason: 'probe15 prod freeze' } });
    expect(f.status).toBe(201);
    const byLab = await t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: LAB_ADMIN });
    expect(byLab.status).toBe(404);
    expect((await t.call('GET', '/v1/freezes', { token: TOKENS.admin })).body.freezes.map((x: { id: string }) => x.id)).toEqual([f.body.id]);
    // A lab admin's freeze of lab is fine and it can lift it.
    const g = await t.call('POST', '/v1/freezes', { token: LAB_ADMIN, body: { environment: 'lab', reason: 'probe15 lab freeze' } });
    expect(g.status).toBe(201);
    expect((await t.call('DELETE', `/v1/freezes/${g.body.id}`, { token: LAB_ADMIN })).status).toBe(200);

    const [a, b] = await Promise.all([t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: TOKENS.admin }), t.call('DELETE', `/v1/freezes/${f.body.id}`, { token: ADMIN2 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body).toEqual(b.body);
    const records = await t.service.audit.forPlan(`freeze/${f.body.id}`);
    expect(records.map((r) => r.event)).toEqual(['freeze.created', 'freeze.lifted']);
    // The lifted record names who lifted it, as the freeze says.
    expect(records[1]!.actor).toBe(a.body.liftedBy);
    expect(verifyChain(await t.service.audit.all()).ok).toBe(true);
  }, 60_000);
});
