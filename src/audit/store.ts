import type { Logger } from '../logging.js';
import { GENESIS_HEAD, type AuditHead, type AuditRecord } from './record.js';
import type { CheckpointSigner, SignedCheckpoint } from './signing.js';
import type { AuditEventInput, AuditReceipt } from './events.js';

/**
 * Append-only, hash-chained evidence. Implementations are idempotent by `eventId` (a retried
 * activity writes its record once), durable when `append` resolves, and serialize appends into one
 * chain however many runs append at once.
 */
export interface AuditStore {
  /** Where the log lives, for messages (never a password). */
  readonly description: string;
  append(event: AuditEventInput): Promise<AuditReceipt>;
  /** Every record of one plan, in chain order. */
  forPlan(planId: string): Promise<AuditRecord[]>;
  all(): Promise<AuditRecord[]>;
  head(): Promise<AuditHead>;
  /** Signed checkpoints in the order they were written ([] when signing is off). */
  checkpoints(): Promise<SignedCheckpoint[]>;
  /**
   * The newest checkpoint already written with this store's key (the highest seq), without signing
   * anything: a read never writes. Undefined when signing is off or before the first checkpoint.
   * Checkpoints are written by the store itself: every N records, T seconds after an unsigned append,
   * after a restart, at close.
   */
  latestCheckpoint(): Promise<SignedCheckpoint | undefined>;
  /** The signing key's public half (PEM), when signing is on. */
  readonly publicKeyPem?: string;
  close(): Promise<void>;
}

/** What a storage backend provides; `createAuditStore` adds batching and signed checkpoints on top. */
export interface AuditBackend {
  readonly description: string;
  /**
   * Seal and write `events` onto the chain as one durable unit (all or none), skipping events whose
   * eventId is already there. Returns one receipt per event, the new head and how many were written.
   */
  appendBatch(events: AuditEventInput[]): Promise<{ receipts: AuditReceipt[]; head: AuditHead; written: number }>;
  forPlan(planId: string): Promise<AuditRecord[]>;
  all(): Promise<AuditRecord[]>;
  head(): Promise<AuditHead>;
  appendCheckpoint(checkpoint: SignedCheckpoint): Promise<void>;
  checkpoints(): Promise<SignedCheckpoint[]>;
  /**
   * The newest stored checkpoint signed by `keyId`, read cheaply (not every checkpoint). Optional:
   * without it `latestCheckpoint` reads `checkpoints()`. Not used for a `singleWriter` backend.
   */
  latestCheckpoint?(keyId: string): Promise<SignedCheckpoint | undefined>;
  /**
   * Only this process writes the log and its checkpoints (the file store): the newest checkpoint this
   * store wrote or found at open is the newest there is, so it is answered from memory.
   */
  readonly singleWriter?: boolean;
  close(): Promise<void>;
}

export interface SigningPolicy {
  signer: CheckpointSigner;
  /** Write a checkpoint once this many records were appended since the last one. */
  every: number;
  /** ... and at the latest this long after an append that is not yet covered. */
  intervalMs: number;
}

/** Appends waiting at most this many per batch: one write and one fsync (or commit) per batch. */
const MAX_BATCH = 256;

/**
 * Group commit over a backend: concurrent appends are queued and written in batches, one durable
 * write per batch, in arrival order; a batch that fails rejects only its own appends. With a signer,
 * checkpoints are written every `every` records, `intervalMs` after the last uncovered append, soon
 * after open for records a crash left unsigned, and at close; never on a read (`latestCheckpoint`).
 */
