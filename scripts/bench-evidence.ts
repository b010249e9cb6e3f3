// Evidence reads against a large file audit log: GET /v1/actions/{planId}/evidence through the real app
// (fake plan gateway and task log, real audit store), over the writer's store and over the read-only
// reader of an API-only process. Prints latency, bytes read per GET (the process's `rchar`, Linux), and
// how many checkpoints the GETs wrote. docs/audit.md ("Measured") has the figures.
//
//   npx tsx scripts/bench-evidence.ts [records=100000] [gets=20]
//   node --expose-gc --import tsx scripts/bench-evidence.ts     (also the heap the indexes hold)
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../src/api/http/app.js';
import { createAuthenticator } from '../src/api/access/auth.js';
import type { ApiDeps } from '../src/api/http/context.js';
import type { PlanGateway } from '../src/api/plans/plan-gateway.js';
import { checkpointsPathFor, openFileAuditReader, openFileAuditStore } from '../src/audit/file-store.js';
import { GENESIS_HEAD, sealBatch, type AuditHead } from '../src/audit/record.js';
import { createCheckpointSigner, generateAuditKeyPair } from '../src/audit/signing.js';
import type { AuditStore } from '../src/audit/store.js';
import { sha256Hex } from '../src/domain/hashing.js';
import type { PlanView } from '../src/domain/plan-view.js';

const RECORDS = Number(process.argv[2] ?? 100_000);
const GETS = Number(process.argv[3] ?? 20);
const PER_PLAN = 4;
const PLANS = Math.ceil(RECORDS / PER_PLAN);
const HASH = `sha256:${'d'.repeat(64)}`;
const keys = generateAuditKeyPair();
const signer = createCheckpointSigner(keys.privateKeyPem);
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** A valid plan id (plan_ + 26 Crockford base-32 digits) per index. */
const planId = (i: number) => {
  let tail = '';
  for (let n = i, k = 0; k < 8; k++, n = Math.floor(n / 32)) tail = CROCKFORD[n % 32] + tail;
  return `plan_01J9ZQ4X3T5M8R2B6C${tail}`;
};
const EVENTS = ['plan.created', 'apply.requested', 'apply.started', 'action.applied'] as const;

const rchar = () => (existsSync('/proc/self/io') ? Number(/rchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]) : NaN);
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).length : 0);

/** PLANS runs of four records each, interleaved as concurrent runs write them, signed every 100. */
function writeLog(path: string): void {
  let head: AuditHead = GENESIS_HEAD;
  for (let n = 0; n < PER_PLAN; n++) {
    for (let from = 0; from < PLANS; from += 5000) {
      const events = [];
      for (let i = from; i < Math.min(PLANS, from + 5000); i++)
        events.push({ eventId: `${planId(i)}/${n + 1}/${EVENTS[n]}`, planId: planId(i), event: EVENTS[n]!, actor: 'agent:pi', channel: 'api', requestHash: HASH });
      const sealed = sealBatch(head, events, () => undefined);
      appendFileSync(path, sealed.records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const cps = sealed.records.filter((r) => r.seq % 100 === 0).map((r) => `${JSON.stringify(signer.sign(r))}\n`);
      if (cps.length) appendFileSync(checkpointsPathFor(path), cps.join(''));
      head = sealed.head;
    }
  }
}

function appOver(audit: AuditStore) {
  const plans = { state: async (id: string) => ({ planId: id, requestHash: HASH, environment: 'lab', target: { vmid: 100 }, requester: { principal: 'agent:pi', tokenId: 't', channel: 'api' }, approval: { required: 0, received: 0, requirements: [], approvers: [], refused: [] }, status: 'succeeded', risk: 'low', decision: 'allowed', reasons: [], policyVersion: 'x' }) as unknown as PlanView } as unknown as PlanGateway;
  const deps: ApiDeps = {
    plans,
    authenticate: createAuthenticator([{ id: 'r', principal: 'human:r', secretSha256: sha256Hex('r'), scopes: ['read'], environments: ['*'], roles: [] }]),
    environments: new Set(['lab']),
    health: async () => ({ ok: true, checks: {} }),
    evaluate: async () => {
      throw new Error('unused');
    },
    evidence: { audit, runRequest: async () => undefined, taskLog: async () => ({ lines: [] }) },
  };
  return createApp(deps);
}

async function gets(app: ReturnType<typeof appOver>, ids: string[]): Promise<{ ms: number[]; bytes: number }> {
  const ms: number[] = [];
  const before = rchar();
  for (const id of ids) {
    const t = performance.now();
    const res = await app.request(`/v1/actions/${id}/evidence`, { headers: { authorization: 'Bearer r' } });
    const body = (await res.json()) as { audit?: { records: unknown[] } };
    ms.push(performance.now() - t);
    if (res.status !== 200 || body.audit?.records.length !== PER_PLAN) throw new Error(`GET ${id}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  }
  return { ms, bytes: (rchar() - before) / ids.length };
}

const sample = () => Array.from({ length: GETS }, (_, i) => planId(Math.floor(((i + 0.5) * PLANS) / GETS)));
const fmt = (r: { ms: number[]; bytes: number }) => `p50 ${p50(r.ms).toFixed(1)} ms, mean ${mean(r.ms).toFixed(1)} ms, ${(r.bytes / 1024).toFixed(0)} KiB read per GET`;

const dir = mkdtempSync(join(tmpdir(), 'pa-bench-evidence-'));
const path = join(dir, 'audit.jsonl');
try {
  writeLog(path);
  console.log(`log: ${RECORDS} records of ${PLANS} plans, ${(statSync(path).size / 2 ** 20).toFixed(1)} MiB, ${lines(checkpointsPathFor(path))} checkpoints`);

  // Heap held by the open store (its indexes), when run with `node --expose-gc --import tsx`.
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => (gc?.(), process.memoryUsage().heapUsed);
  const heap0 = heap();
  let t = performance.now();
  const writer = await openFileAuditStore(path, { signing: { signer, every: 100, intervalMs: 3_600_000 } });
  const openMs = performance.now() - t;
  console.log(`writer: open ${openMs.toFixed(0)} ms${gc ? `, heap +${((heap() - heap0) / 2 ** 20).toFixed(1)} MiB held` : ''}`);
  const wapp = appOver(writer);
  await gets(wapp, [planId(0)]);
  console.log(`writer: ${GETS} evidence GETs: ${fmt(await gets(wapp, sample()))}`);
  // A busy system: a record is appended between GETs. Checkpoints written meanwhile:
  const before = lines(checkpointsPathFor(path));
  for (let i = 0; i < GETS; i++) {
    const id = planId(i);
    await writer.append({ eventId: `${id}/9/extra`, planId: id, event: 'plan.expired' as const, requestHash: HASH });
    await wapp.request(`/v1/actions/${id}/evidence`, { headers: { authorization: 'Bearer r' } });
  }
  console.log(`writer: ${GETS} × (append, GET): ${lines(checkpointsPathFor(path)) - before} checkpoints written`);
  await writer.close();

  const heap1 = heap();
  const rapp = appOver(openFileAuditReader(path, { publicKeyPem: keys.publicKeyPem }));
  t = performance.now();
  await gets(rapp, [planId(PLANS - 1)]);
  const firstMs = performance.now() - t;
  console.log(`reader (API-only): first GET ${firstMs.toFixed(0)} ms${gc ? `, heap +${((heap() - heap1) / 2 ** 20).toFixed(1)} MiB held` : ''}`);
  console.log(`reader (API-only): ${GETS} evidence GETs: ${fmt(await gets(rapp, sample()))}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
