/**
 * Path injection through the whole API: for every catalog action (the live catalog) and every request
 * field that ends up in a Proxmox URL path — target.node, target.vmid, and the params that name a node,
 * guest, snapshot or storage — hostile values are refused with 400 naming the field, and nothing at
 * all is sent to Proxmox (observed on undici's diagnostics channel, where every request of the Proxmox
 * client is announced, and in the simulator's mutation log).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { fillPath, PROXMOX_ROUTES } from '../../src/proxmox/paths.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

/** Request fields that become Proxmox path segments, by the kind of path parameter they fill. */
const PATH_FIELDS: Record<string, 'node' | 'vmid' | 'snapname' | 'storage'> = {
  target: 'node', // migrate/clone target node: /nodes/{target}/...
  newid: 'vmid', // clone: the new guest's /.../{vmid}
  snapname: 'snapname',
  storage: 'storage',
};

const HOSTILE_STRINGS = [
  '../',
  '..',
  '../../cluster/firewall',
  'pve-lab/../pve-prod',
  '%2F',
  'a%2Fb',
  '%2e%2e',
  'x?y=1',
  'x#frag',
  'x\ny',
  'pve-lab\n', // JS `$` without /m does not match before a trailing newline; Perl's would
  'x\r\nX-Injected: 1',
  'x y',
  'x\u0000y',
  'ünïcödé',
  'pve-lab\u202e', // right-to-left override
  'pve-lab／x', // fullwidth solidus
  '$(id)',
  '',
];
/** Longer than the kind allows: node names are at most 63 characters, snapshot names 40. */
const OVERLONG = 'a'.repeat(300);
const HOSTILE_VMIDS: unknown[] = ['100/../101', '100%2F', '100?x=1', '100#', '100\n', 99, -1, 100.5, 1e21, Number.MAX_SAFE_INTEGER, '١٠٠', null, [100], { vmid: 100 }];

let t: TestService;
let proxmoxRequests: string[] = [];
let simOrigins: string[] = [];
const onRequest = (message: unknown) => {
  const req = (message as { request: { origin: string | URL; method: string; path: string } }).request;
  const origin = String(req.origin);
  if (simOrigins.some((o) => origin.startsWith(o))) proxmoxRequests.push(`${req.method} ${req.path}`);
};

beforeAll(async () => {
  t = await startTestService((config) => {
    config.server.rateLimit = false; // thousands of requests from one token
  });
  simOrigins = [t.sim('lab').url, t.sim('prod').url];
  subscribe('undici:request:create', onRequest);
}, 120_000);
afterAll(async () => {
  unsubscribe('undici:request:create', onRequest);
  await t?.stop();
});

const plan = (body: unknown) => t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
const evaluate = (body: unknown) => t.call('POST', '/v1/policy/evaluate', { token: TOKENS.agent, body });
const base = (action: string, over: object = {}) => ({ action, environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'injection test', ...over });

describe('path injection through the API', () => {
  it('knows every kind of path parameter the client fills (a new kind must be added here)', () => {
    const kinds = new Set(Object.keys(PROXMOX_ROUTES).flatMap((p) => [...p.matchAll(/\{([a-z]+)\}/g)].map((m) => m[1]!)));
    expect([...kinds].sort()).toEqual(['node', 'snapname', 'storage', 'upid', 'vmid']);
    // Every placeholder in an action's own call is the target, or a params field listed above.
    for (const a of ACTIONS) {
      for (const [, name] of a.proxmox.path.matchAll(/\{([a-z]+)\}/g)) {
        expect(['node', 'vmid', ...Object.keys(PATH_FIELDS)], `${a.name}: {${name}}`).toContain(name);
      }
    }
  });

  it('the probe sees the Proxmox requests of a valid plan (so silence below means something)', async () => {
    proxmoxRequests = [];
    const ok = await plan(base('vm.start', { target: { vmid: 101 } }));
    expect(ok.status).toBe(201);
    expect(proxmoxRequests.length).toBeGreaterThan(0);
    expect(proxmoxRequests.some((r) => r.startsWith('GET /api2/json/cluster/resources'))).toBe(true);
  });

  it('refuses hostile target.node and target.vmid for every action, sending nothing to Proxmox', async () => {
    proxmoxRequests = [];
    const mutationsBefore = t.sim('lab').mutations.all().length;
    const failures: string[] = [];
    let sent = 0;
    for (const a of ACTIONS) {
      for (const node of [...HOSTILE_STRINGS, OVERLONG]) {
        for (const call of [plan, evaluate]) {
          const res = await call(base(a.name, { target: { node, vmid: 100 } }));
          sent++;
          if (res.status !== 400 || !JSON.stringify(res.body.errors ?? []).includes('target.node'))
            failures.push(`${a.name} target.node=${JSON.stringify(node)}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
      for (const vmid of HOSTILE_VMIDS) {
        const res = await plan(base(a.name, { target: { vmid } }));
        sent++;
        if (res.status !== 400 || !JSON.stringify(res.body.errors ?? []).includes('target.vmid'))
          failures.push(`${a.name} target.vmid=${JSON.stringify(vmid)}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(proxmoxRequests, `${sent} hostile requests`).toEqual([]);
    expect(t.sim('lab').mutations.all().length).toBe(mutationsBefore);
  }, 300_000);

  it('refuses hostile snapshot, storage, target-node and new-vmid params for every action that takes them', async () => {
    proxmoxRequests = [];
    const failures: string[] = [];
    const covered = new Set<string>();
    for (const a of ACTIONS) {
      const shape = (a.params as unknown as { shape?: Record<string, unknown> }).shape ?? {};
      for (const [field, kind] of Object.entries(PATH_FIELDS)) {
        if (!(field in shape)) continue;
        covered.add(`${a.name}.${field}`);
        // Proxmox sets no length limit on storage ids (pve-storage-id), so a long one is valid, not
        // hostile; that it still fills exactly one path segment is checked below.
        const values = kind === 'vmid' ? HOSTILE_VMIDS : kind === 'storage' ? HOSTILE_STRINGS : [...HOSTILE_STRINGS, OVERLONG];
        for (const value of values) {
          const res = await plan(base(a.name, { params: { [field]: value } }));
          if (res.status !== 400 || !JSON.stringify(res.body.errors ?? []).includes(`params.${field}`))
            failures.push(`${a.name} params.${field}=${JSON.stringify(value)}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // The catalog really has such params (a silently empty loop would prove nothing).
    expect([...covered].some((c) => c.endsWith('.snapname'))).toBe(true);
    expect(proxmoxRequests).toEqual([]);
    expect(fillPath('/nodes/{node}/storage/{storage}/status', { node: 'pve-lab', storage: OVERLONG })).toBe(`/nodes/pve-lab/storage/${OVERLONG}/status`);
  }, 300_000);

  it('refuses hostile plan ids in paths before they reach Temporal or Proxmox', async () => {
    proxmoxRequests = [];
    for (const id of ['..%2F..', 'plan_..%2Fx', 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G%0A', `plan_${'A'.repeat(300)}`, 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G%3Fx%3D1']) {
      for (const path of [`/v1/actions/${id}`, `/v1/actions/${id}/evidence`]) {
        const res = await t.call('GET', path, { token: TOKENS.agent });
        expect([400, 404], `${path}: ${res.status}`).toContain(res.status);
        expect(res.headers.get('content-type')).toContain('application/problem+json');
      }
    }
    expect(proxmoxRequests).toEqual([]);
  });
});
