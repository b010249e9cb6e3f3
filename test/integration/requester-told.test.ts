/**
 * The requester told, against the real service (Temporal dev server, worker, simulator): each
 * outcome of a plan that asked for approval (approved, rejected with its comment, expired,
 * succeeded, failed) reaches the notification webhooks once, with the same X-PA-Delivery on every
 * retry, and rewrites the Slack message the bot posted (chat.update on its channel and ts), whichever
 * channel the decision came from: Teams, the signed webhook or Slack itself. A loopback server plays
 * the Slack Web API, the response_url and the webhooks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackSignature, teamsSignature, webhookSignature } from '../../src/channels/signing.js';
import { encodeButtonValue } from '../../src/channels/slack.js';
import { startTestServer, type RecordedRequest, type TestServer } from '../proxmox/helpers/http-server.js';
import { slackClickBody } from '../channels/helpers/fixtures.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';

const SLACK_SECRET = 'it-told-slack-signing';
const BOT_TOKEN = 'xoxb-it-told-bot-token';
const OPSBOT_SECRET = 'it-told-opsbot';
const NOTIFY_SECRET = 'it-told-notify';
const TEAMS_TOKEN = Buffer.from('it-told-teams-security-token').toString('base64');
const CAROL = '0c0a0f0e-1111-4222-8333-444455556666';

let t: TestService;
let hooks: TestServer;
/** Attempts per X-PA-Delivery on the JSON webhook, and how many of them it accepted. */
const attempts = new Map<string, number>();
const accepted = new Map<string, number>();
/** What the fake chat.postMessage answered, by the body it was given. */
const posts: { body: string; ts: string }[] = [];

beforeAll(async () => {
  hooks = await startTestServer((req, res, body) => {
    if (req.url === '/api/chat.postMessage') {
      const ts = `1700000000.${String(posts.length + 1).padStart(6, '0')}`;
      posts.push({ body, ts });
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ ok: true, channel: 'C0TOLD', ts }));
    }
    if (req.url === '/api/chat.update') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ ok: true, channel: 'C0TOLD', ts: JSON.parse(body).ts }));
    }
    if (req.url === '/notify/json') {
      // The first attempt of every delivery fails: the retry must carry the same id, and only it is taken.
      const id = String(req.headers['x-pa-delivery']);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      if (n === 1) {
        res.statusCode = 503;
        return res.end('try later');
      }
      accepted.set(id, (accepted.get(id) ?? 0) + 1);
    }
    res.end('ok');
  });
  process.env.PA_TOLD_SLACK_SECRET = SLACK_SECRET;
  process.env.PA_TOLD_BOT_TOKEN = BOT_TOKEN;
  process.env.PA_TOLD_OPSBOT_SECRET = OPSBOT_SECRET;
  process.env.PA_TOLD_NOTIFY_SECRET = NOTIFY_SECRET;
  process.env.PA_TOLD_TEAMS_TOKEN = TEAMS_TOKEN;
  t = await startTestService((config) => {
    config.channels = {
      slack: {
        signingSecret: { env: 'PA_TOLD_SLACK_SECRET' },
        users: { UALICE: { principal: 'human:alice', roles: [], environments: ['*'] } },
        responseUrlOrigins: [hooks.url],
        post: { botToken: { env: 'PA_TOLD_BOT_TOKEN' }, channel: 'C0TOLD', apiUrl: `${hooks.url}/api` },
      },
      webhooks: [{ id: 'opsbot', secret: { env: 'PA_TOLD_OPSBOT_SECRET' }, approvers: { bob: { principal: 'human:bob', roles: [], environments: ['*'] } } }],
      teams: { securityToken: { env: 'PA_TOLD_TEAMS_TOKEN' }, users: { [CAROL]: { principal: 'human:carol', roles: [], environments: ['*'] } } },
    };
    config.notifications = {
      webhooks: [
        { name: 'json', url: `${hooks.url}/notify/json`, format: 'json', secret: { env: 'PA_TOLD_NOTIFY_SECRET' } },
        { name: 'teams', url: `${hooks.url}/notify/teams`, format: 'teams' },
      ],
    };
    // Snapshots in lab need one approval here, from any channel.
    config.policy.rules.push({ id: 'it-told-review', match: { environments: ['lab'], actions: ['vm.snapshot.create'] }, decision: 'require_approval' });
  });
});

