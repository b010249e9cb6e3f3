/** The two demo clusters used by `npm run sim` and by integration tests. */
import type { SimClusterSeed } from './types.js';

export const DEMO_TOKEN_ID = 'proxmox-agent@pve!agent';

export function demoClusters(secrets: { lab: string; prod: string }): { lab: SimClusterSeed; prod: SimClusterSeed } {
  const lab: SimClusterSeed = {
    name: 'lab',
    nodes: ['pve-lab'],
    storages: ['local', 'local-lvm'],
    apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret: secrets.lab }],
    // An empty pool, as a fresh user.cfg pool is: /cluster/resources lists it without usage figures.
    pools: ['lab-sandbox'],
    guests: [
      {
        vmid: 100, type: 'qemu', node: 'pve-lab', name: 'web-lab', status: 'running',
        tags: ['web', 'lab'], cores: 2, memory: 2048,
        disks: { scsi0: 'local-lvm:vm-100-disk-0,iothread=1,size=32G' },
        description: 'Lab web server (nginx)',
      },
      {
        vmid: 101, type: 'qemu', node: 'pve-lab', name: 'db-lab', status: 'stopped',
        tags: ['db', 'lab'], cores: 4, memory: 4096,
        disks: { scsi0: 'local-lvm:vm-101-disk-0,iothread=1,size=64G', scsi1: 'local-lvm:vm-101-disk-1,iothread=1,size=100G' },
        snapshots: ['before-upgrade'],
        description: 'Lab PostgreSQL',
      },
      {
        vmid: 300, type: 'lxc', node: 'pve-lab', name: 'cache-lab', status: 'running',
        tags: ['cache', 'lab'], cores: 1, memory: 512,
        disks: { rootfs: 'local-lvm:vm-300-disk-0,size=8G' },
        description: 'Lab Redis container',
      },
    ],
  };
  const prod: SimClusterSeed = {
    name: 'prod',
    nodes: ['pve-prod', 'pve-prod-2'],
    storages: ['local', 'local-lvm'],
    apiTokens: [{ tokenId: DEMO_TOKEN_ID, secret: secrets.prod }],
    pools: ['production'],
    guests: [
      {
        vmid: 200, type: 'qemu', node: 'pve-prod', name: 'web-prod', status: 'running',
        tags: ['web', 'prod'], cores: 4, memory: 8192, pool: 'production',
        disks: { scsi0: 'local-lvm:vm-200-disk-0,iothread=1,size=64G' },
        description: 'Production web server',
      },
      {
        vmid: 201, type: 'qemu', node: 'pve-prod', name: 'db-prod', status: 'stopped',
        tags: ['db', 'prod'], cores: 8, memory: 16384, pool: 'production',
        disks: { scsi0: 'local-lvm:vm-201-disk-0,iothread=1,size=128G', scsi1: 'local-lvm:vm-201-disk-1,iothread=1,size=500G' },
        snapshots: ['nightly'],
        description: 'Production PostgreSQL',
      },
      {
        vmid: 400, type: 'lxc', node: 'pve-prod', name: 'cache-prod', status: 'running',
        tags: ['cache', 'prod'], cores: 2, memory: 2048, pool: 'production',
        disks: { rootfs: 'local-lvm:vm-400-disk-0,size=16G' },
        description: 'Production Redis container',
      },
    ],
  };
  return { lab, prod };
}
