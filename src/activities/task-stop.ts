import { Context } from '@temporalio/activity';
import type { ProxmoxClient } from '../proxmox/index.js';

/**
 * An operator cancelled the run while its Proxmox task ran: ask Proxmox to stop it (DELETE the task),
 * as far as Proxmox allows, and wait a little for it to end. Returns its exit status once it ended
 * (an error such as `received interrupt` when the stop came in time, `OK` when the task had
 * finished), or undefined when that could not be seen.
 */
export async function stopCancelledTask(client: ProxmoxClient, node: string, upid: string): Promise<string | undefined> {
  const log = Context.current().log;
  const ended = await client.taskStatus(node, upid, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  if (ended?.status === 'stopped') return ended.exitstatus ?? 'unexpected status';
  try {
    await client.stopTask(node, upid);
    log.warn('run cancelled: asked Proxmox to stop its task', { upid });
  } catch (err) {
    log.warn('run cancelled: Proxmox did not stop the task', { upid, error: (err as Error).message });
  }
  // Not the activity's signal: it is aborted already.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const status = await client.taskStatus(node, upid, { signal: AbortSignal.timeout(5_000) });
      if (status.status === 'stopped') return status.exitstatus ?? 'unexpected status';
    } catch {
      // Read again until the deadline.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

