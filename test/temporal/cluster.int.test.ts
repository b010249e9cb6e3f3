/**
 * A throw-away real cluster (src/temporal/cluster.ts): Temporal server 1.29.1 on PostgreSQL. A workflow
 * started with the project's search attributes outlives a server restart and a PostgreSQL restart, and
 * `stop()` leaves no process and no directory behind.
 *
 * Needs `.temporal/bin/server`, `.temporal/bin/sql` (npm run temporal:cluster -- build) and PostgreSQL's
 * binaries: skipped locally without them, failing in CI (CI=true), as describePostgres does.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTemporalCluster, type TemporalCluster } from '../../src/temporal/cluster.js';
import { pidAlive } from '../../src/pid-alive.js';
import { findPostgresBin } from '../../src/temporal/local-postgres.js';
import { ProxmoxPlanId, ProxmoxStatus, ProxmoxVmid } from '../../src/temporal/search-attributes.js';
import { projectLocalServerPath, projectLocalSqlToolPath } from '../../src/temporal/server-binaries.js';

const ready = existsSync(projectLocalServerPath()) && existsSync(projectLocalSqlToolPath()) && findPostgresBin() !== undefined;
const inCi = process.env.CI === 'true' || process.env.CI === '1';

function describeCluster(name: string, fn: () => void): void {
  if (ready) describe(name, fn);
  else if (inCi) {
    describe(name, () => {
      it('has the Temporal server, its SQL tool and PostgreSQL', () => {
        throw new Error('missing .temporal/bin/server or .temporal/bin/sql (npm run temporal:cluster -- build) or PostgreSQL (apt-get install -y postgresql)');
      });
    });
  } else describe.skip(`${name} (no .temporal/bin/server, sql or PostgreSQL: npm run temporal:cluster -- build)`, fn);
}

/** Retries `fn` until it resolves (a restarted dependency answers again), for at most `ms`. */
async function eventually<T>(fn: () => Promise<T>, ms = 30_000): Promise<{ value: T; tookMs: number }> {
  const t0 = Date.now();
  for (;;) {
    try {
      return { value: await fn(), tookMs: Date.now() - t0 };
    } catch (err) {
      if (Date.now() - t0 > ms) throw err;
      await sleep(250);
    }
  }
}

describeCluster('a real Temporal cluster on PostgreSQL', () => {
  let cluster: TemporalCluster;
  let connection: Connection;
  let client: Client;
  const workflowId = `cluster-int-${Date.now()}`;
  const log: string[] = [];

  beforeAll(async () => {
    cluster = await startTemporalCluster({ log: (m) => log.push(m) });
    connection = await Connection.connect({ address: cluster.address });
    client = new Client({ connection, namespace: cluster.namespace });
  }, 120_000);

  afterAll(async () => {
    await connection?.close().catch(() => {});
    await cluster?.stop();
  });

  const describeRun = () => client.workflow.getHandle(workflowId).describe();

  it('starts a workflow with the project search attributes at once (no cache delay) and lists it by them', async () => {
    expect(cluster.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(cluster.namespace).toBe('default');
    await client.workflow.start('clusterIntWorkflow', {
      workflowId,
      taskQueue: 'cluster-int',
      typedSearchAttributes: [
        { key: ProxmoxPlanId, value: workflowId },
        { key: ProxmoxStatus, value: 'awaiting_approval' },
        { key: ProxmoxVmid, value: 201 },
      ],
    });
    const d = await describeRun();
    expect(d.status.name).toBe('RUNNING');
    expect(d.typedSearchAttributes.get(ProxmoxVmid)).toBe(201);
    // SQL visibility is written asynchronously (the visibility queue).
    const { value: listed } = await eventually(async () => {
      const ids: string[] = [];
      for await (const w of client.workflow.list({ query: `ProxmoxPlanId = "${workflowId}" AND ProxmoxStatus = "awaiting_approval"` })) ids.push(w.workflowId);
      if (ids.length === 0) throw new Error('not listed yet');
      return ids;
    }, 10_000);
    expect(listed).toEqual([workflowId]);
  });

  it('keeps the workflow across a server restart on the same port', async () => {
    const pid = cluster.serverPid!;
    const t0 = Date.now();
    await cluster.restartServer();
    log.push(`restartServer: ${Date.now() - t0} ms`);
    expect(cluster.serverPid).not.toBe(pid);
    expect(pidAlive(pid)).toBe(false);
    const { value: d } = await eventually(describeRun);
    expect(d.status.name).toBe('RUNNING');
    expect(d.typedSearchAttributes.get(ProxmoxPlanId)).toBe(workflowId);
  });

  it('recovers by itself from a PostgreSQL restart, and writes again', async () => {
    await cluster.restartPostgres();
    const { tookMs } = await eventually(() => client.workflow.start('clusterIntWorkflow', { workflowId: `${workflowId}-after-pg`, taskQueue: 'cluster-int' }));
    log.push(`first start after the PostgreSQL restart: ${tookMs} ms`);
    expect((await describeRun()).status.name).toBe('RUNNING');
    await client.workflow.getHandle(workflowId).terminate('test done');
    expect((await describeRun()).status.name).toBe('TERMINATED');
  });

  it('gives callers their own databases on the same PostgreSQL', async () => {
    const url = await cluster.createDatabase('cluster_int_audit');
    expect(url).toBe(cluster.postgresUrl('cluster_int_audit'));
    expect(url).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/cluster_int_audit$/);
  });

  it('stop() ends the server and PostgreSQL and deletes the throw-away directory', async () => {
    const pid = cluster.serverPid!;
    await connection.close();
    await cluster.stop();
    expect(pidAlive(pid)).toBe(false);
    expect(existsSync(cluster.dir)).toBe(false);
    console.log(log.join('\n'));
  });
});
