import type { Client } from '@temporalio/client';
import type { AuditStore } from '../../audit/store.js';
import { TASK_LOG_LIMIT } from '../../audit/evidence.js';
import type { NormalizedRequest } from '../../domain/request.js';
import type { ProxmoxClient } from '../../proxmox/index.js';
import type { ActionWorkflowInput } from '../../workflows/messages.js';
import type { EvidenceDeps } from '../routes/evidence.js';

/**
 * The evidence endpoint's sources: the audit store, the run's own input (the first event of its
 * history: the normalized request exactly as it was hashed), and each environment's Proxmox client
 * for task logs.
 */
export function createEvidenceDeps(opts: {
  audit: AuditStore;
  client: Client;
  namespace: string;
  proxmox: (environment: string) => ProxmoxClient | undefined;
}): EvidenceDeps {
  return {
    audit: opts.audit,
    async runRequest(planId) {
      const response = await opts.client.workflowService.getWorkflowExecutionHistory({
        namespace: opts.namespace,
        execution: { workflowId: planId },
        maximumPageSize: 1,
      });
      const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      if (!payload) return undefined;
      const input = opts.client.options.loadedDataConverter.payloadConverter.fromPayload<ActionWorkflowInput>(payload);
      return input?.request as NormalizedRequest | undefined;
    },
    async taskLog(environment, node, upid) {
      const client = opts.proxmox(environment);
      if (!client) throw new Error(`no Proxmox client for environment '${environment}'`);
      const page = await client.taskLog(node, upid, { start: 0, limit: TASK_LOG_LIMIT });
      return { lines: page.lines.map((l) => l.t), ...(page.total === undefined ? {} : { total: page.total }) };
    },
  };
}
