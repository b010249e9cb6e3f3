import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// canonicalize (the RFC 8785 authors' implementation) is CommonJS with `module.exports = fn`, while its
// typings declare an ES default export; under NodeNext the default import *is* that function.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;
import type { NormalizedRequest } from './request.js';

/**
 * requestHash = "sha256:" + hex(SHA-256(RFC 8785 canonical JSON of the normalized request)).
 * RFC 8785 fixes key order, number and string encoding, so equal requests hash equally whatever
 * order or escaping the client used (docs/request-hashing.md has test vectors).
 */
export function requestHash(request: NormalizedRequest): string {
  return `sha256:${sha256Hex(canonicalJson(request))}`;
}

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be represented as canonical JSON');
  return text;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
