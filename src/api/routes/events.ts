import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { DEFAULT_EVENT_STREAMS_PER_TOKEN } from '../../config/security.js';
import type { PlanView } from '../../domain/plan-view.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { watchPlan } from '../plans/plan-watch.js';
import { ApiError, problemResponses } from '../http/problems.js';
import { createStreamLimiter } from '../access/rate-limit.js';
import { planIdParams } from '../openapi/schemas.js';
import { readVisiblePlan } from '../plans/visibility.js';

export const HEARTBEAT_MS = 15_000;
/** Retry-After of a stream refused over the per-token cap: streams end when plans do or clients leave. */
export const STREAM_RETRY_AFTER_SECONDS = 5;

const eventsRoute = createRoute({
  method: 'get',
  path: '/v1/actions/{planId}/events',
  tags: ['actions'],
  summary: "Follow a plan: server-sent events on every change until it ends",
  description: [
    'A `text/event-stream` (server-sent events). The first event is the plan as it is now; then one event per change (status, approvals, result) until a terminal status (`succeeded`, `failed`, `rejected`, `expired`, `denied`), after which the server closes the stream.',
    '',
    'Each event is `event: status`, `id: <n>`, and `data:` the plan as JSON, the same object as `GET /v1/actions/{planId}`. Comment lines (`: keep-alive`) arrive every 15 s so proxies keep the connection open. A client that reconnects simply gets the current state first.',
    '',
    `A token may hold at most \`server.maxEventStreamsPerToken\` streams at once (default ${DEFAULT_EVENT_STREAMS_PER_TOKEN}); one more is refused with 429 and \`Retry-After\` until one of its streams ends (the plan finishes or the client disconnects).`,
  ].join('\n'),
  security: [{ bearer: [] }],
  request: { params: planIdParams },
  responses: {
    200: {
      description: 'The event stream',
      // For a stream, the schema describes one event (as OpenAPI 3.2's itemSchema does, and as
      // schemathesis validates each event): the fields of the SSE block.
      content: {
        'text/event-stream': {
          schema: z
            .object({
              event: z.literal('status'),
              id: z.string().describe('The event number in this stream'),
              data: z.string().describe('The plan as JSON: the same object as GET /v1/actions/{planId}'),
              retry: z.number().int().optional().describe('Reconnection delay in ms (first block only)'),
            })
            .describe('One server-sent event; the stream is a sequence of them, with `: keep-alive` comment lines between'),
        },
      },
    },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'plan-not-found', 'rate-limited', 'temporal-unavailable'),
  },
});

/** The plan with the links GET /v1/actions/{planId} adds. */
export function planWithLinks(view: PlanView, deps: Pick<ApiDeps, 'temporalUi'>) {
  const ui = deps.temporalUi;
  return {
    ...view,
    links: {
      self: `/v1/actions/${view.planId}`,
      ...(ui ? { temporalUi: `${ui.baseUrl}/namespaces/${encodeURIComponent(ui.namespace)}/workflows/${view.planId}` } : {}),
    },
  };
}

export function registerEventRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  const max = deps.maxEventStreamsPerToken ?? DEFAULT_EVENT_STREAMS_PER_TOKEN;
  const gauge = deps.operations?.metrics.eventStreams;
  const streams = createStreamLimiter({ maxPerToken: max, ...(gauge ? { onChange: (token: string, open: number) => gauge.set({ token }, open) } : {}) });

  app.openapi(eventsRoute, async (c) => {
    const caller = c.get('caller');
    const { planId } = c.req.valid('param');
    const slot = streams.acquire(caller.tokenId);
    if (!slot.ok) {
      const retry = String(STREAM_RETRY_AFTER_SECONDS);
      throw new ApiError(
        'rate-limited',
        `token '${caller.tokenId}' has ${slot.open} event streams open (the limit); close one, or retry in ${retry} s`,
        {},
        { 'retry-after': retry },
      );
    }
    const read = () => readVisiblePlan(deps.plans, planId, caller);
    // Errors before the stream starts (unknown plan, other environment) are ordinary problems.
    let first: PlanView;
    try {
      first = await read();
    } catch (err) {
      slot.release();
      throw err;
    }
    // The slot is released once, whichever comes first: the stream ends (terminal status, error), the
    // client cancels the body, or its connection drops.
    const stop = new AbortController();
    const gone = () => {
      slot.release();
      stop.abort();
    };
    c.req.raw.signal.addEventListener('abort', gone, { once: true });
    return streamSSE(c, async (stream) => {
      stream.onAbort(gone);
      const heartbeat = setInterval(() => void stream.write(': keep-alive\n\n').catch(gone), HEARTBEAT_MS);
      let id = 0;
      let firstRead = true;
      try {
        await stream.write('retry: 2000\n\n');
        const reads = () => (firstRead ? ((firstRead = false), Promise.resolve(first)) : read());
        for await (const view of watchPlan(reads, { signal: stop.signal })) {
          await stream.writeSSE({ event: 'status', id: String(++id), data: JSON.stringify(planWithLinks(view, deps)) });
        }
      } finally {
        clearInterval(heartbeat);
        slot.release();
        c.req.raw.signal.removeEventListener('abort', gone);
      }
    }, async (err, stream) => {
      // After the headers went out a problem cannot be sent; say why in a last event instead.
      await stream.writeSSE({ event: 'error', data: JSON.stringify({ message: err.message }) }).catch(() => {});
    }) as never;
  });
}
