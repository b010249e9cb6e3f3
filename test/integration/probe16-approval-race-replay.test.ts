/**
 * PROBE 16 / approvals, liveness and readability after the race — rounds of: a plan needing two
 * approvers is applied; human:alice approves it through every channel at once through both APIs
 * (REST, CLI, Slack, Teams, webhook) while one worker process (even rounds) or both (odd rounds) are
 * SIGKILLed and replaced; then bob
 * approves through REST.
 * Oracle: every plan stays readable (GET /v1/actions/{id} 200) and ends succeeded with exactly one
 * snapshot and approvers {alice, bob}; on a failure the run's history is saved and replayed against
 * today's workflow code (a determinism error there means no worker can ever answer the plan's
 * state query again, closed or not).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { SimGuestSeed } from '../../src/simulator/index.js';
import { slackSignature, teamsSignature, webhookSignature } from '../../src/channels/signing.js';
import { slackClickBody } from '../channels/helpers/fixtures.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { sha256, startTwoApis, type TwoApis } from './support/probe16-two-apis.js';
import { until } from './support/until.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { Worker } from '@temporalio/worker';
import { readHistory } from '../workflows/support/history.js';
import { WORKFLOWS_PATH } from '../../src/worker/worker.js';

const TEMPORAL_BIN = fileURLToPath(new URL('../../.temporal/bin/temporal', import.meta.url));
/** Saves the run's history (as `temporal workflow show` prints it) and replays it against today's workflow code. */
async function historyAndReplay(workflowId: string): Promise<string> {
  const file = `/tmp/probe16-history-${workflowId}.json`;
  try {
    const json = execFileSync(TEMPORAL_BIN, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', inject('temporalAddress'), '--namespace', inject('temporalNamespace')], { maxBuffer: 64 << 20 }).toString();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, json);
  } catch (err) {
    return `could not save the history: ${(err as Error).message.slice(0, 300)}`;
  }
  try {
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, readHistory(file), workflowId);
    return `history ${file} replays cleanly`;
  } catch (err) {
    return `history ${file} does NOT replay: ${(err as Error).name}: ${(err as Error).message.slice(0, 400)}`;
  }
}

