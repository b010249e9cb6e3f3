/**
 * The floor of the benchmark: the least Temporal work a plan can cost. An Update-with-Start whose
 * update awaits one no-op regular activity, then the run waits (as a plan waits for apply) until it
 * is told to finish. No search attributes, no memo, no local activities.
 */
import { condition, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

export interface FloorActivities {
  noop(input: string): Promise<string>;
}

export const floorUpdate = defineUpdate<string, [string]>('floor');
export const finishSignal = defineSignal('finish');

const { noop } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30s' });

export async function floorWorkflow(): Promise<void> {
  let finished = false;
  setHandler(floorUpdate, (input) => noop(input));
  setHandler(finishSignal, () => void (finished = true));
  await condition(() => finished, '2h');
}
