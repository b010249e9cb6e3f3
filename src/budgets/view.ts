import type { Gauge } from 'prom-client';
import { budgetUsage, WINDOW_MS, type BudgetUsage } from './ledger.js';
import type { BudgetsConfig } from './schema.js';
import type { BudgetStore } from './store.js';

export interface BudgetsReport {
  /** The instant the usage was read at (the ledger's clock). */
  at: string;
  windowSeconds: number;
  budgets: BudgetUsage[];
}

export interface BudgetView {
  /** Every configured budget of these principals (all configured principals when absent). */
  read(principals?: readonly string[]): Promise<BudgetsReport>;
}

export function createBudgetView(store: BudgetStore, limits: () => BudgetsConfig): BudgetView {
  return {
    async read(principals) {
      const configured = limits();
      const { charges, now } = await store.snapshot();
      const names = (principals ?? Object.keys(configured)).filter((p) => configured[p]);
      return {
        at: new Date(now).toISOString(),
        windowSeconds: WINDOW_MS / 1000,
        budgets: names.flatMap((p) => budgetUsage(p, configured[p]!, charges, now)),
      };
    },
  };
}

/** Sets the usage and limit gauges from the ledger (before each scrape): every process reports the shared truth. */
export async function observeBudgets(view: BudgetView, gauges: { used: Gauge<'principal' | 'budget'>; limit: Gauge<'principal' | 'budget'> }): Promise<void> {
  const { budgets } = await view.read();
  gauges.used.reset();
  gauges.limit.reset();
  for (const b of budgets) {
    gauges.used.set({ principal: b.principal, budget: b.budget }, b.used);
    gauges.limit.set({ principal: b.principal, budget: b.budget }, b.limit);
  }
}
