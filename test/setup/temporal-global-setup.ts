/**
 * Vitest global setup for the `integration` project (runs once, in the main vitest process).
 *
 *  - TEMPORAL_ADDRESS set → use that server (TEMPORAL_NAMESPACE, TLS and API-key variables apply);
 *  - otherwise → find/build the Temporal CLI and start a dev server on a random free port with a fresh
 *    temporary SQLite file, headless, so tests never collide with a developer's `npm start` on 7233.
 *
 * Tests read the server with `inject('temporalAddress')` / `inject('temporalNamespace')` (or use
 * `testConnectionOptions()` from `./temporal.js`); child processes get TEMPORAL_TEST_ADDRESS /
 * TEMPORAL_TEST_NAMESPACE. Teardown stops the server and deletes the temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli } from '../../src/temporal/cli-locator.js';
import { connectConnection, temporalConnectionOptions } from '../../src/temporal/connection.js';
import { DevServerError, getFreePort, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes-admin.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `host:port` of the Temporal server the integration tests use. */
    temporalAddress: string;
    /** Namespace the integration tests use (project search attributes are registered on it). */
    temporalNamespace: string;
    /** True if the global setup started a throw-away dev server (false: external TEMPORAL_ADDRESS). */
    temporalIsDevServer: boolean;
  }
}

const log = (m: string) => console.log(`[temporal-global-setup] ${m}`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: DevServerHandle | undefined;
  let tmp: string | undefined;
  let address: string;
  let namespace: string;

  if (process.env.TEMPORAL_ADDRESS?.trim()) {
    const opts = temporalConnectionOptions(process.env);
    address = opts.address;
    namespace = opts.namespace;
    log(`using TEMPORAL_ADDRESS=${address} (namespace "${namespace}")`);
    const connection = await connectConnection(opts);
    try {
      await ensureSearchAttributes(connection, namespace, undefined, log);
    } finally {
      await connection.close();
    }
  } else {
    const started = Date.now();
    const cliPath = await ensureTemporalCli({ log });
    tmp = mkdtempSync(join(tmpdir(), 'proxmox-agent-temporal-test-'));
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort();
      try {
        server = await startDevServer({
          cliPath,
          port,
          dbFile: join(tmp, 'temporal.sqlite'),
          headless: true,
          reuseExisting: false,
          log,
        });
        break;
      } catch (err) {
        // The free port can be taken between getFreePort() and the server binding it: retry.
        if (err instanceof DevServerError && err.code === 'PORT_IN_USE' && attempt < 3) continue;
        rmSync(tmp, { recursive: true, force: true });
        throw err;
      }
    }
    address = server.address;
    namespace = server.namespace;
    log(`dev server for tests on ${address} (pid ${server.pid}, db ${server.dbFile}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  project.provide('temporalAddress', address);
  project.provide('temporalNamespace', namespace);
  project.provide('temporalIsDevServer', server !== undefined);
  // Inherited by the forked test workers and anything they spawn.
  process.env.TEMPORAL_TEST_ADDRESS = address;
  process.env.TEMPORAL_TEST_NAMESPACE = namespace;

  return async () => {
    const t = Date.now();
    await server?.stop();
    log(`stopped in ${Date.now() - t} ms`);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
}
