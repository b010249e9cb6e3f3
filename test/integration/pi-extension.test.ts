/**
 * The pi extension, loaded by the real pi (`@mariozechner/pi-coding-agent` 0.73): a project whose
 * `.pi/settings.json` lists integrations/pi as a local pi package, a real AgentSession with pi's own
 * loader, tool wrapping, `tool_call` hooks and bash tool, and pi-ai's faux model provider standing in
 * for the LLM (a scripted sequence of tool calls). Against the running service it plans a prod
 * delete, applies it, is blocked when it tries `qm destroy`, cannot see the token from its shell,
 * waits for two human approvals made over the API, and reports the outcome.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fauxAssistantMessage, fauxText, fauxToolCall, registerFauxProvider, type FauxProviderRegistration } from '@mariozechner/pi-ai';
import {
  AuthStorage,
  createAgentSession,
  DefaultResourceLoader,
  ModelRegistry,
  SessionManager,
  SettingsManager,
  type AgentSession,
} from '@mariozechner/pi-coding-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const PACKAGE_DIR = fileURLToPath(new URL('../../integrations/pi', import.meta.url));

let t: TestService;
let faux: FauxProviderRegistration;
let session: AgentSession;
let loader: DefaultResourceLoader;
let planId = '';
let inventoryExists = false;

/** The text of the latest tool result, which is what the scripted model reads before its next call. */
function lastToolResult(context: { messages: unknown[] }): { text: string; isError: boolean; toolName: string } {
  const results = context.messages.filter((m) => (m as { role: string }).role === 'toolResult') as {
    content: { type: string; text?: string }[];
    isError: boolean;
    toolName: string;
  }[];
  const last = results.at(-1)!;
  return { text: last.content.map((c) => c.text ?? '').join('\n'), isError: last.isError, toolName: last.toolName };
}

function toolResults(): { toolName: string; text: string; isError: boolean }[] {
  return (session.messages as unknown as { role: string; toolName: string; isError: boolean; content: { text?: string }[] }[])
    .filter((m) => m.role === 'toolResult')
    .map((m) => ({ toolName: m.toolName, isError: m.isError, text: m.content.map((c) => c.text ?? '').join('\n') }));
}

