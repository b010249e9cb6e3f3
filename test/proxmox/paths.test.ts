import { describe, expect, it } from 'vitest';
import {
  encodeParams,
  fillPath,
  PROXMOX_ROUTES,
  ProxmoxInvalidParamError,
  ProxmoxInvalidPathParamError,
  type ProxmoxPathTemplate,
} from '../../src/proxmox/index.js';
import { loadApiPaths } from './helpers/apidata.js';

const UPID = 'UPID:pve1:003CDE3D:025BF6DA:665F0761:qmstart:12001:gitlab@pam!cicd:';

describe('fillPath: valid parameters', () => {
  it('fills and encodes each kind', () => {
    expect(fillPath('/nodes/{node}/qemu/{vmid}/snapshot/{snapname}', { node: 'pve-1', vmid: 100, snapname: 'before_upgrade-2' })).toBe(
      '/nodes/pve-1/qemu/100/snapshot/before_upgrade-2',
    );
    expect(fillPath('/nodes/{node}/storage/{storage}/content', { node: 'pve', storage: 'local-lvm.2' })).toBe(
      '/nodes/pve/storage/local-lvm.2/content',
    );
    // The UPID becomes one segment; pveproxy URI-unescapes the path before routing.
    expect(fillPath('/nodes/{node}/tasks/{upid}/status', { node: 'pve1', upid: UPID })).toBe(
      `/nodes/pve1/tasks/${encodeURIComponent(UPID)}/status`,
    );
    expect(fillPath('/version', {})).toBe('/version');
  });

  it('accepts the vmid and snapname bounds', () => {
    expect(fillPath('/nodes/{node}/lxc/{vmid}', { node: 'a', vmid: 100 })).toBe('/nodes/a/lxc/100');
    expect(fillPath('/nodes/{node}/lxc/{vmid}', { node: 'a', vmid: 999_999_999 })).toBe('/nodes/a/lxc/999999999');
    const forty = `s${'x'.repeat(39)}`;
    expect(fillPath('/nodes/{node}/lxc/{vmid}/snapshot/{snapname}', { node: 'a', vmid: 100, snapname: forty })).toContain(forty);
  });
});

// Every hostile value, for every parameter kind. None may reach the wire.
const hostile: [string, unknown][] = [
  ['dot-dot-slash', '../'],
  ['dot-dot', '..'],
  ['encoded dot-dot', '%2e%2e'],
  ['encoded slash', 'a%2Fb'],
  ['slash', 'a/b'],
  ['question mark', 'a?x=1'],
  ['hash', 'a#frag'],
  ['space', 'a b'],
  ['newline', 'pve\n'],
  ['CRLF', 'pve\r\nX-Evil: 1'],
  ['NUL', 'pve\0'],
  ['unicode', 'pvé'],
  ['unicode lookalike slash', 'a\u2215b'],
  ['empty', ''],
  ['undefined', undefined],
  ['null', null],
  ['object', { toString: () => 'pve' }],
];

