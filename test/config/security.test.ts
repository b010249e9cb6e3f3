import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openAuditStore } from '../../src/audit/open.js';
import { generateAuditKeyPair } from '../../src/audit/signing.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { createAuthenticator } from '../../src/api/access/auth.js';
import { actionAllowed, actionPatternMatches } from '../../src/domain/action-patterns.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const base = {
  environments: { lab: { tier: 'nonprod', proxmox: { simulator: 'lab' } } },
  tokens: [{ id: 'agent', principal: 'agent:pi', secretSha256: sha('x'), scopes: ['plan'], environments: ['lab'] }],
};
const errorOf = (raw: unknown): string => {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('action patterns', () => {
  it('match names and globs; * spans dots', () => {
    expect(actionPatternMatches('vm.*', 'vm.snapshot.create')).toBe(true);
    expect(actionPatternMatches('vm.snapshot.*', 'vm.start')).toBe(false);
    expect(actionPatternMatches('vm.start', 'vm.start')).toBe(true);
    expect(actionPatternMatches('vm.start', 'vm.startx')).toBe(false);
    expect(actionPatternMatches('vm.s*', 'vmXstart')).toBe(false); // the dot is literal
    expect(actionPatternMatches('*', 'anything.at.all')).toBe(true);
    expect(actionAllowed(undefined, 'vm.delete')).toBe(true);
    expect(actionAllowed(['vm.start'], 'vm.delete')).toBe(false);
  });

  it('are validated in the config: a pattern matching no catalog action is an error', () => {
    const withActions = (actions: unknown) => ({ ...base, tokens: [{ ...base.tokens[0], actions }] });
    expect(parseConfig(withActions(['vm.*'])).tokens[0]!.actions).toEqual(['vm.*']);
    expect(errorOf(withActions(['vm.strat']))).toMatch(/tokens\.0\.actions\.0: matches no action in the catalog/);
    expect(errorOf(withActions(['VM.START']))).toMatch(/tokens\.0\.actions\.0/);
    expect(errorOf(withActions([]))).toMatch(/tokens\.0\.actions/);
    expect(parseConfig(base).tokens[0]!.actions).toBeUndefined();
  });
});

describe('token channels (issue 12, item 9.2)', () => {
  const withChannels = (channels: unknown) => ({ ...base, tokens: [{ ...base.tokens[0], channels }] });

  it('are granted in the config: api and/or cli; absent, the token speaks for api only', () => {
    expect(parseConfig(withChannels(['api', 'cli'])).tokens[0]!.channels).toEqual(['api', 'cli']);
    expect(parseConfig(withChannels(['cli'])).tokens[0]!.channels).toEqual(['cli']);
    expect(parseConfig(base).tokens[0]!.channels).toBeUndefined();
    const auth = createAuthenticator(parseConfig({ ...base, tokens: [{ ...base.tokens[0], secretSha256: sha('agent-secret') }] }).tokens);
    expect(auth('Bearer agent-secret').channels).toEqual(['api']);
  });

  it('cannot grant chat (only the signed /v1/channels endpoints record it), nothing, or a channel twice', () => {
    expect(errorOf(withChannels(['api', 'chat']))).toMatch(/tokens\.0\.channels\.1: api or cli \(chat is recorded only by the signed \/v1\/channels endpoints\)/);
    expect(errorOf(withChannels([]))).toMatch(/tokens\.0\.channels/);
    expect(errorOf(withChannels(['cli', 'cli']))).toMatch(/tokens\.0\.channels: each channel once/);
    expect(errorOf(withChannels('cli'))).toMatch(/tokens\.0\.channels/);
  });

  it('are kept by the demo config: the approvers may use the CLI, the agent only the API', () => {
    const { config } = loadConfig({});
    const channels = Object.fromEntries(config.tokens.map((t) => [t.id, t.channels ?? ['api']]));
    expect(channels).toEqual({ 'demo-agent': ['api'], 'demo-approver-1': ['api', 'cli'], 'demo-approver-2': ['api', 'cli'], 'demo-admin': ['api'] });
  });
});

describe('server options', () => {
  it('defaults to loopback with a rate limit, no TLS and no CORS', () => {
    const { server } = parseConfig(base);
    expect(server).toEqual({ host: '127.0.0.1', port: 8787, rateLimit: { requestsPerSecond: 50, burst: 200 } });
  });

  it('accepts TLS files, a CORS allow-list of origins, and rateLimit: false', () => {
    const { server } = parseConfig({
      ...base,
      server: { host: '0.0.0.0', port: 8443, tls: { certFile: 'c.pem', keyFile: 'k.pem' }, cors: { origins: ['https://console.example'] }, rateLimit: false },
    });
    expect(server).toMatchObject({ tls: { certFile: 'c.pem', keyFile: 'k.pem' }, cors: { origins: ['https://console.example'] }, rateLimit: false });
  });

  it('refuses CORS entries that are not bare origins, and unknown keys', () => {
    expect(errorOf({ ...base, server: { cors: { origins: ['https://console.example/app'] } } })).toMatch(/server\.cors\.origins\.0/);
    expect(errorOf({ ...base, server: { cors: { origins: ['*'] } } })).toMatch(/server\.cors\.origins\.0/);
    expect(errorOf({ ...base, server: { rateLimit: { requestsPerSecond: 0, burst: 1 } } })).toMatch(/server\.rateLimit/);
    expect(errorOf({ ...base, server: { tls: { certFile: 'c.pem' } } })).toMatch(/server\.tls\.keyFile/);
  });
});

describe('audit options', () => {
  it('take a file or PostgreSQL (not both), and an optional signing key', () => {
    expect(parseConfig(base).audit).toEqual({ file: '.data/audit/audit.jsonl' });
    expect(parseConfig({ ...base, audit: { postgres: { url: { env: 'AUDIT_PG_URL' } } } }).audit).toMatchObject({ postgres: { url: { env: 'AUDIT_PG_URL' } } });
    expect(errorOf({ ...base, audit: { file: 'a.jsonl', postgres: { url: { env: 'X' } } } })).toMatch(/audit.*not both/);
    expect(errorOf({ ...base, audit: { postgres: { url: 'postgres://u:p@h/db' } } })).toMatch(/audit\.postgres\.url/);
    const signed = parseConfig({ ...base, audit: { file: 'a.jsonl', signing: { privateKey: { file: 'k.pem' } } } }).audit;
    expect(signed.signing).toEqual({ privateKey: { file: 'k.pem' }, checkpointEvery: 100, checkpointIntervalSeconds: 60 });
  });

  it('opens a signed file store from {env} or {file} keys; a bad key stops the service naming the field, not the value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-auditcfg-'));
    const { privateKeyPem, publicKeyPem } = generateAuditKeyPair();
    // Newlines escaped as \n, the way a PEM often ends up in an environment variable.
    const env = { AUDIT_KEY: privateKeyPem.replaceAll('\n', '\\n') };
    const store = await openAuditStore({ file: join(dir, 'a.jsonl'), signing: { privateKey: { env: 'AUDIT_KEY' }, checkpointEvery: 1, checkpointIntervalSeconds: 60 } }, { env });
    expect(store.publicKeyPem).toBe(publicKeyPem);
    await store.append({ eventId: 'p/1/e', planId: 'p', event: 'plan.created', requestHash: `sha256:${'a'.repeat(64)}` });
    expect((await store.checkpoints()).length).toBe(1);
    await store.close();

    writeFileSync(join(dir, 'bad.pem'), 'not-a-key-SECRETVALUE');
    const err = await openAuditStore({ file: join(dir, 'b.jsonl'), signing: { privateKey: { file: join(dir, 'bad.pem') }, checkpointEvery: 1, checkpointIntervalSeconds: 60 } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^audit\.signing\.privateKey: the audit signing key is not a PEM private key$/);
    expect((err as Error).message).not.toContain('SECRETVALUE');
  });
});
