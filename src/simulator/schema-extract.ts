/**
 * Extraction of the parameter schemas the simulator needs from the real Proxmox `apidata.js`.
 *
 * Used by scripts/gen-simulator-schema.ts to write the committed apidata-subset.json, and by the
 * schema-fidelity test to re-derive that file and prove it has not drifted from the real schema.
 * Keeping one implementation for both guarantees that "identical" means "derived the same way".
 */
import { readFileSync } from 'node:fs';
import { SERVED_ROUTES, splitRouteKey } from './served-routes.js';

/** One node of the apidata tree (only the fields we read). */
interface ApiNode {
  path: string;
  info?: Record<string, ApiMethod>;
  children?: ApiNode[];
}
interface ApiMethod {
  parameters?: { additionalProperties?: number | boolean; properties?: Record<string, RawProp> };
  permissions?: { check?: unknown; user?: string };
  proxyto?: string;
  allowtoken?: number;
}
type RawProp = Record<string, unknown>;

export interface SchemaProp {
  type?: string;
  optional?: boolean;
  default?: unknown;
  enum?: string[];
  pattern?: string;
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  /** A named format (`pve-node`, `pve-tag-list`...) or an inline property-string format. */
  format?: string | Record<string, SchemaProp>;
  requires?: string;
  items?: SchemaProp;
  alias?: string;
  default_key?: boolean;
}

export interface RouteSchema {
  additionalProperties: boolean;
  properties: Record<string, SchemaProp>;
  /** `permissions.check` as apidata states it, e.g. ["perm","/vms/{vmid}",["VM.PowerMgmt"]]. */
  permissionCheck?: unknown;
  proxyto?: string;
  allowtoken: boolean;
}

export interface ApiDataSubset {
  source: string;
  routes: Record<string, RouteSchema>;
}

export type ApiIndex = Map<string, Record<string, ApiMethod>>;

/** Load apidata.js the way its README describes: strip `const apiSchema =` and evaluate the literal. */
export function loadApiIndex(file: string): ApiIndex {
  const src = readFileSync(file, 'utf8');
  const body = src.replace(/^\s*const\s+apiSchema\s*=\s*/, '').replace(/;\s*$/, '');
  const tree = new Function(`return (${body});`)() as ApiNode[];
  const index: ApiIndex = new Map();
  const walk = (n: ApiNode): void => {
    if (n.info) index.set(n.path, n.info);
    n.children?.forEach(walk);
  };
  tree.forEach(walk);
  return index;
}

// Only validation-relevant keys survive; descriptions and doc-only fields would bloat the subset.
const KEPT_KEYS = [
  'type', 'optional', 'default', 'enum', 'pattern', 'minimum', 'maximum', 'minLength', 'maxLength',
  'format', 'requires', 'items', 'alias', 'default_key',
] as const;

function compactProp(raw: RawProp): SchemaProp {
  const out: Record<string, unknown> = {};
  for (const key of KEPT_KEYS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (key === 'optional' || key === 'default_key') out[key] = Boolean(v);
    else if (key === 'format' && typeof v === 'object' && v !== null) out[key] = compactProps(v as Record<string, RawProp>);
    else if (key === 'items' && typeof v === 'object' && v !== null) out[key] = compactProp(v as RawProp);
    else if (key === 'requires' && typeof v !== 'string') continue; // object-valued `requires` is unused by served routes
    else out[key] = v;
  }
  return out as SchemaProp;
}

function compactProps(raw: Record<string, RawProp>): Record<string, SchemaProp> {
  const out: Record<string, SchemaProp> = {};
  for (const name of Object.keys(raw).sort()) out[name] = compactProp(raw[name] ?? {});
  return out;
}

export function extractRoute(index: ApiIndex, routeKey: string): RouteSchema {
  const { method, path } = splitRouteKey(routeKey);
  const m = index.get(path)?.[method];
  if (!m) throw new Error(`apidata has no ${method} ${path}`);
  const schema: RouteSchema = {
    additionalProperties: Boolean(m.parameters?.additionalProperties ?? 0),
    properties: compactProps(m.parameters?.properties ?? {}),
    allowtoken: Boolean(m.allowtoken ?? 1),
  };
  if (m.permissions?.check !== undefined) schema.permissionCheck = m.permissions.check;
  if (m.proxyto) schema.proxyto = m.proxyto;
  return schema;
}

export function extractSubset(index: ApiIndex): ApiDataSubset {
  const routes: Record<string, RouteSchema> = {};
  for (const key of SERVED_ROUTES) routes[key] = extractRoute(index, key);
  return { source: 'proxmox/pve-docs api-viewer/apidata.js (see docs/simulator.md)', routes };
}

/** Stable serialization so the committed file and a re-derivation compare byte for byte. */
export function serializeSubset(subset: ApiDataSubset): string {
  return `${JSON.stringify(subset, null, 1)}\n`;
}
