import { inspect } from 'node:util';
import { gzipSync, deflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createProxmoxClient,
  ProxmoxAuthError,
  ProxmoxConfigError,
  ProxmoxError,
  ProxmoxInvalidParamError,
  ProxmoxInvalidPathParamError,
  ProxmoxLockedError,
  ProxmoxParameterError,
  ProxmoxPermanentError,
  ProxmoxProtocolError,
  ProxmoxTimeoutError,
  ProxmoxTransientError,
  type ProxmoxClient,
  type ProxmoxEndpointOptions,
} from '../../src/proxmox/index.js';
import { sendJson, startTestServer, type TestServer } from './helpers/http-server.js';

const TOKEN_ID = 'agent@pve!ci';
const SECRET = 'Sup3r-S3cret-Value-42';
const UPID = 'UPID:pve1:003CDE3D:025BF6DA:665F0761:qmstart:100:agent@pve!ci:';

let server: TestServer;
const clients: ProxmoxClient[] = [];

function client(over: Partial<ProxmoxEndpointOptions> = {}): ProxmoxClient {
  const c = createProxmoxClient({ baseUrl: server.url, tokenId: TOKEN_ID, tokenSecret: SECRET, ...over });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<ProxmoxError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProxmoxError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  server = await startTestServer((_req, res) => sendJson(res, 200, { data: null }));
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  server.requests.length = 0;
  server.setHandler((_req, res) => sendJson(res, 200, { data: null }));
});
afterAll(() => server.close());

