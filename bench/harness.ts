/**
 * The benchmark's plumbing: child processes that announce readiness on a line, /proc readings (RSS,
 * CPU time), a keep-alive HTTP client, and the closed-loop load generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { OpTiming } from './stats.js';

export interface Child {
  child: ChildProcess;
  pid: number;
  /** The line that announced readiness. */
  readyLine: string;
  /** The last lines the process wrote (for error messages). */
  tail(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Start a process and resolve once a line of its stdout or stderr matches `ready`. Everything it
 * writes also goes to `logFile`.
 */
export async function spawnReady(
  name: string,
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cwd: string; ready: RegExp; logFile: string; timeoutMs?: number },
): Promise<Child> {
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  let recent: string[] = [];
  let readyLine: string | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in time:\n${recent.join('\n')}`)), opts.timeoutMs ?? 120_000);
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      const lines = chunk.toString('utf8').split('\n').filter(Boolean);
      recent = [...recent, ...lines].slice(-40);
      if (readyLine === undefined) {
        const hit = lines.find((l) => opts.ready.test(l));
        if (hit !== undefined) {
          readyLine = hit;
          clearTimeout(timer);
          resolve(hit);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${recent.join('\n')}`));
    });
  });
  const line = await ready;
  return {
    child,
    pid: child.pid!,
    readyLine: line,
    tail: () => recent.join('\n'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** VmRSS and VmHWM (peak) of a process, in MiB, from /proc/<pid>/status. */
export function readRss(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far; 0 if it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
export function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
  const total = cpu.slice(0, 8).reduce((s, x) => s + x, 0);
  return (total - cpu[3]! - cpu[4]!) / TICKS_PER_SECOND;
}

/**
 * How much of the machine other people's processes used during a phase: busy CPU minus what the
 * benchmark's own processes used. The run with the least of it is the one to report.
 */
export class CpuMeter {
  private startBusy = 0;
  private startOwn = new Map<number, number>();
  private startWall = 0;
  /**
   * `processes()` names the benchmark's own processes: name → pid, or pids (e.g. a postmaster and its
   * backends), read at start and at stop.
   */
  constructor(private readonly processes: () => Record<string, number | readonly number[]>) {}
  private pids(): [string, number[]][] {
    return Object.entries(this.processes()).map(([name, p]) => [name, typeof p === 'number' ? [p] : [...p]]);
  }
  start(): void {
    this.startWall = performance.now();
    this.startBusy = machineBusySeconds();
    this.startOwn = new Map(this.pids().flatMap(([, pids]) => pids.map((p) => [p, processCpuSeconds(p)] as const)));
  }
  /** Seconds of wall time, CPU seconds of each of our processes, of all of them, and of everybody else's. */
  stop(): { wallSeconds: number; ownCpuSeconds: number; foreignCpuSeconds: number; byProcess: Record<string, number> } {
    const wallSeconds = (performance.now() - this.startWall) / 1000;
    const busy = machineBusySeconds() - this.startBusy;
    const byProcess: Record<string, number> = {};
    for (const [name, pids] of this.pids()) byProcess[name] = pids.reduce((s, p) => s + processCpuSeconds(p) - (this.startOwn.get(p) ?? 0), 0);
    const own = Object.values(byProcess).reduce((s, x) => s + x, 0);
    return { wallSeconds, ownCpuSeconds: own, foreignCpuSeconds: Math.max(0, busy - own), byProcess };
  }
}

/** A process and its children (one level: a postmaster and its backends), from /proc. */
export function processTree(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return [pid, ...children];
}

export interface HttpReply {
  status: number;
  body: any;
}

/** A keep-alive HTTP/1.1 client for one origin (enough connections for every lane). */
export function httpClient(origin: string, connections = 64) {
  const pool = new Pool(origin, { connections, keepAliveTimeout: 30_000 });
  return {
    async call(method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<HttpReply> {
      const res = await pool.request({
        method,
        path,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
    },
    close: () => pool.close(),
  };
}

export interface LaneRun {
  ops: OpTiming[];
  /** When the first lane found no more work (the end of the steady part). */
  firstIdle: number;
}

/**
 * Closed loop: `concurrency` lanes, each running `op(seq, lane)` back to back until `total`
 * operations have started. An operation that throws fails the run (a benchmark of errors measures
 * nothing).
 */
export async function runLanes(concurrency: number, total: number, op: (seq: number, lane: number) => Promise<void>): Promise<LaneRun> {
  const ops: OpTiming[] = [];
  let next = 0;
  let firstIdle = Number.POSITIVE_INFINITY;
  const lane = async (l: number) => {
    for (;;) {
      const seq = next++;
      if (seq >= total) {
        firstIdle = Math.min(firstIdle, performance.now());
        return;
      }
      const start = performance.now();
      await op(seq, l);
      ops.push({ start, end: performance.now() });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, (_, l) => lane(l)));
  return { ops, firstIdle };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until a process has stopped working through a backlog (under 2% of a core for 2 s). */
export async function waitQuiet(pid: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quietFor = 0;
  let last = processCpuSeconds(pid);
  while (Date.now() < deadline && quietFor < 2000) {
    await sleep(500);
    const now = processCpuSeconds(pid);
    quietFor = now - last < 0.01 ? quietFor + 500 : 0;
    last = now;
  }
}
