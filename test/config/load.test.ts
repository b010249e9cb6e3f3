import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEMO_CONFIG_PATH, loadConfig, parseConfig, resolveSecret } from '../../src/config/load.js';
import { createHash } from 'node:crypto';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const minimal = {
  environments: { lab: { tier: 'nonprod', proxmox: { url: 'https://pve.example:8006', tokenId: 'agent@pve!ci', tokenSecret: { env: 'PVE_SECRET' } } } },
  tokens: [{ id: 'agent', principal: 'agent:pi', secretSha256: sha('x'), scopes: ['plan'], environments: ['lab'] }],
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('loads the committed demo config when PROXMOX_AGENT_CONFIG is unset', () => {
    const { config, demo, path } = loadConfig({});
    expect(demo).toBe(true);
    expect(path).toBe(DEMO_CONFIG_PATH);
    expect(Object.keys(config.environments)).toEqual(['lab', 'prod']);
    expect(config.tokens.map((t) => t.id)).toEqual(['demo-agent', 'demo-approver-1', 'demo-approver-2', 'demo-admin']);
    // The README documents these tokens; their hashes must match.
    expect(config.tokens.map((t) => t.secretSha256)).toEqual(['demo-agent-token', 'demo-approver-1-token', 'demo-approver-2-token', 'demo-admin-token'].map(sha));
    expect(config.tokens[0]!.scopes).toEqual(['plan', 'apply', 'read']);
    expect(config.tokens[1]!.scopes).toEqual(['approve', 'read']);
  });

  it('applies defaults', () => {
    const c = parseConfig(minimal);
    expect(c.server).toEqual({ host: '127.0.0.1', port: 8787, rateLimit: { requestsPerSecond: 50, burst: 200 } });
    expect(c.audit).toEqual({ file: '.data/audit/audit.jsonl' });
    expect(c.policy.approvalsByRisk).toEqual({ low: 0, medium: 0, high: 1, critical: 2 });
  });

  it('names the bad field', () => {
    expect(errorOf(() => parseConfig({ ...minimal, environments: { lab: { ...minimal.environments.lab, tier: 'staging' } } }))).toMatch(/environments\.lab\.tier/);
    expect(errorOf(() => parseConfig({ ...minimal, tokens: [{ ...minimal.tokens[0], secretSha256: 'plaintext-secret' }] }))).toMatch(/tokens\.0\.secretSha256/);
    expect(errorOf(() => parseConfig({ ...minimal, tokens: [{ ...minimal.tokens[0], environments: ['prod'] }] }))).toMatch(/tokens\.0\.environments\.0: unknown environment 'prod'/);
    expect(errorOf(() => parseConfig({ ...minimal, surprise: true }))).toMatch(/surprise|Unrecognized/);
    expect(errorOf(() => parseConfig({ ...minimal, policy: { rules: [{ id: 'x', match: { actions: [] }, risk: 'high' }] } }))).toMatch(/policy\.rules\.0\.match\.actions/);
  });

  it('fails fast on unreadable files and bad PORT', () => {
    expect(errorOf(() => loadConfig({ PROXMOX_AGENT_CONFIG: '/nonexistent.yaml' }))).toMatch(/cannot read config file/);
    const dir = mkdtempSync(join(tmpdir(), 'pa-config-'));
    writeFileSync(join(dir, 'bad.yaml'), 'environments: [unclosed');
    expect(errorOf(() => loadConfig({ PROXMOX_AGENT_CONFIG: join(dir, 'bad.yaml') }))).toMatch(/not valid YAML/);
    expect(errorOf(() => loadConfig({ PORT: 'eighty' }))).toMatch(/PORT/);
    expect(loadConfig({ PORT: '9999' }).config.server.port).toBe(9999);
  });

  it('reads secrets from env or file and never prints them', () => {
    expect(resolveSecret({ env: 'S' }, 'f', { S: ' s3cret \n' })).toBe('s3cret');
    const message = errorOf(() => resolveSecret({ env: 'MISSING' }, 'environments.lab.proxmox.tokenSecret', {}));
    expect(message).toBe('environments.lab.proxmox.tokenSecret: environment variable MISSING is not set');
    const dir = mkdtempSync(join(tmpdir(), 'pa-secret-'));
    writeFileSync(join(dir, 'token'), 'from-file\n');
    expect(resolveSecret({ file: 'token' }, 'f', {}, join(dir, 'config.yaml'))).toBe('from-file');
  });
});

describe('policy consistency (fail closed at boot)', () => {
  const withRules = (rules: unknown[], extra: object = {}) => ({ ...minimal, policy: { rules }, ...extra });
  it('refuses rules naming unknown actions or environments, and roles nobody holds', () => {
    expect(errorOf(() => parseConfig(withRules([{ id: 'typo', match: { actions: ['vm.strat'] }, decision: 'deny' }])))).toMatch(/'vm.strat' matches no action/);
    expect(errorOf(() => parseConfig(withRules([{ id: 'typo', match: { environments: ['prdo'] }, decision: 'deny' }])))).toMatch(/'prdo' matches no configured environment/);
    expect(errorOf(() => parseConfig(withRules([{ id: 'dba', match: {}, approvals: { count: 1, roles: ['dba'] } }])))).toMatch(/no approver holds role 'dba'/);
  });

  it('accepts a role held by an approver', () => {
    const config = parseConfig({
      ...withRules([{ id: 'dba', match: { actions: ['vm.*'] }, approvals: { count: 1, roles: ['dba'] } }]),
      tokens: [...minimal.tokens, { id: 'dora', principal: 'human:dora', secretSha256: sha('d'), scopes: ['approve'], environments: ['*'], roles: ['dba'] }],
    });
    expect(config.policy.rules[0]!.id).toBe('dba');
  });

  it('loads a policy file relative to the config file, and fails on a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-policy-'));
    writeFileSync(join(dir, 'policy.yaml'), 'planTtlSeconds: 600\nrules:\n  - id: no-prod-delete\n    match: { actions: [vm.delete], environments: [lab] }\n    decision: deny\n');
    writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ ...minimal, policy: { file: 'policy.yaml' } }));
    const { config } = loadConfig({ PROXMOX_AGENT_CONFIG: join(dir, 'config.yaml') });
    expect(config.policy.planTtlSeconds).toBe(600);
    expect(config.policy.rules[0]!.decision).toBe('deny');
    writeFileSync(join(dir, 'policy.yaml'), 'rules:\n  - id: x\n    match: {}\n    decision: maybe\n');
    expect(errorOf(() => loadConfig({ PROXMOX_AGENT_CONFIG: join(dir, 'config.yaml') }))).toMatch(/invalid policy file .*policy\.rules\.0\.decision/s);
    writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ ...minimal, policy: { file: 'missing.yaml' } }));
    expect(errorOf(() => loadConfig({ PROXMOX_AGENT_CONFIG: join(dir, 'config.yaml') }))).toMatch(/cannot read policy file/);
  });
});