describe('requests on the wire', () => {
  it('sends the API token header, JSON accept and gzip accept', async () => {
    server.setHandler((_req, res) => sendJson(res, 200, { data: { version: '9.1.3', release: '9.1', repoid: 'abcdef12' } }));
    await expect(client().version()).resolves.toEqual({ version: '9.1.3', release: '9.1', repoid: 'abcdef12' });
    const [req] = server.requests;
    expect(req?.method).toBe('GET');
    expect(req?.url).toBe('/api2/json/version');
    expect(req?.headers.authorization).toBe(`PVEAPIToken=${TOKEN_ID}=${SECRET}`);
    expect(req?.headers.accept).toBe('application/json');
    expect(req?.headers['accept-encoding']).toContain('gzip');
    expect(req?.headers.cookie).toBeUndefined();
    expect(req?.headers.csrfpreventiontoken).toBeUndefined();
  });

  it('puts GET parameters in the query, booleans as 1/0, and leaves out undefined', async () => {
    server.setHandler((_req, res) => sendJson(res, 200, { data: [] }));
    const c = client();
    await c.clusterResources('vm');
    await c.clusterResources();
    await c.listTasks('pve1', { vmid: 100, source: 'all', errors: true, since: 1700000000, limit: 500 });
    expect(server.requests.map((r) => r.url)).toEqual([
      '/api2/json/cluster/resources?type=vm',
      '/api2/json/cluster/resources',
      '/api2/json/nodes/pve1/tasks?vmid=100&source=all&errors=1&since=1700000000&limit=500',
    ]);
    expect(server.requests.every((r) => r.body === '' && r.headers['content-type'] === undefined)).toBe(true);
  });

  it('form-encodes POST and PUT bodies, lists comma-joined', async () => {
    server.setHandler((req, res) => sendJson(res, 200, { data: req.method === 'POST' ? UPID : null }));
    const c = client();
    const upid = await c.request('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve1', vmid: 100 }, {
      snapname: 'pre-upgrade',
      description: 'before 9.1 & co',
      vmstate: true,
    });
    expect(upid).toBe(UPID);
    await c.request('PUT', '/nodes/{node}/qemu/{vmid}/config', { node: 'pve1', vmid: 100 }, { delete: ['net1', 'ide2'], digest: 'a'.repeat(40), onboot: false });
    const [post, put] = server.requests;
    expect(post).toMatchObject({ method: 'POST', url: '/api2/json/nodes/pve1/qemu/100/snapshot' });
    expect(post?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(post?.body).toBe('snapname=pre-upgrade&description=before+9.1+%26+co&vmstate=1');
    expect(put?.method).toBe('PUT');
    expect(Object.fromEntries(new URLSearchParams(put?.body))).toEqual({ delete: 'net1,ide2', digest: 'a'.repeat(40), onboot: '0' });
  });

  it('sends DELETE parameters in the query and encodes the UPID as one path segment', async () => {
    const c = client();
    await c.request('DELETE', '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}', { node: 'pve1', vmid: 100, snapname: 'pre' }, { force: true });
    await c.stopTask('pve1', UPID);
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'DELETE /api2/json/nodes/pve1/qemu/100/snapshot/pre?force=1',
      `DELETE /api2/json/nodes/pve1/tasks/${encodeURIComponent(UPID)}`,
    ]);
    expect(decodeURIComponent(server.requests[1]!.url.split('/')[6]!)).toBe(UPID);
  });

  it('uses the typed helpers paths for both guest kinds', async () => {
    server.setHandler((_req, res) => sendJson(res, 200, { data: {} }));
    const c = client();
    await c.guestStatus('pve1', 'qemu', 100);
    await c.guestStatus('pve1', 'lxc', 200);
    await c.guestConfig('pve1', 'lxc', 200, { current: true });
    await c.snapshots('pve1', 'qemu', 100);
    await c.taskStatus('pve1', UPID);
    await c.nodes();
    expect(server.requests.map((r) => r.url)).toEqual([
      '/api2/json/nodes/pve1/qemu/100/status/current',
      '/api2/json/nodes/pve1/lxc/200/status/current',
      '/api2/json/nodes/pve1/lxc/200/config?current=1',
      '/api2/json/nodes/pve1/qemu/100/snapshot',
      `/api2/json/nodes/pve1/tasks/${encodeURIComponent(UPID)}/status`,
      '/api2/json/nodes',
    ]);
  });

  it('accepts a task log total sent as a string', async () => {
    server.setHandler((_req, res) => sendJson(res, 200, { data: [], total: '7' }));
    await expect(client().taskLog('pve1', UPID)).resolves.toEqual({ lines: [], total: 7 });
  });

  it('returns the task log with the envelope total', async () => {
    server.setHandler((_req, res) => sendJson(res, 200, { data: [{ n: 1, t: 'starting' }, { n: 2, t: 'TASK OK' }], total: 2 }));
    await expect(client().taskLog('pve1', UPID, { start: 0, limit: 50 })).resolves.toEqual({
      lines: [{ n: 1, t: 'starting' }, { n: 2, t: 'TASK OK' }],
      total: 2,
    });
    expect(server.requests[0]?.url).toMatch(/\/log\?start=0&limit=50$/);
  });

  it('keeps a path prefix from baseUrl (a reverse proxy) before /api2/json', async () => {
    await client({ baseUrl: `${server.url}/pve/` }).nodes();
    expect(server.requests[0]?.url).toBe('/pve/api2/json/nodes');
  });

  it('reuses keep-alive connections for sequential requests', async () => {
    const c = client();
    const ports = new Set<number | undefined>();
    server.setHandler((req, res) => {
      ports.add(req.socket.remotePort);
      sendJson(res, 200, { data: [] });
    });
    for (let i = 0; i < 10; i++) await c.nodes();
    // undici may alternate between two pooled sockets, but it does not open one per request.
    expect(ports.size).toBeLessThanOrEqual(2);
  });
});

describe('response bodies', () => {
  const big = Array.from({ length: 200 }, (_, i) => ({ id: `qemu/${100 + i}`, type: 'qemu', vmid: 100 + i, name: `vm-${i}` }));

  it('decodes gzip', async () => {
    server.setHandler((req, res) => {
      expect(req.headers['accept-encoding']).toContain('gzip');
      const body = gzipSync(JSON.stringify({ data: big }));
      res.writeHead(200, { 'content-type': 'application/json;charset=UTF-8', 'content-encoding': 'gzip', 'content-length': body.length });
      res.end(body);
    });
    await expect(client().clusterResources('vm')).resolves.toEqual(big);
  });

  it('decodes deflate', async () => {
    server.setHandler((_req, res) => {
      const body = deflateSync(JSON.stringify({ data: big }));
      res.writeHead(200, { 'content-encoding': 'deflate' });
      res.end(body);
    });
    await expect(client().clusterResources('vm')).resolves.toHaveLength(200);
  });

  it('rejects a 200 that is not the JSON envelope', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>login</html>');
    });
    const err = await failure(client().nodes());
    expect(err).toBeInstanceOf(ProxmoxProtocolError);
    server.setHandler((_req, res) => sendJson(res, 200, { nodata: true }));
    expect(await failure(client().nodes())).toBeInstanceOf(ProxmoxProtocolError);
  });
});

