/**
 * The setup every probe file shares: one deployment for the file (started before its test, stopped
 * after), and a wait for the task a dispatch started, so a probe file holds only its scenario.
 */
import { afterAll, beforeAll } from 'vitest';
import type { RequestRecord } from '../../../src/simulator/index.js';
import { sleep, startProbe, type Probe, type ProbeOptions } from './probe.js';

/** Starts the probe's deployment before the file's tests; returns a getter for it. */
export function useProbe(o: ProbeOptions): () => Probe {
  let probe: Probe | undefined;
  beforeAll(async () => {
    probe = await startProbe(o);
  }, 300_000);
  afterAll(async () => probe?.stop());
  return () => probe!;
}

/** The request to a path ending `suffix` that started a task, once that task has run `ageMs` (within a minute). */
export async function startedTask(probe: Probe, suffix: string, ageMs = 0): Promise<RequestRecord | undefined> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const req = probe.env.sims.lab.requests.all().find((r) => r.upid && r.path.endsWith(suffix));
    if ((req && Date.now() - req.time >= ageMs) || Date.now() > deadline) return req;
    await sleep(250);
  }
}
