/**
 * The MCP server against the running service (Temporal dev server, worker, simulator), driven by MCP
 * clients no one here wrote: the official SDK's client over Streamable HTTP (/mcp) and over stdio
 * (`proxmox-agent mcp`, spawned as an MCP client spawns it), and the MCP Inspector's CLI
 * (@modelcontextprotocol/inspector-cli) as a subprocess over both transports.
 *
 * The done-when of issue 14: an MCP client plans, applies and follows a critical prod action that two
 * people approve, one over REST and one with the CLI; it sees the approvals arrive as progress
 * notifications and resource updates, and the run deletes the guest once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION, ResourceUpdatedNotificationSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSPECTOR = join(ROOT, 'node_modules/@modelcontextprotocol/inspector-cli/build/cli.js');

let t: TestService;
let dir: string;
/** Token files, as an MCP client config would name them: the secret is never an argument. */
const tokenFile = (name: string, secret: string) => {
  const file = join(dir, name);
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
};

beforeAll(async () => {
  t = await startTestService();
  dir = mkdtempSync(join(tmpdir(), 'pa-it-mcp-'));
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

type Structured = Record<string, any>;
const data = (res: Awaited<ReturnType<Client['callTool']>>) => {
  expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
  return res.structuredContent as Structured;
};

async function httpClient(token: string): Promise<Client> {
  const client = new Client({ name: 'it-mcp', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** A subprocess to its end: exit code, stdout, stderr. */
function run(command: string, args: string[], env: Record<string, string | undefined> = {}, cwd = ROOT, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, PROXMOX_AGENT_TOKEN: undefined, PROXMOX_AGENT_TOKEN_FILE: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('an MCP client over Streamable HTTP (the SDK’s client)', () => {
  it('plans, applies and follows a critical prod delete that two people approve, over REST and with the CLI', async () => {
    const client = await httpClient(TOKENS.agent);
    expect(client.getServerVersion()?.name).toBe('proxmox-agent');
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });

    const plan = data(
      await client.callTool({
        name: 'proxmox_plan_action',
        arguments: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'Decommission db-prod (CHG-42), from an MCP client' },
      }),
    );
    expect(plan).toMatchObject({ risk: 'critical', decision: 'requires_approval', status: 'awaiting_approval', approval: { required: 2, received: 0 } });
    expect(plan.next).toMatchObject({ tool: 'proxmox_apply_action', arguments: { planId: plan.planId, requestHash: plan.requestHash } });
    expect(plan.next.tellUser).toContain(`proxmox-agent approvals approve ${plan.planId}`);
    const uri = `proxmox-agent://plans/${plan.planId}`;
    await client.subscribeResource({ uri });

    const applied = data(await client.callTool({ name: 'proxmox_apply_action', arguments: plan.next.arguments }));
    expect(applied).toMatchObject({ planId: plan.planId, status: 'awaiting_approval', plan: { applyRequested: true } });
    expect(applied.next).toMatchObject({ tool: 'proxmox_action_status', done: false });
    // Nothing has happened to the guest.
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(0);

    // Follow it to the end, with progress notifications, while two people approve.
    const progress: Progress[] = [];
    const following = client.callTool(
      { name: 'proxmox_action_status', arguments: { planId: plan.planId, until: 'end', waitSeconds: 60 } },
      undefined,
      { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true, timeout: 30_000, maxTotalTimeout: 90_000 },
    );
    const seen = async (pattern: RegExp) => {
      for (let i = 0; i < 300 && !progress.some((p) => pattern.test(p.message ?? '')); i++) await new Promise((r) => setTimeout(r, 100));
      expect(progress.map((p) => p.message)).toContainEqual(expect.stringMatching(pattern));
    };
    await seen(/awaiting_approval; 0 of 2 approvals; following/);

    const rest = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'CHG-42 ok', requestHash: plan.requestHash } });
    expect(rest.status, JSON.stringify(rest.body)).toBe(202);
    await seen(/awaiting_approval; 1 of 2 approvals \(human:alice via api\)/);

    const cli = await run(process.execPath, ['bin/proxmox-agent.mjs', 'approvals', 'approve', plan.planId, '-m', 'CHG-42 reviewed', '--yes', '--token-file', tokenFile('bob', TOKENS.approver2)], { PROXMOX_AGENT_URL: t.url });
    expect(cli.code, cli.stderr).toBe(0);

    const final = data(await following);
    expect(final).toMatchObject({ planId: plan.planId, status: 'succeeded', result: { outcome: 'applied', upid: expect.stringMatching(/^UPID:pve-prod:/) } });
    expect(final.approval.approvers.map((a: { principal: string; channel: string }) => `${a.principal}/${a.channel}`).sort()).toEqual(['human:alice/api', 'human:bob/cli']);
    expect(final.next).toEqual({ instruction: 'done: report the outcome to the user.', tellUser: expect.stringContaining(final.result.upid), done: true });
    // The changes arrived as progress, in order, with growing progress values. (Statuses the run
    // passes through between two reads, approved and applying here, may not be seen on their own.)
    const messages = progress.map((p) => p.message ?? '');
    const at = (re: RegExp) => messages.findIndex((m) => re.test(m));
    expect(at(/1 of 2 approvals/)).toBeGreaterThan(0);
    expect(at(/1 of 2 approvals/)).toBeLessThan(at(/: succeeded/));
    expect(messages.at(-1)).toMatch(new RegExp(`^${plan.planId}: succeeded; 2 of 2 approvals \\(.*\\); Proxmox task UPID:pve-prod:`));
    expect(progress.map((p) => p.progress)).toEqual([...progress.map((p) => p.progress)].sort((a, b) => a - b));
    // The subscription saw the approvals and the outcome too.
    for (let i = 0; i < 100 && updates.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(updates.length).toBeGreaterThanOrEqual(2);
    expect(new Set(updates)).toEqual(new Set([uri]));
    const resource = JSON.parse(((await client.readResource({ uri })).contents[0] as { text: string }).text);
    expect(resource.status).toBe('succeeded');

    expect(t.sim('prod').model.guest(201)).toBeUndefined();
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(1);
    await client.close();
  }, 120_000);

  it('negotiates the protocol versions the SDK supports', async () => {
    for (const version of [LATEST_PROTOCOL_VERSION, '2025-06-18', '2025-03-26', '2024-11-05']) {
      const res = await fetch(`${t.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS.agent}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'v', version: '0' } } }),
      });
      expect(res.status).toBe(200);
      const sessionId = res.headers.get('mcp-session-id')!;
      expect(await res.text()).toContain(`"protocolVersion":"${version}"`);
      const closed = await fetch(`${t.url}/mcp`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKENS.agent}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': version } });
      expect(closed.status).toBe(200);
    }
  });
});

describe('an MCP client over stdio: `proxmox-agent mcp` (the SDK’s client)', () => {
  it('serves the same tools from the REST API, reading its token from a file named in the environment', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['bin/proxmox-agent.mjs', 'mcp'],
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PROXMOX_AGENT_URL: t.url, PROXMOX_AGENT_TOKEN_FILE: tokenFile('agent', TOKENS.agent) },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const client = new Client({ name: 'it-mcp-stdio', version: '0' });
    await client.connect(transport);
    // The token is in no argument of the process.
    expect(readFileSync(`/proc/${transport.pid}/cmdline`, 'utf8')).not.toContain(TOKENS.agent);
    expect(client.getInstructions()).toMatch(/Never try to approve/);
    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    expect(tools).toEqual(['proxmox_action_status', 'proxmox_apply_action', 'proxmox_catalog', 'proxmox_inventory', 'proxmox_plan_action']);

    const inventory = data(await client.callTool({ name: 'proxmox_inventory', arguments: { environment: 'lab' } }));
    expect(inventory.guests.map((g: { vmid: number }) => g.vmid)).toEqual(expect.arrayContaining([100, 101, 300]));
    const plan = data(
      await client.callTool({ name: 'proxmox_plan_action', arguments: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: 'mcp-stdio' }, reason: 'from stdio' } }),
    );
    expect(plan).toMatchObject({ decision: 'allowed', status: 'planned', requester: { principal: 'agent:pi-demo' } });
    expect(data(await client.callTool({ name: 'proxmox_apply_action', arguments: plan.next.arguments })).status).toMatch(/^(approved|applying|succeeded)$/);
    const final = data(await client.callTool({ name: 'proxmox_action_status', arguments: { planId: plan.planId, until: 'end', waitSeconds: 30 } }));
    expect(final).toMatchObject({ status: 'succeeded', next: { done: true } });
    expect(t.sim('lab').model.guest(100)?.snapshots).toContain('mcp-stdio');

    // REST decides, as for any client: this token may not approve, and there is no tool to try.
    const risk = JSON.parse(((await client.readResource({ uri: 'proxmox-agent://policy/risk-matrix' })).contents[0] as { text: string }).text);
    expect(risk.environments.map((e: { environment: string }) => e.environment)).toEqual(['lab', 'prod']);
    await client.close();
    expect(stderr).toBe('');
  }, 60_000);

  it('refuses to start without a token, and says so on stderr (never on the protocol stream)', async () => {
    const res = await run(process.execPath, ['bin/proxmox-agent.mjs', 'mcp'], { PROXMOX_AGENT_URL: t.url });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/no API token: pass --token-file <path>, or set PROXMOX_AGENT_TOKEN_FILE or PROXMOX_AGENT_TOKEN/);
  });
});

describe('the MCP Inspector CLI (@modelcontextprotocol/inspector-cli)', () => {
  /** One inspector call; its stdout is the JSON result. */
  async function inspect(target: 'http' | 'stdio', args: string[]): Promise<any> {
    const via =
      target === 'http'
        ? [`${t.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${TOKENS.agent}`]
        : ['-e', `PROXMOX_AGENT_URL=${t.url}`, '-e', `PROXMOX_AGENT_TOKEN_FILE=${tokenFile('inspector', TOKENS.agent)}`, process.execPath, join(ROOT, 'bin/proxmox-agent.mjs'), 'mcp'];
    // Its build directory as cwd: inspector-cli 1.0.3 finds its own package.json relative to the cwd.
    const res = await run(process.execPath, [INSPECTOR, '--cli', ...via, ...args], {}, dirname(INSPECTOR));
    expect(res.code, `${res.stderr}\n${res.stdout}`).toBe(0);
    return JSON.parse(res.stdout);
  }
  const toolArgs = (args: Record<string, unknown>) => Object.entries(args).flatMap(([k, v]) => ['--tool-arg', `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`]);

  it('lists the tools over HTTP and over stdio, with their annotations and no approve tool', async () => {
    for (const target of ['http', 'stdio'] as const) {
      const { tools } = await inspect(target, ['--method', 'tools/list']);
      expect(tools.map((tool: { name: string }) => tool.name).sort(), target).toEqual(['proxmox_action_status', 'proxmox_apply_action', 'proxmox_catalog', 'proxmox_inventory', 'proxmox_plan_action']);
      expect(tools.find((tool: { name: string }) => tool.name === 'proxmox_apply_action').annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
    }
  }, 90_000);

  it('plans, applies and follows a critical prod container delete that two people approve', async () => {
    // Stop cache-prod first (a real task on the simulator): a running container cannot be deleted.
    const prod = t.service.environments.environments.get('prod')!.client;
    await prod.waitForTask('pve-prod', (await prod.request('POST', '/nodes/{node}/lxc/{vmid}/status/stop', { node: 'pve-prod', vmid: 400 })) as string);

    const call = async (target: 'http' | 'stdio', name: string, args: Record<string, unknown>) => {
      const res = await inspect(target, ['--method', 'tools/call', '--tool-name', name, ...toolArgs(args)]);
      expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
      return res.structuredContent as Structured;
    };
    const plan = await call('stdio', 'proxmox_plan_action', { action: 'ct.delete', environment: 'prod', target: { vmid: 400 }, params: { purge: true }, reason: 'Retire cache-prod (CHG-77), from the Inspector' });
    expect(plan).toMatchObject({ risk: 'critical', status: 'awaiting_approval', approval: { required: 2 } });
    expect(await call('http', 'proxmox_apply_action', { planId: plan.planId, requestHash: plan.requestHash })).toMatchObject({ status: 'awaiting_approval' });
    const waiting = await call('http', 'proxmox_action_status', { planId: plan.planId, waitSeconds: 0 });
    expect(waiting).toMatchObject({ status: 'awaiting_approval', next: { tool: 'proxmox_action_status' } });

    for (const [token, channel] of [[TOKENS.approver1, 'api'], [TOKENS.approver2, 'cli']] as const) {
      const res = await t.call('POST', `/v1/actions/${plan.planId}/approvals`, { token, headers: { 'x-proxmox-agent-channel': channel }, body: { decision: 'approve', requestHash: plan.requestHash } });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    }
    const final = await call('stdio', 'proxmox_action_status', { planId: plan.planId, until: 'end', waitSeconds: 30 });
    expect(final).toMatchObject({ status: 'succeeded', result: { outcome: 'applied' }, next: { done: true } });
    expect(t.sim('prod').model.guest(400)).toBeUndefined();
    expect(t.sim('prod').mutations.countFor(400, 'destroy')).toBe(1);
  }, 120_000);
});
