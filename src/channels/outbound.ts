/**
 * Outgoing HTTP for the channels (Slack `response_url`, notification webhooks): one JSON POST with a
 * hard timeout, no redirects (undici's `request` follows none), a bounded response read, and error
 * messages that name the target by a label, never by its URL: webhook URLs are bearer secrets
 * (a Slack incoming-webhook URL is all it takes to post), and these messages end up in logs and in
 * Temporal history.
 */
import { request, type Dispatcher } from 'undici';

export const DEFAULT_OUTBOUND_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 4096;

export interface PostOptions {
  /** Names the target in errors, e.g. `notifications.webhooks[0]`. */
  label: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

export interface PostResult {
  status: number;
  /** The start of the response body, for diagnostics. */
  body: string;
}

export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  constructor(
    message: string,
    /** The HTTP status, when the target answered. */
    readonly status?: number,
  ) {
    super(message);
  }

  /** 4xx other than 408 and 429 will not get better by retrying the same request. */
  get permanent(): boolean {
    return this.status !== undefined && this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

/** POSTs `body` (already serialized JSON) and resolves for 2xx; anything else throws an OutboundError. */
export async function postJson(url: string, body: string, opts: PostOptions): Promise<PostResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_OUTBOUND_TIMEOUT_MS;
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'proxmox-agent', ...opts.headers },
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
  } catch (err) {
    throw new OutboundError(`${opts.label}: request failed (${transportReason(err)})`);
  }
  const text = await readCapped(res.body);
  if (res.statusCode < 200 || res.statusCode >= 300) {
    throw new OutboundError(`${opts.label}: answered HTTP ${res.statusCode}`, res.statusCode);
  }
  return { status: res.statusCode, body: text };
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (size < MAX_RESPONSE_BYTES) chunks.push(buf.subarray(0, MAX_RESPONSE_BYTES - size));
      size += buf.length;
      if (size >= MAX_RESPONSE_BYTES) {
        body.destroy();
        break;
      }
    }
  } catch {
    // A body cut short is still a response; its status decides.
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A reason without the URL: error codes and names only (undici messages can embed the origin). */
function transportReason(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string } } | undefined;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT') return 'timed out';
  return e?.code ?? e?.cause?.code ?? e?.name ?? 'unknown error';
}
