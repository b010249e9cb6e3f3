/**
 * Undo (docs/approvals.md, "Undo"): what takes a plan back, decided from what the plan recorded (its
 * params, the state its preflight read, the digest its change left), never from the guest as it is
 * now. The undo is an ordinary plan of the inverse action: policy, approvals and the stale check
 * apply to it as to any other.
 */
import { findAction } from './actions/catalog.js';
import { noInverse, type Inverse } from './actions/define.js';
import type { GuestState } from './guest-state.js';
import type { Preflight, PlanView, Reason } from './plan-view.js';

/** The inverse a plan carries: the action that takes it back, or `inverse: null` and why none. */
export function inverseOf(view: Pick<PlanView, 'action' | 'params' | 'preflight'>): Inverse {
  const action = findAction(view.action);
  if (!action) return noInverse(`unknown action '${view.action}'`);
  const state = view.preflight.state;
  if (!state?.exists) return noInverse('the plan could not read its target, so there is no state to go back to');
  return action.inverse(view.params, state as GuestState);
}

/** What the undo of a plan links to: the original, and the config digest its change left (digest-guarded inverses). */
export interface UndoLink {
  planId: string;
  digest?: string;
}

export type UndoDecision =
  | { kind: 'undo'; request: { action: string; environment: string; target: { vmid: number }; params: Record<string, unknown>; reason: string }; undoes: UndoLink }
  | { kind: 'refused'; message: string };

/**
 * The undo of `view`, or why there is none. Only a plan that succeeded and changed something is
 * undone: a no-op changed nothing, and undoing it would change what the plan found (a start of a
 * running VM undone is a stop).
 */
export function planUndo(view: PlanView, reason: string): UndoDecision {
  const refused = (why: string): UndoDecision => ({ kind: 'refused', message: `plan ${view.planId} cannot be undone: ${why}` });
  if (view.status !== 'succeeded') return refused(`it is ${view.status}; only a plan that succeeded changed something to take back`);
  if (view.result?.outcome !== 'applied') return refused(`it changed nothing (${view.result?.message ?? 'no-op'})`);
  const { inverse, reason: why } = inverseOf(view);
  if (!inverse) return refused(why);
  const guarded = findAction(inverse.action)?.digestGuard !== undefined && inverse.target.vmid === view.target.vmid;
  if (guarded && view.result.digestAfter === undefined) {
    return refused('it recorded no config digest after its change, so a change made since could not be told apart');
  }
  return {
    kind: 'undo',
    request: { action: inverse.action, environment: view.environment, target: inverse.target, params: inverse.params, reason },
    undoes: { planId: view.planId, ...(guarded ? { digest: view.result.digestAfter } : {}) },
  };
}

/**
 * An undo plan's preflight, held to the config the original left: its digest becomes the plan's
 * (so the apply-time check and Proxmox's own digest check refuse any change made since), and a
 * config already changed since makes the plan denied now, with the reason, rather than stale later.
 */
export function holdToOriginal(preflight: Preflight, undoes: UndoLink): { preflight: Preflight; stale?: Reason } {
  if (undoes.digest === undefined || !preflight.fingerprint) return { preflight };
  const read = preflight.fingerprint.digest;
  const held = { ...preflight, fingerprint: { ...preflight.fingerprint, digest: undoes.digest } };
  if (read === undoes.digest) return { preflight: held };
  return {
    preflight: held,
    stale: {
      rule: 'undo.stale',
      message: `the guest config changed since plan ${undoes.planId} changed it (digest ${undoes.digest.slice(0, 12)}… is now ${read?.slice(0, 12) ?? 'unknown'}…): undoing would overwrite that later change`,
      hint: 'Plan the change you need against the config as it is now',
    },
  };
}
