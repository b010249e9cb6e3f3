import type { Doctor } from '../doctor/probe.js';
import type { Logger } from '../logging.js';

/** How often the connection doctor re-checks every environment for /readyz's details. */
export const DOCTOR_INTERVAL_MS = 5 * 60_000;

/**
 * Runs the connection doctor now and every few minutes, so that /readyz shows its last result
 * without waiting on Proxmox (GET /v1/doctor asks afresh). Blockers are logged with where to find
 * the fixes. Returns the stop.
 */
export function scheduleDoctorCheckups(doctor: Doctor, log: Logger, everyMs = DOCTOR_INTERVAL_MS): () => Promise<void> {
  const checkup = () =>
    doctor
      .run()
      .then((reports) => {
        for (const r of reports) {
          const blockers = r.checks.filter((c) => !c.ok && c.severity === 'blocker');
          if (blockers.length > 0) log.warn({ environment: r.environment, blockers: blockers.map((b) => b.detail) }, 'connection doctor: blockers (GET /v1/doctor or proxmox-agent doctor for the fixes)');
        }
      })
      .catch((err: Error) => log.warn({ err: err.message }, 'connection doctor failed'));
  void checkup();
  const checkups = setInterval(() => void checkup(), everyMs);
  checkups.unref();
  return async () => clearInterval(checkups);
}
