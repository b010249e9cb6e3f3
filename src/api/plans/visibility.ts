import type { PlanView } from '../../domain/plan-view.js';
import { mayActIn, type Caller } from '../access/auth.js';
import type { PlanGateway } from './plan-gateway.js';
import { ApiError } from '../http/problems.js';

/**
 * A plan in an environment the caller may not act in does not exist, as far as the caller knows:
 * 404, the same answer as for an unknown plan id, so plan ids of other environments leak nothing.
 */
export async function readVisiblePlan(plans: Pick<PlanGateway, 'state'>, planId: string, caller: Caller): Promise<PlanView> {
  const view = await plans.state(planId);
  if (!mayActIn(caller, view.environment)) throw new ApiError('plan-not-found', `no plan ${planId}`);
  return view;
}
