/**
 * Record of every state change a client caused, so tests can prove exactly-once execution.
 *
 * An entry is written when the effect is applied (a sync config write at once; a task's effect when
 * the task completes), never for no-ops (stopping a stopped VM) and never for failed tasks. Each entry
 * carries the id of the HTTP dispatch that caused it: a retried POST that executed twice shows up as
 * two entries with the same (vmid, op, key) from different dispatches.
 */
export type MutationOp =
  | 'start' | 'stop' | 'shutdown' | 'reboot' | 'reset' | 'suspend' | 'resume'
  | 'config' | 'snapshot' | 'snapshot-delete' | 'rollback' | 'clone' | 'migrate' | 'resize'
  | 'destroy' | 'backup';

export interface Mutation {
  seq: number;
  /** ms since epoch */
  time: number;
  cluster: string;
  node: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  op: MutationOp;
  upid?: string;
  /** What distinguishes two mutations of one op on one guest: snapshot name, newid, target, disk, changed keys. */
  key: string;
  /** Sequence number of the HTTP request that caused it. */
  dispatch: number;
  detail: Record<string, unknown>;
}

export interface DuplicateGroup {
  vmid: number;
  op: MutationOp;
  key: string;
  count: number;
  entries: Mutation[];
}

export class MutationLog {
  private entries: Mutation[] = [];
  private seq = 0;

  constructor(private readonly cluster: string) {}

  record(m: Omit<Mutation, 'seq' | 'time' | 'cluster'>): Mutation {
    const entry: Mutation = { seq: ++this.seq, time: Date.now(), cluster: this.cluster, ...m };
    this.entries.push(entry);
    return entry;
  }

  all(): Mutation[] {
    return [...this.entries];
  }

  countFor(vmid: number, op?: MutationOp): number {
    return this.entries.filter((m) => m.vmid === vmid && (op === undefined || m.op === op)).length;
  }

  /** Groups of (vmid, op, key) applied more than once, from distinct dispatches. */
  duplicates(): DuplicateGroup[] {
    const groups = new Map<string, Mutation[]>();
    for (const m of this.entries) {
      const k = `${m.vmid}\u0000${m.op}\u0000${m.key}`;
      groups.set(k, [...(groups.get(k) ?? []), m]);
    }
    const out: DuplicateGroup[] = [];
    for (const entries of groups.values()) {
      if (new Set(entries.map((e) => e.dispatch)).size < 2) continue;
      const first = entries[0]!;
      out.push({ vmid: first.vmid, op: first.op, key: first.key, count: entries.length, entries });
    }
    return out;
  }

  clear(): void {
    this.entries = [];
  }
}
