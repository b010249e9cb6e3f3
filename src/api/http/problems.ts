import { z } from '@hono/zod-openapi';
import { PROBLEM_ADVICE } from '../openapi/problem-docs.js';

/**
 * Every error the API returns is an RFC 9457 problem with a stable `type`. The catalogue below is
 * the single list of them: status, title, and what a client should do.
 */
export const PROBLEMS = {
  'validation-failed': { status: 400, title: 'The request is not valid' },
  'unauthenticated': { status: 401, title: 'A valid bearer token is required' },
  'forbidden': { status: 403, title: 'This token may not do that' },
  'channel-not-allowed': { status: 403, title: 'This token may not approve through that channel' },
  'self-approval': { status: 403, title: 'The requester of a plan cannot approve it' },
  'not-found': { status: 404, title: 'No such resource' },
  'method-not-allowed': { status: 405, title: 'This method is not allowed on this resource' },
  'plan-not-found': { status: 404, title: 'No such plan' },
  'request-hash-mismatch': { status: 409, title: 'requestHash does not match the plan' },
  'plan-denied': { status: 409, title: 'The plan was denied by policy' },
  'plan-rejected': { status: 409, title: 'The plan was rejected by an approver' },
  'plan-finished': { status: 409, title: 'The plan is already finished' },
  'plan-stale': { status: 409, title: 'The target changed since the plan was made' },
  'plan-not-ready': { status: 409, title: 'The plan is still being evaluated' },
  'plan-not-undoable': { status: 409, title: 'The plan cannot be undone' },
  'plan-already-undone': { status: 409, title: 'The plan already has an undo' },
  'approval-not-counted': { status: 409, title: 'The approval would not count' },
  'request-replayed': { status: 409, title: 'This signed request was already received' },
  'plan-expired': { status: 410, title: 'The plan has expired' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'Send application/json' },
  'idempotency-key-reused': { status: 422, title: 'This Idempotency-Key was used for a different request' },
  'unknown-environment': { status: 422, title: 'No such environment' },
  'rate-limited': { status: 429, title: 'Too many requests for this token; retry after Retry-After seconds' },
  'temporal-unavailable': { status: 503, title: 'The workflow service is unavailable' },
  'temporal-misconfigured': { status: 503, title: 'The Temporal namespace is not set up for this service' },
  'proxmox-unavailable': { status: 502, title: 'Proxmox did not answer the read' },
  'replay-cache-full': { status: 503, title: 'Too many signed requests in the replay window; retry shortly' },
  'replay-store-unavailable': { status: 503, title: 'The replay cache cannot be reached; retry shortly' },
  'freezes-unavailable': { status: 503, title: 'This API process cannot reach the freezes (the dispatch journal)' },
  'internal': { status: 500, title: 'Internal error' },
} as const;

export type ProblemCode = keyof typeof PROBLEMS;

export const problemType = (code: ProblemCode) => `/problems/${code}`;

export const problemSchema = z
  .object({
    type: z.string().openapi({ example: '/problems/request-hash-mismatch' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    code: z.string().describe('The last segment of type, for switch statements'),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    planId: z.string().optional(),
  })
  .openapi('Problem');

export type Problem = z.infer<typeof problemSchema>;

/** The one error type handlers throw; `onError` turns it into application/problem+json. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ProblemCode,
    detail?: string,
    readonly extra: Partial<Pick<Problem, 'errors' | 'planId'>> = {},
    /** Response headers that go with the problem (e.g. Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail ?? PROBLEMS[code].title);
  }

  get status(): number {
    return PROBLEMS[this.code].status;
  }

  toProblem(instance?: string): Problem {
    return {
      type: problemType(this.code),
      title: PROBLEMS[this.code].title,
      status: this.status,
      detail: this.message,
      code: this.code,
      ...(instance ? { instance } : {}),
      ...this.extra,
    };
  }
}

/** OpenAPI responses for the problems a route may return. */
export function problemResponses(...codes: ProblemCode[]) {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of codes) byStatus.set(PROBLEMS[code].status, [...(byStatus.get(PROBLEMS[code].status) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      {
        description: list.map((c) => `${problemType(c)}: ${PROBLEMS[c].title}`).join('; '),
        content: {
          'application/problem+json': {
            schema: problemSchema,
            examples: Object.fromEntries(list.map((c) => [c, { summary: PROBLEMS[c].title, value: problemExample(c) }])),
          },
        },
      },
    ]),
  );
}

/** A problem as the API would send it, for documentation (`/problems/{code}`, OpenAPI examples). */
export function problemExample(code: ProblemCode, instance = '/v1/actions/plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G'): Problem {
  return { type: problemType(code), title: PROBLEMS[code].title, status: PROBLEMS[code].status, detail: PROBLEM_ADVICE[code].example, code, instance };
}
