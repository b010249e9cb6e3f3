/**
 * Config update for QEMU and LXC: a small set of safe keys, each validated as apidata.js describes
 * it. The write is guarded by the config digest the plan read, so a guest changed since the plan is
 * refused as stale instead of being overwritten. Values already in place make the update a no-op,
 * which is also how a retry after a lost (synchronous) answer is recognised.
 */
import { z } from 'zod';
import type { GuestKind } from '../guest-state.js';
import { alreadyDone, blocked, defineAction, flag, inverseBy, noInverse, proceed } from './define.js';
import { at, guestRoute, KINDS, lockedMessage, missing } from './guest-kind.js';

/** One settable key: the agent's schema, its wire form, and when the current value already matches. */
export interface ConfigKey {
  schema: z.ZodType;
  wire(value: unknown): string | number;
  same(current: string | undefined, value: unknown): boolean;
  /** The stored value as this key's param, to set it back (undo); undefined when it cannot be said (unset, no default). */
  previous(current: string | undefined): unknown;
}

function configKey<T>(
  schema: z.ZodType<T>,
  wire: (v: T) => string | number,
  same: (current: string | undefined, v: T) => boolean,
  previous: (current: string | undefined) => T | undefined,
): ConfigKey {
  return { schema, wire: (v) => wire(v as T), same: (current, v) => same(current, v as T), previous };
}

/** An integer key; `fallback` is Proxmox's default when the config does not set it. */
export const integerKey = (schema: z.ZodType<number>, fallback?: number) =>
  configKey(
    schema,
    (v) => v,
    (current, v) => Number(current ?? fallback ?? Number.NaN) === v,
    (current) => (current === undefined ? fallback : Number(current)),
  );

export const booleanKey = (description: string) =>
  configKey(z.boolean().describe(description), (v) => flag(v), (current, v) => (current ?? '0') === String(flag(v)), (current) => current === '1');

// Proxmox strips trailing whitespace from descriptions when it parses the config. `unset`: the
// value that means "not set", when there is one (an empty description; a name has none).
export const textKey = (schema: z.ZodType<string>, unset?: string) =>
  configKey(schema, (v) => v, (current, v) => (current ?? '').trimEnd() === v.trimEnd(), (current) => current ?? unset);

/** QEMU `memory` is a property string `[current=]<MiB>`; the plain number is what everyone sends. */
const qemuMemoryMiB = (current: string | undefined) => Number(/(?:^|current=)(\d+)/.exec(current ?? '512')?.[1]);
export const qemuMemoryKey = configKey(
  z.number().int().min(16).max(Number.MAX_SAFE_INTEGER).describe('Memory in MiB'),
  (v) => String(v),
  (current, v) => qemuMemoryMiB(current) === v,
  qemuMemoryMiB,
);

const tag = z.string().regex(/^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*$/, 'a Proxmox tag: letters, digits, "_", "-", "+", "."');

/**
 * Proxmox stores tags as `a;b` (older versions also `,` or spaces), lower-cased, sorted and without
 * duplicates (guest-common get_unique_tags, datacenter.cfg's default `tag-style`): `Zeta,alpha,zeta`
 * is stored `alpha;zeta`. So the tags are already in place when the sets match ignoring case and
 * order; a case-sensitive comparison would never see `Web` applied and send it again on every run.
 * (A cluster whose `tag-style` is `case-sensitive` keeps the case; there a change of case alone is
 * taken as already in place.)
 */
export const tagsKey = configKey(
  z.array(tag).max(64).describe('The complete tag list (replaces the current tags); Proxmox stores tags lower-cased and sorted'),
  (v) => v.join(';'),
  (current, v) => {
    const now = new Set(tagList(current).map(normalTag));
    const wanted = new Set(v.map(normalTag));
    return now.size === wanted.size && [...wanted].every((t) => now.has(t));
  },
  tagList,
);

const normalTag = (t: string) => t.toLowerCase();

function tagList(current: string | undefined): string[] {
  return (current ?? '').split(/[;, ]+/).filter(Boolean);
}

export const descriptionKey = textKey(z.string().max(8192).describe('Description (notes) shown in the GUI'), '');

export function configUpdateAction(kind: GuestKind, keys: Record<string, ConfigKey>) {
  const k = KINDS[kind];
  const names = Object.keys(keys);
  const shape = Object.fromEntries(names.map((name) => [name, keys[name]!.schema.optional()]));
  const params = z
    .strictObject(shape)
    .refine((p) => names.some((name) => p[name] !== undefined), `give at least one of: ${names.join(', ')}`)
    // The refinement, as JSON Schema says it (the catalog and the OpenAPI document show it).
    .meta({ minProperties: 1 }) as unknown as z.ZodType<
    Record<string, unknown>
  >;
  const requested = (p: Record<string, unknown>) => names.filter((name) => p[name] !== undefined);
  const differing = (config: Record<string, string>, p: Record<string, unknown>) =>
    requested(p).filter((name) => !keys[name]!.same(config[name], p[name]));
  return defineAction({
    name: `${k.prefix}.config.update`,
    kind,
    summary: `Change settings of a ${k.title}`,
    description: `Sets ${names.join(', ')}. Guarded by the config digest read at plan time: if the ${k.noun} changed since, the run fails as stale (plan again). Values already in place are a no-op. Changes a running ${k.noun} cannot apply at once become pending until its next restart.`,
    params,
    proxmox: { method: 'PUT', path: guestRoute(kind, '/config') },
    response: 'sync',
    taskTypes: [],
    baseRisk: { nonprod: 'medium', prod: 'high' },
    destructive: false,
    reversible: true,
    needs: { config: true },
    digestGuard: 'sent',
    assess(state, p) {
      if (!state.exists) return missing(state);
      const changes = differing(state.config ?? {}, p);
      if (changes.length === 0) return alreadyDone(`${k.label} ${state.vmid} already has the requested ${requested(p).join(', ')}`);
      if (state.lock) return blocked(lockedMessage(state));
      return proceed(`changes ${changes.join(', ')}`);
    },
    pathParams: at,
    proxmoxParams: (p, _state, ctx) => ({
      ...Object.fromEntries(requested(p).map((name) => [name, keys[name]!.wire(p[name])])),
      ...(ctx.plannedDigest === undefined ? {} : { digest: ctx.plannedDigest }),
    }),
    // The default config view shows pending values as if applied, so this also holds for a change
    // that waits for a restart; pendingKeys lets execute tell the two apart (GET …/pending).
    settled: (state, p) => differing(state.config ?? {}, p).length === 0,
    pendingKeys: (p) => requested(p),
    // The values the plan read, set back; the undo is guarded by the digest the change left (undo.ts).
    inverse(p, state) {
      const names = requested(p);
      const before = Object.fromEntries(names.map((name) => [name, keys[name]!.previous(state.config?.[name])]));
      const unknown = names.filter((name) => before[name] === undefined);
      if (unknown.length > 0) return noInverse(`${unknown.join(', ')} had no value before the change, and ${k.prefix}.config.update cannot unset a key`);
      return inverseBy(`${k.prefix}.config.update`, state.vmid, before, `sets ${names.join(', ')} back to the values the plan read`);
    },
  });
}
