/**
 * Deprecating an operation (docs/api-versioning-policy.md): `app.openapi(deprecate(app, route, {...}), handler)`
 * marks the operation `deprecated: true` in the OpenAPI document, says when it goes in its
 * description, and answers every call with
 *   Deprecation: @<unix seconds>          (RFC 9745)
 *   Sunset: <HTTP-date>                   (RFC 8594)
 *   Link: <policy>; rel="deprecation", <successor>; rel="successor-version"
 * The sunset must be at least DEPRECATION_WINDOW_DAYS after the deprecation, or this throws at boot.
 */
import type { OpenAPIHono, RouteConfig } from '@hono/zod-openapi';
import type { AppEnv } from '../http/context.js';

export const DEPRECATION_WINDOW_DAYS = 180;
export const DEPRECATION_POLICY_URL = '/docs/api-versioning-policy';

export interface DeprecationInfo {
  /** When the deprecation was announced (the first release that sends the headers). */
  since: Date | string;
  /** When the operation may be removed: at least DEPRECATION_WINDOW_DAYS after `since`. */
  sunset: Date | string;
  /** The operation that replaces it, e.g. `/v1/actions/{planId}/events`. */
  successor?: string;
}

export function deprecationHeaders(info: DeprecationInfo): Record<string, string> {
  const since = new Date(info.since);
  const sunset = new Date(info.sunset);
  if (Number.isNaN(since.getTime()) || Number.isNaN(sunset.getTime())) throw new TypeError('deprecation dates must be valid');
  const days = (sunset.getTime() - since.getTime()) / 86_400_000;
  if (days < DEPRECATION_WINDOW_DAYS)
    throw new RangeError(`sunset ${sunset.toISOString()} is only ${Math.floor(days)} days after ${since.toISOString()}; the policy needs at least ${DEPRECATION_WINDOW_DAYS}`);
  const links = [`<${DEPRECATION_POLICY_URL}>; rel="deprecation"; type="text/markdown"`];
  if (info.successor) links.push(`<${info.successor}>; rel="successor-version"`);
  return {
    deprecation: `@${Math.floor(since.getTime() / 1000)}`,
    sunset: sunset.toUTCString(),
    link: links.join(', '),
  };
}

/** Returns `route` marked deprecated, and registers the middleware that sends the headers on it. */
export function deprecate<R extends RouteConfig>(app: OpenAPIHono<AppEnv>, route: R, info: DeprecationInfo): R {
  const headers = deprecationHeaders(info);
  const method = route.method.toUpperCase();
  const honoPath = route.path.replace(/\{([^}]+)\}/g, ':$1');
  // Registered before the route's handler, so it wraps it; headers go on errors too.
  app.use(honoPath, async (c, next) => {
    await next();
    if (c.req.method !== method) return;
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  });
  const note = `**Deprecated** since ${new Date(info.since).toISOString().slice(0, 10)}; it may be removed after ${new Date(info.sunset).toISOString().slice(0, 10)}${info.successor ? `. Use \`${info.successor}\` instead` : ''}.`;
  return { ...route, deprecated: true, description: route.description ? `${note}\n\n${route.description}` : note };
}
