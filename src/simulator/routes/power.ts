/**
 * Power routes (status/current and status/{start,stop,shutdown,reboot,reset,suspend,resume}).
 *
 * The QEMU/LXC asymmetries are deliberate and follow qemu-server / pve-container:
 * - starting a running VM is a task that fails `VM 100 already running`; for a CT it is a sync 500;
 * - stopping a stopped VM is an OK no-op task; for a CT it is a sync 500 `CT 300 not running`;
 * - HA-managed guests get `hastart`/`hastop` tasks that end OK before the guest changes state.
 */
import { type Handler, type RequestContext, bool, recordMutation, startTask } from '../context.js';
import { die, TaskError } from '../errors.js';
import type { MutationOp } from '../mutation-log.js';
import type { RouteKey } from '../served-routes.js';
import { applyPending } from '../guest-config.js';
import { guestLabel, haCrmState } from '../guest-facts.js';
import type { GuestType, StoredGuest } from '../model-types.js';
import { checkLockInTask, guestSummary, loadGuest } from './guest-common.js';
import { haCommandRefusal } from './ha.js';

const prefix = (t: GuestType): string => (t === 'qemu' ? 'qm' : 'vz');

/**
 * HA-managed start/stop: the task only asks ha-manager for a state; the CRM/LRM act a little later.
 * The delayed effect re-checks the requested state so a quick start→stop does not flap.
 */
function haRequest(ctx: RequestContext, g: StoredGuest, want: 'started' | 'stopped', op: MutationOp): string {
  const sid = `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`;
  return startTask(ctx, {
    node: g.node,
    type: want === 'started' ? 'hastart' : 'hastop',
    id: String(g.vmid),
    vmid: g.vmid,
    startLog: [`Requesting HA ${want === 'started' ? 'start' : 'stop'} for ${sid}`],
    complete: (t) => {
      // `ha-manager set <sid> --state started` refuses a service in error state (check_service_state);
      // the stop path (`ha-manager crm-command stop`) does not check it.
      const refused = want === 'started' ? haCommandRefusal(g, ['ha-manager', 'set', sid, '--state', 'started']) : undefined;
      if (refused) {
        for (const line of refused.log) t.log(line);
        throw new TaskError(refused.exit);
      }
      g.haState = want;
      const upid = t.upid;
      ctx.sim.tasks.defer(ctx.sim.haDelayMs, () => {
        const { model } = ctx.sim;
        if (model.findGuest(g.vmid) !== g || g.haState !== want) return;
        // The CRM does not act on a service in error, fence or freeze state.
        if (g.haCrmOverride) return;
        if (want === 'started' && g.status !== 'running') {
          applyPending(g);
          model.markRunning(g);
          recordMutation(ctx, g, op, { upid, detail: { via: 'ha' } });
        } else if (want === 'stopped' && g.status === 'running') {
          model.markStopped(g);
          recordMutation(ctx, g, op, { upid, detail: { via: 'ha' } });
        }
      });
    },
  });
}

function notRunning(g: StoredGuest): never {
  die(`${guestLabel(g)} ${g.vmid} not running`);
}

function powerTask(
  ctx: RequestContext,
  g: StoredGuest,
  action: string,
  complete: (upid: string) => void,
  opts: { lock?: string; checkLock?: boolean; refuseTemplate?: boolean } = {},
): string {
  return startTask(ctx, {
    node: g.node,
    type: `${prefix(g.type)}${action}`,
    id: String(g.vmid),
    vmid: g.vmid,
    ...(opts.lock ? { lock: { guest: g, name: opts.lock } } : {}),
    begin: () => {
      // vm_start / the CT start worker refuse a template before they look at locks.
      if (opts.refuseTemplate && g.config.template === '1') {
        throw new TaskError(g.type === 'qemu' ? "you can't start a vm if it's a template" : "you can't start a CT if it's a template");
      }
      if (opts.checkLock !== false) checkLockInTask(g);
    },
    complete: (t) => complete(t.upid),
  });
}

