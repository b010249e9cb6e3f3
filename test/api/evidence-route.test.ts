/**
 * GET /v1/actions/{planId}/evidence is a read (issue 12, item 10): it serves the checkpoints the
 * store already wrote (every N records, T seconds after an unsigned append) and never signs one on
 * demand, so readers cannot grow the checkpoints file. Until a checkpoint covers the plan's last
 * record the bundle says so (no `checkpoint`, a `checkpointNote`); once one does, the bundle carries
 * the newest one and verifies offline. Through the real Hono app, over the writer's store and over the
 * read-only reader an API-only process uses.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/http/app.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import type { ApiDeps } from '../../src/api/http/context.js';
import type { PlanGateway } from '../../src/api/plans/plan-gateway.js';
import { ApiError } from '../../src/api/http/problems.js';
import { verifyEvidenceBundle, type EvidenceBundle } from '../../src/audit/evidence.js';
import { checkpointsPathFor, openFileAuditReader, openFileAuditStore, readCheckpoints } from '../../src/audit/file-store.js';
import { createCheckpointSigner, generateAuditKeyPair, parsePublicKey } from '../../src/audit/signing.js';
import type { AuditStore } from '../../src/audit/store.js';
import { requestHash, sha256Hex } from '../../src/domain/hashing.js';
import type { NormalizedRequest } from '../../src/domain/request.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

const request: NormalizedRequest = { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'decommission' };
const HASH = requestHash(request);
const UPID = 'UPID:pve-prod:00001234:00005678:65F1A2B3:qmdestroy:201:proxmox-agent@pve!agent:';
const view = pendingPlan({ requestHash: HASH, status: 'succeeded', result: { outcome: 'applied', upid: UPID, exitstatus: 'OK', finishedAt: '2026-03-01T12:05:00Z' } });
const PLAN = view.planId;
const auth = { headers: { authorization: 'Bearer r-secret' } };

function appOver(audit: AuditStore) {
  const plans = {
    state: async (planId: string) => {
      if (planId !== PLAN) throw new ApiError('plan-not-found', `no plan ${planId}`);
      return structuredClone(view);
    },
  } as unknown as PlanGateway;
  const deps: ApiDeps = {
    plans,
    authenticate: createAuthenticator([{ id: 'r', principal: 'human:auditor', secretSha256: sha256Hex('r-secret'), scopes: ['read'], environments: ['*'], roles: [] }]),
    environments: new Set(['prod']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('unused');
    },
    evidence: { audit, runRequest: async () => request, taskLog: async () => ({ lines: ['destroying VM 201', 'TASK OK'], total: 2 }) },
  };
  return createApp(deps);
}

async function getEvidence(app: ReturnType<typeof appOver>): Promise<EvidenceBundle> {
  const res = await app.request(`/v1/actions/${PLAN}/evidence`, auth);
  expect(res.status).toBe(200);
  return (await res.json()) as EvidenceBundle;
}

/** The run's three records, with another plan's record between them (seq 1, 3, 4). */
async function writeRun(store: AuditStore) {
  await store.append({ eventId: `${PLAN}/1/plan.created`, planId: PLAN, event: 'plan.created' as const, actor: 'agent:pi-demo', channel: 'api', requestHash: HASH });
  await store.append({ eventId: 'plan_other/1/plan.created', planId: 'plan_other', event: 'plan.created' as const, requestHash: `sha256:${'f'.repeat(64)}` });
  await store.append({ eventId: `${PLAN}/2/apply.started`, planId: PLAN, event: 'apply.started' as const, requestHash: HASH });
  await store.append({ eventId: `${PLAN}/3/action.applied`, planId: PLAN, event: 'action.applied' as const, requestHash: HASH, upid: UPID, outcome: 'succeeded' });
}

const other = (n: number) => ({ eventId: `plan_other/${n}/x`, planId: 'plan_other', event: 'plan.created' as const, requestHash: `sha256:${'f'.repeat(64)}` });

function setup() {
  const keys = generateAuditKeyPair();
  const path = join(mkdtempSync(join(tmpdir(), 'pa-evidence-route-')), 'audit.jsonl');
  const signing = { signer: createCheckpointSigner(keys.privateKeyPem), every: 5, intervalMs: 3_600_000 };
  const checkpointCount = async () => (await readCheckpoints(checkpointsPathFor(path))).length;
  return { keys, path, signing, checkpointCount, publicKey: parsePublicKey(keys.publicKeyPem) };
}

