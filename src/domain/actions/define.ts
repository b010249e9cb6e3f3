import { z } from 'zod';
import type { Risk } from '../risk.js';
import type { GuestKind, GuestState } from '../guest-state.js';
import type { ProxmoxPathTemplate } from '../../proxmox/paths.js';

/**
 * What the catalog knows about one action. Pure data and pure functions: the activity does the I/O,
 * the catalog decides what the I/O should be and what "already done" means.
 */
export interface ActionDefinition<P extends z.ZodType = z.ZodType> {
  name: string;
  kind: GuestKind;
  summary: string;
  description: string;
  params: P;
  /** The one mutating call; the path is one of PROXMOX_ROUTES (the compiler checks it). */
  proxmox: { method: 'POST' | 'PUT' | 'DELETE'; path: ProxmoxPathTemplate };
  /**
   * What Proxmox answers: a task id (`task`), `null` once the work is done (`sync`, e.g. PUT config),
   * or either (`task-or-sync`: resize returned null before qemu-server 8.0.2).
   */
  response: 'task' | 'sync' | 'task-or-sync';
  /** UPID task types this action produces (HA-managed guests get `ha*` types). Empty for sync calls. */
  taskTypes: string[];
  baseRisk: Record<EnvironmentTier, Risk>;
  destructive: boolean;
  reversible: boolean;
  /** Reads the preflight needs beyond status: the guest config, its snapshots, another guest, a storage. */
  needs: ActionNeeds<z.output<P>>;
  /**
   * Optimistic concurrency on the guest config: the digest the plan's preflight read must still be
   * current when the action runs. `sent`: the call carries it and Proxmox checks it atomically.
   * `checked`: the endpoint takes no digest, so execute compares it just before dispatching.
   */
  digestGuard?: 'sent' | 'checked';
  /** The node the guest ends up on (migrate): policy's rules on nodes see it as the destination. */
  destination?(params: z.output<P>): string;
  /** Decide, from the current state, whether to dispatch, skip (already done) or refuse. */
  assess(state: GuestState, params: z.output<P>, ctx?: ActionContext): Assessment;
  /** Path parameters for the Proxmox call. */
  pathParams(state: GuestState, params: z.output<P>): Record<string, string | number>;
  /** Body (POST/PUT) or query (DELETE) for the Proxmox call, in Proxmox's own parameter names. */
  proxmoxParams(params: z.output<P>, state: GuestState, ctx: ActionContext): WireParams;
  /**
   * An answer that is neither a task id nor `null` and says Proxmox started nothing (vzdump answers
   * the plain string `OK` when none of the guests it was given is on its node): why, for the failure the run
   * reports. Undefined for any other answer.
   */
  startedNothing?(answer: unknown, state: GuestState): string | undefined;
  /** True once the guest really is in the state the action aims for (HA tasks end before that). */
  settled?(state: GuestState, params: z.output<P>): boolean;
  /**
   * Config keys this action writes that a running guest may keep pending until its next start or
   * reboot (a config write it cannot hotplug). After the write, execute reads GET …/pending and says
   * which of them wait, instead of calling the change applied.
   */
  pendingKeys?(params: z.output<P>): string[];
  /**
   * What takes this action back (docs/approvals.md, "Undo"), from the plan's params and the state its
   * preflight read: the inverse request, or `inverse: null` and why none exists. Every action says
   * so, so an irreversible one is explicit, not forgotten.
   */
  inverse(params: z.output<P>, state: GuestState): Inverse;
}

/** An action request that takes a plan back; the target node is resolved when the undo is planned. */
export interface InverseRequest {
  action: string;
  target: { vmid: number };
  params: Record<string, unknown>;
}

/** `reason`: what the inverse does, or why there is none (machine-readable: `inverse` is null). */
export type Inverse = { inverse: InverseRequest; reason: string } | { inverse: null; reason: string };

export const inverseBy = (action: string, vmid: number, params: Record<string, unknown>, reason: string): Inverse => ({
  inverse: { action, target: { vmid }, params },
  reason,
});
export const noInverse = (reason: string): Inverse => ({ inverse: null, reason });

export interface ActionNeeds<Params> {
  /** The config: digest, protection, and the keys actions compare (cores, disks...). */
  config?: boolean;
  snapshots?: boolean;
  /** Another guest the action depends on, by id: clone's `newid`. */
  peer?(params: Params): number;
  /** A storage and this guest's backups in it: backup's target. */
  backupStorage?(params: Params): string;
}

/** What an action knows about the run it is part of; absent at plan time. */
export interface ActionContext {
  /** The plan being applied: it marks creations Proxmox cannot name for us (backup notes). */
  planId?: string;
  /** The config digest the plan's preflight read: digest-guarded calls must use this one. */
  plannedDigest?: string;
}

/** Parameters as Proxmox takes them (booleans as 0/1 via `flag`). */
export type WireParams = Record<string, string | number | boolean>;

/** An endpoint's own parameters, where QEMU and LXC differ: the agent's schema and its Proxmox names. */
export interface ParamSpec<P extends z.ZodType> {
  params: P;
  toProxmox(params: z.output<P>): WireParams;
}

export type EnvironmentTier = 'nonprod' | 'prod';

export type Assessment =
  | { kind: 'proceed'; note?: string }
  | { kind: 'already_done'; reason: string }
  | { kind: 'blocked'; reason: string };

export const proceed = (note?: string): Assessment => (note ? { kind: 'proceed', note } : { kind: 'proceed' });
export const alreadyDone = (reason: string): Assessment => ({ kind: 'already_done', reason });
export const blocked = (reason: string): Assessment => ({ kind: 'blocked', reason });

export function defineAction<P extends z.ZodType>(def: ActionDefinition<P>): ActionDefinition<P> {
  return def;
}

/** Proxmox booleans are 0/1 on the wire. */
export const flag = (value: boolean): number => (value ? 1 : 0);

/** Proxmox `pve-configid` (`^[a-z][a-z0-9_-]+$`i, at most 40 for snapshot names); `current` names the live state. */
export const configId = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/, 'must be 2-40 characters: a letter, then letters, digits, "_" or "-"')
  .refine((name) => name !== 'current', '"current" is reserved by Proxmox for the live state');
