/**
 * Approval channels against the real service (Temporal dev server, worker, simulator): the notifier
 * posting each approval request (with a retry), a Slack click and a signed-webhook approval from two
 * people, the step-up rule of the default policy holding until a CLI approval arrives, and the CLI
 * itself, spawned as a user would run it. A loopback HTTP server plays Slack's response_url and the
 * notification webhooks.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackSignature, webhookSignature } from '../../src/channels/signing.js';
import { startTestServer, type RecordedRequest, type TestServer } from '../proxmox/helpers/http-server.js';
import { slackClickBody } from '../channels/helpers/fixtures.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { scheduledActivities, untilRecorded } from './support/run-progress.js';
import { until } from './support/until.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SLACK_SECRET = 'it-slack-signing-secret';
const BOT_SECRET = 'it-opsbot-secret';
const NOTIFY_SECRET = 'it-notify-secret';

let t: TestService;
let hooks: TestServer;
let tokenFile: string;
const failedOnce = new Set<string>();

beforeAll(async () => {
  hooks = await startTestServer((req, res) => {
    // The JSON webhook fails the first delivery of each approval request, to exercise the retry.
    const delivery = String(req.headers['x-pa-delivery'] ?? '');
    if (req.url === '/notify/json' && !failedOnce.has(delivery)) {
      failedOnce.add(delivery);
      res.statusCode = 503;
      return res.end('try later');
    }
    res.end('ok');
  });
  process.env.PA_IT_SLACK_SECRET = SLACK_SECRET;
  process.env.PA_IT_BOT_SECRET = BOT_SECRET;
  process.env.PA_IT_NOTIFY_SECRET = NOTIFY_SECRET;
  t = await startTestService((config) => {
    config.channels = {
      slack: {
        signingSecret: { env: 'PA_IT_SLACK_SECRET' },
        users: {
          UALICE: { principal: 'human:alice', roles: ['sre'], environments: ['*'] },
          UAGENT: { principal: 'agent:pi-demo', roles: [], environments: ['*'] },
        },
        responseUrlOrigins: [hooks.url],
      },
      webhooks: [{ id: 'opsbot', secret: { env: 'PA_IT_BOT_SECRET' }, approvers: { bob: { principal: 'human:bob', roles: ['sre', 'dba'], environments: ['*'] } } }],
    };
    config.notifications = {
      webhooks: [
        { name: 'slack', url: `${hooks.url}/notify/slack`, format: 'slack' },
        { name: 'json', url: `${hooks.url}/notify/json`, format: 'json', secret: { env: 'PA_IT_NOTIFY_SECRET' } },
      ],
    };
  });
  tokenFile = join(mkdtempSync(join(tmpdir(), 'pa-it-cli-')), 'token');
  writeFileSync(tokenFile, `${TOKENS.ops}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await t?.stop();
  await hooks?.close();
});


const hits = (path: string, planId?: string): RecordedRequest[] =>
  hooks.requests.filter((r) => r.url === path && (!planId || r.body.includes(planId)));

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/proxmox-agent.mjs', ...args], {
      cwd: ROOT,
      env: { ...process.env, PROXMOX_AGENT_TOKEN: undefined, PROXMOX_AGENT_URL: t.url, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function slackClick(opts: { userId: string; value: string; responseUrl: string; actionId?: string; timestamp?: string; secret?: string }) {
  const body = slackClickBody({ userId: opts.userId, actionId: opts.actionId ?? 'approve', value: opts.value, responseUrl: opts.responseUrl });
  const timestamp = opts.timestamp ?? String(Math.floor(Date.now() / 1000));
  return t.call('POST', '/v1/channels/slack/interactions', {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': slackSignature(opts.secret ?? SLACK_SECRET, timestamp, body),
    },
  });
}

function webhookApproval(body: object, opts: { timestamp?: string; secret?: string } = {}) {
  const raw = JSON.stringify(body);
  const timestamp = opts.timestamp ?? String(Math.floor(Date.now() / 1000));
  return t.call('POST', '/v1/channels/webhook/approvals', {
    body: raw,
    headers: { 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(opts.secret ?? BOT_SECRET, timestamp, raw) },
  });
}

describe('approval channels end to end', () => {
  let plan: { planId: string; requestHash: string };
  let buttonValue: string;

  it('posts the approval request once to each webhook, retrying the one that failed', async () => {
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'decommission db-prod (CHG-77)' },
    });
    expect(p.status).toBe(201);
    expect(p.body).toMatchObject({ risk: 'critical', status: 'awaiting_approval' });
    plan = p.body;
    // Apply now: the run executes as soon as the approvals are complete.
    expect((await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: plan.planId, requestHash: plan.requestHash } })).status).toBe(202);

    const json = await until('the JSON webhook to take the request', () => {
      const ok = hits('/notify/json', plan.planId);
      return ok.length >= 2 ? ok : undefined;
    });
    const slack = hits('/notify/slack', plan.planId);
    // The Slack target took it on the first attempt; the retry went only to the target that failed.
    expect(slack).toHaveLength(1);
    expect(json).toHaveLength(2);
    const delivered = json[1]!;
    expect(delivered.headers['x-pa-signature']).toBe(webhookSignature(NOTIFY_SECRET, String(delivered.headers['x-pa-timestamp']), delivered.body));
    const doc = JSON.parse(delivered.body);
    expect(doc).toMatchObject({ event: 'approval.requested', planId: plan.planId, requestHash: plan.requestHash, risk: 'critical', environment: 'prod' });
    expect(doc.links.api).toBe(`${t.url}/v1/actions/${plan.planId}`);
    expect(doc.preflight.summary).toContain("VM 201 'db-prod' on pve-prod: stopped");
    expect(doc.reasons.map((r: { rule: string }) => r.rule)).toContain('policy.prod-delete-step-up');

    const message = JSON.parse(slack[0]!.body);
    expect(message.text).toContain('vm.delete on prod/201');
    const buttons = message.blocks.find((b: { type: string }) => b.type === 'actions').elements;
    expect(buttons.map((b: { action_id: string }) => b.action_id)).toEqual(['approve', 'reject']);
    buttonValue = buttons[0].value;
    expect(buttonValue).toBe(`${plan.planId}|${plan.requestHash}`);
  });

  it('refuses Slack requests that are forged, stale or replayed, and users it does not know', async () => {
    const responseUrl = `${hooks.url}/slack/response/refusals`;
    const forged = await slackClick({ userId: 'UALICE', value: buttonValue, responseUrl, secret: 'guess' });
    expect(forged.status).toBe(401);
    const stale = await slackClick({ userId: 'UALICE', value: buttonValue, responseUrl, timestamp: String(Math.floor(Date.now() / 1000) - 600) });
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toMatch(/seconds old/);
    const offsite = await slackClick({ userId: 'UALICE', value: buttonValue, responseUrl: 'https://example.com/hook' });
    expect(offsite.status).toBe(400);

    const unknown = await slackClick({ userId: 'UMALLORY', value: buttonValue, responseUrl });
    expect(unknown.body).toBeUndefined();
    expect(unknown.status).toBe(200);
    const self = await slackClick({ userId: 'UAGENT', value: buttonValue, responseUrl, timestamp: String(Math.floor(Date.now() / 1000) - 1) });
    expect(self.status).toBe(200);
    const notes = await until('two ephemeral answers', () => {
      const h = hits('/slack/response/refusals');
      return h.length >= 2 ? h.map((r) => JSON.parse(r.body)) : undefined;
    });
    expect(notes.every((n) => n.response_type === 'ephemeral' && n.replace_original === false)).toBe(true);
    expect(notes.map((n) => n.text).sort()).toEqual([expect.stringMatching(/^Not recorded: agent:pi-demo requested plan/), expect.stringMatching(/UMALLORY is not mapped/)]);

    const view = (await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.agent })).body;
    expect(view.approval.approvers).toEqual([]);
  });

  it('records a Slack click as alice (chat) and updates the message', async () => {
    const responseUrl = `${hooks.url}/slack/response/alice`;
    const req = { userId: 'UALICE', value: buttonValue, responseUrl };
    const res = await slackClick(req);
    expect(res.status).toBe(200);
    const update = await until('the message update', () => hits('/slack/response/alice')[0]);
    const body = JSON.parse(update.body);
    expect(body.replace_original).toBe(true);
    expect(JSON.stringify(body)).toContain('human:alice approved; still needed');
    // Still open: the buttons stay for the next approver.
    expect(body.blocks.some((b: { type: string }) => b.type === 'actions')).toBe(true);

    const view = (await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.agent })).body;
    expect(view.approval.approvers).toMatchObject([{ principal: 'human:alice', tokenId: 'slack:UALICE', channel: 'chat' }]);
  });

  it('refuses a replayed Slack request', async () => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const req = { userId: 'UALICE', value: buttonValue, responseUrl: `${hooks.url}/slack/response/replay`, timestamp };
    const first = await slackClick(req);
    expect(first.status).toBe(200); // alice again: refused as a duplicate, and told so
    const again = await slackClick(req);
    expect(again.status).toBe(409);
    expect(again.body.type).toBe('/problems/request-replayed');
  });

  it('records a signed webhook approval as bob (chat); forged, stale and replayed ones are refused', async () => {
    const approval = { planId: plan.planId, requestHash: plan.requestHash, decision: 'approve', approver: 'bob', nonce: 'it-nonce-0000000001', comment: 'CHG-77 ok' };
    expect((await webhookApproval(approval, { secret: 'guess' })).status).toBe(401);
    expect((await webhookApproval(approval, { timestamp: String(Math.floor(Date.now() / 1000) - 301) })).status).toBe(401);
    const ok = await webhookApproval(approval);
    expect(ok.status).toBe(202);
    expect(ok.body.approval.received).toBe(2);
    const replay = await webhookApproval(approval);
    expect(replay.status).toBe(409);
    expect(replay.body.type).toBe('/problems/request-replayed');
    const unknown = await webhookApproval({ ...approval, approver: 'mallory', nonce: 'it-nonce-0000000002' });
    expect(unknown.status).toBe(403);
  });

  it('holds the prod delete: two chat approvals do not meet the step-up rule', async () => {
    // Both chat approvals written by the run as it went back to waiting.
    await untilRecorded(t, plan.planId, 'approval.granted', 2);
    const view = (await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.agent })).body;
    expect(view.status).toBe('awaiting_approval');
    expect(view.approval.requirements.find((r: { id: string }) => r.id === 'policy.prod-delete-step-up')).toMatchObject({ channels: ['api', 'cli'], received: 0 });
    expect(t.sim('prod').model.guest(201)).toBeDefined();
  });

  it('lists the plan for approvers in its environment only', async () => {
    const listed = await until('the plan in GET /v1/approvals', async () => {
      const res = await t.call('GET', '/v1/approvals?status=pending', { token: TOKENS.approver1 });
      return res.body.items?.find((i: { planId: string }) => i.planId === plan.planId);
    });
    expect(listed).toMatchObject({ action: 'vm.delete', environment: 'prod', risk: 'critical', status: 'awaiting_approval', approval: { received: 2 } });
    const labOnly = await t.call('GET', '/v1/approvals', { token: TOKENS.labOnly });
    expect(labOnly.status).toBe(200);
    expect(labOnly.body.items.some((i: { planId: string }) => i.planId === plan.planId)).toBe(false);
    expect((await t.call('GET', '/v1/approvals')).status).toBe(401);
  });

  it('CLI: list and show print the plan an approver must read', async () => {
    const list = await cli(['approvals', 'list', '--token-file', tokenFile]);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^PLAN\s+ACTION\s+TARGET\s+RISK/);
    expect(list.stdout).toMatch(new RegExp(`${plan.planId}\\s+vm\\.delete\\s+prod/201\\s+critical\\s+2/2\\+`));

    const show = await cli(['approvals', 'show', plan.planId, '--token-file', tokenFile]);
    expect(show.code).toBe(0);
    for (const line of [
      /^Action\s+vm\.delete$/m,
      /^Environment\s+prod$/m,
      /^Target\s+vmid 201 on pve-prod \(db-prod\)$/m,
      /^Requester\s+agent:pi-demo \(token demo-agent, via api\)/m,
      /^Reason\s+decommission db-prod \(CHG-77\)$/m,
      /^Risk\s+critical$/m,
      /^Decision\s+requires_approval$/m,
      /^ {2}- policy\.prod-delete-step-up: /m,
      /^Approvals\s+2 so far \(human:alice via chat, human:bob via chat\); still needed: 1 more via api\/cli$/m,
      /^Preflight\s+VM 201 'db-prod' on pve-prod: stopped/m,
    ])
      expect(show.stdout).toMatch(line);
  });

  it('CLI: refuses to prompt without a terminal, and needs a token', async () => {
    const noTty = await cli(['approvals', 'approve', plan.planId, '--token-file', tokenFile]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/refusing to prompt: standard input is not a terminal/);
    const noToken = await cli(['approvals', 'list']);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/no API token/);
    const viaEnv = await cli(['approvals', 'show', 'plan_00000000000000000000000000'], { PROXMOX_AGENT_TOKEN: TOKENS.ops });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toMatch(/\/problems\/plan-not-found, HTTP 404/);
    const agent = await cli(['approvals', 'approve', plan.planId, '--yes'], { PROXMOX_AGENT_TOKEN: TOKENS.agent });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/lacks the 'approve' scope/);
    const view = (await t.call('GET', `/v1/actions/${plan.planId}`, { token: TOKENS.agent })).body;
    expect(view.approval.approvers).toHaveLength(2);
  });

  it('CLI: approve --yes records a cli approval, which meets the step-up; the VM is deleted', async () => {
    const res = await cli(['approvals', 'approve', plan.planId, '--yes', '-m', 'reviewed at the terminal', '--token-file', tokenFile]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^Plan\s+plan_/m);
    // The answer is the plan as the run recorded the approval: the quorum met, it may already be applying.
    expect(res.stdout).toMatch(new RegExp(`^Approved ${plan.planId}: status (approved|applying|succeeded); 3 approver\\(s\\) so far\\.$`, 'm'));
    const done = await t.waitForStatus(plan.planId, ['succeeded', 'failed'], 30_000);
    expect(done.status).toBe('succeeded');
    expect(done.approval.approvers.map((a: { principal: string; channel: string }) => `${a.principal}/${a.channel}`)).toEqual([
      'human:alice/chat',
      'human:bob/chat',
      'human:olivia/cli',
    ]);
    expect(done.approval.approvers[2].comment).toBe('reviewed at the terminal');
    expect(t.sim('prod').model.guest(201)).toBeUndefined();
    // A decided plan: the CLI says so and sends nothing.
    const late = await cli(['approvals', 'reject', plan.planId, '--yes', '--token-file', tokenFile]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/is succeeded: it takes no rejections/);
  });

  it('asks the approvers again when a stricter policy at apply needs approvals the plan did not', async () => {
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.shutdown', environment: 'lab', target: { vmid: 100 }, params: {}, reason: 'maintenance (CHG-78)' },
    });
    expect(p.body).toMatchObject({ status: 'planned', decision: 'allowed' });
    t.config.policy.rules.push({ id: 'lab-shutdown-review', match: { actions: ['vm.shutdown'] }, decision: 'require_approval' });
    try {
      const a = await t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId: p.body.planId, requestHash: p.body.requestHash } });
      expect(a.body.status).toBe('awaiting_approval');
      const slack = await until('the Slack webhook to take the request', () => {
        const got = hits('/notify/slack', p.body.planId);
        return got.length ? got : undefined;
      });
      expect(slack).toHaveLength(1);
      expect(slack[0]!.headers['x-pa-delivery']).toBe(`${p.body.planId}/approval.requested/0`);
      const json = await until('the JSON webhook to take it (after its one failure)', () => {
        const got = hits('/notify/json', p.body.planId);
        return got.length >= 2 ? got : undefined;
      });
      const doc = JSON.parse(json.at(-1)!.body);
      expect(doc).toMatchObject({ event: 'approval.requested', planId: p.body.planId });
      expect(doc.approval.requirements.map((r: { id: string }) => r.id)).toContain('policy.lab-shutdown-review');
    } finally {
      t.config.policy.rules.pop();
    }
    await t.call('POST', `/v1/actions/${p.body.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'reject' } });
  });

  it('notifies nobody about a plan that needs no approval', async () => {
    const p = await t.call('POST', '/v1/actions/plan', {
      token: TOKENS.agent,
      body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 101 }, params: { snapname: 'it-channels' }, reason: 'no approval needed' },
    });
    expect(p.body.status).toBe('planned');
    // A request to approvers is scheduled in the workflow task that made the plan, which completed
    // before the plan was answered: its history already says whether one was.
    const scheduled = await scheduledActivities(t, p.body.planId);
    expect(scheduled).not.toContain('notifyApprovers');
    expect(hooks.requests.filter((r) => r.body.includes(p.body.planId))).toEqual([]);
  });
});
