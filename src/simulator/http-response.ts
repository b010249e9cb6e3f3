/**
 * Writing responses the way pve-http-server does: `{data}` envelope, JSON content type with
 * `charset=UTF-8`, `Server: pve-api-daemon/3.0`, the error message as status-line reason phrase,
 * gzip above 1 KiB when the client accepts it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { ApiError } from './errors.js';

const JSON_TYPE = 'application/json;charset=UTF-8';

/** A reason phrase must be a single line of visible ASCII; PVE uses the first line of the message. */
export function reasonPhrase(message: string): string {
  const first = message.split('\n')[0] ?? '';
  return first.replace(/[^\t\x20-\x7e]/g, '?');
}

function baseHeaders(): Record<string, string> {
  const now = new Date().toUTCString();
  return { 'Cache-Control': 'max-age=0', Pragma: 'no-cache', Expires: now, Server: 'pve-api-daemon/3.0' };
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, reason: string, body: unknown): void {
  let payload: Buffer = Buffer.from(JSON.stringify(body), 'utf8');
  const headers: Record<string, string> = { ...baseHeaders(), 'Content-Type': JSON_TYPE };
  if (payload.length > 1024 && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    payload = gzipSync(payload);
    headers['Content-Encoding'] = 'gzip';
  }
  headers['Content-Length'] = String(payload.length);
  res.writeHead(status, reasonPhrase(reason), headers);
  res.end(payload);
}

/** A body sent as is, labelled JSON: what a truncating proxy or a broken node delivers (garbled-after-dispatch). */
export function sendText(res: ServerResponse, status: number, reason: string, text: string): void {
  const payload = Buffer.from(text, 'utf8');
  res.writeHead(status, reasonPhrase(reason), { ...baseHeaders(), 'Content-Type': JSON_TYPE, 'Content-Length': String(payload.length) });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, reason: string): void {
  res.writeHead(status, reasonPhrase(reason), { ...baseHeaders(), 'Content-Length': '0' });
  res.end();
}

export function sendError(req: IncomingMessage, res: ServerResponse, err: ApiError, legacy: boolean): void {
  if (err.viaProxy) {
    // A reverse proxy's error page: not pveproxy's envelope, not its Server header.
    const payload = Buffer.from(`${err.status} ${err.message}\n`, 'utf8');
    res.writeHead(err.status, reasonPhrase(err.message), { Server: 'envoy', 'Content-Type': 'text/plain', 'Content-Length': String(payload.length) });
    res.end(payload);
    return;
  }
  if (err.emptyBody) {
    sendEmpty(res, err.status, err.message);
    return;
  }
  // Since libpve-http-server-perl 5.2 the body repeats the message, keeping its trailing newline.
  const body: Record<string, unknown> = { data: null };
  if (!legacy) body.message = `${err.message.replace(/\n*$/, '')}\n`;
  if (err.errors) body.errors = err.errors;
  sendJson(req, res, err.status, err.message, body);
}
