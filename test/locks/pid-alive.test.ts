import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pidAlive } from '../../src/pid-alive.js';

describe('pidAlive', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is true for a running process and false once it has exited', () => {
    expect(pidAlive(process.pid)).toBe(true);
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    expect(pidAlive(gone)).toBe(false);
  });

  it('a process it may not signal (EPERM) still runs', () => {
    // As root every signal is allowed, so the kernel's answer to another user's process is stood in for.
    vi.spyOn(process, 'kill').mockImplementation(() => {
      throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
    });
    expect(pidAlive(process.pid)).toBe(true);
  });
});
