/**
 * Record of the API requests the simulator routed, with what it did to each: the outsider's view of
 * "who asked Proxmox for what, and what came back". A mutation's `dispatch` is an entry's `seq`, so
 * a test can tie each state change to the parameters of the request that caused it, and see the
 * faults each request met.
 *
 * Bounded (the newest `limit` entries are kept), so a long-running demo simulator does not grow
 * without end.
 */

/** What the client got. */
export type RequestAnswer =
  /** A status line and body were sent (2xx or an error). */
  | { kind: 'answered'; status: number }
  /** The socket was destroyed before any response (drop-after-dispatch). */
  | { kind: 'dropped' }
  /** 2xx with a body that is not JSON (garbled-after-dispatch). */
  | { kind: 'garbled'; status: number; body: string };

export interface RequestRecord {
  /** The dispatch sequence number (`Mutation.dispatch`). */
  seq: number;
  /** ms since epoch, when the request was routed */
  time: number;
  method: string;
  /** Path below /api2/json, decoded. */
  path: string;
  /** Path, query and body parameters as the handler saw them (absent when refused before parsing). */
  params?: Record<string, string>;
  /** Injected faults that hit this request, by kind (`error`, `error-after-dispatch`, `slow-response`...). */
  faults: string[];
  /** Whether the handler ran (the request "executed"). */
  executed: boolean;
  /** The UPID the handler returned, when it started a task. */
  upid?: string;
  /** Set once the answer went out (or the socket was dropped). */
  answer?: RequestAnswer;
  /** ms since epoch, when the answer went out */
  answeredAt?: number;
}

export class RequestLog {
  private entries: RequestRecord[] = [];

  constructor(private readonly limit = 100_000) {}

  open(r: Pick<RequestRecord, 'seq' | 'method' | 'path'>): RequestRecord {
    const entry: RequestRecord = { ...r, time: Date.now(), faults: [], executed: false };
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    return entry;
  }

  all(): RequestRecord[] {
    return this.entries.map((e) => structuredClone(e));
  }

  find(seq: number): RequestRecord | undefined {
    const e = this.entries.find((x) => x.seq === seq);
    return e ? structuredClone(e) : undefined;
  }

  clear(): void {
    this.entries = [];
  }
}
