/**
 * The kill switch from the command line (admin scope; docs/operations.md, "Freezing an environment"):
 *
 *   proxmox-agent freeze --environment prod --reason "incident 123"
 *   proxmox-agent freezes [--environment prod] [--all] [--json]
 *   proxmox-agent unfreeze <freezeId>
 *
 * Same connection options and exit codes as the other API commands (src/cli/connection.ts).
 */
import type { Command } from 'commander';
import type { Freeze } from '../../client/index.js';
import { client, run, withConnectionOptions } from '../connection.js';

const line = (f: Freeze) =>
  `${f.id}  ${f.environment}  frozen ${f.at} by ${f.by}${f.liftedAt ? `, lifted ${f.liftedAt} by ${f.liftedBy}` : ''}: ${f.reason}`;

export function register(program: Command): void {
  withConnectionOptions(
    program
      .command('freeze')
      .description('Freeze an environment: from the answer on, no apply starts there (running Proxmox tasks are left alone)')
      .requiredOption('--environment <name>', 'the environment to freeze')
      .requiredOption('--reason <text>', 'why (recorded in the audit log and shown on every plan it holds)')
      .option('--json', 'print JSON'),
  ).action((opts: { environment: string; reason: string; json?: boolean }, cmd: Command) =>
    run(async () => {
      const f = await client(cmd).freeze(opts.environment, opts.reason);
      if (opts.json) return console.log(JSON.stringify(f, null, 2));
      console.log(`frozen: ${line(f)}`);
      if (f.stillSending.length > 0) console.log(`requests sent before the freeze and not yet answered: ${f.stillSending.join(', ')}`);
      console.log(`lift it with: proxmox-agent unfreeze ${f.id}`);
    }),
  );

  withConnectionOptions(
    program
      .command('freezes')
      .description('List the freezes in force in the environments your token may see')
      .option('--environment <name>', 'only this environment')
      .option('--all', 'also freezes already lifted')
      .option('--json', 'print JSON'),
  ).action((opts: { environment?: string; all?: boolean; json?: boolean }, cmd: Command) =>
    run(async () => {
      const { freezes } = await client(cmd).freezes({ ...(opts.environment ? { environment: opts.environment } : {}), ...(opts.all ? { includeLifted: true } : {}) });
      if (opts.json) return console.log(JSON.stringify(freezes, null, 2));
      console.log(freezes.length === 0 ? 'no environment is frozen' : freezes.map(line).join('\n'));
    }),
  );

  withConnectionOptions(
    program.command('unfreeze <freezeId>').description('Lift a freeze: the runs it held go on, each re-checked first').option('--json', 'print JSON'),
  ).action((id: string, opts: { json?: boolean }, cmd: Command) =>
    run(async () => {
      const f = await client(cmd).lift(id);
      console.log(opts.json ? JSON.stringify(f, null, 2) : `lifted: ${line(f)}`);
    }),
  );
}
