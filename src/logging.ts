import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets have no business in a log line, but if one is ever passed in a
 * field by mistake, these paths are censored before the line is written.
 */
export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const settings = {
    name: options.name ?? 'proxmox-agent',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: {
      paths: ['authorization', '*.authorization', 'headers.authorization', 'tokenSecret', '*.tokenSecret', 'secret', '*.secret', 'password', 'privateKey', '*.privateKey'],
      censor: '[redacted]',
    },
  };
  // Tests pass a destination to read every line the service writes (the secret scan).
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
