import type { AuditEventInput } from '../../../src/audit/events.js';
import { startTestService, TOKENS, type TestService } from './service.js';
import { until } from './until.js';

export const BUDGET_PRINCIPAL = 'agent:pi-demo';

export interface ConcurrentUsage {
  budget: string;
  used: number;
  heldBy?: string[];
  freesAt?: string;
}

export interface BudgetService {
  t: TestService;
  /** Plans a snapshot of a lab guest as the demo agent. */
  plan(vmid: number, snapname: string): ReturnType<TestService['call']>;
  /** The agent's `concurrent` budget as GET /v1/budgets shows it. */
  concurrent(): Promise<ConcurrentUsage | undefined>;
  /** Until `untilMs` (epoch), every audit record named `event` fails to be written (an audit outage). */
  stallAudit(event: string, untilMs: number): void;
}

/**
 * The budget probes' service: the demo agent may hold one plan at a time (`concurrent: 1`), plans
 * live 5 s, no rate limit; an audit outage of one event can be switched on.
 */
export async function startBudgetService(reasonPrefix: string): Promise<BudgetService> {
  const t = await startTestService((c) => {
    c.server.rateLimit = false;
    c.budgets = { [BUDGET_PRINCIPAL]: { concurrent: 1 } };
    c.policy.planTtlSeconds = 5;
  });
  let stalled: { event: string; untilMs: number } | undefined;
  const audit = t.service.audit;
  const append = audit.append.bind(audit);
  audit.append = async (e: AuditEventInput) => {
    if (stalled && (e as { event?: string }).event === stalled.event && Date.now() < stalled.untilMs) throw new Error(`${reasonPrefix}: audit store unavailable`);
    return append(e);
  };
  await until('/healthz 200', async () => (await t.call('GET', '/healthz')).status === 200, 30_000, 200);
  return {
    t,
    plan: (vmid, snapname) =>
      t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body: { action: 'vm.snapshot.create', environment: 'lab', target: { vmid }, params: { snapname }, reason: `${reasonPrefix} ${snapname}` } }),
    concurrent: async () => ((await t.call('GET', '/v1/budgets', { token: TOKENS.agent })).body.budgets as ConcurrentUsage[]).find((b) => b.budget === 'concurrent'),
    stallAudit: (event, untilMs) => {
      stalled = { event, untilMs };
    },
  };
}
