import type { Activities } from '../activities/index.js';
import type { ApiDeps } from '../api/http/context.js';
import { unreadablePreflight } from '../domain/plan-view.js';

/**
 * `POST /v1/policy/evaluate`: the same preflight and policy the workflow runs, called directly, so
 * nothing is started. A preflight that cannot read Proxmox is answered as unreadable, as a run would.
 */
export function policyPreview(activities: Pick<Activities, 'preflight' | 'evaluatePolicy'>): ApiDeps['evaluate'] {
  return async (request, at) => {
    const preflight = await activities.preflight({ request }).catch((err: Error) => unreadablePreflight(err.message, new Date().toISOString()));
    return { preflight, decision: await activities.evaluatePolicy({ request, preflight, at: at.toISOString() }) };
  };
}
