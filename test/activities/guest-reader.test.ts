/**
 * readGuest retries transient read errors. Regression (found by the chaos suite, 20% transient
 * faults on reads): one GET of the several a preflight makes failing on every attempt of the
 * preflight's retry policy denied a plan ("target unavailable"), and at apply failed an approved
 * plan as stale; reads are safe to repeat.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readGuest } from '../../src/activities/guest-reader.js';
import { findAction } from '../../src/domain/actions/catalog.js';
import { ProxmoxError, type ProxmoxClient } from '../../src/proxmox/index.js';
import type { ProxmoxSimulator } from '../../src/simulator/index.js';
import { startDemoCluster } from '../support/simulated-proxmox.js';

const action = findAction('vm.delete')!; // reads resources, status and config
let sim: ProxmoxSimulator;
let client: ProxmoxClient;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ sim, client, close } = await startDemoCluster('lab', 's1', { taskDurationMs: 30 }));
});
afterAll(() => close());
beforeEach(() => sim.faults.clear());

describe('readGuest under transient Proxmox errors', () => {
  it('retries each read that fails transiently (503, 596) and returns the state', async () => {
    sim.faults.errorRate({ method: 'GET', path: '/cluster/resources', status: 503, times: 2 });
    sim.faults.errorRate({ method: 'GET', path: '/nodes/*/qemu/*/config', status: 596, times: 2 });
    const state = await readGuest(client, action, { vmid: 101 });
    expect(state).toMatchObject({ exists: true, vmid: 101, node: 'pve-lab', status: 'stopped' });
    expect(state.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(sim.faults.hits().error).toBe(4);
  });

  it('gives up after three attempts of one read, with the transient error', async () => {
    sim.faults.errorRate({ method: 'GET', path: '/nodes/*/qemu/*/status/current', status: 503, times: 3 });
    const err = await readGuest(client, action, { vmid: 101 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxError);
    expect((err as ProxmoxError).status).toBe(503);
    expect(sim.faults.hits().error).toBe(3);
  });

  it('does not retry a permanent error', async () => {
    sim.faults.errorRate({ method: 'GET', path: '/cluster/resources', status: 403, message: 'Permission check failed (/, Sys.Audit)', times: 3 });
    await expect(readGuest(client, action, { vmid: 101 })).rejects.toThrow(/Permission check failed/);
    expect(sim.faults.hits().error).toBe(1);
  });
});

describe('readGuest once the guest is found', () => {
  /**
   * The client, with `guestStatus` held until the config and the snapshot list were asked for too:
   * reads sent one after another never get there, and the hold gives up with an error that says so.
   * (An ordering check, not a timing one.)
   */
  function holdingStatus(): ProxmoxClient {
    const asked = new Set<string>();
    let allAsked: () => void = () => undefined;
    const together = new Promise<void>((resolve) => (allAsked = resolve));
    const note = (what: string) => {
      asked.add(what);
      if (asked.has('config') && asked.has('snapshots')) allAsked();
    };
    return new Proxy(client, {
      get(target, prop, receiver) {
        const real = Reflect.get(target, prop, receiver) as unknown;
        if (typeof real !== 'function') return real;
        if (prop === 'guestStatus')
          return async (...args: unknown[]) => {
            const gaveUp = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the status read was alone: only ${[...asked].join(', ') || 'nothing'} asked besides`)), 2_000).unref());
            await Promise.race([together, gaveUp]);
            return (real as (...a: unknown[]) => unknown).apply(target, args);
          };
        if (prop === 'guestConfig' || prop === 'snapshots')
          return (...args: unknown[]) => {
            note(prop === 'guestConfig' ? 'config' : 'snapshots');
            return (real as (...a: unknown[]) => unknown).apply(target, args);
          };
        return (real as (...a: unknown[]) => unknown).bind(target);
      },
    });
  }

  it('sends the status, config and snapshot reads together, not one after another', async () => {
    const both = { ...action, needs: { ...action.needs, config: true, snapshots: true } };
    const state = await readGuest(holdingStatus(), both, { vmid: 101 });
    expect(state).toMatchObject({ exists: true, vmid: 101, status: 'stopped' });
    expect(state.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(Array.isArray(state.snapshots)).toBe(true);
  });

  it('finds the guest absent when it was deleted between the reads (a 404 on any of them)', async () => {
    sim.faults.errorRate({ method: 'GET', path: '/nodes/*/qemu/*/config', status: 500, message: "Configuration file 'nodes/pve-lab/qemu-server/101.conf' does not exist", times: 1 });
    const state = await readGuest(client, action, { vmid: 101 });
    expect(state).toMatchObject({ exists: false, vmid: 101 });
    expect(sim.faults.hits().error).toBe(1);
  });
});