beforeAll(async () => {
  t = await startTestService();
  const doc = (await (await fetch(`${t.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
  inventoryExists = '/v1/inventory' in doc.paths;

  // A project that installs the package from its local path, as `pi install -l ./integrations/pi` would.
  const cwd = mkdtempSync(join(tmpdir(), 'pa-pi-project-'));
  const agentDir = mkdtempSync(join(tmpdir(), 'pa-pi-agent-'));
  mkdirSync(join(cwd, '.pi'));
  writeFileSync(join(cwd, '.pi', 'settings.json'), JSON.stringify({ packages: [PACKAGE_DIR] }));

  process.env.PROXMOX_AGENT_URL = t.url;
  process.env.PROXMOX_AGENT_TOKEN = TOKENS.agent;

  faux = registerFauxProvider();
  const authStorage = AuthStorage.inMemory();
  authStorage.setRuntimeApiKey(faux.getModel().provider, 'faux-key');
  const modelRegistry = ModelRegistry.inMemory(authStorage);
  const settingsManager = SettingsManager.create(cwd, agentDir);
  loader = new DefaultResourceLoader({ cwd, agentDir, settingsManager });
  await loader.reload();
  ({ session } = await createAgentSession({
    cwd,
    agentDir,
    model: faux.getModel(),
    thinkingLevel: 'off',
    authStorage,
    modelRegistry,
    resourceLoader: loader,
    settingsManager,
    sessionManager: SessionManager.inMemory(cwd),
  }));
}, 180_000);

afterAll(async () => {
  session?.dispose();
  faux?.unregister();
  await t?.stop();
});

describe('the pi extension in a real pi session', () => {
  it('loads from the package (pi key): five proxmox tools, no approve tool, the skill, and the env hidden', () => {
    const { extensions, errors } = loader.getExtensions();
    expect(errors).toEqual([]);
    expect(extensions.map((e) => e.path).some((p) => p.startsWith(PACKAGE_DIR))).toBe(true);
    const tools = session.getAllTools().map((tool) => tool.name);
    expect(tools.filter((n) => n.startsWith('proxmox_')).sort()).toEqual(['proxmox_action_status', 'proxmox_apply_action', 'proxmox_catalog', 'proxmox_inventory', 'proxmox_plan_action']);
    expect(tools.filter((n) => /approv/i.test(n))).toEqual([]);
    expect(session.getActiveToolNames()).toEqual(expect.arrayContaining(['bash', 'proxmox_plan_action']));
    expect(loader.getSkills().skills.map((s) => s.name)).toContain('proxmox-agent');
    expect(process.env.PROXMOX_AGENT_TOKEN).toBeUndefined();
    expect(process.env.PROXMOX_AGENT_URL).toBeUndefined();
  });

  it('plans and applies a prod delete, is blocked from qm, cannot read the token, and waits for approval', async () => {
    faux.setResponses([
      fauxAssistantMessage(fauxToolCall('proxmox_catalog', { action: 'vm.delete' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxToolCall('proxmox_inventory', { environment: 'prod' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(
        fauxToolCall('proxmox_plan_action', { action: 'vm.delete', environment: 'prod', vmid: 201, params: { purge: true }, reason: 'Decommission db-prod (CHG-42), from pi' }),
        { stopReason: 'toolUse' },
      ),
      (context) => {
        planId = /plan (plan_[0-9A-Z]{26})/.exec(lastToolResult(context).text)![1]!;
        return fauxAssistantMessage(fauxToolCall('proxmox_apply_action', { planId }), { stopReason: 'toolUse' });
      },
      // An impatient agent tries to go around the gate, and to read the service token.
      fauxAssistantMessage(fauxToolCall('bash', { command: 'sudo qm destroy 201 --purge' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxToolCall('bash', { command: 'curl -sk https://pve-prod:8006/api2/json/nodes' }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxToolCall('bash', { command: 'echo "token=[$PROXMOX_AGENT_TOKEN] url=[$PROXMOX_AGENT_URL]"' }), { stopReason: 'toolUse' }),
      () => fauxAssistantMessage(fauxToolCall('proxmox_action_status', { planId, waitSeconds: 1 }), { stopReason: 'toolUse' }),
      fauxAssistantMessage(fauxText('The delete waits for 2 approvals.')),
    ]);
    await session.prompt('Delete db-prod (vmid 201) in prod, ticket CHG-42.');
    expect(faux.getPendingResponseCount()).toBe(0);

    const results = toolResults();
    const byTool = (name: string) => results.filter((r) => r.toolName === name);
    expect(byTool('proxmox_catalog')[0]).toMatchObject({ isError: false, text: expect.stringContaining('vm.delete (qemu)') });
    const inventory = byTool('proxmox_inventory')[0]!;
    expect(inventoryExists).toBe(true);
    expect(inventory).toMatchObject({ isError: false, text: expect.stringContaining('201') });

    const planned = byTool('proxmox_plan_action')[0]!;
    expect(planned.isError).toBe(false);
    expect(planned.text).toContain('decision requires_approval');
    expect(planned.text).toMatch(/next: needs approval\. Call proxmox_apply_action/);
    expect(planned.text).toContain('Do not re-plan or retry; you cannot approve.');

    const applied = byTool('proxmox_apply_action')[0]!;
    expect(applied).toMatchObject({ isError: false, text: expect.stringContaining('status: awaiting_approval') });
    expect(applied.text).toContain(`proxmox-agent approvals approve ${planId}`);

    const [qm, curl, echo] = byTool('bash');
    expect(qm).toMatchObject({ isError: true, text: expect.stringMatching(/Blocked by the proxmox-agent extension.*runs qm/s) });
    expect(curl).toMatchObject({ isError: true, text: expect.stringMatching(/curl to the Proxmox API/) });
    expect(echo).toMatchObject({ isError: false, text: expect.stringContaining('token=[] url=[]') });

    expect(byTool('proxmox_action_status')[0]!.text).toContain('status: awaiting_approval');
    expect(t.sim('prod').model.guest(201)).toBeDefined();
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(0);
  });

  it('reports success once two people approve', async () => {
    for (const token of [TOKENS.approver1, TOKENS.approver2]) {
      const res = await t.call('POST', `/v1/actions/${planId}/approvals`, { token, body: { decision: 'approve', comment: 'CHG-42 ok' } });
      expect(res.status).toBe(202);
    }
    // Poll again until final, as the skill says.
    const poll = (context: { messages: unknown[] }) =>
      /status: (succeeded|failed|rejected|expired|denied)/.test(lastToolResult(context).text)
        ? fauxAssistantMessage(fauxText('Deleted.'))
        : fauxAssistantMessage(fauxToolCall('proxmox_action_status', { planId, waitSeconds: 30 }), { stopReason: 'toolUse' });
    faux.setResponses([fauxAssistantMessage(fauxToolCall('proxmox_action_status', { planId, waitSeconds: 30 }), { stopReason: 'toolUse' }), poll, poll, poll, poll]);
    await session.prompt('Is it done?');
    const statuses = toolResults().filter((r) => r.toolName === 'proxmox_action_status');
    const final = statuses.at(-1)!;
    expect(final.text).toContain('status: succeeded');
    expect(final.text).toMatch(/result: applied task UPID:pve-prod:/);
    expect(final.text).toContain('next: done: report the outcome to the user.');
    expect(t.sim('prod').model.guest(201)).toBeUndefined();
    expect(t.sim('prod').mutations.countFor(201, 'destroy')).toBe(1);
  });
});
