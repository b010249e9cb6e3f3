import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildEvidenceBundle, verifyBundleAgainstLog, verifyEvidenceBundle } from '../../src/audit/evidence.js';
import { openFileAuditStore } from '../../src/audit/file-store.js';
import { createCheckpointSigner, generateAuditKeyPair, parsePublicKey } from '../../src/audit/signing.js';
import { requestHash } from '../../src/domain/hashing.js';
import type { NormalizedRequest } from '../../src/domain/request.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

const request: NormalizedRequest = { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true, destroyUnreferencedDisks: false }, reason: 'decommission' };
const UPID = 'UPID:pve-prod:00001234:00005678:65F1A2B3:qmdestroy:201:proxmox-agent@pve!agent:';

async function fixture() {
  const keys = generateAuditKeyPair();
  const signer = createCheckpointSigner(keys.privateKeyPem);
  const store = await openFileAuditStore(join(mkdtempSync(join(tmpdir(), 'pa-evidence-')), 'a.jsonl'), { signing: { signer, every: 3, intervalMs: 60_000 } });
  const hash = requestHash(request);
  const view = pendingPlan({ requestHash: hash, status: 'succeeded', result: { outcome: 'applied', upid: UPID, exitstatus: 'OK', finishedAt: '2026-03-01T12:05:00Z' } });
  const other = { planId: 'plan_other', requestHash: `sha256:${'f'.repeat(64)}` };
  await store.append({ eventId: `${view.planId}/1/plan.created`, planId: view.planId, event: 'plan.created', actor: 'agent:pi-demo', channel: 'api', requestHash: hash });
  await store.append({ eventId: 'plan_other/1/plan.created', event: 'plan.created', ...other });
  await store.append({ eventId: `${view.planId}/2/action.applied`, planId: view.planId, event: 'action.applied', requestHash: hash, upid: UPID, outcome: 'succeeded' });
  const logs: string[] = [];
  const bundle = await buildEvidenceBundle({
    view,
    request,
    records: await store.forPlan(view.planId),
    head: await store.head(),
    // The store's own checkpoint after its third record (every: 3) covers the run's last record.
    latestCheckpoint: (await store.latestCheckpoint())!,
    signing: true,
    publicKeyPem: store.publicKeyPem!,
    taskLog: async (node, upid) => (logs.push(`${node} ${upid}`), { lines: ['destroying VM 201', 'TASK OK'], total: 2 }),
  });
  return { bundle, store, publicKey: parsePublicKey(keys.publicKeyPem), logs };
}

