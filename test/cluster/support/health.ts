/**
 * Watching `/healthz` and `/readyz` of every process while Temporal goes away or comes back: each
 * endpoint is asked every 200 ms (each request given 1 s), and the time of the first answer with the
 * wanted status is kept, so the test measures it from the moment the change happened.
 */
import { Connection } from '@temporalio/client';
import { sleep } from './flows.js';

export interface Probe {
  name: string;
  url: string;
}

export interface Transition {
  name: string;
  /** When (ms since epoch) the first answer with the wanted status came; undefined when none came in time. */
  at: number | undefined;
  /** What it answered last (a status, or the error). */
  last: string;
}

export async function watchTransition(probes: Probe[], want: number, watchMs: number): Promise<Transition[]> {
  const until = Date.now() + watchMs;
  return Promise.all(
    probes.map(async (p): Promise<Transition> => {
      let last = 'not asked';
      while (Date.now() < until) {
        try {
          const res = await fetch(p.url, { signal: AbortSignal.timeout(1000) });
          last = `${res.status} ${(await res.text()).slice(0, 300)}`;
          if (res.status === want) return { name: p.name, at: Date.now(), last };
        } catch (err) {
          last = `no answer: ${(err as Error).name}`;
        }
        await sleep(200);
      }
      return { name: p.name, at: undefined, last };
    }),
  );
}

/**
 * When the Temporal frontend first answers for `namespace`, asked every 100 ms over a fresh connection
 * each time: a connection that saw the server die waits out its reconnect backoff, and would notice late.
 */
export async function firstAnswer(address: string, namespace: string, watchMs: number): Promise<number> {
  const until = Date.now() + watchMs;
  for (;;) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 1000 });
      const c = connection;
      await c.withDeadline(Date.now() + 1000, () => c.workflowService.describeNamespace({ namespace }));
      return Date.now();
    } catch (err) {
      if (Date.now() > until) throw new Error(`Temporal did not answer within ${watchMs / 1000} s: ${(err as Error).message}`);
    } finally {
      await connection?.close();
    }
    await sleep(100);
  }
}

export const describeTransitions = (ts: Transition[], since: number) =>
  ts.map((t) => `${t.name}: ${t.at === undefined ? 'never' : `${((t.at - since) / 1000).toFixed(1)} s`} (last: ${t.last})`).join('\n');
