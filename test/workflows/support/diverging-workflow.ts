/** A workflow of the same name that does something else: replaying a real history against it must fail. */
import { sleep } from '@temporalio/workflow';

export async function actionWorkflow(): Promise<void> {
  await sleep('1 minute');
}
