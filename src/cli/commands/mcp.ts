/**
 * `proxmox-agent mcp`: serve the agent tools to an MCP client over stdio (docs/mcp.md).
 *
 *   PROXMOX_AGENT_URL=https://… PROXMOX_AGENT_TOKEN_FILE=~/.config/proxmox-agent/token proxmox-agent mcp
 *
 * The token comes from a file (`--token-file` or PROXMOX_AGENT_TOKEN_FILE) or PROXMOX_AGENT_TOKEN,
 * never from an argument. Only MCP messages go to stdout; warnings go to stderr.
 */
import type { Command } from 'commander';
import { serveStdio } from '../../mcp/stdio.js';
import { client, run, withConnectionOptions } from '../connection.js';

export function register(program: Command): void {
  withConnectionOptions(
    program
      .command('mcp')
      .description('Serve the proxmox-agent tools (plan, apply, follow; no approve) to an MCP client over stdio')
      .addHelpText('after', '\nThe token: --token-file <path>, PROXMOX_AGENT_TOKEN_FILE, or PROXMOX_AGENT_TOKEN. Configure your MCP client to run this command (docs/mcp.md).'),
  ).action((_opts: unknown, cmd: Command) => run(() => serveStdio(client(cmd, 'api'))));
}
