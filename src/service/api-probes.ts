import type { Client } from '@temporalio/client';
import type { HealthReport } from '../api/http/context.js';
import { createHealthCheck, createReadinessCheck } from '../api/http/health.js';
import { doctorReadinessDetails, type Doctor } from '../doctor/probe.js';
import { freezeHealth, type FreezeService } from '../freezes/service.js';
import type { TemporalWatch } from '../temporal/watch.js';

export interface ApiProbesOptions {
  client: Client;
  watch: Pick<TemporalWatch, 'status'>;
  taskQueue: string;
  /** The configured environments: each one's task queue needs an activity poller. */
  environments: readonly string[];
  /** Absent where the process has no shared journal (an API-only process on the file store). */
  freezes?: Pick<FreezeService, 'list'>;
  doctor: Doctor;
  stopping: () => boolean;
}

/**
 * The API's `/healthz` and `/readyz`. Health is Temporal, the search attributes and the workers
 * (src/api/health.ts), plus the active freezes when the process can read them: a freeze is shown
 * and stays healthy, a journal that cannot be read is not. Readiness leaves the workers out and
 * shows the connection doctor's last result beside its verdict, never in it.
 */
export function apiProbes(opts: ApiProbesOptions): { health: () => Promise<HealthReport>; ready: () => Promise<HealthReport> } {
  const { freezes, doctor } = opts;
  const temporalHealth = createHealthCheck(opts.client, opts.watch, opts.taskQueue, opts.environments);
  const health = async (): Promise<HealthReport> => {
    const report = await temporalHealth();
    if (!freezes) return report;
    const frozen = await freezeHealth(freezes);
    return { ok: report.ok && frozen.ok, checks: { ...report.checks, freezes: frozen } };
  };
  const ready = createReadinessCheck(opts.watch, opts.stopping, () => doctorReadinessDetails(doctor));
  return { health, ready };
}
