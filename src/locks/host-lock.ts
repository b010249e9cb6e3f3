/**
 * A lock among the processes of one host that the kernel frees when its holder dies, for the file
 * stores (the audit log's one writer, the budget ledger's read-decide-write).
 *
 * Why not a lock file alone: a lock file left by a crashed process has to be taken over, and on POSIX
 * there is no "delete this file only if it is still the one I read". Two processes that both see the
 * dead holder can each unlink and create, and one of them unlinks the other's fresh lock: both are
 * inside (probe15-budget-stale-lock showed 2-4 admissions against `concurrent: 1`). Libraries that
 * judge staleness by a lock's age (proper-lockfile) have the same window, and also hand a paused
 * holder's lock to someone else.
 *
 * So on Linux the lock IS a listening Unix socket in the abstract namespace, named after the file:
 * binding it is exclusive, and it vanishes with its process (SIGKILL included), so nothing is ever
 * taken over. The lock file beside the store only says who holds it, for error messages; it is never
 * used to exclude. Elsewhere (macOS, for development) the lock is the file, created exclusively and
 * taken over when its pid is gone, which is safe for one taker at a time but not for two at once.
 */
import { createHash } from 'node:crypto';
import { open, readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pidAlive } from '../pid-alive.js';

export interface HostLockHolder {
  pid: number;
  host: string;
  since: string;
}

export interface HostLock {
  release(): Promise<void>;
}

const kernelLocks = process.platform === 'linux';

/** Takes the lock named by `lockPath` if no live process holds it; `undefined` while one does. */
export async function tryHostLock(lockPath: string): Promise<HostLock | undefined> {
  const me: HostLockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  return kernelLocks ? trySocketLock(lockPath, me) : tryFileLock(lockPath, me);
}

/** Who holds (or last held) the lock, as its lock file says; `undefined` if it says nothing usable. */
export async function readHostLockHolder(lockPath: string): Promise<HostLockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(lockPath, 'utf8')) as { pid?: unknown; host?: unknown; since?: unknown };
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') return { pid: parsed.pid, host: parsed.host, since: String(parsed.since ?? '?') };
  } catch {
    /* absent, unreadable or half written */
  }
  return undefined;
}

async function trySocketLock(lockPath: string, me: HostLockHolder): Promise<HostLock | undefined> {
  const name = await socketName(lockPath);
  const server = createServer();
  const bound = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    server.listen({ path: name }, () => resolve(true));
  });
  if (!bound) return undefined;
  server.on('error', () => undefined); // nothing connects; a late error must not crash the holder
  server.unref(); // a held lock never keeps the process alive
  try {
    await writeFile(lockPath, JSON.stringify(me), { mode: 0o600 });
  } catch (err) {
    await closeServer(server);
    throw err;
  }
  return releasedOnce(async () => {
    // The label goes first: once the socket is closed the next holder may already have written its own.
    await unlink(lockPath).catch(() => undefined);
    await closeServer(server);
  });
}

function releasedOnce(release: () => Promise<void>): HostLock {
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await release();
    },
  };
}

/** `\0proxmox-agent-lock/<hash>`: one name per file, whichever path (or symlinked directory) names it. */
async function socketName(lockPath: string): Promise<string> {
  const where = join(await realpath(dirname(lockPath)), basename(lockPath));
  return `\0proxmox-agent-lock/${createHash('sha256').update(where).digest('hex').slice(0, 40)}`;
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

async function tryFileLock(lockPath: string, me: HostLockHolder): Promise<HostLock | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(me), 'utf8').finally(() => handle.close());
      return releasedOnce(() => unlink(lockPath).catch(() => undefined));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHostLockHolder(lockPath);
    if (!holder || holder.host !== me.host || pidAlive(holder.pid)) return undefined;
    await unlink(lockPath).catch(() => undefined); // its process is gone (see the module comment for the race)
  }
  return undefined;
}

