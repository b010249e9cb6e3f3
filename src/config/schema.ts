import { z } from 'zod';
import { policySchema, type PolicyConfig } from '../policy/schema.js';
import { environmentName } from '../domain/request.js';

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
});

export const apiTokenSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
  principal: z.string().min(1).describe('Who acts: recorded on every plan, approval and audit record'),
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/, 'hex SHA-256 of the token secret (never the secret itself)'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  environments: z.array(z.union([z.literal('*'), environmentName])).min(1),
  roles: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/)).default([]).describe('Approver roles policy rules may ask for'),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8787),
      })
      .default({ host: '127.0.0.1', port: 8787 }),
    temporal: z
      .strictObject({
        namespace: z.string().default('default'),
        taskQueue: z.string().default('proxmox-agent'),
      })
      .default({ namespace: 'default', taskQueue: 'proxmox-agent' }),
    environments: z.record(environmentName, environmentSchema).refine((e) => Object.keys(e).length > 0, 'at least one environment'),
    tokens: z.array(apiTokenSchema).min(1),
    /** Inline, or `{file: path}` naming a YAML policy file (relative to this config file). */
    policy: z.union([policySchema, z.strictObject({ file: z.string().min(1) })]).default(policySchema.parse({})),
    audit: z.strictObject({ file: z.string().min(1) }).default({ file: '.data/audit/audit.jsonl' }),
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
  });

/** The config as written: the policy may still be a reference to its file. */
export type RawConfig = z.output<typeof configSchema>;
/** The config as the service uses it: the policy loaded and checked against the rest. */
export type Config = Omit<RawConfig, 'policy'> & { policy: PolicyConfig };
export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type ApiTokenConfig = z.output<typeof apiTokenSchema>;
export type ProxmoxEndpointConfig = z.output<typeof proxmoxEndpoint>;
export type SecretRef = z.output<typeof secretRef>;
