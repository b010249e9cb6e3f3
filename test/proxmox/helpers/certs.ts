// Self-signed certificates for the TLS tests, made at test time: with the openssl CLI when it is
// installed, otherwise with a small DER encoder over node:crypto, so the TLS tests never need to be
// skipped. Both give an EC P-256 certificate for CN=pve-test, SAN IP:127.0.0.1 and DNS:localhost.

import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  keyPem: string;
  certPem: string;
  /** `AA:BB:...`, as Node reports `fingerprint256`. */
  fingerprint256: string;
  via: 'openssl' | 'node:crypto';
}

export function opensslAvailable(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function withFingerprint(keyPem: string, certPem: string, via: TestCert['via']): TestCert {
  return { keyPem, certPem, fingerprint256: new X509Certificate(certPem).fingerprint256, via };
}

export function makeCertWithOpenssl(cn = 'pve-test'): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'pve-client-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
      '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'ignore' });
    return withFingerprint(readFileSync(join(dir, 'key.pem'), 'utf8'), readFileSync(join(dir, 'cert.pem'), 'utf8'), 'openssl');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- minimal DER (X.690) for one self-signed X.509 v3 certificate ----

const der = (tag: number, content: Buffer): Buffer => {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : (() => {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    return Buffer.from([0x80 | bytes.length, ...bytes]);
  })();
  return Buffer.concat([Buffer.from([tag]), len, content]);
};
const seq = (...items: Buffer[]): Buffer => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => der(0x31, Buffer.concat(items));
const int = (bytes: Buffer): Buffer => der(0x02, (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const v of rest) {
    const chunk: number[] = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
};
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'));
const utcTime = (d: Date): Buffer => der(0x17, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'));
const explicit = (n: number, content: Buffer): Buffer => der(0xa0 | n, content);
const octets = (b: Buffer): Buffer => der(0x04, b);
const bits = (b: Buffer): Buffer => der(0x03, Buffer.concat([Buffer.from([0]), b]));

export function makeCertWithNodeCrypto(cn = 'pve-test'): TestCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const sigAlg = seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  const name = seq(set(seq(oid('2.5.4.3'), utf8(cn))));
  const now = Date.now();
  const san = seq(der(0x87, Buffer.from([127, 0, 0, 1])), der(0x82, Buffer.from('localhost', 'ascii')));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))), // v3
    int(createHash('sha256').update(String(now)).digest().subarray(0, 8)),
    sigAlg,
    name,
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 2 * 86400_000))),
    name,
    spki,
    explicit(3, seq(
      seq(oid('2.5.29.19'), der(0x01, Buffer.from([0xff])), octets(seq(der(0x01, Buffer.from([0xff]))))), // basicConstraints CA:TRUE, critical
      seq(oid('2.5.29.17'), octets(san)),
    )),
  );
  const cert = seq(tbs, sigAlg, bits(sign('sha256', tbs, privateKey)));
  const certPem = `-----BEGIN CERTIFICATE-----\n${cert.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return withFingerprint(keyPem, certPem, 'node:crypto');
}

/** The openssl CLI when present, else node:crypto. */
export function makeSelfSignedCert(cn = 'pve-test'): TestCert {
  return opensslAvailable() ? makeCertWithOpenssl(cn) : makeCertWithNodeCrypto(cn);
}
