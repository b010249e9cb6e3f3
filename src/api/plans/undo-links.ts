import { undoPlanId } from '../../domain/plan-id.js';
import type { PlanView } from '../../domain/plan-view.js';
import { inverseOf } from '../../domain/undo.js';
import type { PlanGateway } from './plan-gateway.js';
import { ApiError } from '../http/problems.js';

/**
 * A plan as the API shows it, with its undo links: the inverse it carries (a pure function of what
 * it recorded) and, for a plan that succeeded, the undo plan made for it. The undo's id follows from
 * the plan's (undoPlanId), so finding it needs no index: its run exists or it does not.
 */
export async function withUndoLinks(plans: Pick<PlanGateway, 'state'>, view: PlanView): Promise<PlanView> {
  const { inverse, reason } = inverseOf(view);
  const undoneBy = view.status === 'succeeded' ? await findUndo(plans, view.planId) : undefined;
  return { ...view, undo: { inverse, reason }, ...(undoneBy ? { undoneBy } : {}) };
}

/** The id of the plan's undo run, if one was started (even one still being evaluated). */
export async function findUndo(plans: Pick<PlanGateway, 'state'>, planId: string): Promise<string | undefined> {
  const id = undoPlanId(planId);
  try {
    await plans.state(id);
    return id;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'plan-not-ready') return id;
    if (err instanceof ApiError && err.code === 'plan-not-found') return undefined;
    throw err;
  }
}
