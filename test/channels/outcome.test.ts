/**
 * The requester told, in its pure and HTTP parts: the outcome notice (event, stable delivery id per
 * outcome and target, the body in each channel's format) and the Slack Web API calls the bot makes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deliver, outcomeNotice } from '../../src/channels/notifier.js';
import { OutboundError } from '../../src/channels/outbound.js';
import { outcomeDeliveryId, outcomeFooter } from '../../src/channels/outcome.js';
import { postSlackMessage, updateSlackMessage } from '../../src/channels/slack-api.js';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { pendingPlan } from './helpers/fixtures.js';

const links = { api: 'https://agent.example/v1/actions/x' };
const rejected = () =>
  pendingPlan({
    status: 'rejected',
    approval: {
      ...pendingPlan().approval,
      rejectedBy: { principal: 'human:bob', tokenId: 'webhook:opsbot', roles: [], channel: 'chat', decision: 'reject', comment: 'not during the freeze', at: '2026-03-01T12:05:00.000Z' },
    },
  });

describe('outcome notices', () => {
  it('says who decided and why, for each outcome', () => {
    expect(outcomeFooter(rejected())).toBe('Rejected by human:bob via chat: "not during the freeze".');
    expect(outcomeFooter(pendingPlan({ status: 'expired' }))).toBe('Expired at 2026-03-01T13:00:00.000Z without being applied with its approvals; plan again.');
    expect(outcomeFooter(pendingPlan({ status: 'failed', result: { outcome: 'failed', errorType: 'ProxmoxTaskFailedError', message: 'disk on fire', finishedAt: 'x' } }))).toBe(
      'Failed (ProxmoxTaskFailedError): disk on fire.',
    );
  });

  it('has one delivery id per plan, outcome and target, the same on every call; a later approval round adds its number', () => {
    expect(outcomeDeliveryId('plan_x', 'approved', 0)).toBe('plan_x/plan.approved/0');
    expect(outcomeDeliveryId('plan_x', 'approved', 1, 2)).toBe('plan_x/plan.approved.2/1');
    const notice = outcomeNotice(rejected(), links);
    expect([notice.event, notice.deliveryId(3), notice.deliveryId(3)]).toEqual(['plan.rejected', `${rejected().planId}/plan.rejected/3`, `${rejected().planId}/plan.rejected/3`]);
  });

  it('renders the outcome in each channel format: JSON, Slack (no buttons once decided), Teams', () => {
    const notice = outcomeNotice(rejected(), links);
    expect(JSON.parse(notice.body('json'))).toMatchObject({ event: 'plan.rejected', status: 'rejected', rejectedBy: { principal: 'human:bob', comment: 'not during the freeze' }, links });
    const slack = JSON.parse(notice.body('slack'));
    expect(slack.blocks.some((b: { type: string }) => b.type === 'actions')).toBe(false);
    expect(JSON.stringify(slack.blocks)).toContain('Rejected by human:bob via chat');
    const teams = JSON.parse(notice.body('teams'));
    expect(teams.attachments[0].content.type).toBe('AdaptiveCard');
  });
});

let server: TestServer;
let answer: (path: string, body: any) => unknown;
beforeAll(async () => {
  server = await startTestServer((req, res, body) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(answer(req.url ?? '', JSON.parse(body))));
  });
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  answer = (path, body) => (path === '/api/chat.postMessage' ? { ok: true, channel: 'C0ID', ts: '1700000000.000100' } : { ok: true, ts: body.ts });
});
const bot = () => ({ botToken: 'xoxb-secret-token', channel: '#approvals', apiUrl: `${server.url}/api/` });
const message = { text: 't', blocks: [] };

describe('the Slack bot', () => {
  it('posts with the bearer token and keeps the channel id and ts Slack answers; updates that message', async () => {
    const ref = await postSlackMessage(bot(), message);
    expect(ref).toEqual({ channel: 'C0ID', ts: '1700000000.000100' });
    await updateSlackMessage(bot(), ref, message);
    expect(server.requests.map((r) => [r.url, r.headers.authorization, JSON.parse(r.body).channel, JSON.parse(r.body).ts])).toEqual([
      ['/api/chat.postMessage', 'Bearer xoxb-secret-token', '#approvals', undefined],
      ['/api/chat.update', 'Bearer xoxb-secret-token', 'C0ID', '1700000000.000100'],
    ]);
  });

  it('turns ok:false into an error, permanent unless Slack says to try again, never with the token in it', async () => {
    answer = () => ({ ok: false, error: 'channel_not_found' });
    const gone = (await postSlackMessage(bot(), message).catch((e: unknown) => e)) as OutboundError;
    expect(gone).toBeInstanceOf(OutboundError);
    expect([gone.message, gone.permanent]).toEqual(['Slack chat.postMessage: channel_not_found', true]);
    answer = () => ({ ok: false, error: 'ratelimited' });
    const later = (await updateSlackMessage(bot(), { channel: 'C0ID', ts: '1.2' }, message).catch((e: unknown) => e)) as OutboundError;
    expect([later.message, later.permanent]).toEqual(['Slack chat.update: ratelimited', false]);
    expect(later.message).not.toContain('xoxb');
  });
});

describe('deliver', () => {
  it('sends the outcome with its event and delivery id headers', async () => {
    answer = () => ({});
    await deliver([{ label: 'l', url: `${server.url}/hook`, format: 'json' }], outcomeNotice(rejected(), links));
    expect(server.requests[0]!.headers['x-pa-event']).toBe('plan.rejected');
    expect(server.requests[0]!.headers['x-pa-delivery']).toBe(`${rejected().planId}/plan.rejected/0`);
  });
});
