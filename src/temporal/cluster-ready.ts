/**
 * When is a freshly started cluster usable? Not when its port opens: the frontend answers before the
 * history shards are owned, a new namespace reaches the other services only at their next namespace
 * refresh, and a real server caches search attributes (it does not re-read them on every call, as the
 * dev server does), so for a few seconds after registration a workflow using them is refused.
 *
 * `waitUntilUsable` therefore walks the steps a caller would take, retrying each until it works:
 * GetSystemInfo → the namespace (registered with retention if missing) → the project's search
 * attributes (ensureSearchAttributes) → a probe workflow started with every one of them (then deleted).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { google } from '@temporalio/proto';
import { defineSearchAttributeKey, type SearchAttributePair } from '@temporalio/common';
import { CLUSTER_NAMESPACE_RETENTION_HOURS } from './cluster-config.js';
import { silentLog, type TemporalLog } from './log.js';
import { ensureSearchAttributes } from './search-attributes-admin.js';
import { PROJECT_SEARCH_ATTRIBUTES, type SearchAttributeDef } from './search-attributes.js';

export const PROBE_TASK_QUEUE = 'temporal-cluster-readiness-probe';

export interface UsableOptions {
  address: string;
  namespace: string;
  deadline: number;
  /** Throws (e.g. "the server exited") to stop waiting early. */
  checkAlive: () => void;
  attrs?: readonly SearchAttributeDef[];
  log?: TemporalLog;
}

export interface UsableTimings {
  /** ms from the call until GetSystemInfo answered, the namespace was described, and the probe started. */
  frontend: number;
  namespace: number;
  probe: number;
}

/** A value of the attribute's type, for the probe. */
function probePair(def: SearchAttributeDef): SearchAttributePair {
  const values = { TEXT: 'probe', KEYWORD: 'probe', INT: 0, DOUBLE: 0, BOOL: false, DATETIME: new Date(0), KEYWORD_LIST: ['probe'] } as const;
  return { key: defineSearchAttributeKey(def.name, def.type), value: values[def.type] } as SearchAttributePair;
}

async function retry<T>(what: string, o: UsableOptions, fn: () => Promise<T>): Promise<T> {
  let last = 'no answer yet';
  for (;;) {
    o.checkAlive();
    if (Date.now() > o.deadline) throw new Error(`${what}: not done before the deadline (last error: ${last})`);
    try {
      return await fn();
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
}

/** Resolves when a workflow using the project's search attributes can start in `namespace`. */
export async function waitUntilUsable(o: UsableOptions): Promise<UsableTimings> {
  const log = o.log ?? silentLog;
  const attrs = o.attrs ?? PROJECT_SEARCH_ATTRIBUTES;
  const t0 = Date.now();
  const connection = await retry('the frontend answering', o, () => Connection.connect({ address: o.address, connectTimeout: 2000 }));
  try {
    const svc = connection.workflowService;
    const deadline = <T>(fn: () => Promise<T>) => connection.withDeadline(Date.now() + 5000, fn);
    await retry('GetSystemInfo', o, () => deadline(() => svc.getSystemInfo({})));
    const frontend = Date.now() - t0;

    await retry(`namespace "${o.namespace}"`, o, async () => {
      try {
        await deadline(() => svc.describeNamespace({ namespace: o.namespace }));
      } catch (err) {
        if ((err as { code?: number }).code !== 5 /* NOT_FOUND */) throw err;
        await registerNamespace(connection, o.namespace, log);
        throw new Error('registered; waiting until it can be described');
      }
    });
    const namespace = Date.now() - t0;

    await retry('registering the search attributes', o, () => deadline(() => ensureSearchAttributes(connection, o.namespace, attrs, log)));

    const client = new Client({ connection, namespace: o.namespace });
    await retry('a probe workflow with the search attributes', o, async () => {
      const workflowId = `temporal-cluster-probe-${randomUUID()}`;
      const handle = await client.workflow.start('temporalClusterProbe', {
        workflowId,
        taskQueue: PROBE_TASK_QUEUE,
        typedSearchAttributes: attrs.map(probePair),
        workflowExecutionTimeout: '1 minute',
      });
      // Deleting a running workflow terminates it first; nothing is left in the namespace's lists.
      await svc.deleteWorkflowExecution({ namespace: o.namespace, workflowExecution: { workflowId, runId: handle.firstExecutionRunId } }).catch(() => {});
    });
    return { frontend, namespace, probe: Date.now() - t0 };
  } finally {
    await connection.close().catch(() => {});
  }
}

async function registerNamespace(connection: Connection, namespace: string, log: TemporalLog): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      description: 'proxmox-agent (npm run temporal:cluster)',
      // protobufjs takes a number for an int64; the generated type says Long.
      workflowExecutionRetentionPeriod: { seconds: CLUSTER_NAMESPACE_RETENTION_HOURS * 3600 } as unknown as google.protobuf.IDuration,
    });
    log(`Registered namespace "${namespace}" (retention ${CLUSTER_NAMESPACE_RETENTION_HOURS} h)`);
  } catch (err) {
    if ((err as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw err;
  }
}
