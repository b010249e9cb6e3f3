import type { ProxmoxCallObservation } from '../proxmox/client.js';
import type { Metrics } from './metrics.js';

/** Every Proxmox API call, per environment: its duration, and the error when it failed. */
export function observeProxmoxCalls(metrics: Pick<Metrics, 'proxmoxDuration' | 'proxmoxErrors'>): (environment: string, call: ProxmoxCallObservation) => void {
  return (environment, call) => {
    const outcome = call.error ? 'error' : 'ok';
    metrics.proxmoxDuration.observe({ environment, method: call.method, route: call.route, outcome }, call.durationMs / 1000);
    if (call.error) metrics.proxmoxErrors.inc({ environment, method: call.method, route: call.route, error: call.error, status: String(call.status ?? 'none') });
  };
}
