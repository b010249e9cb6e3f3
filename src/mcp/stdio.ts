/**
 * `proxmox-agent mcp`: the MCP server over stdio, for clients that start a process (Claude Code,
 * Codex, Cursor, Goose…). It is a client of the REST API (`/v1`, the versioned contract), not of
 * `/mcp`: the tools, resources and texts are the ones /mcp serves (src/mcp/server.ts), and the API
 * behind them decides every call exactly as it decides REST calls.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { ApiClient } from '../client/index.js';
import { createMcpServer } from './server.js';

/** Serves until the client closes stdin (or the process is told to stop). */
export async function serveStdio(api: ApiClient, io: { stdin?: NodeJS.ReadableStream; stdout?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdin = (io.stdin ?? process.stdin) as NodeJS.ReadStream;
  const server = createMcpServer(api);
  const closed = new Promise<void>((resolve) => {
    const before = server.server.onclose;
    server.server.onclose = () => {
      before?.();
      resolve();
    };
  });
  await server.connect(new StdioServerTransport(stdin, (io.stdout ?? process.stdout) as NodeJS.WriteStream));
  // The SDK's transport does not notice the end of its input: the client is done. Answer what it
  // asked (the answers go out on the next turn of the event loop), then close, which ends the
  // subscriptions that would keep the process alive.
  let ending = false;
  const end = () => {
    if (ending) return;
    ending = true;
    void server
      .settled()
      .then(() => new Promise((resolve) => setImmediate(resolve)))
      .then(() => server.close());
  };
  stdin.once('end', end);
  stdin.once('close', end);
  await closed;
}
