import { describe, expect, it } from 'vitest';
import { formatUpid, isUpid, parseUpid } from '../../src/proxmox/index.js';

describe('parseUpid', () => {
  it('decodes a token-started task (real example from bpg#1353)', () => {
    const upid = 'UPID:pve1:003CDE3D:025BF6DA:665F0761:qmstart:12001:gitlab@pam!cicd:';
    expect(parseUpid(upid)).toEqual({
      node: 'pve1',
      pid: 0x003cde3d,
      pstart: 0x025bf6da,
      starttime: 0x665f0761,
      startedAt: new Date(0x665f0761 * 1000),
      type: 'qmstart',
      id: '12001',
      user: 'gitlab@pam',
      tokenid: 'cicd',
    });
  });

  it('accepts an empty id (vzdump of several guests) and a 9-digit pstart', () => {
    const p = parseUpid('UPID:pve:0000ABCD:1234ABCDE:665F0761:vzdump::root@pam:');
    expect(p).toMatchObject({ id: '', pstart: 0x1234abcde, type: 'vzdump', user: 'root@pam' });
    expect(p?.tokenid).toBeUndefined();
  });

  it('accepts lower-case hex', () => {
    expect(parseUpid('UPID:pve:0000abcd:0000abcd:665f0761:qmstop:100:root@pam:')?.pid).toBe(0xabcd);
  });

  const rejects: [string, string][] = [
    ['missing trailing colon', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qmstart:100:root@pam'],
    ['missing prefix', 'pve:0000ABCD:0000ABCD:665F0761:qmstart:100:root@pam:'],
    ['short pid', 'UPID:pve:ABCD:0000ABCD:665F0761:qmstart:100:root@pam:'],
    ['10-digit pstart', 'UPID:pve:0000ABCD:0123456789:665F0761:qmstart:100:root@pam:'],
    ['non-hex starttime', 'UPID:pve:0000ABCD:0000ABCD:665F076Z:qmstart:100:root@pam:'],
    ['bad node', 'UPID:-pve:0000ABCD:0000ABCD:665F0761:qmstart:100:root@pam:'],
    ['slash in type', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qm/start:100:root@pam:'],
    ['space in id', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qmstart:1 0:root@pam:'],
    ['empty user', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qmstart:100::'],
    ['extra field', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qmstart:100:root@pam:x:'],
    ['trailing newline', 'UPID:pve:0000ABCD:0000ABCD:665F0761:qmstart:100:root@pam:\n'],
    ['empty', ''],
  ];
  it.each(rejects)('rejects %s', (_why, value) => {
    expect(parseUpid(value)).toBeUndefined();
    expect(isUpid(value)).toBe(false);
  });

  it('isUpid is false for non-strings', () => {
    expect(isUpid(undefined)).toBe(false);
    expect(isUpid(42)).toBe(false);
  });
});

describe('formatUpid', () => {
  const samples = [
    'UPID:pve1:003CDE3D:025BF6DA:665F0761:qmstart:12001:gitlab@pam!cicd:',
    'UPID:pve:0000ABCD:1234ABCDE:665F0761:vzdump::root@pam:',
    'UPID:node-2:00000001:00000002:00000003:vzsnapshot:105:ops@pve:',
  ];
  it.each(samples)('round-trips %s', (upid) => {
    const parsed = parseUpid(upid)!;
    expect(formatUpid(parsed)).toBe(upid);
  });

  it('pads and upper-cases hex like Proxmox', () => {
    expect(formatUpid({ node: 'pve', pid: 0xab, pstart: 0xcd, starttime: 0x665f0761, type: 'qmstart', id: '100', user: 'root@pam' })).toBe(
      'UPID:pve:000000AB:000000CD:665F0761:qmstart:100:root@pam:',
    );
  });

  it('refuses parts that would not parse back', () => {
    const ok = { node: 'pve', pid: 1, pstart: 1, starttime: 1, type: 'qmstart', id: '100', user: 'root@pam' };
    expect(() => formatUpid({ ...ok, node: 'bad/node' })).toThrow(RangeError);
    expect(() => formatUpid({ ...ok, id: 'a:b' })).toThrow(RangeError);
    expect(() => formatUpid({ ...ok, pid: -1 })).toThrow(RangeError);
    expect(() => formatUpid({ ...ok, pid: 0x1_0000_0000 })).toThrow(RangeError);
    expect(() => formatUpid({ ...ok, starttime: 1.5 })).toThrow(RangeError);
  });
});
