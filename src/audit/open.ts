import { ConfigError, resolveSecret } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging.js';
import { openFileAuditReader, openFileAuditStore } from './file-store.js';
import { openPostgresAuditStore } from './pg-store.js';
import { createCheckpointSigner } from './signing.js';
import type { AuditStore, SigningPolicy } from './store.js';

export type AuditConfig = Config['audit'];

/**
 * The store the config names: `audit.postgres` if set, else the file; signed if `audit.signing` is set.
 * `readOnly` (a process without a worker) opens a file log for reading only.
 */
export async function openAuditStore(
  audit: AuditConfig,
  opts: { configPath?: string; env?: NodeJS.ProcessEnv; log?: Logger; readOnly?: boolean } = {},
): Promise<AuditStore> {
  const signing = signingPolicy(audit, opts);
  // The file store has one writer (the worker's process); others read it. PostgreSQL takes writers anywhere.
  if (opts.readOnly && !audit.postgres) return openFileAuditReader(audit.file, signing ? { publicKeyPem: signing.signer.publicKeyPem } : {});
  const common = { ...(signing ? { signing } : {}), ...(opts.log ? { log: opts.log } : {}) };
  if (audit.postgres) {
    const url = resolveSecret(audit.postgres.url, 'audit.postgres.url', opts.env, opts.configPath);
    return openPostgresAuditStore(url, common);
  }
  return openFileAuditStore(audit.file, common);
}

function signingPolicy(audit: AuditConfig, opts: { configPath?: string; env?: NodeJS.ProcessEnv }): SigningPolicy | undefined {
  if (!audit.signing) return undefined;
  let pem = resolveSecret(audit.signing.privateKey, 'audit.signing.privateKey', opts.env, opts.configPath);
  // A PEM passed through an environment variable often has its newlines escaped.
  if (!pem.includes('\n') && pem.includes('\\n')) pem = pem.replaceAll('\\n', '\n');
  let signer;
  try {
    signer = createCheckpointSigner(pem);
  } catch (err) {
    throw new ConfigError(`audit.signing.privateKey: ${(err as Error).message}`);
  }
  return { signer, every: audit.signing.checkpointEvery, intervalMs: audit.signing.checkpointIntervalSeconds * 1000 };
}
