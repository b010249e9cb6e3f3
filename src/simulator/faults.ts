/**
 * Fault injection: the failure modes a Proxmox client must survive, made deterministic.
 *
 * Usable in-process (`sim.faults.add(...)` or the helpers) and over HTTP via `POST /_sim/faults` with
 * the same JSON specs, so a test that runs the simulator in another process can drive it too.
 * Probabilistic rules draw from a seedable RNG so a failing run can be replayed.
 */

/** Route patterns are paths relative to /api2/json; `*` matches one segment, `**` any number. */
interface Matcher {
  /** HTTP method or '*' (default) */
  method?: string;
  path: string;
  /** probability 0..1 that a matching request is hit (default 1) */
  rate?: number;
  /** hit at most this many requests, then the rule retires (default: unlimited) */
  times?: number;
}

export type FaultSpec =
  /**
   * Answer with an error status. Before dispatch (default) nothing executes, and pveproxy answers;
   * with afterDispatch the request executes and the client still gets the error, from a reverse proxy
   * in front of pveproxy (its own Server header and a text body), the only thing that answers so.
   */
  | (Matcher & { kind: 'error'; status: number; message?: string; afterDispatch?: boolean })
  /** Execute the request (task created, mutation happens) but destroy the socket before answering. */
  | (Matcher & { kind: 'drop-after-dispatch' })
  /** Tasks created by matching requests run this long (path omitted = every task). */
  | (Omit<Matcher, 'path'> & { path?: string; kind: 'slow-task'; durationMs: number })
  /** Tasks created by matching requests end with `TASK ERROR: message` and apply no effect. */
  | (Matcher & { kind: 'task-error'; message: string })
  /** Tasks created by matching requests apply their effect and end `WARNINGS: n`. */
  | (Matcher & { kind: 'task-warnings'; warnings: number })
  /** Requests proxied to this node answer 595 (or 596/599) with an empty body. */
  | { kind: 'node-unreachable'; node: string; status?: 595 | 596 | 599; message?: string }
  /** The next config write (PUT/POST config, resize) to this guest (or any) fails with `can't lock file ... - got timeout`. */
  | { kind: 'lock-contention'; vmid?: number; times?: number }
  /** Task status/log answer 400 "no such task" for this long after dispatch, like a freshly forked worker. */
  | { kind: 'task-invisible'; ms: number }
  /**
   * The answer to matching requests is held back this long (a loaded pveproxy, a slow link): the
   * request executes at once (default; `beforeDispatch` holds it before executing instead) and the
   * client waits `delayMs` for the answer. Not an error: it combines with the other faults.
   */
  | (Matcher & { kind: 'slow-response'; delayMs: number; beforeDispatch?: boolean })
  /**
   * The request executes, and its 2xx answer arrives with a body that is not JSON: by default the
   * real JSON cut off after 60% of its bytes (a proxy that truncated it), or `body` verbatim. Only a
   * request that would have answered 2xx is hit (one fault per request: not one already answering an
   * error or dropped).
   */
  | (Matcher & { kind: 'garbled-after-dispatch'; body?: string });

export type FaultRule = FaultSpec & { id: string };

const FAULT_KINDS = new Set<string>([
  'error', 'drop-after-dispatch', 'slow-task', 'task-error', 'task-warnings', 'node-unreachable', 'lock-contention', 'task-invisible',
  'slow-response', 'garbled-after-dispatch',
]);

const DEFAULT_NODE_MESSAGES: Record<number, string> = {
  595: 'No route to host',
  596: 'Broken pipe',
  599: 'Too many redirections',
};

