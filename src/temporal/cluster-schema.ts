/**
 * Temporal's two PostgreSQL databases, created and brought to the server's schema version with its own
 * SQL tool (`.temporal/bin/sql`, as `temporal-sql-tool` in the admin-tools image):
 *
 *   sql --plugin postgres12 --ep <host> -p <port> -u <user> --db temporal create-database
 *   sql … --db temporal setup-schema -v 0.0                                     (the versioning tables)
 *   sql … --db temporal update-schema -d <schema>/temporal/versioned            (every versioned step)
 *
 * and the same for `temporal_visibility` with `visibility/versioned`. The password goes in
 * SQL_PASSWORD, never on the command line.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { TEMPORAL_DATABASE, TEMPORAL_VISIBILITY_DATABASE } from './cluster-config.js';
import { silentLog, type TemporalLog } from './log.js';

export interface SchemaTarget {
  sqlTool: string;
  /** `.temporal/schema/v1.29.1/postgresql/v12` */
  schemaDir: string;
  postgres: { host: string; port: number; user: string; password: string };
}

/**
 * The SQL tool's argument lists, in order. Every step is idempotent (create-database and setup-schema
 * leave an existing database as it is; update-schema applies only the versions it lacks, e.g. after a
 * server upgrade), so they run at every start, as Temporal's own compose setup job does.
 */
export function schemaCommands(t: Omit<SchemaTarget, 'sqlTool'>): string[][] {
  const steps: string[][] = [];
  for (const [db, sub] of [
    [TEMPORAL_DATABASE, 'temporal'],
    [TEMPORAL_VISIBILITY_DATABASE, 'visibility'],
  ] as const) {
    const base = ['--plugin', 'postgres12', '--ep', t.postgres.host, '-p', String(t.postgres.port), '-u', t.postgres.user, '--db', db];
    steps.push([...base, 'create-database'], [...base, 'setup-schema', '-v', '0.0'], [...base, 'update-schema', '-d', join(t.schemaDir, sub, 'versioned')]);
  }
  return steps;
}

/** Runs {@link schemaCommands}; throws with the tool's output when a step fails. */
export async function setupSchemas(t: SchemaTarget, log: TemporalLog = silentLog): Promise<void> {
  const started = Date.now();
  for (const args of schemaCommands(t)) {
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(t.sqlTool, args, { env: { PATH: process.env.PATH, SQL_PASSWORD: t.postgres.password }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, out }));
    });
    if (code !== 0) throw new Error(`${t.sqlTool} ${args.join(' ')} exited ${code}:\n${out.trim().split('\n').slice(-20).join('\n')}`);
  }
  log(`Temporal schemas ready (${TEMPORAL_DATABASE}, ${TEMPORAL_VISIBILITY_DATABASE}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
