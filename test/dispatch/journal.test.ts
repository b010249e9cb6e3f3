import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import { CLOCK_SKEW_S, couldBeUnknowns, taskOfIntent } from '../../src/dispatch/settle.js';
import { journalContract } from './journal-contract.js';

describe('file dispatch journal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-journal-'));
  let files = 0;
  journalContract(() => openFileDispatchJournal(join(dir, `j${++files}.jsonl`)));

  it('keeps its entries across a restart, and drops a line a crash cut short', async () => {
    const path = join(dir, 'restart.jsonl');
    const j = await openFileDispatchJournal(path);
    await j.begin({ planId: 'p1', environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.start', params: {}, attempt: 1 });
    await j.claim('p1', 'UPID:pve-lab:00000001:000F4240:6B000000:qmstart:101:x@pve!y:', 1);
    await j.close();
    appendFileSync(path, '{"planId":"p2","gue');
    const again = await openFileDispatchJournal(path);
    expect(await again.get('p1')).toMatchObject({ state: 'dispatched', upid: expect.stringContaining(':qmstart:101:') });
    expect(await again.holder('lab/101')).toMatchObject({ planId: 'p1' });
    await again.begin({ planId: 'p3', environment: 'lab', vmid: 102, node: 'pve-lab', action: 'vm.start', params: {}, attempt: 1 });
    await again.unknown('p3', 1, 'no task of it appeared');
    await again.close();
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).planId)).toEqual(['p1', 'p1', 'p3', 'p3']);
    const third = await openFileDispatchJournal(path);
    expect(await third.get('p3')).toMatchObject({ state: 'unknown', note: 'no task of it appeared' });
    expect((await third.unknownOn('lab/102')).map((e) => e.planId)).toEqual(['p3']);
    await third.close();
  });

  it('keeps freezes and their lifts across a restart', async () => {
    const path = join(dir, 'freezes.jsonl');
    const j = await openFileDispatchJournal(path);
    const kept = await j.freeze({ id: 'frz_00000000000000000001', environment: 'prod', reason: 'incident 123', by: 'human:carol' });
    await j.freeze({ id: 'frz_00000000000000000002', environment: 'lab', reason: 'drill', by: 'human:carol' });
    await j.lift('frz_00000000000000000002', 'human:carol');
    await j.close();
    const again = await openFileDispatchJournal(path);
    expect(await again.freezes()).toEqual([kept]);
    expect(await again.begin({ planId: 'p9', environment: 'prod', vmid: 101, node: 'pve-prod', action: 'vm.start', params: {}, attempt: 1 })).toMatchObject({ kind: 'frozen', freeze: kept });
    expect(await again.begin({ planId: 'p10', environment: 'lab', vmid: 101, node: 'pve-lab', action: 'vm.start', params: {}, attempt: 1 })).toMatchObject({ kind: 'begun' });
    await again.close();
  });
});

describe('taskOfIntent: which listed task an intent started', () => {
  const token = 'proxmox-agent@pve!agent';
  const at = 1_800_000_000_000;
  const task = (n: number, extra: Record<string, unknown> = {}) => ({
    upid: `UPID:pve-lab:0000000${n}:000F4240:6B000000:qmsnapshot:101:${token}:`,
    type: 'qmsnapshot',
    id: '101',
    user: 'proxmox-agent@pve',
    tokenid: 'agent',
    starttime: at / 1000 + n,
    ...extra,
  });
  const entry = { planId: 'B', vmid: 101, intentAt: at };

  it('never picks a task another plan claimed, however well it matches', () => {
    const claimed = new Map([[task(1).upid, 'A']]);
    expect(taskOfIntent(entry, [task(1)], ['qmsnapshot'], token, claimed)).toBeUndefined();
    expect(taskOfIntent(entry, [task(1), task(2)], ['qmsnapshot'], token, claimed)?.upid).toBe(task(2).upid);
  });

  it('only its own type, guest and token, started after the intent (less the clock skew)', () => {
    const none = new Map<string, string>();
    expect(taskOfIntent(entry, [task(1, { type: 'qmstart' })], ['qmsnapshot'], token, none)).toBeUndefined();
    expect(taskOfIntent(entry, [task(1, { id: '102' })], ['qmsnapshot'], token, none)).toBeUndefined();
    expect(taskOfIntent(entry, [task(1, { upid: 'UPID:pve-lab:00000001:000F4240:6B000000:qmsnapshot:101:root@pam:', user: 'root@pam', tokenid: undefined })], ['qmsnapshot'], token, none)).toBeUndefined();
    expect(taskOfIntent(entry, [task(1, { starttime: at / 1000 - CLOCK_SKEW_S - 1 })], ['qmsnapshot'], token, none)).toBeUndefined();
    expect(taskOfIntent(entry, [task(3), task(2)], ['qmsnapshot'], token, none)?.upid).toBe(task(2).upid);
  });

  it('a task that a request of unknown outcome could have started: its type, after its intent (less the skew)', () => {
    const types = (action: string) => (action === 'vm.snapshot.create' ? ['qmsnapshot'] : ['qmstart']);
    const u = (planId: string, action: string, intentAt: number) => ({ planId, action, intentAt });
    expect(couldBeUnknowns(task(2), [u('U', 'vm.snapshot.create', at)], types)).toEqual(['U']);
    expect(couldBeUnknowns(task(2), [u('U', 'vm.start', at)], types)).toEqual([]);
    expect(couldBeUnknowns(task(2), [u('U', 'vm.snapshot.create', at + (2 + CLOCK_SKEW_S + 1) * 1000)], types)).toEqual([]);
    expect(couldBeUnknowns(task(2), [u('U', 'vm.snapshot.create', at), u('V', 'vm.snapshot.create', at - 1000)], types)).toEqual(['U', 'V']);
  });
});
