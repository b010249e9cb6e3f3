/**
 * API-token authentication as pve-http-server / pve-access-control do it:
 * the Authorization header is searched for `PVEAPIToken=` (or `PVEAPIToken ` with a space), the
 * value is URI-unescaped and split at the LAST `=` into token id and secret.
 */
import { timingSafeEqual } from 'node:crypto';
import type { SimApiTokenSeed } from './types.js';

export type AuthResult =
  | { ok: true; token: SimApiTokenSeed }
  | { ok: false; reason: 'No ticket' | 'Authentication failed!' };

const TOKEN_ID_RE = /^[^\s!@]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function authenticate(
  headers: { authorization?: string | undefined; cookie?: string | undefined },
  tokens: SimApiTokenSeed[],
): AuthResult {
  const header = headers.authorization ?? '';
  const m = /(?:^|\s)PVEAPIToken(?:=| )([^;]*)/.exec(header);
  if (!m) {
    // A ticket (cookie or header fallback) would be checked here; the simulator issues none.
    const hasTicket = /PVEAuthCookie=/.test(header) || /PVEAuthCookie=/.test(headers.cookie ?? '');
    return { ok: false, reason: hasTicket ? 'Authentication failed!' : 'No ticket' };
  }
  let value: string;
  try {
    value = decodeURIComponent(m[1]!.trim());
  } catch {
    return { ok: false, reason: 'Authentication failed!' };
  }
  const eq = value.lastIndexOf('=');
  if (eq < 0) return { ok: false, reason: 'Authentication failed!' };
  const tokenId = value.slice(0, eq);
  const secret = value.slice(eq + 1);
  if (!TOKEN_ID_RE.test(tokenId)) return { ok: false, reason: 'Authentication failed!' };
  const token = tokens.find((t) => t.tokenId === tokenId);
  if (!token || !sameSecret(token.secret, secret)) return { ok: false, reason: 'Authentication failed!' };
  return { ok: true, token };
}
