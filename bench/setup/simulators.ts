/**
 * The simulated Proxmox clusters, in their own process (bench/sim-process.ts) with zero-length tasks:
 * `bench-lab` for the cells, `bench-bulk` for the plans left waiting for approval.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEMO_TOKEN_ID, type SimClusterSeed, type SimGuestSeed } from '../../src/simulator/index.js';
import { spawnReady, type Child } from '../harness.js';
import { ROOT, TSX } from './paths.js';

/** Guests the load runs against: lanes never share a guest while they mutate it. */
export const LAB = { node: 'pve-bench', first: 1000, count: 64 };
export const BULK = { node: 'pve-bulk', first: 2000, spread: 50 };

export interface BenchSimulators {
  process: Child;
  /** Cluster name → the simulator's URL. */
  urls: Record<string, string>;
  /** The API token secret both clusters accept (DEMO_TOKEN_ID). */
  secret: string;
}

function guest(vmid: number, node: string, status: 'running' | 'stopped'): SimGuestSeed {
  return { vmid, type: 'qemu', node, name: `bench-${vmid}`, status, tags: ['bench'], cores: 2, memory: 2048, disks: { scsi0: `local-lvm:vm-${vmid}-disk-0,size=8G` } };
}

/** `bench-bulk` holds a guest per sampled approval, plus a spread the other waiting plans share. */
export async function startSimulators(tmp: string, approvals: number, defer: (stop: () => Promise<unknown>) => void): Promise<BenchSimulators> {
  const secret = randomUUID();
  const seeds: SimClusterSeed[] = [
    {
      name: 'bench-lab',
      nodes: [LAB.node],
      guests: Array.from({ length: LAB.count }, (_, i) => guest(LAB.first + i, LAB.node, 'running')),
      apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret }],
    },
    {
      name: 'bench-bulk',
      nodes: [BULK.node],
      guests: Array.from({ length: approvals + BULK.spread }, (_, i) => guest(BULK.first + i, BULK.node, 'stopped')),
      apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret }],
    },
  ];
  writeFileSync(join(tmp, 'sim.json'), JSON.stringify({ taskDurationMs: 0, clusters: seeds }));
  const sim = await spawnReady('simulator', process.execPath, [...TSX, join(ROOT, 'bench/sim-process.ts'), join(tmp, 'sim.json')], {
    cwd: ROOT,
    env: process.env,
    ready: /^simulators /,
    logFile: join(tmp, 'sim.log'),
  });
  defer(() => sim.stop());
  return { process: sim, urls: JSON.parse(sim.readyLine.replace(/^simulators /, '')) as Record<string, string>, secret };
}
