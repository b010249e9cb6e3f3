/**
 * Minimal logging hook used by the Temporal plumbing. Pass e.g. `(m) => logger.info(m)` to route
 * messages into pino, or `console.error` for a CLI. Default: silent.
 */
export type TemporalLog = (message: string) => void;

export const silentLog: TemporalLog = () => {};

/** Prefixes every message, e.g. `[temporal] …`. */
export function prefixedLog(prefix: string, log: TemporalLog = console.error): TemporalLog {
  return (message) => log(`${prefix} ${message}`);
}
