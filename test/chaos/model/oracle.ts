/**
 * The oracle of the model-based chaos suite. It reads ONLY what an outsider can see, and shares no
 * code with the implementation (no catalog, no plan-state rules, no audit store):
 *  - the simulators' mutation logs, request logs (what was asked, with which parameters, which faults
 *    it met, what was answered), task lists and task-stop records;
 *  - the API's final view of each plan (`GET /v1/actions/{planId}`) and every answer the driver got;
 *  - the audit records as stored in PostgreSQL and the exit of `proxmox-agent audit verify`;
 *  - the chaos the harness caused (kills, terms, restarts, operator cancels) and when.
 *
 * It is a pure function of those observations, so it can be exercised on made-up observations
 * (test/chaos/model/oracle.test.ts) to prove each rule fires.
 *
 * The guarantee under test: every Proxmox mutation belongs to exactly one plan; no mutation for a plan
 * a human rejected, policy denied, or that expired; a task is stopped only when an operator cancelled
 * its run; an outcome that cannot be known is reported as outcome_unknown with what was seen (the
 * UPID), never as success or a clean failure; nothing is lost or duplicated.
 */
import type { Mutation, RequestRecord, TaskStop, TaskView } from '../../../src/simulator/index.js';
import { PRINCIPALS, type Approver, type Cluster, type ExpectedRequest, type PlanSpec } from './scenario.js';

export const RULES = {
  'not-terminal': 'every plan reaches a terminal state (nothing lost)',
  'wrong-terminal-state': 'a plan ends as what the driver made of it (denied, expired, rejected)',
  'applied-mutation-count': 'a plan that succeeded with outcome "applied" caused exactly one mutation',
  'applied-upid-mismatch': 'the UPID the API reports for an applied plan is the UPID of its own mutation',
  'noop-with-mutation': 'a plan that succeeded as a no-op caused no mutation',
  'upid-shared': 'no UPID is reported by two plans',
  'upid-of-other-plan': "no plan reports a UPID whose task another plan's request started (or another action's)",
  'unattributed-mutation': 'every mutation in the simulators is attributable to exactly one plan',
  'mutation-for-refused-plan': 'no mutation for a plan that was rejected, denied or expired',
  'rejection-ignored':
    'a rejection the API accepted ends the plan as rejected, or as the refusal the run had already put on the chain (stale, denied, expired: nothing sent)',
  'task-stopped-without-cancel': 'a Proxmox task is stopped only when an operator cancelled its run',
  'failed-but-mutated': 'a failed plan caused no mutation, unless it says outcome_unknown',
  'unknown-without-upid': 'an outcome_unknown plan whose task ran reports that UPID',
  'decision-not-audited': 'every approval and rejection the API accepted is in the audit chain',
  'two-outcomes': 'a run has at most one outcome record in the audit chain',
  'outcome-not-audited': 'every finished plan has its outcome in the audit chain',
  'audit-outcome-mismatch': 'the audit chain and the API tell the same outcome (and UPID)',
  'audit-chain': 'proxmox-agent audit verify accepts the chain',
} as const;
export type Rule = keyof typeof RULES;

export interface Violation {
  rule: Rule;
  /** `label (planId)`, when the violation is about one plan. */
  plan?: string;
  message: string;
  evidence: Record<string, unknown>;
}

export interface DriverStep {
  step: string;
  /** ms since the run's start */
  at: number;
  status: number;
  /** The problem type's last segment, or the answered plan status. */
  code?: string;
  retried?: (number | string)[];
}

export interface Decision {
  who: Approver;
  decision: 'approve' | 'reject';
  /** ms since the run's start, when sent */
  at: number;
  status: number;
  /** The plan status the API answered with (202), or the problem's type. */
  answered?: string;
  /** The 202's `recorded`: whether the API saw the run record the decision before answering. */
  recorded?: boolean;
  retried?: (number | string)[];
}

export interface PlanRun {
  spec: PlanSpec;
  planId?: string;
  /** The 201 answer to the plan request. */
  planned?: any;
  /** The last view read from GET /v1/actions/{planId}. */
  final?: any;
  steps: DriverStep[];
  decisions: Decision[];
  /** ms since epoch, when an operator cancelled the run (Temporal client). */
  cancelledAt?: number;
  driverError?: string;
}

export interface ClusterObservations {
  mutations: Mutation[];
  requests: RequestRecord[];
  stops: TaskStop[];
  tasks: TaskView[];
}

