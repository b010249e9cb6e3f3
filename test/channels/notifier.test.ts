import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deliverNotifications, deliveryId, NotificationError } from '../../src/channels/notifier.js';
import { postJson, OutboundError } from '../../src/channels/outbound.js';
import type { NotificationTarget } from '../../src/channels/settings.js';
import { webhookSignature } from '../../src/channels/signing.js';
import { startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';
import { pendingPlan } from './helpers/fixtures.js';

let server: TestServer;
const statusFor = new Map<string, number>();
beforeAll(async () => {
  server = await startTestServer((req, res) => {
    res.statusCode = statusFor.get(req.url ?? '') ?? 200;
    res.end('ok');
  });
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
  statusFor.clear();
});

const SECRET_PATH = '/services/T000/B000/XXXXsecretXXXX';
const targets = (): NotificationTarget[] => [
  { label: 'notifications.webhooks.0 (slack)', url: `${server.url}${SECRET_PATH}`, format: 'slack' },
  { label: 'notifications.webhooks.1', url: `${server.url}/json`, format: 'json', secret: 'hook-secret' },
];
const links = { api: 'https://agent.example/v1/actions/x' };

describe('deliverNotifications', () => {
  it('posts Block Kit to slack targets and signed JSON to json targets', async () => {
    const delivered: number[] = [];
    const n = await deliverNotifications(targets(), pendingPlan(), links, { onDelivered: (i) => delivered.push(i), now: () => 1_700_000_000_000 });
    expect(n).toBe(2);
    expect(delivered).toEqual([0, 1]);
    const [slack, json] = server.requests;
    expect(slack!.url).toBe(SECRET_PATH);
    expect(JSON.parse(slack!.body).blocks.some((b: { type: string }) => b.type === 'actions')).toBe(true);
    expect(slack!.headers['x-pa-signature']).toBeUndefined();
    expect(json!.headers['content-type']).toMatch(/^application\/json/);
    expect(json!.headers['x-pa-event']).toBe('approval.requested');
    expect(json!.headers['x-pa-delivery']).toBe(`${pendingPlan().planId}/approval.requested/1`);
    expect(deliveryId('p', 2, 1)).toBe('p/approval.requested.2/1');
    expect(json!.headers['x-pa-timestamp']).toBe('1700000000');
    expect(json!.headers['x-pa-signature']).toBe(webhookSignature('hook-secret', '1700000000', json!.body));
    expect(JSON.parse(json!.body)).toMatchObject({ event: 'approval.requested', planId: pendingPlan().planId });
  });

  it('skips targets already delivered', async () => {
    await deliverNotifications(targets(), pendingPlan(), links, { skip: new Set([0]) });
    expect(server.requests.map((r) => r.url)).toEqual(['/json']);
  });

  it('tries every target, then reports the failures by label, never by URL', async () => {
    statusFor.set(SECRET_PATH, 503);
    const delivered: number[] = [];
    const err = await deliverNotifications(targets(), pendingPlan(), links, { onDelivered: (i) => delivered.push(i) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotificationError);
    expect((err as NotificationError).message).toBe('notifications.webhooks.0 (slack): answered HTTP 503');
    expect((err as NotificationError).permanent).toBe(false);
    expect(delivered).toEqual([1]);
    expect(server.requests).toHaveLength(2);
  });

  it('calls a failure permanent only when every failed target refused with a 4xx other than 408/429', async () => {
    statusFor.set(SECRET_PATH, 404);
    statusFor.set('/json', 400);
    expect(((await deliverNotifications(targets(), pendingPlan(), links).catch((e: unknown) => e)) as NotificationError).permanent).toBe(true);
    statusFor.set('/json', 429);
    expect(((await deliverNotifications(targets(), pendingPlan(), links).catch((e: unknown) => e)) as NotificationError).permanent).toBe(false);
  });
});

describe('postJson', () => {
  it('names the target by label when the connection fails, without the URL', async () => {
    const err = (await postJson('http://127.0.0.1:9/hooks/secret-token', '{}', { label: 'target-x', timeoutMs: 2000 }).catch((e: unknown) => e)) as OutboundError;
    expect(err).toBeInstanceOf(OutboundError);
    expect(err.message).toMatch(/^target-x: request failed \(/);
    expect(err.message).not.toContain('secret-token');
    expect(err.message).not.toContain('127.0.0.1');
  });

  it('does not follow redirects', async () => {
    statusFor.set('/redirect', 302);
    server.setHandler((req, res) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `${server.url}/elsewhere` });
        res.end();
        return;
      }
      res.end('ok');
    });
    try {
      const err = (await postJson(`${server.url}/redirect`, '{}', { label: 'r' }).catch((e: unknown) => e)) as OutboundError;
      expect(err.status).toBe(302);
      expect(server.requests.map((r) => r.url)).toEqual(['/redirect']);
    } finally {
      server.setHandler((req, res) => {
        res.statusCode = statusFor.get(req.url ?? '') ?? 200;
        res.end('ok');
      });
    }
  });
});
