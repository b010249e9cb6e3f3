/**
 * The oracle on made-up observations: a clean run passes, and each way of breaking the guarantee is
 * caught by its rule (so a green model-chaos run is not a vacuous one).
 */
import { describe, expect, it } from 'vitest';
import type { Mutation, RequestRecord, TaskStop, TaskView } from '../../../src/simulator/index.js';
import { judge, type AuditRow, type Observations, type PlanRun, type Rule } from './oracle.js';
import type { PlanSpec } from './scenario.js';

const T0 = 1_000_000;
const U = (n: number, type = 'qmsnapshot', vmid = 100) => `UPID:pve-lab:0000${String(n).padStart(4, '0')}:00000001:6A000000:${type}:${vmid}:proxmox-agent@pve!agent:`;

function spec(label: string, over: Partial<PlanSpec> = {}): PlanSpec {
  const snapname = label;
  return {
    label,
    cluster: 'lab',
    vmid: 100,
    action: 'vm.snapshot.create',
    params: { snapname },
    intent: 'run',
    approvers: [],
    applies: 1,
    startAtMs: 0,
    expect: { op: 'snapshot', vmid: 100, key: snapname, task: true, taskType: 'qmsnapshot', request: { method: 'POST', path: '/nodes/{node}/qemu/100/snapshot', params: { snapname } } },
    distinct: true,
    ...over,
  };
}

const stopSpec = (label: string): PlanSpec =>
  spec(label, { action: 'vm.stop', params: {}, expect: { op: 'stop', vmid: 100, task: true, taskType: 'qmstop', request: { method: 'POST', path: '/nodes/{node}/qemu/100/status/stop' } }, distinct: false });

class World {
  runs: PlanRun[] = [];
  mutations: Mutation[] = [];
  requests: RequestRecord[] = [];
  stops: TaskStop[] = [];
  tasks: TaskView[] = [];
  rows: AuditRow[] = [];
  verifyExit = 0;
  private seq = 0;

  plan(s: PlanSpec, final: any, more: Partial<PlanRun> = {}): PlanRun {
    const run: PlanRun = { spec: s, planId: `p-${s.label}`, final, steps: [], decisions: [], ...more };
    this.runs.push(run);
    return run;
  }
  /** A request to the simulator; with `mutate`, its effect in the mutation log. */
  request(path: string, params: Record<string, string>, opts: { upid?: string; op?: Mutation['op']; key?: string; method?: string; faults?: string[] } = {}): RequestRecord {
    const r: RequestRecord = { seq: ++this.seq, time: T0 + this.seq * 100, method: opts.method ?? 'POST', path, params, faults: opts.faults ?? [], executed: true, ...(opts.upid ? { upid: opts.upid } : {}), answer: { kind: 'answered', status: 200 } };
    this.requests.push(r);
    if (opts.op) {
      this.mutations.push({ seq: this.mutations.length + 1, time: r.time + 50, cluster: 'lab', node: 'pve-lab', vmid: 100, type: 'qemu', op: opts.op, key: opts.key ?? '', dispatch: r.seq, detail: {}, ...(opts.upid ? { upid: opts.upid } : {}) });
    }
    return r;
  }
  audit(run: PlanRun, ...events: (string | { event: string; actor?: string; upid?: string })[]) {
    for (const e of events) {
      const record = typeof e === 'string' ? { event: e } : e;
      this.rows.push({ seq: this.rows.length + 1, eventId: `${run.planId}/${this.rows.length + 1}/${record.event}`, planId: run.planId!, record });
    }
  }
  observations(): Observations {
    const empty = { mutations: [], requests: [], stops: [], tasks: [] };
    return {
      t0: T0,
      runs: this.runs,
      clusters: { lab: { mutations: this.mutations, requests: this.requests, stops: this.stops, tasks: this.tasks }, prod: empty },
      audit: { rows: this.rows, verify: { exit: this.verifyExit, output: '' } },
      events: [],
    };
  }
  rules(): Rule[] {
    return [...new Set(judge(this.observations()).violations.map((v) => v.rule))].sort();
  }
}

const applied = (upid?: string) => ({ status: 'succeeded', decision: 'allowed', result: { outcome: 'applied', ...(upid ? { upid } : {}) } });

