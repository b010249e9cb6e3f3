/**
 * Parameter verification modelled on PVE::JSONSchema (check_prop / check_type / check_format /
 * parse_property_string), fed with the schemas extracted into apidata-subset.json.
 *
 * The goal is that a client sees the same 400 `errors` map the real server would produce, so the
 * order of checks (type, format, pattern, maxLength, minLength, maximum, minimum, enum) and the
 * message texts follow JSONSchema.pm.
 */
import type { SchemaProp } from './schema-extract.js';

/** Request parameters after body/query merging: scalars as strings (0/1 for booleans), arrays kept. */
export type ParamValue = string | string[] | Record<string, unknown>;
export type Params = Record<string, ParamValue>;

/**
 * apidata collapses indexed keys (`scsi0`..`scsi30`) into `scsi[n]`; the real schema expands them up
 * to these maxima (qemu-server: MAX_IDE_DISKS 4, MAX_SCSI_DISKS 31, ... pve-container: 256 mount
 * points). Unknown families fall back to 32.
 */
const INDEX_LIMITS: Record<string, number> = {
  ide: 4, scsi: 31, virtio: 16, sata: 6, net: 32, ipconfig: 32, unused: 256, hostpci: 16, serial: 4,
  parallel: 3, usb: 14, numa: 8, virtiofs: 10, mp: 256, dev: 256,
};

export function lookupProp(props: Record<string, SchemaProp>, name: string): SchemaProp | undefined {
  const direct = props[name];
  if (direct) return direct;
  const m = /^([a-z]+)(\d+)$/.exec(name);
  if (!m) return undefined;
  const family = props[`${m[1]}[n]`];
  if (!family) return undefined;
  const limit = INDEX_LIMITS[m[1]!] ?? 32;
  return Number(m[2]) < limit ? family : undefined;
}

const isInteger = (v: string): boolean => /^[+-]?\d+$/.test(v);
const isNumber = (v: string): boolean => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v);

/** PVE::Tools::split_list */
export function splitList(text: string): string[] {
  if (text.includes('\0')) return text.split('\0');
  return text.replace(/[,;]/g, ' ').trim().split(/\s+/).filter((s) => s !== '');
}

const NODE_RE = /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const CONFIGID_RE = /^[a-z][a-z0-9_-]+$/i;
const DNS_LABEL = '([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)';
const DNS_RE = new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`);

/** Named string formats we can verify; each throws the verifier's `die` text. Others pass. */
const NAMED_FORMATS: Record<string, (v: string) => void> = {
  'pve-node': (v) => { if (!NODE_RE.test(v)) throw new Error('value does not look like a valid node name'); },
  'pve-vmid': (v) => { if (!/^[1-9][0-9]{2,8}$/.test(v)) throw new Error('value does not look like a valid VM ID'); },
  'pve-configid': (v) => { if (!CONFIGID_RE.test(v)) throw new Error(`invalid configuration ID '${v}'`); },
  'pve-storage-id': (v) => {
    if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v)) throw new Error(`storage ID '${v}' contains illegal characters`);
  },
  'dns-name': (v) => { if (!DNS_RE.test(v)) throw new Error('value does not look like a valid DNS name'); },
  'pve-tag': (v) => { if (!/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(v)) throw new Error('invalid characters in tag'); },
  'pve-task-status-type': (v) => { if (!/^(ok|error|warning|unknown)$/i.test(v)) throw new Error(`invalid status '${v}'`); },
  'disk-size': (v) => { if (!/^(\d+(\.\d+)?)([KMGT])?$/.test(v)) throw new Error(`value does not look like a valid disk size: ${v}`); },
};

function checkNamedFormat(format: string, value: string): void {
  const m = /^(.*?)(?:-(list|opt))?$/.exec(format)!;
  const verifier = NAMED_FORMATS[m[1]!];
  if (!verifier) return;
  if (m[2] === 'list') splitList(value).forEach(verifier);
  else if (m[2] === 'opt') { if (value) verifier(value); }
  else verifier(value);
}

/** Perl-only regex syntax seen in apidata (`(?^:...)`) rewritten for JS; undefined if it won't compile. */
function toJsRegex(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern.replace(/\(\?\^:/g, '(?:')})$`);
  } catch {
    return undefined;
  }
}

function addError(errors: Record<string, string>, path: string, msg: string): void {
  const p = path || '_root';
  errors[p] = errors[p] ? `${errors[p]}\\n${msg}` : msg;
}

/**
 * Thrown from property-string parsing; stringifies like PVE::Exception with errors, so that the
 * outer message becomes "invalid format - format error\nkey: msg\n".
 */
class FormatError extends Error {}

