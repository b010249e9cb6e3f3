/**
 * POST /nodes/{node}/vzdump: one `vzdump` task that backs up the listed local guests, holding the
 * `backup` lock on each while it runs and leaving a backup volume in the target storage's content.
 * As in pve-manager, only parameter conflicts answer 400: a selection with no guest on this node
 * answers `OK` (no task), and a storage that cannot take backups fails inside the task.
 */
import { type Handler, bool, recordMutation, startTask, str } from '../context.js';
import { paramError, TaskError } from '../errors.js';
import { diskKeys, parseDisk, rootDiskSize } from '../guest-config.js';
import { guestLabel, guestName } from '../guest-facts.js';
import type { StoredGuest } from '../model-types.js';
import type { RouteKey } from '../served-routes.js';
import { lockedMessage } from './guest-common.js';
import { splitList } from '../validate.js';

const EXT: Record<string, string> = { '0': '', '1': '.lzo', gzip: '.gz', lzo: '.lzo', zstd: '.zst' };

function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}-${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}`;
}

const vzdump: Handler = (ctx) => {
  const { model } = ctx.sim;
  const node = str(ctx, 'node')!;
  const vmidParam = str(ctx, 'vmid');
  const all = bool(ctx, 'all');
  if (all && vmidParam) paramError({ all: "option conflicts with option 'vmid'" });
  if (!all && !vmidParam && !str(ctx, 'pool')) paramError({ vmid: 'property is missing' });
  const storage = str(ctx, 'storage') ?? 'local';
  const mode = str(ctx, 'mode') ?? 'snapshot';
  const compress = str(ctx, 'compress') ?? '0';
  const pool = str(ctx, 'pool');

  const requested: number[] = all
    ? model.allGuests().filter((g) => g.node === node).map((g) => g.vmid)
    : pool
      ? model.allGuests().filter((g) => g.pool === pool).map((g) => g.vmid)
      : splitList(vmidParam ?? '').map(Number);
  const local = requested.map((id) => model.findGuest(id)).filter((g): g is StoredGuest => g?.node === node);
  const external = requested.filter((id) => !local.some((g) => g.vmid === id) && model.findGuest(id));
  const missing = requested.filter((id) => !model.findGuest(id));
  // "silent exit if specified VMs run on other nodes": no task, the plain string OK (API2/VZDump.pm).
  // Guests that do not exist anywhere stay in the job, to fail visibly in it.
  if (local.length === 0 && missing.length === 0 && !all) return 'OK';
  // The UPID carries the vmid only when exactly one guest is left to back up here (VZDump.pm).
  const jobIds = [...local.map((g) => g.vmid), ...missing];
  const id = jobIds.length === 1 ? String(jobIds[0]) : '';
  // PVE::VZDump->new, in the worker, reads the storage before the job starts: a wrong one ends the
  // task with nothing logged but the error.
  const store = model.storage(storage);
  const storageError = !store
    ? `storage '${storage}' does not exist`
    : !store.content.includes('backup')
      ? `can't use storage '${storage}' for backups - wrong content type`
      : undefined;
  if (storageError !== undefined) {
    return startTask(ctx, {
      node,
      type: 'vzdump',
      id,
      begin: () => {
        throw new TaskError(`could not get storage information for '${storage}': ${storageError}`);
      },
      complete: () => undefined,
    });
  }

  const cmdline = `vzdump ${vmidParam ? splitList(vmidParam).join(' ') : '--all 1'} --storage ${storage} --mode ${mode}${compress !== '0' ? ` --compress ${compress}` : ''} --node ${node}`;
  const blockedBy = new Map<number, string>();
  const taken: StoredGuest[] = [];

  return startTask(ctx, {
    node,
    type: 'vzdump',
    id,
    startLog: [`INFO: starting new backup job: ${cmdline}`, ...(external.length ? [`INFO: skip external VMs: ${external.join(', ')}`] : [])],
    begin: () => {
      for (const g of local) {
        if (g.lock) blockedBy.set(g.vmid, lockedMessage(g));
        else { g.lock = 'backup'; taken.push(g); }
      }
    },
    complete: (t) => {
      let failures = 0;
      for (const vmid of missing) {
        failures++;
        t.log(`ERROR: Backup of VM ${vmid} failed - unable to find VM '${vmid}'`);
      }
      for (const g of local) {
        const label = guestLabel(g);
        const kind = g.type === 'qemu' ? 'qemu' : 'lxc';
        t.log(`INFO: Starting Backup of VM ${g.vmid} (${kind})`);
        const blocked = blockedBy.get(g.vmid);
        if (blocked || model.findGuest(g.vmid) !== g) {
          failures++;
          t.log(`ERROR: Backup of VM ${g.vmid} failed - ${blocked ?? `${label} ${g.vmid} does not exist`}`);
          continue;
        }
        if (g.lock === 'backup') delete g.lock;
        t.log(`INFO: status = ${g.status}`);
        t.log(`INFO: ${label === 'VM' ? 'VM' : 'CT'} Name: ${guestName(g)}`);
        for (const k of diskKeys(g)) {
          const d = parseDisk(g.config[k] ?? '');
          if (d.media !== 'cdrom') t.log(`INFO: include disk '${k}' '${d.volid}'`);
        }
        t.log(`INFO: backup mode: ${mode}`);
        let when = new Date();
        const base = (d: Date): string => `vzdump-${kind}-${g.vmid}-${stamp(d)}.${kind === 'qemu' ? 'vma' : 'tar'}${EXT[compress] ?? ''}`;
        while (model.backups.some((b) => b.volid === `${storage}:backup/${base(when)}`)) when = new Date(when.getTime() + 1000);
        const file = base(when);
        t.log(`INFO: creating vzdump archive '/var/lib/vz/dump/${file}'`);
        const notesTemplate = str(ctx, 'notes-template');
        const notes = notesTemplate
          ?.replaceAll('{{guestname}}', guestName(g))
          .replaceAll('{{vmid}}', String(g.vmid))
          .replaceAll('{{node}}', node)
          .replaceAll('{{cluster}}', model.clusterName);
        const volid = `${storage}:backup/${file}`;
        model.backups.push({
          volid,
          storage,
          node,
          vmid: g.vmid,
          guestType: g.type,
          ctime: Math.floor(when.getTime() / 1000),
          size: Math.max(1, Math.floor(rootDiskSize(g) * 0.12)),
          format: `${kind === 'qemu' ? 'vma' : 'tar'}${EXT[compress] ?? ''}`,
          ...(notes ? { notes } : {}),
          ...(bool(ctx, 'protected') ? { protected: true } : {}),
        });
        t.log(`INFO: Finished Backup of VM ${g.vmid} (00:00:01)`);
        recordMutation(ctx, g, 'backup', { upid: t.upid, detail: { volid, storage, mode } });
      }
      if (failures > 0) {
        t.log('INFO: Backup job finished with errors');
        throw new TaskError('job errors');
      }
      t.log('INFO: Backup job finished successfully');
    },
    onAbort: () => {
      for (const g of taken) if (g.lock === 'backup') delete g.lock;
    },
  });
};

export const vzdumpRoutes: Partial<Record<RouteKey, Handler>> = {
  'POST /nodes/{node}/vzdump': vzdump,
};
