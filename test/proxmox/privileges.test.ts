import { describe, expect, it } from 'vitest';
import { actionPrivileges, loadPermissions } from '../../scripts/gen-proxmox-privileges.js';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { ACTION_PRIVILEGES, PVE_PRIVILEGES } from '../../src/proxmox/privileges.js';
import { APIDATA_PATH } from '../../scripts/apidata-path.js';

describe('src/proxmox/privileges.ts', () => {
  it('holds what the generator derives from the catalog and apidata.js (the docs/security.md table)', () => {
    expect(ACTION_PRIVILEGES).toEqual(actionPrivileges(loadPermissions(APIDATA_PATH)));
    expect(Object.keys(ACTION_PRIVILEGES).sort()).toEqual(ACTIONS.map((a) => a.name).sort());
  });

  it('names only privileges PVE 9 knows (every one appears in the 9.x apidata.js), and PVE 8 has VM.Monitor instead of VM.GuestAgent.*', async () => {
    const { readFileSync } = await import('node:fs');
    const apidata = readFileSync(APIDATA_PATH, 'utf8');
    for (const p of PVE_PRIVILEGES[9]) expect(apidata, p).toContain(p);
    expect(apidata).not.toContain('VM.Monitor');
    for (const privs of Object.values(ACTION_PRIVILEGES)) for (const p of privs) {
      expect(PVE_PRIVILEGES[9]).toContain(p);
      expect(PVE_PRIVILEGES[8]).toContain(p);
    }
    expect(PVE_PRIVILEGES[8]).toContain('VM.Monitor');
    expect(PVE_PRIVILEGES[8].filter((p) => p.startsWith('VM.GuestAgent.'))).toEqual([]);
    expect(PVE_PRIVILEGES[9]).not.toContain('VM.Monitor');
  });
});
