/**
 * Worker tasks (UPIDs) with the real lifecycle: `running` for a while, then `stopped` with an
 * exitstatus taken from the last log line (`TASK OK`, `TASK WARNINGS: n`, `TASK ERROR: msg`).
 *
 * A task's effect is applied when it completes, not when it is dispatched, so a client polling
 * status/current sees the old state while the task runs — as on a real node. Locks a task holds are
 * taken at dispatch and released when it ends, whatever the outcome.
 */
import { TaskError } from './errors.js';
import type { TaskFaults } from './faults.js';
import { formatUpid, type UpidParts } from '../proxmox/upid.js';
import type { StoredGuest } from './model-types.js';

/** A task as the simulator keeps it: the fields its UPID encodes, then its progress and log. */
export interface TaskView extends UpidParts {
  upid: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  endtime?: number;
  log: string[];
  vmid?: number;
}

/** Passed to a task's completion callback to write log lines and warnings. */
export interface TaskContext {
  upid: string;
  log(line: string): void;
  warn(line: string): void;
}

export interface TaskSpec {
  node: string;
  type: string;
  id: string;
  user: string;
  vmid?: number;
  /** lines written when the worker starts */
  startLog?: string[];
  /** A guest lock held for the task's lifetime (`snapshot`, `clone`, `backup`...). */
  lock?: { guest: StoredGuest; name: string };
  /** Checks the worker does first; a TaskError fails the task straight away. */
  begin?: () => void;
  /** The effect, applied when the task's time is up. A TaskError makes it fail without effect. */
  complete: (ctx: TaskContext) => void;
  /** Undo partial work when the task fails or is stopped (e.g. remove a half-created clone). */
  onAbort?: () => void;
  faults?: TaskFaults;
}

/** One `DELETE /nodes/{node}/tasks/{upid}` the simulator answered: who asked to stop which task, and whether it was still running. */
export interface TaskStop {
  upid: string;
  node: string;
  type: string;
  /** The task's id field (the vmid for guest tasks). */
  id: string;
  /** ms since epoch */
  time: number;
  /** Sequence number of the HTTP request that asked for the stop. */
  dispatch: number;
  /** True when the task was running and this request ended it (`received interrupt`). */
  wasRunning: boolean;
}

interface TaskRecord extends TaskView {
  spec: TaskSpec;
  timer?: NodeJS.Timeout;
  warnings: number;
  createdAt: number;
}