describe('evidence bundle', () => {
  it('holds the request, decision, approvals, task and log, records and a signed head', async () => {
    const { bundle, store, logs } = await fixture();
    expect(logs).toEqual([`pve-prod ${UPID}`]);
    expect(bundle).toMatchObject({
      format: 'proxmox-agent.evidence.v1',
      request,
      requestHash: requestHash(request),
      requester: { principal: 'agent:pi-demo', channel: 'api' },
      decision: { risk: 'critical', decision: 'requires_approval', policyVersion: 'sha256:00' },
      proxmox: { node: 'pve-prod', upid: UPID, exitstatus: 'OK', taskLog: { lines: ['destroying VM 201', 'TASK OK'], total: 2, truncated: false } },
      outcome: { status: 'succeeded' },
      audit: { head: { seq: 3 }, checkpoint: { seq: 3 } },
    });
    expect(bundle.audit.records.map((r) => r.seq)).toEqual([1, 3]);
    await store.close();
  });

  it('verifies offline, and against the full log', async () => {
    const { bundle, store, publicKey } = await fixture();
    expect(verifyEvidenceBundle(bundle, publicKey)).toMatchObject({ ok: true, problems: [] });
    expect(verifyBundleAgainstLog(bundle, await store.all())).toEqual([]);
    await store.close();
  });

  it('finds a changed request, an edited record, a forged head, a dropped record', async () => {
    const { bundle, store, publicKey } = await fixture();
    const edit = structuredClone(bundle);
    edit.request!.params.purge = false;
    expect(verifyEvidenceBundle(edit, publicKey).problems).toEqual([expect.stringMatching(/request hashes to .* not to requestHash/)]);
    const rec = structuredClone(bundle);
    rec.audit.records[1]!.outcome = 'failed';
    expect(verifyEvidenceBundle(rec, publicKey).problems).toEqual([
      'record seq 3: hash does not match its content (edited)',
      'outcome succeeded differs from the action.applied record (failed)',
    ]);
    const summary = structuredClone(bundle);
    summary.proxmox.upid = 'UPID:pve-prod:00000001:00000002:65F1A2B3:qmdestroy:201:someone@pve:';
    summary.requester.principal = 'human:mallory';
    expect(verifyEvidenceBundle(summary, publicKey).problems).toEqual([
      'requester human:mallory differs from the plan.created record (agent:pi-demo)',
      `Proxmox task ${summary.proxmox.upid} differs from the action.applied record (${UPID})`,
    ]);
    const forged = structuredClone(bundle);
    forged.audit.checkpoint = createCheckpointSigner(generateAuditKeyPair().privateKeyPem).sign(bundle.audit.head);
    expect(verifyEvidenceBundle(forged, publicKey).problems[0]).toMatch(/checkpoint: signed by key .* not by the trusted key/);
    const dropped = structuredClone(bundle);
    dropped.audit.records.splice(1, 1);
    expect(verifyEvidenceBundle(dropped, publicKey).ok).toBe(true); // the bundle alone cannot know; the log can
    expect(verifyBundleAgainstLog(dropped, await store.all())).toEqual(['the log has records of this plan that the bundle lacks: seq 3']);
    const firstDropped = structuredClone(bundle);
    firstDropped.audit.records.splice(0, 1);
    expect(verifyBundleAgainstLog(firstDropped, await store.all())).toEqual(['the log has records of this plan that the bundle lacks: seq 1']);
    await store.close();
  });

  it('says so when no checkpoint covers the last record yet, and verifies with a note', async () => {
    const { bundle, store, publicKey } = await fixture();
    const early = await buildEvidenceBundle({
      view: pendingPlan({ requestHash: bundle.requestHash, status: 'succeeded', result: bundle.outcome.result! }),
      request,
      records: bundle.audit.records,
      head: bundle.audit.head,
      latestCheckpoint: { ...bundle.audit.checkpoint!, seq: 2 }, // an older checkpoint: before record 3
      signing: true,
    });
    expect(early.audit).not.toHaveProperty('checkpoint');
    expect(early.audit.checkpointNote).toMatch(/^no signed checkpoint covers record seq 3 yet \(the newest is seq 2\)/);
    const check = verifyEvidenceBundle(early, publicKey);
    expect(check.ok).toBe(true);
    expect(check.notes[0]).toMatch(/no signed checkpoint covered the last record \(seq 3\) when the bundle was made/);
    // A bundle that claims coverage it does not have is still caught.
    const claimed = structuredClone(bundle);
    claimed.audit.checkpoint = createCheckpointSigner(generateAuditKeyPair().privateKeyPem).sign({ seq: 2, hash: bundle.audit.records[0]!.hash });
    expect(verifyEvidenceBundle(claimed).problems).toEqual(['checkpoint seq 2 does not cover the last record (seq 3)']);
    await store.close();
  });

  it('reports a task log it could not read instead of failing', async () => {
    const bundle = await buildEvidenceBundle({
      view: pendingPlan({ status: 'succeeded', result: { outcome: 'applied', upid: UPID, finishedAt: 'x' } }),
      records: [],
      head: { seq: 0, hash: 'x' },
      taskLog: async () => {
        throw new Error('Proxmox unreachable');
      },
    });
    expect(bundle.proxmox).toMatchObject({ upid: UPID, taskLogError: 'Proxmox unreachable' });
  });
});
