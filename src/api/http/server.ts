import { serve, type ServerType } from '@hono/node-server';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../../config/load.js';
import type { ServerConfig } from '../../config/security.js';
import type { Logger } from '../../logging.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|\[::1\])$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/**
 * Listen on `server.host:port` (loopback by default), over HTTPS when `server.tls` names a
 * certificate and key. Binding elsewhere without TLS is allowed (a TLS-terminating proxy on another
 * host is legitimate) but logged as a warning: bearer tokens would cross the network in clear.
 */
export async function listenApi(
  fetch: Parameters<typeof serve>[0]['fetch'],
  server: Pick<ServerConfig, 'host' | 'port' | 'tls'>,
  opts: { configPath?: string; log?: Logger } = {},
): Promise<{ server: ServerType; url: string }> {
  const tls = server.tls ? readTls(server.tls, opts.configPath) : undefined;
  if (!isLoopback(server.host) && !tls) {
    opts.log?.warn(
      { host: server.host },
      'the API listens on a non-loopback address without TLS: bearer tokens cross the network in clear unless a TLS proxy fronts it (docs/security.md)',
    );
  }
  const listening = await new Promise<ServerType>((resolve, reject) => {
    const s = tls
      ? serve({ fetch, hostname: server.host, port: server.port, createServer: createHttpsServer, serverOptions: tls }, () => resolve(s))
      : serve({ fetch, hostname: server.host, port: server.port }, () => resolve(s));
    s.once('error', reject);
  });
  const { port } = listening.address() as AddressInfo;
  const host = server.host.includes(':') && !server.host.startsWith('[') ? `[${server.host}]` : server.host;
  return { server: listening, url: `${tls ? 'https' : 'http'}://${host}:${port}` };
}

/** Files named relative to the config file, like every other path in it. */
function readTls(tls: NonNullable<ServerConfig['tls']>, configPath?: string): { cert: Buffer; key: Buffer } {
  const read = (name: string, field: string) => {
    const file = configPath && !isAbsolute(name) ? resolve(dirname(configPath), name) : name;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`server.tls.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { cert: read(tls.certFile, 'certFile'), key: read(tls.keyFile, 'keyFile') };
}
