/**
 * The Proxmox simulators of the benchmark, in their own process (Proxmox is another machine in real
 * life): one simulator per cluster in the JSON file named by argv[2] ({taskDurationMs, clusters}).
 * Prints one line `simulators {"name": url, ...}` once they listen; SIGTERM stops them.
 */
import { readFileSync } from 'node:fs';
import { startSimulator, type ProxmoxSimulator, type SimClusterSeed } from '../src/simulator/index.js';

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { taskDurationMs: number; clusters: SimClusterSeed[] };
const sims: ProxmoxSimulator[] = [];
const urls: Record<string, string> = {};
for (const cluster of spec.clusters) {
  const sim = await startSimulator({ cluster, taskDurationMs: spec.taskDurationMs, authFailureDelayMs: 0 });
  sims.push(sim);
  urls[cluster.name] = sim.url;
}
console.log(`simulators ${JSON.stringify(urls)}`);
const stop = () => void Promise.all(sims.map((s) => s.close())).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
