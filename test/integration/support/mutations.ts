import type { ProxmoxSimulator } from '../../../src/simulator/index.js';

const MUTATING = new Set(['POST', 'PUT', 'DELETE']);

/**
 * The requests that changed the simulated cluster: mutating methods whose handler ran (`executed`),
 * not the API's own ticket calls (`/access/…`). What an outsider counts when asking "did anything
 * reach Proxmox" — optionally only after a moment (ms since the epoch, the request log's clock).
 */
export function executedMutations(sim: ProxmoxSimulator, opts: { after?: number } = {}) {
  return sim.requests.all().filter((r) => MUTATING.has(r.method) && r.executed && !r.path.startsWith('/access/') && (opts.after === undefined || r.time > opts.after));
}

type Executed = ReturnType<typeof executedMutations>[number];

/**
 * A plan ended without its action (a human "no" while a freeze held it): what of it reached Proxmox
 * besides its safeguard snapshot `snapshot` (taken before the "no", and left on the guest by design:
 * docs/plan-apply-lifecycle.md). The "no" stops the action: this must be empty.
 */
export function besidesSafeguard(sent: Executed[], snapshot: string): Executed[] {
  return sent.filter((r) => !(r.method === 'POST' && /\/snapshot$/.test(r.path) && r.params?.snapname === snapshot));
}
