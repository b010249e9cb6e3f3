/**
 * Graceful HTTP shutdown (src/api/http/drain.ts): a stopping API refuses new connections, lets the
 * requests it is serving finish, and cuts only what is still open after the drain timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerType } from '@hono/node-server';
import { closeGracefully } from '../../src/api/http/drain.js';
import { listenApi } from '../../src/api/http/server.js';

let release: () => void = () => {};
const gate = () => new Promise<void>((resolve) => (release = resolve));
let server: ServerType | undefined;
/** Resolves when a /slow request has reached the handler. */
let reached: Promise<void> = Promise.resolve();

async function start(): Promise<string> {
  let held: Promise<void> = gate();
  let arrive: () => void = () => {};
  reached = new Promise<void>((resolve) => (arrive = resolve));
  const listening = await listenApi(
    async (req) => {
      if (new URL(req.url).pathname === '/slow') {
        arrive();
        await held;
      }
      return new Response('done');
    },
    { host: '127.0.0.1', port: 0 },
  );
  server = listening.server;
  held = gate();
  return listening.url;
}

afterEach(() => {
  release();
  server?.close();
  server = undefined;
});

describe('closeGracefully', () => {
  it('lets an in-flight request finish while new connections are refused', async () => {
    const url = await start();
    expect(await (await fetch(`${url}/fast`)).text()).toBe('done'); // leaves an idle keep-alive connection
    const slow = fetch(`${url}/slow`);
    await reached; // the slow request is in the handler
    let closed = false;
    const closing = closeGracefully(server!, 30_000).then(() => (closed = true));
    // No new request is served: the listener is closed and idle keep-alive connections with it.
    await expect(fetch(`${url}/fast`)).rejects.toThrow();
    expect(closed).toBe(false);
    release();
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done');
    await closing;
    expect(closed).toBe(true);
  });

  it('cuts a request still open after the timeout', async () => {
    const url = await start();
    const slow = fetch(`${url}/slow`).then(
      () => 'answered',
      () => 'cut',
    );
    await reached;
    await closeGracefully(server!, 200);
    expect(await slow).toBe('cut');
  });
});
