// Reading and decoding response bodies. Proxmox gzips/deflates answers over 1 KiB when asked to;
// both the raw and the decoded size are capped so that a broken or hostile endpoint cannot make
// the worker buffer without limit.

import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw } from 'node:zlib';

/** Largest body we accept (a /cluster/resources of a big cluster is a few MiB). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);

class BodyTooLargeError extends Error {
  readonly code = 'UND_ERR_RES_EXCEEDED_MAX_SIZE';
}

export async function readBody(body: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > MAX_BODY_BYTES) {
      // Leaving the loop early destroys the stream, which releases the connection.
      throw new BodyTooLargeError(`response body exceeds ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export async function decodeBody(raw: Buffer, contentEncoding: string | string[] | undefined): Promise<string> {
  const encoding = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : (contentEncoding ?? '')).trim().toLowerCase();
  const limits = { maxOutputLength: MAX_BODY_BYTES };
  let decoded: Buffer;
  if (encoding === '' || encoding === 'identity' || raw.length === 0) decoded = raw;
  else if (encoding === 'gzip' || encoding === 'x-gzip') decoded = await gunzipAsync(raw, limits);
  else if (encoding === 'deflate') {
    // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
    decoded = await inflateAsync(raw, limits).catch(() => inflateRawAsync(raw, limits));
  } else {
    throw Object.assign(new Error(`unsupported content-encoding ${encoding}`), { code: 'ERR_PROXMOX_CONTENT_ENCODING' });
  }
  return decoded.toString('utf8');
}
