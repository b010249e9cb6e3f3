/**
 * `proxmox-agent` command line. Each command group lives in src/cli/commands/<group>.ts and exports
 * `register(program)`; this file only wires them.
 */
import { Command } from 'commander';
import { register as registerActions } from './commands/actions.js';
import { register as registerApprovals } from './commands/approvals.js';
import { register as registerAudit } from './commands/audit.js';
import { register as registerFreezes } from './commands/freezes.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerBudgets } from './commands/budgets.js';
import { register as registerMcp } from './commands/mcp.js';
import { register as registerPolicy } from './commands/policy.js';
import { register as registerTokens } from './commands/tokens.js';
import { register as registerUndo } from './commands/undo.js';

export function buildProgram(): Command {
  const program = new Command('proxmox-agent')
    .description('Plan, approve and apply Proxmox VE changes under policy')
    .showHelpAfterError()
    .exitOverride();
  // Command groups register here, one line each.
  registerActions(program);
  registerUndo(program);
  registerApprovals(program);
  registerPolicy(program);
  registerBudgets(program);
  registerAudit(program);
  registerTokens(program);
  registerFreezes(program);
  registerDoctor(program);
  registerMcp(program);
  return program;
}

export async function runCli(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
    console.error(`proxmox-agent: ${e.message ?? String(err)}`);
    return 1;
  }
}
