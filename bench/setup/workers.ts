/**
 * The two worker processes: the product's, as the Dockerfile runs it (`npm run build`, then
 * `node dist/bin/worker.mjs` with the workflow bundle built beside it) unless BENCH_WORKER_RUNTIME
 * says otherwise; and the floor's (bench/floor-worker.ts), SDK defaults.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildEntryPoints } from '../../scripts/build.js';
import { buildWorkflowBundle } from '../../scripts/build-workflow-bundle.js';
import { spawnReady, type Child } from '../harness.js';
import type { BenchSettings } from '../settings.js';
import { ROOT, TSX } from './paths.js';

/** V8's young generation capped at 4 MiB per semi-space, as the Docker image runs the worker. */
const WORKER_V8_FLAG = '--max-semi-space-size=4';

export interface BenchWorkers {
  /** The product's worker; a new process after restart(). */
  product: Child;
  floor: Child;
  floorQueue: string;
  /** A fresh product worker (the waiting-plans phase starts from an idle one). */
  restart(): Promise<void>;
}

export async function startWorkers(opts: {
  settings: BenchSettings;
  tmp: string;
  tag: string;
  env: NodeJS.ProcessEnv;
  defer: (stop: () => Promise<unknown>) => void;
}): Promise<BenchWorkers> {
  const { settings, tmp, tag, env, defer } = opts;
  // Under the project (its node_modules resolve the bundle's packages), apart from `npm run build`'s own dist/.
  const builtDir = join(ROOT, 'dist', `bench-${tag}`);
  defer(async () => rmSync(builtDir, { recursive: true, force: true }));
  const built = settings.workerRuntime === 'built' ? await buildEntryPoints(builtDir) : undefined;
  const bundle = built?.workflowBundle ?? (settings.workerRuntime === 'tsx' ? await buildWorkflowBundle(join(tmp, 'workflow-bundle.js')) : undefined);
  const startProduct = () =>
    // The V8 flag as the image's worker command passes it (Dockerfile, docker-compose.temporal.yml).
    spawnReady('worker', process.execPath, [WORKER_V8_FLAG, ...(built ? [built.worker] : [...TSX, join(ROOT, 'src/worker/main.ts')])], {
      cwd: ROOT,
      // MALLOC_ARENA_MAX as the image sets it (Dockerfile).
      env: { MALLOC_ARENA_MAX: '2', ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'info', ...(bundle ? { WORKFLOW_BUNDLE: bundle } : {}) },
      ready: /worker polling/,
      logFile: join(tmp, 'worker.log'),
    });
  const floorQueue = `bench-floor-${tag}`;
  const [product, floor] = await Promise.all([
    startProduct(),
    spawnReady('floor worker', process.execPath, [...TSX, join(ROOT, 'bench/floor-worker.ts')], {
      cwd: ROOT,
      env: { ...env, BENCH_FLOOR_QUEUE: floorQueue },
      ready: /floor worker polling/,
      logFile: join(tmp, 'floor-worker.log'),
    }),
  ]);
  const workers: BenchWorkers = {
    product,
    floor,
    floorQueue,
    async restart() {
      await workers.product.stop();
      workers.product = await startProduct();
    },
  };
  // Whichever product worker is running at the end.
  defer(() => workers.product.stop());
  defer(() => floor.stop());
  return workers;
}
