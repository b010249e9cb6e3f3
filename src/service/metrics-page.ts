import { observeBudgets, type BudgetView } from '../budgets/view.js';
import type { BudgetsConfig } from '../budgets/schema.js';
import type { Logger } from '../logging.js';
import { renderMetrics, type Metrics } from '../observability/metrics.js';

export interface MetricsPageOptions {
  metrics: Metrics;
  budgets: BudgetView;
  limits: () => BudgetsConfig;
  /** The Temporal SDK's Prometheus endpoint, appended to the page. */
  sdkMetricsUrl?: string;
  log: Logger;
}

/**
 * `/metrics` for the API and the worker's HTTP server alike. Budget usage lives in the shared
 * ledger: it is read at each scrape, not tracked per process. A ledger that cannot be read leaves
 * the budget gauges as they were, and the rest of the page is still served.
 */
export function metricsPage({ metrics, budgets, limits, sdkMetricsUrl, log }: MetricsPageOptions): () => Promise<{ contentType: string; body: string }> {
  return async () => {
    if (Object.keys(limits()).length > 0)
      await observeBudgets(budgets, { used: metrics.budgetUsed, limit: metrics.budgetLimit }).catch((err: Error) => log.warn({ err: err.message }, 'cannot read the budget ledger for /metrics'));
    return renderMetrics(metrics.registry, sdkMetricsUrl);
  };
}
