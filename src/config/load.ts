import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config, type SecretRef } from './schema.js';
import { policySchema, type PolicyConfig } from '../policy/schema.js';
import { checkPolicyAgainstConfig } from './consistency.js';

export const DEMO_CONFIG_PATH = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url));

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadedConfig {
  config: Config;
  path: string;
  demo: boolean;
}

/**
 * The one place that reads PROXMOX_AGENT_CONFIG, PORT and WORKER_PORT. Fails fast with a message naming the bad
 * field, so a typo never boots a service with a silently different policy.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = env.PROXMOX_AGENT_CONFIG ? resolve(env.PROXMOX_AGENT_CONFIG) : DEMO_CONFIG_PATH;
  const config = parseConfigFile(path);
  if (env.PORT !== undefined) config.server.port = parsePort('PORT', env.PORT);
  if (env.WORKER_PORT !== undefined) config.worker.port = parsePort('WORKER_PORT', env.WORKER_PORT);
  return { config, path, demo: path === DEMO_CONFIG_PATH };
}

function parsePort(name: string, value: string): number {
  const port = z.coerce.number().int().min(0).max(65535).safeParse(value);
  if (!port.success) throw new ConfigError(`${name}: must be a TCP port number, got '${value}'`);
  return port.data;
}

export function parseConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid YAML: ${(err as Error).message}`);
  }
  const config = parseConfig(raw, path);
  config.audit.file = resolveFrom(path, config.audit.file);
  return config;
}

/**
 * Validate a config object, load its policy file if it names one, and check the policy against the
 * rest (environments, actions, roles). Any problem stops the service: a policy that cannot be read
 * or understood never falls back to "allow".
 */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid configuration in ${source}:\n${formatIssues(result.error)}`);
  const { policy: policyRef, ...rest } = result.data;
  const policy = 'file' in policyRef ? loadPolicyFile(resolveFrom(source, policyRef.file)) : policyRef;
  const config: Config = { ...rest, policy };
  const problems = checkPolicyAgainstConfig(config);
  if (problems.length > 0) {
    throw new ConfigError(`invalid policy in ${source}:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
  }
  return config;
}

export function loadPolicyFile(path: string): PolicyConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read policy file ${path}: ${(err as Error).message}`);
  }
  const result = policySchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid policy file ${path}:\n${formatIssues(result.error, 'policy')}`);
  return result.data;
}

function formatIssues(error: z.ZodError, prefix?: string): string {
  return error.issues.map((i) => `  - ${[prefix, ...i.path].filter((p) => p !== undefined).join('.') || '(root)'}: ${i.message}`).join('\n');
}

/** Read a secret from where the config points; the error names the field, never the value. */
export function resolveSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env, baseFile?: string): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (!value) throw new ConfigError(`${field}: environment variable ${ref.env} is not set`);
    return value.trim();
  }
  const file = baseFile ? resolveFrom(baseFile, ref.file) : ref.file;
  try {
    const value = readFileSync(file, 'utf8').trim();
    if (!value) throw new Error('file is empty');
    return value;
  } catch (err) {
    throw new ConfigError(`${field}: cannot read secret file ${file}: ${(err as Error).message}`);
  }
}

function resolveFrom(configPath: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dirname(configPath), file);
}
