// Typed errors for everything the Proxmox client can throw.
//
// The split that matters to callers is `retryable`: Temporal activities list the permanent classes
// by `name` in `nonRetryableErrorTypes`, so every class pins `name` to its own class name (a
// bundler renaming the class must not change the wire type). The mapping from an HTTP exchange or a
// transport failure to one of these classes lives in one place: `error-map.ts`.
//
// No error ever carries the token secret or the Authorization header: errors are built only from
// the method, the filled path, the status line, the response body and sanitised transport errors.

export interface ProxmoxErrorInit {
  /** HTTP status, absent for transport failures and client-side rejections. */
  status?: number | undefined;
  /** HTTP reason phrase (Proxmox puts the first line of its message there), or the transport error code. */
  reason?: string | undefined;
  /** What Proxmox said: the body `message` when present (5.2+), else the reason phrase. */
  proxmoxMessage?: string | undefined;
  /** Per-parameter errors from a 400 `Parameter verification failed.` body. */
  errors?: Readonly<Record<string, string>> | undefined;
  method?: string | undefined;
  /** The filled request path below /api2/json (no query string, so no parameter values). */
  path?: string | undefined;
  /**
   * True when the request may have reached Proxmox and been acted on even though we got no clean
   * answer (dropped connection after sending, headers timeout, 502/504 from a proxy, 596/597/599).
   * A caller must re-read state before it re-sends a non-idempotent action after such an error.
   */
  outcomeUnknown?: boolean | undefined;
  cause?: unknown;
}

// `name` lives on each prototype (not as an instance field) so that it is already right while
// Error's constructor captures the stack: `err.stack` starts with the class name, not `Error`.
function nameClass(cls: abstract new (...args: never[]) => Error, name: string): void {
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
}

/** Base of every error thrown by the Proxmox client. */
export abstract class ProxmoxError extends Error {
  static {
    nameClass(this, 'ProxmoxError');
  }
  abstract readonly retryable: boolean;
  readonly status: number | undefined;
  readonly reason: string;
  readonly proxmoxMessage: string;
  readonly errors: Readonly<Record<string, string>> | undefined;
  readonly method: string;
  readonly path: string;
  readonly outcomeUnknown: boolean;

  constructor(message: string, init: ProxmoxErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.reason = init.reason ?? '';
    this.proxmoxMessage = init.proxmoxMessage ?? init.reason ?? '';
    this.errors = init.errors;
    this.method = init.method ?? '';
    this.path = init.path ?? '';
    this.outcomeUnknown = init.outcomeUnknown ?? false;
  }

  // JSON.stringify(err) would otherwise drop `message` and `name` (they are not own enumerable
  // properties), which makes logged errors useless.
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      retryable: this.retryable,
      status: this.status,
      reason: this.reason,
      proxmoxMessage: this.proxmoxMessage,
      errors: this.errors,
      method: this.method,
      path: this.path,
      outcomeUnknown: this.outcomeUnknown,
    };
  }
}

/** Worth retrying: load (502/503/504), lock contention (`got timeout`), 595/596/599, dropped connections. */
export class ProxmoxTransientError extends ProxmoxError {
  static {
    nameClass(this, 'ProxmoxTransientError');
  }
  readonly retryable = true;
  /** From a `Retry-After` header, when a proxy in front of Proxmox sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: ProxmoxErrorInit & { retryAfterMs?: number | undefined } = {}) {
    super(message, init);
    this.retryAfterMs = init.retryAfterMs;
  }
}

export type ProxmoxTimeoutPhase = 'connect' | 'headers' | 'body';

/** The connect, headers or body timeout of one request elapsed. */
export class ProxmoxTimeoutError extends ProxmoxTransientError {
  static {
    nameClass(this, 'ProxmoxTimeoutError');
  }
  readonly phase: ProxmoxTimeoutPhase;

  constructor(message: string, init: ProxmoxErrorInit & { phase: ProxmoxTimeoutPhase }) {
    super(message, init);
    this.phase = init.phase;
  }
}

/**
 * `waitForTask` gave up after its own `timeoutMs`; the task may still be running. Retryable in the
 * sense that waiting again on the same UPID is safe; it says nothing about re-sending the action.
 */
export class ProxmoxTaskWaitTimeoutError extends ProxmoxTransientError {
  static {
    nameClass(this, 'ProxmoxTaskWaitTimeoutError');
  }
  readonly upid: string;
  readonly lastStatus: string | undefined;

  constructor(message: string, init: ProxmoxErrorInit & { upid: string; lastStatus?: string | undefined }) {
    super(message, { ...init, outcomeUnknown: true });
    this.upid = init.upid;
    this.lastStatus = init.lastStatus;
  }
}

/** Retrying the same request will not help; someone (or something) has to change first. */
export class ProxmoxPermanentError extends ProxmoxError {
  static {
    nameClass(this, 'ProxmoxPermanentError');
  }
  readonly retryable = false;
}

/** 401: no or bad credentials (Proxmox delays these ~3 s and sends an empty body). */
export class ProxmoxAuthError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxAuthError');
  }
}

