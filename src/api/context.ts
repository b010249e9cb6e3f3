import type { Caller } from './auth.js';
import type { PlanGateway } from './plan-gateway.js';

/** What the HTTP layer needs from the rest of the service: injected, never imported as singletons. */
export interface ApiDeps {
  plans: PlanGateway;
  authenticate: (authorization: string | undefined) => Caller;
  /** Names of the configured environments. */
  environments: ReadonlySet<string>;
  /** Liveness of the things the API depends on: Temporal reachable, a worker polling. */
  health: () => Promise<HealthReport>;
  /** Base URL of the Temporal Web UI and the namespace, for links in responses. */
  temporalUi?: { baseUrl: string; namespace: string };
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export interface AppEnv {
  Variables: {
    caller: Caller;
  };
}
