/**
 * Probe (guarantee 5): `proxmox-agent mcp` (stdio) never exposes its token: not in its argv (nor its
 * children's), not on stderr, not in a tool result, an error message or a resource read, whether the
 * token is good, refused, malformed, or the API is unreachable.
 */
import { readdirSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let t: TestService;
let dir: string;
beforeAll(async () => {
  t = await startTestService();
  dir = mkdtempSync(join(tmpdir(), 'pa-probe-stdio-'));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

/** Every process whose parent chain leads to pid, with its cmdline. */
function tree(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  const parents = new Map<number, number>();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parents.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const under = (p: number): boolean => p === pid || (parents.has(p) && p > 1 && under(parents.get(p)!));
  for (const p of parents.keys())
    if (under(p)) {
      try {
        out.push({ pid: p, cmdline: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') });
      } catch {
        /* gone */
      }
    }
  return out;
}

async function session(secret: string, opts: { url?: string; via?: 'file' | 'env' } = {}) {
  const file = join(dir, `tok-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', PROXMOX_AGENT_URL: opts.url ?? t.url };
  if (opts.via === 'env') env.PROXMOX_AGENT_TOKEN = secret;
  else env.PROXMOX_AGENT_TOKEN_FILE = file;
  const transport = new StdioClientTransport({ command: process.execPath, args: ['bin/proxmox-agent.mjs', 'mcp'], cwd: ROOT, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'probe-stdio', version: '0' });
  await client.connect(transport);
  return { client, transport, stderr: () => stderr };
}

/** Everything an MCP client and a human watching see from a session, as one string. */
async function exercise(client: Client): Promise<string> {
  const seen: unknown[] = [];
  const call = async (name: string, args: Record<string, unknown>) => seen.push(await client.callTool({ name, arguments: args }).catch((e: Error) => e.message));
  seen.push(client.getInstructions(), await client.listTools());
  await call('proxmox_catalog', {});
  await call('proxmox_inventory', { environment: 'lab' });
  await call('proxmox_inventory', { environment: 'nowhere' });
  await call('proxmox_plan_action', { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'stdio-probe' }, reason: 'probe' });
  await call('proxmox_plan_action', { action: 'vm.bogus', environment: 'lab', target: { vmid: 100 }, reason: 'probe' });
  await call('proxmox_apply_action', { planId: 'plan_00000000000000000000000000', requestHash: `sha256:${'0'.repeat(64)}` });
  await call('proxmox_action_status', { planId: 'plan_00000000000000000000000000', waitSeconds: 0 });
  for (const uri of ['proxmox-agent://catalog', 'proxmox-agent://policy/risk-matrix', 'proxmox-agent://plans/plan_00000000000000000000000000'])
    seen.push(await client.readResource({ uri }).catch((e: Error) => `${e.message} ${JSON.stringify((e as { data?: unknown }).data ?? null)}`));
  return JSON.stringify(seen);
}

describe('the stdio server keeps its token to itself', () => {
  const cases: [string, string, { url?: string; via?: 'file' | 'env' }][] = [
    ['a good token', TOKENS.agent, {}],
    ['a good token from PROXMOX_AGENT_TOKEN', TOKENS.agent, { via: 'env' }],
    ['an unknown token', 'probe-unknown-secret-4f1c9a', {}],
    ['a token with a space', 'probe-secret with-space-77aa', {}],
    ['a token with a non-Latin-1 character', 'probe-secret-€-9d2e', {}],
    ['a token with an embedded newline', 'probe-secret-line1\nprobe-secret-line2', {}],
    ['an unreachable API', TOKENS.agent, { url: 'http://127.0.0.1:1' }],
  ];
  for (const [name, secret, opts] of cases) {
    it(`with ${name}`, async () => {
      const s = await session(secret, opts);
      const parts = secret.split(/\s+/).filter((p) => p.length >= 8);
      const procs = tree(s.transport.pid!);
      expect(procs.length).toBeGreaterThan(0);
      const seen = await exercise(s.client);
      await s.client.close();
      await new Promise((r) => setTimeout(r, 200));
      for (const needle of [secret, ...parts]) {
        for (const p of procs) expect(p.cmdline, `argv of pid ${p.pid}`).not.toContain(needle);
        expect(seen, 'what the MCP client saw').not.toContain(needle);
        expect(seen, 'what the MCP client saw (JSON-escaped)').not.toContain(JSON.stringify(needle).slice(1, -1));
        expect(s.stderr(), 'stderr').not.toContain(needle);
      }
    }, 60_000);
  }
});
