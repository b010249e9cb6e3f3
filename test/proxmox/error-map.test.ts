import { describe, expect, it } from 'vitest';
import {
  isRetryableProxmoxError,
  mapHttpError,
  mapTransportError,
  PERMANENT_PROXMOX_ERROR_NAMES,
  ProxmoxAlreadyExistsError,
  ProxmoxAuthError,
  ProxmoxError,
  ProxmoxLockedError,
  ProxmoxNotFoundError,
  ProxmoxNotImplementedError,
  ProxmoxParameterError,
  ProxmoxPermanentError,
  ProxmoxPermissionError,
  ProxmoxProtectedError,
  ProxmoxProtocolError,
  ProxmoxStaleConfigError,
  ProxmoxTimeoutError,
  ProxmoxTlsError,
  ProxmoxTransientError,
} from '../../src/proxmox/index.js';
import * as errors from '../../src/proxmox/errors.js';

type Ctor = abstract new (...args: never[]) => ProxmoxError;
const where = { method: 'POST', path: '/nodes/pve/qemu/100/status/start' };

// Bodies as the three server generations send them.
const modern = (message: string, extra: Record<string, unknown> = {}): string => JSON.stringify({ data: null, message: `${message}\n`, ...extra });
const legacy = JSON.stringify({ data: null });
const html = '<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>';

interface Row {
  name: string;
  server?: string;
  status: number;
  reason: string;
  body?: string;
  cls: Ctor;
  retryable: boolean;
  quotes: string;
  outcomeUnknown?: boolean;
}

