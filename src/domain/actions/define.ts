import { z } from 'zod';
import type { Risk } from '../risk.js';
import type { GuestKind, GuestState } from '../guest-state.js';

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
  proxmox: { method: 'POST' | 'PUT' | 'DELETE'; path: string };
  /** UPID task types this action produces (HA-managed guests get `ha*` types). */
  taskTypes: string[];
  baseRisk: Record<EnvironmentTier, Risk>;
  destructive: boolean;
  reversible: boolean;
  /** Extra reads the preflight needs beyond status (config digest, snapshot list). */
  needs: { config?: boolean; snapshots?: boolean };
  /** Decide, from the current state, whether to dispatch, skip (already done) or refuse. */
  assess(state: GuestState, params: z.output<P>): Assessment;
  /** Path parameters for the Proxmox call. */
  pathParams(state: GuestState, params: z.output<P>): Record<string, string | number>;
  /** Body (POST/PUT) or query (DELETE) for the Proxmox call, in Proxmox's own parameter names. */
  proxmoxParams(params: z.output<P>, state: GuestState): Record<string, string | number | boolean>;
  /** True once the guest really is in the state the action aims for (HA tasks end before that). */
  settled?(state: GuestState, params: z.output<P>): boolean;
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