function start(type: GuestType): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    if (type === 'lxc' && g.status === 'running') die(`CT ${g.vmid} already running`);
    if (g.haManaged) return haRequest(ctx, g, 'started', 'start');
    const label = guestLabel(g);
    return powerTask(
      ctx,
      g,
      'start',
      (upid) => {
        if (g.status === 'running') throw new TaskError(`${label} ${g.vmid} already running`);
        // Pending changes apply when the guest starts (vmconfig_apply_pending in vm_start / CT start).
        applyPending(g);
        ctx.sim.model.markRunning(g);
        recordMutation(ctx, g, 'start', { upid });
      },
      { refuseTemplate: true },
    );
  };
}

function stopLike(type: GuestType, action: 'stop' | 'shutdown'): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    if (type === 'lxc' && g.status !== 'running') notRunning(g);
    if (action === 'shutdown' && type === 'qemu' && g.paused && !bool(ctx, 'forceStop')) {
      die('VM is paused - cannot shutdown');
    }
    if (g.haManaged) return haRequest(ctx, g, 'stopped', action);
    return powerTask(ctx, g, action, (upid) => {
      if (g.status !== 'running') return; // qemu: stopping a stopped VM is an OK no-op, not a mutation
      ctx.sim.model.markStopped(g);
      if (g.lock === 'suspended') delete g.lock;
      recordMutation(ctx, g, action, { upid });
    });
  };
}

function reboot(type: GuestType): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    // pve-container says "VM" here too (LXC/Status.pm), hence no guestLabel.
    if (g.status !== 'running') die(`VM ${g.vmid} not running`);
    return powerTask(ctx, g, 'reboot', (upid) => {
      if (g.status !== 'running') throw new TaskError(`VM ${g.vmid} not running`);
      // A reboot is a shutdown and a fresh start: pending changes apply (reset does not).
      applyPending(g);
      ctx.sim.model.markRunning(g);
      recordMutation(ctx, g, 'reboot', { upid });
    });
  };
}

const reset: Handler = (ctx) => {
  const g = loadGuest(ctx, 'qemu');
  if (g.status !== 'running') notRunning(g);
  return powerTask(ctx, g, 'reset', (upid) => {
    if (g.status !== 'running') throw new TaskError(`VM ${g.vmid} not running`);
    ctx.sim.model.markRunning(g);
    recordMutation(ctx, g, 'reset', { upid });
  });
};

function suspend(type: GuestType): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    if (g.status !== 'running') notRunning(g);
    // Hibernating would leave ha-manager a stopped VM it believes started (Qemu.pm vm_suspend).
    if (type === 'qemu' && bool(ctx, 'todisk') && g.haManaged) die('Cannot suspend HA managed VM to disk');
    if (type === 'qemu' && bool(ctx, 'todisk')) {
      // Hibernate: lock `suspending` while the state is saved, then stopped with lock `suspended`.
      return startTask(ctx, {
        node: g.node,
        type: 'qmsuspend',
        id: String(g.vmid),
        vmid: g.vmid,
        lock: { guest: g, name: 'suspending' },
        begin: () => checkLockInTask(g),
        complete: (t) => {
          ctx.sim.model.markStopped(g);
          g.lock = 'suspended';
          recordMutation(ctx, g, 'suspend', { upid: t.upid, detail: { todisk: true } });
        },
      });
    }
    if (type === 'lxc') return checkpoint(ctx, g);
    return powerTask(ctx, g, 'pause', (upid) => {
      if (g.status !== 'running') throw new TaskError(`VM ${g.vmid} not running`);
      if (g.paused) return;
      g.paused = true;
      recordMutation(ctx, g, 'suspend', { upid });
    });
  };
}

/** The command pve-container runs; run_command dies with this text when it fails. */
const restoreCommand = (vmid: number) => `lxc-checkpoint -n ${vmid} -r --foreground -D /var/lib/vz/dump`;

/**
 * LXC suspend is `lxc-checkpoint -s` (LXC/Status.pm vm_suspend): CRIU dumps the container to
 * /var/lib/vz/dump and stops it, so it ends `stopped`, not frozen. Resume restores the dump.
 */