describe('errors over the wire', () => {
  it('reads the message from the reason phrase when the body is legacy {data:null}', async () => {
    server.setHandler((_req, res) => sendJson(res, 500, { data: null }, 'VM is locked (backup)'));
    const err = await failure(client().request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve1', vmid: 100 }));
    expect(err).toBeInstanceOf(ProxmoxLockedError);
    expect((err as ProxmoxLockedError).lock).toBe('backup');
    expect(err.message).toBe('Proxmox POST /nodes/pve1/qemu/100/status/start failed: HTTP 500 VM is locked (backup)');
  });

  it('reads message and errors from a 5.2+ body', async () => {
    server.setHandler((_req, res) =>
      sendJson(res, 400, { data: null, message: 'Parameter verification failed.\n', errors: { snapname: 'invalid format - invalid configuration ID' } }, 'Parameter verification failed.'),
    );
    const err = await failure(client().request('POST', '/nodes/{node}/qemu/{vmid}/snapshot', { node: 'pve1', vmid: 100 }, { snapname: 'ok-name' }));
    expect(err).toBeInstanceOf(ProxmoxParameterError);
    expect(err.errors).toEqual({ snapname: 'invalid format - invalid configuration ID' });
    expect(err.message).toContain('snapname: invalid format - invalid configuration ID');
  });

  it('maps an empty-body 401 to ProxmoxAuthError', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(401, 'No ticket');
      res.end();
    });
    const err = await failure(client().nodes());
    expect(err).toBeInstanceOf(ProxmoxAuthError);
    expect(err.message).toContain('No ticket');
  });

  it('a headers timeout is a retryable ProxmoxTimeoutError with an unknown outcome', async () => {
    server.setHandler(() => {
      /* never answer */
    });
    const err = await failure(client({ timeouts: { headersMs: 150 } }).request('POST', '/nodes/{node}/qemu/{vmid}/status/start', { node: 'pve1', vmid: 100 }));
    expect(err).toBeInstanceOf(ProxmoxTimeoutError);
    expect((err as ProxmoxTimeoutError).phase).toBe('headers');
    expect(err.retryable).toBe(true);
    expect(err.outcomeUnknown).toBe(true);
  });

  it('a stalled body is a ProxmoxTimeoutError (body)', async () => {
    server.setHandler((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":[');
    });
    const err = await failure(client({ timeouts: { bodyMs: 150 } }).nodes());
    expect(err).toBeInstanceOf(ProxmoxTimeoutError);
    expect((err as ProxmoxTimeoutError).phase).toBe('body');
  });

  it('a dropped connection is transient', async () => {
    server.setHandler((req) => {
      req.socket.destroy();
    });
    const err = await failure(client().request('POST', '/nodes/{node}/qemu/{vmid}/status/stop', { node: 'pve1', vmid: 100 }));
    expect(err).toBeInstanceOf(ProxmoxTransientError);
    expect(err.retryable).toBe(true);
    expect(err.outcomeUnknown).toBe(true);
  });

  it('a refused connection is transient and known not to have been processed', async () => {
    const dead = await startTestServer(() => undefined);
    const url = dead.url;
    await dead.close();
    const err = await failure(client({ baseUrl: url }).nodes());
    expect(err).toBeInstanceOf(ProxmoxTransientError);
    expect(err.outcomeUnknown).toBe(false);
  });

  it('aborting rejects with the signal reason itself', async () => {
    server.setHandler(() => undefined);
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const pending = client().nodes({ signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });
});

