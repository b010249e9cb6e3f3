/**
 * Extracting parameters like AnyEvent.pm `extract_params`: form-urlencoded or JSON body, query
 * parameters override body keys, a repeated form key joins its values with NUL (which
 * PVE::Tools::split_list understands), JSON booleans become 0/1.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';
import type { ParamValue, Params } from './validate.js';

const MAX_BODY = 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 'Request Entity Too Large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fromSearchParams(sp: URLSearchParams, into: Params): void {
  for (const [k, v] of sp) {
    const prev = into[k];
    into[k] = typeof prev === 'string' ? `${prev}\0${v}` : v;
  }
}

function jsonValue(v: unknown): ParamValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return v as Record<string, unknown>;
}

export function parseParams(contentType: string | undefined, body: string, query: URLSearchParams): Params {
  const params: Params = {};
  if (body.length > 0) {
    if (/^application\/json/i.test(contentType ?? '')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw new ApiError(400, 'malformed JSON string in request body');
      }
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed)) {
          const pv = jsonValue(v);
          if (pv !== undefined) params[k] = pv;
        }
      }
    } else {
      fromSearchParams(new URLSearchParams(body), params);
    }
  }
  const fromQuery: Params = {};
  fromSearchParams(query, fromQuery);
  return { ...params, ...fromQuery };
}
