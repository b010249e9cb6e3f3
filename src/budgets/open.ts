import { resolveSecret } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logging.js';
import { budgetLedgerPathFor, openFileBudgetStore } from './file-store.js';
import { openPostgresBudgetStore } from './pg-store.js';
import type { BudgetStore } from './store.js';

/**
 * The ledger beside the audit store the config names: the same PostgreSQL database (several API
 * replicas and workers), or a file next to the audit log (the embedded default).
 */
export async function openBudgetStore(
  audit: Config['audit'],
  opts: { configPath?: string | undefined; env?: NodeJS.ProcessEnv; log?: Logger } = {},
): Promise<BudgetStore> {
  if (audit.postgres) {
    const url = resolveSecret(audit.postgres.url, 'audit.postgres.url', opts.env, opts.configPath);
    return openPostgresBudgetStore(url, opts.log ? { log: opts.log } : {});
  }
  return openFileBudgetStore(budgetLedgerPathFor(audit.file));
}
