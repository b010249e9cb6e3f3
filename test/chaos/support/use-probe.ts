/**
 * The setup every probe file shares: one deployment for the file (started before its test, stopped
 * after), a wait for the task a dispatch started, and the verdict on two plans that must take turns,
 * so a probe file holds only its scenario.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { RequestRecord } from '../../../src/simulator/index.js';
import type { PlanRun } from '../model/oracle.js';
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

/** Applies `a`, then `b` once the task a's request started (its path ending `suffix`) has run 1 s. */
export async function applyBehind(probe: Probe, a: PlanRun, b: PlanRun, suffix: string): Promise<void> {
  await probe.apply(a);
  await startedTask(probe, suffix, 1000);
  await probe.apply(b);
}

/**
 * Two plans on one guest must take turns: each reaches its end, the oracle finds nothing, and both
 * succeed (neither fails because the other was mutating the guest then). Logs the second's result.
 */
export async function expectBothTookTurns(probe: Probe, a: PlanRun, b: PlanRun): Promise<void> {
  await probe.settle(a, 180_000);
  await probe.settle(b, 180_000);
  await probe.quiet();
  const { violations, text } = await probe.verdict();
  console.log(`[${b.spec.label}] ${JSON.stringify(b.final?.result)}`);
  expect(violations.map((v) => v.rule), text).toEqual([]);
  expect([a.final?.status, b.final?.status], text).toEqual(['succeeded', 'succeeded']);
}
