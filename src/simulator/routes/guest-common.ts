/** Helpers shared by the guest routes: loading the guest, lock checks, status payloads. */
import { type RequestContext, int, str } from '../context.js';
import { die, TaskError } from '../errors.js';
import { memoryMiB, rootDiskSize } from '../guest-config.js';
import { guestLabel, guestName, qmpStatus } from '../guest-facts.js';
import type { GuestType, StoredGuest } from '../model-types.js';

export function loadGuest(ctx: RequestContext, type: GuestType): StoredGuest {
  return ctx.sim.model.requireGuest(str(ctx, 'node')!, type, int(ctx, 'vmid')!);
}

export function lockedMessage(g: StoredGuest): string {
  return `${guestLabel(g)} is locked (${g.lock})`;
}

/** `check_lock` raised synchronously (config writes, resize, migrate, destroy). */
export function checkLockSync(g: StoredGuest): void {
  if (g.lock) die(lockedMessage(g));
}

/** `check_lock` inside a worker (start, stop, snapshot...): fails the task. */
export function checkLockInTask(g: StoredGuest): void {
  if (g.lock) throw new TaskError(lockedMessage(g));
}

/** The file lock path `lock_config` would time out on. */
export function configLockPath(g: StoredGuest): string {
  return g.type === 'qemu' ? `/var/lock/qemu-server/lock-${g.vmid}.conf` : `/run/lock/lxc/pve-config-${g.vmid}.lock`;
}

/** Deterministic injected `lock_config` contention (see FaultInjector.lockContention). */
export function maybeLockContention(ctx: RequestContext, g: StoredGuest): void {
  if (ctx.sim.faults.takeLockContention(g.vmid)) die(`can't lock file '${configLockPath(g)}' - got timeout`);
}

export function uptime(g: StoredGuest): number {
  return g.status === 'running' && g.startedAt ? Math.floor((Date.now() - g.startedAt) / 1000) : 0;
}

export function tagsOf(g: StoredGuest): string | undefined {
  return g.config.tags;
}

/**
 * The per-guest fields common to lists, status/current and /cluster/resources. `full` is
 * qemu-server's vmstatus($vmid, $full): only the full status asks QMP, so only it carries `qmpstatus`
 * (QMP's answer for a running VM, else the plain status), `running-machine` and `running-qemu`.
 * status/current always asks for the full status; the node's VM list only with `full=1`.
 */
export function guestSummary(g: StoredGuest, full = false): Record<string, unknown> {
  const running = g.status === 'running';
  const maxmem = memoryMiB(g) * 1024 * 1024;
  const out: Record<string, unknown> = {
    vmid: g.vmid,
    name: guestName(g),
    status: g.status,
    uptime: uptime(g),
    cpus: Number(g.config.cores ?? 1) * Number(g.config.sockets ?? 1),
    cpu: running ? 0.0123 : 0,
    maxmem,
    mem: running ? Math.floor(maxmem * 0.42) : 0,
    maxdisk: rootDiskSize(g),
    disk: 0,
    netin: running ? 123456 : 0,
    netout: running ? 65432 : 0,
    diskread: running ? 1048576 : 0,
    diskwrite: running ? 524288 : 0,
  };
  if (g.type === 'lxc') {
    out.type = 'lxc';
    out.maxswap = Number(g.config.swap ?? 512) * 1024 * 1024;
    out.swap = 0;
  } else if (full) {
    out.qmpstatus = qmpStatus(g);
    if (running) {
      out['running-machine'] = 'pc-i440fx-9.2+pve1';
      out['running-qemu'] = '9.2.0';
    }
  }
  if (running && g.pid) out.pid = g.pid;
  if (g.lock) out.lock = g.lock;
  if (g.config.tags) out.tags = g.config.tags;
  if (g.config.template === '1') out.template = 1;
  return out;
}
