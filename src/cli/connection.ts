/**
 * What every API command of the CLI shares: the connection (`--url` or PROXMOX_AGENT_URL; the token
 * from `--token-file`, PROXMOX_AGENT_TOKEN_FILE or PROXMOX_AGENT_TOKEN, deliberately never a `--token`
 * flag: arguments leak into shell history and `ps`), and turning failures into a message on stderr and
 * an exit code.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { ApiProblemError, ApiUnreachableError, createApiClient, DEFAULT_API_URL, type ApiClient } from '../client/index.js';

/** Exit codes shared by the API commands: 1 the API refused or could not be reached, 2 usage. */
export const EXIT_API = 1;
export const EXIT_USAGE = 2;

export class CliExit extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface ConnectionOptions {
  url?: string;
  tokenFile?: string;
}

/** Adds `--url` and `--token-file` to a command. */
export function withConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `API base URL (env PROXMOX_AGENT_URL, default ${DEFAULT_API_URL})`)
    .option('--token-file <path>', 'read the API token from this file (else env PROXMOX_AGENT_TOKEN_FILE, else PROXMOX_AGENT_TOKEN)');
}

export function client(cmd: Command, channel: 'api' | 'cli' = 'cli'): ApiClient {
  const opts = cmd.optsWithGlobals<ConnectionOptions>();
  const baseUrl = opts.url ?? process.env.PROXMOX_AGENT_URL ?? DEFAULT_API_URL;
  try {
    return createApiClient({
      baseUrl,
      token: readToken(opts.tokenFile ?? (process.env.PROXMOX_AGENT_TOKEN_FILE || undefined)),
      channel,
      onDeprecation: (n) => console.error(`proxmox-agent: warning: ${n.method} ${n.path} is deprecated${n.sunset ? ` and may be removed after ${n.sunset}` : ''}${n.link ? ` (${n.link})` : ''}`),
    });
  } catch (err) {
    if (err instanceof CliExit) throw err;
    throw new CliExit(`invalid API URL '${baseUrl}': ${(err as Error).message}`, EXIT_USAGE);
  }
}

export function readToken(file: string | undefined): string {
  if (file) {
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
      const mode = statSync(file).mode;
      if (process.platform !== 'win32' && mode & 0o077)
        console.error(`proxmox-agent: warning: ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
    } catch (err) {
      throw new CliExit(`cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT_USAGE);
    }
    if (!token) throw new CliExit(`token file ${file} is empty`, EXIT_USAGE);
    return token;
  }
  const token = process.env.PROXMOX_AGENT_TOKEN?.trim();
  if (!token) throw new CliExit('no API token: pass --token-file <path>, or set PROXMOX_AGENT_TOKEN_FILE or PROXMOX_AGENT_TOKEN', EXIT_USAGE);
  return token;
}

/** Runs an action and turns its failure into a message on stderr and an exit code. */
export async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof CliExit) {
      console.error(`proxmox-agent: ${err.message}`);
      process.exitCode = err.exitCode;
    } else if (err instanceof ApiProblemError) {
      console.error(`proxmox-agent: ${err.title}: ${err.detail ?? ''} (${err.type}, HTTP ${err.status})`);
      for (const e of err.errors ?? []) console.error(`  - ${e.path}: ${e.message}`);
      process.exitCode = EXIT_API;
    } else if (err instanceof ApiUnreachableError) {
      console.error(`proxmox-agent: ${err.message}`);
      process.exitCode = EXIT_API;
    } else {
      throw err;
    }
  }
}
