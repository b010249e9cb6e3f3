/**
 * A private PostgreSQL cluster from the machine's own binaries (Debian's /usr/lib/postgresql/<version>/bin,
 * newest first, or PG_BIN, or initdb on PATH): `initdb` into a directory of ours, `pg_ctl start` on a
 * loopback port with password (SCRAM) authentication over TCP. Nothing system-wide is touched: no
 * service, no /etc, no /var/lib/postgresql.
 *
 * Used by `npm run temporal:cluster` (Temporal's persistence and visibility, src/temporal/cluster.ts)
 * and by the tests' throw-away clusters (test/setup/postgres.ts).
 *
 * PostgreSQL refuses to run as root: when this process is root (CI is), initdb, pg_ctl and the server
 * run as the `postgres` system user that Debian's package creates (else `nobody`), through spawn's
 * uid/gid, and the directory is handed to that user.
 *
 * The directory holds `data/` (PGDATA), the Unix socket, `server.log`, `password` (0600, the
 * superuser's) and `postgres.json` (the port and user), so a later process (`temporal:cluster down`,
 * `status`) can find the cluster again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { getFreePort } from './dev-server.js';
import { silentLog, type TemporalLog } from './log.js';

/** Directory with initdb, pg_ctl and postgres, or undefined. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const has = (dir: string) => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(dir, b)));
  if (env.PG_BIN && has(env.PG_BIN)) return env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8', env }).trim();
    const dir = initdb.replace(/\/initdb$/, '');
    if (initdb && has(dir)) return dir;
  } catch {
    /* not on PATH */
  }
  return undefined;
}

/** Thrown when PostgreSQL cannot be found, initialised or started; the message says what to do. */
export class LocalPostgresError extends Error {
  override readonly name = 'LocalPostgresError';
}

export interface RunAs {
  uid: number;
  gid: number;
}

/** The user PostgreSQL runs as when this process is root; undefined when it is not root. */
export function postgresRunAs(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
      if (uid > 0) return { uid, gid };
    } catch {
      /* no such user */
    }
  }
  throw new LocalPostgresError('running as root and neither the postgres nor the nobody user exists: PostgreSQL cannot run as root');
}

function run(bin: string, args: string[], runAs: RunAs | undefined, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, {
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      env: { PATH: process.env.PATH, LC_ALL: 'C', LANG: 'C', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: '/',
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => resolvePromise({ code, out }));
  });
}

async function runOk(bin: string, args: string[], runAs: RunAs | undefined): Promise<string> {
  const { code, out } = await run(bin, args, runAs);
  if (code !== 0) throw new LocalPostgresError(`${bin} ${args.join(' ')} exited ${code}:\n${out}`);
  return out;
}

export interface LocalPostgresOptions {
  /** Holds data/ (PGDATA), the socket, server.log, password and postgres.json. Created if missing. */
  dir: string;
  /** TCP port. Default: the one recorded in `dir`, else a free one (retried on a clash). */
  port?: number;
  /** Listen address. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** The superuser initdb creates. Default `postgres`. Only used when the cluster is initialised. */
  user?: string;
  /** Its password. Default: the one recorded in `dir`, else random. Only used when the cluster is initialised. */
  password?: string;
  /** `max_connections`. Default 100 (PostgreSQL's). */
  maxConnections?: number;
  /** Directory of initdb/pg_ctl/postgres. Default {@link findPostgresBin}. */
  bin?: string;
  log?: TemporalLog;
}

export interface LocalPostgres {
  bin: string;
  dir: string;
  dataDir: string;
  host: string;
  readonly port: number;
  user: string;
  password: string;
  logFile: string;
  /** postgres://<user>:<password>@<host>:<port>/<database> */
  url(database?: string): string;
  /** Creates `name` unless it exists; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Starts the server (`pg_ctl start -w`); a no-op when it already runs. */
  start(): Promise<void>;
  /** `pg_ctl stop` (`fast`: sessions are ended, a clean shutdown; `immediate`: no checkpoint). A no-op when stopped. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** The same, synchronously (for `process.on('exit')`). Never throws. */
  stopSync(mode?: 'fast' | 'immediate'): void;
  /** Stop (fast) and start again on the same port, keeping the data. */
  restart(): Promise<void>;
  /** `pg_ctl status`: true while the postmaster runs. */
  isRunning(): Promise<boolean>;
  /**
   * Stops the server (`immediate`) when this process ends, even by SIGKILL or an unhandled SIGTERM,
   * where `process.on('exit')` never runs: a watchdog shell runs `pg_ctl stop` once the pipe it reads
   * from this process closes. Returns a function that ends the watchdog without stopping the server.
   */
  stopWhenProcessDies(): () => void;
}

