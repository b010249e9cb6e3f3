import { z } from 'zod';
import { policySchema, type PolicyConfig } from '../policy/schema.js';
import { environmentName } from '../domain/request.js';
import { budgetsSchema } from '../budgets/schema.js';
import { actionPatternsSchema, auditConfigSchema, serverConfigSchema, tokenChannelsSchema } from './security.js';
import { CHAT_CHANNELS, NOTIFICATION_FORMATS, type ChannelsConfigShape } from '../channels/registry.js';

export const SCOPES = ['plan', 'apply', 'approve', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Secrets never live in the config file itself: it names where to read them. */
const secretRef = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

const proxmoxEndpoint = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).describe('Base URL of pveproxy, e.g. https://pve1.example.com:8006'),
  tokenId: z
    .string()
    .regex(/^[^\s@!]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/, "an API token id like 'user@realm!name'"),
  tokenSecret: secretRef,
  tls: z
    .strictObject({
      caFile: z.string().min(1).optional(),
      fingerprintSha256: z
        .string()
        .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'a SHA-256 fingerprint, 32 hex bytes')
        .optional(),
    })
    .refine((t) => !(t.caFile && t.fingerprintSha256), 'set caFile or fingerprintSha256, not both')
    .optional(),
});

/** Demo mode: the service starts the project's Proxmox simulator seeded with this demo cluster. */
const simulatedEndpoint = z.strictObject({ simulator: z.enum(['lab', 'prod']) });

export const environmentSchema = z.strictObject({
  tier: z.enum(['nonprod', 'prod']).describe('Selects the base risk column of the action catalog'),
  description: z.string().optional(),
  proxmox: z.union([proxmoxEndpoint, simulatedEndpoint]),
  maxActivitiesPerSecond: z
    .number()
    .positive()
    .max(1000)
    .default(5)
    .describe("Server-side rate limit of this environment's Proxmox-calling activities (its task queue), across all workers"),
});

/**
 * The worker: its HTTP server (`npm run worker`: /metrics, /healthz, /readyz) and its tuning
 * (docs/operations.md, "Scaling workers"). Unset tuning fields keep the Temporal SDK's defaults.
 */
export const workerConfigSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe("Bind address of the worker process's HTTP server"),
    port: z.number().int().min(0).max(65535).default(9464).describe("Port of the worker process's HTTP server (WORKER_PORT overrides)"),
    shutdownGraceSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(30)
      .describe('On SIGTERM, how long in-flight activities may run on before they are cancelled (a cancelled Proxmox wait resumes elsewhere)'),
    maxConcurrentActivityTaskExecutions: z.number().int().positive().optional(),
    maxConcurrentWorkflowTaskExecutions: z.number().int().min(2).optional(),
    maxConcurrentLocalActivityExecutions: z.number().int().positive().optional(),
    maxCachedWorkflows: z.number().int().min(0).optional(),
    sdkMetricsAddress: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'host:port')
      .optional()
      .describe("Where the Temporal SDK serves its own Prometheus metrics; default a free loopback port, appended to this process's /metrics"),
  })
  .default({ host: '127.0.0.1', port: 9464, shutdownGraceSeconds: 30 });

export const apiTokenSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
  principal: z.string().min(1).describe('Who acts: recorded on every plan, approval and audit record'),
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/, 'hex SHA-256 of the token secret (never the secret itself)'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  environments: z.array(z.union([z.literal('*'), environmentName])).min(1),
  actions: actionPatternsSchema,
  channels: tokenChannelsSchema,
  roles: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/)).default([]).describe('Approver roles policy rules may ask for'),
  expiresAt: z.iso
    .datetime({ offset: true })
    .optional()
    .describe('From this instant on the token is refused (401); `tokens create --expires-in 90d` sets it. Absent: no expiry'),
});

const roleName = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/);

/** Who a chat user or bot user is, for approvals: the principal they approve as, like a token's. */
const approverIdentitySchema = z.strictObject({
  principal: z.string().min(1).describe('The identity that approves, e.g. human:alice; counts once across all channels'),
  roles: z.array(roleName).default([]),
  environments: z.array(z.union([z.literal('*'), environmentName])).min(1).default(['*']),
});

/**
 * Approvals from chat (docs/approvals.md): one key per channel of the registry (src/channels/registry.ts),
 * each with the schema its channel declares.
 */
