/**
 * Errors the simulated API raises, shaped like PVE::Exception.
 *
 * The real server turns `die "text\n"` into a 500 whose reason phrase is the first line of the text,
 * and `raise_param_exc` into a 400 "Parameter verification failed." carrying an `errors` map. Handlers
 * here throw ApiError and the HTTP layer renders it exactly once (see http-response.ts).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
    /** 401/595/596/599 answer with an empty body on the real server. */
    readonly emptyBody = false,
    /** Answered by a reverse proxy in front of pveproxy (text body, the proxy's own Server header), not by pveproxy. */
    readonly viaProxy = false,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** A handler `die`: 500 with the message as reason phrase. */
export function die(message: string): never {
  throw new ApiError(500, message);
}

/** `raise_param_exc`: 400 with per-parameter messages. */
export function paramError(errors: Record<string, string>): never {
  throw new ApiError(400, 'Parameter verification failed.', errors);
}

/** `raise_perm_exc`: 403. */
export function permissionError(what: string): never {
  throw new ApiError(403, `Permission check failed (${what})`);
}

/**
 * An error raised inside a forked worker: it does not reach the HTTP caller, it ends the task and
 * becomes its exitstatus (`TASK ERROR: <message>`).
 */
export class TaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskError';
  }
}
