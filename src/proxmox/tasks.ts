// Waiting for a Proxmox task (UPID) to finish.
//
// Only GET requests are ever made here. A failed poll (dropped connection, 599 during a slow start,
// the node briefly unreachable) is answered by polling again, never by re-sending the action: the
// task is already running on the node, and a second start would fail it or, worse, act twice
// (Telmate#396). Deciding whether to re-dispatch belongs to the caller, after re-reading state.

import {
  ProxmoxError,
  ProxmoxInvalidParamError,
  ProxmoxInvalidPathParamError,
  ProxmoxProtocolError,
  ProxmoxTaskFailedError,
  ProxmoxTaskWaitTimeoutError,
  isRetryableProxmoxError,
} from './errors.js';
import { fillPath } from './paths.js';
import type { TaskLogPage, TaskStatus } from './types.js';
import { parseUpid } from './upid.js';

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/** The two reads waitForTask needs; the client provides them. */
export interface TaskReader {
  taskStatus(node: string, upid: string, opts?: CallOptions): Promise<TaskStatus>;
  taskLog(node: string, upid: string, page: { start?: number; limit?: number }, opts?: CallOptions): Promise<TaskLogPage>;
}

export interface WaitForTaskOptions {
  /** Longest pause between polls (default 1000 ms, as proxmoxer and bpg do). */
  intervalMs?: number;
  /**
   * The first pause (default 100 ms, or intervalMs if shorter); each next one doubles, up to
   * intervalMs. Most tasks end within a second or two: waiting a whole interval after a task that
   * took 50 ms is latency added to every action for nothing.
   */
  firstIntervalMs?: number;
  /** Aborting rejects with `signal.reason` (e.g. Temporal's CancelledFailure), unwrapped. */
  signal?: AbortSignal;
  /** Called with every status read, e.g. to heartbeat a Temporal activity. */
  onPoll?: (status: TaskStatus) => void;
  /** Called with every poll error that is tolerated (transient, or "no such task" in the grace period). */
  onPollError?: (err: ProxmoxError) => void;
  /** Give up after this long with ProxmoxTaskWaitTimeoutError (default: wait until stopped or aborted). */
  timeoutMs?: number;
  /** How long a 400 "no such task" is taken to mean "not visible yet" after we start waiting (default 10 s). */
  noSuchTaskGraceMs?: number;
  /** Number of task log lines to attach to ProxmoxTaskFailedError (default 20). */
  logTailLines?: number;
}

export interface TaskResult {
  upid: string;
  node: string;
  /** `OK` or `WARNINGS: n`. */
  exitstatus: string;
  ok: boolean;
  /** Set when Proxmox reported `WARNINGS: n`. */
  warnings?: number;
  /** The final status read. */
  status: TaskStatus;
}

/** Proxmox's own rule (PVE::Tools::upid_status_is_error): only `OK` and `WARNINGS: n` are success. */
export function interpretExitStatus(exitstatus: string): { ok: boolean; warnings?: number } {
  if (exitstatus === 'OK') return { ok: true };
  const m = /^WARNINGS: (\d+)$/.exec(exitstatus);
  if (m) return { ok: true, warnings: Number(m[1]) };
  return { ok: false };
}

/** Right after dispatch a task can briefly read as 400 `{upid: "no such task"}`. */
export function isNoSuchTask(err: unknown): boolean {
  if (!(err instanceof ProxmoxError) || (err.status !== 400 && err.status !== 500)) return false;
  const texts = [err.proxmoxMessage, ...Object.values(err.errors ?? {})];
  return texts.some((t) => /no such task/i.test(t));
}

/**
 * Checks that `upid` is a UPID that belongs to `node`: task endpoints are proxied to `node`, and
 * asking one node about another node's task only ever answers "no such task".
 */
export function assertTaskOnNode(node: string, upid: string, method = 'GET'): void {
  const parsed = parseUpid(upid);
  if (!parsed) {
    throw new ProxmoxInvalidPathParamError(`not a UPID: ${JSON.stringify(upid.slice(0, 120))}`, { param: 'upid', method });
  }
  if (parsed.node !== node) {
    throw new ProxmoxInvalidParamError(`task ${upid} runs on node ${parsed.node}, not ${node}`, { param: 'node', method });
  }
}

