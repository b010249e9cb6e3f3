import { findAction } from '../domain/actions/catalog.js';
import type { EnvironmentTier } from '../domain/actions/define.js';
import { fingerprint } from '../domain/guest-state.js';
import { evaluatePolicy as evaluate } from '../policy/engine.js';
import type { PolicyConfig } from '../policy/schema.js';
import { isRetryableProxmoxError, type ProxmoxClient } from '../proxmox/index.js';
import type { AuditStore } from '../audit/store.js';
import { auditEventId, LOCAL_ACTIVITY_ATTEMPTS, type Preflight } from '../workflows/messages.js';
import { executeAction } from './execute.js';
import { createNotifyActivities, type NotifyDeps } from './notify.js';
import { readGuest } from './guest-reader.js';
import type {
  AssessInput,
  AssessResult,
  AuditEventInput,
  AuditReceipt,
  ExecuteInput,
  ExecuteResult,
  PolicyInput,
  PolicyResult,
  PreflightInput,
} from './types.js';
import { ApplicationFailure, Context } from '@temporalio/activity';


export interface ActivityEnvironment {
  tier: EnvironmentTier;
  client: ProxmoxClient;
  tokenId: string;
}

export interface ActivityDeps {
  environments: ReadonlyMap<string, ActivityEnvironment>;
  /** Read on every evaluation, so a policy reload applies to the next decision. */
  policy: () => PolicyConfig;
  audit: AuditStore;
  pollIntervalMs?: number;
  /** Where approval requests are posted (none: notifyApprovers does nothing). */
  notify?: NotifyDeps;
}

/** Activities are built over injected clients, so tests and the worker wire them the same way. */
export function createActivities(deps: ActivityDeps) {
  const env = (name: string): ActivityEnvironment => {
    const found = deps.environments.get(name);
    if (!found) throw ApplicationFailure.nonRetryable(`unknown environment '${name}'`, 'UnknownEnvironment');
    return found;
  };

  const preflight = async ({ request }: PreflightInput): Promise<Preflight> => {
    const action = findAction(request.action);
    if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${request.action}`, 'UnknownAction');
    const state = await readGuest(env(request.environment).client, action, request.target, request.params);
    const assessment = action.assess(state, request.params);
    return { state, fingerprint: fingerprint(state), assessment, checkedAt: new Date().toISOString() };
  };

  const evaluatePolicy = async ({ request, preflight, at }: PolicyInput): Promise<PolicyResult> => {
    const policy = deps.policy();
    const decision = evaluate(policy, {
      request,
      tier: env(request.environment).tier,
      ...(preflight.state ? { state: preflight.state } : {}),
      assessment: preflight.assessment,
      at: at ? new Date(at) : new Date(),
    });
    return { ...decision, planTtlSeconds: policy.planTtlSeconds };
  };

  // Appended together: one group commit, in this order on the chain.
  const appendAll = (events: readonly AuditEventInput[]) => Promise.all(events.map((e) => deps.audit.append(e)));

  return {
    preflight,
    evaluatePolicy,

    async assess({ request, before = [], record }: AssessInput): Promise<AssessResult> {
      await appendAll(before);
      let read: Preflight;
      try {
        read = await preflight({ request });
      } catch (err) {
        // Transient: rethrown (Temporal retries with backoff) until the last attempt, as the preflight
        // activity's own retries allowed; each attempt's read already retries 3 times (guest-reader.ts).
        if (isRetryableProxmoxError(err) && Context.current().info.attempt < LOCAL_ACTIVITY_ATTEMPTS) throw err;
        // Not a failure of the run: the plan says the target could not be read, and policy decides.
        read = { assessment: { kind: 'unavailable', reason: err instanceof Error ? err.message : String(err) }, checkedAt: new Date().toISOString() };
      }
      const policy = await evaluatePolicy({ request, preflight: read });
      if (record) {
        const event = policy.decision === 'denied' ? 'plan.denied' : 'plan.created';
        const { seq, ...fields } = record;
        const { risk, decision, policyVersion, reasons } = policy;
        await deps.audit.append({ ...fields, eventId: auditEventId(record.planId, seq, event), event, decision: { risk, decision, policyVersion, reasons } });
      }
      return { preflight: read, policy, notifies: (deps.notify?.targets.length ?? 0) > 0 };
    },

    async executeAction(input: ExecuteInput): Promise<ExecuteResult> {
      const { audit, ...rest } = input;
      if (audit) await deps.audit.append(audit.started);
      const result = await executeAction(
        {
          clientFor: (name) => env(name).client,
          tokenIdFor: (name) => env(name).tokenId,
          ...(deps.pollIntervalMs === undefined ? {} : { pollIntervalMs: deps.pollIntervalMs }),
        },
        rest,
      );
      if (audit) {
        const { seq, ...fields } = audit.finished;
        const event = `action.${result.outcome}`;
        await deps.audit.append({
          ...fields,
          eventId: auditEventId(input.planId, seq, event),
          event,
          ...(result.upid ? { upid: result.upid } : {}),
          outcome: 'succeeded',
          detail: result.note ? { message: result.note } : {},
        });
      }
      return result;
    },

    async recordAudit(event: AuditEventInput): Promise<AuditReceipt> {
      return deps.audit.append(event);
    },

    /** Several records in one local activity (and one group commit), in this order. */
    async recordAudits(events: AuditEventInput[]): Promise<AuditReceipt[]> {
      return appendAll(events);
    },

    ...createNotifyActivities(deps.notify ?? { targets: [], links: () => ({}) }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
