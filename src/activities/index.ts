import { ApplicationFailure } from '@temporalio/activity';
import { findAction } from '../domain/actions/catalog.js';
import type { EnvironmentTier } from '../domain/actions/define.js';
import { fingerprint } from '../domain/guest-state.js';
import { holdToOriginal } from '../domain/undo.js';
import { evaluatePolicy as evaluate } from '../policy/engine.js';
import type { PolicyConfig } from '../policy/schema.js';
import { isRetryableProxmoxError, type ProxmoxClient } from '../proxmox/index.js';
import type { AuditStore } from '../audit/store.js';
import { assessmentRecord, outcomeRecord } from '../audit/records.js';
import type { DispatchJournal } from '../dispatch/journal.js';
import { activeFreezeOf, type Freeze } from '../domain/freeze.js';
import { chargeBudget, type BudgetDeps } from '../budgets/charge.js';
import { planOfJournalId } from '../domain/safeguard.js';
import { REFUSALS } from '../domain/refusals.js';
import { unreadablePreflight, type ActionResult, type Preflight } from '../domain/plan-view.js';
import { executeAction, stopPlanDispatch, type ExecuteDeps, type StoppedDispatch } from './execute.js';
import { createNotifyActivities, notifiesAnyone, type NotifyDeps } from './notify.js';
import { isTimeout, readGuest } from './guest-reader.js';
import { readSnapshotSupport } from './snapshot-support.js';
import type {
  AssessInput,
  AssessResult,
  ExecuteInput,
  ExecuteResult,
  OutcomeInput,
  FinalDecision,
  FinalInput,
  PolicyInput,
  PolicyResult,
  PreflightInput,
} from './types.js';
import { assessmentEventId, finalEventId, outcomeEventId, type AuditEventInput, type AuditReceipt } from '../audit/events.js';

/**
 * How long a plan's reads of its target may take in all (assess, and the API's policy evaluation):
 * past it the target is unreadable, which policy and the apply-time check handle, instead of the
 * read holding the run's workflow task (and every reader of the plan) for as long as Proxmox hangs.
 */
export const ASSESS_READ_MS = 8_000;

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
  /** Where each plan's Proxmox dispatch stands (src/dispatch): what makes a mutation happen once. */
  journal: DispatchJournal;
  pollIntervalMs?: number;
  /** Tests shorten how long an unanswered dispatch is given before it is settled (src/dispatch/settle.ts). */
  settleAfterMs?: number;
  /** Tests shorten how long an unanswered dispatch with no task found holds its guest before it is unknown (HOLD_UNANSWERED_MS). */
  holdUnansweredMs?: number;
  /** How long the target's reads may take in all (default ASSESS_READ_MS). */
  assessReadMs?: number;
  /** Where approval requests are posted (none: notifyApprovers does nothing). */
  notify?: NotifyDeps;
  /** Per-principal budgets (src/budgets); absent, no plan is charged. */
  budgets?: BudgetDeps;
}

