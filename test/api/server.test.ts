import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { isLoopback, listenApi } from '../../src/api/http/server.js';
import { ConfigError } from '../../src/config/load.js';
import { makeSelfSignedCert } from '../proxmox/helpers/certs.js';

const hello = () => new Response('hello');

describe('API listener', () => {
  it('serves HTTPS natively with server.tls (files relative to the config file)', async () => {
    const cert = makeSelfSignedCert('proxmox-agent-test');
    const dir = mkdtempSync(join(tmpdir(), 'pa-tls-'));
    writeFileSync(join(dir, 'api.crt'), cert.certPem);
    writeFileSync(join(dir, 'api.key'), cert.keyPem, { mode: 0o600 });
    const { server, url } = await listenApi(hello, { host: '127.0.0.1', port: 0, tls: { certFile: 'api.crt', keyFile: 'api.key' } }, { configPath: join(dir, 'config.yaml') });
    try {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const trusting = new Agent({ connect: { ca: cert.certPem } });
      const res = await request(url, { dispatcher: trusting });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('hello');
      await trusting.close();
      // Plain HTTP to the TLS port gets no answer from the app.
      await expect(request(url.replace('https:', 'http:'), { headersTimeout: 2000 }).then((r) => r.body.text())).rejects.toThrow();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('stops with a message naming the field when a TLS file is missing', async () => {
    const err = await listenApi(hello, { host: '127.0.0.1', port: 0, tls: { certFile: '/nonexistent/api.crt', keyFile: '/nonexistent/api.key' } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^server\.tls\.certFile: cannot read \/nonexistent\/api\.crt: ENOENT$/);
  });

  it('serves plain HTTP on loopback by default', async () => {
    const { server, url } = await listenApi(hello, { host: '127.0.0.1', port: 0 });
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(url)).text()).toBe('hello');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('knows loopback addresses (anything else without TLS is warned about)', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'api.example.com', '127.0.0.1.example.com']) expect(isLoopback(h)).toBe(false);
  });
});