describe('GET /v1/actions/{planId}/evidence never writes a checkpoint', () => {
  it('in the writer process: says the records are not covered yet, then carries the periodic checkpoint', async () => {
    const { path, signing, checkpointCount, publicKey, keys } = setup();
    const store = await openFileAuditStore(path, { signing });
    const app = appOver(store);
    await writeRun(store);

    const bundles = [];
    for (let i = 0; i < 5; i++) bundles.push(await getEvidence(app));
    expect(await checkpointCount()).toBe(0);
    for (const bundle of bundles) {
      expect(bundle.audit.records.map((r) => r.seq)).toEqual([1, 3, 4]);
      expect(bundle.audit).not.toHaveProperty('checkpoint');
      expect(bundle.audit.checkpointNote).toMatch(/no signed checkpoint covers record seq 4 yet/);
      expect(bundle.audit.publicKey).toBe(keys.publicKeyPem);
    }
    const pending = await getEvidence(app);
    const check = verifyEvidenceBundle(pending, publicKey);
    expect(check).toMatchObject({ ok: true, problems: [] });
    expect(check.notes.join('\n')).toMatch(/no signed checkpoint covered the last record .*seq 4/);

    // The store's own checkpoint (every 5 records) covers the run: the bundle names it.
    await store.append(other(2));
    expect(await store.latestCheckpoint()).toMatchObject({ seq: 5 }); // append resolves just before it is signed
    expect(await checkpointCount()).toBe(1);
    for (let i = 0; i < 5; i++) {
      const bundle = await getEvidence(app);
      expect(bundle.audit.checkpoint).toMatchObject({ seq: 5, keyId: signing.signer.keyId });
      expect(bundle.audit.checkpointNote).toBeUndefined();
      expect(verifyEvidenceBundle(bundle, publicKey)).toMatchObject({ ok: true, problems: [] });
    }
    expect(await checkpointCount()).toBe(1);
    await store.close();
  });

  it('in an API-only process (read-only reader): the newest stored checkpoint, once one covers the run', async () => {
    const { path, signing, checkpointCount, publicKey, keys } = setup();
    const writer = await openFileAuditStore(path, { signing });
    await writeRun(writer);
    const app = appOver(openFileAuditReader(path, { publicKeyPem: keys.publicKeyPem }));

    const pending = await getEvidence(app);
    expect(pending.audit).not.toHaveProperty('checkpoint');
    expect(pending.audit.checkpointNote).toMatch(/no signed checkpoint covers record seq 4 yet/);

    for (let n = 2; n <= 11; n++) await writer.append(other(n)); // checkpoints at seq 5, 10
    expect(await writer.latestCheckpoint()).toMatchObject({ seq: 10 });
    expect(await checkpointCount()).toBe(2);
    const covered = await getEvidence(app);
    expect(covered.audit.checkpoint).toMatchObject({ seq: 10 });
    expect(covered.audit.head.seq).toBe(14);
    expect(verifyEvidenceBundle(covered, publicKey)).toMatchObject({ ok: true, problems: [] });
    expect(await checkpointCount()).toBe(2);
    await writer.close();
  });

  it('does not hand out a checkpoint signed by a key other than the configured one', async () => {
    const { path, signing, keys } = setup();
    const writer = await openFileAuditStore(path, { signing });
    await writeRun(writer);
    await writer.append(other(2)); // checkpoint at seq 5, signed by `keys`
    await writer.close();
    expect((await readCheckpoints(checkpointsPathFor(path))).map((c) => c.keyId)).toEqual([signing.signer.keyId]);
    const rotated = generateAuditKeyPair();
    const bundle = await getEvidence(appOver(openFileAuditReader(path, { publicKeyPem: rotated.publicKeyPem })));
    expect(bundle.audit).not.toHaveProperty('checkpoint');
    expect(bundle.audit.checkpointNote).toMatch(/no signed checkpoint covers record seq 4 yet \(the newest is none\)/);
    expect(bundle.audit.publicKey).toBe(rotated.publicKeyPem);
    expect(bundle.audit.publicKey).not.toBe(keys.publicKeyPem);
  });

  it('without signing: no checkpoint and no note, as before', async () => {
    const { path } = setup();
    const store = await openFileAuditStore(path);
    await writeRun(store);
    const bundle = await getEvidence(appOver(store));
    expect(bundle.audit).not.toHaveProperty('checkpoint');
    expect(bundle.audit).not.toHaveProperty('checkpointNote');
    await store.close();
  });
});
