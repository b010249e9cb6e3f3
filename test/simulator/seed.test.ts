/** demoClusters() shape and startSimulator() option guards. */
import { describe, expect, it } from 'vitest';
import { demoClusters, startSimulator } from '../../src/simulator/index.js';

describe('demoClusters', () => {
  const { lab, prod } = demoClusters({ lab: 'lab-s', prod: 'prod-s' });

  it('lab: one node with web-lab (running VM), db-lab (stopped VM) and cache-lab (running CT)', () => {
    expect(lab.nodes).toEqual(['pve-lab']);
    expect(lab.guests.map((g) => [g.vmid, g.type, g.name, g.status, g.node])).toEqual([
      [100, 'qemu', 'web-lab', 'running', 'pve-lab'],
      [101, 'qemu', 'db-lab', 'stopped', 'pve-lab'],
      [300, 'lxc', 'cache-lab', 'running', 'pve-lab'],
    ]);
    expect(lab.apiTokens).toEqual([{ tokenId: 'proxmox-agent@pve!agent', secret: 'lab-s' }]);
  });

  it('prod: two nodes so migrate has a target, web-prod/db-prod/cache-prod', () => {
    expect(prod.nodes).toEqual(['pve-prod', 'pve-prod-2']);
    expect(prod.guests.map((g) => [g.vmid, g.type, g.name, g.status, g.node])).toEqual([
      [200, 'qemu', 'web-prod', 'running', 'pve-prod'],
      [201, 'qemu', 'db-prod', 'stopped', 'pve-prod'],
      [400, 'lxc', 'cache-prod', 'running', 'pve-prod'],
    ]);
    expect(prod.apiTokens).toEqual([{ tokenId: 'proxmox-agent@pve!agent', secret: 'prod-s' }]);
  });
});

describe('startSimulator guards', () => {
  it('refuses to bind anything but loopback', async () => {
    await expect(startSimulator({ cluster: demoClusters({ lab: 'a', prod: 'b' }).lab, host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });

  it('refuses seeds with duplicate vmids or guests on unknown nodes', async () => {
    const { lab } = demoClusters({ lab: 'a', prod: 'b' });
    const dup = { ...lab, guests: [...lab.guests, { ...lab.guests[0]! }] };
    await expect(startSimulator({ cluster: dup })).rejects.toThrow(/duplicate vmid 100/);
    const stray = { ...lab, guests: [{ ...lab.guests[0]!, node: 'elsewhere' }] };
    await expect(startSimulator({ cluster: stray })).rejects.toThrow(/unknown node elsewhere/);
  });
});
