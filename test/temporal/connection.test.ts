import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTemporal, TemporalConfigError, temporalConnectionOptions } from '../../src/temporal/connection.js';

let dir: string;
let cert: string;
let key: string;
let ca: string;
let notPem: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'connection-test-'));
  const pem = (label: string) => `-----BEGIN ${label}-----\nMIIBfake\n-----END ${label}-----\n`;
  cert = join(dir, 'client.pem');
  key = join(dir, 'client.key');
  ca = join(dir, 'ca.pem');
  notPem = join(dir, 'not.pem');
  writeFileSync(cert, pem('CERTIFICATE'));
  writeFileSync(key, pem('PRIVATE KEY'));
  writeFileSync(ca, pem('CERTIFICATE'));
  writeFileSync(notPem, 'hello');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(env: NodeJS.ProcessEnv): Error {
  try {
    temporalConnectionOptions(env);
  } catch (err) {
    expect(err).toBeInstanceOf(TemporalConfigError);
    return err as Error;
  }
  throw new Error('expected temporalConnectionOptions to throw');
}

describe('temporalConnectionOptions', () => {
  it('defaults to localhost:7233 / default without TLS', () => {
    expect(temporalConnectionOptions({})).toEqual({ address: 'localhost:7233', namespace: 'default' });
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '' })).toEqual({ address: 'localhost:7233', namespace: 'default' });
  });

  it('reads address and namespace', () => {
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: ' temporal.internal:7233 ', TEMPORAL_NAMESPACE: 'proxmox-prod' })).toEqual({
      address: 'temporal.internal:7233',
      namespace: 'proxmox-prod',
    });
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: '[::1]:7233' }).address).toBe('[::1]:7233');
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: 'temporal' }).address).toBe('temporal');
    expect(temporalConnectionOptions({ TEMPORAL_NAMESPACE: 'my-ns.acct123' }).namespace).toBe('my-ns.acct123');
  });

  it("takes the config's temporal.namespace unless TEMPORAL_NAMESPACE is set (the environment overrides the config)", () => {
    expect(temporalConnectionOptions({}, { namespace: 'from-config' }).namespace).toBe('from-config');
    expect(temporalConnectionOptions({ TEMPORAL_NAMESPACE: '' }, { namespace: 'from-config' }).namespace).toBe('from-config');
    expect(temporalConnectionOptions({ TEMPORAL_NAMESPACE: 'from-env' }, { namespace: 'from-config' }).namespace).toBe('from-env');
    expect(() => temporalConnectionOptions({}, { namespace: 'has space' })).toThrow(/temporal\.namespace="has space": must be a namespace name/);
  });

  it.each([
    ['http://localhost:7233', /TEMPORAL_ADDRESS="http:\/\/localhost:7233": must be host:port without a scheme/],
    ['localhost:99999', /TEMPORAL_ADDRESS=.*port between 1 and 65535/],
    ['localhost:abc', /TEMPORAL_ADDRESS=/],
    ['local host:7233', /TEMPORAL_ADDRESS=.*no spaces/],
  ])('rejects TEMPORAL_ADDRESS=%s naming the variable', (value, re) => {
    expect(errorOf({ TEMPORAL_ADDRESS: value }).message).toMatch(re);
  });

  it('rejects an invalid TEMPORAL_NAMESPACE naming the variable', () => {
    expect(errorOf({ TEMPORAL_NAMESPACE: 'has space' }).message).toMatch(/TEMPORAL_NAMESPACE="has space": must be a namespace name/);
  });

  it('reports all invalid variables at once', () => {
    const msg = errorOf({ TEMPORAL_ADDRESS: 'http://x', TEMPORAL_NAMESPACE: '!', TEMPORAL_TLS: 'maybe' }).message;
    expect(msg).toContain('TEMPORAL_ADDRESS');
    expect(msg).toContain('TEMPORAL_NAMESPACE');
    expect(msg).toMatch(/TEMPORAL_TLS="maybe": must be true or false/);
  });

  it('builds mTLS options from certificate files', () => {
    const opts = temporalConnectionOptions({
      TEMPORAL_ADDRESS: 'temporal.example.com:7233',
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_KEY: key,
      TEMPORAL_TLS_CA: ca,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal',
    });
    expect(opts.tls).toMatchObject({ serverNameOverride: 'frontend.temporal' });
    const tls = opts.tls as { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer };
    expect(tls.clientCertPair.crt.toString()).toContain('BEGIN CERTIFICATE');
    expect(tls.clientCertPair.key.toString()).toContain('BEGIN PRIVATE KEY');
    expect(tls.serverRootCACertificate.toString()).toContain('BEGIN CERTIFICATE');
    expect(opts.apiKey).toBeUndefined();
  });

  it('requires TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY together', () => {
    expect(errorOf({ TEMPORAL_TLS_CERT: cert }).message).toMatch(/^TEMPORAL_TLS_KEY must be set together with TEMPORAL_TLS_CERT/);
    expect(errorOf({ TEMPORAL_TLS_KEY: key }).message).toMatch(/^TEMPORAL_TLS_CERT must be set together with TEMPORAL_TLS_KEY/);
  });

  it('names the variable whose file is missing or not PEM', () => {
    expect(errorOf({ TEMPORAL_TLS_CERT: join(dir, 'missing.pem'), TEMPORAL_TLS_KEY: key }).message).toMatch(/^TEMPORAL_TLS_CERT=.*missing\.pem: cannot read the file \(ENOENT\)/);
    expect(errorOf({ TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: notPem }).message).toMatch(/^TEMPORAL_TLS_KEY=.*not\.pem: not a PEM file/);
    expect(errorOf({ TEMPORAL_TLS_CA: dir }).message).toMatch(/^TEMPORAL_TLS_CA=.*cannot read the file \(EISDIR\)/);
  });

  it('TEMPORAL_API_KEY implies TLS (Temporal Cloud) and is never echoed in errors', () => {
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'secret-key' })).toEqual({
      address: 'ns.acct.tmprl.cloud:7233',
      namespace: 'ns.acct',
      tls: true,
      apiKey: 'secret-key',
    });
    const msg = errorOf({ TEMPORAL_API_KEY: 'secret-key', TEMPORAL_TLS: 'false' }).message;
    expect(msg).toMatch(/TEMPORAL_TLS=false contradicts TEMPORAL_API_KEY/);
    expect(msg).not.toContain('secret-key');
  });

  it('TEMPORAL_TLS toggles plain TLS; CA or server name alone imply TLS', () => {
    expect(temporalConnectionOptions({ TEMPORAL_TLS: 'true' }).tls).toBe(true);
    expect(temporalConnectionOptions({ TEMPORAL_TLS: '0' }).tls).toBeUndefined();
    expect(temporalConnectionOptions({ TEMPORAL_TLS_SERVER_NAME: 'x' }).tls).toEqual({ serverNameOverride: 'x' });
    expect(errorOf({ TEMPORAL_TLS: 'no', TEMPORAL_TLS_CA: ca }).message).toMatch(/TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CA/);
  });

  it('parses TEMPORAL_GRPC_META', () => {
    expect(temporalConnectionOptions({ TEMPORAL_GRPC_META: 'X-Tenant=lab, x-trace = on ' }).metadata).toEqual({ 'x-tenant': 'lab', 'x-trace': 'on' });
    expect(errorOf({ TEMPORAL_GRPC_META: 'novalue' }).message).toMatch(/TEMPORAL_GRPC_META="novalue": entry "novalue" must be key=value/);
    expect(errorOf({ TEMPORAL_GRPC_META: 'authorization=Bearer x', TEMPORAL_API_KEY: 'k' }).message).toMatch(/mutually exclusive/);
  });
});

