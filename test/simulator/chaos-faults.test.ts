/**
 * The simulator's faults and records for the model-based chaos suite: slow answers, garbled 2xx
 * bodies after the request executed, the request log and the task-stop log (in-process and /_sim).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { del, eventually, get, post, put, startLab, waitTask } from './helpers.js';

let sim: ProxmoxSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('slow-response', () => {
  it('holds back the answer of matching requests; the request itself executes at once', async () => {
    sim = await startLab();
    sim.faults.slowResponses(400, { method: 'POST', path: '/nodes/*/qemu/101/status/start', times: 1 });
    const t = Date.now();
    const pending = post(sim, '/nodes/pve-lab/qemu/101/status/start');
    await eventually(() => sim!.model.tasks().some((x) => x.type === 'qmstart'), 300);
    const r = await pending;
    expect(Date.now() - t).toBeGreaterThanOrEqual(380);
    expect(r.status).toBe(200);
    expect(sim.faults.hits()).toEqual({ 'slow-response': 1 });
    // times: 1 used up: the next answer is not held back.
    const t2 = Date.now();
    expect((await get(sim, '/nodes/pve-lab/qemu/101/status/current')).status).toBe(200);
    expect(Date.now() - t2).toBeLessThan(380);
  });

  it('beforeDispatch holds the request before it executes; errors are held back too', async () => {
    sim = await startLab();
    sim.faults.slowResponses(300, { method: 'POST', path: '/nodes/*/qemu/101/snapshot', times: 1, beforeDispatch: true });
    const pending = post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'held' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.model.tasks().some((x) => x.type === 'qmsnapshot')).toBe(false);
    expect((await pending).status).toBe(200);

    sim.faults.slowResponses(300, { method: 'GET', path: '/nodes/*/qemu/999/status/current', times: 1 });
    const t = Date.now();
    const missing = await get(sim, '/nodes/pve-lab/qemu/999/status/current');
    expect(missing.status).toBe(500);
    expect(Date.now() - t).toBeGreaterThanOrEqual(280);
  });
});

describe('garbled-after-dispatch', () => {
  it('executes the request and answers 200 with a body that is not JSON (the real one cut short)', async () => {
    sim = await startLab();
    sim.faults.garbleAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/snapshot', times: 1 });
    const r = await post(sim, '/nodes/pve-lab/qemu/101/snapshot', { form: { snapname: 'garbled' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(() => JSON.parse(r.text)).toThrow();
    expect(r.text.startsWith('{"data":"UPID:pve-lab:')).toBe(true);
    const task = sim.model.tasks().find((x) => x.type === 'qmsnapshot')!;
    await waitTask(sim, task.upid);
    expect(sim.model.snapshots(101)).toContain('garbled');
    expect(sim.mutations.countFor(101, 'snapshot')).toBe(1);
    expect(sim.faults.hits()).toEqual({ 'garbled-after-dispatch': 1 });
    const entry = sim.requests.all().find((e) => e.method === 'POST')!;
    expect(entry).toMatchObject({ executed: true, upid: task.upid, faults: ['garbled-after-dispatch'], answer: { kind: 'garbled', status: 200 } });
  });

  it('takes a fixed body, and garbles synchronous answers too', async () => {
    sim = await startLab();
    sim.faults.garbleAfterDispatch({ method: 'PUT', path: '/nodes/*/qemu/*/config', times: 1, body: '<html>502 Bad Gateway</html>' });
    const r = await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { description: 'changed behind a proxy' } });
    expect(r.status).toBe(200);
    expect(r.text).toBe('<html>502 Bad Gateway</html>');
    expect(sim.mutations.countFor(101, 'config')).toBe(1);
  });

  it('is one fault per request: an error or a dropped connection is not also garbled', async () => {
    sim = await startLab();
    sim.faults.errorRate({ method: 'POST', path: '/nodes/*/qemu/*/status/*', status: 502, afterDispatch: true, times: 1 });
    sim.faults.garbleAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/*/status/*', times: 1 });
    expect((await post(sim, '/nodes/pve-lab/qemu/101/status/start')).status).toBe(502);
    expect(sim.faults.hits()).toEqual({ 'error-after-dispatch': 1 });
    // A request that fails in its handler keeps its error (and the rule its hit).
    expect((await post(sim, '/nodes/pve-lab/qemu/999/status/start')).status).toBe(500);
    const next = await post(sim, '/nodes/pve-lab/qemu/100/status/reboot');
    expect(next.status).toBe(200);
    expect(next.body).toBeNull();
    expect(sim.faults.hits()).toEqual({ 'error-after-dispatch': 1, 'garbled-after-dispatch': 1 });
  });
});

describe('request log and task stops', () => {
  it('records each routed request with its params, faults and answer, and every task stop', async () => {
    sim = await startLab({ taskDurationMs: 2000 });
    sim.faults.dropAfterDispatch({ method: 'POST', path: '/nodes/*/qemu/101/status/start', times: 1 });
    await expect(post(sim, '/nodes/pve-lab/qemu/101/status/start', { form: { timeout: 30 } })).rejects.toThrow();
    const started = sim.requests.all().at(-1)!;
    expect(started).toMatchObject({ method: 'POST', path: '/nodes/pve-lab/qemu/101/status/start', params: { node: 'pve-lab', vmid: '101', timeout: '30' }, faults: ['drop-after-dispatch'], answer: { kind: 'dropped' }, executed: true });
    expect(started.upid).toMatch(/^UPID:pve-lab:/);

    const stop = await del(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(started.upid!)}`);
    expect(stop.status).toBe(200);
    // A second stop of the finished task is recorded, as not running.
    await del(sim, `/nodes/pve-lab/tasks/${encodeURIComponent(started.upid!)}`);
    const stops = sim.taskStops();
    expect(stops).toHaveLength(2);
    expect(stops[0]).toMatchObject({ upid: started.upid, node: 'pve-lab', type: 'qmstart', id: '101', wasRunning: true });
    expect(stops[1]).toMatchObject({ wasRunning: false });
    expect(stops[0]!.dispatch).toBe(sim.requests.all().find((e) => e.method === 'DELETE')!.seq);
    expect(sim.mutations.countFor(101)).toBe(0);

    const bad = await get(sim, '/nodes/pve-lab/qemu/999/status/current');
    expect(bad.status).toBe(500);
    expect(sim.requests.all().at(-1)).toMatchObject({ path: '/nodes/pve-lab/qemu/999/status/current', answer: { kind: 'answered', status: 500 } });

    // The same over the control API.
    const viaHttp = await get(sim, '/_sim/requests');
    expect(viaHttp.body.data).toHaveLength(sim.requests.all().length);
    expect((await get(sim, '/_sim/task-stops')).body.data).toHaveLength(2);
    sim.reset();
    expect(sim.requests.all()).toEqual([]);
    expect(sim.taskStops()).toEqual([]);
  });

  it('marks requests whose task a slow-task rule lengthened', async () => {
    sim = await startLab();
    sim.faults.slowTasks(500, { method: 'POST', path: '/nodes/*/qemu/101/status/start' });
    await post(sim, '/nodes/pve-lab/qemu/101/status/start');
    expect(sim.requests.all().at(-1)!.faults).toEqual(['slow-task']);
  });
});
