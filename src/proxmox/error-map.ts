// The one place where a failed exchange with Proxmox becomes a typed error.
//
// Inputs are an HTTP answer (status, reason phrase, raw body text) or a transport failure. Proxmox
// puts the first line of its message in the reason phrase; since libpve-http-server-perl 5.2 the
// JSON body repeats it as `message` (with the trailing newline), plus `errors` for parameter
// failures. Older servers send `{"data":null}`, and 401/595 bodies are empty, so the reason phrase
// is always the fallback and a body that is empty or not JSON is fine.

import { STATUS_CODES } from 'node:http';
import {
  ProxmoxAlreadyExistsError,
  ProxmoxAuthError,
  ProxmoxError,
  type ProxmoxErrorInit,
  ProxmoxLockedError,
  ProxmoxNotFoundError,
  ProxmoxNotImplementedError,
  ProxmoxParameterError,
  ProxmoxPermanentError,
  ProxmoxPermissionError,
  ProxmoxProtectedError,
  ProxmoxProtocolError,
  ProxmoxStaleConfigError,
  ProxmoxTaskFailedError,
  ProxmoxTimeoutError,
  ProxmoxTlsError,
  ProxmoxTransientError,
} from './errors.js';

export interface HttpFailure {
  method: string;
  path: string;
  status: number;
  reason: string;
  /** Decoded response body text (may be empty, JSON or anything else). */
  body?: string | undefined;
  retryAfter?: string | undefined;
  /** The `Server` header: `pve-api-daemon/3.0` when pveproxy itself answered (AnyEvent.pm `response`). */
  server?: string | undefined;
}

/** pveproxy's own answer, not a proxy's in front of it. */
const fromPveProxy = (f: HttpFailure) => /^pve-api-daemon\b/i.test(f.server ?? '');

// AnyEvent::HTTP's pseudo-statuses, which pveproxy returns when proxying to another cluster node
// fails (same wording as proxmoxer's ANYEVENT_HTTP_STATUS_CODES).
const ANYEVENT_STATUS: Readonly<Record<number, string>> = {
  595: 'Errors during connection establishment, proxy handshake',
  596: 'Errors during TLS negotiation, request sending and header processing',
  597: 'Errors during body receiving or processing',
  598: 'User aborted request via on_header or on_body',
  599: 'Other, usually nonretryable, errors (garbled URL etc.)',
};

interface ErrorBody {
  message?: string;
  errors?: Record<string, string>;
}

function parseErrorBody(text: string | undefined): ErrorBody {
  if (!text) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {}; // an HTML page from a proxy, or nothing useful: the reason phrase has to do
  }
  if (typeof json !== 'object' || json === null) return {};
  const out: ErrorBody = {};
  const { message, errors } = json as { message?: unknown; errors?: unknown };
  if (typeof message === 'string' && message.trim() !== '') out.message = message.trim();
  if (typeof errors === 'object' && errors !== null && !Array.isArray(errors)) {
    const entries = Object.entries(errors as Record<string, unknown>).map(
      ([k, v]) => [k, (typeof v === 'string' ? v : JSON.stringify(v)).trim()] as const,
    );
    if (entries.length > 0) out.errors = Object.fromEntries(entries);
  }
  return out;
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function describeErrors(errors: Record<string, string> | undefined): string {
  if (!errors) return '';
  return ` (${Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join('; ')})`;
}

/** Maps a non-2xx answer from Proxmox to a typed error that quotes what Proxmox said. */
export function mapHttpError(f: HttpFailure): ProxmoxError {
  const body = parseErrorBody(f.body);
  const reason = f.reason.trim();
  const said = body.message ?? reason;
  const anyEvent = ANYEVENT_STATUS[f.status];
  const quoted = said || (anyEvent ?? `(no message; HTTP says ${STATUS_CODES[f.status] ?? 'unknown status'})`);
  const message =
    `Proxmox ${f.method} ${f.path} failed: HTTP ${f.status} ${quoted}` +
    describeErrors(body.errors) +
    (anyEvent && said ? ` [${f.status}: ${anyEvent}]` : '');
  const init: ProxmoxErrorInit = {
    status: f.status,
    reason,
    proxmoxMessage: said,
    errors: body.errors,
    method: f.method,
    path: f.path,
  };

  switch (f.status) {
    case 400:
      return new ProxmoxParameterError(message, init);
    case 401:
      return new ProxmoxAuthError(message, init);
    case 403:
      return new ProxmoxPermissionError(message, init);
    case 404:
      return new ProxmoxNotFoundError(message, init);
    case 408:
    case 429:
      return new ProxmoxTransientError(message, { ...init, retryAfterMs: parseRetryAfter(f.retryAfter) });
    case 500:
      return mapHandlerError(said, message, init);
    case 501:
      return new ProxmoxNotImplementedError(message, init);
  }
  if (anyEvent) {
    // 595 is a refused or unreachable connection to the other node: the request never got there.
    return new ProxmoxTransientError(message, { ...init, outcomeUnknown: f.status !== 595 });
  }
  if (f.status >= 500) {
    // 502/503/504 and friends come from load or from a proxy in front of pveproxy; a proxy that
    // timed out, or lost the upstream connection, may have forwarded the request, hence
    // outcomeUnknown. Only a 503 pveproxy answers itself (Server: pve-api-daemon) is a refusal
    // before anything ran: a proxy's 503 (Envoy's "upstream reset before headers") is not.
    return new ProxmoxTransientError(message, {
      ...init,
      outcomeUnknown: !(f.status === 503 && fromPveProxy(f)),
      retryAfterMs: parseRetryAfter(f.retryAfter),
    });
  }
  return new ProxmoxPermanentError(message, init);
}

