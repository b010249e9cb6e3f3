/**
 * Clone for QEMU and LXC. Proxmox refuses an existing `newid`, and so does the plan: a guest found at
 * `newid` is never taken as this plan's clone, whatever its name (another plan, of another source,
 * may have made it). This plan's own clone, made by an attempt whose answer was lost, is known from
 * the dispatch journal (the plan dispatched it), which the execute activity consults before it reads
 * the guest: so the state alone never decides that the clone is done (docs/idempotency.md).
 */
import { z } from 'zod';
import type { GuestKind, GuestState } from '../guest-state.js';
import { blocked, configId, defineAction, flag, inverseBy, proceed, type ParamSpec } from './define.js';
import { at, guestId, guestRoute, KINDS, lockedMessage, missing, nodeName, storageId } from './guest-kind.js';
import { diskKeys } from './disks.js';

/** Params both kinds take; the name key differs (QEMU `name`, LXC `hostname`) and is added per kind. */
export const cloneParams = {
  newid: guestId.describe('Id of the new guest; must be free'),
  full: z.boolean().default(true).describe('Full copy of the disks (default). false: a linked clone, from a template or a snapshot only'),
  target: nodeName.optional().describe('Node the clone is placed on (needs shared storage); default: the source node'),
  storage: storageId.optional().describe('Storage for the copied disks (full clones only); default: the source disks\' storage'),
  snapname: configId.optional().describe('Clone the state of this snapshot instead of the current state'),
  description: z.string().max(8192).optional().describe('Description of the new guest'),
};

interface CloneOutput {
  newid: number;
  full: boolean;
  target?: string | undefined;
  storage?: string | undefined;
  snapname?: string | undefined;
  description?: string | undefined;
}

/** Refinement both kinds apply (qemu-server and pve-container refuse it in the same words). */
export const storageOnlyWhenFull = (p: { full: boolean; storage?: string | undefined }) => p.full || p.storage === undefined;
export const storageOnlyWhenFullMessage = { message: "parameter 'storage' not allowed for linked clones", path: ['storage'] };
/** The same rule in JSON Schema (`.meta()`), so the catalog and the OpenAPI document state it too. */
export const storageOnlyWhenFullJsonSchema = { if: { properties: { full: { const: false } }, required: ['full'] }, then: { not: { required: ['storage'] } } };

export function cloneAction<P extends z.ZodType<CloneOutput>>(kind: GuestKind, spec: ParamSpec<P> & { plannedName(params: z.output<P>): string }) {
  const k = KINDS[kind];
  return defineAction({
    name: `${k.prefix}.clone`,
    kind,
    summary: `Clone a ${k.title} to a new id`,
    description:
      `Copies the ${k.noun} (or one of its snapshots) to a new ${k.noun} with id newid, stopped. Any guest already at newid refuses the plan, even one with the planned name: it is not this plan's clone (a retry of this plan follows its own clone through the dispatch journal).`,
    params: spec.params,
    proxmox: { method: 'POST', path: guestRoute(kind, '/clone') },
    response: 'task',
    taskTypes: [`${k.task}clone`],
    baseRisk: { nonprod: 'low', prod: 'medium' },
    destructive: false,
    reversible: true,
    needs: { config: true, snapshots: true, peer: (p) => p.newid },
    assess(state, p) {
      if (!state.exists) return missing(state);
      const name = spec.plannedName(p);
      const peer = state.peer;
      if (peer?.exists) {
        // The name does not make it ours: another plan (of another source, say) may have made it.
        if (peer.kind === kind && peer.name === name) return blocked(`${k.label} ${p.newid} already exists and is not this plan's clone`);
        return blocked(
          kind === 'qemu'
            ? `unable to create VM ${p.newid}: config file already exists`
            : `${KINDS[peer.kind ?? 'lxc'].label} ${p.newid} already exists on node '${peer.node}'`,
        );
      }
      if (state.lock) return blocked(lockedMessage(state));
      if (p.snapname !== undefined && !state.snapshots.includes(p.snapname)) return blocked(`snapshot '${p.snapname}' does not exist`);
      const linkedNotPossible = linkedCloneRefusal(state, p);
      if (linkedNotPossible) return blocked(linkedNotPossible);
      if (kind === 'lxc' && p.full && state.status === 'running' && p.snapname === undefined) {
        return blocked('Full clone of a running container is only possible from a snapshot');
      }
      return proceed();
    },
    pathParams: at,
    proxmoxParams: (p) => ({
      newid: p.newid,
      full: flag(p.full),
      ...(p.target === undefined ? {} : { target: p.target }),
      ...(p.storage === undefined ? {} : { storage: p.storage }),
      ...(p.snapname === undefined ? {} : { snapname: p.snapname }),
      ...(p.description === undefined ? {} : { description: p.description }),
      ...spec.toProxmox(p),
    }),
    settled: (state, p) => state.peer?.exists === true && state.peer.kind === kind && !state.peer.lock,
    // The clone is a new guest: taking it back deletes that guest (a destructive plan, gated as one).
    inverse: (p) => inverseBy(`${k.prefix}.delete`, p.newid, {}, `deletes the clone ${k.label} ${p.newid}`),
  });
}

/**
 * A linked clone shares the source's base volumes, which storages offer for a template's disks or a
 * snapshot's. Anything else Proxmox refuses, naming the first disk.
 */
function linkedCloneRefusal(state: GuestState, p: CloneOutput): string | undefined {
  if (p.full || state.template || p.snapname !== undefined) return undefined;
  const disk = diskKeys(state.kind, state.config ?? {})[0];
  if (disk === undefined) return undefined;
  return state.kind === 'qemu'
    ? `Linked clone feature is not supported for drive '${disk.key}'`
    : `Linked clone feature for '${disk.volume}' is not available`;
}