const AGENT = 'demo-agent-token';
const ALICE = 'demo-approver-1-token';
const BOB = 'demo-approver-2-token';
const OPS = 'p16-ops2-token';
const SLACK_SECRET = 'p16-slack-signing';
const BOT_SECRET = 'p16-opsbot-secret';
const TEAMS_TOKEN = Buffer.from('p16-teams-security-token').toString('base64');
const AAD = { alice: '0a0a0a0a-1111-4222-8333-444455556661', olivia: '0a0a0a0a-1111-4222-8333-444455556662', bob: '0a0a0a0a-1111-4222-8333-444455556663' };
const SLACK = { alice: 'UALICE1', olivia: 'UOLIVIA1' };
const RESPOND = 'http://127.0.0.1:9';
const guests: SimGuestSeed[] = [{ vmid: 100, type: 'qemu', node: 'pve-f1', name: 'web', status: 'running', disks: { scsi0: 'local-lvm:vm-100-disk-0,size=8G' } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = ['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown', 'cancelled'];
const id = (principal: string) => ({ principal, roles: ['sre'], environments: ['*'] });

let pg: TempPostgres;
let s: TwoApis;

describePostgres('probe16 approvals: plans stay readable and run after an approval race with a worker killed', () => {
  beforeAll(async () => {
    pg = await startTempPostgres();
    s = await startTwoApis({
      guests,
      pgUrl: await pg.createDatabase(),
      policy: { rules: [{ id: 'lab-two', description: 'two approvers for everything in lab', match: { environments: ['lab'] }, approvals: { count: 2 } }] },
      extraTokens: [{ id: 'p16-ops2', principal: 'human:olivia', secretSha256: sha256(OPS), scopes: ['plan', 'apply', 'approve', 'read'], environments: ['*'], roles: ['sre'], channels: ['api', 'cli'] }],
      channels: {
        slack: { signingSecret: { env: 'P16_SLACK' }, users: { [SLACK.alice]: id('human:alice'), [SLACK.olivia]: id('human:olivia') }, responseUrlOrigins: [RESPOND] },
        teams: { securityToken: { env: 'P16_TEAMS' }, users: { [AAD.alice]: id('human:alice'), [AAD.olivia]: id('human:olivia'), [AAD.bob]: id('human:bob') } },
        webhooks: [{ id: 'opsbot', secret: { env: 'P16_BOT' }, approvers: { alice: id('human:alice'), olivia: id('human:olivia') } }],
      },
      env: { P16_SLACK: SLACK_SECRET, P16_TEAMS: TEAMS_TOKEN, P16_BOT: BOT_SECRET },
    });
  }, 240_000);
  afterAll(async () => {
    await s?.stop();
    await pg?.stop();
  });

  const get = async (planId: string) => {
    for (let i = 0; ; i++) {
      const r = await s.call(i, 'GET', `/v1/actions/${planId}`, { token: AGENT });
      if (r.status === 200 || i > 20) return r.body;
      await sleep(200);
    }
  };
  const rest = (api: number, planId: string, token: string, cli = false) =>
    s.call(api, 'POST', `/v1/actions/${planId}/approvals`, { token, body: { decision: 'approve', comment: cli ? 'cli' : 'rest' }, headers: cli ? { 'x-proxmox-agent-channel': 'cli' } : {} });
  const slack = (api: number, user: string, p: { planId: string; requestHash: string }) => {
    const body = slackClickBody({ userId: user, actionId: 'approve', value: `${p.planId}|${p.requestHash}`, responseUrl: `${RESPOND}/r/${randomUUID()}` });
    const ts = String(Math.floor(Date.now() / 1000));
    return s.call(api, 'POST', '/v1/channels/slack/interactions', { raw: body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSignature(SLACK_SECRET, ts, body) } });
  };
  const teams = (api: number, aad: string, p: { planId: string; requestHash: string }) => {
    const body = JSON.stringify({ type: 'message', id: `p16-${randomUUID()}`, timestamp: new Date().toISOString(), from: { id: `29:${aad}`, name: 'Someone', aadObjectId: aad }, text: `<at>proxmox-agent</at> approve ${p.planId} ${p.requestHash} ok` });
    return s.call(api, 'POST', '/v1/channels/teams/messages', { raw: body, headers: { 'content-type': 'application/json', authorization: teamsSignature(TEAMS_TOKEN, body) } });
  };
  const webhook = (api: number, approver: string, p: { planId: string; requestHash: string }) => {
    const raw = JSON.stringify({ planId: p.planId, requestHash: p.requestHash, decision: 'approve', approver, nonce: randomUUID() });
    const ts = String(Math.floor(Date.now() / 1000));
    return s.call(api, 'POST', '/v1/channels/webhook/approvals', { raw, headers: { 'content-type': 'application/json', 'x-pa-timestamp': ts, 'x-pa-signature': webhookSignature(BOT_SECRET, ts, raw) } });
  };
  /** Every way `who` can approve, through both APIs at once. */
  const everywhere = (p: { planId: string; requestHash: string }, who: { token: string; slack: string; aad: string; bot: string }) => [
    rest(0, p.planId, who.token),
    rest(1, p.planId, who.token),
    rest(0, p.planId, who.token, true),
    rest(1, p.planId, who.token, true),
    slack(0, who.slack, p),
    slack(1, who.slack, p),
    teams(0, who.aad, p),
    teams(1, who.aad, p),
    teams(0, who.aad, p),
    webhook(0, who.bot, p),
    webhook(1, who.bot, p),
  ];
  const summary = (a: { status: number; body: any }) => ({ status: a.status, type: a.body?.type, text: typeof a.body?.text === 'string' ? a.body.text.slice(0, 120) : undefined, received: a.body?.approval?.received });
  const snapshotsOf = (name: string) => s.sim.mutations.all().filter((m) => m.vmid === 100 && m.op === 'snapshot' && m.key === name);

  it('every round ends succeeded and readable', { timeout: 600_000 }, async () => {
    const failures: string[] = [];
    for (let round = 0; round < 6; round++) {
      const name = `p16-r${round}`;
      const p = await s.call(round, 'POST', '/v1/actions/plan', { token: AGENT, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid: 100 }, params: { snapname: name }, reason: `p16 replay round ${round}` } });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      expect((await s.call(round + 1, 'POST', '/v1/actions/apply', { token: AGENT, body: { planId: p.body.planId, requestHash: p.body.requestHash } })).status).toBe(202);
      const chaos = (async () => {
        await sleep(20 + 30 * (round % 3));
        // Odd rounds: both workers die (whichever held the run), so a fresh one must replay it.
        const victims = round % 2 === 1 ? s.workers.splice(0) : s.workers.splice(0, 1);
        await Promise.all(victims.map((w) => w.kill('SIGKILL')));
        for (let i = s.workers.length; i < 2; i++) await s.startWorker();
      })();
      await Promise.all(everywhere(p.body, { token: ALICE, slack: SLACK.alice, aad: AAD.alice, bot: 'alice' }));
      await chaos;
      await until('alice counted', async () => (await get(p.body.planId))?.approval?.received === 1, 60_000, 300).catch(() => undefined);
      const bob = await s.call(round, 'POST', `/v1/actions/${p.body.planId}/approvals`, { token: BOB, body: { decision: 'approve' } });
      let last: any;
      const done = await until(`round ${round} ended`, async () => {
        last = await s.call(round, 'GET', `/v1/actions/${p.body.planId}`, { token: AGENT });
        return last.status === 200 && TERMINAL.includes(last.body?.status) ? last.body : undefined;
      }, 120_000, 500).catch(() => undefined);
      if (!done || done.status !== 'succeeded' || snapshotsOf(name).length !== 1) {
        const replay = await historyAndReplay(p.body.planId);
        failures.push(`round ${round} ${p.body.planId}: bob ${bob.status}; last GET ${last?.status} ${JSON.stringify(last?.body?.status ?? last?.body?.type)}; snapshots ${snapshotsOf(name).length}; ${replay}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
