import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureTemporalCli } from '../../src/temporal/cli-locator.js';
import { connectClient, connectConnection } from '../../src/temporal/connection.js';
import { DevServerError, getFreePort, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes-admin.js';
import { PROJECT_SEARCH_ATTRIBUTES, ProxmoxAction } from '../../src/temporal/search-attributes.js';
import { testConnectionOptions } from '../setup/temporal.js';

// IndexedValueType numbers as returned by ListSearchAttributes.
const KEYWORD = 2;
const INT = 3;

describe('global-setup Temporal server', () => {
  it('is exposed via inject() and TEMPORAL_TEST_* env vars', () => {
    expect(inject('temporalAddress')).toMatch(/:\d+$/);
    expect(inject('temporalNamespace')).toBeTruthy();
    expect(process.env.TEMPORAL_TEST_ADDRESS).toBe(inject('temporalAddress'));
    expect(process.env.TEMPORAL_TEST_NAMESPACE).toBe(inject('temporalNamespace'));
    if (inject('temporalIsDevServer')) expect(inject('temporalAddress')).not.toBe('127.0.0.1:7233');
  });

  it('answers GetSystemInfo and describes the namespace', async () => {
    const client = await connectClient(testConnectionOptions());
    try {
      const info = await client.connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/^\d+\.\d+/);
      const ns = await client.connection.workflowService.describeNamespace({ namespace: inject('temporalNamespace') });
      expect(ns.namespaceInfo?.name).toBe(inject('temporalNamespace'));
    } finally {
      await client.connection.close();
    }
  });

  it('has every project search attribute registered with the right type', async () => {
    const connection = await connectConnection(testConnectionOptions());
    try {
      const res = await connection.operatorService.listSearchAttributes({ namespace: inject('temporalNamespace') });
      const custom = res.customAttributes ?? {};
      for (const attr of PROJECT_SEARCH_ATTRIBUTES) {
        expect(custom[attr.name], attr.name).toBe(attr.type === 'INT' ? INT : KEYWORD);
      }
      // idempotent
      const again = await ensureSearchAttributes(connection, inject('temporalNamespace'));
      expect(again.added).toEqual([]);
      expect(again.existing.sort()).toEqual(PROJECT_SEARCH_ATTRIBUTES.map((a) => a.name).sort());
    } finally {
      await connection.close();
    }
  });
});

describe('a second dev server on its own SQLite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proxmox-agent-temporal-persist-'));
  const dbFile = join(dir, 'persist.sqlite');
  const probe = defineSearchAttributeKey('ProxmoxPersistProbe', SearchAttributeType.KEYWORD);
  let server: DevServerHandle | undefined;
  const log = (m: string) => console.log(`[persist-test] ${m}`);

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps namespaces and search attributes across a restart and re-registers missing attributes', async () => {
    const cliPath = await ensureTemporalCli();
    const port = await getFreePort();

    // 1st start: fresh DB, extra namespace, only ONE project attribute via --search-attribute.
    server = await startDevServer({ cliPath, port, dbFile, headless: true, reuseExisting: false, extraNamespaces: ['extra'], searchAttributes: [ProxmoxAction], log });
    expect(server.pid).toBeTypeOf('number');
    expect(server.reused).toBe(false);
    let connection = await connectConnection({ address: server.address, namespace: 'default' });
    try {
      const added = await ensureSearchAttributes(connection, 'default', [probe]);
      expect(added.added).toEqual(['ProxmoxPersistProbe']);
      const custom = (await connection.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
      expect(Object.keys(custom).sort()).toEqual(['ProxmoxAction', 'ProxmoxPersistProbe']);
    } finally {
      await connection.close();
    }

    // A second start on the same port reuses the running server (and reuseExisting:false refuses).
    await expect(startDevServer({ cliPath, port, dbFile, headless: true, reuseExisting: false })).rejects.toSatisfy(
      (e) => e instanceof DevServerError && e.code === 'PORT_IN_USE',
    );
    const reused = await startDevServer({ cliPath, port, dbFile, headless: true, searchAttributes: [] });
    expect(reused.reused).toBe(true);
    expect(reused.pid).toBeUndefined();
    await reused.stop(); // no-op

    await server.stop();
    await server.stop(); // idempotent
    expect((await server.exited)?.signal ?? 'exited').toBeTruthy();
    expect(statSync(dbFile).size).toBeGreaterThan(0);

    // 2nd start on the SAME file, without --namespace extra, with ALL project attributes.
    server = await startDevServer({ cliPath, port, dbFile, headless: true, reuseExisting: false, log });
    connection = await connectConnection({ address: server.address, namespace: 'default' });
    try {
      // the namespace created by the first run survived
      const extra = await connection.workflowService.describeNamespace({ namespace: 'extra' });
      expect(extra.namespaceInfo?.name).toBe('extra');
      const custom = (await connection.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
      // the attribute added through the Operator API survived
      expect(custom.ProxmoxPersistProbe).toBe(KEYWORD);
      // and the project attributes missing from the existing DB were registered (--search-attribute is
      // ignored for an existing namespace, so this proves ensureSearchAttributes ran)
      for (const attr of PROJECT_SEARCH_ATTRIBUTES) expect(custom[attr.name], attr.name).toBe(attr.type === 'INT' ? INT : KEYWORD);
    } finally {
      await connection.close();
    }
  });
});

describe('a port held by something that is not Temporal', () => {
  it('fails with a clear PORT_IN_USE error instead of reusing it', async () => {
    const http = createServer((_req, res) => res.end('not temporal'));
    const port = await getFreePort();
    await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
    try {
      const err = await startDevServer({ cliPath: await ensureTemporalCli(), port, headless: true, dbFile: join(tmpdir(), 'never-created.sqlite') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DevServerError);
      expect((err as DevServerError).code).toBe('PORT_IN_USE');
      expect((err as Error).message).toMatch(new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is in use by something that is not a Temporal server`));
      expect((err as Error).message).toContain('TEMPORAL_ADDRESS');
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });
});
