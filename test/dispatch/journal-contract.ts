/**
 * The dispatch journal's rules, as every backend must keep them (src/dispatch/journal.ts). Run
 * against the file journal (journal.test.ts) and PostgreSQL (pg-journal.int.test.ts).
 */
import { expect, it } from 'vitest';
import { DispatchClaimConflict, type DispatchIntent, type DispatchJournal } from '../../src/dispatch/journal.js';

const UPID = (n: number) => `UPID:pve-lab:0000${String(n).padStart(4, '0')}:000F4240:6B000000:qmsnapshot:101:proxmox-agent@pve!agent:`;

export function journalContract(open: () => Promise<DispatchJournal>): void {
  let n = 0;
  const intent = (planId: string, extra: Partial<DispatchIntent> = {}): DispatchIntent => ({
    planId,
    environment: 'lab',
    vmid: 101,
    node: 'pve-lab',
    action: 'vm.snapshot.create',
    params: { snapname: planId },
    attempt: 1,
    ...extra,
  });
  const plan = () => `plan_${++n}_${Math.random().toString(36).slice(2, 8)}`;

  it('holds the guest from the intent until its task ends; another plan is told who holds it', async () => {
    const j = await open();
    const [a, b] = [plan(), plan()];
    expect(await j.begin(intent(a))).toMatchObject({ kind: 'begun', entry: { planId: a, guest: 'lab/101', state: 'intent', attempt: 1 } });
    expect(await j.begin(intent(b))).toMatchObject({ kind: 'busy', holder: { planId: a, state: 'intent' } });
    // A different guest is not held.
    expect(await j.begin(intent(plan(), { vmid: 102 }))).toMatchObject({ kind: 'begun' });
    await j.claim(a, UPID(1), 1);
    expect(await j.begin(intent(b))).toMatchObject({ kind: 'busy', holder: { planId: a, state: 'dispatched', upid: UPID(1) } });
    expect(await j.holder('lab/101')).toMatchObject({ planId: a });
    await j.end(a);
    expect(await j.holder('lab/101')).toBeUndefined();
    expect(await j.begin(intent(b))).toMatchObject({ kind: 'begun' });
    await j.close();
  });

  it('a synchronous call that is done, or an intent released as not dispatched, frees the guest', async () => {
    const j = await open();
    const [a, b, c] = [plan(), plan(), plan()];
    await j.begin(intent(a, { vmid: 110 }));
    expect(await j.complete(a, 1)).toMatchObject({ state: 'done' });
    await j.begin(intent(b, { vmid: 110 }));
    expect(await j.release(b, 1)).toMatchObject({ state: 'not_dispatched' });
    expect(await j.begin(intent(c, { vmid: 110 }))).toMatchObject({ kind: 'begun' });
    await j.close();
  });

  it("tells a plan its own unsettled intent is open, its later attempt took over, or it dispatched already", async () => {
    const j = await open();
    const a = plan();
    await j.begin(intent(a, { vmid: 120 }));
    expect(await j.begin(intent(a, { vmid: 120, attempt: 2 }))).toMatchObject({ kind: 'open', entry: { attempt: 1 } });
    await j.release(a, 3);
    expect(await j.begin(intent(a, { vmid: 120, attempt: 2 }))).toMatchObject({ kind: 'superseded', entry: { attempt: 3 } });
    expect(await j.begin(intent(a, { vmid: 120, attempt: 3 }))).toMatchObject({ kind: 'begun', entry: { attempt: 3 } });
    await j.claim(a, UPID(2), 3);
    expect(await j.begin(intent(a, { vmid: 120, attempt: 4 }))).toMatchObject({ kind: 'settled', entry: { state: 'dispatched', upid: UPID(2) } });
    await j.close();
  });

  it('a UPID belongs to one plan; a claim wins over a later release', async () => {
    const j = await open();
    const [a, b] = [plan(), plan()];
    await j.begin(intent(a, { vmid: 130 }));
    await j.claim(a, UPID(3), 1);
    await j.end(a);
    await j.begin(intent(b, { vmid: 130 }));
    await expect(j.claim(b, UPID(3), 1)).rejects.toBeInstanceOf(DispatchClaimConflict);
    expect(await j.release(a, 2)).toMatchObject({ state: 'dispatched', upid: UPID(3) });
    await expect(j.claim(a, UPID(4), 1)).rejects.toBeInstanceOf(DispatchClaimConflict);
    expect(await j.claimedOn('lab/130')).toEqual(new Map([[UPID(3), a]]));
    await j.close();
  });

  it('records a no-op once: a later attempt is told so; a no-op never overwrites a dispatch', async () => {
    const j = await open();
    const [a, b] = [plan(), plan()];
    expect(await j.noop(intent(a, { vmid: 160 }), 'VM 160 is already running')).toMatchObject({ state: 'noop', note: 'VM 160 is already running' });
    expect(await j.begin(intent(a, { vmid: 160, attempt: 2 }))).toMatchObject({ kind: 'settled', entry: { state: 'noop' } });
    expect(await j.holder('lab/160')).toBeUndefined();
    await j.begin(intent(b, { vmid: 160 }));
    expect(await j.noop(intent(b, { vmid: 160, attempt: 2 }), 'already')).toMatchObject({ state: 'intent' });
    await j.claim(b, UPID(5), 1);
    expect(await j.noop(intent(b, { vmid: 160, attempt: 3 }), 'already')).toMatchObject({ state: 'dispatched', upid: UPID(5) });
    await j.close();
  });

  it('an intent whose outcome cannot be known is recorded unknown: the guest is free, and the plan never sends again', async () => {
    const j = await open();
    const [a, b, c] = [plan(), plan(), plan()];
    await j.begin(intent(a, { vmid: 170 }));
    expect(await j.unknown(a, 2, 'no task of it appeared in 5 min')).toMatchObject({ state: 'unknown', attempt: 2, note: 'no task of it appeared in 5 min' });
    expect(await j.holder('lab/170')).toBeUndefined();
    // Whatever attempt asks, nothing is sent again: the entry is its answer.
    expect(await j.begin(intent(a, { vmid: 170, attempt: 3 }))).toMatchObject({ kind: 'settled', entry: { state: 'unknown' } });
    expect(await j.noop(intent(a, { vmid: 170, attempt: 3 }), 'already')).toMatchObject({ state: 'unknown' });
    expect(await j.release(a, 3)).toMatchObject({ state: 'unknown' });
    expect(await j.get(a)).toMatchObject({ state: 'unknown', note: 'no task of it appeared in 5 min' });
    // Listed on its guest, for settlements that find a task it could have started.
    expect((await j.unknownOn('lab/170')).map((e) => e.planId)).toEqual([a]);
    expect(await j.unknownOn('lab/171')).toEqual([]);
    // Another plan takes the guest; only an open intent becomes unknown (a claim got there first).
    await j.begin(intent(b, { vmid: 170 }));
    await j.claim(b, UPID(6), 1);
    expect(await j.unknown(b, 1, 'late')).toMatchObject({ state: 'dispatched', upid: UPID(6) });
    await j.end(b);
    await j.begin(intent(c, { vmid: 170 }));
    await j.release(c, 1);
    expect(await j.unknown(c, 1, 'late')).toMatchObject({ state: 'not_dispatched' });
    expect((await j.unknownOn('lab/170')).map((e) => e.planId)).toEqual([a]);
    await j.close();
  });

  it('20 plans racing for one guest: exactly one takes it', async () => {
    const j = await open();
    const plans = Array.from({ length: 20 }, () => plan());
    const results = await Promise.all(plans.map((p) => j.begin(intent(p, { vmid: 140 }))));
    expect(results.filter((r) => r.kind === 'begun')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'busy')).toHaveLength(19);
    await j.close();
  });

  const freezeId = () => `frz_${Array.from({ length: 20 }, () => Math.floor(Math.random() * 16).toString(16)).join('')}`;

  it('a freeze refuses every new intent in its environment until lifted; what stands is still followed', async () => {
    const j = await open();
    const env = `frozen-${plan()}`;
    const [a, b, c] = [plan(), plan(), plan()];
    await j.begin(intent(a, { environment: env, vmid: 200 }));
    await j.claim(a, UPID(20), 1);
    const f = await j.freeze({ id: freezeId(), environment: env, reason: 'incident 123', by: 'human:carol' });
    expect(f).toMatchObject({ environment: env, reason: 'incident 123', by: 'human:carol', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(f.liftedAt).toBeUndefined();
    // A new intent, on another guest of the environment: refused, and nothing written.
    expect(await j.begin(intent(b, { environment: env, vmid: 201 }))).toMatchObject({ kind: 'frozen', freeze: { id: f.id } });
    expect(await j.get(b)).toBeUndefined();
    // The plan that dispatched before the freeze is still told to follow its task.
    expect(await j.begin(intent(a, { environment: env, vmid: 200, attempt: 2 }))).toMatchObject({ kind: 'settled', entry: { upid: UPID(20) } });
    // Another environment is not frozen.
    expect(await j.begin(intent(c, { vmid: 202 }))).toMatchObject({ kind: 'begun' });
    expect((await j.freezes({ environment: env })).map((x) => x.id)).toEqual([f.id]);
    // Of racing lifts exactly one lifts it; the other is answered the freeze as it was lifted.
    const [one, two] = await Promise.all([j.lift(f.id, 'human:dave'), j.lift(f.id, 'human:erin')]);
    expect([one!.lifted, two!.lifted].sort()).toEqual([false, true]);
    const lifted = (one!.lifted ? one : two)!.freeze;
    expect(lifted).toMatchObject({ id: f.id, liftedBy: lifted.liftedBy, liftedAt: expect.any(String) });
    expect((one!.lifted ? two : one)!.freeze).toEqual(lifted);
    // Lifting again changes nothing; an unknown id is undefined.
    expect(await j.lift(f.id, 'human:frank')).toEqual({ freeze: lifted, lifted: false });
    expect(await j.lift(freezeId(), 'human:erin')).toBeUndefined();
    expect(await j.freezeById(f.id)).toEqual(lifted);
    expect(await j.freezeById(freezeId())).toBeUndefined();
    expect(await j.freezes({ environment: env })).toEqual([]);
    expect((await j.freezes({ environment: env, includeLifted: true })).map((x) => x.id)).toEqual([f.id]);
    expect(await j.begin(intent(b, { environment: env, vmid: 201 }))).toMatchObject({ kind: 'begun' });
    await j.close();
  });

  it('20 intents racing a freeze: each is ordered before it (still sending when it answers) or refused', async () => {
    const j = await open();
    const env = `race-${plan()}`;
    const plans = Array.from({ length: 20 }, () => plan());
    let snapshot: string[] | undefined;
    const freezing = (async () => {
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      await j.freeze({ id: freezeId(), environment: env, reason: 'race', by: 'human:carol' });
      snapshot = (await j.sending(env)).map((e) => e.planId);
    })();
    const results = await Promise.all(plans.map((p, i) => j.begin(intent(p, { environment: env, vmid: 300 + i }))));
    await freezing;
    const begun = plans.filter((_, i) => results[i]!.kind === 'begun');
    expect(results.every((r) => r.kind === 'begun' || r.kind === 'frozen')).toBe(true);
    // Every intent written was written before the freeze: the freeze saw it in flight.
    for (const p of begun) expect(snapshot).toContain(p);
    // And nothing begins after it.
    expect(await j.begin(intent(plan(), { environment: env, vmid: 399 }))).toMatchObject({ kind: 'frozen' });
    await j.close();
  });

  it("measures an intent's age on its own clock", async () => {
    const j = await open();
    const a = plan();
    await j.begin(intent(a, { vmid: 150 }));
    await new Promise((r) => setTimeout(r, 120));
    const e = await j.get(a);
    expect(e!.ageMs).toBeGreaterThanOrEqual(100);
    await j.close();
  });
}
