/** Parameter verification against the apidata subset, with the real JSONSchema.pm messages. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { get, post, put, startLab } from './helpers.js';

let sim: ProxmoxSimulator;
beforeAll(async () => {
  sim = await startLab();
});
afterAll(async () => {
  await sim.close();
});

async function errorsOf(p: Promise<{ status: number; statusText: string; body: { errors?: Record<string, string> } }>) {
  const r = await p;
  expect(r.status).toBe(400);
  expect(r.statusText).toBe('Parameter verification failed.');
  return r.body.errors;
}

describe('parameter verification', () => {
  it('reports missing required parameters', async () => {
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/snapshot'))).toEqual({
      snapname: 'property is missing and it is not optional',
    });
  });

  it('reports type errors and unknown parameters together (additionalProperties: 0)', async () => {
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/status/start', { form: { timeout: 'abc', bogus: 1 } }))).toEqual({
      timeout: "type check ('integer') failed - got 'abc'",
      bogus: 'property is not defined in schema and the schema does not allow additional properties',
    });
  });

  it('checks enums with the real message', async () => {
    expect(await errorsOf(get(sim, '/cluster/resources', { query: { type: 'qemu' } }))).toEqual({
      type: "value 'qemu' does not have a value in the enumeration 'vm, storage, node, sdn'",
    });
  });

  it('checks patterns, minimum and maximum', async () => {
    expect(await errorsOf(put(sim, '/nodes/pve-lab/qemu/100/resize', { form: { disk: 'scsi0', size: 'big' } }))).toEqual({
      size: 'value does not match the regex pattern',
    });
    expect(await errorsOf(get(sim, '/nodes/pve-lab/tasks', { query: { limit: -1 } }))).toEqual({
      limit: 'value must have a minimum value of 0',
    });
    expect(await errorsOf(post(sim, '/nodes/pve-lab/vzdump', { form: { vmid: '100', ionice: 9 } }))).toEqual({
      ionice: 'value must have a maximum value of 8',
    });
    // JSONSchema.pm checks the format before the bounds, so a too-small VMID fails as a format error.
    expect(await errorsOf(get(sim, '/cluster/nextid', { query: { vmid: 99 } }))).toEqual({
      vmid: 'invalid format - value does not look like a valid VM ID\n',
    });
  });

  it('validates path parameters too', async () => {
    expect(await errorsOf(get(sim, '/nodes/pve-lab/qemu/abc/status/current'))).toEqual({
      vmid: "type check ('integer') failed - got 'abc'",
    });
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/snapshot/bad!name/rollback'))).toEqual({
      snapname: "invalid format - invalid configuration ID 'bad!name'\n",
    });
    expect(await errorsOf(get(sim, '/nodes/pve-lab/storage/1x/content'))).toEqual({
      storage: "invalid format - storage ID '1x' contains illegal characters\n",
    });
  });

  it('validates named formats and property strings', async () => {
    expect(await errorsOf(put(sim, '/nodes/pve-lab/qemu/100/config', { form: { name: 'not a dns name' } }))).toEqual({
      name: 'invalid format - value does not look like a valid DNS name\n',
    });
    expect(await errorsOf(put(sim, '/nodes/pve-lab/qemu/100/config', { form: { memory: '8' } }))).toEqual({
      memory: 'invalid format - format error\nmemory.current: value must have a minimum value of 16\n',
    });
    expect(await errorsOf(put(sim, '/nodes/pve-lab/qemu/100/config', { form: { tags: 'ok;b@d' } }))).toEqual({
      tags: 'invalid format - invalid characters in tag\n',
    });
    expect(await errorsOf(put(sim, '/nodes/pve-lab/qemu/100/config', { form: { scsi40: 'local-lvm:1' } }))).toEqual({
      scsi40: 'property is not defined in schema and the schema does not allow additional properties',
    });
  });

  it('booleans are 0/1 in forms; JSON true/false are accepted', async () => {
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/status/shutdown', { form: { forceStop: 'true' } }))).toEqual({
      forceStop: "type check ('boolean') failed - got 'true'",
    });
    const ok = await post(sim, '/nodes/pve-lab/qemu/101/status/stop', { json: { keepActive: true, timeout: 5 } });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatch(/^UPID:pve-lab:/);
  });

  it('query parameters override body parameters', async () => {
    const r = await get(sim, '/cluster/resources', { query: { type: 'node' } });
    expect(r.body.data.map((e: { type: string }) => e.type)).toEqual(['node']);
    const p = await put(sim, '/nodes/pve-lab/qemu/101/config', { form: { description: 'from-body' }, query: { description: 'from-query' } });
    expect(p.status).toBe(200);
    expect(sim.model.guest(101)?.config.description).toBe('from-query');
  });

  it('refuses a body parameter that repeats a path parameter', async () => {
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/status/reboot', { form: { vmid: 100 } }))).toEqual({
      vmid: 'duplicate parameter (already defined in URI)',
    });
  });

  it('`requires` dependencies are enforced', async () => {
    expect(await errorsOf(post(sim, '/nodes/pve-lab/qemu/100/status/suspend', { form: { statestorage: 'local' } }))).toEqual({
      todisk: "missing property - 'statestorage' requires this property",
    });
  });
});