/** Consecutive status reads with an unusable body that a wait reads past. */
const UNUSABLE_READS_TOLERATED = 5;

const statusPath = (node: string, upid: string): string => fillPath('/nodes/{node}/tasks/{upid}/status', { node, upid });

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function readLogTail(api: TaskReader, node: string, upid: string, lines: number, signal?: AbortSignal): Promise<string[]> {
  const first = await api.taskLog(node, upid, { start: 0, limit: lines }, { signal });
  if (first.total === undefined || first.total <= lines) return first.lines.map((l) => l.t);
  const tail = await api.taskLog(node, upid, { start: first.total - lines, limit: lines }, { signal });
  return tail.lines.map((l) => l.t);
}

async function failTask(api: TaskReader, node: string, upid: string, status: TaskStatus, exitstatus: string, opts: WaitForTaskOptions): Promise<never> {
  let logTail: string[] = [];
  try {
    logTail = await readLogTail(api, node, upid, opts.logTailLines ?? 20, opts.signal);
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    // The verdict is already known; an unreadable log must not hide it.
  }
  const shown = logTail.slice(-5);
  throw new ProxmoxTaskFailedError(
    `Proxmox task ${status.type} on ${node} failed: ${exitstatus} (${upid})` +
      (shown.length > 0 ? `\nlast log lines:\n  ${shown.join('\n  ')}` : ''),
    { upid, node, taskType: status.type, exitstatus, logTail, method: 'GET', path: statusPath(node, upid) },
  );
}

/**
 * Polls `GET /nodes/{node}/tasks/{upid}/status` until the task stops: at once, then after 100 ms,
 * 200, 400... up to `intervalMs` between polls. Resolves for `OK` and
 * `WARNINGS: n`; throws ProxmoxTaskFailedError (with the log tail) for anything else.
 */
export async function waitForTask(api: TaskReader, node: string, upid: string, opts: WaitForTaskOptions = {}): Promise<TaskResult> {
  assertTaskOnNode(node, upid);
  const { signal } = opts;
  const intervalMs = opts.intervalMs ?? 1000;
  let pause = Math.min(opts.firstIntervalMs ?? 100, intervalMs);
  const graceMs = opts.noSuchTaskGraceMs ?? 10_000;
  const started = Date.now();
  const deadline = opts.timeoutMs === undefined ? Number.POSITIVE_INFINITY : started + opts.timeoutMs;
  let last: TaskStatus | undefined;
  let unusable = 0;

  for (;;) {
    if (signal?.aborted) throw signal.reason;
    let status: TaskStatus | undefined;
    try {
      status = await api.taskStatus(node, upid, { signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      // A read answered with a body that cannot be used (a proxy cut it short) is read again, a few
      // times in a row at most: the task's status is not changed by asking.
      unusable = err instanceof ProxmoxProtocolError ? unusable + 1 : 0;
      const tolerated = (isNoSuchTask(err) && Date.now() - started < graceMs) || isRetryableProxmoxError(err) || (unusable > 0 && unusable <= UNUSABLE_READS_TOLERATED);
      if (!tolerated) throw err;
      opts.onPollError?.(err as ProxmoxError);
    }
    if (status) {
      unusable = 0;
      last = status;
      opts.onPoll?.(status);
      if (status.status === 'stopped') {
        const exitstatus = status.exitstatus ?? 'unexpected status';
        const verdict = interpretExitStatus(exitstatus);
        if (!verdict.ok) return failTask(api, node, upid, status, exitstatus, opts);
        return { upid, node, exitstatus, status, ...verdict };
      }
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new ProxmoxTaskWaitTimeoutError(
        `gave up waiting for Proxmox task ${upid} after ${opts.timeoutMs} ms (last status: ${last?.status ?? 'never read'})`,
        { upid, lastStatus: last?.status, method: 'GET', path: statusPath(node, upid) },
      );
    }
    await sleep(Math.min(pause, remaining), signal);
    pause = Math.min(pause * 2, intervalMs);
  }
}
