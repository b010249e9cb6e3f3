/**
 * `proxmox-agent doctor [--environment E]`: the connection doctor (GET /v1/doctor, docs/doctor.md).
 * Prints one line per check and, below, the exact commands that fix each failing one.
 *
 * Exit codes: 0 no blocker; 3 at least one blocker (an allowed action cannot work); 1 the API
 * refused or could not be reached; 2 usage.
 */
import type { Command } from 'commander';
import type { DoctorReport } from '../../client/index.js';
import { client, run, withConnectionOptions } from '../connection.js';
import { textTable } from '../plan-text.js';

export const EXIT_BLOCKERS = 3;

export function register(program: Command): void {
  withConnectionOptions(
    program
      .command('doctor')
      .description("Check each environment's Proxmox connection: reachable, TLS pin, release, the token's privileges against what the policy allows; prints the pveum commands that fix what is missing"),
  )
    .option('-e, --environment <name>', 'only this environment')
    .option('--json', 'print JSON')
    .action((opts: { environment?: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        const report = await client(cmd).doctor(opts.environment);
        console.log(opts.json ? JSON.stringify(report, null, 2) : doctorText(report));
        if (report.blockers > 0) process.exitCode = EXIT_BLOCKERS;
      }),
    );
}

const MARK = { ok: 'ok', blocker: 'BLOCKER', warning: 'warning', info: 'info' } as const;

export function doctorText(report: DoctorReport): string {
  const rows = report.environments.flatMap((e) => e.checks.map((c) => [e.environment, c.id, c.ok ? MARK.ok : MARK[c.severity], c.detail]));
  const out = [textTable(['ENVIRONMENT', 'CHECK', 'STATUS', 'DETAIL'], rows)];
  const fixes = report.environments.flatMap((e) => e.checks.filter((c) => !c.ok && c.fix?.length).map((c) => ({ env: e.environment, c })));
  if (fixes.length > 0) {
    out.push('', 'To fix (pveum commands run on a cluster node as root):');
    for (const { env, c } of fixes) out.push('', `# ${env} ${c.id} (${c.severity})`, ...c.fix!);
  }
  const warnings = report.environments.reduce((n, e) => n + e.checks.filter((c) => !c.ok && c.severity === 'warning').length, 0);
  out.push('', report.blockers > 0 ? `${report.blockers} blocker(s), ${warnings} warning(s).` : `No blockers${warnings > 0 ? `; ${warnings} warning(s)` : ''}.`);
  return out.join('\n');
}
