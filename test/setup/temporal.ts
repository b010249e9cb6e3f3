/**
 * Helpers for integration tests (import from test files, not from the global setup).
 *
 *   const client = await connectClient(testConnectionOptions());
 */
import { inject } from 'vitest';
import { temporalConnectionOptions, type TemporalConnectionOptions } from '../../src/temporal/connection.js';

/**
 * Connection options for the server chosen by the global setup. For an external TEMPORAL_ADDRESS the
 * TLS / API-key variables from the environment are kept; for the throw-away dev server it is plain TCP.
 */
export function testConnectionOptions(): TemporalConnectionOptions {
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  if (!inject('temporalIsDevServer')) {
    return { ...temporalConnectionOptions(process.env), address, namespace };
  }
  return { address, namespace };
}
