/**
 * The chat endpoints and the approval channel header, through the real Hono app with a fake plan
 * gateway: signature checks, replay protection, identity mapping, what is signalled and what Slack is told.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import type { Caller } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import { createNonceCache } from '../../src/channels/nonce-cache.js';
import type { ChannelSettings } from '../../src/channels/settings.js';
import { slackSignature, teamsSignature, webhookSignature } from '../../src/channels/signing.js';
import { encodeButtonValue } from '../../src/channels/slack.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import type { ApprovalArgs } from '../../src/workflows/messages.js';
import { pendingPlan, slackClickBody } from './helpers/fixtures.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const nowS = (offset = 0) => String(Math.floor(NOW / 1000) + offset);
const SLACK_SECRET = 'slack-signing-secret';
const BOT_SECRET = 'opsbot-secret';
const RESPONSE_URL = 'https://hooks.slack.com/actions/T1/42/abc';
const TEAMS_TOKEN = Buffer.from('teams-security-token').toString('base64');
const TEAMS_CAROL = '0c0a0f0e-1111-4222-8333-444455556666';
const TEAMS_AGENT = '0a9e0000-1111-4222-8333-444455556666';

let plan: PlanView;
let signals: (Omit<ApprovalArgs, 'requestHash'> & { requestHash?: string })[];
let responses: { url: string; message: any }[];
let app: ReturnType<typeof createApp>;
let deps: ApiDeps;

const settings: ChannelSettings = {
  slack: {
    signingSecret: SLACK_SECRET,
    users: new Map([
      ['UALICE', { principal: 'human:alice', roles: ['dba'], environments: ['*'] }],
      ['ULABONLY', { principal: 'human:larry', roles: [], environments: ['lab'] }],
      ['UAGENT', { principal: 'agent:pi-demo', roles: [], environments: ['*'] }],
    ]),
    responseUrlOrigins: ['https://hooks.slack.com'],
  },
  webhooks: [{ id: 'opsbot', secret: BOT_SECRET, approvers: new Map([['bob@example.com', { principal: 'human:bob', roles: [], environments: ['*'] }]]) }],
  teams: {
    securityToken: TEAMS_TOKEN,
    users: new Map([
      [TEAMS_CAROL, { principal: 'human:carol', roles: [], environments: ['*'] }],
      [TEAMS_AGENT, { principal: 'agent:pi-demo', roles: [], environments: ['*'] }],
    ]),
  },
};

beforeEach(() => {
  plan = pendingPlan();
  signals = [];
  responses = [];
  const plans = {
    state: async (planId: string) => {
      if (planId !== plan.planId) throw new ApiError('plan-not-found', `no plan ${planId}`);
      return structuredClone(plan);
    },
    approve: async (planId: string, args: Omit<ApprovalArgs, 'requestHash'> & { requestHash?: string }) => {
      if (args.principal === plan.requester.principal) throw new ApiError('self-approval', `${args.principal} requested plan ${planId} and cannot approve or reject it`, { planId });
      if (signals.some((s) => s.principal === args.principal)) throw new ApiError('approval-not-counted', `${args.principal} has already approved plan ${planId}; one identity counts once`);
      signals.push(args);
      const v = structuredClone(plan);
      v.approval.received = signals.length;
      return { view: v, recorded: true };
    },
  } as unknown as PlanGateway;
  // Allowed to approve as the CLI too (tokens[].channels); a token without cli is refused (test/api/hardening.test.ts).
  const approver: Caller = { tokenId: 'demo-approver-1', principal: 'human:alice', scopes: ['approve', 'read'], environments: ['*'], roles: [], channels: ['api', 'cli'] };
  deps = {
    plans,
    authenticate: (h) => {
      if (h !== 'Bearer approver') throw new ApiError('unauthenticated', 'send Authorization: Bearer <token>');
      return approver;
    },
    environments: new Set(['lab', 'prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('not used');
    },
    channels: {
      settings,
      nonces: createNonceCache({ now: () => NOW }),
      now: () => NOW,
      respond: async (url, message) => {
        responses.push({ url, message });
      },
    },
  };
  app = createApp(deps);
});

const json = async (res: Response): Promise<any> => res.json();
const flush = () => new Promise((r) => setTimeout(r, 0));

function slackRequest(opts: { userId?: string; actionId?: string; timestamp?: string; secret?: string; responseUrl?: string; value?: string } = {}) {
  const body = slackClickBody({
    userId: opts.userId ?? 'UALICE',
    actionId: opts.actionId ?? 'approve',
    value: opts.value ?? encodeButtonValue(plan.planId, plan.requestHash),
    responseUrl: opts.responseUrl ?? RESPONSE_URL,
  });
  const timestamp = opts.timestamp ?? nowS(-2);
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': slackSignature(opts.secret ?? SLACK_SECRET, timestamp, body),
    },
    body,
  };
}

describe('POST /v1/channels/slack/interactions', () => {
  const path = '/v1/channels/slack/interactions';

  it('records a mapped user’s click as a chat approval and updates the message', async () => {
    const res = await app.request(path, slackRequest());
    expect(res.status).toBe(200);
    expect(signals).toEqual([
      { principal: 'human:alice', tokenId: 'slack:UALICE', roles: ['dba'], channel: 'chat', decision: 'approve', requestHash: plan.requestHash },
    ]);
    await flush();
    expect(responses).toHaveLength(1);
    expect(responses[0]!.url).toBe(RESPONSE_URL);
    expect(responses[0]!.message.replace_original).toBe(true);
    expect(JSON.stringify(responses[0]!.message)).toContain('human:alice approved; still needed: 2 more');
  });

  it('records a reject', async () => {
    await app.request(path, slackRequest({ actionId: 'reject' }));
    expect(signals[0]).toMatchObject({ decision: 'reject', channel: 'chat' });
  });

  it('refuses a stale timestamp without acting', async () => {
    const res = await app.request(path, slackRequest({ timestamp: nowS(-301) }));
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await json(res)).detail).toMatch(/more than 300 seconds old/);
    expect(signals).toEqual([]);
  });

  it('refuses a forged signature, bearer token or not', async () => {
    const forged = slackRequest({ secret: 'guessed' });
    const res = await app.request(path, { ...forged, headers: { ...forged.headers, authorization: 'Bearer approver' } });
    expect(res.status).toBe(401);
    expect((await json(res)).detail).toBe('the signature does not match');
    const unsigned = await app.request(path, { method: 'POST', body: 'payload=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(unsigned.status).toBe(401);
    expect(signals).toEqual([]);
  });

  it('refuses a replay of the same signed request', async () => {
    const req = slackRequest();
    expect((await app.request(path, req)).status).toBe(200);
    const again = await app.request(path, req);
    expect(again.status).toBe(409);
    expect((await json(again)).type).toBe('/problems/request-replayed');
    expect(signals).toHaveLength(1);
  });

  it('tells an unmapped user, ephemerally, and records nothing', async () => {
    const res = await app.request(path, slackRequest({ userId: 'UNOBODY' }));
    expect(res.status).toBe(200);
    await flush();
    expect(signals).toEqual([]);
    expect(responses[0]!.message).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(responses[0]!.message.text).toMatch(/UNOBODY is not mapped to an approver/);
  });

  it('answers a refusal (self-approval, duplicate, environment) ephemerally', async () => {
    await app.request(path, slackRequest({ userId: 'UAGENT' }));
    await app.request(path, slackRequest({ userId: 'ULABONLY', timestamp: nowS(-3) }));
    await app.request(path, slackRequest({ timestamp: nowS(-4) }));
    await app.request(path, slackRequest({ timestamp: nowS(-5) }));
    await flush();
    expect(responses.map((r) => [r.message.response_type, r.message.text])).toEqual([
      ['ephemeral', expect.stringMatching(/^Not recorded: agent:pi-demo requested plan .* cannot approve/)],
      ['ephemeral', "Not recorded: human:larry may not approve in environment 'prod'"],
      [undefined, expect.stringContaining('human:alice approved')],
      ['ephemeral', expect.stringMatching(/one identity counts once/)],
    ]);
  });

  it('never posts to a response_url outside the allowed origins, and records nothing', async () => {
    for (const responseUrl of ['https://evil.example/hook', 'http://127.0.0.1:8787/v1/actions/plan', 'http://169.254.169.254/']) {
      const res = await app.request(path, slackRequest({ responseUrl, timestamp: String(Number(nowS()) - responseUrl.length) }));
      expect(res.status).toBe(400);
      expect((await json(res)).detail).toMatch(/response_url is not on an allowed origin/);
    }
    await flush();
    expect(responses).toEqual([]);
    expect(signals).toEqual([]);
  });

  it('tells the user when the decision could not be recorded, and answers 5xx', async () => {
    const failing = createApp({
      ...deps,
      plans: {
        state: async () => {
          throw Object.assign(new Error('unavailable'), { name: 'ServiceError', code: 14 });
        },
      } as unknown as PlanGateway,
    });
    const res = await failing.request(path, slackRequest());
    expect(res.status).toBe(503);
    await flush();
    expect(responses[0]!.message).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/could not record your decision just now/) });
  });

  it('refuses payloads it does not understand', async () => {
    const res = await app.request(path, slackRequest({ value: 'plan_nope|sha256:1' }));
    expect(res.status).toBe(400);
  });
});

describe('POST /v1/channels/webhook/approvals', () => {
  const path = '/v1/channels/webhook/approvals';
  const body = (over: object = {}) =>
    JSON.stringify({ planId: plan.planId, requestHash: plan.requestHash, decision: 'approve', approver: 'bob@example.com', nonce: 'n-0123456789abcdef', comment: 'CHG-42 ok', ...over });
  const signed = (raw: string, opts: { secret?: string; timestamp?: string } = {}) => {
    const timestamp = opts.timestamp ?? nowS(-1);
    return {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pa-timestamp': timestamp, 'x-pa-signature': webhookSignature(opts.secret ?? BOT_SECRET, timestamp, raw) },
      body: raw,
    };
  };

  it('records a signed approval as the configured approver, channel chat', async () => {
    const res = await app.request(path, signed(body()));
    expect(res.status).toBe(202);
    expect(await json(res)).toMatchObject({ planId: plan.planId, status: 'awaiting_approval', approval: { required: 2, received: 1 } });
    expect(signals).toEqual([
      { principal: 'human:bob', tokenId: 'webhook:opsbot', roles: [], channel: 'chat', decision: 'approve', requestHash: plan.requestHash, comment: 'CHG-42 ok' },
    ]);
  });

  it('refuses stale, forged and unsigned requests', async () => {
    expect((await app.request(path, signed(body(), { timestamp: nowS(-400) }))).status).toBe(401);
    expect((await app.request(path, signed(body(), { timestamp: nowS(400) }))).status).toBe(401);
    expect((await app.request(path, signed(body(), { secret: 'nope' }))).status).toBe(401);
    const tampered = signed(body());
    expect((await app.request(path, { ...tampered, body: body({ decision: 'reject' }) })).status).toBe(401);
    expect((await app.request(path, { method: 'POST', body: body(), headers: { authorization: 'Bearer approver' } })).status).toBe(401);
    expect(signals).toEqual([]);
  });

  it('refuses a replayed nonce, even re-signed with a new timestamp', async () => {
    expect((await app.request(path, signed(body()))).status).toBe(202);
    const replay = await app.request(path, signed(body(), { timestamp: nowS(-7) }));
    expect(replay.status).toBe(409);
    expect((await json(replay)).type).toBe('/problems/request-replayed');
    expect(signals).toHaveLength(1);
  });

  it('refuses an approver the bot does not have, and a body that does not match the schema', async () => {
    const unknown = await app.request(path, signed(body({ approver: 'mallory', nonce: 'n-abcdefabcdefabcd' })));
    expect(unknown.status).toBe(403);
    expect((await json(unknown)).detail).toBe("approver 'mallory' is not configured for webhook 'opsbot'");
    const bad = await app.request(path, signed(body({ nonce: 'short' })));
    expect(bad.status).toBe(400);
    expect((await json(bad)).errors[0].path).toBe('nonce');
    expect((await app.request(path, signed('not json'))).status).toBe(400);
    expect(signals).toEqual([]);
  });

  it('reports a workflow refusal as its problem', async () => {
    await app.request(path, signed(body()));
    const dup = await app.request(path, signed(body({ nonce: 'n-fedcba9876543210' })));
    expect(dup.status).toBe(409);
    expect((await json(dup)).type).toBe('/problems/approval-not-counted');
  });
});

describe('a replay cache that cannot answer (the shared one, database unreachable)', () => {
  it('refuses signed requests with 503 problem+json and Retry-After, and records nothing', async () => {
    const down = createApp({ ...deps, channels: { ...deps.channels!, nonces: { claim: async () => 'unavailable' as const } } });
    const raw = JSON.stringify({ planId: plan.planId, requestHash: plan.requestHash, decision: 'approve', approver: 'bob@example.com', nonce: 'n-0123456789abcdef' });
    const webhook = await down.request('/v1/channels/webhook/approvals', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pa-timestamp': nowS(), 'x-pa-signature': webhookSignature(BOT_SECRET, nowS(), raw) },
      body: raw,
    });
    const slack = await down.request('/v1/channels/slack/interactions', slackRequest());
    for (const res of [webhook, slack]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await json(res)).toMatchObject({ type: '/problems/replay-store-unavailable', status: 503 });
    }
    await flush();
    expect(signals).toEqual([]);
    expect(responses).toEqual([]);
  });
});

describe('POST /v1/channels/teams/messages', () => {
  const path = '/v1/channels/teams/messages';
  let seq = 0;
  function teamsRequest(opts: { from?: string; text?: string; id?: string; token?: string; at?: number } = {}) {
    const body = JSON.stringify({
      type: 'message',
      id: opts.id ?? `act-${++seq}`,
      timestamp: new Date(opts.at ?? NOW - 1000).toISOString(),
      from: { id: '29:x', name: 'Carol', aadObjectId: opts.from ?? TEAMS_CAROL },
      text: opts.text ?? `<at>proxmox-agent</at> approve ${plan.planId} ${plan.requestHash} looks right`,
    });
    return { method: 'POST', headers: { 'content-type': 'application/json', authorization: teamsSignature(opts.token ?? TEAMS_TOKEN, body) }, body };
  }

  it('records a mapped user as a chat decision, with the comment, and answers in the thread', async () => {
    const res = await app.request(path, teamsRequest());
    expect(res.status).toBe(200);
    expect(signals).toEqual([
      { principal: 'human:carol', tokenId: `teams:${TEAMS_CAROL}`, roles: [], channel: 'chat', decision: 'approve', requestHash: plan.requestHash, comment: 'looks right' },
    ]);
    const reply = await json(res);
    expect(reply.type).toBe('message');
    expect(reply.text).toMatch(/^human:carol approved plan_/);
  });

  it('refuses forged, stale and replayed requests before anything is recorded', async () => {
    expect((await app.request(path, teamsRequest({ token: Buffer.from('guess').toString('base64') }))).status).toBe(401);
    const stale = await app.request(path, teamsRequest({ at: NOW - 301_000 }));
    expect(stale.status).toBe(401);
    expect((await json(stale)).detail).toMatch(/seconds old/);
    const once = teamsRequest({ id: 'act-replayed' });
    expect((await app.request(path, once)).status).toBe(200);
    const again = await app.request(path, once);
    expect(again.status).toBe(409);
    expect((await json(again)).type).toBe('/problems/request-replayed');
    expect((await app.request(path, teamsRequest({ text: 'approve please' }))).status).toBe(400);
    expect(signals).toHaveLength(1);
  });

  it('tells an unmapped user and the requester, in the thread, that nothing was recorded', async () => {
    const stranger = await json(await app.request(path, teamsRequest({ from: '99999999-1111-4222-8333-444455556666' })));
    expect(stranger.text).toMatch(/^Not recorded: your Teams user 99999999-.* is not mapped/);
    const self = await json(await app.request(path, teamsRequest({ from: TEAMS_AGENT })));
    expect(self.text).toMatch(/^Not recorded: agent:pi-demo requested plan .* cannot approve/);
    expect(signals).toEqual([]);
  });
});

describe('a channel that is not configured', () => {
  // Found by schemathesis (missing_required_header): a request without its signature headers got 404
  // "not configured"; it is unauthenticated first, and learns nothing about the configuration.
  it('answers 401 to a request without its signature headers, and 404 only to a signed-looking one', async () => {
    const bare = createApp({ ...deps, channels: { ...deps.channels!, settings: { webhooks: [] } as unknown as ChannelSettings } });
    for (const [path, headers] of [
      ['/v1/channels/slack/interactions', ['x-slack-signature', 'x-slack-request-timestamp']],
      ['/v1/channels/webhook/approvals', ['x-pa-signature', 'x-pa-timestamp']],
    ] as const) {
      for (const missing of headers) {
        const res = await bare.request(path, { method: 'POST', headers: { [headers.find((h) => h !== missing)!]: '1' }, body: '{}' });
        expect(res.status, `${path} without ${missing}`).toBe(401);
        expect((await json(res)).type).toBe('/problems/unauthenticated');
      }
      const signed = await bare.request(path, { method: 'POST', headers: { [headers[0]]: 'v0=00', [headers[1]]: nowS() }, body: '{}' });
      expect(signed.status).toBe(404);
    }
    // Teams signs in Authorization: a bearer token there is no signature, and learns nothing either.
    const teams = '/v1/channels/teams/messages';
    expect((await bare.request(teams, { method: 'POST', body: '{}' })).status).toBe(401);
    const bearer = await bare.request(teams, { method: 'POST', headers: { authorization: 'Bearer approver' }, body: '{}' });
    expect([bearer.status, (await json(bearer)).detail]).toEqual([401, 'the signature or timestamp header is malformed']);
    expect((await bare.request(teams, { method: 'POST', headers: { authorization: teamsSignature(TEAMS_TOKEN, '{}') }, body: '{}' })).status).toBe(404);
  });
});

describe('X-Proxmox-Agent-Channel on POST /v1/actions/{planId}/approvals', () => {
  const approve = (headers: Record<string, string> = {}) =>
    app.request(`/v1/actions/${plan.planId}/approvals`, {
      method: 'POST',
      headers: { authorization: 'Bearer approver', 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ decision: 'approve' }),
    });

  it('records api by default and cli when the CLI says so (for a token allowed cli)', async () => {
    expect((await approve()).status).toBe(202);
    expect(signals[0]!.channel).toBe('api');
    signals.length = 0;
    expect((await approve({ 'x-proxmox-agent-channel': 'cli' })).status).toBe(202);
    expect(signals[0]!.channel).toBe('cli');
  });

  it('cannot claim chat: that is only recorded by the signed endpoints', async () => {
    const res = await approve({ 'x-proxmox-agent-channel': 'chat' });
    expect(res.status).toBe(400);
    expect(signals).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('documents the approval list and both chat endpoints, with the channel header', async () => {
    const res = await app.request('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(doc.paths['/v1/approvals'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['status', 'limit', 'cursor']);
    expect(doc.paths['/v1/channels/slack/interactions'].post.requestBody.content).toHaveProperty('application/x-www-form-urlencoded');
    expect(doc.paths['/v1/channels/webhook/approvals'].post.responses).toHaveProperty('202');
    expect(doc.paths['/v1/channels/webhook/approvals'].post.security).toBeUndefined();
    const approvalParams = doc.paths['/v1/actions/{planId}/approvals'].post.parameters.map((p: { name: string }) => p.name);
    expect(approvalParams).toContain('x-proxmox-agent-channel');
  });
});