export class TaskManager {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly order: TaskRecord[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly stops: TaskStop[] = [];
  private lastStart = 0;

  constructor(
    private readonly opts: {
      durationMs: () => number;
      nextPid: () => number;
      /** node boot time in ms, for `pstart` (clock ticks since boot) */
      bootTime: number;
    },
  ) {}

  start(spec: TaskSpec): string {
    const now = Date.now();
    // UPIDs must be unique; two tasks in one second get distinct pids anyway, but keep starttime monotonic.
    const starttime = Math.max(Math.floor(now / 1000), this.lastStart);
    this.lastStart = starttime;
    const pid = this.opts.nextPid();
    const pstart = Math.floor((now - this.opts.bootTime) / 10) + 1_000_000; // 100 Hz ticks, host up a while
    // A token's tasks record `user@realm!token`; the status shows user and token apart.
    const bang = spec.user.lastIndexOf('!');
    const parts: UpidParts = {
      node: spec.node,
      pid,
      pstart,
      starttime,
      type: spec.type,
      id: spec.id,
      user: bang >= 0 ? spec.user.slice(0, bang) : spec.user,
      ...(bang >= 0 ? { tokenid: spec.user.slice(bang + 1) } : {}),
    };
    const upid = formatUpid(parts);
    const rec: TaskRecord = {
      upid,
      ...parts,
      status: 'running',
      log: [...(spec.startLog ?? [])],
      ...(spec.vmid !== undefined ? { vmid: spec.vmid } : {}),
      spec,
      warnings: 0,
      createdAt: now,
    };
    this.tasks.set(upid, rec);
    this.order.push(rec);

    try {
      spec.begin?.();
      if (spec.lock) spec.lock.guest.lock = spec.lock.name;
    } catch (e) {
      if (!(e instanceof TaskError)) throw e;
      // The worker died on its first check: it ends almost at once, after the UPID went out.
      this.defer(0, () => this.finish(rec, e.message));
      return upid;
    }
    const duration = spec.faults?.durationMs ?? this.opts.durationMs();
    rec.timer = this.defer(duration, () => this.run(rec));
    return upid;
  }

  private run(rec: TaskRecord): void {
    delete rec.timer;
    const { spec } = rec;
    if (spec.faults?.error) {
      this.finish(rec, spec.faults.error);
      return;
    }
    const ctx: TaskContext = {
      upid: rec.upid,
      log: (line) => rec.log.push(line),
      warn: (line) => {
        rec.warnings++;
        rec.log.push(`WARN: ${line}`);
      },
    };
    try {
      this.releaseLock(rec);
      spec.complete(ctx);
    } catch (e) {
      this.finish(rec, e instanceof TaskError ? e.message : `internal simulator error: ${(e as Error).message}`);
      return;
    }
    for (let i = 0; i < (spec.faults?.warnings ?? 0); i++) ctx.warn('injected warning');
    this.finish(rec);
  }

  private releaseLock(rec: TaskRecord): void {
    const l = rec.spec.lock;
    if (l && l.guest.lock === l.name) delete l.guest.lock;
  }

  /** Ends a task; `error` set means failure (the effect is undone via onAbort). */
  private finish(rec: TaskRecord, error?: string): void {
    if (rec.status === 'stopped') return;
    if (error !== undefined) {
      this.releaseLock(rec);
      rec.spec.onAbort?.();
      const flat = error.replace(/\n+$/, '').replace(/\n/g, ' ');
      rec.log.push(`TASK ERROR: ${flat}`);
      rec.exitstatus = flat;
    } else if (rec.warnings > 0) {
      rec.log.push(`TASK WARNINGS: ${rec.warnings}`);
      rec.exitstatus = `WARNINGS: ${rec.warnings}`;
    } else {
      rec.log.push('TASK OK');
      rec.exitstatus = 'OK';
    }
    rec.status = 'stopped';
    rec.endtime = Math.max(Math.floor(Date.now() / 1000), rec.starttime);
  }

  /**
   * DELETE /nodes/{node}/tasks/{upid}: the worker gets SIGTERM and dies with "received interrupt".
   * With `dispatch` (the HTTP request asking for it) the request is recorded in `stopLog()`.
   */
  stop(upid: string, dispatch?: number): void {
    const rec = this.tasks.get(upid);
    if (rec && dispatch !== undefined) {
      this.stops.push({ upid, node: rec.node, type: rec.type, id: rec.id, time: Date.now(), dispatch, wasRunning: rec.status === 'running' });
    }
    if (!rec || rec.status !== 'running') return;
    if (rec.timer) {
      clearTimeout(rec.timer);
      this.timers.delete(rec.timer);
      delete rec.timer;
    }
    this.finish(rec, 'received interrupt');
  }

  /** Internal record (with the spec) for the HTTP layer; undefined if unknown. */
  find(upid: string): TaskView | undefined {
    return this.tasks.get(upid);
  }

  /** Milliseconds since the task was created (for the "no such task yet" fault). */
  ageMs(upid: string): number {
    const rec = this.tasks.get(upid);
    return rec ? Date.now() - rec.createdAt : Infinity;
  }

  get(upid: string): TaskView | undefined {
    const rec = this.tasks.get(upid);
    return rec ? publicView(rec) : undefined;
  }

  list(): TaskView[] {
    return this.order.map(publicView);
  }

  /** Every stop request for a known task, in order (the record that a task was stopped, and by whom). */
  stopLog(): TaskStop[] {
    return this.stops.map((s) => ({ ...s }));
  }

  /** setTimeout tracked so close() can cancel everything. */
  defer(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  shutdown(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function publicView(rec: TaskRecord): TaskView {
  const { spec: _spec, timer: _timer, warnings: _w, createdAt: _c, log, ...rest } = rec;
  return { ...rest, log: [...log] };
}
