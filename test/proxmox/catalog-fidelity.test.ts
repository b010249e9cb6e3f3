/**
 * Every catalog action against the published Proxmox API schema (apidata.js, read from beside the
 * checkout at test time): the method and path exist, and every parameter the action sends, with a
 * maximal parameter set, is one the method declares, in a form its type, format, enum and pattern
 * accept (checked the way PVE::JSONSchema does, by the same verifier the simulator uses).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import type { GuestState } from '../../src/domain/guest-state.js';
import { encodeParams } from '../../src/proxmox/index.js';
import { extractRoute, loadApiIndex } from '../../src/simulator/schema-extract.js';
import { validateParams } from '../../src/simulator/validate.js';
import { MAXIMAL_PARAMS } from '../domain/action-samples.js';
import { APIDATA_MISSING_HELP, APIDATA_PATH } from '../../scripts/apidata-path.js';

const apidataPath = APIDATA_PATH;

function sampleState(kind: 'qemu' | 'lxc'): GuestState {
  return {
    exists: true,
    kind,
    node: 'pve-lab',
    vmid: kind === 'qemu' ? 100 : 300,
    status: 'stopped',
    tags: [],
    haManaged: false,
    template: false,
    protection: false,
    digest: '0123456789abcdef0123456789abcdef01234567',
    config: kind === 'qemu' ? { scsi0: 'local-lvm:vm-100-disk-0,size=32G' } : { rootfs: 'local-lvm:vm-300-disk-0,size=8G' },
    snapshots: ['before-upgrade'],
  };
}

const ctx = { planId: 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G', plannedDigest: '0123456789abcdef0123456789abcdef01234567' };

describe('catalog fidelity to apidata.js', () => {
  it('finds apidata.js beside the repository', () => {
    expect(existsSync(apidataPath), APIDATA_MISSING_HELP).toBe(true);
  });

  const index = loadApiIndex(apidataPath);

  for (const action of ACTIONS) {
    it(`${action.name}: ${action.proxmox.method} ${action.proxmox.path} with every parameter it can send`, () => {
      const method = index.get(action.proxmox.path)?.[action.proxmox.method];
      expect(method, 'the method and path exist in apidata').toBeDefined();
      const state = sampleState(action.kind);
      const params = action.params.parse(MAXIMAL_PARAMS[action.name]);
      const body = action.proxmoxParams(params as never, state, ctx);
      const declared = Object.keys(method!.parameters?.properties ?? {});
      for (const key of Object.keys(body)) expect(declared, `${action.name} sends '${key}'`).toContain(key);

      // What goes on the wire (the client's own encoding), plus the path parameters, verified as
      // Proxmox verifies a request: types, formats, enums, patterns, bounds, no unknown keys.
      const where = { method: action.proxmox.method, path: action.proxmox.path };
      const wire = Object.fromEntries(encodeParams(body, where));
      const path = Object.fromEntries(Object.entries(action.pathParams(state, params as never)).map(([k, v]) => [k, String(v)]));
      const errors = validateParams(extractRoute(index, `${action.proxmox.method} ${action.proxmox.path}`), { ...wire, ...path });
      expect(errors, JSON.stringify({ ...wire, ...path })).toBeUndefined();
    });
  }

  it('the verifier catches what the catalog must never send', () => {
    const route = extractRoute(index, 'POST /nodes/{node}/qemu/{vmid}/migrate');
    expect(validateParams(route, { node: 'pve-lab', vmid: '100', target: 'pve-2', withLocalDisks: '1' })).toHaveProperty('withLocalDisks');
    expect(validateParams(route, { node: 'pve-lab', vmid: '100', target: 'pve-2', online: 'yes' })).toHaveProperty('online');
    const vzdump = extractRoute(index, 'POST /nodes/{node}/vzdump');
    expect(validateParams(vzdump, { node: 'pve-lab', vmid: '100', compress: 'none' })).toHaveProperty('compress');
  });
});
