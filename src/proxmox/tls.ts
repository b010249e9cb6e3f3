// TLS for one Proxmox endpoint, as an undici connector.
//
// Three modes, never "off":
// - default: Node's system CAs plus host-name check (an ACME or corporate-CA pveproxy certificate);
// - caFile/caPem: trust the cluster CA (/etc/pve/pve-root-ca.pem) instead of the system store;
// - fingerprintSha256: pin the leaf certificate. Chain and host-name checks are replaced by an exact
//   SHA-256 match (Proxmox shows it as `ssl_fingerprint` in GET /nodes and in the GUI).
//   With a CA as well, both must pass.
//
// Why the pin is checked in a wrapping connector and not via `checkServerIdentity`: with
// `rejectUnauthorized: false` Node calls `checkServerIdentity` only when chain verification
// succeeded, and even then an error it returns does not close the socket. For the self-signed
// certificate you would pin, the hook never runs and the connection goes through unchecked. Here
// the certificate is compared after the handshake and before undici gets the socket, so no request
// byte is written to a server that fails the pin, and "no certificate" fails too.

import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import { PIN_MISMATCH_CODE } from './error-map.js';
import { ProxmoxConfigError } from './errors.js';

export interface ProxmoxTlsOptions {
  /** PEM file with the CA(s) to trust instead of the system store, e.g. a copy of pve-root-ca.pem. */
  caFile?: string;
  /** The same as PEM text. */
  caPem?: string;
  /** SHA-256 of the leaf certificate: 32 bytes in hex, colons optional, any case. */
  fingerprintSha256?: string;
}

/** `AA:BB:...` (upper case, 32 colon-separated bytes) or throws ProxmoxConfigError. */
export function normalizeFingerprint(value: string): string {
  const hex = value.replace(/:/g, '').trim().toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new ProxmoxConfigError('tls.fingerprintSha256 must be a SHA-256 fingerprint: 32 bytes in hex, colons optional');
  }
  return hex.match(/../g)!.join(':');
}

function loadCa(tls: ProxmoxTlsOptions): string | undefined {
  const pems: string[] = [];
  if (tls.caFile !== undefined) {
    try {
      pems.push(readFileSync(tls.caFile, 'utf8'));
    } catch (err) {
      throw new ProxmoxConfigError(`cannot read tls.caFile ${tls.caFile}: ${(err as Error).message}`);
    }
  }
  if (tls.caPem !== undefined) pems.push(tls.caPem);
  if (pems.length === 0) return undefined;
  const joined = pems.join('\n');
  if (!joined.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ProxmoxConfigError('tls.caFile/caPem contains no PEM certificate');
  }
  return joined;
}

class PinMismatchError extends Error {
  readonly code = PIN_MISMATCH_CODE;
}

export function buildProxmoxConnector(opts: {
  https: boolean;
  tls: ProxmoxTlsOptions | undefined;
  connectTimeoutMs: number;
}): buildConnector.connector {
  const tls = opts.tls ?? {};
  if (!opts.https) {
    if (tls.caFile !== undefined || tls.caPem !== undefined || tls.fingerprintSha256 !== undefined) {
      // Someone who sets a pin believes the traffic is protected; over http:// it would not be.
      throw new ProxmoxConfigError('tls options were given for an http:// baseUrl; use https:// or drop them');
    }
    return buildConnector({ timeout: opts.connectTimeoutMs });
  }

  const ca = loadCa(tls);
  const pin = tls.fingerprintSha256 === undefined ? undefined : normalizeFingerprint(tls.fingerprintSha256);
  const base = buildConnector({
    timeout: opts.connectTimeoutMs,
    ...(ca === undefined ? {} : { ca }),
    // Only a pin may relax chain verification, and only because the pin check below replaces it.
    rejectUnauthorized: pin === undefined || ca !== undefined,
    // A resumed session skips the certificate exchange, leaving nothing to compare with the pin.
    ...(pin === undefined ? {} : { maxCachedSessions: 0 }),
  });
  return pin === undefined ? base : pinCheckedConnector(base, pin);
}

/**
 * Wraps a connector so that every new TLS connection is handed on only if the peer's leaf
 * certificate has the pinned SHA-256 fingerprint (`AA:BB:...`). Anything else, including no
 * certificate at all, destroys the socket and fails the connection attempt.
 */
export function pinCheckedConnector(base: buildConnector.connector, pin: string): buildConnector.connector {
  return (options, callback) => {
    base(options, (err, socket) => {
      if (err !== null) return callback(err, null);
      const cert = (socket as Partial<TLSSocket>).getPeerCertificate?.();
      const actual = cert && typeof cert.fingerprint256 === 'string' ? cert.fingerprint256.toUpperCase() : undefined;
      if (actual !== pin) {
        socket.destroy();
        const seen = actual === undefined ? 'no certificate' : `certificate ${actual}`;
        return callback(new PinMismatchError(`server presented ${seen}; pinned ${pin}`), null);
      }
      callback(null, socket);
    });
  };
}
