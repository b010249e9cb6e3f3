import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readHostLockHolder, tryHostLock } from '../../src/locks/host-lock.js';

const lockIn = () => join(mkdtempSync(join(tmpdir(), 'pa-host-lock-')), 'store.lock');

/** A child process that takes the lock, says so, and then waits to be killed. */
function holderProcess(lockPath: string): Promise<{ pid: number; kill: (signal: NodeJS.Signals) => Promise<void> }> {
  const src = `
    const { tryHostLock } = await import(${JSON.stringify(new URL('../../src/locks/host-lock.ts', import.meta.url).pathname)});
    const lock = await tryHostLock(${JSON.stringify(lockPath)});
    process.stdout.write(lock ? 'held\\n' : 'busy\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => {
      if (String(d).trim() !== 'held') return reject(new Error(`child: ${String(d)}`));
      resolve({ pid: child.pid!, kill: (signal) => new Promise((done) => (child.once('exit', () => done()), child.kill(signal))) });
    });
    child.once('error', reject);
  });
}

describe('host lock', () => {
  it('is held by one taker at a time, in one process too, and free again once released', async () => {
    const path = lockIn();
    const first = await tryHostLock(path);
    expect(first).toBeDefined();
    expect(await tryHostLock(path)).toBeUndefined();
    expect(await readHostLockHolder(path)).toMatchObject({ pid: process.pid, host: hostname() });
    await first!.release();
    expect(existsSync(path)).toBe(false);
    const second = await tryHostLock(path);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('is refused while another process holds it, and freed when that process is SIGKILLed (nothing to take over)', { timeout: 30_000 }, async () => {
    const path = lockIn();
    const holder = await holderProcess(path);
    expect(await tryHostLock(path)).toBeUndefined();
    expect((await readHostLockHolder(path))?.pid).toBe(holder.pid);
    await holder.kill('SIGKILL');
    // Its label is left behind, naming a dead process; it does not hold anything.
    expect((await readHostLockHolder(path))?.pid).toBe(holder.pid);
    const mine = await tryHostLock(path);
    expect(mine).toBeDefined();
    expect((await readHostLockHolder(path))?.pid).toBe(process.pid);
    await mine!.release();
  });

  it.runIf(process.platform === 'linux')('does not take a live holder\'s lock whatever its lock file says (a label only)', { timeout: 30_000 }, async () => {
    const path = lockIn();
    const holder = await holderProcess(path);
    // The lock file rewritten to name a process that is gone, as a crash of an earlier holder would leave it.
    writeFileSync(path, JSON.stringify({ pid: 2 ** 30, host: hostname(), since: 'x' }));
    expect(await tryHostLock(path)).toBeUndefined();
    await holder.kill('SIGKILL');
    const mine = await tryHostLock(path);
    expect(mine).toBeDefined();
    await mine!.release();
  });

  it.runIf(process.platform === 'linux')('is one lock for one file, whichever path names it (a symlinked directory)', async () => {
    const path = lockIn();
    const alias = join(mkdtempSync(join(tmpdir(), 'pa-host-lock-alias-')), 'dir');
    symlinkSync(join(path, '..'), alias);
    const first = await tryHostLock(path);
    expect(await tryHostLock(join(alias, 'store.lock'))).toBeUndefined();
    await first!.release();
  });
});
