import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { resolveSecret } from '../config/load.js';
import { createProxmoxClient, type ProxmoxCallObservation, type ProxmoxClient } from '../proxmox/index.js';
import { demoClusters, startSimulator, type ProxmoxSimulator } from '../simulator/index.js';
import type { ActivityEnvironment } from '../activities/index.js';

export interface BuiltEnvironments {
  environments: Map<string, ActivityEnvironment>;
  /** Simulators started for demo environments, by environment name. */
  simulators: Map<string, ProxmoxSimulator>;
  close(): Promise<void>;
}

export interface SimulatorSettings {
  taskDurationMs?: number;
  authFailureDelayMs?: number;
  /** How long the simulated ha-manager takes to carry out a request (default: taskDurationMs). */
  haDelayMs?: number;
  /** The simulated Proxmox token secret (default: random per start); tests set it to scan logs for it. */
  tokenSecret?: string;
}

const SIM_TOKEN_ID = 'proxmox-agent@pve!agent';

/**
 * One Proxmox client per environment. Environments marked `simulator` get an in-process simulator
 * seeded with the demo cluster, and a fresh random token secret that exists only in memory.
 */
export async function buildEnvironments(
  config: Config,
  opts: {
    configPath?: string;
    env?: NodeJS.ProcessEnv;
    simulator?: SimulatorSettings;
    /** Told about every Proxmox API call, with the environment's name (metrics). */
    onProxmoxCall?: (environment: string, call: ProxmoxCallObservation) => void;
  } = {},
): Promise<BuiltEnvironments> {
  const environments = new Map<string, ActivityEnvironment>();
  const simulators = new Map<string, ProxmoxSimulator>();
  const clients: ProxmoxClient[] = [];
  try {
    for (const [name, env] of Object.entries(config.environments)) {
      const observe = opts.onProxmoxCall;
      const onCall = observe ? { onCall: (call: ProxmoxCallObservation) => observe(name, call) } : {};
      let client: ProxmoxClient;
      let tokenId: string;
      if ('simulator' in env.proxmox) {
        const secret = opts.simulator?.tokenSecret ?? randomUUID();
        const seed = demoClusters({ lab: secret, prod: secret })[env.proxmox.simulator];
        const sim = await startSimulator({ cluster: seed, ...opts.simulator });
        simulators.set(name, sim);
        tokenId = SIM_TOKEN_ID;
        client = createProxmoxClient({ baseUrl: sim.url, tokenId, tokenSecret: secret, ...onCall });
      } else {
        const p = env.proxmox;
        tokenId = p.tokenId;
        client = createProxmoxClient({
          baseUrl: p.url,
          tokenId,
          tokenSecret: resolveSecret(p.tokenSecret, `environments.${name}.proxmox.tokenSecret`, opts.env, opts.configPath),
          ...(p.tls ? { tls: { ...(p.tls.caFile ? { caFile: p.tls.caFile } : {}), ...(p.tls.fingerprintSha256 ? { fingerprintSha256: p.tls.fingerprintSha256 } : {}) } } : {}),
          ...onCall,
        });
      }
      clients.push(client);
      environments.set(name, { tier: env.tier, client, tokenId });
    }
  } catch (err) {
    await Promise.allSettled([...clients.map((c) => c.close()), ...[...simulators.values()].map((s) => s.close())]);
    throw err;
  }
  return {
    environments,
    simulators,
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled([...simulators.values()].map((s) => s.close()));
    },
  };
}
