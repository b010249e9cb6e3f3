/**
 * probe12 — two plans cloning DIFFERENT sources to the SAME new id (and name).
 *
 * Scenario: plan A = `vm.clone` of lab VM 101 → newid 150 name "twin"; plan B = `vm.clone` of lab
 * VM 100 → newid 150 name "twin". Both low risk (no approval), both planned while 150 is free.
 * The dispatch journal holds guests by SOURCE id (lab/101, lab/100), so the two are not serialized;
 * the clone action treats "a guest at newid with the planned name" as its own earlier clone.
 *   (a) concurrent: A is applied (its qmclone task made slow, 3 s), B is applied 500 ms later;
 *   (b) sequential: A runs to its end, then B (planned before A ran) is applied.
 * Oracle: the simulator's mutation log shows ONE clone, of VM 101 (key 150). Plan B must not report
 * success for a clone of VM 100 that never happened: reporting A's effect (VM 150, a copy of 101) as
 * B's own result breaks guarantee 1 ("no plan ever reports another plan's Proxmox task/effect as its
 * own result"). Acceptable for B: failed/blocked (newid taken by another guest) or outcome_unknown.
 * Fix (fix12): a guest at newid is never taken as the plan's clone, so B's apply-time re-check may
 * already deny it (409 plan-denied, in (a) as in (b)); the oracle is unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService((c) => {
    c.server.rateLimit = false;
  });
  for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
});
afterAll(async () => {
  await t?.stop();
});

async function plan(source: number, newid: number, name: string) {
  const res = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.clone', environment: 'lab', target: { vmid: source }, params: { newid, name, full: true }, reason: `probe12 clone ${source}->${newid}` },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.decision, JSON.stringify(res.body)).toBe('allowed');
  return res.body as { planId: string; requestHash: string };
}
const apply = (p: { planId: string; requestHash: string }) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.planId, requestHash: p.requestHash } });
const terminal = ['succeeded', 'failed', 'outcome_unknown', 'rejected', 'denied', 'expired'];

function verdict(label: string, sourceB: number, newid: number, viewB: any) {
  const clones = t.sim('lab').mutations.all().filter((m) => m.op === 'clone' && m.key === String(newid));
  const ownClone = clones.filter((m) => m.vmid === sourceB);
  const evidence = `${label}: clone mutations to ${newid}: ${JSON.stringify(clones.map((m) => ({ seq: m.seq, source: m.vmid, key: m.key, upid: m.upid })))}; plan B view: ${JSON.stringify({ status: viewB.status, result: viewB.result })}`;
  console.log(evidence);
  expect(clones.length, evidence).toBe(1);
  // B may only say succeeded if VM sourceB was actually cloned to newid.
  if (viewB.status === 'succeeded') expect(ownClone.length, `plan B (clone of VM ${sourceB}) reports success, but ${newid} is a clone of another VM. ${evidence}`).toBe(1);
}

describe('probe12: two clone plans to one newid from different sources', () => {
  it('(a) concurrent: the second plan does not report the first plan\'s clone as its own', { timeout: 120_000 }, async () => {
    const a = await plan(101, 150, 'twin');
    const b = await plan(100, 150, 'twin');
    t.sim('lab').faults.slowTasks(3000, { method: 'POST', path: '/nodes/*/qemu/101/clone', times: 1 });
    expect((await apply(a)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 500));
    // B's apply-time re-check may already see A's clone at 150 (refused: 409 plan-denied), as in (b).
    const resB = await apply(b);
    console.log('apply B', resB.status, JSON.stringify(resB.body));
    expect([202, 409], JSON.stringify(resB.body)).toContain(resB.status);
    const va = await t.waitForStatus(a.planId, terminal, 60_000);
    const vb = await t.waitForStatus(b.planId, terminal, 60_000);
    console.log('A', JSON.stringify({ status: va.status, result: va.result }));
    verdict('(a)', 100, 150, vb);
  });

  it('(b) sequential: a plan made before the other ran does not adopt its clone', { timeout: 120_000 }, async () => {
    const a = await plan(101, 160, 'twin2');
    const b = await plan(100, 160, 'twin2');
    expect((await apply(a)).status).toBe(202);
    const va = await t.waitForStatus(a.planId, terminal, 60_000);
    expect(va.status).toBe('succeeded');
    const res = await apply(b);
    console.log('apply B', res.status, JSON.stringify(res.body));
    const vb = res.status === 202 ? await t.waitForStatus(b.planId, terminal, 60_000) : (await t.call('GET', `/v1/actions/${b.planId}`, { token: TOKENS.agent })).body;
    verdict('(b)', 100, 160, vb);
  });
});
