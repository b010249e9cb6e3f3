/**
 * `proxmox-agent undo <planId> --reason …`: plan the inverse of a plan that succeeded (its one undo),
 * under policy and approvals like any plan; `--apply [--follow]` as for `plan`.
 */
import type { Command } from 'commander';
import { client, CliExit, EXIT_USAGE, run, withConnectionOptions } from '../connection.js';
import { EXIT_HELP, showPlanThenMaybeApply, type PlanOptions } from './actions.js';

type UndoOptions = Pick<PlanOptions, 'reason' | 'idempotencyKey' | 'apply' | 'follow' | 'json'>;

export function register(program: Command): void {
  withConnectionOptions(program.command('undo <planId>'))
    .description('Plan the undo of a plan that succeeded: its inverse, as a new plan linked to it (see `undo` on the plan)')
    .option('-r, --reason <text>', 'why the change is taken back: recorded and shown to approvers')
    .option('--idempotency-key <key>', 'accepted for symmetry with plan; a plan has one undo, so a repeat lands on it anyway')
    .option('--apply', 'apply the undo right away when it is not denied')
    .option('--follow', 'with --apply: follow it to its end')
    .option('--json', 'print the API JSON')
    .addHelpText('after', EXIT_HELP)
    .action((planId: string, opts: UndoOptions, cmd: Command) => run(() => undoCommand(cmd, planId, opts)));
}

async function undoCommand(cmd: Command, planId: string, opts: UndoOptions): Promise<void> {
  if (!opts.reason) throw new CliExit('missing --reason: say why the change is taken back', EXIT_USAGE);
  const api = client(cmd, 'api');
  const plan = await api.undo(planId, opts.reason, opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {});
  if (!opts.json) console.error(`Undo of ${planId}: ${plan.planId}`);
  await showPlanThenMaybeApply(api, plan, opts);
}