function checkpoint(ctx: RequestContext, g: StoredGuest): string {
  return powerTask(ctx, g, 'suspend', (upid) => {
    if (g.status !== 'running') throw new TaskError(`command 'lxc-checkpoint -n ${g.vmid} -s -D /var/lib/vz/dump' failed: exit code 1`);
    ctx.sim.model.markStopped(g);
    g.checkpointed = true;
    recordMutation(ctx, g, 'suspend', { upid, detail: { checkpoint: true } });
  });
}

/** LXC resume: refused for a running CT; the task restores the checkpoint (and fails without one). */
function restore(ctx: RequestContext, g: StoredGuest): string {
  if (g.status === 'running') die(`CT ${g.vmid} already running`);
  // vm_resume takes no config lock and checks no lock: lxc-checkpoint -r runs as is.
  return powerTask(
    ctx,
    g,
    'resume',
    (upid) => {
      if (g.status === 'running') throw new TaskError(`command '${restoreCommand(g.vmid)}' failed: exit code 1`);
      if (!g.checkpointed) throw new TaskError(`command '${restoreCommand(g.vmid)}' failed: exit code 1`);
      delete g.checkpointed;
      ctx.sim.model.markRunning(g);
      recordMutation(ctx, g, 'resume', { upid, detail: { checkpoint: true } });
    },
    { checkLock: false },
  );
}

function resume(type: GuestType): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    if (type === 'lxc') return restore(ctx, g);
    const hibernated = g.lock === 'suspended';
    if (!hibernated && g.status !== 'running') notRunning(g);
    return powerTask(
      ctx,
      g,
      'resume',
      (upid) => {
        if (hibernated) {
          delete g.lock;
          ctx.sim.model.markRunning(g);
          recordMutation(ctx, g, 'resume', { upid, detail: { fromDisk: true } });
          return;
        }
        if (!g.paused) return;
        g.paused = false;
        recordMutation(ctx, g, 'resume', { upid });
      },
      { checkLock: !hibernated },
    );
  };
}

/** The `agent` property string: `[enabled=]<1|0>[,fstrim_cloned_disks=...][,type=...]`. */
function agentEnabled(value: string | undefined): boolean {
  if (value === undefined) return false;
  const first = value.split(',').find((p) => !p.includes('=') || p.startsWith('enabled='));
  const v = first?.replace(/^enabled=/, '');
  return v === '1' || v === 'yes' || v === 'on' || v === 'true';
}

function current(type: GuestType): Handler {
  return (ctx) => {
    const g = loadGuest(ctx, type);
    const out = guestSummary(g, true);
    // PVE::HA::Config::get_service_status: the state manager_status holds for the service (error, fence...).
    out.ha = g.haManaged ? { managed: 1, state: haCrmState(g) } : { managed: 0 };
    // `agent: 1` only when the config enables the guest agent (get_qga_key($conf, 'enabled')); never 0.
    if (type === 'qemu' && agentEnabled(g.config.agent)) out.agent = 1;
    return out;
  };
}

export const powerRoutes: Partial<Record<RouteKey, Handler>> = {
  'GET /nodes/{node}/qemu/{vmid}/status/current': current('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/status/start': start('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/status/stop': stopLike('qemu', 'stop'),
  'POST /nodes/{node}/qemu/{vmid}/status/shutdown': stopLike('qemu', 'shutdown'),
  'POST /nodes/{node}/qemu/{vmid}/status/reboot': reboot('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/status/reset': reset,
  'POST /nodes/{node}/qemu/{vmid}/status/suspend': suspend('qemu'),
  'POST /nodes/{node}/qemu/{vmid}/status/resume': resume('qemu'),
  'GET /nodes/{node}/lxc/{vmid}/status/current': current('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/status/start': start('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/status/stop': stopLike('lxc', 'stop'),
  'POST /nodes/{node}/lxc/{vmid}/status/shutdown': stopLike('lxc', 'shutdown'),
  'POST /nodes/{node}/lxc/{vmid}/status/reboot': reboot('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/status/suspend': suspend('lxc'),
  'POST /nodes/{node}/lxc/{vmid}/status/resume': resume('lxc'),
};
