/**
 * How the CLI prints plans: everything an approver should read before deciding, in plain text.
 */
import { describeApprovals, describeMissing, describePreflight, describeRequest } from '../channels/plan-summary.js';
import type { ApprovalSummary, Plan } from '../client/index.js';

const row = (label: string, value: string) => `${label.padEnd(12)}${value}`;

export function planText(p: Plan): string {
  const state = p.preflight.state;
  const target = `vmid ${p.target.vmid}${p.target.node ? ` on ${p.target.node}` : ''}${state?.name ? ` (${state.name})` : ''}`;
  const lines = [
    row('Plan', p.planId),
    row('Action', p.action),
    row('Environment', p.environment),
    row('Target', target),
    row('Params', JSON.stringify(p.params)),
    row('Requester', `${p.requester.principal} (token ${p.requester.tokenId}, via ${p.requester.channel}) at ${p.createdAt}`),
    row('Reason', p.reason),
    row('Status', `${p.status}${p.applyRequested ? ' (apply requested)' : ' (not applied yet)'}`),
    row('Risk', p.risk),
    row('Decision', p.decision),
    'Reasons',
    ...p.reasons.map((r) => {
      const hint = (r as { hint?: string }).hint;
      return `  - ${r.rule}: ${r.message}${hint ? `\n      → ${hint}` : ''}`;
    }),
    row('Approvals', describeApprovals(p)),
    ...p.approval.requirements.map((r) => `  needs ${r.count}${r.roles ? ` with role ${r.roles.join('/')}` : ''}${r.channels ? ` via ${r.channels.join('/')}` : ''} (${r.id}): ${r.received} so far`),
    ...p.approval.approvers.map((a) => `  - ${a.principal} via ${a.channel} at ${a.at}${a.comment ? `: ${a.comment}` : ''}`),
    ...(p.approval.rejectedBy ? [`  - rejected by ${p.approval.rejectedBy.principal} via ${p.approval.rejectedBy.channel} at ${p.approval.rejectedBy.at}`] : []),
    row('Preflight', `${describePreflight(p.preflight)} (checked ${p.preflight.checkedAt})`),
    row('Expires', p.expiresAt),
    row('Request', p.requestHash),
    ...(p.result ? [row('Result', `${p.result.outcome}${p.result.upid ? ` ${p.result.upid}` : ''}${p.result.message ? `: ${p.result.message}` : ''}`)] : []),
    ...(p.undoes ? [row('Undoes', p.undoes)] : []),
    ...(p.undo ? [row('Undo', p.undo.inverse ? `${p.undo.inverse.action} ${JSON.stringify(p.undo.inverse.params)}: ${p.undo.reason}` : `none: ${p.undo.reason}`)] : []),
    ...(p.undoneBy ? [row('Undone by', p.undoneBy)] : []),
    ...(p.links.temporalUi ? [row('Temporal', p.links.temporalUi)] : []),
  ];
  return lines.join('\n');
}

export function approvalsTable(items: readonly ApprovalSummary[]): string {
  if (items.length === 0) return 'No plans are waiting for approval.';
  const rows = items.map((i) => [
    i.planId,
    i.action,
    `${i.environment}/${i.target.vmid}`,
    i.risk,
    `${i.approval.received}/${i.approval.required}${i.approval.received >= i.approval.required && describeMissing(i) ? '+' : ''}`,
    i.requester.principal,
    i.expiresAt,
    i.reason.length > 40 ? `${i.reason.slice(0, 39)}…` : i.reason,
  ]);
  return textTable(['PLAN', 'ACTION', 'TARGET', 'RISK', 'APPROVALS', 'REQUESTER', 'EXPIRES', 'REASON'], rows);
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: string[]) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  return [fmt(header), ...rows.map(fmt)].join('\n');
}

export function oneLine(p: Pick<Plan, 'action' | 'environment' | 'target' | 'preflight' | 'risk'>): string {
  return `${describeRequest(p)}, risk ${p.risk}`;
}