/** mulberry32: tiny, fast, good enough for reproducible test randomness (also the chaos suite's schedule). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function globToRegExp(pattern: string): RegExp {
  const rel = pattern.replace(/^\/api2\/json/, '').replace(/\/+$/, '');
  const parts = rel.split('/').map((seg) =>
    seg === '**' ? '.*' : seg.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*'),
  );
  return new RegExp(`^${parts.join('/')}$`);
}

export interface NodeFault {
  status: number;
  message: string;
}

export interface TaskFaults {
  durationMs?: number;
  error?: string;
  warnings?: number;
}

export class FaultInjector {
  private rules: FaultRule[] = [];
  private nextId = 1;
  /** How many requests or tasks each kind of fault has hit: the figures a fault test reports. */
  private counts = new Map<string, number>();
  private random: () => number;

  constructor(private seedValue = 1) {
    this.random = rng(seedValue);
  }

  /** Reseed the RNG (also done by clear()). */
  seed(seed: number): void {
    this.seedValue = seed;
    this.random = rng(seed);
  }

  add(spec: FaultSpec): string {
    if (!FAULT_KINDS.has(spec.kind)) throw new Error(`unknown fault kind '${String(spec.kind)}'`);
    if (spec.kind === 'error' && !(spec.status >= 400 && spec.status <= 599)) {
      throw new Error(`fault status must be 4xx/5xx, got ${spec.status}`);
    }
    if (spec.kind === 'slow-response' && !(Number.isFinite(spec.delayMs) && spec.delayMs >= 0)) {
      throw new Error(`slow-response needs delayMs >= 0, got ${String(spec.delayMs)}`);
    }
    const id = `f${this.nextId++}`;
    // Lock contention is about "the next write": without an explicit count it fires once.
    const normalized = spec.kind === 'lock-contention' && spec.times === undefined ? { ...spec, times: 1 } : spec;
    this.rules.push({ ...normalized, id } as FaultRule);
    return id;
  }

  remove(id: string): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== before;
  }

  clear(): void {
    this.rules = [];
    this.counts.clear();
    this.random = rng(this.seedValue);
  }

  /** Hits so far, by fault kind (an 'error' with afterDispatch counts as 'error-after-dispatch'). */
  hits(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  private count(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  // Convenience helpers mirroring the spec kinds.
  errorRate(m: Matcher & { status: number; message?: string; afterDispatch?: boolean }): string {
    return this.add({ ...m, kind: 'error' });
  }
  dropAfterDispatch(m: Matcher): string {
    return this.add({ ...m, kind: 'drop-after-dispatch' });
  }
  slowTasks(durationMs: number, m: Partial<Matcher> = {}): string {
    return this.add({ ...m, kind: 'slow-task', durationMs });
  }
  failTasks(message: string, m: Matcher): string {
    return this.add({ ...m, kind: 'task-error', message });
  }
  warnTasks(warnings: number, m: Matcher): string {
    return this.add({ ...m, kind: 'task-warnings', warnings });
  }
  nodeUnreachable(node: string, status: 595 | 596 | 599 = 595, message?: string): string {
    return this.add({ kind: 'node-unreachable', node, status, ...(message ? { message } : {}) });
  }
  lockContention(vmid?: number, times = 1): string {
    return this.add({ kind: 'lock-contention', ...(vmid !== undefined ? { vmid } : {}), times });
  }
  taskInvisibleFor(ms: number): string {
    return this.add({ kind: 'task-invisible', ms });
  }
  slowResponses(delayMs: number, m: Matcher & { beforeDispatch?: boolean }): string {
    return this.add({ ...m, kind: 'slow-response', delayMs });
  }
  garbleAfterDispatch(m: Matcher & { body?: string }): string {
    return this.add({ ...m, kind: 'garbled-after-dispatch' });
  }

  // ---- queries used by the server -------------------------------------------------------------

  /** Finds the first matching rule of a kind, consuming one of its `times` and rolling its `rate`. */
  private hit<K extends FaultRule['kind']>(kind: K, method: string, relPath: string): Extract<FaultRule, { kind: K }> | undefined {
    for (const rule of this.rules) {
      if (rule.kind !== kind) continue;
      const m = rule as FaultRule & Partial<Matcher>;
      if (m.method && m.method !== '*' && m.method.toUpperCase() !== method) continue;
      if (m.path !== undefined && !globToRegExp(m.path).test(relPath)) continue;
      if (m.rate !== undefined && m.rate < 1 && this.random() >= m.rate) continue;
      this.consume(rule);
      // Slow tasks change a duration rather than fail anything: not counted as injected faults.
      if (rule.kind !== 'slow-task') this.count(rule.kind === 'error' && (rule as { afterDispatch?: boolean }).afterDispatch ? 'error-after-dispatch' : rule.kind);
      return rule as Extract<FaultRule, { kind: K }>;
    }
    return undefined;
  }

  private consume(rule: FaultRule): void {
    const r = rule as { times?: number; id: string };
    if (r.times === undefined) return;
    r.times -= 1;
    if (r.times <= 0) this.remove(r.id);
  }

  requestError(method: string, relPath: string): { status: number; message?: string; afterDispatch: boolean } | undefined {
    const r = this.hit('error', method, relPath);
    return r ? { status: r.status, afterDispatch: Boolean(r.afterDispatch), ...(r.message ? { message: r.message } : {}) } : undefined;
  }

  dropConnection(method: string, relPath: string): boolean {
    return this.hit('drop-after-dispatch', method, relPath) !== undefined;
  }

  /** How long to hold back the answer to this request, and whether before executing it; undefined: not slowed. */
  responseDelay(method: string, relPath: string): { delayMs: number; beforeDispatch: boolean } | undefined {
    const r = this.hit('slow-response', method, relPath);
    return r ? { delayMs: r.delayMs, beforeDispatch: Boolean(r.beforeDispatch) } : undefined;
  }

  /** Whether this request's 2xx answer is garbled, and the body to send instead (undefined: truncate the real one). */
  garble(method: string, relPath: string): { body?: string } | undefined {
    const r = this.hit('garbled-after-dispatch', method, relPath);
    return r ? (r.body === undefined ? {} : { body: r.body }) : undefined;
  }

  taskFaults(method: string, relPath: string): TaskFaults {
    const out: TaskFaults = {};
    const slow = this.hit('slow-task', method, relPath);
    if (slow) out.durationMs = slow.durationMs;
    const err = this.hit('task-error', method, relPath);
    if (err) out.error = err.message;
    const warn = this.hit('task-warnings', method, relPath);
    if (warn) out.warnings = warn.warnings;
    return out;
  }

  nodeFault(node: string): NodeFault | undefined {
    const r = this.rules.find((x): x is Extract<FaultRule, { kind: 'node-unreachable' }> => x.kind === 'node-unreachable' && x.node === node);
    if (!r) return undefined;
    this.count('node-unreachable');
    const status = r.status ?? 595;
    return { status, message: r.message ?? DEFAULT_NODE_MESSAGES[status] ?? 'No route to host' };
  }

  takeLockContention(vmid: number): boolean {
    const r = this.rules.find((x) => x.kind === 'lock-contention' && (x.vmid === undefined || x.vmid === vmid));
    if (!r) return false;
    this.consume(r);
    this.count('lock-contention');
    return true;
  }

  taskInvisibleMs(): number {
    const r = this.rules.find((x): x is Extract<FaultRule, { kind: 'task-invisible' }> => x.kind === 'task-invisible');
    return r?.ms ?? 0;
  }
}
