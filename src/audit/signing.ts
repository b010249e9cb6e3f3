import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../domain/hashing.js';
import type { AuditHead } from './record.js';

/**
 * Ed25519-signed chain heads ("checkpoints"). A checkpoint says: "at `time`, record `seq` of this log
 * had hash `hash`", signed by the service's audit key. Because each record's hash covers its
 * predecessor's, a valid checkpoint commits to the whole chain up to `seq`: rewriting any earlier
 * record, or cutting the log short of `seq`, no longer matches it. See docs/audit.md ("Signing").
 */
export const CHECKPOINT_TYPE = 'proxmox-agent.audit.checkpoint.v1';

export interface SignedCheckpoint extends AuditHead {
  type: typeof CHECKPOINT_TYPE;
  time: string;
  /** First 16 hex digits of SHA-256 over the raw public key: names the key that signed. */
  keyId: string;
  /** Base64 Ed25519 signature over the RFC 8785 canonical JSON of every other field. */
  signature: string;
}

export interface CheckpointSigner {
  keyId: string;
  publicKeyPem: string;
  sign(head: AuditHead, time?: Date): SignedCheckpoint;
}

/** Parses a PKCS#8 PEM Ed25519 private key; the error never repeats the key material. */
export function createCheckpointSigner(privateKeyPem: string): CheckpointSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  } catch {
    throw new Error('the audit signing key is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the audit signing key must be Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
  const publicKey = createPublicKey(key);
  const keyId = publicKeyId(publicKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyId,
    publicKeyPem,
    sign(head, time = new Date()) {
      const body = { type: CHECKPOINT_TYPE, seq: head.seq, hash: head.hash, time: time.toISOString(), keyId } as const;
      const signature = sign(null, Buffer.from(canonicalJson(body), 'utf8'), key).toString('base64');
      return { ...body, signature };
    },
  };
}

export function parsePublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the audit public key must be Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

export function publicKeyId(key: KeyObject): string {
  const raw = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/** Why a checkpoint does not verify under `key`, or undefined when it does. */
export function checkpointSignatureProblem(checkpoint: SignedCheckpoint, key: KeyObject): string | undefined {
  if (checkpoint.type !== CHECKPOINT_TYPE) return `unknown checkpoint type ${JSON.stringify(checkpoint.type)}`;
  const expectedKeyId = publicKeyId(key);
  if (checkpoint.keyId !== expectedKeyId) return `signed by key ${checkpoint.keyId}, not by the trusted key ${expectedKeyId}`;
  const { signature, ...body } = checkpoint;
  let ok = false;
  try {
    ok = verify(null, Buffer.from(canonicalJson(body), 'utf8'), key, Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  return ok ? undefined : 'signature does not verify';
}

/** A new Ed25519 key pair as PEM: PKCS#8 private key, SPKI public key. */
export function generateAuditKeyPair(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: publicKeyId(publicKey),
  };
}