/** Proxmox's words for a `digest` that is no longer the config's (qemu-server; pve-common assert_if_modified). */
const STALE_CONFIG_TEXT = /checksum mismatch|detected modified configuration/i;

/**
 * The config changed under a digest-guarded write: refused at once (`ProxmoxStaleConfigError`), or
 * inside the task, where qemu-server 8.0.2+ checks resize's digest (a task ending `checksum mismatch
 * (file change by other user?)`). Either way nothing was changed: re-read the config and plan again.
 */
export function isStaleConfigError(err: unknown): boolean {
  if (err instanceof ProxmoxStaleConfigError) return true;
  return err instanceof ProxmoxTaskFailedError && STALE_CONFIG_TEXT.test(err.exitstatus);
}

// A 500 is whatever the API handler died with; the text is all there is to go on.
function mapHandlerError(said: string, message: string, init: ProxmoxErrorInit): ProxmoxError {
  const locked = /\bis locked \(([^)]+)\)/.exec(said);
  if (locked) return new ProxmoxLockedError(message, { ...init, lock: locked[1] ?? '' });
  if (STALE_CONFIG_TEXT.test(said)) return new ProxmoxStaleConfigError(message, init);
  // lock_config gave up after 10 s (`can't lock file '...' - got timeout`), or fork_worker could
  // not start the worker: nothing was done, another try may get through.
  if (/got timeout|got no worker upid/i.test(said)) {
    return new ProxmoxTransientError(message, { ...init, outcomeUnknown: !/can't lock file|got no worker upid/i.test(said) });
  }
  if (/protection mode enabled/i.test(said)) return new ProxmoxProtectedError(message, init);
  if (/already exists|already used/i.test(said)) return new ProxmoxAlreadyExistsError(message, init);
  if (/does not exist|no such resource/i.test(said)) return new ProxmoxNotFoundError(message, init);
  return new ProxmoxPermanentError(message, init);
}

// ---- transport failures -------------------------------------------------------------------

/** Raised by our TLS connector when the certificate does not match the pinned fingerprint. */
export const PIN_MISMATCH_CODE = 'ERR_PROXMOX_TLS_PIN_MISMATCH';

// Connection never established: safe to say nothing reached Proxmox.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const TLS_CODE_RE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|^ERR_TLS_|^ERR_SSL_|^ERR_PROXMOX_TLS_/;
const BUG_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INFO', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_URL']);
const CLOSED_CODES = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
// The answer arrived but is unusable: oversized, corrupt compression, unknown content-encoding.
const PROTOCOL_CODES = new Set(['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'ERR_BUFFER_TOO_LARGE', 'Z_DATA_ERROR', 'ERR_PROXMOX_CONTENT_ENCODING']);

function errorCode(err: unknown): string {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // Happy-eyeballs connects fail with an AggregateError whose members carry the code.
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) {
      e = inner[0];
      continue;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return '';
}

/** Keeps only name/code/message of a transport error: never the request, its headers or options. */
function sanitize(err: unknown): Error {
  const src = (err ?? {}) as { name?: unknown; message?: unknown };
  const copy = new Error(typeof src.message === 'string' ? src.message : String(err));
  copy.name = typeof src.name === 'string' ? src.name : 'Error';
  const code = errorCode(err);
  if (code) (copy as Error & { code?: string }).code = code;
  return copy;
}

/** Maps a failure below HTTP (DNS, TCP, TLS, timeouts, dropped sockets) to a typed error. */
export function mapTransportError(err: unknown, where: { method: string; path: string }): ProxmoxError {
  const code = errorCode(err);
  const detail = (err as { message?: unknown } | null)?.message;
  const text = `${code || 'error'}${typeof detail === 'string' && detail ? `: ${detail}` : ''}`;
  const prefix = `Proxmox ${where.method} ${where.path} failed`;
  const init: ProxmoxErrorInit = { ...where, reason: code, proxmoxMessage: '', cause: sanitize(err) };

  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProxmoxTimeoutError(`${prefix}: connect timeout (${text})`, { ...init, phase: 'connect' });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProxmoxTimeoutError(`${prefix}: no response headers in time (${text})`, { ...init, phase: 'headers', outcomeUnknown: true });
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxmoxTimeoutError(`${prefix}: response body stalled (${text})`, { ...init, phase: 'body', outcomeUnknown: true });
  }
  if (TLS_CODE_RE.test(code)) {
    return new ProxmoxTlsError(`${prefix}: TLS verification failed (${text})`, init);
  }
  if (BUG_CODES.has(code)) {
    return new ProxmoxPermanentError(`${prefix}: request rejected by the HTTP client (${text})`, init);
  }
  if (PROTOCOL_CODES.has(code)) {
    return new ProxmoxProtocolError(`${prefix}: unusable response (${text})`, { ...init, outcomeUnknown: where.method === 'POST' || where.method === 'PUT' || where.method === 'DELETE' });
  }
  if (CLOSED_CODES.has(code)) {
    return new ProxmoxPermanentError(`${prefix}: the Proxmox client was closed (${text})`, init);
  }
  return new ProxmoxTransientError(`${prefix}: connection problem (${text})`, {
    ...init,
    outcomeUnknown: !NOT_SENT_CODES.has(code),
  });
}