interface Recorded {
  port?: number;
  user?: string;
}

/**
 * Opens the cluster in `opts.dir`, initialising it (initdb) the first time. Does not start it.
 * Throws {@link LocalPostgresError} when the binaries are missing.
 */
export async function openLocalPostgres(opts: LocalPostgresOptions): Promise<LocalPostgres> {
  const log = opts.log ?? silentLog;
  const bin = opts.bin ?? findPostgresBin();
  if (!bin) {
    throw new LocalPostgresError('PostgreSQL binaries (initdb, pg_ctl, postgres) not found: apt-get install -y postgresql (or set PG_BIN to their directory)');
  }
  const runAs = postgresRunAs();
  const dir = resolve(opts.dir);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const passwordFile = join(dir, 'password');
  const stateFile = join(dir, 'postgres.json');
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(dir, { recursive: true });
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);

  const recorded: Recorded = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as Recorded) : {};
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  let user = recorded.user ?? opts.user ?? 'postgres';
  let password: string;
  if (initialised) {
    if (!existsSync(passwordFile)) throw new LocalPostgresError(`${dataDir} exists but ${passwordFile} does not: remove ${dir} to start afresh`);
    password = readFileSync(passwordFile, 'utf8').trim();
  } else {
    user = opts.user ?? 'postgres';
    password = opts.password ?? randomBytes(18).toString('base64url');
    rmSync(dataDir, { recursive: true, force: true });
    const pwfile = join(dir, `initdb-pw-${process.pid}`);
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
    const started = Date.now();
    try {
      await runOk(join(bin, 'initdb'), ['-D', dataDir, '-U', user, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--locale=C', '-E', 'UTF8'], runAs);
    } finally {
      rmSync(pwfile, { force: true });
    }
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    log(`initdb ${dataDir} (${bin}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  let port = opts.port ?? recorded.port ?? 0;
  const record = () => writeFileSync(stateFile, `${JSON.stringify({ port, user } satisfies Recorded)}\n`);
  const pgCtl = join(bin, 'pg_ctl');
  const startArgs = (p: number) => [
    '-D',
    dataDir,
    '-l',
    logFile,
    '-o',
    `-c listen_addresses=${host} -p ${p} -c unix_socket_directories=${dir} -c max_connections=${opts.maxConnections ?? 100}`,
    '-w',
    '-t',
    '60',
    'start',
  ];

  const isRunning = async () => (await run(pgCtl, ['-D', dataDir, 'status'], runAs)).code === 0;

  const start = async () => {
    if (await isRunning()) return;
    const pinned = port !== 0;
    for (let attempt = 1; ; attempt++) {
      const p = pinned ? port : await getFreePort(host);
      try {
        const started = Date.now();
        await runOk(pgCtl, startArgs(p), runAs);
        port = p;
        record();
        log(`PostgreSQL started on ${host}:${port} in ${((Date.now() - started) / 1000).toFixed(1)} s (log ${logFile})`);
        return;
      } catch (err) {
        // A free port can be taken between the check and the start: try another, unless the port is fixed.
        if (pinned || attempt >= 3) {
          const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
          throw new LocalPostgresError(`${(err as Error).message}${tail ? `\nLast lines of ${logFile}:\n${tail}` : ''}`);
        }
      }
    }
  };

  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!(await isRunning())) return;
    await runOk(pgCtl, ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop'], runAs);
  };

  const stopSync = (mode: 'fast' | 'immediate' = 'fast') => {
    try {
      execFileSync(pgCtl, ['-D', dataDir, '-m', mode, '-w', 'stop'], { stdio: 'ignore', cwd: '/', ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) });
    } catch {
      /* not running */
    }
  };

  const url = (database = 'postgres') => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${database}`;

  return {
    bin,
    dir,
    dataDir,
    host,
    get port() {
      return port;
    },
    user,
    password,
    logFile,
    url,
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new LocalPostgresError(`database name ${JSON.stringify(name)}: use lower-case letters, digits and _`);
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    start,
    stop,
    stopSync,
    async restart() {
      await stop('fast');
      await start();
    },
    isRunning,
    stopWhenProcessDies() {
      // The watchdog blocks reading a pipe from this process; the kernel closes it when this process
      // ends, however it ends, and the read returns. pg_ctl and PGDATA are passed as $1 and $2.
      const child = spawn('/bin/sh', ['-c', 'read _; exec "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1', 'pg-watchdog', pgCtl, dataDir], {
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
        stdio: ['pipe', 'ignore', 'ignore'],
        cwd: '/',
      });
      child.on('error', () => {});
      child.stdin?.on('error', () => {});
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      // SIGKILL ends it without stopping the server.
      return () => void child.kill('SIGKILL');
    },
  };
}