export async function createAuditStore(backend: AuditBackend, opts: { signing?: SigningPolicy; log?: Logger } = {}): Promise<AuditStore> {
  const { signing, log } = opts;
  const pending: { event: AuditEventInput; resolve: (r: AuditReceipt) => void; reject: (e: unknown) => void }[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;
  let uncovered = 0;
  let lastCheckpoint: SignedCheckpoint | undefined;
  let checkpointChain: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const writeCheckpoint = (head?: AuditHead): Promise<SignedCheckpoint | undefined> => {
    if (!signing) return Promise.resolve(undefined);
    const run = checkpointChain.then(async () => {
      const at = head ?? (await backend.head());
      if (at.seq === 0) return lastCheckpoint;
      if (lastCheckpoint && lastCheckpoint.seq >= at.seq) return lastCheckpoint;
      const checkpoint = signing.signer.sign(at);
      await backend.appendCheckpoint(checkpoint);
      lastCheckpoint = checkpoint;
      uncovered = 0;
      return checkpoint;
    });
    checkpointChain = run.catch(() => undefined);
    return run;
  };

  const scheduleCheckpoint = () => {
    if (!signing || timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      writeCheckpoint().catch((err) => log?.error({ err: errorSummary(err) }, 'audit checkpoint failed; will retry'));
    }, signing.intervalMs);
    timer.unref();
  };

  // An append that arrives after the drain loop's last check but before it is marked finished is
  // picked up by the re-check in `finally`.
  const kick = (): void => {
    if (draining) return;
    draining = drain().finally(() => {
      draining = undefined;
      if (pending.length > 0) kick();
    });
  };

  const drain = async () => {
    while (pending.length > 0) {
      const batch = pending.splice(0, MAX_BATCH);
      try {
        const result = await backend.appendBatch(batch.map((p) => p.event));
        batch.forEach((p, i) => p.resolve(result.receipts[i]!));
        uncovered += result.written;
        if (signing && result.written > 0) {
          if (uncovered >= signing.every) {
            await writeCheckpoint(result.head).catch((err) =>
              log?.error({ err: errorSummary(err) }, 'audit checkpoint failed; will retry'),
            );
          } else scheduleCheckpoint();
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  };

  if (signing) {
    // Records written after the last checkpoint (a crash before close) are signed soon after start.
    lastCheckpoint = newest((await backend.checkpoints()).filter((c) => c.keyId === signing.signer.keyId));
    uncovered = (await backend.head()).seq - (lastCheckpoint?.seq ?? 0);
    if (uncovered > 0) scheduleCheckpoint();
  }

  return {
    description: backend.description,
    ...(signing ? { publicKeyPem: signing.signer.publicKeyPem } : {}),
    append(event) {
      if (closed) return Promise.reject(new Error(`audit store ${backend.description} is closed`));
      return new Promise<AuditReceipt>((resolve, reject) => {
        pending.push({ event, resolve, reject });
        kick();
      });
    },
    async forPlan(planId) {
      await draining;
      return backend.forPlan(planId);
    },
    async all() {
      await draining;
      return backend.all();
    },
    async head() {
      await draining;
      return backend.head();
    },
    async checkpoints() {
      await checkpointChain;
      return backend.checkpoints();
    },
    async latestCheckpoint() {
      if (!signing) return undefined;
      await checkpointChain;
      if (backend.singleWriter) return lastCheckpoint;
      // Other processes (workers sharing a PostgreSQL store) write checkpoints too: ask the backend.
      const keyId = signing.signer.keyId;
      const stored = backend.latestCheckpoint
        ? await backend.latestCheckpoint(keyId)
        : newest((await backend.checkpoints()).filter((c) => c.keyId === keyId));
      return newest([stored, lastCheckpoint]);
    },
    async close() {
      closed = true;
      while (draining) await draining;
      if (timer) clearTimeout(timer);
      timer = undefined;
      try {
        // Sign the final head, so the records written since the last checkpoint are covered too.
        if (signing && uncovered > 0) await writeCheckpoint();
      } finally {
        await backend.close();
      }
    },
  };
}

/** The checkpoint with the highest seq (the later one of equals). */
export function newest(checkpoints: readonly (SignedCheckpoint | undefined)[]): SignedCheckpoint | undefined {
  let best: SignedCheckpoint | undefined;
  for (const c of checkpoints) if (c && (!best || c.seq >= best.seq)) best = c;
  return best;
}

/** An error's class and message only: never a connection string or a whole client object. */
export function errorSummary(err: unknown): { type: string; message: string } {
  return err instanceof Error ? { type: err.name, message: err.message } : { type: typeof err, message: String(err) };
}

export { GENESIS_HEAD };
