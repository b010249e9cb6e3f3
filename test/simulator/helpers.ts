/** Shared helpers for simulator tests: a fast lab cluster and a tiny HTTP client over global fetch. */
import { demoClusters, startSimulator, type ProxmoxSimulator, type SimClusterSeed, type SimulatorOptions } from '../../src/simulator/index.js';

export const TOKEN_ID = 'proxmox-agent@pve!agent';
export const LAB_SECRET = '11111111-2222-3333-4444-555555555555';
export const AUTH = `PVEAPIToken=${TOKEN_ID}=${LAB_SECRET}`;

export function labSeed(): SimClusterSeed {
  return demoClusters({ lab: LAB_SECRET, prod: 'unused' }).lab;
}

export function startLab(over: Partial<SimulatorOptions> = {}): Promise<ProxmoxSimulator> {
  return startSimulator({ cluster: labSeed(), taskDurationMs: 30, authFailureDelayMs: 0, ...over });
}

export interface ApiResponse {
  status: number;
  statusText: string;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface CallOptions {
  /** form-encoded unless json is set */
  form?: Record<string, string | number>;
  json?: Record<string, unknown>;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  auth?: string | null;
}

export async function call(sim: ProxmoxSimulator, method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
  const url = new URL(`${sim.url}${path.startsWith('/_sim') ? '' : '/api2/json'}${path}`);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth !== null) headers.Authorization = opts.auth ?? AUTH;
  let body: string | undefined;
  if (opts.json) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(Object.entries(opts.form).map(([k, v]): [string, string] => [k, String(v)])).toString();
  }
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, statusText: res.statusText, headers: res.headers, text, body: parsed };
}

export const get = (sim: ProxmoxSimulator, path: string, opts?: CallOptions) => call(sim, 'GET', path, opts);
export const post = (sim: ProxmoxSimulator, path: string, opts?: CallOptions) => call(sim, 'POST', path, opts);
export const put = (sim: ProxmoxSimulator, path: string, opts?: CallOptions) => call(sim, 'PUT', path, opts);
export const del = (sim: ProxmoxSimulator, path: string, opts?: CallOptions) => call(sim, 'DELETE', path, opts);

export interface TaskStatus {
  upid: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  node: string;
}

/** Poll a task like a client would (node taken from the UPID) until it stops. */
export async function waitTask(sim: ProxmoxSimulator, upid: string, opts: { timeoutMs?: number; auth?: string } = {}): Promise<TaskStatus> {
  const node = upid.split(':')[1]!;
  // Generous: a loaded CI machine must not turn a slow poll into a failure (a passing test returns at once).
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const r = await get(sim, `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`, opts.auth ? { auth: opts.auth } : {});
    if (r.status === 200 && r.body.data.status === 'stopped') return r.body.data as TaskStatus;
    if (Date.now() > deadline) throw new Error(`task ${upid} did not stop: ${r.status} ${r.text}`);
    await sleep(5);
  }
}

/** POST/PUT/DELETE that must return a UPID; waits for the task and returns its final status. */
export async function runTask(sim: ProxmoxSimulator, method: string, path: string, opts?: CallOptions): Promise<TaskStatus> {
  const r = await call(sim, method, path, opts);
  if (r.status !== 200 || typeof r.body?.data !== 'string') throw new Error(`expected a UPID from ${method} ${path}, got ${r.status} ${r.statusText} ${r.text}`);
  return waitTask(sim, r.body.data as string, opts?.auth ? { auth: opts.auth } : {});
}

export async function taskLog(sim: ProxmoxSimulator, upid: string): Promise<string[]> {
  const node = upid.split(':')[1]!;
  const r = await get(sim, `/nodes/${node}/tasks/${encodeURIComponent(upid)}/log`, { query: { limit: 1000 } });
  return (r.body.data as { n: number; t: string }[]).map((l) => l.t);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until a predicate over the model holds (HA effects land after the task). */
export async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(5);
  }
}
