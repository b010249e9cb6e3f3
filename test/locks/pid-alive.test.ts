import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pidAlive } from '../../src/pid-alive.js';

describe('pidAlive', () => {
  it('is true for a running process and false once it has exited', () => {
    expect(pidAlive(process.pid)).toBe(true);
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    expect(pidAlive(gone)).toBe(false);
  });

  it.runIf(process.platform === 'linux' && process.getuid?.() !== 0)('a process it may not signal (EPERM) still runs', () => {
    expect(pidAlive(1)).toBe(true);
  });
});
