import { createHash, randomBytes } from 'node:crypto';

/**
 * Plan IDs (docs/plan-id-rules.md): "plan_" + 26 Crockford base32 characters (130 bits).
 * Random for a request without Idempotency-Key; derived from (principal, key) otherwise, so a
 * retried request lands on the same plan (and the same Temporal workflow, whose ID is the plan ID).
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const PLAN_ID_PATTERN = /^plan_[0-9A-HJKMNP-TV-Z]{26}$/;

export function randomPlanId(): string {
  return `plan_${base32(randomBytes(17))}`;
}

export function idempotentPlanId(principal: string, idempotencyKey: string): string {
  // JSON-encode the pair: no choice of principal and key can be read as another pair.
  const digest = createHash('sha256').update(JSON.stringify(['proxmox-agent/plan/v1', principal, idempotencyKey])).digest();
  return `plan_${base32(digest)}`;
}

/**
 * The one undo a plan may have: its id follows from the original's, so a retried or concurrent undo
 * request lands on the same run, and the original's view finds its undo without an index.
 */
export function undoPlanId(planId: string): string {
  const digest = createHash('sha256').update(JSON.stringify(['proxmox-agent/undo/v1', planId])).digest();
  return `plan_${base32(digest)}`;
}

export function isPlanId(value: string): boolean {
  return PLAN_ID_PATTERN.test(value);
}

/** First 130 bits of `bytes` as 26 base32 characters. */
function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}
