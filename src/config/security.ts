import { z } from 'zod';
import { ACTION_NAMES } from '../domain/actions/catalog.js';
import { actionPatternMatches } from '../domain/action-patterns.js';

/**
 * The security-related parts of the config (docs/security.md, docs/audit.md): the API server's
 * exposure (bind address, TLS, CORS, rate limit), per-token action patterns, and the audit store.
 * Kept apart from schema.ts so each piece can be read and tested on its own.
 */

/** Same shape as schema.ts's secret references: `{env: VAR}` or `{file: path}`, never the value. */
const secretRef = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

function isBareOrigin(u: string): boolean {
  try {
    return new URL(u).origin === u.replace(/\/$/, '');
  } catch {
    return false;
  }
}

// Generous for an agent or a script polling many plans, yet a runaway loop is held to 50 requests a second.
export const DEFAULT_RATE_LIMIT = { requestsPerSecond: 50, burst: 200 } as const;

// Enough for a console watching a few plans in tabs plus a script; one token cannot pin the API's sockets.
export const DEFAULT_EVENT_STREAMS_PER_TOKEN = 8;

// A few MCP clients per person (an editor, a terminal agent, a script); older sessions give way.
export const DEFAULT_MCP_SESSIONS_PER_TOKEN = 8;

export const serverConfigSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('Bind address; loopback unless you mean to expose the API'),
    port: z.number().int().min(0).max(65535).default(8787),
    tls: z
      .strictObject({
        certFile: z.string().min(1).describe('PEM certificate chain'),
        keyFile: z.string().min(1).describe('PEM private key'),
      })
      .optional()
      .describe('Serve HTTPS natively; or terminate TLS in a reverse proxy on the same host'),
    cors: z
      .strictObject({
        origins: z
          .array(z.url({ protocol: /^https?$/ }).refine(isBareOrigin, 'an origin: scheme://host[:port], nothing after'))
          .min(1),
      })
      .optional()
      .describe('Browser origins allowed to call /v1/*; absent, no CORS headers are sent (browsers refuse cross-origin calls)'),
    rateLimit: z
      .union([
        z.literal(false),
        z.strictObject({
          requestsPerSecond: z.number().positive().max(100_000).describe('Sustained requests per second per token'),
          burst: z.number().int().min(1).max(100_000).describe('Requests a token may send at once'),
        }),
      ])
      .default(DEFAULT_RATE_LIMIT)
      .describe('Token bucket per API token; false turns it off'),
    maxEventStreamsPerToken: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .describe(`Event streams (GET /v1/actions/{planId}/events) one token may hold open at once; default ${DEFAULT_EVENT_STREAMS_PER_TOKEN}. Over it: 429`),
    mcp: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve MCP over Streamable HTTP at /mcp'),
        allowedHosts: z
          .array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/, 'a host name or address, without port'))
          .min(1)
          .optional()
          .describe('Host header names /mcp answers (DNS rebinding); default: the loopback names when host is loopback, any otherwise'),
        maxSessionsPerToken: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(DEFAULT_MCP_SESSIONS_PER_TOKEN)
          .describe('MCP sessions one token may hold; a new one closes its least recently used'),
      })
      .optional()
      .describe('The MCP endpoint (docs/mcp.md); absent: on, with the defaults'),
  })
  .default({ host: '127.0.0.1', port: 8787, rateLimit: DEFAULT_RATE_LIMIT });

/** `vm.*`, `vm.snapshot.create`, `*`: a glob over action names (`*` matches any characters, dots too). */
export const actionPatternsSchema = z
  .array(
    z
      .string()
      .regex(/^[a-z*][a-z0-9.*_-]*$/, "an action name or glob, e.g. 'vm.*'")
      .refine((p) => ACTION_NAMES.some((a) => actionPatternMatches(p, a)), { message: 'matches no action in the catalog' }),
  )
  .min(1)
  .optional()
  .describe('Limits plan, apply and approve/reject to plans of these actions; absent, any action');

/** The bearer-token channels an approval can be recorded under; `chat` is only the signed endpoints'. */
export const TOKEN_CHANNELS = ['api', 'cli'] as const;
export type TokenChannel = (typeof TOKEN_CHANNELS)[number];
/** Least privilege: a token that names no channels speaks for the REST API only. */
export const DEFAULT_TOKEN_CHANNELS: readonly TokenChannel[] = ['api'];

/**
 * The clients a token may speak for when it approves (`X-Proxmox-Agent-Channel`). A policy rule
 * with `channels: [cli]` is then met only by tokens an administrator allowed to approve as the CLI,
 * not by any caller that sends the header. `chat` cannot be granted: it is recorded only by the
 * signature-verified /v1/channels endpoints.
 */
export const tokenChannelsSchema = z
  .array(z.enum(TOKEN_CHANNELS, { error: 'api or cli (chat is recorded only by the signed /v1/channels endpoints)' }))
  .min(1)
  .refine((list) => new Set(list).size === list.length, 'each channel once')
  .optional()
  .describe("Channels the token may approve through (X-Proxmox-Agent-Channel); absent: ['api'] only");

export const DEFAULT_AUDIT_FILE = '.data/audit/audit.jsonl';

export const auditConfigSchema = z
  .strictObject({
    file: z.string().min(1).optional().describe('JSONL log (one writer process); the default store'),
    postgres: z
      .strictObject({ url: secretRef.describe('postgres:// connection string (holds a password: a secret)') })
      .optional()
      .describe('Shared store for several workers'),
    signing: z
      .strictObject({
        privateKey: secretRef.describe('Ed25519 private key, PKCS#8 PEM (`proxmox-agent audit keygen`)'),
        checkpointEvery: z.number().int().min(1).max(1_000_000).default(100).describe('Sign the head after this many records'),
        checkpointIntervalSeconds: z.number().int().min(1).max(86_400).default(60).describe('... or this long after an unsigned record'),
      })
      .optional(),
  })
  .refine((a) => !(a.file && a.postgres), 'set audit.file or audit.postgres, not both')
  .transform((a) => ({ ...a, file: a.file ?? DEFAULT_AUDIT_FILE }))
  .default({ file: DEFAULT_AUDIT_FILE });

export type ServerConfig = z.output<typeof serverConfigSchema>;
export type AuditConfigInput = z.output<typeof auditConfigSchema>;
