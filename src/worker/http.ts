import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../config/load.js';

export interface Probe {
  ok: boolean;
  detail: string;
  /** What the verdict rests on (Temporal, search attributes, the workers), as the API's `/healthz` shows it. */
  checks?: Record<string, { ok: boolean; detail: string }>;
}

export interface WorkerHttpOptions {
  host: string;
  port: number;
  /** Prometheus exposition for `/metrics`. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** `/healthz`: Temporal answers for the namespace, which knows the search attributes, and every worker runs. */
  health: () => Probe;
  /** `/readyz`: the same, and the process is not shutting down. */
  ready: () => Probe;
}

export interface WorkerHttp {
  url: string;
  close(): Promise<void>;
}

/**
 * The worker process's own small HTTP server (the API has its own routes): `/healthz` 200 while
 * Temporal answers and the workers run, `/readyz` the same unless shutting down, `/livez` 200 while
 * the process runs (a liveness probe that must not restart workers during a Temporal outage), and
 * `/metrics` the Prometheus exposition. Plain node:http: four GET routes do not need a framework.
 */
export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<WorkerHttp> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (path === '/livez') return send(200, 'application/json', JSON.stringify({ status: 'ok' }));
    if (path === '/healthz' || path === '/readyz') {
      const probe = path === '/healthz' ? opts.health() : opts.ready();
      const status = path === '/healthz' ? (probe.ok ? 'ok' : 'unavailable') : probe.ok ? 'ready' : 'not_ready';
      return send(probe.ok ? 200 : 503, 'application/json', JSON.stringify({ status, detail: probe.detail, ...(probe.checks ? { checks: probe.checks } : {}) }));
    }
    if (path === '/metrics') {
      opts.metrics().then(
        (m) => send(200, m.contentType, m.body),
        (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`),
      );
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new ConfigError(`worker.port: ${opts.host}:${opts.port} is in use (another worker on this host?); set WORKER_PORT to a free port, or 0 for any`)
          : err,
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
