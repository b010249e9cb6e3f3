import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createProxmoxClient,
  interpretExitStatus,
  mapHttpError,
  mapTransportError,
  ProxmoxInvalidParamError,
  ProxmoxParameterError,
  ProxmoxPermissionError,
  ProxmoxProtocolError,
  ProxmoxTaskFailedError,
  ProxmoxTaskWaitTimeoutError,
  waitForTask,
  type TaskLogPage,
  type TaskReader,
  type TaskStatus,
} from '../../src/proxmox/index.js';
import { sendJson, startTestServer, type TestServer } from './helpers/http-server.js';

const NODE = 'pve1';
const UPID = 'UPID:pve1:0000ABCD:0000ABCD:665F0761:qmstart:100:agent@pve!ci:';

const status = (s: 'running' | 'stopped', exitstatus?: string): TaskStatus => ({
  upid: UPID, node: NODE, pid: 0xabcd, pstart: 0xabcd, starttime: 0x665f0761, type: 'qmstart', id: '100', user: 'agent@pve', tokenid: 'ci',
  status: s,
  ...(exitstatus === undefined ? {} : { exitstatus }),
});

const where = { method: 'GET', path: `/nodes/${NODE}/tasks/x/status` };
const noSuchTask = (): Error => mapHttpError({ ...where, status: 400, reason: 'Parameter verification failed.', body: JSON.stringify({ data: null, errors: { upid: 'no such task' } }) });
const tooManyRedirections = (): Error => mapHttpError({ ...where, status: 599, reason: 'Too many redirections' });
const dropped = (): Error => mapTransportError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), where);
const forbidden = (): Error => mapHttpError({ ...where, status: 403, reason: 'Permission check failed (/nodes/pve1, Sys.Audit)' });

/** A scripted reader: each status call takes the next step; records every call. */
function scripted(steps: (TaskStatus | Error)[], log: string[] = ['starting', 'TASK ERROR: VM 100 already running']) {
  const calls: string[] = [];
  let i = 0;
  const reader: TaskReader & { calls: string[] } = {
    calls,
    async taskStatus(node, upid) {
      calls.push(`status ${node} ${upid === UPID}`);
      const step = steps[Math.min(i++, steps.length - 1)]!;
      if (step instanceof Error) throw step;
      return step;
    },
    async taskLog(node, _upid, page): Promise<TaskLogPage> {
      calls.push(`log ${node} start=${page.start} limit=${page.limit}`);
      const start = page.start ?? 0;
      const limit = page.limit ?? 50;
      return { lines: log.slice(start, start + limit).map((t, k) => ({ n: start + k + 1, t })), total: log.length };
    },
  };
  return reader;
}

const fast = { intervalMs: 1 };

describe('interpretExitStatus', () => {
  it.each([
    ['OK', { ok: true }],
    ['WARNINGS: 3', { ok: true, warnings: 3 }],
    ['WARNINGS: x', { ok: false }],
    ['WARNING: 1', { ok: false }],
    ['OK ', { ok: false }],
    ['unexpected status', { ok: false }],
    ['VM 100 already running', { ok: false }],
  ])('%s', (exit, expected) => expect(interpretExitStatus(exit)).toEqual(expected));
});