describe('refused before sending', () => {
  it('invalid path parameters, methods and templates never reach the server', async () => {
    const c = client();
    await expect(c.guestStatus('pve1/../x', 'qemu', 100)).rejects.toBeInstanceOf(ProxmoxInvalidPathParamError);
    await expect(c.guestStatus('pve1', 'qemu', 1e12)).rejects.toBeInstanceOf(ProxmoxInvalidPathParamError);
    await expect(c.guestStatus('pve1', 'openvz' as never, 100)).rejects.toBeInstanceOf(ProxmoxInvalidPathParamError);
    await expect(c.request('DELETE' as never, '/version', {})).rejects.toBeInstanceOf(ProxmoxInvalidParamError);
    await expect(c.request('GET', '/access/ticket' as never, {} as never)).rejects.toBeInstanceOf(ProxmoxInvalidParamError);
    await expect(c.taskStatus('pve2', UPID)).rejects.toThrow(/runs on node pve1, not pve2/);
    // pveproxy would answer `501 for data too large`; better to say so before sending.
    await expect(c.request('PUT', '/nodes/{node}/qemu/{vmid}/config', { node: 'pve1', vmid: 100 }, { description: 'x'.repeat(70_000) })).rejects.toThrow(/64 ?KiB|65536-byte limit/);
    expect(server.requests).toHaveLength(0);
  });

  it('a closed client refuses further calls; close is idempotent', async () => {
    const c = client();
    await c.close();
    await c.close();
    const err = await failure(c.nodes());
    expect(err).toBeInstanceOf(ProxmoxPermanentError);
    expect(err.message).toContain('closed');
  });

  it('rejects unusable options with ProxmoxConfigError, without echoing the secret', () => {
    const base = { baseUrl: server.url, tokenId: TOKEN_ID, tokenSecret: SECRET };
    const bad: Partial<ProxmoxEndpointOptions>[] = [
      { baseUrl: 'ftp://pve:8006' },
      { baseUrl: 'not a url' },
      { baseUrl: 'https://pve:8006/api2/json' },
      { baseUrl: 'https://root:pw@pve:8006' },
      { baseUrl: 'https://pve:8006/?x=1' },
      { tokenId: 'root@pam' },
      { tokenId: 'root@pam!' },
      { tokenId: 'root@pam!tok;x' },
      { tokenSecret: '' },
      { tokenSecret: `${SECRET}=x` },
      { tokenSecret: `${SECRET} x` },
      { tokenSecret: `${SECRET}\r\nX-Injected: 1` },
      { tls: { fingerprintSha256: 'AA:BB' } },
      { baseUrl: 'https://pve:8006', tls: { fingerprintSha256: 'zz'.repeat(32) } },
      { baseUrl: 'https://pve:8006', tls: { caFile: '/nonexistent/ca.pem' } },
      { baseUrl: 'https://pve:8006', tls: { caPem: 'not a pem' } },
      { timeouts: { headersMs: 0 } },
      { pool: { connections: -1 } },
    ];
    for (const over of bad) {
      let thrown: unknown;
      try {
        createProxmoxClient({ ...base, ...over });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, JSON.stringify(over)).toBeInstanceOf(ProxmoxConfigError);
      expect(inspect(thrown)).not.toContain(SECRET);
    }
  });
});

describe('the secret never leaks', () => {
  it('not from the client object', () => {
    const c = client();
    const views = [String(c), `${c}`, JSON.stringify(c), inspect(c), inspect(c, { showHidden: true, depth: Infinity, getters: true }), JSON.stringify(Object.entries(c))];
    for (const v of views) expect(v).not.toContain(SECRET);
    expect(String(c)).toContain(TOKEN_ID);
  });

  it('not from any error', async () => {
    const errors: unknown[] = [];
    const collect = async (p: Promise<unknown>): Promise<void> => {
      await p.then(
        () => errors.push(new Error('unexpected success')),
        (e: unknown) => errors.push(e),
      );
    };
    const c = client({ timeouts: { headersMs: 150 } });
    server.setHandler((_req, res) => {
      res.writeHead(401, 'Authentication failed!');
      res.end();
    });
    await collect(c.nodes());
    server.setHandler((_req, res) => sendJson(res, 400, { data: null, message: 'Parameter verification failed.\n', errors: { x: 'bad' } }, 'Parameter verification failed.'));
    await collect(c.nodes());
    server.setHandler((_req, res) => sendJson(res, 500, { data: null }, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"));
    await collect(c.nodes());
    server.setHandler((req) => {
      req.socket.destroy();
    });
    await collect(c.nodes());
    server.setHandler(() => undefined);
    await collect(c.nodes());
    await collect(c.guestStatus('bad node', 'qemu', 100));
    await collect(client({ baseUrl: 'http://127.0.0.1:1' }).nodes());
    expect(errors).toHaveLength(7);
    for (const err of errors) {
      expect(err).toBeInstanceOf(ProxmoxError);
      const views = [String(err), (err as Error).message, (err as Error).stack ?? '', JSON.stringify(err), inspect(err, { showHidden: true, depth: Infinity })];
      for (const v of views) expect(v).not.toContain(SECRET);
    }
  });
});
