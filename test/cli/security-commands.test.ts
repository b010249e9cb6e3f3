import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { createCheckpointSigner, parsePublicKey, checkpointSignatureProblem } from '../../src/audit/signing.js';
import { runCli } from '../../src/cli/main.js';
import { apiTokenSchema } from '../../src/config/schema.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => err.push(a.join(' '));
  try {
    return { code: await runCli(['node', 'proxmox-agent', ...args]), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
    process.exitCode = 0;
  }
}

afterEach(() => {
  process.exitCode = 0;
});

describe('proxmox-agent tokens create', () => {
  it('prints a high-entropy secret once and a config entry holding only its SHA-256', async () => {
    const { code, out } = await cli('tokens', 'create', '--id', 'pi-agent', '--principal', 'agent:pi', '--scopes', 'plan,apply,read', '--environments', 'lab,prod', '--actions', 'vm.*');
    expect(code).toBe(0);
    const secret = /^\s+(pa_[A-Za-z0-9_-]{43})$/m.exec(out)?.[1];
    expect(secret).toBeDefined();
    expect(out.split(secret!).length).toBe(2); // printed exactly once
    const yaml = out.slice(out.indexOf('  - id:'));
    const [entry] = parseYaml(yaml) as unknown[];
    expect(apiTokenSchema.parse(entry)).toMatchObject({
      id: 'pi-agent',
      principal: 'agent:pi',
      scopes: ['plan', 'apply', 'read'],
      environments: ['lab', 'prod'],
      actions: ['vm.*'],
      secretSha256: createHash('sha256').update(secret!).digest('hex'),
    });
    expect(yaml).not.toContain(secret);
  });

  it('makes a different secret each time', async () => {
    const a = await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'read', '--environments', '*', '--json');
    const b = await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'read', '--environments', '*', '--json');
    expect(JSON.parse(a.out).secret).not.toBe(JSON.parse(b.out).secret);
  });

  it('--expires-in sets expiresAt that far ahead; no flag, no expiry', async () => {
    const before = Date.now();
    const { code, out } = await cli('tokens', 'create', '--id', 'temp', '--principal', 'human:contractor', '--scopes', 'read', '--environments', 'lab', '--expires-in', '90d', '--json');
    expect(code).toBe(0);
    const entry = apiTokenSchema.parse(JSON.parse(out).token);
    const ahead = Date.parse(entry.expiresAt!) - before;
    expect(ahead).toBeGreaterThan(90 * 86_400_000 - 2_000);
    expect(ahead).toBeLessThan(90 * 86_400_000 + 60_000);
    const yaml = await cli('tokens', 'create', '--id', 'temp', '--principal', 'p', '--scopes', 'read', '--environments', 'lab', '--expires-in', '12h');
    expect((parseYaml(yaml.out.slice(yaml.out.indexOf('  - id:'))) as { expiresAt: string }[])[0]!.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const none = await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'read', '--environments', '*', '--json');
    expect(JSON.parse(none.out).token.expiresAt).toBeUndefined();
  });

  it('refuses a duration it cannot read, naming the option', async () => {
    for (const bad of ['90', '1y', '0d', '-5d', 'soon', '10000w'])
      expect(await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'read', '--environments', '*', '--expires-in', bad), bad).toMatchObject({ code: 1, err: expect.stringMatching(/--expires-in/) });
  });

  it('--channels grants the channels the token may approve through; without it, none is written (api only)', async () => {
    const { code, out } = await cli('tokens', 'create', '--id', 'alice', '--principal', 'human:alice', '--scopes', 'approve,read', '--environments', '*', '--channels', 'api,cli', '--json');
    expect(code).toBe(0);
    expect(apiTokenSchema.parse(JSON.parse(out).token).channels).toEqual(['api', 'cli']);
    const none = await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'approve', '--environments', '*', '--json');
    expect(JSON.parse(none.out).token.channels).toBeUndefined();
    expect(await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'approve', '--environments', '*', '--channels', 'chat')).toMatchObject({
      code: 1,
      err: expect.stringMatching(/--channels: api or cli/),
    });
  });

  it('refuses an unknown scope or a bad action pattern, naming the option', async () => {
    expect(await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'plan,root', '--environments', 'lab')).toMatchObject({ code: 1, err: expect.stringMatching(/--scopes/) });
    expect(await cli('tokens', 'create', '--id', 'a', '--principal', 'p', '--scopes', 'plan', '--environments', 'lab', '--actions', 'vm.nuke')).toMatchObject({ code: 1, err: expect.stringMatching(/--actions: matches no action/) });
  });
});

describe('proxmox-agent audit keygen', () => {
  it('prints an Ed25519 key pair that signs and verifies', async () => {
    const { code, out } = await cli('audit', 'keygen');
    expect(code).toBe(0);
    const priv = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(out)![0];
    const pub = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----\n/.exec(out)![0];
    const checkpoint = createCheckpointSigner(priv).sign({ seq: 1, hash: `sha256:${'0'.repeat(64)}` });
    expect(checkpointSignatureProblem(checkpoint, parsePublicKey(pub))).toBeUndefined();
  });

  it('writes the private key with mode 0600 and refuses to overwrite it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-keygen-'));
    expect((await cli('audit', 'keygen', '--out-dir', dir)).code).toBe(0);
    expect(statSync(join(dir, 'audit-signing.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'audit-signing.pub'), 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    expect((await cli('audit', 'keygen', '--out-dir', dir))).toMatchObject({ code: 1, err: expect.stringMatching(/refusing to overwrite/) });
  });
});
