/**
 * Status reads while the target's Proxmox stalls: the apply-time re-check of a plan hangs on a held
 * read (/cluster/resources answers after STALL_MS), and the plan's status is read meanwhile, one
 * read after another.
 */
import { DEMO_TOKEN_ID } from '../../src/simulator/index.js';
import { sleep } from '../harness.js';
import { TOKENS, type BenchOperations } from '../operations.js';
import type { StalledReads } from '../result.js';
import type { BenchEnvironment } from '../setup/environment.js';
import { percentile } from '../stats.js';

const STALL_MS = 8_000;

export async function measureStalledReads(bench: BenchEnvironment, ops: BenchOperations): Promise<StalledReads> {
  const { http, sims } = bench;
  const stalled: number[] = [];
  await bench.measure('status reads while Proxmox stalls', async () => {
    const p = await ops.plan(ops.spareGuest(1));
    const armed = await fetch(new URL('/_sim/faults', sims.urls['bench-lab']!), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `PVEAPIToken=${DEMO_TOKEN_ID}=${sims.secret}` },
      body: JSON.stringify({ kind: 'slow-response', delayMs: STALL_MS, method: 'GET', path: '/cluster/resources', times: 1 }),
    });
    if (!armed.ok) throw new Error(`arming the stall: ${armed.status} ${await armed.text()}`);
    let applied = false;
    const applying = http.call('POST', '/v1/actions/apply', TOKENS.agent, { planId: p.planId, requestHash: p.requestHash }).finally(() => void (applied = true));
    await sleep(300);
    while (!applied && stalled.length < 500) {
      const t0 = performance.now();
      await ops.getPlan(p.planId);
      stalled.push(performance.now() - t0);
      await sleep(10);
    }
    await applying;
  });
  return { n: stalled.length, p50: percentile(stalled, 50), p99: percentile(stalled, 99), max: Math.max(...stalled), stallMs: STALL_MS };
}
