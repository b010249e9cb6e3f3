import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileDispatchJournal } from '../../src/dispatch/file-journal.js';
import { createFreezeService } from '../../src/freezes/service.js';

describe('freeze service', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('records a lift once, however many admins lift at the same moment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'freeze-service-'));
    dirs.push(dir);
    const journal = await openFileDispatchJournal(join(dir, 'journal.jsonl'));
    const appended: { event: string; actor: string }[] = [];
    const svc = createFreezeService({ journal, audit: { append: async (e) => (appended.push({ event: e.event, actor: e.actor ?? "" }), undefined as never) }, sendingWaitMs: 0 });
    const f = await svc.freeze({ environment: 'prod', reason: 'incident 7', by: 'human:carol' });
    const answers = await Promise.all(['human:dave', 'human:erin', 'human:frank'].map((by) => svc.lift(f.id, by)));
    expect(answers.filter((a) => a?.lifted)).toHaveLength(1);
    const liftedBy = answers.find((a) => a?.lifted)!.freeze.liftedBy;
    // Every answer shows the one lift that happened.
    expect(new Set(answers.map((a) => a!.freeze.liftedBy))).toEqual(new Set([liftedBy]));
    expect(appended.filter((e) => e.event === 'freeze.lifted')).toEqual([{ event: 'freeze.lifted', actor: liftedBy }]);
    expect(await svc.get(f.id)).toEqual(answers[0]!.freeze);
    expect(await svc.lift('frz_00000000000000000000', 'human:dave')).toBeUndefined();
    await journal.close();
  });
});