export interface ChaosEvent {
  /** ms since epoch */
  at: number;
  kind: 'sigkill' | 'sigterm' | 'temporal-restart' | 'api-kill' | 'cancel' | 'arm-slow-recheck';
  target: string;
  detail?: string;
}

export interface AuditRow {
  seq: number;
  eventId: string;
  planId: string;
  record: { event: string; actor?: string; upid?: string; outcome?: string; detail?: Record<string, unknown>; [k: string]: unknown };
}

export interface Observations {
  /** ms since epoch: the run's start (times in steps are relative to it). */
  t0: number;
  runs: PlanRun[];
  clusters: Record<Cluster, ClusterObservations>;
  audit: { rows: AuditRow[]; verify: { exit: number | null; output: string } };
  events: ChaosEvent[];
}

export interface Judgement {
  violations: Violation[];
  /** Each mutation's owner (plan label), or undefined when unattributed. */
  owners: { cluster: Cluster; mutation: Mutation; owner?: string }[];
  /** Mutations attributed to each plan label. */
  byPlan: Map<string, Mutation[]>;
}

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'expired', 'denied', 'outcome_unknown']);
/** Records that state a run's outcome; a run has at most one. (`run.cancelled` is a note beside it.) */
const OUTCOME_EVENT = (e: string) => e.startsWith('action.') || ['plan.rejected', 'plan.expired', 'plan.denied', 'apply.denied', 'apply.refused_stale'].includes(e);

/** The service says the outcome cannot be known, in any of the spellings it might use. */
export function saysOutcomeUnknown(view: any): boolean {
  const norm = (s: unknown) => String(s ?? '').toLowerCase().replace(/[^a-z]/g, '');
  return [view?.status, view?.result?.outcome, view?.result?.errorType].some((v) => norm(v) === 'outcomeunknown');
}

export function requestMatches(want: ExpectedRequest, r: Pick<RequestRecord, 'method' | 'path' | 'params'> | undefined): boolean {
  if (!r || r.method !== want.method) return false;
  const pattern = new RegExp(`^${want.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{node\}/g, '[^/]+')}$`);
  if (!pattern.test(r.path)) return false;
  for (const [k, v] of Object.entries(want.params ?? {})) if (r.params?.[k] !== v) return false;
  if (want.includes && !(r.params?.[want.includes.name] ?? '').includes(want.includes.text)) return false;
  return true;
}

const who = (r: PlanRun) => `${r.spec.label} (${r.planId ?? 'no plan id'})`;
const brief = (m: Mutation) => ({ seq: m.seq, cluster: m.cluster, vmid: m.vmid, op: m.op, key: m.key, upid: m.upid, dispatch: m.dispatch });
const briefRequest = (r: RequestRecord | undefined, t0: number) =>
  r ? { seq: r.seq, at: `+${((r.time - t0) / 1000).toFixed(1)}s`, method: r.method, path: r.path, params: r.params, faults: r.faults, answer: r.answer, upid: r.upid } : undefined;
const briefView = (v: any) => (v ? { status: v.status, decision: v.decision, result: v.result } : undefined);

