/**
 * The floors' worker, as its own process (like the product's worker): SDK defaults, one no-op
 * activity, which floor (a) runs as a regular activity and floor (a′) as a local one (the worker
 * runs both kinds). Prints `floor worker polling` once it polls; SIGTERM stops it.
 *
 *   TEMPORAL_ADDRESS=127.0.0.1:7233 BENCH_FLOOR_QUEUE=q tsx bench/floor-worker.ts
 */
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { FloorActivities } from './floor-workflow.js';

const address = process.env.TEMPORAL_ADDRESS;
const taskQueue = process.env.BENCH_FLOOR_QUEUE;
if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and BENCH_FLOOR_QUEUE are required');

Runtime.install({ logger: new DefaultLogger('WARN') });
const activities: FloorActivities = { noop: async (input) => input };
const connection = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection,
  namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
  taskQueue,
  workflowsPath: fileURLToPath(new URL('./floor-workflow.ts', import.meta.url)),
  activities,
});
process.once('SIGTERM', () => worker.shutdown());
process.once('SIGINT', () => worker.shutdown());
const running = worker.run();
console.log(`floor worker polling (pid ${process.pid})`);
await running;
await connection.close();
