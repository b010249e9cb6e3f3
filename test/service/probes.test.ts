/**
 * What the composition root wires into the probes and the policy preview (src/service/): the
 * worker's `/healthz` and `/readyz` from the watch and the SDK's worker states, the API's health with
 * the freezes beside it, its readiness with the doctor's details beside its verdict, and the preview
 * answering an unreadable preflight the way a run would.
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { Activities } from '../../src/activities/index.js';
import type { NormalizedRequest } from '../../src/domain/request.js';
import type { Doctor } from '../../src/doctor/probe.js';
import { apiProbes } from '../../src/service/api-probes.js';
import { policyPreview } from '../../src/service/policy-preview.js';
import { workerProbes } from '../../src/service/worker-probes.js';
import type { TemporalStatus } from '../../src/temporal/watch.js';

const up: TemporalStatus = { ok: true, reachable: true, missingAttributes: [], checks: { temporal: { ok: true, detail: 'namespace ns reachable' }, searchAttributes: { ok: true, detail: 'all known' } } };
const down: TemporalStatus = { ...up, ok: false, reachable: false, checks: { temporal: { ok: false, detail: 'Temporal at t:7233 is not reachable' }, searchAttributes: { ok: false, detail: 'unknown' } } };
const watchOf = (status: TemporalStatus) => ({ status: () => status });

const worker = (taskQueue: string, state = 'RUNNING', activityPollerState = 'POLLING') =>
  ({ options: { taskQueue }, getState: () => state, getStatus: () => ({ activityPollerState }) }) as unknown as Worker;

describe('workerProbes', () => {
  it('is healthy while every worker polls and Temporal answers, and names the queues', () => {
    const { health, ready } = workerProbes(() => [worker('q'), worker('q.lab')], watchOf(up), () => false);
    expect(health()).toEqual({ ok: true, detail: '2 worker(s) polling: q, q.lab', checks: { ...up.checks, workers: { ok: true, detail: '2 worker(s) polling: q, q.lab' } } });
    expect(ready()).toEqual(health());
  });

  it('names what fails: idle workers, no workers yet, Temporal down', () => {
    expect(workerProbes(() => [worker('q'), worker('q.lab', 'STOPPING')], watchOf(up), () => false).health()).toMatchObject({ ok: false, detail: 'not polling: q.lab (STOPPING)' });
    expect(workerProbes(() => [], watchOf(up), () => false).health()).toMatchObject({ ok: false, detail: 'not polling: no workers' });
    expect(workerProbes(() => [worker('q')], watchOf(down), () => false).health()).toMatchObject({ ok: false, detail: 'Temporal at t:7233 is not reachable; unknown' });
  });

  it('reads the workers at each probe, and is not ready once stopping', () => {
    let workers: Worker[] = [];
    let stopping = false;
    const { health, ready } = workerProbes(() => workers, watchOf(up), () => stopping);
    expect(health().ok).toBe(false);
    workers = [worker('q')];
    expect(health().ok).toBe(true);
    stopping = true;
    expect(ready()).toEqual({ ok: false, detail: 'shutting down', checks: { process: { ok: false, detail: 'shutting down' } } });
    expect(health().ok).toBe(true);
  });
});

describe('apiProbes', () => {
  const client = {
    options: { namespace: 'ns' },
    connection: { withDeadline: (_d: number, fn: () => Promise<unknown>) => fn() },
    workflowService: { describeTaskQueue: async () => ({ pollers: [{ lastAccessTime: { seconds: Math.floor(Date.now() / 1000) } }] }) },
  } as unknown as Client;
  const at = '2026-01-01T00:00:00.000Z';
  const doctor = {
    run: async () => [],
    last: () => new Map([['lab', { at, report: { environment: 'lab', ok: false, privsep: 'on', checks: [{ id: 'token', ok: false, severity: 'blocker', detail: 'no token' }] } }]]),
  } as unknown as Doctor;
  const base = { client, watch: watchOf(up), taskQueue: 'q', environments: [], doctor, stopping: () => false };

  it('without freezes, answers as the health check does', async () => {
    const report = await apiProbes(base).health();
    expect(report.ok).toBe(true);
    expect(Object.keys(report.checks)).toEqual(['temporal', 'searchAttributes', 'worker']);
  });

  it('shows active freezes and stays healthy; a journal that cannot be read is unhealthy', async () => {
    const frozen = { list: async () => [{ id: 'f1', environment: 'lab', at, by: 'ops', reason: 'maintenance' }] } as never;
    expect(await apiProbes({ ...base, freezes: frozen }).health()).toMatchObject({ ok: true, checks: { freezes: { ok: true, detail: `lab frozen since ${at} by ops (f1): maintenance` } } });
    const unreadable = { list: async () => Promise.reject(new Error('connection refused')) };
    expect(await apiProbes({ ...base, freezes: unreadable }).health()).toMatchObject({ ok: false, checks: { freezes: { ok: false } } });
  });

  it('is ready with the doctor\'s blockers beside the verdict, and not ready once stopping', async () => {
    const ready = await apiProbes(base).ready();
    expect(ready.ok).toBe(true);
    expect(ready.checks['doctor.lab']).toMatchObject({ ok: false });
    expect(await apiProbes({ ...base, stopping: () => true }).ready()).toEqual({ ok: false, checks: { process: { ok: false, detail: 'shutting down' } } });
  });
});

describe('policyPreview', () => {
  it('evaluates the policy over an unreadable preflight when the preflight fails, starting nothing', async () => {
    const seen: unknown[] = [];
    const activities = {
      preflight: async () => Promise.reject(new Error('proxmox unreachable')),
      evaluatePolicy: async (input: unknown) => (seen.push(input), { outcome: 'deny' }),
    } as unknown as Pick<Activities, 'preflight' | 'evaluatePolicy'>;
    const at = new Date('2026-01-01T00:00:00Z');
    const answer = await policyPreview(activities)({} as NormalizedRequest, at);
    expect(answer.preflight.assessment).toEqual({ kind: 'unavailable', reason: 'proxmox unreachable' });
    expect(seen).toEqual([{ request: {}, preflight: answer.preflight, at: at.toISOString() }]);
  });
});
