/**
 * The floors of the benchmark: the least Temporal work a plan can cost. An Update-with-Start whose
 * update awaits one no-op activity, then the run waits (as a plan waits for apply) until it is told
 * to finish. No search attributes, no memo.
 *
 * Two shapes of that update: (a) `floorWorkflow` awaits a regular activity (a second workflow task
 * and an activity task round trip); (a′) `floorLocalWorkflow` awaits a local activity inside the
 * first workflow task, as a plan's update awaits its `assess`: the floor in the plan's own shape.
 */
import { condition, defineSignal, defineUpdate, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';

export interface FloorActivities {
  noop(input: string): Promise<string>;
}

export const floorUpdate = defineUpdate<string, [string]>('floor');
export const finishSignal = defineSignal('finish');

const { noop } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30s' });
const local = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '30s' });

/** (a): the update awaits a regular activity. */
export async function floorWorkflow(): Promise<void> {
  await answerThenWait(noop);
}

/** (a′): the update awaits a local activity. */
export async function floorLocalWorkflow(): Promise<void> {
  await answerThenWait(local.noop);
}

/** Either floor's run: its update answers through `answer`, then it waits (as a plan waits for apply) until told to finish. */
async function answerThenWait(answer: (input: string) => Promise<string>): Promise<void> {
  let finished = false;
  setHandler(floorUpdate, answer);
  setHandler(finishSignal, () => void (finished = true));
  await condition(() => finished, '2h');
}