afterAll(async () => {
  await t?.stop();
  await hooks?.close();
});

const forPlan = (path: string, planId: string): RecordedRequest[] => hooks.requests.filter((r) => r.url === path && r.body.includes(planId));

async function plannedAndAsked(vmid: number, snapname: string) {
  const p = await t.call('POST', '/v1/actions/plan', {
    token: TOKENS.agent,
    body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname }, reason: `requester told (${snapname})` },
  });
  expect(p.status).toBe(201);
  expect(p.body).toMatchObject({ status: 'awaiting_approval', approval: { required: 1 } });
  const { planId, requestHash } = p.body as { planId: string; requestHash: string };
  // The bot posted the request; its ts is the message every outcome rewrites.
  const post = await until('the bot to post the approval request', () => forPlan('/api/chat.postMessage', planId)[0]);
  expect(post.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
  expect(JSON.parse(post.body)).toMatchObject({ channel: 'C0TOLD' });
  expect(forPlan('/api/chat.postMessage', planId)).toHaveLength(1);
  return { planId, requestHash, ts: posts.find((p) => p.body.includes(planId))!.ts };
}

const apply = (planId: string, requestHash: string) => t.call('POST', '/v1/actions/apply', { token: TOKENS.agent, body: { planId, requestHash } });

/** The run has ended: every outcome notification was awaited before it did. */
const finished = (planId: string) => t.service.client.workflow.getHandle(planId).result();

/** The JSON outcome notices for a plan, as accepted (each exactly once) and checked for their signature. */
function jsonEvents(planId: string): { event: string; doc: any; delivery: string }[] {
  const ok = forPlan('/notify/json', planId).filter((r) => accepted.has(String(r.headers['x-pa-delivery'])));
  const seen = new Map<string, RecordedRequest>();
  for (const r of ok) seen.set(String(r.headers['x-pa-delivery']), r);
  return [...seen.values()].map((r) => {
    expect(r.headers['x-pa-signature']).toBe(webhookSignature(NOTIFY_SECRET, String(r.headers['x-pa-timestamp']), r.body));
    const delivery = String(r.headers['x-pa-delivery']);
    expect(accepted.get(delivery)).toBe(1);
    expect(attempts.get(delivery)).toBe(2);
    return { event: String(r.headers['x-pa-event']), doc: JSON.parse(r.body), delivery };
  });
}

/** The chat.update calls on the plan's message, in order. */
function slackUpdates(ts: string): any[] {
  return hooks.requests
    .filter((r) => r.url === '/api/chat.update')
    .map((r) => ({ ...JSON.parse(r.body), auth: r.headers.authorization }))
    .filter((u) => u.ts === ts);
}
const footerOf = (update: any): string => JSON.stringify(update.blocks);

