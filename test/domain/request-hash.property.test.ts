/**
 * Properties of request normalization and hashing (docs/request-hashing.md), over every catalog
 * action and every one of its params, with generators derived from the same JSON Schema that
 * GET /v1/catalog publishes:
 *  - the hash is stable under what does not change the meaning: key order, whitespace, JSON string
 *    escapes, number spellings (`100`, `100.0`, `1e2`), an omitted default versus the default given,
 *    whitespace around the reason;
 *  - the hash changes under every change of meaning: action, environment, node, vmid, reason, and
 *    each param of each action (a different value, or a param without default given versus omitted).
 * "Meaning" is modelled here independently of the code under test: a field's effective value is the
 * value given, else its schema default.
 */
import fc from 'fast-check';
import { toJSONSchema } from 'zod';
import { describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/domain/actions/catalog.js';
import { requestHash } from '../../src/domain/hashing.js';
import { normalizeRequest, RequestValidationError } from '../../src/domain/request.js';
import { MAXIMAL_PARAMS } from './action-samples.js';

interface PropSchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  maxLength?: number;
  enum?: unknown[];
  default?: unknown;
  items?: PropSchema;
  maxItems?: number;
}
interface ParamsSchema {
  properties: Record<string, PropSchema>;
  required?: string[];
}

const schemaOf = (params: unknown) => toJSONSchema(params as never, { io: 'input', unrepresentable: 'any' }) as unknown as ParamsSchema;
const CATALOG = ACTIONS.map((a) => ({ name: a.name, schema: schemaOf(a.params) }));

/** A valid value for one param, from its JSON Schema. */
function valueArb(s: PropSchema): fc.Arbitrary<unknown> {
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.oneof(
        fc.integer({ min: s.minimum ?? -1e6, max: Math.min(s.maximum ?? 1e6, (s.minimum ?? 0) + 1000) }),
        fc.integer({ min: s.minimum ?? -1e9, max: Math.min(s.maximum ?? Number.MAX_SAFE_INTEGER, 2 ** 40) }),
      );
    case 'string':
      return s.pattern
        ? fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length <= (s.maxLength ?? Infinity))
        : fc.string({ unit: 'grapheme', maxLength: Math.min(s.maxLength ?? 60, 60) });
    case 'array':
      return fc.array(valueArb(s.items ?? {}), { maxLength: Math.min(s.maxItems ?? 5, 5) });
    default:
      throw new Error(`no generator for param schema ${JSON.stringify(s)}`);
  }
}

const envArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/);
const nodeArb = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?$/);
const vmidArb = fc.oneof(fc.integer({ min: 100, max: 1000 }), fc.integer({ min: 100, max: 999_999_999 }));
const reasonArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }).filter((r) => r.trim().length > 0);

interface Req {
  action: string;
  environment: string;
  target: { node?: string; vmid: number };
  params: Record<string, unknown>;
  reason: string;
}

/** Params for one action: every required param, any subset of the optional ones. */
function paramsArb(schema: ParamsSchema): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(schema.properties);
  const required = new Set(schema.required ?? []);
  const model = Object.fromEntries(keys.map((k) => [k, valueArb(schema.properties[k]!)]));
  return fc.record(model, { requiredKeys: keys.filter((k) => required.has(k)) }) as fc.Arbitrary<Record<string, unknown>>;
}

function normalizes(r: unknown): boolean {
  try {
    normalizeRequest(r);
    return true;
  } catch (err) {
    if (err instanceof RequestValidationError) return false;
    throw err;
  }
}

/** A valid request for the given action (cross-field refinements such as "give at least one key" are filtered). */
const requestArb = (entry: (typeof CATALOG)[number]): fc.Arbitrary<Req> =>
  fc
    .record({
      environment: envArb,
      node: fc.option(nodeArb, { nil: undefined }),
      vmid: vmidArb,
      params: paramsArb(entry.schema),
      reason: reasonArb,
    })
    .map(({ environment, node, vmid, params, reason }) => ({
      action: entry.name,
      environment,
      target: node === undefined ? { vmid } : { node, vmid },
      params,
      reason,
    }))
    .filter(normalizes);

const anyRequestArb = fc.constantFrom(...CATALOG).chain(requestArb);

// ---------------------------------------------------------------------------------------------------
// Equivalent encodings: JSON text written the way other clients might write the same request.

interface Spelling {
  /** Per object: a permutation seed for its keys. */
  order: number[];
  /** Per string: which characters are escaped as \uXXXX (and '/' as '\/'). */
  escapes: boolean[];
  /** Per number: one of the spellings below. */
  numbers: number[];
  /** Per token: the whitespace put before it. */
  spaces: string[];
  /** Per default-valued param the request omits: whether to write the default out. */
  explicitDefaults: boolean[];
  /** Whitespace around the reason (the schema trims it). */
  reasonPad: [string, string];
}

