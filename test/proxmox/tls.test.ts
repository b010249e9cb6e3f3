import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxClient, normalizeFingerprint, ProxmoxError, ProxmoxTlsError, type ProxmoxClient, type ProxmoxTlsOptions } from '../../src/proxmox/index.js';
import { pinCheckedConnector } from '../../src/proxmox/tls.js';
import { makeCertWithNodeCrypto, makeCertWithOpenssl, opensslAvailable, type TestCert } from './helpers/certs.js';
import { sendJson, startTestServer, type TestServer } from './helpers/http-server.js';

const flip = (fp: string): string => (fp.startsWith('00') ? `01${fp.slice(2)}` : `00${fp.slice(2)}`);

// Both certificate sources run when openssl is installed; without it the node:crypto one still does.
const sources: [string, () => TestCert][] = [
  ...(opensslAvailable() ? [['openssl', () => makeCertWithOpenssl()] as [string, () => TestCert]] : []),
  ['node:crypto', () => makeCertWithNodeCrypto()],
];

describe.each(sources)('TLS against a self-signed pveproxy stand-in (%s certificate)', (_source, make) => {
  let cert: TestCert;
  let other: TestCert;
  let server: TestServer;
  let dir: string;
  const open: ProxmoxClient[] = [];

  const connect = (tls?: ProxmoxTlsOptions): ProxmoxClient => {
    const c = createProxmoxClient({ baseUrl: server.url, tokenId: 'agent@pve!ci', tokenSecret: 'not-a-real-secret', ...(tls ? { tls } : {}) });
    open.push(c);
    return c;
  };

  const expectTlsFailure = async (c: ProxmoxClient, pattern?: RegExp): Promise<ProxmoxError> => {
    const before = server.requests.length;
    const err = await c.version().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProxmoxTlsError);
    expect((err as ProxmoxTlsError).retryable).toBe(false);
    if (pattern) expect((err as Error).message).toMatch(pattern);
    expect(server.requests.length, 'no request may reach a server that failed verification').toBe(before);
    return err as ProxmoxError;
  };

  beforeAll(async () => {
    cert = make();
    other = makeCertWithNodeCrypto('someone-else');
    server = await startTestServer((_req, res) => sendJson(res, 200, { data: { version: '9.1.3', release: '9.1', repoid: '0123abcd' } }), {
      key: cert.keyPem,
      cert: cert.certPem,
    });
    dir = mkdtempSync(join(tmpdir(), 'pve-client-ca-'));
    writeFileSync(join(dir, 'pve-root-ca.pem'), cert.certPem);
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close()));
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('default verification (system CAs) rejects the self-signed certificate', async () => {
    await expectTlsFailure(connect(), /self[- ]signed/i);
  });

  it('caPem trusting the certificate succeeds', async () => {
    await expect(connect({ caPem: cert.certPem }).version()).resolves.toMatchObject({ version: '9.1.3' });
  });

  it('caFile trusting the certificate succeeds', async () => {
    await expect(connect({ caFile: join(dir, 'pve-root-ca.pem') }).version()).resolves.toMatchObject({ release: '9.1' });
  });

  it('a CA that did not sign the certificate fails', async () => {
    await expectTlsFailure(connect({ caPem: other.certPem }));
  });

  it('the right fingerprint succeeds without trusting any CA', async () => {
    await expect(connect({ fingerprintSha256: cert.fingerprint256 }).version()).resolves.toMatchObject({ version: '9.1.3' });
  });

  it('the fingerprint may be lower-case and without colons', async () => {
    const bare = cert.fingerprint256.replace(/:/g, '').toLowerCase();
    await expect(connect({ fingerprintSha256: bare }).version()).resolves.toMatchObject({ version: '9.1.3' });
  });

  it('a wrong fingerprint fails closed, before any request is written', async () => {
    const err = await expectTlsFailure(connect({ fingerprintSha256: flip(cert.fingerprint256) }), /pinned/);
    expect(err.message).toContain(cert.fingerprint256);
    expect(err.outcomeUnknown).toBe(false);
  });

  it('every new pooled connection is checked, not just the first', async () => {
    const c = connect({ fingerprintSha256: flip(cert.fingerprint256) });
    await expectTlsFailure(c);
    await expectTlsFailure(c);
  });

  it('pin plus CA: both must hold', async () => {
    await expect(connect({ caPem: cert.certPem, fingerprintSha256: cert.fingerprint256 }).version()).resolves.toBeDefined();
    await expectTlsFailure(connect({ caPem: cert.certPem, fingerprintSha256: flip(cert.fingerprint256) }), /pinned/);
    await expectTlsFailure(connect({ caPem: other.certPem, fingerprintSha256: cert.fingerprint256 }));
  });
});

describe('pinCheckedConnector', () => {
  const pin = normalizeFingerprint('ab'.repeat(32));
  const fakeSocket = (cert: unknown): Socket & { destroyed: boolean } => {
    const s = { destroyed: false, getPeerCertificate: () => cert, destroy() { s.destroyed = true; } };
    return s as unknown as Socket & { destroyed: boolean };
  };
  const run = (socket: Socket): Promise<[Error | null, Socket | null]> =>
    new Promise((resolve) => {
      const base = ((_o: unknown, cb: (e: Error | null, s: Socket | null) => void) => cb(null, socket)) as never;
      pinCheckedConnector(base, pin)({ hostname: 'pve', protocol: 'https:', port: '8006' }, (e, s) => resolve([e, s]));
    });

  it('fails when the peer shows no certificate (empty object, as on a resumed session)', async () => {
    const socket = fakeSocket({});
    const [err, s] = await run(socket);
    expect(err?.message).toMatch(/no certificate/);
    expect(s).toBeNull();
    expect(socket.destroyed).toBe(true);
  });

  it('fails when the socket cannot show a certificate at all (plain TCP)', async () => {
    const socket = { destroyed: false, destroy() { socket.destroyed = true; } } as unknown as Socket & { destroyed: boolean };
    const [err] = await run(socket);
    expect(err).not.toBeNull();
    expect(socket.destroyed).toBe(true);
  });

  it('passes the socket on when the fingerprint matches', async () => {
    const socket = fakeSocket({ fingerprint256: pin });
    const [err, s] = await run(socket);
    expect(err).toBeNull();
    expect(s).toBe(socket);
  });

  it('normalizeFingerprint accepts the formats Proxmox shows and refuses others', () => {
    expect(normalizeFingerprint('AB'.repeat(32))).toBe(pin);
    expect(normalizeFingerprint(pin.toLowerCase())).toBe(pin);
    expect(() => normalizeFingerprint('AB'.repeat(20))).toThrow(/SHA-256/); // a SHA-1 pin
    expect(() => normalizeFingerprint('')).toThrow();
  });
});