describe('the requester told, whichever channel decided', () => {
  it('approved from Teams, then succeeded: both on the webhooks once and on the Slack message', async () => {
    const { planId, requestHash, ts } = await plannedAndAsked(101, 'told-teams');
    expect((await apply(planId, requestHash)).status).toBe(202);
    const body = JSON.stringify({
      type: 'message',
      id: `told-${planId}`,
      timestamp: new Date().toISOString(),
      from: { id: '29:carol', name: 'Carol', aadObjectId: CAROL },
      text: `<at>proxmox-agent</at> approve ${planId} ${requestHash} change window ok`,
    });
    const teams = await t.call('POST', '/v1/channels/teams/messages', { body, headers: { 'content-type': 'application/json', authorization: teamsSignature(TEAMS_TOKEN, body) } });
    expect(teams.status).toBe(200);
    expect(teams.body.text).toMatch(/^human:carol approved plan_/);

    const done = await finished(planId);
    expect(done.status).toBe('succeeded');
    expect(t.sim('lab').model.snapshots(101)).toContain('told-teams');

    const events = jsonEvents(planId);
    expect(events.map((e) => e.event)).toEqual(['approval.requested', 'plan.approved', 'plan.succeeded']);
    expect(events.map((e) => e.delivery)).toEqual([`${planId}/approval.requested/0`, `${planId}/plan.approved/0`, `${planId}/plan.succeeded/0`]);
    expect(events[1]!.doc).toMatchObject({ status: 'approved', requester: { principal: 'agent:pi-demo' }, approvers: [{ principal: 'human:carol', channel: 'chat', comment: 'change window ok' }] });
    expect(events[2]!.doc).toMatchObject({ status: 'succeeded', result: { outcome: 'applied' } });

    const updates = slackUpdates(ts);
    expect(updates.map((u) => u.channel)).toEqual(['C0TOLD', 'C0TOLD']);
    expect(updates.every((u) => u.auth === `Bearer ${BOT_TOKEN}`)).toBe(true);
    expect(footerOf(updates[0])).toContain('Approved by human:carol via chat');
    expect(footerOf(updates[1])).toContain('Succeeded');
    // Decided: the buttons are gone from the message.
    expect(updates[1].blocks.some((b: { type: string }) => b.type === 'actions')).toBe(false);

    const card = forPlan('/notify/teams', planId).map((r) => [r.headers['x-pa-event'], JSON.parse(r.body).attachments[0].contentType]);
    expect(card).toEqual([
      ['approval.requested', 'application/vnd.microsoft.card.adaptive'],
      ['plan.approved', 'application/vnd.microsoft.card.adaptive'],
      ['plan.succeeded', 'application/vnd.microsoft.card.adaptive'],
    ]);
  });

  it('rejected with a comment from the signed webhook: the comment reaches the requester', async () => {
    const { planId, requestHash, ts } = await plannedAndAsked(101, 'told-reject');
    const before = t.sim('lab').mutations.all().length;
    const raw = JSON.stringify({ planId, requestHash, decision: 'reject', approver: 'bob', comment: 'not during the freeze', nonce: `told-reject-${Date.now()}` });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const res = await t.call('POST', '/v1/channels/webhook/approvals', { body: raw, headers: { 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(OPSBOT_SECRET, timestamp, raw) } });
    expect(res.status).toBe(202);

    expect((await finished(planId)).status).toBe('rejected');
    const events = jsonEvents(planId);
    expect(events.map((e) => e.event)).toEqual(['approval.requested', 'plan.rejected']);
    expect(events[1]!.doc).toMatchObject({ status: 'rejected', rejectedBy: { principal: 'human:bob', channel: 'chat', comment: 'not during the freeze' } });
    const updates = slackUpdates(ts);
    expect(updates).toHaveLength(1);
    expect(footerOf(updates[0])).toContain('Rejected by human:bob via chat: \\"not during the freeze\\"');
    expect(t.sim('lab').mutations.all().length).toBe(before);
  });

  it('expired without its approvals: told as expired', async () => {
    const ttl = t.config.policy.planTtlSeconds;
    t.config.policy.planTtlSeconds = 3;
    let asked: Awaited<ReturnType<typeof plannedAndAsked>>;
    try {
      asked = await plannedAndAsked(101, 'told-expire');
    } finally {
      t.config.policy.planTtlSeconds = ttl;
    }
    expect((await finished(asked.planId)).status).toBe('expired');
    expect(jsonEvents(asked.planId).map((e) => e.event)).toEqual(['approval.requested', 'plan.expired']);
    const updates = slackUpdates(asked.ts);
    expect(updates).toHaveLength(1);
    expect(footerOf(updates[0])).toContain('Expired at');
  });

  it('two plans on one VM decided at once, through REST and Teams: each message and each notice tells its own outcome', async () => {
    const [a, b] = await Promise.all([plannedAndAsked(101, 'told-rest'), plannedAndAsked(101, 'told-teams-reject')]);
    expect(a.ts).not.toBe(b.ts);
    expect((await apply(a.planId, a.requestHash)).status).toBe(202);
    const body = JSON.stringify({
      type: 'message',
      id: `told-${b.planId}`,
      timestamp: new Date().toISOString(),
      from: { id: '29:carol', name: 'Carol', aadObjectId: CAROL },
      text: `<at>proxmox-agent</at> reject ${b.planId} ${b.requestHash} wrong VM`,
    });
    const [rest, teams] = await Promise.all([
      t.call('POST', `/v1/actions/${a.planId}/approvals`, { token: TOKENS.approver1, body: { decision: 'approve', comment: 'ok from the API' } }),
      t.call('POST', '/v1/channels/teams/messages', { body, headers: { 'content-type': 'application/json', authorization: teamsSignature(TEAMS_TOKEN, body) } }),
    ]);
    expect([rest.status, teams.status]).toEqual([202, 200]);

    const [doneA, doneB] = await Promise.all([finished(a.planId), finished(b.planId)]);
    expect([doneA.status, doneB.status]).toEqual(['succeeded', 'rejected']);
    expect(jsonEvents(a.planId).map((e) => e.event)).toEqual(['approval.requested', 'plan.approved', 'plan.succeeded']);
    expect(jsonEvents(b.planId).map((e) => e.event)).toEqual(['approval.requested', 'plan.rejected']);
    expect(slackUpdates(a.ts).map(footerOf)).toEqual([expect.stringContaining('Approved by human:alice via api'), expect.stringContaining('Succeeded')]);
    expect(slackUpdates(b.ts).map(footerOf)).toEqual([expect.stringContaining('Rejected by human:carol via chat: \\"wrong VM\\"')]);
    expect(t.sim('lab').model.snapshots(101)).toContain('told-rest');
    expect(t.sim('lab').model.snapshots(101)).not.toContain('told-teams-reject');
  });

  it('approved from Slack, then failed on Proxmox: told both, the message rewritten by the bot as well as through response_url', async () => {
    t.sim('lab').faults.failTasks('snapshot storage on fire', { path: '/nodes/*/qemu/100/snapshot' });
    const { planId, requestHash, ts } = await plannedAndAsked(100, 'told-fail');
    expect((await apply(planId, requestHash)).status).toBe(202);
    const click = slackClickBody({ userId: 'UALICE', actionId: 'approve', value: encodeButtonValue(planId, requestHash), responseUrl: `${hooks.url}/slack/response/told` });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const res = await t.call('POST', '/v1/channels/slack/interactions', {
      body: click,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': timestamp, 'x-slack-signature': slackSignature(SLACK_SECRET, timestamp, click) },
    });
    expect(res.status).toBe(200);

    const done = await finished(planId);
    expect(done.status).toBe('failed');
    const events = jsonEvents(planId);
    expect(events.map((e) => e.event)).toEqual(['approval.requested', 'plan.approved', 'plan.failed']);
    expect(events[2]!.doc).toMatchObject({ status: 'failed', result: { outcome: 'failed' } });
    const updates = slackUpdates(ts);
    expect(footerOf(updates[0])).toContain('Approved by human:alice via chat');
    expect(footerOf(updates.at(-1))).toContain('Failed');
    expect(hooks.requests.filter((r) => r.url === '/slack/response/told').map((r) => JSON.parse(r.body).replace_original)).toEqual([true]);
  });
});
