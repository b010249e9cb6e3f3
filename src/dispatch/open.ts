import { resolveSecret } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging.js';
import { dispatchJournalPathFor, openFileDispatchJournal } from './file-journal.js';
import type { DispatchJournal } from './journal.js';
import { openPostgresDispatchJournal } from './pg-journal.js';

/**
 * The journal beside the audit store the config names: the same PostgreSQL database (several
 * workers), or a file next to the audit log (the one process that writes that log).
 */
export async function openDispatchJournal(
  audit: Config['audit'],
  opts: { configPath?: string | undefined; env?: NodeJS.ProcessEnv; log?: Logger } = {},
): Promise<DispatchJournal> {
  if (audit.postgres) {
    const url = resolveSecret(audit.postgres.url, 'audit.postgres.url', opts.env, opts.configPath);
    return openPostgresDispatchJournal(url, opts.log ? { log: opts.log } : {});
  }
  return openFileDispatchJournal(dispatchJournalPathFor(audit.file));
}
