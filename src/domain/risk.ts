/**
 * Risk levels, ordered. Workflow-safe: no imports, so the workflow bundle can use it.
 */
export const RISKS = ['low', 'medium', 'high', 'critical'] as const;
export type Risk = (typeof RISKS)[number];

export function riskRank(risk: Risk): number {
  return RISKS.indexOf(risk);
}

/** The stricter of two risks: a re-evaluation may raise risk, never lower what was already shown. */
export function stricterRisk(a: Risk, b: Risk): Risk {
  return riskRank(a) >= riskRank(b) ? a : b;
}