/** A world where two snapshot plans and one stop plan each did their one thing, truthfully. */
function clean(): World {
  const w = new World();
  for (const [n, label] of [[1, 'a'], [2, 'b']] as const) {
    const run = w.plan(spec(label), applied(U(n)));
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: label }, { upid: U(n), op: 'snapshot', key: label });
    w.audit(run, 'plan.created', 'apply.requested', 'apply.started', { event: 'action.applied', upid: U(n) });
  }
  const stop = w.plan(stopSpec('stop'), applied(U(3, 'qmstop')));
  w.request('/nodes/pve-lab/qemu/100/status/stop', {}, { upid: U(3, 'qmstop'), op: 'stop' });
  w.audit(stop, 'plan.created', { event: 'action.applied', upid: U(3, 'qmstop') });
  return w;
}

describe('model-chaos oracle', () => {
  it('passes a clean run', () => {
    expect(clean().rules()).toEqual([]);
  });

  it('catches a retry that adopted another plan’s task (and the own task left unclaimed)', () => {
    const w = clean();
    const c = w.plan(spec('c'), applied(U(1)));
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'c' }, { upid: U(9), op: 'snapshot', key: 'c', faults: ['drop-after-dispatch'] });
    w.audit(c, 'plan.created', { event: 'action.applied', upid: U(1) });
    expect(w.rules()).toEqual(['applied-upid-mismatch', 'upid-of-other-plan', 'upid-shared']);
  });

  it('catches a duplicate dispatch, an unattributable mutation and an applied plan without its mutation', () => {
    const w = clean();
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'a' }, { upid: U(7), op: 'snapshot', key: 'a' });
    expect(w.rules()).toEqual(['applied-mutation-count']);
    const v = clean();
    v.request('/nodes/pve-lab/qemu/100/status/stop', {}, { upid: U(8, 'qmstop'), op: 'stop' });
    const nothing = v.plan(spec('z'), applied(U(5)));
    v.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'z' }, { upid: U(5) });
    v.audit(nothing, { event: 'action.applied', upid: U(5) });
    expect(v.rules()).toEqual(['applied-mutation-count', 'unattributed-mutation']);
  });

  it('catches a no-op that mutated, and a 2xx-garbled dispatch reported as a clean failure', () => {
    const w = clean();
    const noop = w.plan(spec('n'), { status: 'succeeded', result: { outcome: 'noop' } });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'n' }, { upid: U(11), op: 'snapshot', key: 'n', faults: ['drop-after-dispatch'] });
    w.audit(noop, { event: 'action.noop' });
    const garbled = w.plan(spec('g'), { status: 'failed', result: { outcome: 'failed', errorType: 'ProxmoxProtocolError', message: 'not JSON' } });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'g' }, { upid: U(12), op: 'snapshot', key: 'g', faults: ['garbled-after-dispatch'] });
    w.audit(garbled, { event: 'action.failed' });
    expect(w.rules()).toEqual(['failed-but-mutated', 'noop-with-mutation']);
  });

  it('accepts outcome_unknown with the UPID, and catches it without', () => {
    const ok = clean();
    const u = ok.plan(spec('u'), { status: 'failed', result: { outcome: 'failed', errorType: 'OutcomeUnknown', upid: U(13) } });
    ok.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'u' }, { upid: U(13), op: 'snapshot', key: 'u', faults: ['garbled-after-dispatch'] });
    ok.audit(u, { event: 'action.outcome_unknown', upid: U(13) });
    expect(ok.rules()).toEqual([]);
    const bad = clean();
    const v = bad.plan(spec('u'), { status: 'failed', result: { outcome: 'outcome_unknown' } });
    bad.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'u' }, { upid: U(13), op: 'snapshot', key: 'u' });
    bad.audit(v, { event: 'action.failed' });
    expect(bad.rules()).toEqual(['audit-outcome-mismatch', 'unknown-without-upid']);
  });

  it('catches mutations of rejected, expired and denied plans, and an ignored rejection', () => {
    const w = clean();
    const r = w.plan(spec('r', { intent: 'reject-race' }), applied(U(14)), {
      decisions: [{ who: 'carol', decision: 'reject', at: 5000, status: 202, answered: 'rejected' }],
    });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'r' }, { upid: U(14), op: 'snapshot', key: 'r' });
    w.audit(r, { event: 'approval.rejected', actor: 'human:carol' }, { event: 'action.applied', upid: U(14) });
    const e = w.plan(spec('e', { intent: 'expire' }), { status: 'expired' });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'e' }, { upid: U(15), op: 'snapshot', key: 'e' });
    w.audit(e, 'plan.expired');
    expect(w.rules()).toEqual(['mutation-for-refused-plan', 'rejection-ignored']);
  });

  it('lets a recorded rejection end as the stale refusal already on the chain, but not once anything was sent', () => {
    const w = clean();
    const stale = w.plan(spec('st', { intent: 'reject-race' }), { status: 'failed', result: { outcome: 'failed', errorType: 'PlanStale' } }, {
      decisions: [{ who: 'alice', decision: 'reject', at: 5000, status: 202, answered: 'failed', recorded: true }],
    });
    w.audit(stale, { event: 'approval.rejected', actor: 'human:alice' }, 'apply.refused_stale');
    expect(w.rules()).toEqual([]);
    const ran = w.plan(spec('ran', { intent: 'reject-race' }), { status: 'failed', result: { outcome: 'failed', errorType: 'ProxmoxTaskFailedError', upid: U(16) } }, {
      decisions: [{ who: 'alice', decision: 'reject', at: 5000, status: 202, answered: 'failed', recorded: true }],
    });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'ran' }, { upid: U(16), op: 'snapshot', key: 'ran' });
    w.audit(ran, { event: 'approval.rejected', actor: 'human:alice' }, { event: 'action.failed', upid: U(16) });
    expect(w.rules()).toContain('rejection-ignored');
    expect(w.rules()).toContain('mutation-for-refused-plan');
  });

  it('catches wrong terminal states and plans that never end', () => {
    const w = clean();
    const d = w.plan(spec('d', { intent: 'deny' }), { status: 'failed', result: { outcome: 'failed', errorType: 'PlanStale' } });
    w.audit(d, 'apply.refused_stale');
    w.plan(spec('s'), { status: 'applying' });
    expect(w.rules()).toEqual(['not-terminal', 'wrong-terminal-state']);
  });

  it('allows a task stop only after an operator cancelled that run', () => {
    const w = clean();
    const b = w.plan(spec('b2'), { status: 'failed', result: { outcome: 'failed', errorType: 'Cancelled' } }, { cancelledAt: T0 + 5000 });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'b2' }, { upid: U(20) });
    w.audit(b, 'run.cancelled');
    w.stops.push({ upid: U(20), node: 'pve-lab', type: 'qmsnapshot', id: '100', time: T0 + 6000, dispatch: 99, wasRunning: true });
    expect(w.rules()).toEqual([]);
    const stopped = w.plan(spec('x'), { status: 'failed', result: { outcome: 'failed', errorType: 'ProxmoxTaskFailedError', upid: U(21) } });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'x' }, { upid: U(21) });
    w.audit(stopped, 'action.failed');
    w.stops.push({ upid: U(21), node: 'pve-lab', type: 'qmsnapshot', id: '100', time: T0 + 7000, dispatch: 100, wasRunning: true });
    expect(w.rules()).toEqual(['task-stopped-without-cancel']);
  });

  it('checks the audit chain: accepted decisions, one outcome per run, agreement with the API, verify', () => {
    const w = clean();
    const a = w.plan(spec('ap', { intent: 'approve', approvers: ['alice'] }), applied(U(30)), {
      decisions: [{ who: 'alice', decision: 'approve', at: 1000, status: 202, answered: 'approved' }],
    });
    w.request('/nodes/pve-lab/qemu/100/snapshot', { snapname: 'ap' }, { upid: U(30), op: 'snapshot', key: 'ap' });
    w.audit(a, { event: 'action.applied', upid: U(30) }, { event: 'action.noop' });
    w.plan(spec('quiet', { intent: 'expire' }), { status: 'expired' });
    w.verifyExit = 1;
    expect(w.rules()).toEqual(['audit-chain', 'decision-not-audited', 'outcome-not-audited', 'two-outcomes']);
  });
});
