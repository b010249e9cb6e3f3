/** Matches `/api2/json`-relative paths against SERVED_ROUTES templates and binds path parameters. */
import type { Handler } from './context.js';
import { accessRoutes } from './routes/access.js';
import { clusterRoutes } from './routes/cluster.js';
import { configRoutes } from './routes/config.js';
import { haRoutes } from './routes/ha.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { powerRoutes } from './routes/power.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { taskRoutes } from './routes/tasks.js';
import { vzdumpRoutes } from './routes/vzdump.js';
import { type RouteKey, ROUTE_RELEASE, SERVED_ROUTES, splitRouteKey } from './served-routes.js';

const ALL_HANDLERS: Partial<Record<RouteKey, Handler>> = {
  ...accessRoutes,
  ...clusterRoutes,
  ...powerRoutes,
  ...configRoutes,
  ...snapshotRoutes,
  ...lifecycleRoutes,
  ...vzdumpRoutes,
  ...taskRoutes,
  ...haRoutes,
};

interface CompiledRoute {
  key: RouteKey;
  method: string;
  re: RegExp;
  names: string[];
  handler: Handler;
}

const COMPILED: CompiledRoute[] = SERVED_ROUTES.map((key) => {
  const handler = ALL_HANDLERS[key];
  // A served route without a handler is a programming error: fail at import, not at request time.
  if (!handler) throw new Error(`simulator route ${key} has no handler`);
  const { method, path } = splitRouteKey(key);
  const names: string[] = [];
  const re = new RegExp(
    `^${path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    })}$`,
  );
  return { key, method, re, names, handler };
});

export interface RouteMatch {
  key: RouteKey;
  handler: Handler;
  pathParams: Record<string, string>;
}

/**
 * `relPath` is still percent-encoded; each segment is decoded after matching (the server URI-unescapes).
 * A route of another release than `pve` does not match (ROUTE_RELEASE).
 */
export function matchRoute(method: string, relPath: string, pve: 8 | 9 = 9): RouteMatch | undefined {
  const path = relPath.length > 1 ? relPath.replace(/\/+$/, '') : relPath;
  for (const r of COMPILED) {
    if (r.method !== method) continue;
    const release = ROUTE_RELEASE[r.key];
    if (release !== undefined && release !== pve) continue;
    const m = r.re.exec(path);
    if (!m) continue;
    const pathParams: Record<string, string> = {};
    r.names.forEach((name, i) => {
      const raw = m[i + 1] ?? '';
      try {
        pathParams[name] = decodeURIComponent(raw);
      } catch {
        pathParams[name] = raw;
      }
    });
    return { key: r.key, handler: r.handler, pathParams };
  }
  return undefined;
}

export const SERVED_ROUTE_KEYS: readonly RouteKey[] = COMPILED.map((r) => r.key);