/** parse_property_string for inline hash formats (`memory`, `scsi[n]`, `rootfs`...). */
export function parsePropertyString(format: Record<string, SchemaProp>, data: string, path: string): Record<string, string> {
  const res: Record<string, string> = {};
  let defaultKey: string | undefined;
  for (const part of data.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/.exec(part);
    if (kv) {
      let k = kv[1]!;
      let v = kv[2]!;
      if (res[k] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${k}`);
      let schema = format[k];
      if (schema?.alias) { k = schema.alias; schema = format[k]; }
      if (!schema) throw new FormatError(`invalid key in comma-separated list property: ${k}`);
      if (schema.type === 'boolean') v = /^(1|on|yes|true)$/i.test(v) ? '1' : /^(0|off|no|false)$/i.test(v) ? '0' : v;
      res[k] = v;
    } else if (!part.includes('=')) {
      if (defaultKey) throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}`);
      defaultKey = Object.keys(format).find((key) => format[key]?.default_key);
      if (!defaultKey) throw new FormatError('value without key, but schema does not define a default key');
      if (res[defaultKey]) throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}`);
      res[defaultKey] = part;
    } else {
      throw new FormatError('missing key in comma-separated list property');
    }
  }
  const errors: Record<string, string> = {};
  checkObject(path, format, res, false, errors);
  if (Object.keys(errors).length > 0) {
    throw new FormatError(`format error\n${Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join('\n')}`);
  }
  return res;
}

function checkType(path: string, type: string | undefined, value: ParamValue, errors: Record<string, string>): boolean {
  if (!type || type === 'any') return true;
  if (type === 'array') {
    if (!Array.isArray(value)) { addError(errors, path, `type check ('array') failed`); return false; }
    return true;
  }
  if (type === 'object') {
    if (typeof value !== 'object' || Array.isArray(value)) { addError(errors, path, `type check ('object') failed`); return false; }
    return true;
  }
  if (typeof value !== 'string') {
    addError(errors, path, `type check ('${type}') failed - got ${Array.isArray(value) ? 'ARRAY' : 'HASH'}`);
    return false;
  }
  const ok =
    type === 'boolean' ? value === '0' || value === '1'
    : type === 'integer' ? isInteger(value)
    : type === 'number' ? isNumber(value)
    : true;
  if (!ok) addError(errors, path, `type check ('${type}') failed - got '${value}'`);
  return ok;
}

function checkProp(value: ParamValue | undefined, schema: SchemaProp, path: string, errors: Record<string, string>): void {
  if (value === undefined) {
    if (!schema.optional && !schema.alias) addError(errors, path, 'property is missing and it is not optional');
    return;
  }
  if (!checkType(path, schema.type, value, errors)) return;
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((el, i) => checkProp(el, schema.items!, `${path}[${i}]`, errors));
    return;
  }
  if (typeof value !== 'string') return;

  if (schema.format) {
    try {
      if (typeof schema.format === 'string') checkNamedFormat(schema.format, value);
      else parsePropertyString(schema.format, value, path);
    } catch (e) {
      addError(errors, path, `invalid format - ${(e as Error).message}\n`);
      return;
    }
  }
  if (schema.pattern) {
    const re = toJsRegex(schema.pattern);
    if (re && !re.test(value)) { addError(errors, path, 'value does not match the regex pattern'); return; }
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    addError(errors, path, `value may only be ${schema.maxLength} characters long`);
    return;
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    addError(errors, path, `value must be at least ${schema.minLength} characters long`);
    return;
  }
  if (isNumber(value)) {
    if (schema.maximum !== undefined && Number(value) > Number(schema.maximum)) {
      addError(errors, path, `value must have a maximum value of ${schema.maximum}`);
      return;
    }
    if (schema.minimum !== undefined && Number(value) < Number(schema.minimum)) {
      addError(errors, path, `value must have a minimum value of ${schema.minimum}`);
      return;
    }
  }
  if (schema.enum && !schema.enum.includes(value)) {
    addError(errors, path, `value '${value}' does not have a value in the enumeration '${schema.enum.join(', ')}'`);
  }
}

function checkObject(
  path: string,
  props: Record<string, SchemaProp>,
  value: Record<string, ParamValue>,
  additionalProperties: boolean,
  errors: Record<string, string>,
): void {
  const join = (k: string): string => (path ? `${path}.${k}` : k);
  for (const [k, schema] of Object.entries(props)) {
    if (k.endsWith('[n]')) continue; // indexed families are checked per concrete key below
    checkProp(value[k], schema, join(k), errors);
  }
  for (const k of Object.keys(value)) {
    const schema = lookupProp(props, k);
    if (schema) {
      if (props[k] === undefined) checkProp(value[k], schema, join(k), errors); // matched via `name[n]`
      if (schema.requires && value[schema.requires] === undefined) {
        addError(errors, join(schema.requires), `missing property - '${join(k)}' requires this property`);
      }
      continue;
    }
    if (!additionalProperties) {
      addError(errors, join(k), 'property is not defined in schema and the schema does not allow additional properties');
    }
  }
}

/** Returns the `errors` map of a failed verification, or undefined when the parameters are valid. */
export function validateParams(
  schema: { properties: Record<string, SchemaProp>; additionalProperties: boolean },
  params: Params,
): Record<string, string> | undefined {
  const errors: Record<string, string> = {};
  checkObject('', schema.properties, params, schema.additionalProperties, errors);
  return Object.keys(errors).length > 0 ? errors : undefined;
}
