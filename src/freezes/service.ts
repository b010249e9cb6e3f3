/**
 * The kill switch as the API offers it (docs/operations.md, "Freezing an environment"): freezes are
 * kept by the dispatch journal, which refuses every new dispatch in a frozen environment in the same
 * atomic section that writes it (src/domain/freeze.ts); this module adds what happens around that:
 * the wait for requests already on their way, the audit records, and telling held runs of a lift.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Gauge, type Registry } from 'prom-client';
import type { AuditStore } from '../audit/store.js';
import { canonicalJson, sha256Hex } from '../domain/hashing.js';
import type { Freeze } from '../domain/freeze.js';
import type { DispatchJournal } from '../dispatch/journal.js';
import type { Logger } from '../logging.js';
import { freezeLiftedSignal } from '../workflows/messages.js';

/** How long a freeze's answer waits for requests sent before it to be answered by Proxmox (default). */
export const SENDING_WAIT_MS = 20_000;
const SENDING_POLL_MS = 50;
/** After a lift, the held runs are listed and signalled again after these pauses. */
const LIFT_SIGNAL_AGAIN_MS = [1_000, 3_000, 6_000];

export interface CreatedFreeze extends Freeze {
  /** Plans whose request was on its way to Proxmox when the freeze was written and still unanswered when it answered. */
  stillSending: string[];
}

export interface FreezeService {
  freeze(input: { environment: string; reason: string; by: string }): Promise<CreatedFreeze>;
  /** Undefined: no such freeze. `lifted` false: it was lifted before (returned as it was). */
  lift(id: string, by: string): Promise<{ freeze: Freeze; lifted: boolean } | undefined>;
  list(opts?: { environment?: string; includeLifted?: boolean }): Promise<Freeze[]>;
  /** One freeze, active or lifted. */
  get(id: string): Promise<Freeze | undefined>;
}

export interface FreezeServiceDeps {
  journal: Pick<DispatchJournal, 'freeze' | 'lift' | 'freezes' | 'freezeById' | 'sending'>;
  audit: Pick<AuditStore, 'append'>;
  /** Lists the runs a freeze holds and signals them (best effort: a held run also checks every minute). */
  client?: Client;
  log?: Logger;
  sendingWaitMs?: number;
}

/** A freeze's records form a chain subject of their own: `freeze/<id>`, like a plan's `planId`. */
export const freezeSubject = (id: string) => `freeze/${id}`;

export function createFreezeService(deps: FreezeServiceDeps): FreezeService {
  const record = (f: Freeze, event: 'freeze.created' | 'freeze.lifted', actor: string) =>
    deps.audit.append({
      eventId: `${freezeSubject(f.id)}/${event}`,
      planId: freezeSubject(f.id),
      event,
      actor,
      channel: 'api',
      requestHash: `sha256:${sha256Hex(canonicalJson({ environment: f.environment, reason: f.reason }))}`,
      detail: { freeze: f },
    });

  /** Requests begun before the freeze may still be on their way: the freeze answers once they are answered. */
  const waitForSending = async (environment: string): Promise<string[]> => {
    const until = Date.now() + (deps.sendingWaitMs ?? SENDING_WAIT_MS);
    for (;;) {
      const open = (await deps.journal.sending(environment)).map((e) => e.planId);
      if (open.length === 0 || Date.now() >= until) return open;
      await new Promise((r) => setTimeout(r, SENDING_POLL_MS));
    }
  };

  const signalHeld = async (f: Freeze): Promise<void> => {
    if (!deps.client) return;
    try {
      for await (const run of deps.client.workflow.list({ query: `ProxmoxFrozen = "${f.id}" AND ExecutionStatus = "Running"` })) {
        await deps.client.workflow
          .getHandle(run.workflowId)
          .signal(freezeLiftedSignal, { freezeId: f.id })
          .catch((err: Error) => deps.log?.warn({ err: err.message, workflowId: run.workflowId }, 'could not tell a held run of the lift; it checks again within a minute'));
      }
    } catch (err) {
      deps.log?.warn({ err: (err as Error).message, freezeId: f.id }, 'could not list the runs a freeze held; they check again within a minute');
    }
  };

  return {
    async freeze({ environment, reason, by }) {
      const f = await deps.journal.freeze({ id: `frz_${randomBytes(10).toString('hex')}`, environment, reason, by });
      deps.log?.warn({ freezeId: f.id, environment, by, reason }, 'environment frozen: no apply starts there until the freeze is lifted');
      await record(f, 'freeze.created', by);
      return { ...f, stillSending: await waitForSending(environment) };
    },
    async lift(id, by) {
      const done = await deps.journal.lift(id, by);
      if (!done) return undefined;
      const { freeze: f, lifted } = done;
      // Only the lift that lifted it records and signals: a racing second lift is answered as it was lifted.
      if (lifted) {
        deps.log?.warn({ freezeId: f.id, environment: f.environment, by }, 'freeze lifted');
        await record(f, 'freeze.lifted', by);
        await signalHeld(f);
        // Visibility lags a run's search attributes by a moment: a run held just before the lift
        // may not be listed yet. Look again a few times (a held run also checks each minute).
        void (async () => {
          for (const ms of LIFT_SIGNAL_AGAIN_MS) {
            await new Promise((r) => setTimeout(r, ms));
            await signalHeld(f);
          }
        })();
      }
      return { freeze: f, lifted };
    },
    list: (opts) => deps.journal.freezes(opts),
    get: (id) => deps.journal.freezeById(id),
  };
}

/** `/healthz`'s `freezes` check: what holds now (a freeze is not a fault; a journal that cannot be read is). */
export async function freezeHealth(service: Pick<FreezeService, 'list'>): Promise<{ ok: boolean; detail: string }> {
  try {
    const active = await service.list();
    if (active.length === 0) return { ok: true, detail: 'no environment is frozen' };
    return { ok: true, detail: active.map((f) => `${f.environment} frozen since ${f.at} by ${f.by} (${f.id}): ${f.reason}`).join('; ') };
  } catch (err) {
    return { ok: false, detail: `the freezes cannot be read (dispatch journal): ${(err as Error).message}` };
  }
}

/**
 * `proxmox_agent_environment_frozen{environment}`: 1 while a freeze holds the environment, else 0,
 * read from the journal at each scrape (every replica reports the same).
 */
export function registerFreezeGauge(registry: Registry, service: Pick<FreezeService, 'list'>, environments: readonly string[]): void {
  new Gauge({
    name: 'proxmox_agent_environment_frozen',
    help: 'Whether a freeze (kill switch) holds the environment: no apply starts there while 1',
    labelNames: ['environment'],
    registers: [registry],
    async collect() {
      const active = await service.list().catch(() => undefined);
      this.reset();
      if (!active) return;
      const frozen = new Set(active.map((f) => f.environment));
      for (const environment of new Set([...environments, ...frozen])) this.set({ environment }, frozen.has(environment) ? 1 : 0);
    },
  });
}
