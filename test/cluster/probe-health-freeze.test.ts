/**
 * Probe (guarantee 5: /healthz and /readyz of both API replicas and both workers answer 503 within
 * 3 s of Temporal going away, and 200 within 3 s of its return).
 *
 * The cluster suite kills the server (connections refused at once). Here Temporal goes away the way a
 * hung host or a network partition does: the server process is frozen (SIGSTOP), so connections stay
 * open and calls simply get no answer; then it is thawed (SIGCONT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startDeployment, type Deployment } from './support/deployment.js';
import { describeTransitions, firstAnswer, watchTransition, type Probe, type Transition } from './support/health.js';

let d: Deployment;
beforeAll(async () => {
  d = await startDeployment({ log: () => undefined });
  console.log(`[probe] deployment up; logs in ${ARTIFACTS}`);
}, 600_000);
afterAll(async () => {
  const pid = d?.temporal.serverPid;
  if (pid) process.kill(pid, 'SIGCONT');
  await d?.stop();
}, 120_000);

const LIMIT_MS = 3000;
const probes = (): Probe[] => [...d.apis, ...d.workers].flatMap((p) => ['/healthz', '/readyz'].map((path) => ({ name: `${p.name} ${path}`, url: `${p.url}${path}` })));
const late = (ts: Transition[], since: number) => ts.filter((t) => t.at === undefined || t.at - since > LIMIT_MS).map((t) => t.name);

describe('health while the Temporal server is frozen', () => {
  it('503 within 3 s of the freeze, 200 within 3 s of the thaw', async () => {
    const before = await watchTransition(probes(), 200, 60_000);
    expect(before.filter((t) => t.at === undefined), describeTransitions(before, Date.now())).toEqual([]);
    const pid = d.temporal.serverPid!;
    expect(pid).toBeGreaterThan(0);

    const down = watchTransition(probes(), 503, 30_000);
    const goneAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    const downs = await down;

    // Frozen long enough for every process to have said 503, then thawed.
    const up = watchTransition(probes(), 200, 60_000);
    const back = firstAnswer(d.temporal.address, d.temporal.namespace, 60_000);
    const thawedAt = Date.now();
    process.kill(pid, 'SIGCONT');
    const [probedAt, ups] = await Promise.all([back, up]);
    const backAt = Math.max(thawedAt, Math.min(probedAt, ...ups.filter((t, i) => t.at !== undefined && downs[i]?.at !== undefined).map((t) => t.at!)));

    const report = `Temporal frozen (SIGSTOP), first 503 after:\n${describeTransitions(downs, goneAt)}\nthawed (SIGCONT; frontend answered ${((probedAt - thawedAt) / 1000).toFixed(1)} s later), first 200 after:\n${describeTransitions(ups, backAt)}`;
    console.log(`[probe] ${report}`);
    expect({ down: late(downs, goneAt), up: late(ups, backAt) }, report).toEqual({ down: [], up: [] });
  });
});
