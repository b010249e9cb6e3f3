/**
 * `proxmox-agent budgets`: how much of its budgets the token's principal has used, and when a full
 * budget frees (every principal's with the admin scope). Talks to the HTTP API (GET /v1/budgets),
 * with the connection options every API command shares.
 *
 * Exit codes: 0 shown; 1 the API refused or could not be reached; 2 usage.
 */
import type { Command } from 'commander';
import type { BudgetsReport } from '../../client/index.js';
import { client, run, withConnectionOptions } from '../connection.js';
import { textTable } from '../plan-text.js';

export function register(program: Command): void {
  withConnectionOptions(program.command('budgets').description('Show budget usage per principal: used of limit, and when a full budget frees'))
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const report = await client(cmd).budgets();
        console.log(opts.json ? JSON.stringify(report, null, 2) : budgetsText(report));
      }),
    );
}

export function budgetsText(report: BudgetsReport): string {
  if (report.budgets.length === 0) return 'No budgets are configured for this principal.';
  const rows = report.budgets.map((b) => [
    b.principal,
    b.budget === 'concurrent' ? 'concurrent' : `${b.budget}/hour`,
    `${b.used}/${b.limit}`,
    b.freesAt ?? '-',
    b.heldBy?.join(',') ?? '',
  ]);
  return `${textTable(['PRINCIPAL', 'BUDGET', 'USED', 'FREES AT', 'HELD BY'], rows)}\n(as of ${report.at}; hourly budgets are a sliding ${report.windowSeconds / 60}-minute window)`;
}