/** 403: `Permission check failed (/vms/100, VM.PowerMgmt)` and friends. */
export class ProxmoxPermissionError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxPermissionError');
  }
}

/** 400: `Parameter verification failed.` with a per-parameter `errors` map. */
export class ProxmoxParameterError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxParameterError');
  }
}

/** The guest, snapshot or resource does not exist (404, or 500 `... does not exist`). */
export class ProxmoxNotFoundError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxNotFoundError');
  }
}

/** `... already exists` (clone/create target ID taken, snapshot name used). */
export class ProxmoxAlreadyExistsError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxAlreadyExistsError');
  }
}

/** `... protection mode enabled`: the guest's `protection` flag blocks the action. */
export class ProxmoxProtectedError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxProtectedError');
  }
}

/**
 * `VM is locked (backup)`: permanent for dispatch (re-sending at once fails the same way), but the
 * lock usually goes away, so `lock` is exposed for callers that want to wait for it.
 */
export class ProxmoxLockedError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxLockedError');
  }
  readonly lock: string;

  constructor(message: string, init: ProxmoxErrorInit & { lock: string }) {
    super(message, init);
    this.lock = init.lock;
  }
}

/** The config `digest` we sent no longer matches: someone changed the guest since we read it. */
export class ProxmoxStaleConfigError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxStaleConfigError');
  }
}

/** 501: `Method 'GET /x' not implemented` (wrong path or method for this Proxmox version). */
export class ProxmoxNotImplementedError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxNotImplementedError');
  }
}

/**
 * Certificate verification failed: untrusted chain, wrong host name, or a fingerprint pin that does
 * not match (or no certificate to check). The connection is closed before any request is written.
 */
export class ProxmoxTlsError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxTlsError');
  }
}

/** A 2xx answer that is not the `{"data": ...}` JSON envelope (a proxy page, a truncated body...). */
export class ProxmoxProtocolError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxProtocolError');
  }
}

/** Rejected on our side before anything was sent: a parameter value we cannot encode safely. */
export class ProxmoxInvalidParamError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxInvalidParamError');
  }
  readonly param: string;

  constructor(message: string, init: ProxmoxErrorInit & { param: string }) {
    super(message, init);
    this.param = init.param;
  }
}

/** A path parameter (node, vmid, snapname, storage, upid) does not match its Proxmox format. */
export class ProxmoxInvalidPathParamError extends ProxmoxInvalidParamError {
  static {
    nameClass(this, 'ProxmoxInvalidPathParamError');
  }
}

/** The client options are unusable (bad URL, malformed token ID, unreadable CA file, bad pin). */
export class ProxmoxConfigError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxConfigError');
  }
}

/** A task ended with an exitstatus other than `OK` / `WARNINGS: n`. */
export class ProxmoxTaskFailedError extends ProxmoxPermanentError {
  static {
    nameClass(this, 'ProxmoxTaskFailedError');
  }
  readonly upid: string;
  readonly node: string;
  readonly taskType: string;
  /** Proxmox's one-line verdict, e.g. `VM 100 already running`. */
  readonly exitstatus: string;
  /** The last lines of the task log, oldest first (empty if the log could not be read). */
  readonly logTail: readonly string[];

  constructor(
    message: string,
    init: ProxmoxErrorInit & { upid: string; node: string; taskType: string; exitstatus: string; logTail: readonly string[] },
  ) {
    super(message, { ...init, proxmoxMessage: init.exitstatus });
    this.upid = init.upid;
    this.node = init.node;
    this.taskType = init.taskType;
    this.exitstatus = init.exitstatus;
    this.logTail = init.logTail;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), upid: this.upid, exitstatus: this.exitstatus, logTail: this.logTail };
  }
}

/** Every permanent class name, for Temporal's `nonRetryableErrorTypes`. */
export const PERMANENT_PROXMOX_ERROR_NAMES = [
  'ProxmoxPermanentError',
  'ProxmoxAuthError',
  'ProxmoxPermissionError',
  'ProxmoxParameterError',
  'ProxmoxNotFoundError',
  'ProxmoxAlreadyExistsError',
  'ProxmoxProtectedError',
  'ProxmoxLockedError',
  'ProxmoxStaleConfigError',
  'ProxmoxNotImplementedError',
  'ProxmoxTlsError',
  'ProxmoxProtocolError',
  'ProxmoxInvalidParamError',
  'ProxmoxInvalidPathParamError',
  'ProxmoxConfigError',
  'ProxmoxTaskFailedError',
] as const;

/** True only for Proxmox client errors that say a retry may succeed. Unknown errors are not retryable. */
export function isRetryableProxmoxError(err: unknown): boolean {
  return err instanceof ProxmoxError && err.retryable;
}
