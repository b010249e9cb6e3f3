/**
 * The service's config for the bench: the demo's tokens and policy, the two simulated environments, a
 * file audit log; and the environment its processes run with.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { DEMO_TOKEN_ID } from '../../src/simulator/index.js';
import type { BenchSimulators } from './simulators.js';

export interface BenchServiceConfig {
  configPath: string;
  /** The environment of the API and the workers: this process's, with the config and Temporal named. */
  env: NodeJS.ProcessEnv;
}

export function writeServiceConfig(opts: {
  tmp: string;
  tag: string;
  temporal: { address: string; namespace: string };
  sims: BenchSimulators;
  workerTuning: Record<string, unknown>;
}): BenchServiceConfig {
  const { tmp, tag, sims } = opts;
  const { address, namespace } = opts.temporal;
  const demoPath = loadConfig({}).path;
  const demoRaw = parseYaml(readFileSync(demoPath, 'utf8')) as { tokens: unknown; policy: { rules?: { match?: { environments?: string[] } }[] } };
  // The demo's rules, less those about its `prod` environment (the config check refuses rules naming none).
  const policy = { ...demoRaw.policy, rules: (demoRaw.policy.rules ?? []).filter((r) => !r.match?.environments?.includes('prod')) };
  const configPath = join(tmp, 'config.yaml');
  const proxmox = (url: string) => ({ url, tokenId: DEMO_TOKEN_ID, tokenSecret: { env: 'BENCH_SIM_SECRET' } });
  // Each environment's Proxmox rate limit (default 5 actions/s) raised, so that it does not cap the load.
  const unlimited = { maxActivitiesPerSecond: 1000 };
  writeFileSync(
    configPath,
    stringify({
      // The limiter stays on (its cost is part of a request), with room for the load.
      server: { host: '127.0.0.1', port: 0, rateLimit: { requestsPerSecond: 100_000, burst: 100_000 } },
      temporal: { namespace, taskQueue: `bench-${tag}` },
      // The worker's own HTTP server on a free port; tuning as configured by default, unless overridden.
      worker: { port: 0, ...opts.workerTuning },
      environments: {
        lab: { tier: 'nonprod', proxmox: proxmox(sims.urls['bench-lab']!), ...unlimited },
        bulk: { tier: 'nonprod', proxmox: proxmox(sims.urls['bench-bulk']!), ...unlimited },
      },
      tokens: demoRaw.tokens,
      policy,
      audit: { file: join(tmp, 'audit.jsonl') },
    }),
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PROXMOX_AGENT_CONFIG: configPath, BENCH_SIM_SECRET: sims.secret, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
  delete env.PORT;
  return { configPath, env };
}
