/**
 * The Temporal server process of a cluster (cluster.ts): started from `.temporal/bin/server` with its
 * config directory, output appended to `<dir>/server.log`, stopped by pid (so a later `temporal:cluster
 * down` can stop a server an earlier `up` left running).
 *
 * Attached (the default): the server dies with this process, by `setpriv --pdeathsig` (Linux) when
 * this process is killed and by an exit hook otherwise. Detached (`temporal:cluster up`): its own
 * session, nothing ties it to this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive } from '../pid-alive.js';
import { findOnPath } from './cli-locator.js';

export interface ServerProcessOptions {
  /** `.temporal/bin/server`. */
  bin: string;
  /** The cluster directory: `--root`, holding `config/production.yaml`. */
  root: string;
  logFile: string;
  detached: boolean;
}

export interface ServerProcess {
  pid: number;
  /** True until the process has exited. */
  alive(): boolean;
  /** Last lines of the log, for error messages. */
  exitDescription(): string | undefined;
}

/** `server --root <dir> --config config --env production --allow-no-auth start`. */
export function serverArgs(root: string): string[] {
  // No authorizer on purpose: the frontend listens on loopback only, as the dev server does.
  return ['--root', root, '--config', 'config', '--env', 'production', '--allow-no-auth', 'start'];
}

export function spawnServer(opts: ServerProcessOptions): ServerProcess {
  const args = serverArgs(opts.root);
  const setpriv = !opts.detached && process.platform === 'linux' ? findOnPath('setpriv') : undefined;
  const [cmd, cmdArgs] = setpriv ? [setpriv, ['--pdeathsig', 'SIGTERM', '--', opts.bin, ...args]] : [opts.bin, args];
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, cmdArgs, { cwd: opts.root, stdio: ['ignore', fd, fd], detached: opts.detached });
  } finally {
    closeSync(fd);
  }
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = `exited with ${code ?? signal}`));
  child.once('error', (err) => (exit = `could not run ${cmd}: ${err.message}`));
  if (child.pid === undefined) throw new Error(`could not start ${opts.bin}`);
  if (opts.detached) child.unref();
  else {
    const kill = () => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    };
    process.on('exit', kill);
    child.once('exit', () => process.removeListener('exit', kill));
  }
  return { pid: child.pid, alive: () => exit === undefined && pidAlive(child.pid!), exitDescription: () => exit };
}

/** True if `pid` runs the server binary for `root` (guards against a recycled pid in a state file). */
export function isOurServer(pid: number, root: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('--root') && argv[argv.indexOf('--root') + 1] === root;
  } catch {
    return process.platform !== 'linux';
  }
}

/**
 * Sends `signal`; after `graceMs` without an exit, SIGKILL. Resolves once the process is gone.
 * The server shuts down in a few seconds on SIGTERM (it drains its pollers and releases its shards).
 */
export async function stopPid(pid: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', graceMs = 15_000): Promise<void> {
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      /* gone */
    }
  };
  if (!pidAlive(pid)) return;
  send(signal);
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline && signal !== 'SIGKILL') {
      send('SIGKILL');
      signal = 'SIGKILL';
    }
    await sleep(50);
  }
}

/** The log's last lines, JSON log lines shortened to `level msg error`. */
export function logTail(logFile: string, lines = 30): string {
  if (!existsSync(logFile)) return '  (no log)';
  const size = statSync(logFile).size;
  const fd = openSync(logFile, 'r');
  const buf = Buffer.alloc(Math.min(size, 256 * 1024));
  try {
    readSyncAt(fd, buf, size - buf.length);
  } finally {
    closeSync(fd);
  }
  const out = buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim())
    .slice(-lines)
    .map((l) => {
      try {
        const j = JSON.parse(l) as { level?: string; msg?: string; error?: string };
        return [j.level, j.msg, j.error].filter(Boolean).join(' ');
      } catch {
        return l;
      }
    });
  return out.map((l) => `  | ${l}`).join('\n') || '  (empty)';
}

function readSyncAt(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
}
