import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPostgresAuditStore, PG_TABLES, redactUrl } from '../../src/audit/pg-store.js';
import { verifyChain, type AuditRecord } from '../../src/audit/record.js';
import { createCheckpointSigner, generateAuditKeyPair, type SignedCheckpoint } from '../../src/audit/signing.js';
import { describePostgres, startTempPostgres, type TempPostgres } from '../setup/postgres.js';
import { tamperSuite, verifyCli } from './tamper-scenarios.js';

const HASH = `sha256:${'c'.repeat(64)}`;
const event = (planId: string, n = 1) => ({ eventId: `${planId}/${n}/e`, planId, event: 'plan.created' as const, requestHash: HASH });

let server: TempPostgres;
let envCounter = 0;

async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describePostgres('PostgreSQL audit store', () => {
  beforeAll(async () => {
    server = await startTempPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates its schema on open, chains, and is idempotent by eventId', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresAuditStore(url);
    expect(store.description).not.toContain(server.password);
    const a = await store.append(event('p1'));
    const again = await store.append(event('p1'));
    expect(again).toEqual(a);
    await store.append(event('p2'));
    expect((await store.all()).map((r) => r.seq)).toEqual([1, 2]);
    expect((await store.forPlan('p2')).map((r) => r.event)).toEqual(['plan.created']);
    await store.close();
    // Reopening (schema already there) keeps the chain going.
    const reopened = await openPostgresAuditStore(url);
    expect((await reopened.append(event('p3'))).seq).toBe(3);
    expect(verifyChain(await reopened.all()).ok).toBe(true);
    await reopened.close();
  });

  it('makes one valid chain from several workers appending at once, each event once', async () => {
    const url = await server.createDatabase();
    // Four "workers" open the store concurrently on an empty database (schema creation races too).
    const workers = await Promise.all([1, 2, 3, 4].map(() => openPostgresAuditStore(url, { poolSize: 3 })));
    const started = performance.now();
    // Each worker appends 150 events; a third of them are also appended by another worker (a local
    // activity retried elsewhere after a crash): still written once.
    await Promise.all(
      workers.flatMap((w, wi) =>
        Array.from({ length: 150 }, (_, i) => w.append(event(i % 3 === 0 ? `shared-${i}` : `w${wi}-${i}`))),
      ),
    );
    const elapsed = performance.now() - started;
    const records = await workers[0]!.all();
    const unique = 4 * 100 + 50;
    expect(records.length).toBe(unique);
    expect(new Set(records.map((r) => r.eventId)).size).toBe(unique);
    expect(verifyChain(records)).toMatchObject({ ok: true, count: unique });
    console.log(`[pg-store] 600 appends (${unique} distinct) from 4 workers in ${elapsed.toFixed(0)} ms`);
    await Promise.all(workers.map((w) => w.close()));
  });

  it('hands out the newest checkpoint any worker wrote with the key, without signing one', async () => {
    const url = await server.createDatabase();
    const signer = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    // The API process's store (no appends of its own) and a worker's, signing every 2 records.
    const api = await openPostgresAuditStore(url, { signing: { signer, every: 2, intervalMs: 3_600_000 } });
    const worker = await openPostgresAuditStore(url, { signing: { signer, every: 2, intervalMs: 3_600_000 } });
    expect(await api.latestCheckpoint()).toBeUndefined();
    for (let i = 1; i <= 5; i++) await worker.append(event(`p${i}`));
    expect(await worker.latestCheckpoint()).toMatchObject({ seq: 4 });
    for (let i = 0; i < 3; i++) expect(await api.latestCheckpoint()).toMatchObject({ seq: 4, keyId: signer.keyId });
    expect((await sql(url, `SELECT seq FROM ${PG_TABLES.checkpoints} ORDER BY id`)).map((r) => Number(r.seq))).toEqual([2, 4]);
    // Another key's checkpoints (older than the 64 newest rows looked at first) are passed over.
    const other = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    for (let i = 0; i < 70; i++) await sql(url, `INSERT INTO ${PG_TABLES.checkpoints} (seq, checkpoint) VALUES (5, $1)`, [JSON.stringify(other.sign({ seq: 5, hash: 'x' }))]);
    expect(await api.latestCheckpoint()).toMatchObject({ seq: 4, keyId: signer.keyId });
    await worker.close();
    await api.close();
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the records (append-only trigger)', async () => {
    const url = await server.createDatabase();
    const signer = createCheckpointSigner(generateAuditKeyPair().privateKeyPem);
    const store = await openPostgresAuditStore(url, { signing: { signer, every: 1, intervalMs: 60_000 } });
    await store.append(event('p1'));
    await store.close();
    expect((await sql(url, `SELECT seq FROM ${PG_TABLES.checkpoints}`)).length).toBe(1);
    await expect(sql(url, `UPDATE ${PG_TABLES.records} SET record = 'x'`)).rejects.toThrow(/append-only/);
    await expect(sql(url, `DELETE FROM ${PG_TABLES.records}`)).rejects.toThrow(/append-only/);
    await expect(sql(url, `TRUNCATE ${PG_TABLES.records}`)).rejects.toThrow(/append-only/);
    await expect(sql(url, `DELETE FROM ${PG_TABLES.checkpoints}`)).rejects.toThrow(/append-only/);
  });

  it('redacts the password from descriptions and from audit verify output', async () => {
    expect(redactUrl(server.url())).not.toContain(server.password);
    expect(redactUrl(server.url())).toContain('***');
    const url = await server.createDatabase();
    const store = await openPostgresAuditStore(url);
    await store.append(event('p1'));
    await store.close();
    process.env.PA_TEST_PG_URL = url;
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => out.push(a.join(' '));
    try {
      const { runCli } = await import('../../src/cli/main.js');
      expect(await runCli(['node', 'proxmox-agent', 'audit', 'verify', '--postgres-url-env', 'PA_TEST_PG_URL'])).toBe(0);
    } finally {
      console.log = log;
      process.exitCode = 0;
    }
    expect(out.join('\n')).toMatch(/^OK {2}postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
    expect(out.join('\n')).not.toContain(server.password);
  });

  describePostgres('tampering', () => {
    tamperSuite({
      async open(signing) {
        const url = await server.createDatabase();
        const store = await openPostgresAuditStore(url, signing ? { signing } : {});
        const env = `PA_TEST_AUDIT_URL_${++envCounter}`;
        process.env[env] = url;
        return {
          store,
          async read() {
            const records = await sql<{ record: string }>(url, `SELECT record FROM ${PG_TABLES.records} ORDER BY seq`);
            const checkpoints = await sql<{ checkpoint: string }>(url, `SELECT checkpoint FROM ${PG_TABLES.checkpoints} ORDER BY id`);
            return {
              records: records.map((r) => JSON.parse(r.record) as AuditRecord),
              checkpoints: checkpoints.map((c) => JSON.parse(c.checkpoint) as SignedCheckpoint),
            };
          },
          // What a database owner could do: switch the append-only triggers off and rewrite the rows.
          async overwrite(records, checkpoints) {
            const client = new pg.Client({ connectionString: url });
            await client.connect();
            try {
              await client.query('BEGIN');
              await client.query('SET LOCAL session_replication_role = replica');
              await client.query(`DELETE FROM ${PG_TABLES.records}`);
              await client.query(`DELETE FROM ${PG_TABLES.checkpoints}`);
              for (const [i, r] of records.entries()) {
                await client.query(`INSERT INTO ${PG_TABLES.records} (seq, event_id, plan_id, hash, record) VALUES ($1, $2, $3, $4, $5)`, [
                  i + 1, r.eventId, r.planId, r.hash, JSON.stringify(r),
                ]);
              }
              for (const c of checkpoints) await client.query(`INSERT INTO ${PG_TABLES.checkpoints} (seq, checkpoint) VALUES ($1, $2)`, [c.seq, JSON.stringify(c)]);
              await client.query('COMMIT');
            } finally {
              await client.end();
            }
          },
          verifyArgs: ['--postgres-url-env', env],
        };
      },
    });
  });

  it('audit verify reports a bad chain with exit code 1', async () => {
    const url = await server.createDatabase();
    const store = await openPostgresAuditStore(url);
    for (let i = 1; i <= 3; i++) await store.append(event(`p${i}`));
    await store.close();
    process.env.PA_TEST_PG_URL2 = url;
    expect(await verifyCli(['--postgres-url-env', 'PA_TEST_PG_URL2'])).toBe(0);
    await sql(url, `BEGIN; SET LOCAL session_replication_role = replica; UPDATE ${PG_TABLES.records} SET record = replace(record, 'plan.created', 'plan.nothing') WHERE seq = 2; COMMIT;`);
    expect(await verifyCli(['--postgres-url-env', 'PA_TEST_PG_URL2'])).toBe(1);
  });
});