export const channelsSchema = z.strictObject(
  Object.fromEntries(CHAT_CHANNELS.map((c) => [c.key, c.configSchema({ secretRef, approverIdentity: approverIdentitySchema })])),
) as unknown as z.ZodType<ChannelsConfigShape, unknown>;

/** Where approval requests are posted (the notifyApprovers activity). */
export const notificationsSchema = z.strictObject({
  webhooks: z
    .array(
      z.strictObject({
        name: z.string().min(1).optional().describe('Names the target in logs and errors (never the URL: it may be a secret)'),
        url: z.url({ protocol: /^https?$/ }),
        secret: secretRef.optional().describe('Signs each POST with X-PA-Timestamp and X-PA-Signature'),
        format: z.enum(NOTIFICATION_FORMATS).describe('How the request and its outcome are rendered: a channel\'s format (src/channels/registry.ts)'),
      }),
    )
    .default([]),
  apiBaseUrl: z.url({ protocol: /^https?$/ }).optional().describe('Public base URL of this API, for links in notifications'),
});

export const configSchema = z
  .strictObject({
    server: serverConfigSchema,
    temporal: z
      .strictObject({
        namespace: z.string().default('default'),
        taskQueue: z.string().default('proxmox-agent'),
      })
      .default({ namespace: 'default', taskQueue: 'proxmox-agent' }),
    environments: z.record(environmentName, environmentSchema).refine((e) => Object.keys(e).length > 0, 'at least one environment'),
    worker: workerConfigSchema,
    tokens: z.array(apiTokenSchema).min(1),
    /** Inline, or `{file: path}` naming a YAML policy file (relative to this config file). */
    policy: z.union([policySchema, z.strictObject({ file: z.string().min(1) })]).default(policySchema.parse({})),
    audit: auditConfigSchema,
    channels: channelsSchema.default({ webhooks: [] }),
    notifications: notificationsSchema.default({ webhooks: [] }),
    /** Per-principal budgets and blast radius (docs/policy.md, "Budgets"). */
    budgets: budgetsSchema,
  })
  .superRefine((config, ctx) => {
    const envs = new Set(Object.keys(config.environments));
    const ids = new Set<string>();
    const hashes = new Set<string>();
    config.tokens.forEach((token, i) => {
      if (ids.has(token.id)) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'id'], message: `duplicate token id '${token.id}'` });
      if (hashes.has(token.secretSha256))
        ctx.addIssue({ code: 'custom', path: ['tokens', i, 'secretSha256'], message: 'two tokens share one secret' });
      ids.add(token.id);
      hashes.add(token.secretSha256);
      token.environments.forEach((env, j) => {
        if (env !== '*' && !envs.has(env))
          ctx.addIssue({ code: 'custom', path: ['tokens', i, 'environments', j], message: `unknown environment '${env}'` });
      });
    });
    // A budget for a principal no token acts as would limit nothing: most likely a typo.
    const principals = new Set(config.tokens.map((t) => t.principal));
    for (const principal of Object.keys(config.budgets)) {
      if (!principals.has(principal)) ctx.addIssue({ code: 'custom', path: ['budgets', principal], message: `no token acts as '${principal}'` });
    }
  })
  .superRefine((config, ctx) => {
    const envs = new Set(Object.keys(config.environments));
    const checkEnvs = (identity: { environments: string[] }, path: (string | number)[]) =>
      identity.environments.forEach((env, j) => {
        if (env !== '*' && !envs.has(env)) ctx.addIssue({ code: 'custom', path: [...path, 'environments', j], message: `unknown environment '${env}'` });
      });
    for (const channel of CHAT_CHANNELS)
      for (const { path, identity } of channel.identities(config.channels[channel.key] as never)) checkEnvs(identity, path);
  });

/** The config as written: the policy may still be a reference to its file. */
export type RawConfig = z.output<typeof configSchema>;
/** The config as the service uses it: the policy loaded and checked against the rest. */
export type Config = Omit<RawConfig, 'policy'> & { policy: PolicyConfig };
export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type WorkerConfig = z.output<typeof workerConfigSchema>;
export type ApiTokenConfig = z.output<typeof apiTokenSchema>;
export type ProxmoxEndpointConfig = z.output<typeof proxmoxEndpoint>;
export type SecretRef = z.output<typeof secretRef>;
export type ChannelsConfig = ChannelsConfigShape;
export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type ApproverIdentity = z.output<typeof approverIdentitySchema>;
