import type { ServerType } from '@hono/node-server';
import type { Server } from 'node:http';

/**
 * Stops accepting connections and lets in-flight requests finish: idle keep-alive connections close
 * at once, busy ones once their response is sent. Whatever is still open after `timeoutMs` (a long
 * poll, an event stream) is cut.
 */
export async function closeGracefully(server: ServerType, timeoutMs: number): Promise<void> {
  const http = server as Server;
  const closed = new Promise<void>((resolve) => http.close(() => resolve()));
  http.closeIdleConnections?.();
  // A keep-alive connection whose request finishes during the drain turns idle and would stay open
  // until its keep-alive timeout: close those as they appear.
  const sweeper = setInterval(() => http.closeIdleConnections?.(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  clearInterval(sweeper);
  if (outcome === 'timeout') {
    http.closeAllConnections?.();
    await closed;
  }
}
