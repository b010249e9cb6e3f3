/** The worker's task queues: one for runs and local work, and one per environment for Proxmox calls. Workflow-safe. */
export const DEFAULT_TASK_QUEUE = 'proxmox-agent';

/**
 * The task queue of an environment's Proxmox-calling activities: `<taskQueue>-<environment>`. One
 * queue per Proxmox cluster lets the server rate-limit each cluster on its own
 * (`maxTaskQueueActivitiesPerSecond`) and lets workers near a cluster serve only it.
 */
export function environmentTaskQueue(taskQueue: string, environment: string): string {
  return `${taskQueue}-${environment}`;
}