const vmidHostile: [string, unknown][] = [
  ['below range', 99],
  ['zero', 0],
  ['negative', -100],
  ['huge', 1_000_000_000],
  ['float', 100.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['numeric string', '100'],
  ['string with slash', '100/../101'],
  ['bigint', 100n],
];

const cases: { template: ProxmoxPathTemplate; param: string; base: Record<string, unknown>; bad: [string, unknown][] }[] = [
  { template: '/nodes/{node}/qemu/{vmid}', param: 'node', base: { node: 'pve', vmid: 100 }, bad: [...hostile, ['leading hyphen', '-pve'], ['trailing hyphen', 'pve-'], ['underscore', 'pve_1'], ['dot', 'pve.local']] },
  { template: '/nodes/{node}/qemu/{vmid}', param: 'vmid', base: { node: 'pve', vmid: 100 }, bad: [...hostile, ...vmidHostile] },
  {
    template: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
    param: 'snapname',
    base: { node: 'pve', vmid: 100, snapname: 'snap1' },
    bad: [...hostile, ['one char', 's'], ['leading digit', '1snap'], ['41 chars', `s${'x'.repeat(40)}`], ['dot', 'snap.1']],
  },
  { template: '/nodes/{node}/storage/{storage}/status', param: 'storage', base: { node: 'pve', storage: 'local' }, bad: [...hostile, ['one char', 'l'], ['trailing dot', 'local.'], ['leading digit', '1local']] },
  {
    template: '/nodes/{node}/tasks/{upid}/status',
    param: 'upid',
    base: { node: 'pve1', upid: UPID },
    bad: [...hostile, ['UPID with slash', 'UPID:pve1:003CDE3D:025BF6DA:665F0761:qm/start:12001:root@pam:'], ['UPID plus suffix', `${UPID}/../x`], ['no trailing colon', UPID.slice(0, -1)]],
  },
];

describe('fillPath: rejects injection before anything is sent', () => {
  for (const c of cases) {
    it.each(c.bad)(`${c.param}: %s`, (_why, value) => {
      const params = { ...c.base, [c.param]: value };
      let thrown: unknown;
      try {
        fillPath(c.template, params as never, 'GET');
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ProxmoxInvalidPathParamError);
      const err = thrown as ProxmoxInvalidPathParamError;
      expect(err.param).toBe(c.param);
      expect(err.retryable).toBe(false);
      expect(err.name).toBe('ProxmoxInvalidPathParamError');
    });
  }

  it('rejects missing and unexpected parameters', () => {
    expect(() => fillPath('/nodes/{node}/qemu/{vmid}', { node: 'pve' } as never)).toThrow(ProxmoxInvalidPathParamError);
    expect(() => fillPath('/version', { node: 'pve' } as never)).toThrow(/no parameter \{node\}/);
  });

  it('truncates a huge value in the message', () => {
    expect(() => fillPath('/nodes/{node}/status', { node: 'x/'.repeat(10_000) } as never)).toThrow(/\.\.\.$/);
  });
});

describe('route table', () => {
  it('every (template, method) exists in apidata.js and allows API tokens', () => {
    const api = loadApiPaths();
    const problems: string[] = [];
    for (const [template, methods] of Object.entries(PROXMOX_ROUTES)) {
      for (const method of methods) {
        const info = api.get(template)?.info?.[method];
        if (!info) problems.push(`${method} ${template}: not in the schema`);
        else if (!info.allowtoken) problems.push(`${method} ${template}: not available with API tokens`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('path parameter names match the schema formats we validate', () => {
    const api = loadApiPaths();
    const formats: Record<string, string> = { node: 'pve-node', vmid: 'pve-vmid', snapname: 'pve-configid', storage: 'pve-storage-id' };
    for (const template of Object.keys(PROXMOX_ROUTES)) {
      const info = Object.values(api.get(template)?.info ?? {})[0];
      for (const [, name] of template.matchAll(/\{(\w+)\}/g)) {
        const prop = info?.parameters?.properties?.[name!];
        expect(prop, `${template} {${name}}`).toBeDefined();
        if (formats[name!]) expect(prop?.format, `${template} {${name}}`).toBe(formats[name!]);
      }
    }
  });

  it('snapshot names are limited to 40 characters in the schema too', () => {
    const prop = loadApiPaths().get('/nodes/{node}/qemu/{vmid}/snapshot/{snapname}')?.info?.DELETE?.parameters?.properties?.snapname;
    expect(prop).toMatchObject({ format: 'pve-configid', maxLength: 40 });
  });
});

describe('encodeParams', () => {
  const where = { method: 'PUT', path: '/nodes/pve/qemu/100/config' };

  it('encodes booleans as 1/0, numbers, strings; drops undefined, null and empty lists', () => {
    const out = encodeParams({ onboot: true, protection: false, cores: 4, name: 'web 1&2=3', skip: undefined, gone: null, delete: [] }, where);
    expect(out.toString()).toBe('onboot=1&protection=0&cores=4&name=web+1%262%3D3');
  });

  it('joins lists with commas (delete is a pve-configid-list)', () => {
    expect(encodeParams({ delete: ['net1', 'ide2'] }, where).toString()).toBe('delete=net1%2Cide2');
    expect(encodeParams({ vmid: [100, 101] }, where).get('vmid')).toBe('100,101');
  });

  it('refuses list elements that the server would split or that are empty', () => {
    for (const bad of [['a,b'], ['a b'], ['a;b'], [''], ['a\0b']]) {
      expect(() => encodeParams({ delete: bad }, where)).toThrow(ProxmoxInvalidParamError);
    }
  });

  it('refuses non-finite numbers, odd types and odd names', () => {
    expect(() => encodeParams({ cores: Number.NaN }, where)).toThrow(ProxmoxInvalidParamError);
    expect(() => encodeParams({ cores: Number.POSITIVE_INFINITY }, where)).toThrow(ProxmoxInvalidParamError);
    expect(() => encodeParams({ cfg: { a: 1 } as never }, where)).toThrow(ProxmoxInvalidParamError);
    expect(() => encodeParams({ 'a&b': 1 }, where)).toThrow(ProxmoxInvalidParamError);
  });

  it('keeps multi-line and unicode values intact (descriptions)', () => {
    const out = encodeParams({ description: 'line 1\nlínea 2' }, where);
    expect(new URLSearchParams(out.toString()).get('description')).toBe('line 1\nlínea 2');
  });
});
