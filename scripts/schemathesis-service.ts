/**
 * The service schemathesis fuzzes (scripts/schemathesis.sh): the demo configuration, all in this
 * process as `npm start` runs it (worker, HTTP API, in-process Proxmox simulators), but isolated and
 * loopback-only: its own headless Temporal dev server on a free port with a throw-away SQLite file,
 * the API on a free port, the audit log in a temp dir. One extra token with every scope is added, so
 * the fuzzer reaches every operation's logic instead of stopping at 403.
 *
 * Prints `READY <url> <token>` on stdout once the API answers; SIGTERM/SIGINT stop everything.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logging.js';
import { startService } from '../src/service.js';
import { ensureTemporalCli } from '../src/temporal/cli-locator.js';
import { getFreePort, startDevServer } from '../src/temporal/dev-server.js';
import { installTemporalRuntime } from '../src/temporal/runtime.js';

const log = createLogger({ level: process.env.LOG_LEVEL ?? 'error' });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pa-schemathesis-'));
  const demo = loadConfig({}).config;
  const token = `fuzz-${randomBytes(16).toString('hex')}`;
  const config = {
    ...demo,
    server: { ...demo.server, host: '127.0.0.1', port: await getFreePort() },
    temporal: { ...demo.temporal, taskQueue: 'schemathesis' },
    tokens: [
      ...demo.tokens,
      {
        id: 'fuzzer',
        principal: 'agent:schemathesis',
        secretSha256: createHash('sha256').update(token).digest('hex'),
        scopes: ['plan', 'apply', 'approve', 'read', 'admin'] as const,
        environments: ['*'],
        roles: ['sre', 'dba'],
      },
    ],
    audit: { ...demo.audit, file: join(dir, 'audit.jsonl') },
    // Plans expire after 10 s, so every plan the fuzzer makes reaches a terminal state quickly and
    // its event stream (GET /v1/actions/{planId}/events) and long polls end instead of running for an hour.
    policy: { ...demo.policy, planTtlSeconds: 10 },
  } as typeof demo;

  installTemporalRuntime(log);
  const server = await startDevServer({
    cliPath: await ensureTemporalCli({ log: (m) => console.error(m) }),
    dbFile: join(dir, 'temporal.sqlite'),
    port: await getFreePort(),
    ip: '127.0.0.1',
    headless: true,
    reuseExisting: false,
    logLevel: 'error',
    log: (m) => console.error(m),
  });
  const service = await startService({
    config,
    temporal: { address: server.address, namespace: server.namespace },
    log,
    simulator: { taskDurationMs: 50, authFailureDelayMs: 0 },
    pollIntervalMs: 100,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await service.stop().catch(() => undefined);
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  console.log(`READY ${service.url} ${token}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