describe('resolveTemporal', () => {
  it('with TEMPORAL_ADDRESS starts nothing and returns its options', async () => {
    const r = await resolveTemporal({ env: { TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'prod', TEMPORAL_API_KEY: 'k' } });
    expect(r.startedDevServer).toBe(false);
    expect(r.address).toBe('temporal.internal:7233');
    expect(r.namespace).toBe('prod');
    expect(r.uiUrl).toBeUndefined();
    expect(r.connectionOptions).toEqual({ address: 'temporal.internal:7233', namespace: 'prod', tls: true, apiKey: 'k' });
    await expect(r.stop()).resolves.toBeUndefined();
  });

  it("uses the config's namespace for an external server unless TEMPORAL_NAMESPACE is set", async () => {
    expect((await resolveTemporal({ env: { TEMPORAL_ADDRESS: 'temporal.internal:7233' }, namespace: 'ops' })).namespace).toBe('ops');
    expect((await resolveTemporal({ env: { TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'prod' }, namespace: 'ops' })).namespace).toBe('prod');
  });

  it('validates the environment before starting anything', async () => {
    await expect(resolveTemporal({ env: { TEMPORAL_NAMESPACE: 'bad ns', PATH: '' } })).rejects.toThrow(/TEMPORAL_NAMESPACE/);
  });
});
