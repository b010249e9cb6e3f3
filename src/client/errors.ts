/** Errors of the API client: a problem the API answered, or no usable answer at all. */

/** The API refused: an RFC 9457 problem (`application/problem+json`) with a stable `type`. */
export class ApiProblemError extends Error {
  override readonly name = 'ApiProblemError';
  readonly status: number;
  /** e.g. `/problems/self-approval` */
  readonly type: string;
  /** The last segment of type, e.g. `self-approval`. */
  readonly code: string;
  readonly title: string;
  readonly detail?: string;
  readonly planId?: string;
  readonly errors?: { path: string; message: string }[];

  constructor(status: number, problem: { type?: string; title?: string; detail?: string; code?: string; planId?: string; errors?: { path: string; message: string }[] }) {
    const type = problem.type ?? `/problems/http-${status}`;
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.status = status;
    this.type = type;
    this.code = problem.code ?? type.split('/').pop() ?? String(status);
    this.title = problem.title ?? `HTTP ${status}`;
    if (problem.detail !== undefined) this.detail = problem.detail;
    if (problem.planId !== undefined) this.planId = problem.planId;
    if (problem.errors !== undefined) this.errors = problem.errors;
  }
}

/** The API could not be reached, timed out, or answered something that is not the API. */
export class ApiUnreachableError extends Error {
  override readonly name = 'ApiUnreachableError';
}