describe('waitForTask', () => {
  it('polls until stopped and resolves OK, reporting each poll', async () => {
    const r = scripted([status('running'), status('running'), status('stopped', 'OK')]);
    const seen: string[] = [];
    const result = await waitForTask(r, NODE, UPID, { ...fast, onPoll: (s) => seen.push(s.status) });
    expect(result).toMatchObject({ upid: UPID, node: NODE, exitstatus: 'OK', ok: true });
    expect(result.warnings).toBeUndefined();
    expect(seen).toEqual(['running', 'running', 'stopped']);
  });

  it('treats WARNINGS: n as success and reports n', async () => {
    const result = await waitForTask(scripted([status('stopped', 'WARNINGS: 2')]), NODE, UPID, fast);
    expect(result).toMatchObject({ ok: true, warnings: 2, exitstatus: 'WARNINGS: 2' });
  });

  it('throws ProxmoxTaskFailedError with exitstatus and the log tail', async () => {
    const r = scripted([status('running'), status('stopped', 'VM 100 already running')]);
    const err = await waitForTask(r, NODE, UPID, fast).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    const failed = err as ProxmoxTaskFailedError;
    expect(failed.name).toBe('ProxmoxTaskFailedError');
    expect(failed.retryable).toBe(false);
    expect(failed.exitstatus).toBe('VM 100 already running');
    expect(failed.proxmoxMessage).toBe('VM 100 already running');
    expect(failed.taskType).toBe('qmstart');
    expect(failed.upid).toBe(UPID);
    expect(failed.logTail).toEqual(['starting', 'TASK ERROR: VM 100 already running']);
    expect(failed.message).toContain('VM 100 already running');
  });

  it('reads only the last lines of a long log', async () => {
    const log = Array.from({ length: 120 }, (_, k) => `line ${k + 1}`);
    const r = scripted([status('stopped', 'clone failed: got timeout')], log);
    const err = (await waitForTask(r, NODE, UPID, { ...fast, logTailLines: 10 }).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err.logTail).toEqual(log.slice(-10));
    expect(r.calls.filter((c) => c.startsWith('log'))).toEqual([`log ${NODE} start=0 limit=10`, `log ${NODE} start=110 limit=10`]);
  });

  it('a missing exitstatus on a stopped task is a failure ("unexpected status")', async () => {
    const err = (await waitForTask(scripted([status('stopped')]), NODE, UPID, fast).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err.exitstatus).toBe('unexpected status');
  });

  it('an unreadable log does not hide the failure', async () => {
    const r = scripted([status('stopped', 'boom')]);
    r.taskLog = async () => {
      throw dropped();
    };
    const err = (await waitForTask(r, NODE, UPID, fast).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
    expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
    expect(err.logTail).toEqual([]);
  });

  it('tolerates "no such task" right after dispatch', async () => {
    const r = scripted([noSuchTask(), noSuchTask(), status('running'), status('stopped', 'OK')]);
    const errors: string[] = [];
    await expect(waitForTask(r, NODE, UPID, { ...fast, onPollError: (e) => errors.push(e.name) })).resolves.toMatchObject({ ok: true });
    expect(errors).toEqual(['ProxmoxParameterError', 'ProxmoxParameterError']);
  });

  it('gives up on "no such task" after the grace period', async () => {
    const r = scripted([noSuchTask()]);
    await expect(waitForTask(r, NODE, UPID, { intervalMs: 5, noSuchTaskGraceMs: 30 })).rejects.toBeInstanceOf(ProxmoxParameterError);
    expect(r.calls.length).toBeGreaterThan(1);
  });

  it('re-polls after transient errors and never does anything but read', async () => {
    const r = scripted([status('running'), tooManyRedirections(), dropped(), tooManyRedirections(), status('stopped', 'OK')]);
    await expect(waitForTask(r, NODE, UPID, fast)).resolves.toMatchObject({ ok: true });
    expect(r.calls).toHaveLength(5);
    expect(r.calls.every((c) => c === `status ${NODE} true`)).toBe(true);
  });

  it('reads past a few status answers whose body cannot be used, but not past too many in a row', async () => {
    // Found by the model-based chaos suite: one garbled status read failed the run while its task ran on.
    const garbled = () => new ProxmoxProtocolError('Proxmox GET: HTTP 200 with a body that is not JSON', { ...where, status: 200 });
    const r = scripted([status('running'), garbled(), garbled(), status('running'), garbled(), status('stopped', 'OK')]);
    await expect(waitForTask(r, NODE, UPID, fast)).resolves.toMatchObject({ ok: true });
    const many = scripted([status('running'), ...Array.from({ length: 6 }, garbled), status('stopped', 'OK')]);
    await expect(waitForTask(many, NODE, UPID, fast)).rejects.toBeInstanceOf(ProxmoxProtocolError);
  });

  it('stops at once on a permanent polling error', async () => {
    const r = scripted([status('running'), forbidden(), status('stopped', 'OK')]);
    await expect(waitForTask(r, NODE, UPID, fast)).rejects.toBeInstanceOf(ProxmoxPermissionError);
    expect(r.calls).toHaveLength(2);
  });

  it('timeoutMs ends the wait with a retryable ProxmoxTaskWaitTimeoutError', async () => {
    const err = (await waitForTask(scripted([status('running')]), NODE, UPID, { intervalMs: 5, timeoutMs: 40 }).catch((e: unknown) => e)) as ProxmoxTaskWaitTimeoutError;
    expect(err).toBeInstanceOf(ProxmoxTaskWaitTimeoutError);
    expect(err.retryable).toBe(true);
    expect(err.upid).toBe(UPID);
    expect(err.lastStatus).toBe('running');
    expect(err.outcomeUnknown).toBe(true);
  });

  it('polls at once, then after 100, 200, 400 ms... up to intervalMs between polls', async () => {
    vi.useFakeTimers();
    try {
      const at: number[] = [];
      const start = Date.now();
      const r = scripted([...Array.from({ length: 6 }, () => status('running')), status('stopped', 'OK')]);
      const polled = { ...r, taskStatus: (...args: Parameters<TaskReader['taskStatus']>) => (at.push(Date.now() - start), r.taskStatus(...args)) };
      const done = waitForTask(polled, NODE, UPID, { intervalMs: 1000 });
      await vi.advanceTimersByTimeAsync(5000);
      await expect(done).resolves.toMatchObject({ ok: true });
      expect(at).toEqual([0, 100, 300, 700, 1500, 2500, 3500]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an interval shorter than the first pause is used from the start', async () => {
    vi.useFakeTimers();
    try {
      const at: number[] = [];
      const start = Date.now();
      const r = scripted([status('running'), status('running'), status('stopped', 'OK')]);
      const polled = { ...r, taskStatus: (...args: Parameters<TaskReader['taskStatus']>) => (at.push(Date.now() - start), r.taskStatus(...args)) };
      const done = waitForTask(polled, NODE, UPID, { intervalMs: 30 });
      await vi.advanceTimersByTimeAsync(1000);
      await expect(done).resolves.toMatchObject({ ok: true });
      expect(at).toEqual([0, 30, 60]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('aborting during the pause rejects with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by workflow');
    const pending = waitForTask(scripted([status('running')]), NODE, UPID, { intervalMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it('an already aborted signal makes no call', async () => {
    const r = scripted([status('stopped', 'OK')]);
    const reason = new Error('already cancelled');
    await expect(waitForTask(r, NODE, UPID, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(r.calls).toEqual([]);
  });

  it('refuses a UPID from another node, and a non-UPID, before polling', async () => {
    const r = scripted([status('stopped', 'OK')]);
    await expect(waitForTask(r, 'pve2', UPID)).rejects.toBeInstanceOf(ProxmoxInvalidParamError);
    await expect(waitForTask(r, NODE, 'UPID:nope')).rejects.toBeInstanceOf(ProxmoxInvalidParamError);
    expect(r.calls).toEqual([]);
  });
});

describe('client.waitForTask over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    let polls = 0;
    server = await startTestServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname.endsWith('/status')) {
        polls++;
        if (polls === 1) return sendJson(res, 400, { data: null, errors: { upid: 'no such task' } }, 'Parameter verification failed.');
        if (polls === 2) {
          res.writeHead(599, 'Too many redirections');
          return res.end();
        }
        return sendJson(res, 200, { data: status(polls < 4 ? 'running' : 'stopped', polls < 4 ? undefined : 'VM 100 already running') });
      }
      if (url.pathname.endsWith('/log')) {
        return sendJson(res, 200, { data: [{ n: 1, t: 'TASK ERROR: VM 100 already running' }], total: 1 });
      }
      return sendJson(res, 501, { data: null }, 'Method not implemented');
    });
  });
  afterAll(() => server.close());

  it('rides out "no such task" and a 599, then reports the failure with its log, using GET only', async () => {
    const client = createProxmoxClient({ baseUrl: server.url, tokenId: 'agent@pve!ci', tokenSecret: 'not-a-real-secret' });
    try {
      const err = (await client.waitForTask(NODE, UPID, { intervalMs: 5 }).catch((e: unknown) => e)) as ProxmoxTaskFailedError;
      expect(err).toBeInstanceOf(ProxmoxTaskFailedError);
      expect(err.exitstatus).toBe('VM 100 already running');
      expect(err.logTail).toEqual(['TASK ERROR: VM 100 already running']);
      expect(server.requests.every((r) => r.method === 'GET')).toBe(true);
      expect(server.requests.filter((r) => r.url.includes('/status'))).toHaveLength(4);
      expect(server.requests.at(-1)?.url).toMatch(/\/log\?start=0&limit=20$/);
    } finally {
      await client.close();
    }
  });
});