export function judge(obs: Observations): Judgement {
  const violations: Violation[] = [];
  const add = (rule: Rule, run: PlanRun | undefined, message: string, evidence: Record<string, unknown> = {}) =>
    violations.push({ rule, ...(run ? { plan: who(run) } : {}), message, evidence });
  const rel = (ms: number) => `+${((ms - obs.t0) / 1000).toFixed(1)}s`;
  const runs = obs.runs.filter((r) => r.planId);
  const reported = (r: PlanRun): string | undefined => r.final?.result?.upid;
  const requestBySeq = new Map<string, RequestRecord>();
  const requestByUpid = new Map<string, RequestRecord>();
  const taskByUpid = new Map<string, TaskView>();
  for (const c of ['lab', 'prod'] as const) {
    for (const r of obs.clusters[c].requests) {
      requestBySeq.set(`${c}/${r.seq}`, r);
      if (r.upid) requestByUpid.set(r.upid, r);
    }
    for (const t of obs.clusters[c].tasks) taskByUpid.set(t.upid, t);
  }
  const eventsNear = (at: number, beforeMs = 20_000) =>
    obs.events.filter((e) => e.at >= at - beforeMs && e.at <= at + 2000).map((e) => `${rel(e.at)} ${e.kind} ${e.target}${e.detail ? ` (${e.detail})` : ''}`);

  // ---- Attribution: each mutation to the one plan whose request caused it ----------------------
  const byPlan = new Map<string, Mutation[]>(runs.map((r) => [r.spec.label, []]));
  const owners: Judgement['owners'] = [];
  for (const c of ['lab', 'prod'] as const) {
    for (const m of obs.clusters[c].mutations) {
      const req = requestBySeq.get(`${c}/${m.dispatch}`);
      const sameKind = runs.filter((r) => r.spec.cluster === c && r.spec.expect.op === m.op && r.spec.expect.vmid === m.vmid && requestMatches(r.spec.expect.request, req));
      const byValue = sameKind.filter((r) => r.spec.distinct && (r.spec.expect.key === undefined || r.spec.expect.key === m.key));
      const claimers = m.upid ? runs.filter((r) => reported(r) === m.upid) : [];
      let owner: PlanRun | undefined;
      if (byValue.length === 1) owner = byValue[0];
      else if (byValue.length === 0) {
        const byUpid = sameKind.filter((r) => !r.spec.distinct && m.upid !== undefined && reported(r) === m.upid);
        if (byUpid.length === 1) owner = byUpid[0];
      }
      owners.push({ cluster: c, mutation: m, ...(owner ? { owner: owner.spec.label } : {}) });
      if (!owner) {
        add('unattributed-mutation', undefined, `${c} mutation #${m.seq} (${m.op} of ${m.vmid}${m.key ? ` '${m.key}'` : ''}, ${m.upid ?? 'no UPID'}) belongs to no plan: no plan reports its UPID${byValue.length > 1 ? ' and several plans match its request' : ''}`, {
          mutation: brief(m),
          request: briefRequest(req, obs.t0),
          candidates: sameKind.map((r) => ({ plan: who(r), view: briefView(r.final) })),
          claimedBy: claimers.map(who),
          chaosAround: eventsNear(m.time, 30_000),
        });
        continue;
      }
      byPlan.get(owner.spec.label)!.push(m);
      for (const other of claimers.filter((r) => r !== owner)) {
        add('upid-of-other-plan', other, `reports UPID ${m.upid}, which is the task of ${who(owner)} (its ${m.op}${m.key ? ` '${m.key}'` : ''})`, {
          reported: reported(other),
          view: briefView(other.final),
          mutation: brief(m),
          request: briefRequest(req, obs.t0),
        });
      }
    }
  }

  // ---- UPIDs: one plan each, and each the plan's own kind of task ----------------------------
  const upidOwners = new Map<string, PlanRun[]>();
  for (const r of runs) {
    const u = reported(r);
    if (u) upidOwners.set(u, [...(upidOwners.get(u) ?? []), r]);
  }
  for (const [u, rs] of upidOwners) {
    if (rs.length > 1) add('upid-shared', undefined, `UPID ${u} is reported by ${rs.length} plans: ${rs.map(who).join(', ')}`, { upid: u, plans: rs.map((r) => ({ plan: who(r), view: briefView(r.final) })), createdBy: briefRequest(requestByUpid.get(u), obs.t0) });
  }
  for (const r of runs) {
    const u = reported(r);
    if (!u) continue;
    const createdBy = requestByUpid.get(u);
    const ownMutation = (byPlan.get(r.spec.label) ?? []).some((m) => m.upid === u);
    if (ownMutation) continue;
    // A UPID that is no mutation of this plan: it must at least be a task this plan's request started.
    if (!createdBy || !requestMatches(r.spec.expect.request, createdBy)) {
      const alreadyReported = violations.some((v) => v.rule === 'upid-of-other-plan' && v.plan === who(r));
      if (!alreadyReported)
        add('upid-of-other-plan', r, `reports UPID ${u}, but ${createdBy ? `that task was started by ${createdBy.method} ${createdBy.path}, not by this plan's request` : 'no request to the simulators started it'}`, {
          view: briefView(r.final),
          expectedRequest: r.spec.expect.request,
          createdBy: briefRequest(createdBy, obs.t0),
          task: taskByUpid.get(u) ? { type: taskByUpid.get(u)!.type, id: taskByUpid.get(u)!.id, exitstatus: taskByUpid.get(u)!.exitstatus } : undefined,
        });
    }
  }

  // ---- Per plan: terminal state, mutations against outcome -----------------------------------
  for (const run of obs.runs) {
    if (!run.planId) continue;
    const v = run.final;
    const mine = byPlan.get(run.spec.label) ?? [];
    const evidence = () => ({
      view: briefView(v),
      mutations: mine.map(brief),
      requests: mine.map((m) => briefRequest(requestBySeq.get(`${run.spec.cluster}/${m.dispatch}`), obs.t0)),
      steps: run.steps,
      decisions: run.decisions,
    });
    if (!v || !TERMINAL.has(v.status)) {
      add('not-terminal', run, `never reached a terminal state (last seen: ${v?.status ?? 'never read'})`, { view: briefView(v), steps: run.steps, driverError: run.driverError });
    }
    const status: string | undefined = v?.status;
    const unknown = saysOutcomeUnknown(v);
    const acceptedRejection = run.decisions.find((d) => d.decision === 'reject' && d.status === 202);

    // What the driver's treatment fixes.
    const must: Partial<Record<PlanSpec['intent'], string[]>> = {
      deny: ['denied'],
      'deny-at-apply': ['denied', 'failed'],
      expire: ['expired'],
      'reject-first': ['rejected'],
      'reject-after-apply': ['rejected'],
    };
    // A plan policy denied when it was made (e.g. its shared guest was locked just then) never got its treatment.
    const deniedAtPlan = run.planned?.status === 'denied';
    const allowed = deniedAtPlan ? ['denied'] : must[run.spec.intent];
    if (status && TERMINAL.has(status) && allowed && !allowed.includes(status)) {
      add('wrong-terminal-state', run, `was meant to end ${allowed.join(' or ')} (${run.spec.intent}), ended ${status}`, evidence());
    }
    // The one other end a recorded rejection may have: a worker lost right after its re-check had put
    // a refusal (stale, denied) on the chain; the retried task sees the rejection first, but the chain's
    // first final decision stands (docs/plan-apply-lifecycle.md). Nothing was sent either way.
    const refusedBeforeSending =
      mine.length === 0 && (status === 'denied' || status === 'expired' || (status === 'failed' && v?.result?.errorType === 'PlanStale'));
    if (acceptedRejection && status && status !== 'rejected' && !refusedBeforeSending) {
      add('rejection-ignored', run, `the API accepted ${acceptedRejection.who}'s rejection at +${(acceptedRejection.at / 1000).toFixed(1)}s (answered ${acceptedRejection.answered ?? '202'}), yet the plan ended ${status}${mine.length ? ' and Proxmox was changed' : ''}`, evidence());
    }
    const refused =
      status === 'rejected' || status === 'denied' || status === 'expired' || acceptedRejection !== undefined || deniedAtPlan || ['deny', 'deny-at-apply', 'expire'].includes(run.spec.intent);
    if (refused && mine.length > 0) {
      add('mutation-for-refused-plan', run, `${mine.length} mutation(s) for a plan that ${acceptedRejection ? 'a human rejected' : `ended ${status}`}`, evidence());
    }

    if (status === 'succeeded') {
      const outcome = v.result?.outcome;
      if (outcome === 'noop') {
        if (mine.length > 0) add('noop-with-mutation', run, `succeeded as a no-op, but caused ${mine.map((m) => m.op).join(', ')}`, evidence());
      } else {
        if (mine.length !== 1) {
          const task = v.result?.upid ? taskByUpid.get(v.result.upid) : undefined;
          add('applied-mutation-count', run, `succeeded (${outcome}) with ${mine.length} mutations`, {
            ...evidence(),
            reportedTask: task ? { upid: task.upid, type: task.type, id: task.id, exitstatus: task.exitstatus, log: task.log.slice(-5), createdBy: briefRequest(requestByUpid.get(task.upid), obs.t0) } : undefined,
          });
        }
        const m = mine[0];
        if (m && run.spec.expect.task && m.upid !== v.result?.upid) {
          add('applied-upid-mismatch', run, `reports UPID ${v.result?.upid ?? '(none)'}, its mutation has ${m.upid ?? '(none)'}`, evidence());
        }
      }
    }
    if (status === 'failed' || status === 'outcome_unknown') {
      if (mine.length > 0 && !unknown) {
        add('failed-but-mutated', run, `failed (${v.result?.errorType ?? '?'}: ${String(v.result?.message ?? '').slice(0, 160)}) but Proxmox applied ${mine.map((m) => `${m.op} ${m.upid ?? ''}`.trim()).join(', ')}`, evidence());
      }
      if (unknown && mine.length > 0 && run.spec.expect.task && !mine.some((m) => m.upid === v.result?.upid)) {
        add('unknown-without-upid', run, `says outcome_unknown with UPID ${v.result?.upid ?? '(none)'}, but its task was ${mine.map((m) => m.upid).join(', ')}`, evidence());
      }
    }
  }

  // ---- Task stops: only an operator's cancel of that run ----------------------------------------
  for (const c of ['lab', 'prod'] as const) {
    for (const s of obs.clusters[c].stops) {
      if (!s.wasRunning) continue;
      const createdBy = requestByUpid.get(s.upid);
      const owners = runs.filter((r) => reported(r) === s.upid || (r.spec.cluster === c && r.spec.distinct && requestMatches(r.spec.expect.request, createdBy)));
      const cancelled = owners.filter((r) => r.cancelledAt !== undefined && r.cancelledAt <= s.time);
      if (cancelled.length > 0) continue;
      add('task-stopped-without-cancel', owners.length === 1 ? owners[0] : undefined, `${c} task ${s.upid} (${s.type} ${s.id}) was stopped at ${rel(s.time)} while running, and no operator had cancelled its run`, {
        stop: { ...s, at: rel(s.time) },
        createdBy: briefRequest(createdBy, obs.t0),
        plans: owners.map((r) => ({ plan: who(r), view: briefView(r.final), cancelledAt: r.cancelledAt ? rel(r.cancelledAt) : undefined })),
        // Plans whose request this could have been (nothing in a power action's request names its plan).
        couldBe: owners.length ? undefined : runs.filter((r) => r.spec.cluster === c && requestMatches(r.spec.expect.request, createdBy)).map((r) => ({ plan: who(r), view: briefView(r.final) })),
        chaosBefore: eventsNear(s.time),
      });
    }
  }

  // ---- The audit chain ---------------------------------------------------------------------------
  if (obs.audit.verify.exit !== 0) {
    add('audit-chain', undefined, `proxmox-agent audit verify exited ${obs.audit.verify.exit}`, { output: obs.audit.verify.output.slice(0, 4000) });
  }
  const rowsByPlan = new Map<string, AuditRow[]>();
  for (const row of obs.audit.rows) rowsByPlan.set(row.planId, [...(rowsByPlan.get(row.planId) ?? []), row]);
  for (const run of runs) {
    const rows = rowsByPlan.get(run.planId!) ?? [];
    const events = rows.map((r) => `${r.seq} ${r.record.event}${r.record.actor ? ` by ${r.record.actor}` : ''}${r.record.upid ? ` ${r.record.upid}` : ''}`);
    for (const d of run.decisions.filter((x) => x.status === 202)) {
      const event = d.decision === 'approve' ? 'approval.granted' : 'approval.rejected';
      if (!rows.some((r) => r.record.event === event && r.record.actor === PRINCIPALS[d.who])) {
        add('decision-not-audited', run, `the API accepted ${d.who}'s ${d.decision} at +${(d.at / 1000).toFixed(1)}s, but the chain has no ${event} by ${PRINCIPALS[d.who]}`, { decision: d, auditEvents: events, view: briefView(run.final) });
      }
    }
    const outcomes = rows.filter((r) => OUTCOME_EVENT(r.record.event));
    if (outcomes.length > 1) add('two-outcomes', run, `${outcomes.length} outcome records: ${outcomes.map((r) => r.record.event).join(', ')}`, { auditEvents: events, view: briefView(run.final) });
    const v = run.final;
    if (!v || !TERMINAL.has(v.status)) continue;
    const cancelledNote = rows.some((r) => r.record.event === 'run.cancelled');
    if (outcomes.length === 0 && !cancelledNote) {
      add('outcome-not-audited', run, `ended ${v.status}, but the chain has no outcome record for it`, { auditEvents: events, view: briefView(v) });
      continue;
    }
    const first = outcomes[0]?.record;
    if (!first) continue;
    const unknown = saysOutcomeUnknown(v);
    const auditUnknown = /unknown/i.test(first.event);
    const expected: string[] =
      v.status === 'succeeded'
        ? [`action.${v.result?.outcome}`]
        : v.status === 'rejected'
          ? ['plan.rejected']
          : v.status === 'expired'
            ? ['plan.expired']
            : v.status === 'denied'
              ? ['plan.denied', 'apply.denied']
              : unknown
                ? [first.event].filter(() => auditUnknown)
                : ['action.failed', 'apply.refused_stale'];
    const upidDiffers = v.status === 'succeeded' && v.result?.upid !== undefined && first.upid !== undefined && first.upid !== v.result.upid;
    if (!expected.includes(first.event) || (!unknown && auditUnknown) || upidDiffers) {
      add('audit-outcome-mismatch', run, `the API says ${v.status}${v.result?.outcome ? `/${v.result.outcome}` : ''}${v.result?.upid ? ` ${v.result.upid}` : ''}, the chain says ${first.event}${first.upid ? ` ${first.upid}` : ''}`, { auditEvents: events, view: briefView(v) });
    }
  }

  return { violations, owners, byPlan };
}
