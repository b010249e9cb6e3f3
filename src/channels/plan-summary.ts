/**
 * Plain-language pieces of a plan, shared by every place a human reads one before deciding: the CLI,
 * Slack messages and JSON notifications. Pure.
 */
import type { PlanView, Preflight } from '../domain/plan-view.js';

export interface PlanLinks {
  /** The plan in the API, e.g. https://agent.example/v1/actions/plan_… */
  api?: string;
  /** The run in the Temporal Web UI. */
  temporalUi?: string;
}

export interface LinkBases {
  apiBaseUrl?: string;
  temporalUi?: { baseUrl: string; namespace: string };
}

export function planLinks(planId: string, bases: LinkBases): PlanLinks {
  const trim = (u: string) => u.replace(/\/+$/, '');
  return {
    ...(bases.apiBaseUrl ? { api: `${trim(bases.apiBaseUrl)}/v1/actions/${planId}` } : {}),
    ...(bases.temporalUi
      ? { temporalUi: `${trim(bases.temporalUi.baseUrl)}/namespaces/${encodeURIComponent(bases.temporalUi.namespace)}/workflows/${planId}` }
      : {}),
  };
}

/** e.g. `vm.delete on prod/201 (db-prod @ pve-prod)` */
export function describeRequest(view: Pick<PlanView, 'action' | 'environment' | 'target' | 'preflight'>): string {
  const name = view.preflight.state?.name;
  const node = view.target.node ?? view.preflight.state?.node;
  const where = [name, node ? `@ ${node}` : undefined].filter(Boolean).join(' ');
  return `${view.action} on ${view.environment}/${view.target.vmid}${where ? ` (${where})` : ''}`;
}

/** What the target looked like when planned, in one line. */
export function describePreflight(preflight: Preflight): string {
  const s = preflight.state;
  const parts: string[] = [];
  if (!s) parts.push('target not read');
  else if (!s.exists) parts.push(`${s.kind === 'lxc' ? 'container' : 'VM'} ${s.vmid} does not exist`);
  else {
    parts.push(`${s.kind === 'lxc' ? 'container' : 'VM'} ${s.vmid}${s.name ? ` '${s.name}'` : ''} on ${s.node}: ${s.status ?? 'status unknown'}`);
    if (s.lock) parts.push(`locked (${s.lock})`);
    if (s.protection) parts.push('protected');
    if (s.haManaged) parts.push('HA-managed');
    if (s.template) parts.push('template');
    if (s.tags.length) parts.push(`tags ${s.tags.join(',')}`);
    if (s.pool) parts.push(`pool ${s.pool}`);
    if (s.snapshots.length) parts.push(`${s.snapshots.length} snapshot${s.snapshots.length === 1 ? '' : 's'}`);
  }
  const a = preflight.assessment;
  parts.push(`assessment: ${a.kind}${a.reason ? ` (${a.reason})` : ''}${a.note ? ` — ${a.note}` : ''}`);
  return parts.join('; ');
}

export function describeApprovals(view: Pick<PlanView, 'approval'>): string {
  const { approvers, rejectedBy } = view.approval;
  if (rejectedBy) return `rejected by ${rejectedBy.principal} via ${rejectedBy.channel}`;
  const who = approvers.map((a) => `${a.principal} via ${a.channel}`).join(', ');
  const missing = describeMissing(view);
  return `${approvers.length} so far${who ? ` (${who})` : ''}; ${missing ? `still needed: ${missing}` : 'complete'}`;
}

/** The approvals the gate still waits for, e.g. "1 more via api/cli; 1 more with role dba", or '' when none. */
export function describeMissing(view: { approval: { requirements: readonly Pick<PlanView['approval']['requirements'][number], 'count' | 'received' | 'roles' | 'channels'>[] } }): string {
  return view.approval.requirements
    .filter((r) => r.received < r.count)
    .map((r) => `${r.count - r.received} more${r.roles ? ` with role ${r.roles.join('/')}` : ''}${r.channels ? ` via ${r.channels.join('/')}` : ''}`)
    .join('; ');
}
