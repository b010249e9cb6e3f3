/**
 * `npm run temporal:install` → `tsx src/temporal/cli.ts install`: find or build the Temporal CLI.
 * `npm run temporal:start`   → `tsx src/temporal/cli.ts start`: run the local dev server in the foreground
 *                               until Ctrl-C (state in .data/temporal.sqlite survives restarts).
 * `npm run temporal:search-attributes -- --address host:port [--namespace ns]`: register the project's
 *                               search attributes on a real cluster (idempotent; docs/operations.md).
 * `npm run temporal:cluster -- up|down|restart|status|build`: a real cluster (server 1.29.1 on
 *                               PostgreSQL) in .temporal/cluster (cluster-cli.ts).
 */
import { Command, InvalidArgumentError } from 'commander';
import { ensureTemporalCli, installTemporalCli, TemporalCliError } from './cli-locator.js';
import { TemporalClusterError } from './cluster.js';
import { registerClusterCommand } from './cluster-cli.js';
import { DEFAULT_DEV_DB_FILE, DevServerError, startDevServer } from './dev-server.js';
import { LocalPostgresError } from './local-postgres.js';
import { connectConnection, temporalConnectionOptions } from './connection.js';
import { prefixedLog } from './log.js';
import { CLI_SEARCH_ATTRIBUTE_TYPE, ensureSearchAttributes } from './search-attributes-admin.js';
import { PROJECT_SEARCH_ATTRIBUTES } from './search-attributes.js';
import { TemporalServerBuildError } from './server-binaries.js';

const log = prefixedLog('[temporal]');

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

const program = new Command('temporal-cli')
  .description('Temporal server plumbing for proxmox-agent (see docs/temporal-server.md)')
  .showHelpAfterError();

program
  .command('install')
  .description('find the Temporal CLI (TEMPORAL_CLI_PATH, PATH, .temporal/bin) or build it with go install')
  .option('--force', 'rebuild .temporal/bin/temporal even if it is up to date')
  .action(async (o: { force?: boolean }) => {
    const path = o.force ? await installTemporalCli({ log, force: true }) : await ensureTemporalCli({ log });
    console.log(path);
  });

program
  .command('start')
  .description('run the Temporal dev server in the foreground until Ctrl-C')
  .option('--port <port>', 'gRPC frontend port', parsePort, 7233)
  .option('--ui-port <port>', 'Web UI port', parsePort, 8233)
  .option('--ip <ip>', 'bind address', '127.0.0.1')
  .option('--db <file>', 'SQLite file (persistent state)', DEFAULT_DEV_DB_FILE)
  .option('--namespace <ns>', 'namespace to create and register search attributes on', process.env.TEMPORAL_NAMESPACE || 'default')
  .option('--headless', 'no Web UI')
  .option('--log-level <level>', 'server log level: debug|info|warn|error', 'warn')
  .action(async (o: { port: number; uiPort: number; ip: string; db: string; namespace: string; headless?: boolean; logLevel: string }) => {
    if (!['debug', 'info', 'warn', 'error'].includes(o.logLevel)) throw new InvalidArgumentError('--log-level must be debug|info|warn|error');
    const server = await startDevServer({
      port: o.port,
      uiPort: o.uiPort,
      ip: o.ip,
      dbFile: o.db,
      namespace: o.namespace,
      headless: o.headless ?? false,
      logLevel: o.logLevel as 'debug' | 'info' | 'warn' | 'error',
      log,
    });
    const line = '─'.repeat(64);
    console.log(
      [
        line,
        server.reused ? ' Temporal server already running — reusing it (this command will not stop it)' : ' Temporal dev server running',
        `  gRPC address : ${server.address}   (TEMPORAL_ADDRESS=${server.address})`,
        `  namespace    : ${server.namespace}`,
        `  Web UI       : ${server.uiUrl ?? (server.reused ? 'see the running server' : '(headless)')}`,
        `  DB file      : ${server.dbFile ?? '(managed by the running server)'}`,
        server.pid !== undefined ? `  pid          : ${server.pid}` : undefined,
        server.reused ? '' : '  Ctrl-C to stop; state survives restarts.',
        line,
      ]
        .filter((l) => l !== undefined)
        .join('\n'),
    );
    if (server.reused) return;

    let stopping = false;
    const shutdown = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: stopping the Temporal dev server…`);
      server.stop().then(
        () => {
          log('stopped.');
          process.exit(0);
        },
        (err: unknown) => {
          log(`stop failed: ${(err as Error).message}`);
          process.exit(1);
        },
      );
    };
    void server.exited?.then(({ code, signal }) => {
      if (stopping) return;
      log(`the Temporal dev server exited unexpectedly (${code ?? signal}).`);
      process.exit(1);
    });
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
    process.on('SIGHUP', shutdown);
    // Keep the event loop alive until a signal arrives.
    setInterval(() => {}, 1 << 30);
  });

program
  .command('search-attributes')
  .description('register the project search attributes on a Temporal namespace (TLS / API key from the TEMPORAL_* variables)')
  .option('--address <host:port>', 'frontend address (default: TEMPORAL_ADDRESS)')
  .option('--namespace <ns>', 'namespace (default: TEMPORAL_NAMESPACE or default)')
  .option('--print', 'only print the equivalent `temporal operator search-attribute create` commands')
  .action(async (o: { address?: string; namespace?: string; print?: boolean }) => {
    const opts = temporalConnectionOptions({ ...process.env, ...(o.address ? { TEMPORAL_ADDRESS: o.address } : {}), ...(o.namespace ? { TEMPORAL_NAMESPACE: o.namespace } : {}) });
    if (o.print) {
      for (const a of PROJECT_SEARCH_ATTRIBUTES) {
        console.log(`temporal operator search-attribute create --namespace ${opts.namespace} --name ${a.name} --type ${CLI_SEARCH_ATTRIBUTE_TYPE[a.type]}`);
      }
      return;
    }
    const connection = await connectConnection(opts);
    try {
      const { added, existing } = await ensureSearchAttributes(connection, opts.namespace, undefined, log);
      console.log(`namespace ${opts.namespace} on ${opts.address}: added ${added.join(', ') || 'none'}; already there ${existing.join(', ') || 'none'}`);
    } finally {
      await connection.close();
    }
  });

registerClusterCommand(program, log);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof TemporalCliError || err instanceof DevServerError || err instanceof TemporalClusterError || err instanceof TemporalServerBuildError || err instanceof LocalPostgresError) {
    console.error(`\n${err.message}`);
  } else {
    console.error(err);
  }
  process.exit(1);
});
