/**
 * Throw-away PostgreSQL clusters for tests: `initdb` into a temp directory, `pg_ctl start` on a random
 * loopback port with password (SCRAM) authentication over TCP, stop and delete at the end. Uses
 * Debian's binaries (/usr/lib/postgresql/<version>/bin, newest first), or PG_BIN, or initdb on PATH.
 *
 * PostgreSQL refuses to run as root: when the tests run as root (CI does), the server runs as the
 * `postgres` system user that Debian's package creates (else `nobody`), through spawn's uid/gid.
 *
 * `describePostgres` runs a suite when the binaries exist; without them it skips locally and FAILS in
 * CI (CI=true), so a CI machine that lost its PostgreSQL cannot pass silently.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import pg from 'pg';
import { getFreePort } from '../../src/temporal/dev-server.js';

export function findPostgresBin(): string | undefined {
  const has = (dir: string) => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(dir, b)));
  if (process.env.PG_BIN && has(process.env.PG_BIN)) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    const dir = initdb.replace(/\/initdb$/, '');
    if (initdb && has(dir)) return dir;
  } catch {
    /* not on PATH */
  }
  return undefined;
}

/** A describe() that runs with PostgreSQL binaries, skips without them, and fails without them in CI. */
export function describePostgres(name: string, fn: () => void): void {
  if (findPostgresBin()) {
    describe(name, fn);
  } else if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => {
      it('has PostgreSQL installed (CI installs it: .ci/run)', () => {
        throw new Error('PostgreSQL binaries (initdb, pg_ctl, postgres) not found; apt-get install -y postgresql');
      });
    });
  } else {
    describe.skip(`${name} (PostgreSQL not installed)`, fn);
  }
}

export interface TempPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  password: string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

interface RunAs {
  uid: number;
  gid: number;
}

function unprivilegedUser(): RunAs | undefined {
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
  throw new Error('running as root and neither the postgres nor the nobody user exists: PostgreSQL cannot run as root');
}

function run(bin: string, args: string[], runAs: RunAs | undefined, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
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
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${bin} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

export async function startTempPostgres(): Promise<TempPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('PostgreSQL binaries not found');
  const runAs = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'pa-pg-'));
  const data = join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    chownSync(dir, runAs.uid, runAs.gid);
    chownSync(pwfile, runAs.uid, runAs.gid);
  }
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--locale=C', '-E', 'UTF8'], runAs);
  rmSync(pwfile, { force: true });

  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await getFreePort();
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${dir} -c max_connections=50`;
    try {
      await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start'], runAs);
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) });
    } catch {
      /* already stopped */
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies must not leave a postmaster behind.
  process.once('exit', stopSync);

  const url = (database = 'postgres') => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  let counter = 0;
  return {
    url,
    password,
    async createDatabase(name = `t${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`) {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      if (stopped) return;
      process.removeListener('exit', stopSync);
      try {
        await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], runAs);
      } finally {
        stopped = true;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
