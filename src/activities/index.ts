import { findAction } from '../domain/actions/catalog.js';
import type { EnvironmentTier } from '../domain/actions/define.js';
import { fingerprint } from '../domain/guest-state.js';
import { evaluatePolicy as evaluate } from '../policy/engine.js';
import type { PolicyConfig } from '../policy/schema.js';
import type { ProxmoxClient } from '../proxmox/index.js';
import type { AuditStore } from '../audit/store.js';
import type { Preflight } from '../workflows/messages.js';
import { executeAction } from './execute.js';
import { createNotifyActivities, type NotifyDeps } from './notify.js';
import { readGuest } from './guest-reader.js';
import type { AuditEventInput, AuditReceipt, ExecuteInput, ExecuteResult, PolicyInput, PolicyResult, PreflightInput } from './types.js';
import { ApplicationFailure } from '@temporalio/activity';

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

  return {
    async preflight({ request }: PreflightInput): Promise<Preflight> {
      const action = findAction(request.action);
      if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${request.action}`, 'UnknownAction');
      const state = await readGuest(env(request.environment).client, action, request.target, request.params);
      const assessment = action.assess(state, request.params);
      return { state, fingerprint: fingerprint(state), assessment, checkedAt: new Date().toISOString() };
    },

    async evaluatePolicy({ request, preflight, at }: PolicyInput): Promise<PolicyResult> {
      const policy = deps.policy();
      const decision = evaluate(policy, {
        request,
        tier: env(request.environment).tier,
        ...(preflight.state ? { state: preflight.state } : {}),
        assessment: preflight.assessment,
        at: at ? new Date(at) : new Date(),
      });
      return { ...decision, planTtlSeconds: policy.planTtlSeconds };
    },

    async executeAction(input: ExecuteInput): Promise<ExecuteResult> {
      return executeAction(
        {
          clientFor: (name) => env(name).client,
          tokenIdFor: (name) => env(name).tokenId,
          ...(deps.pollIntervalMs === undefined ? {} : { pollIntervalMs: deps.pollIntervalMs }),
        },
        input,
      );
    },

    async recordAudit(event: AuditEventInput): Promise<AuditReceipt> {
      return deps.audit.append(event);
    },

    ...createNotifyActivities(deps.notify ?? { targets: [], links: () => ({}) }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