const table: Row[] = [
  // 400 parameter errors
  {
    name: '400 with errors (5.2+)', status: 400, reason: 'Parameter verification failed.',
    body: modern('Parameter verification failed.', { errors: { vmid: "type check ('integer') failed - got 'abc'\n" } }),
    cls: ProxmoxParameterError, retryable: false, quotes: "vmid: type check ('integer') failed - got 'abc'",
  },
  {
    name: '400 with errors, legacy body without message', status: 400, reason: 'Parameter verification failed.',
    body: JSON.stringify({ data: null, errors: { snapname: 'property is missing and it is not optional' } }),
    cls: ProxmoxParameterError, retryable: false, quotes: 'snapname: property is missing and it is not optional',
  },
  { name: '400 no such task', status: 400, reason: 'Parameter verification failed.', body: modern('Parameter verification failed.', { errors: { upid: 'no such task' } }), cls: ProxmoxParameterError, retryable: false, quotes: 'upid: no such task' },
  // auth and permissions
  { name: '401 empty body', status: 401, reason: 'Authentication failed!', body: '', cls: ProxmoxAuthError, retryable: false, quotes: 'Authentication failed!' },
  { name: '401 No ticket', status: 401, reason: 'No ticket', cls: ProxmoxAuthError, retryable: false, quotes: 'No ticket' },
  { name: '403 modern', status: 403, reason: 'Permission check failed (/vms/100, VM.PowerMgmt)', body: modern('Permission check failed (/vms/100, VM.PowerMgmt)'), cls: ProxmoxPermissionError, retryable: false, quotes: 'Permission check failed (/vms/100, VM.PowerMgmt)' },
  { name: '403 legacy', status: 403, reason: 'Permission check failed (/vms/100, VM.PowerMgmt)', body: legacy, cls: ProxmoxPermissionError, retryable: false, quotes: 'VM.PowerMgmt' },
  { name: '404', status: 404, reason: 'Not Found', cls: ProxmoxNotFoundError, retryable: false, quotes: 'Not Found' },
  { name: '501', status: 501, reason: "Method 'GET /nodes/pve/bogus' not implemented", body: modern("Method 'GET /nodes/pve/bogus' not implemented"), cls: ProxmoxNotImplementedError, retryable: false, quotes: 'not implemented' },
  // 500 handler errors, by message
  { name: '500 lock timeout, legacy body (WHMCS#83)', status: 500, reason: "can't lock file '/var/lock/qemu-server/lock-203.conf' - got timeout", body: legacy, cls: ProxmoxTransientError, retryable: true, quotes: 'got timeout', outcomeUnknown: false },
  { name: '500 lock timeout, modern', status: 500, reason: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", body: modern("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"), cls: ProxmoxTransientError, retryable: true, quotes: 'lock-100.conf' },
  { name: '500 got no worker upid', status: 500, reason: 'got no worker upid - start worker failed', cls: ProxmoxTransientError, retryable: true, quotes: 'got no worker upid' },
  { name: '500 is locked (backup)', status: 500, reason: 'VM is locked (backup)', body: modern('VM is locked (backup)'), cls: ProxmoxLockedError, retryable: false, quotes: 'VM is locked (backup)' },
  { name: '500 CT is locked, legacy', status: 500, reason: 'CT is locked (snapshot)', body: legacy, cls: ProxmoxLockedError, retryable: false, quotes: 'CT is locked (snapshot)' },
  { name: '500 qemu digest mismatch', status: 500, reason: 'checksum mismatch (file change by other user?)', cls: ProxmoxStaleConfigError, retryable: false, quotes: 'checksum mismatch' },
  { name: '500 lxc digest mismatch', status: 500, reason: 'detected modified configuration - file changed by other user? Try again.', body: modern('detected modified configuration - file changed by other user? Try again.'), cls: ProxmoxStaleConfigError, retryable: false, quotes: 'detected modified configuration' },
  { name: '500 protection', status: 500, reason: "can't remove VM 100 - protection mode enabled", cls: ProxmoxProtectedError, retryable: false, quotes: 'protection mode enabled' },
  { name: '500 already exists', status: 500, reason: 'unable to create VM 101: config file already exists', cls: ProxmoxAlreadyExistsError, retryable: false, quotes: 'config file already exists' },
  { name: '500 snapshot name used', status: 500, reason: "snapshot name 'pre' already used", cls: ProxmoxAlreadyExistsError, retryable: false, quotes: "snapshot name 'pre' already used" },
  { name: '500 config does not exist', status: 500, reason: "Configuration file 'nodes/pve/qemu-server/117.conf' does not exist", body: modern("Configuration file 'nodes/pve/qemu-server/117.conf' does not exist"), cls: ProxmoxNotFoundError, retryable: false, quotes: '117.conf' },
  { name: '500 snapshot does not exist', status: 500, reason: "snapshot 'x' does not exist", body: legacy, cls: ProxmoxNotFoundError, retryable: false, quotes: "snapshot 'x' does not exist" },
  { name: '500 other handler error', status: 500, reason: 'CT 100 already running', body: modern('CT 100 already running'), cls: ProxmoxPermanentError, retryable: false, quotes: 'CT 100 already running' },
  { name: '500 multi-line message keeps detail from the body', status: 500, reason: 'VM 100 not running', body: modern('VM 100 not running\nsecond line of detail'), cls: ProxmoxPermanentError, retryable: false, quotes: 'second line of detail' },
  { name: '500 empty everything', status: 500, reason: '', body: '', cls: ProxmoxPermanentError, retryable: false, quotes: 'Internal Server Error' },
  // load and proxies
  { name: '502 HTML body', status: 502, reason: 'Bad Gateway', body: html, cls: ProxmoxTransientError, retryable: true, quotes: 'Bad Gateway', outcomeUnknown: true },
  // A 503 pveproxy answers itself refused the request; a proxy's 503 in front of it may come after forwarding.
  { name: '503 from pveproxy', status: 503, reason: 'Service Unavailable', body: 'busy, try later', server: 'pve-api-daemon/3.0', cls: ProxmoxTransientError, retryable: true, quotes: 'Service Unavailable', outcomeUnknown: false },
  { name: '503 from a proxy in front', status: 503, reason: 'Service Unavailable', body: 'upstream connect error or disconnect/reset before headers', server: 'envoy', cls: ProxmoxTransientError, retryable: true, quotes: 'Service Unavailable', outcomeUnknown: true },
  { name: '503 without a Server header', status: 503, reason: 'Service Unavailable', cls: ProxmoxTransientError, retryable: true, quotes: 'Service Unavailable', outcomeUnknown: true },
  { name: '504 empty reason and body', status: 504, reason: '', body: '', cls: ProxmoxTransientError, retryable: true, quotes: 'Gateway Timeout' },
  // AnyEvent::HTTP pseudo-statuses from pveproxy proxying to another node
  { name: '595 no route', status: 595, reason: 'No route to host', body: '', cls: ProxmoxTransientError, retryable: true, quotes: 'No route to host', outcomeUnknown: false },
  { name: '595 empty reason', status: 595, reason: '', cls: ProxmoxTransientError, retryable: true, quotes: 'Errors during connection establishment, proxy handshake' },
  { name: '596 broken pipe', status: 596, reason: 'Broken pipe', cls: ProxmoxTransientError, retryable: true, quotes: 'Broken pipe', outcomeUnknown: true },
  { name: '599 too many redirections', status: 599, reason: 'Too many redirections', body: legacy, cls: ProxmoxTransientError, retryable: true, quotes: 'Too many redirections', outcomeUnknown: true },
  // others
  { name: '429 rate limited', status: 429, reason: 'Too Many Requests', cls: ProxmoxTransientError, retryable: true, quotes: 'Too Many Requests' },
  { name: '418 unknown 4xx', status: 418, reason: "I'm a teapot", cls: ProxmoxPermanentError, retryable: false, quotes: 'teapot' },
];

describe('mapHttpError', () => {
  it.each(table)('$name → $cls.name', (row) => {
    const err = mapHttpError({ ...where, status: row.status, reason: row.reason, body: row.body, server: row.server });
    expect(err.constructor).toBe(row.cls);
    expect(err.name).toBe(row.cls.name);
    expect(err.retryable).toBe(row.retryable);
    expect(isRetryableProxmoxError(err)).toBe(row.retryable);
    expect(err.status).toBe(row.status);
    expect(err.method).toBe('POST');
    expect(err.path).toBe(where.path);
    expect(err.message).toContain(row.quotes);
    expect(err.message).toContain(`HTTP ${row.status}`);
    if (row.outcomeUnknown !== undefined) expect(err.outcomeUnknown).toBe(row.outcomeUnknown);
  });

  it('prefers the body message, trims its newline, and keeps the reason phrase', () => {
    const err = mapHttpError({ ...where, status: 500, reason: 'VM 100 not running', body: modern('VM 100 not running\nmore') });
    expect(err.proxmoxMessage).toBe('VM 100 not running\nmore');
    expect(err.reason).toBe('VM 100 not running');
  });

  it('exposes the errors map and the lock', () => {
    const p = mapHttpError({ ...where, status: 400, reason: 'Parameter verification failed.', body: modern('Parameter verification failed.', { errors: { a: 'x\n', b: 'y' } }) });
    expect(p.errors).toEqual({ a: 'x', b: 'y' });
    expect(p.message).toContain('(a: x; b: y)');
    const l = mapHttpError({ ...where, status: 500, reason: 'VM is locked (snapshot-delete)' }) as ProxmoxLockedError;
    expect(l.lock).toBe('snapshot-delete');
  });

  it('reads Retry-After', () => {
    const err = mapHttpError({ ...where, status: 503, reason: 'Service Unavailable', retryAfter: '7' }) as ProxmoxTransientError;
    expect(err.retryAfterMs).toBe(7000);
  });

  it('survives odd JSON bodies', () => {
    for (const body of ['null', '42', '"text"', '[1,2]', '{"data":null,"message":42,"errors":"x"}', '{']) {
      const err = mapHttpError({ ...where, status: 500, reason: 'boom', body });
      expect(err.constructor).toBe(ProxmoxPermanentError);
      expect(err.message).toContain('boom');
    }
  });
});

describe('mapTransportError', () => {
  const code = (c: string, message = 'x'): Error => Object.assign(new Error(message), { code: c });
  const rows: [string, unknown, Ctor, boolean, boolean][] = [
    ['ECONNRESET', code('ECONNRESET', 'read ECONNRESET'), ProxmoxTransientError, true, true],
    ['undici socket closed', code('UND_ERR_SOCKET', 'other side closed'), ProxmoxTransientError, true, true],
    ['ECONNREFUSED', code('ECONNREFUSED'), ProxmoxTransientError, true, false],
    ['AggregateError of ECONNREFUSED', Object.assign(new AggregateError([code('ECONNREFUSED')], 'all failed')), ProxmoxTransientError, true, false],
    ['ENOTFOUND', code('ENOTFOUND'), ProxmoxTransientError, true, false],
    ['connect timeout', code('UND_ERR_CONNECT_TIMEOUT'), ProxmoxTimeoutError, true, false],
    ['headers timeout', code('UND_ERR_HEADERS_TIMEOUT'), ProxmoxTimeoutError, true, true],
    ['body timeout', code('UND_ERR_BODY_TIMEOUT'), ProxmoxTimeoutError, true, true],
    ['self-signed', code('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), ProxmoxTlsError, false, false],
    ['altname', code('ERR_TLS_CERT_ALTNAME_INVALID'), ProxmoxTlsError, false, false],
    ['pin mismatch', code('ERR_PROXMOX_TLS_PIN_MISMATCH'), ProxmoxTlsError, false, false],
    ['oversized body', code('UND_ERR_RES_EXCEEDED_MAX_SIZE'), ProxmoxProtocolError, false, true],
    ['client closed', code('UND_ERR_CLOSED'), ProxmoxPermanentError, false, false],
    ['unknown thing', new Error('weird'), ProxmoxTransientError, true, true],
  ];
  it.each(rows)('%s', (_n, err, cls, retryable, outcomeUnknown) => {
    const mapped = mapTransportError(err, where);
    expect(mapped.constructor).toBe(cls);
    expect(mapped.retryable).toBe(retryable);
    expect(mapped.outcomeUnknown).toBe(outcomeUnknown);
    expect(mapped.status).toBeUndefined();
    expect(mapped.message).toContain('POST /nodes/pve/qemu/100/status/start');
  });

  it('keeps only name, code and message of the cause', () => {
    const raw = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', headers: { authorization: 'PVEAPIToken=x=leak' } });
    const mapped = mapTransportError(raw, where);
    expect(mapped.cause).not.toBe(raw);
    expect(JSON.stringify(Object.entries(mapped.cause as object))).not.toContain('leak');
    expect((mapped.cause as { code?: string }).code).toBe('UND_ERR_SOCKET');
  });

  it('timeouts are also transient errors', () => {
    expect(mapTransportError(code('UND_ERR_HEADERS_TIMEOUT'), where)).toBeInstanceOf(ProxmoxTransientError);
  });
});

describe('error classes', () => {
  const classes = Object.values(errors as Record<string, unknown>).filter((v): v is Ctor & { name: string; prototype: ProxmoxError } => typeof v === 'function' && v.prototype instanceof ProxmoxError);

  it('each has a stable name equal to its class name, also in the stack', () => {
    expect(classes.length).toBeGreaterThan(15);
    for (const cls of classes) {
      expect(cls.prototype.name).toBe(cls.name);
    }
    const err = mapHttpError({ ...where, status: 500, reason: 'VM is locked (backup)' });
    expect(err.stack?.startsWith('ProxmoxLockedError: ')).toBe(true);
  });

  it('PERMANENT_PROXMOX_ERROR_NAMES lists exactly the permanent classes', () => {
    const permanent = classes.filter((c) => c === ProxmoxPermanentError || c.prototype instanceof ProxmoxPermanentError).map((c) => c.name);
    expect([...PERMANENT_PROXMOX_ERROR_NAMES].sort()).toEqual(permanent.sort());
    const transient = classes.filter((c) => c.prototype instanceof ProxmoxTransientError || c === ProxmoxTransientError).map((c) => c.name);
    expect(transient.some((n) => (PERMANENT_PROXMOX_ERROR_NAMES as readonly string[]).includes(n))).toBe(false);
  });

  it('JSON.stringify keeps name and message', () => {
    const err = mapHttpError({ ...where, status: 403, reason: 'Permission check failed (/vms/100, VM.PowerMgmt)' });
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({ name: 'ProxmoxPermissionError', retryable: false, status: 403 });
  });

  it('isRetryableProxmoxError is false for foreign errors', () => {
    expect(isRetryableProxmoxError(new Error('x'))).toBe(false);
    expect(isRetryableProxmoxError('x')).toBe(false);
  });
});
