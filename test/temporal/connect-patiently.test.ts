import { Connection } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { connectPatiently } from '../../src/temporal/connection.js';

describe('connectPatiently', () => {
  it('waits for a server that is not reachable yet, then connects', async () => {
    let calls = 0;
    const waits: number[] = [];
    const out = await connectPatiently(
      async () => {
        if (++calls < 3) throw new Error('Failed to connect before the deadline');
        return 'connected';
      },
      { onRetry: (_err, ms) => waits.push(ms) },
    );
    expect(out).toBe('connected');
    expect(waits).toEqual([1000, 2000]);
  }, 10_000);

  it('gives up after its timeout, and at once on an error that waiting will not cure', async () => {
    await expect(connectPatiently(async () => Promise.reject(new Error('Failed to connect before the deadline')), { timeoutMs: 500 })).rejects.toThrow('Failed to connect');
    let calls = 0;
    await expect(connectPatiently(async () => (calls++, Promise.reject(new Error('PERMISSION_DENIED: bad api key'))))).rejects.toThrow('PERMISSION_DENIED');
    expect(calls).toBe(1);
  });

  it('recognises what the client says when nothing listens', async () => {
    const err = await Connection.connect({ address: '127.0.0.1:1', connectTimeout: 500 }).catch((e: Error) => e);
    let seen: Error | undefined;
    await connectPatiently(async () => Promise.reject(err), { timeoutMs: 1_200, onRetry: (e) => (seen = e) }).catch(() => undefined);
    expect(seen).toBe(err);
  });
});