const ws = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n  ');
const spellingArb: fc.Arbitrary<Spelling> = fc.record({
  order: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  escapes: fc.array(fc.boolean(), { minLength: 61, maxLength: 61 }),
  numbers: fc.array(fc.nat(7), { minLength: 13, maxLength: 13 }),
  spaces: fc.array(ws, { minLength: 47, maxLength: 47 }),
  explicitDefaults: fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
  reasonPad: fc.tuple(fc.constantFrom('', ' ', '\n', '\t '), fc.constantFrom('', ' ', '\n', ' \t')),
});

/** Spellings of an integer that JSON.parse reads back as the same number. */
function spellNumber(n: number, form: number): string {
  if (!Number.isInteger(n)) return JSON.stringify(n);
  const s = String(n);
  switch (form) {
    case 1:
      return `${s}.0`;
    case 2:
      return `${s}.000`;
    case 3:
      return `${s}e0`;
    case 4:
      return `${s}E+0`;
    case 5:
      return n === 0 ? '0.0e5' : `${s}0e-1`;
    case 6:
      return n === 0 ? '-0' : Math.abs(n) >= 10 && n % 10 === 0 ? `${s.slice(0, -1)}e1` : `${s}.0e0`;
    default:
      return s;
  }
}

/** A JSON string literal; the spelling decides which UTF-16 units are written as \\uXXXX (hex case varies too). */
function spellString(s: string, escapes: boolean[], at: number): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const escape = escapes[(at + i) % escapes.length]!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '/' && escape) out += '\\/';
    else if (code < 0x20 || escape) {
      const hex = code.toString(16).padStart(4, '0');
      out += `\\u${escapes[(at + i + 1) % escapes.length] ? hex.toUpperCase() : hex}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** Serialize `value` as JSON text with the spelling's choices. */
function spell(value: unknown, sp: Spelling): string {
  let objects = 0;
  let strings = 0;
  let numbers = 0;
  let tokens = 0;
  const pad = () => sp.spaces[tokens++ % sp.spaces.length]!;
  const write = (v: unknown): string => {
    if (v === null || typeof v === 'boolean') return pad() + JSON.stringify(v);
    if (typeof v === 'number') return pad() + spellNumber(v, sp.numbers[numbers++ % sp.numbers.length]!);
    if (typeof v === 'string') return pad() + spellString(v, sp.escapes, strings++ * 7);
    if (Array.isArray(v)) return `${pad()}[${v.map(write).join(',')}${pad()}]`;
    const entries = Object.entries(v as Record<string, unknown>);
    const seed = sp.order[objects++ % sp.order.length]!;
    const shuffled = entries.map((e, i) => ({ e, k: (i * 2654435761 + seed * 40503) % 1000003 })).sort((a, b) => a.k - b.k);
    return `${pad()}{${shuffled.map(({ e: [k, val] }) => `${pad()}${spellString(k, sp.escapes, strings++ * 7)}${pad()}:${write(val)}`).join(',')}${pad()}}`;
  };
  return write(value) + pad();
}

/** The same request, written differently: defaults spelled out or not, reason padded, any encoding. */
function equivalentText(r: Req, sp: Spelling): string {
  const entry = CATALOG.find((c) => c.name === r.action)!;
  const params = { ...r.params };
  Object.entries(entry.schema.properties)
    .filter(([k, s]) => s.default !== undefined && params[k] === undefined)
    .forEach(([k, s], i) => {
      if (sp.explicitDefaults[i % sp.explicitDefaults.length]) params[k] = s.default;
    });
  return spell({ ...r, params, reason: `${sp.reasonPad[0]}${r.reason}${sp.reasonPad[1]}` }, sp);
}

const hashOf = (r: unknown) => requestHash(normalizeRequest(r));

// ---------------------------------------------------------------------------------------------------
// Meaning, modelled independently of normalizeRequest: a param's effective value is the value
// given, else its default; the reason is compared trimmed.

function effective(r: Req): unknown {
  const entry = CATALOG.find((c) => c.name === r.action)!;
  const params = Object.fromEntries(
    Object.entries(entry.schema.properties)
      .map(([k, s]) => [k, r.params[k] ?? s.default] as const)
      .filter(([, v]) => v !== undefined),
  );
  return { action: r.action, environment: r.environment, node: r.target.node ?? null, vmid: r.target.vmid, params, reason: r.reason.trim() };
}

const sameMeaning = (a: Req, b: Req) => {
  try {
    expect(effective(a)).toStrictEqual(effective(b));
    return true;
  } catch {
    return false;
  }
};

const RUNS = 200;

describe('requestHash is stable under equivalent encodings', { timeout: 60_000 }, () => {
  it('key order, whitespace, string escapes, number spellings, explicit defaults and a padded reason never change it', () => {
    fc.assert(
      fc.property(anyRequestArb, spellingArb, spellingArb, (r, s1, s2) => {
        const t1 = equivalentText(r, s1);
        const t2 = equivalentText(r, s2);
        const h = hashOf(r);
        expect(hashOf(JSON.parse(t1)), t1).toBe(h);
        expect(hashOf(JSON.parse(t2)), t2).toBe(h);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('the spellings really differ from the plain encoding (the generator is not vacuous)', () => {
    const texts = fc.sample(fc.tuple(anyRequestArb, spellingArb), 200).map(([r, sp]) => [JSON.stringify(r), equivalentText(r, sp)] as const);
    expect(texts.filter(([plain, spelled]) => plain !== spelled).length).toBeGreaterThan(190);
    const all = texts.map(([, t]) => t).join('');
    for (const marker of ['\\u', '.0', 'e', '\n']) expect(all).toContain(marker);
  });

  it.each(CATALOG.filter((c) => Object.values(c.schema.properties).some((p) => p.default !== undefined)).map((c) => [c.name, c] as const))(
    '%s: an omitted default and the default given hash the same',
    (_, entry) => {
      fc.assert(
        fc.property(requestArb(entry), (r) => {
          const explicit: Req = { ...r, params: { ...r.params } };
          for (const [k, s] of Object.entries(entry.schema.properties)) if (s.default !== undefined && explicit.params[k] === undefined) explicit.params[k] = s.default;
          const omitted: Req = { ...r, params: Object.fromEntries(Object.entries(r.params).filter(([k, v]) => v !== entry.schema.properties[k]!.default)) };
          fc.pre(normalizes(omitted));
          expect(hashOf(explicit)).toBe(hashOf(omitted));
        }),
        { numRuns: RUNS / 4 },
      );
    },
  );
});

describe('requestHash changes under every semantic change', { timeout: 60_000 }, () => {
  const mutate = <T>(r: Req, arb: fc.Arbitrary<T>, apply: (r: Req, v: T) => Req) => arb.map((v) => apply(structuredClone(r), v));
  const fieldMutations: Record<string, (r: Req) => fc.Arbitrary<Req>> = {
    action: (r) =>
      mutate(r, fc.constantFrom(...CATALOG.map((c) => c.name)), (x, action) => ({ ...x, action })),
    environment: (r) => mutate(r, envArb, (x, environment) => ({ ...x, environment })),
    vmid: (r) => mutate(r, vmidArb, (x, vmid) => ({ ...x, target: { ...x.target, vmid } })),
    node: (r) => mutate(r, fc.option(nodeArb, { nil: undefined }), (x, node) => ({ ...x, target: node === undefined ? { vmid: x.target.vmid } : { node, vmid: x.target.vmid } })),
    reason: (r) => mutate(r, reasonArb, (x, reason) => ({ ...x, reason })),
  };

  it.each(Object.keys(fieldMutations))('a different %s gives a different hash', (field) => {
    fc.assert(
      fc.property(
        anyRequestArb.chain((r) => fieldMutations[field]!(r).map((m) => [r, m] as const)),
        ([r, m]) => {
          fc.pre(normalizes(m) && !sameMeaning(r, m));
          expect(hashOf(m)).not.toBe(hashOf(r));
        },
      ),
      { numRuns: RUNS },
    );
  });

  const paramCases = CATALOG.flatMap((c) => Object.keys(c.schema.properties).map((p) => [c.name, p, c] as const));

  it('covers every param of every catalog action', () => {
    const named = new Set(paramCases.map(([a, p]) => `${a}.${p}`));
    for (const [action, params] of Object.entries(MAXIMAL_PARAMS)) for (const p of Object.keys(params)) expect(named).toContain(`${action}.${p}`);
  });

  it.each(paramCases)('%s: a change of params.%s gives a different hash', (_, param, entry) => {
    const s = entry.schema.properties[param]!;
    // A different value, or (for a param without default) the param dropped or added.
    const change = fc.oneof(
      valueArb(s).map((v) => ({ set: v })),
      fc.constant({ set: undefined as unknown }),
    );
    fc.assert(
      fc.property(requestArb(entry), change, (r, c) => {
        const m: Req = structuredClone(r);
        if (c.set === undefined) delete m.params[param];
        else m.params[param] = c.set;
        fc.pre(normalizes(m) && !sameMeaning(r, m));
        expect(hashOf(m), JSON.stringify({ before: r.params, after: m.params })).not.toBe(hashOf(r));
      }),
      { numRuns: RUNS / 4 },
    );
    // The property is not vacuous: for this param some change of meaning exists and was checked.
    const witnesses = fc.sample(fc.tuple(requestArb(entry), valueArb(s)), 100).filter(([r, v]) => {
      const m = structuredClone(r);
      m.params[param] = v;
      return normalizes(m) && !sameMeaning(r, m);
    });
    expect(witnesses.length).toBeGreaterThan(0);
  });
});