/** Activities are built over injected clients, so tests and the worker wire them the same way. */
export function createActivities(deps: ActivityDeps) {
  const env = (name: string): ActivityEnvironment => {
    const found = deps.environments.get(name);
    if (!found) throw ApplicationFailure.nonRetryable(`unknown environment '${name}'`, 'UnknownEnvironment');
    return found;
  };
  const readMs = deps.assessReadMs ?? ASSESS_READ_MS;

  /** What a recorded event of the plan keeps under `detail[key]`, if the event is on the chain. */
  const storedDetail = async <T>(planId: string, eventId: string, key: string): Promise<T | undefined> => {
    const found = (await deps.audit.forPlan(planId)).find((r) => r.eventId === eventId);
    return found?.detail?.[key] as T | undefined;
  };

  /**
   * The target as Proxmox reports it now; a read that fails or outlasts its bound makes it unreadable.
   * `anywhere`: the guest is looked for on whatever node it is on now, not on the request's
   * `target.node` (the apply-time re-check: PVE's load balancer or HA may have moved it since the plan).
   */
  const preflight = async ({ request }: PreflightInput, { anywhere = false } = {}): Promise<Preflight> => {
    const action = findAction(request.action);
    if (!action) throw ApplicationFailure.nonRetryable(`unknown action ${request.action}`, 'UnknownAction');
    const client = env(request.environment).client;
    const checkedAt = () => new Date().toISOString();
    const deadline = Date.now() + readMs;
    const signal = AbortSignal.timeout(readMs);
    // Transient errors (a 503 from load, a 595 from a node) are read again until the bound: a plan
    // must not be denied, nor an approved plan fail as stale, because a read met a hiccup.
    let failedBefore: unknown;
    for (let pause = 200; ; pause = Math.min(pause * 2, 1000)) {
      try {
        const state = await readGuest(client, action, anywhere ? { vmid: request.target.vmid } : request.target, request.params, { signal });
        return { state, fingerprint: fingerprint(state), assessment: action.assess(state, request.params), checkedAt: checkedAt() };
      } catch (err) {
        if (isRetryableProxmoxError(err) && !signal.aborted && Date.now() + pause < deadline) {
          failedBefore = err;
          await new Promise((r) => setTimeout(r, pause));
          continue;
        }
        // A read cut by the bound after answers that failed says how they failed, not "did not answer".
        const cause = isTimeout(err) && failedBefore !== undefined ? failedBefore : err;
        const reason = isTimeout(cause) ? `Proxmox did not answer within ${readMs / 1000} s` : cause instanceof Error ? cause.message : String(cause);
        return unreadablePreflight(reason, checkedAt());
      }
    }
  };

  const evaluatePolicy = async ({ request, preflight, at, planId }: PolicyInput): Promise<PolicyResult> => {
    const policy = deps.policy();
    const judge = () =>
      evaluate(policy, {
        request,
        tier: env(request.environment).tier,
        ...(preflight.state ? { state: preflight.state } : {}),
        assessment: preflight.assessment,
        at: at ? new Date(at) : new Date(),
        ...(planId ? { planId } : {}),
      });
    let decision = judge();
    // A safeguard asked for: whether the guest's storage can take the snapshot is read now (only
    // for such plans), and decides again (the plan is denied if it cannot).
    const state = preflight.state;
    if (decision.safeguard && state?.exists && !state.snapshotSupport) {
      state.snapshotSupport = await readSnapshotSupport(env(request.environment).client, state, { signal: AbortSignal.timeout(readMs) }).catch((err: unknown) => ({
        capable: false,
        reason: `the storages could not be read (${err instanceof Error ? err.message : String(err)})`,
      }));
      decision = judge();
    }
    return { ...decision, planTtlSeconds: policy.planTtlSeconds };
  };

  const executeDeps = (): ExecuteDeps => ({
    clientFor: (name) => env(name).client,
    tokenIdFor: (name) => env(name).tokenId,
    journal: deps.journal,
    // The same engine and policy as every other decision, against the guest as execute reads it.
    policyCheck: (request, state) => evaluate(deps.policy(), { request, tier: env(request.environment).tier, state, assessment: { kind: 'proceed' }, at: new Date() }),
    ...(deps.pollIntervalMs === undefined ? {} : { pollIntervalMs: deps.pollIntervalMs }),
    ...(deps.settleAfterMs === undefined ? {} : { settleAfterMs: deps.settleAfterMs }),
    ...(deps.holdUnansweredMs === undefined ? {} : { holdUnansweredMs: deps.holdUnansweredMs }),
  });

  /**
   * A budgeted plan's slot is marked applying before anything is sent (docs/policy.md, "Budgets"):
   * past its charge's expiry the slot was given up, and may be another plan's, so nothing is sent.
   */
  const holdBudgetSlot = async (planId: string): Promise<void> => {
    const begun = await deps.budgets?.store.beginApplying(planId);
    if (!begun || begun.ok) return;
    throw ApplicationFailure.nonRetryable(
      `the plan's concurrency budget slot lapsed at ${begun.lapsedAt} (its expiry, plus a minute) before its Proxmox step began, and may hold another plan now: nothing was sent to Proxmox`,
      REFUSALS.budgetLapsed,
    );
  };

  // Appended together: one group commit, in this order on the chain.
  const appendAll = (events: readonly AuditEventInput[]) => Promise.all(events.map((e) => deps.audit.append(e)));

  /**
   * A decision recorded once per event id (an assessment, an outcome, a run's final decision): the one
   * on the chain already (a run again after a lost workflow task acts on what the first run recorded),
   * else `decide()`'s, kept in the record's detail under `key`; read back, since a concurrent run of
   * the activity may have recorded its own first.
   */
  const recordOnce = async <T>(planId: string, eventId: string, key: string, decide: () => Promise<{ value: T; record: AuditEventInput }>, opts: { unlessEnded?: boolean } = {}): Promise<T> => {
    const recorded = await storedDetail<T>(planId, eventId, key);
    if (recorded) return recorded;
    const { value, record } = await decide();
    // `unlessEnded`: nothing is recorded once the run's final decision is on the chain (a re-check
    // the run abandoned for a rejection, finishing after it: its answer is dropped, its record too).
    if (opts.unlessEnded && (await deps.audit.forPlan(planId)).some((r) => r.eventId === finalEventId(planId))) return value;
    await deps.audit.append(record);
    return (await storedDetail<T>(planId, eventId, key)) ?? value;
  };

  /** The freeze a dispatch in the environment meets now, if any (src/dispatch/freeze.ts). */
  const activeFreeze = async ({ environment }: { environment: string }): Promise<Freeze | undefined> =>
    activeFreezeOf(await deps.journal.freezes({ environment }), environment);

  return {
    preflight,
    evaluatePolicy,
    activeFreeze,

    /**
     * One decision point: the records decided before it, the target (bounded read), policy, and at
     * plan time the plan's own record. Fails only when the audit store does (nothing may go on
     * without its records).
     */
    async assess({ request, before = [], record, undoes }: AssessInput): Promise<AssessResult> {
      await appendAll(before);
      const eventId = assessmentEventId(record.planId, record.seq);
      return recordOnce<AssessResult>(record.planId, eventId, 'assessment', async () => {
        // An undo is held to the config its original left (src/domain/undo.ts).
        // At apply the guest is read where it is now: a plan made on one node applies on the node the
        // guest was moved to since (its fingerprint, not its node, says whether it is still as planned).
        const read = () => preflight({ request }, { anywhere: record.stage === 'apply' });
        const held = undoes ? holdToOriginal(await read(), undoes) : { preflight: await read() };
        const judged = await evaluatePolicy({ request, preflight: held.preflight, planId: record.planId });
        const evaluated: PolicyResult = held.stale
          ? { ...judged, decision: 'denied', approvalsRequired: 0, requirements: [], reasons: [...judged.reasons, held.stale] }
          : judged;
        // Only a plan policy admits is charged, once, at plan time (docs/policy.md, "Budgets").
        const { policy, budgeted, expiresBy } =
          record.stage === 'plan' && deps.budgets && record.actor
            ? await chargeBudget(deps.budgets, { planId: record.planId, principal: record.actor, request, policy: evaluated })
            : { policy: evaluated, budgeted: false, expiresBy: undefined };
        const frozen = await activeFreeze({ environment: request.environment });
        const result: AssessResult = { preflight: held.preflight, policy, notifies: notifiesAnyone(deps.notify), ...(budgeted ? { budgeted } : {}), ...(expiresBy ? { expiresBy } : {}), ...(frozen ? { frozen } : {}) };
        return { value: result, record: assessmentRecord(record, policy, result, undoes ? { undoes: undoes.planId } : {}) };
      }, { unlessEnded: record.stage === 'apply' });
    },

    async executeAction(input: ExecuteInput): Promise<ExecuteResult> {
      const { audit, ...rest } = input;
      // The run's authorisation is on the chain before Proxmox is touched.
      if (audit) await appendAll(audit.before);
      await holdBudgetSlot(planOfJournalId(rest.planId));
      const result = await executeAction(executeDeps(), rest);
      if (audit) {
        const reported: ActionResult = { ...result, ...(result.note ? { message: result.note } : {}), finishedAt: new Date().toISOString() };
        await deps.audit.append(outcomeRecord(audit.outcome, result.outcome, { upid: result.upid, message: result.note, result: reported }));
      }
      return result;
    },

    /**
     * The outcome of a run whose execute failed or was cancelled, recorded once (see OutcomeInput):
     * a dispatch the journal recorded makes a plain failure `outcome_unknown`, with its UPID.
     */
    async recordOutcome({ fields, proposed, consultJournal }: OutcomeInput): Promise<ActionResult> {
      // An outcome on the chain already (the execute activity recorded its success, and its answer
      // was lost): that is the run's outcome, whatever a later attempt met.
      return recordOnce<ActionResult>(fields.planId, outcomeEventId(fields.planId, fields.seq), 'result', async () => {
        let result = proposed;
        if (consultJournal && proposed.outcome === 'failed') {
          const entry = await deps.journal.get(fields.planId);
          if (entry && (entry.state === 'intent' || entry.state === 'dispatched' || entry.state === 'done' || entry.state === 'unknown')) {
            // The failure's own words may say nothing was sent (a cancel whose stop could not look): the
            // journal says otherwise, and the message says so first.
            const seen = entry.upid ? `, task ${entry.upid}` : '';
            result = {
              ...proposed,
              outcome: 'outcome_unknown',
              message: `what Proxmox did is not known: the dispatch journal has this plan's request ${entry.state}${seen} (${proposed.message ?? 'failed'})`,
              ...(entry.upid && !proposed.upid ? { upid: entry.upid } : {}),
            };
          }
        }
        return { value: result, record: outcomeRecord(fields, result.outcome, { upid: result.upid, message: result.message, errorType: result.errorType, result }) };
      });
    },

    /** The run's terminal decision, recorded once per run; returns the one on the chain (see FinalInput). */
    async recordFinal({ before, record, final }: FinalInput): Promise<FinalDecision> {
      await appendAll(before);
      return recordOnce<FinalDecision>(record.planId, record.eventId, 'final', async () => ({ value: final, record: { ...record, detail: { ...record.detail, final } } }));
    },

    /** After an operator's cancel: settle and stop what the plan's request started (stopPlanDispatch). */
    async stopDispatch(input: { planId: string }): Promise<StoppedDispatch> {
      return stopPlanDispatch(executeDeps(), input);
    },

    /** The run of a charged plan ended: its concurrency slot frees, and with nothing sent its hourly charges too. */
    async releaseBudget(input: { planId: string; sent: boolean }): Promise<void> {
      await deps.budgets?.store.release(input.planId, { sent: input.sent });
    },

    /** Several records in one local activity (and one group commit), in this order. */
    async recordAudits(events: AuditEventInput[]): Promise<AuditReceipt[]> {
      return appendAll(events);
    },

    ...createNotifyActivities(deps.notify ?? { targets: [], links: () => ({}) }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
