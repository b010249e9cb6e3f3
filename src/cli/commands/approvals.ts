/**
 * `proxmox-agent approvals list | show <planId> | approve <planId> | reject <planId>`
 *
 * Talks to the HTTP API: `--url` or PROXMOX_AGENT_URL (default http://127.0.0.1:8787); the token from
 * PROXMOX_AGENT_TOKEN or `--token-file` (deliberately no `--token`: arguments leak into shell history
 * and `ps`). approve/reject print the plan and ask before sending; `--yes` skips the question, and
 * without it a non-interactive stdin is refused. Decisions are recorded with channel `cli` and bound
 * to the requestHash that was shown.
 *
 * Exit codes: 0 done; 1 the API refused or could not be reached; 2 usage (no token, cannot prompt);
 * 3 not confirmed.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { CliExit, client, run, withConnectionOptions } from '../connection.js';
import { approvalsTable, oneLine, planText } from '../plan-text.js';

export const EXIT = { ok: 0, refused: 1, usage: 2, notConfirmed: 3 } as const;

export function register(program: Command): void {
  const approvals = withConnectionOptions(program.command('approvals').description('List, inspect, approve and reject plans that wait for a human'));

  approvals
    .command('list')
    .description('Plans awaiting approval in the environments your token may see')
    .option('--limit <n>', 'at most this many (one page, oldest first)', (v) => Number.parseInt(v, 10))
    .option('--cursor <cursor>', 'start after this position (a previous page\'s nextCursor)')
    .option('--json', 'print JSON')
    .action((opts: { limit?: number; cursor?: string; json?: boolean }, cmd: Command) =>
      run(async () => {
        const list = await client(cmd).listApprovals({
          status: 'pending',
          ...(opts.limit ? { limit: opts.limit } : {}),
          ...(opts.cursor ? { cursor: opts.cursor } : {}),
        });
        if (opts.json) return console.log(JSON.stringify(list, null, 2));
        console.log(approvalsTable(list.items));
        if (list.nextCursor) console.log(`\nMore plans wait: proxmox-agent approvals list${opts.limit ? ` --limit ${opts.limit}` : ''} --cursor ${list.nextCursor}`);
      }),
    );

  approvals
    .command('show <planId>')
    .description('Print a plan: action, target, requester, reason, risk, every reason, approvals, preflight')
    .option('--json', 'print JSON')
    .action((planId: string, opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const plan = await client(cmd).get(planId);
        console.log(opts.json ? JSON.stringify(plan, null, 2) : planText(plan));
      }),
    );

  for (const decision of ['approve', 'reject'] as const) {
    approvals
      .command(`${decision} <planId>`)
      .description(decision === 'approve' ? 'Approve a plan after reviewing it' : 'Reject a plan (this ends it)')
      .option('-m, --comment <text>', 'a comment recorded with your decision')
      .option('-y, --yes', 'do not ask for confirmation')
      .action((planId: string, opts: { comment?: string; yes?: boolean }, cmd: Command) => run(() => decide(cmd, decision, planId, opts)));
  }
}

async function decide(cmd: Command, decision: 'approve' | 'reject', planId: string, opts: { comment?: string; yes?: boolean }): Promise<void> {
  if (!opts.yes && !process.stdin.isTTY)
    throw new CliExit(`refusing to prompt: standard input is not a terminal; review with 'approvals show ${planId}' and pass --yes`, EXIT.usage);
  const api = client(cmd);
  const plan = await api.get(planId);
  console.log(planText(plan));
  console.log('');
  if (plan.status !== 'awaiting_approval' && plan.status !== 'approved')
    throw new CliExit(`plan ${planId} is ${plan.status}: it takes no ${decision === 'approve' ? 'approvals' : 'rejections'}`, EXIT.refused);
  if (!opts.yes) {
    const question =
      decision === 'approve'
        ? `Approve ${planId} (${oneLine(plan)})? [y/N] `
        : `Reject ${planId} (${oneLine(plan)})? This ends the plan. [y/N] `;
    if (!(await confirm(question))) throw new CliExit('not confirmed; nothing was sent', EXIT.notConfirmed);
  }
  // Bound to the hash just shown: if the request were different, the run refuses the decision.
  const res = await api.approve(planId, { decision, requestHash: plan.requestHash, ...(opts.comment ? { comment: opts.comment } : {}) });
  const verb = decision === 'approve' ? 'Approved' : 'Rejected';
  console.log(`${verb} ${planId}: status ${res.status}; ${res.approval.received} approver(s) so far.`);
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
