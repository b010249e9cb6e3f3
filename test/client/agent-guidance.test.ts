/**
 * What every agent is told after a tool call (the pi extension and the MCP server share it): for each
 * status, the instruction, the tool to call next with its arguments, and what to tell the user.
 */
import { describe, expect, it } from 'vitest';
import { describePlan, nextStep, refusalText } from '../../src/client/agent-guidance.js';
import type { Plan } from '../../src/client/index.js';
import type { PlanView } from '../../src/domain/plan-view.js';
import { pendingPlan } from '../channels/helpers/fixtures.js';

const plan = (over: Partial<PlanView> = {}): Plan => ({ ...pendingPlan(over), links: { self: '/v1/actions/x' } });
const ID = 'plan_01J9ZQ4X3T5M8R2B6C7D9E0F1G';
const HASH = `sha256:${'ab'.repeat(32)}`;

describe('nextStep', () => {
  it('after planning a plan that needs approval: apply now, tell the user who approves and how, never approve', () => {
    const next = nextStep(plan({ applyRequested: false }), 'plan');
    expect(next).toMatchObject({ tool: 'proxmox_apply_action', arguments: { planId: ID, requestHash: HASH }, done: false });
    expect(next.instruction).toMatch(/^needs approval\. Call proxmox_apply_action .* now \(it runs once approved\).*Do not re-plan or retry; you cannot approve\.$/);
    expect(next.tellUser).toBe(
      `vm.delete on prod vmid 201 waits for 2 more approval(s) (2 approver(s)) from people other than agent:pi-demo who hold the approve scope, with \`proxmox-agent approvals approve ${ID}\`, or the approval message in Slack. It runs by itself once approved, unless it expires at 2026-03-01T13:00:00.000Z.`,
    );
  });

  it('while it waits after apply: follow it with the status tool, from the status known', () => {
    expect(nextStep(plan(), 'status')).toMatchObject({ tool: 'proxmox_action_status', arguments: { planId: ID, status: 'awaiting_approval' }, done: false });
    // Not applied yet: apply is still the next call.
    expect(nextStep(plan({ applyRequested: false }), 'status')).toMatchObject({ tool: 'proxmox_apply_action', instruction: expect.stringContaining('Apply is not requested yet') });
  });

  it('names the roles and channels still needed', () => {
    const p = plan({ approval: { required: 2, received: 1, approvers: [], refused: [], requirements: [{ id: 'risk.critical', count: 2, received: 1 }, { id: 'policy.x', count: 1, received: 0, roles: ['dba'], channels: ['api', 'cli'] }] } });
    expect(nextStep(p, 'status').tellUser).toContain('(1 approver(s); 1 approver(s) with role dba via api or cli)');
    expect(describePlan(p, 'status')).toContain('  still needed: 1 approver(s) with role dba via api or cli');
  });

  it('planned, approved and applying lead to apply or status; final statuses end with what to tell the user', () => {
    expect(nextStep(plan({ status: 'planned', applyRequested: false }), 'plan')).toMatchObject({ tool: 'proxmox_apply_action', instruction: `allowed without approval: call proxmox_apply_action with planId ${ID}.` });
    expect(nextStep(plan({ status: 'approved' }), 'apply')).toMatchObject({ tool: 'proxmox_action_status' });
    expect(nextStep(plan({ status: 'approved', applyRequested: false }), 'status')).toMatchObject({ tool: 'proxmox_apply_action' });
    expect(nextStep(plan({ status: 'applying' }), 'status')).toMatchObject({ tool: 'proxmox_action_status', done: false });
    const upid = 'UPID:pve-prod:0001:0002:0003:qmdestroy:201:agent@pve!x:';
    expect(nextStep(plan({ status: 'succeeded', result: { outcome: 'applied', upid, finishedAt: 'x' } }), 'status')).toEqual({
      instruction: 'done: report the outcome to the user.',
      tellUser: `vm.delete on prod vmid 201 succeeded (Proxmox task ${upid}).`,
      done: true,
    });
    expect(nextStep(plan({ status: 'denied', reasons: [] }), 'plan').tool).toBeUndefined();
    const budget = { principal: 'agent:pi-demo', name: 'destructive' as const, limit: 3, used: 3, freesAt: '2026-12-06T13:00:00.000Z' };
    expect(nextStep(plan({ status: 'denied', reasons: [{ rule: 'budget.destructive', message: 'used up', budget }] }), 'plan')).toMatchObject({
      instruction: expect.stringContaining('Do not retry before 2026-12-06T13:00:00.000Z'),
      tellUser: 'vm.delete on prod vmid 201 was refused: the budget destructive (3 of 3) is used up until 2026-12-06T13:00:00.000Z.',
      done: true,
    });
    expect(nextStep(plan({ status: 'denied', reasons: [{ rule: 'policy.do-not-touch', message: 'hands off', hint: 'remove the tag' }] }), 'plan')).toMatchObject({
      instruction: expect.stringMatching(/^denied by policy: do not retry/),
      tellUser: 'vm.delete on prod vmid 201 was denied by policy: remove the tag.',
      done: true,
    });
    const rejected = plan({ status: 'rejected', approval: { ...pendingPlan().approval, rejectedBy: { principal: 'human:bob', tokenId: 'bob', roles: [], channel: 'cli', decision: 'reject', at: 'x', comment: 'wrong VM' } } });
    expect(nextStep(rejected, 'status')).toMatchObject({ tellUser: 'vm.delete on prod vmid 201 was rejected by human:bob ("wrong VM").', done: true });
    for (const status of ['failed', 'expired'] as const) expect(nextStep(plan({ status }), 'status')).toMatchObject({ done: true, tellUser: expect.stringContaining('vm.delete on prod vmid 201') });
  });
});

describe('describePlan', () => {
  it('ends with the next step, after what to tell the user', () => {
    const lines = describePlan(plan(), 'apply').split('\n');
    expect(lines[0]).toBe(`plan ${ID}: vm.delete on prod vmid 201 (db-prod) on pve-prod`);
    expect(lines.at(-2)).toMatch(/^tell the user: vm\.delete on prod vmid 201 waits for 2 more approval\(s\)/);
    expect(lines.at(-1)).toMatch(/^next: waiting for 2 more approval\(s\) from people other than you with the approve scope: `proxmox-agent approvals approve /);
  });
});

describe('refusalText', () => {
  it('says what was refused, why, and what to do next', () => {
    const problem = { status: 403, type: '/problems/forbidden', code: 'forbidden', title: 'This token may not do that', detail: "token 'reader' lacks the 'plan' scope" };
    expect(refusalText(problem)).toBe("proxmox-agent refused (HTTP 403, /problems/forbidden): token 'reader' lacks the 'plan' scope.\nnext: this token may not do it: tell the user. Do not look for another way around it.");
    expect(refusalText({ status: 400, type: '/problems/validation-failed', code: 'validation-failed', title: 'bad', errors: [{ path: 'params.snapname', message: 'Required' }] })).toMatch(
      /^proxmox-agent refused \(HTTP 400, \/problems\/validation-failed\): bad \[params\.snapname: Required\]\.\nnext: fix the request/,
    );
    expect(refusalText({ status: 418, type: '/problems/teapot', code: 'teapot', title: 'no' })).toMatch(/next: see \/problems\/teapot for what to do\.$/);
  });
});
