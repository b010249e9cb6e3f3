/**
 * A Proxmox simulator with a client of it, for tests that drive the client (or the activities built on
 * it) against the simulator. Failed logins answer at once: tests do not wait out the real 3 s delay.
 */
import { createProxmoxClient, type ProxmoxClient } from '../../src/proxmox/index.js';
import { DEMO_TOKEN_ID, demoClusters, startSimulator, type ProxmoxSimulator, type SimulatorOptions } from '../../src/simulator/index.js';

export interface SimulatedProxmox {
  sim: ProxmoxSimulator;
  client: ProxmoxClient;
  /** Closes the client, then the simulator. */
  close(): Promise<void>;
}

/** The simulator's options (its cluster, task duration, faults…) less the login delay. */
type SimOptions = Omit<SimulatorOptions, 'authFailureDelayMs'>;

export interface SimulatedProxmoxOptions extends SimOptions {
  /** The secret of the client's token, which the cluster seed must list. */
  secret: string;
  /** Default: the demo clusters' token. */
  tokenId?: string;
}

export async function startSimulatedProxmox({ secret, tokenId = DEMO_TOKEN_ID, ...simOptions }: SimulatedProxmoxOptions): Promise<SimulatedProxmox> {
  const sim = await startSimulator({ ...simOptions, authFailureDelayMs: 0 });
  const client = createProxmoxClient({ baseUrl: sim.url, tokenId, tokenSecret: secret });
  return {
    sim,
    client,
    close: async () => {
      await client.close();
      await sim.close();
    },
  };
}

/** One of the demo clusters (`lab` or `prod`, src/simulator/seed.ts), its demo token holding `secret`. */
export function startDemoCluster(name: 'lab' | 'prod', secret: string, opts: Omit<SimOptions, 'cluster'>): Promise<SimulatedProxmox> {
  return startSimulatedProxmox({ ...opts, cluster: demoClusters({ lab: secret, prod: secret })[name], secret });
}
