/**
 * GET /v1/approvals in pages, against the real service: oldest first across pages (Temporal
 * visibility lists newest first, so a limit must not hide the oldest plans, the ones closest to
 * expiry), every pending plan exactly once, `nextCursor` on every page but the last, and a cursor
 * that does not match the pattern refused with 400.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '../../src/client/index.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PLANS = 7;
const PAGE = 3;

let t: TestService;
const planned: { planId: string; createdAt: string }[] = [];

beforeAll(async () => {
  t = await startTestService();
  // One at a time, so their start times are in order; prod vm.stop needs one approval.
  for (let i = 0; i < PLANS; i++) {
    const res = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.stop', environment: 'prod', target: { vmid: 200 }, params: {}, reason: `paging ${i}` },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.decision).toBe('requires_approval');
    planned.push({ planId: res.body.planId, createdAt: res.body.createdAt });
  }
  // Visibility is eventually consistent: wait until every plan is listed.
  await until(`all ${PLANS} plans in GET /v1/approvals`, async () => (await t.call('GET', '/v1/approvals?limit=200', { token: TOKENS.approver1 })).body.items?.length === PLANS);
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe('GET /v1/approvals in pages', () => {
  it('walks every pending plan once, oldest first, with nextCursor on all pages but the last', async () => {
    const api = createApiClient({ baseUrl: t.url, token: TOKENS.approver1 });
    const pages: { ids: string[]; nextCursor?: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.listApprovals({ limit: PAGE, ...(cursor ? { cursor } : {}) });
      pages.push({ ids: page.items.map((i) => i.planId), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
      cursor = page.nextCursor;
    } while (cursor && pages.length < 10);

    expect(pages.map((p) => p.ids.length)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.nextCursor !== undefined)).toEqual([true, true, false]);
    // The first page holds the three oldest plans, in the order they were made.
    expect(pages.flatMap((p) => p.ids)).toEqual(planned.map((p) => p.planId));
    for (const p of pages.slice(0, -1)) expect(p.nextCursor).toMatch(new RegExp(`\\.${p.ids[p.ids.length - 1]}$`));
  });

  it('CLI: approvals list prints one page and the command for the next', async () => {
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, ['bin/proxmox-agent.mjs', 'approvals', 'list', ...args], {
        cwd: ROOT,
        env: { ...process.env, PROXMOX_AGENT_URL: t.url, PROXMOX_AGENT_TOKEN: TOKENS.approver1 },
      });
    const first = await cli(['--limit', String(PAGE)]);
    const listed = (out: string) => planned.filter((p) => out.includes(p.planId)).map((p) => p.planId);
    expect(listed(first.stdout)).toEqual(planned.slice(0, PAGE).map((p) => p.planId));
    const more = /More plans wait: proxmox-agent approvals list --limit 3 --cursor (\S+)$/m.exec(first.stdout);
    expect(more?.[1]).toMatch(new RegExp(`\\.${planned[PAGE - 1]!.planId}$`));
    const second = await cli(['--limit', String(PAGE), '--cursor', more![1]!]);
    expect(listed(second.stdout)).toEqual(planned.slice(PAGE, 2 * PAGE).map((p) => p.planId));
    const rest = await cli(['--cursor', more![1]!]);
    expect(listed(rest.stdout)).toEqual(planned.slice(PAGE).map((p) => p.planId));
    expect(rest.stdout).not.toMatch(/More plans wait/);
  });

  it('leaves out plans that no longer wait, and the cursor still finds the rest', async () => {
    const first = await t.call('GET', `/v1/approvals?limit=${PAGE}`, { token: TOKENS.approver1 });
    // Reject the second plan: it is no longer pending, so the walk skips it.
    const gone = planned[1]!.planId;
    const rejected = await t.call('POST', `/v1/actions/${gone}/approvals`, { token: TOKENS.approver2, body: { decision: 'reject' } });
    expect(rejected.status).toBe(202);
    await t.waitForStatus(gone, ['rejected']);
    const again = await t.call('GET', `/v1/approvals?limit=${PAGE}&cursor=${first.body.nextCursor}`, { token: TOKENS.approver1 });
    expect(again.status).toBe(200);
    expect(again.body.items.map((i: { planId: string }) => i.planId)).toEqual(planned.slice(3, 6).map((p) => p.planId));
    const fromStart = await t.call('GET', '/v1/approvals?limit=200', { token: TOKENS.approver1 });
    expect(fromStart.body.items.map((i: { planId: string }) => i.planId)).not.toContain(gone);
    expect(fromStart.body.nextCursor).toBeUndefined();
  });

  it('takes the extremes of the pattern: the epoch and the largest 13-digit time', async () => {
    const first = planned[0]!.planId;
    const pending = (await t.call('GET', '/v1/approvals?limit=200', { token: TOKENS.approver1 })).body.items.map((i: { planId: string }) => i.planId);
    const epoch = await t.call('GET', `/v1/approvals?limit=200&cursor=0.${first}`, { token: TOKENS.approver1 });
    expect(epoch.status).toBe(200);
    // Every plan started after the epoch: all of them, the cursor's own plan id being irrelevant there.
    expect(epoch.body.items.map((i: { planId: string }) => i.planId)).toEqual(pending);
    const far = await t.call('GET', `/v1/approvals?cursor=${'9'.repeat(13)}.${first}`, { token: TOKENS.approver1 });
    expect(far.status).toBe(200);
    expect(far.body).toEqual({ items: [] });
  });

  it('answers an empty last page for a cursor past the end', async () => {
    const last = planned[PLANS - 1]!;
    const cursor = `${Date.parse(last.createdAt) + 60_000}.${last.planId}`;
    const res = await t.call('GET', `/v1/approvals?cursor=${cursor}`, { token: TOKENS.approver1 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [] });
  });

  it('refuses a cursor that does not match the pattern with 400 problem+json', async () => {
    for (const cursor of ['nope', '123', `12.plan_${'I'.repeat(26)}`, `${'9'.repeat(14)}.${planned[0]!.planId}`]) {
      const res = await t.call('GET', `/v1/approvals?cursor=${encodeURIComponent(cursor)}`, { token: TOKENS.approver1 });
      expect(res.status, cursor).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['cursor']);
    }
  });
});
