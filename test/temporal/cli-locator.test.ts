import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  compareVersions,
  ensureTemporalCli,
  findTemporalCli,
  installTemporalCli,
  parseTemporalCliVersion,
  projectLocalCliPath,
  REPO_ROOT,
  TEMPORAL_CLI_GO_PACKAGE,
  TEMPORAL_CLI_VERSION,
  TemporalCliError,
} from '../../src/temporal/cli-locator.js';

const GOOD_VERSION = 'temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)';

let root: string;

function writeExe(path: string, body: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function fakeTemporal(path: string, versionLine = GOOD_VERSION): string {
  return writeExe(path, `echo "${versionLine}"`);
}

/**
 * A fake `go`: `go env GOVERSION` prints $FAKE_GO_VERSION; `go install` records its args and GOBIN, prints
 * some "package" lines and either fails or drops a fake temporal binary into $GOBIN.
 * Uses only shell built-ins plus absolute paths (PATH holds only our temp dirs).
 */
function fakeGo(dir: string, mode: 'ok' | 'fail', goVersion = 'go1.26.0'): string {
  const record = join(dir, 'go-calls.log');
  return writeExe(
    join(dir, 'go'),
    [
      `if [ "$1" = "env" ]; then echo "${goVersion}"; exit 0; fi`,
      `echo "args=$* GOBIN=$GOBIN" >> "${record}"`,
      'echo "github.com/some/dep"',
      'echo "go.temporal.io/server/common" 1>&2',
      mode === 'fail'
        ? 'echo "go: github.com/temporalio/cli@v1.5.1 requires go >= 1.25.0 (running go 1.22.2; GOTOOLCHAIN=local)" 1>&2; exit 1'
        : `printf '#!/bin/sh\\necho "${GOOD_VERSION}"\\n' > "$GOBIN/temporal"; /bin/chmod 755 "$GOBIN/temporal"; exit 0`,
    ].join('\n'),
  );
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cli-locator-test-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('findTemporalCli', () => {
  it('prefers TEMPORAL_CLI_PATH, then PATH, then <repo>/.temporal/bin/temporal', () => {
    const repo = join(root, 'repo');
    const explicit = fakeTemporal(join(root, 'explicit', 'my-temporal'));
    const onPath = fakeTemporal(join(root, 'pathdir', 'temporal'));
    const local = fakeTemporal(projectLocalCliPath(repo));
    const PATH = `${join(root, 'empty')}:${join(root, 'pathdir')}`;

    expect(findTemporalCli({ env: { TEMPORAL_CLI_PATH: explicit, PATH }, repoRoot: repo })).toBe(explicit);
    expect(findTemporalCli({ env: { PATH }, repoRoot: repo })).toBe(onPath);
    expect(findTemporalCli({ env: { PATH: join(root, 'empty') }, repoRoot: repo })).toBe(local);
    expect(findTemporalCli({ env: { TEMPORAL_CLI_PATH: '', PATH: join(root, 'empty') }, repoRoot: repo })).toBe(local);
  });

  it('returns undefined when nothing is found', () => {
    expect(findTemporalCli({ env: { PATH: join(root, 'empty') }, repoRoot: join(root, 'repo') })).toBeUndefined();
  });

  it('skips non-executable files on PATH', () => {
    mkdirSync(join(root, 'pathdir'));
    writeFileSync(join(root, 'pathdir', 'temporal'), 'not executable');
    expect(findTemporalCli({ env: { PATH: join(root, 'pathdir') }, repoRoot: join(root, 'repo') })).toBeUndefined();
  });

  it('throws a clear error when TEMPORAL_CLI_PATH does not exist (no silent fallback)', () => {
    const onPath = fakeTemporal(join(root, 'pathdir', 'temporal'));
    expect(onPath).toBeTruthy();
    const call = () => findTemporalCli({ env: { TEMPORAL_CLI_PATH: join(root, 'nope'), PATH: join(root, 'pathdir') }, repoRoot: root });
    expect(call).toThrow(TemporalCliError);
    expect(call).toThrow(/TEMPORAL_CLI_PATH=.*nope does not exist/);
  });

  it('throws a clear error when TEMPORAL_CLI_PATH is not executable', () => {
    const file = join(root, 'temporal');
    writeFileSync(file, 'x');
    expect(() => findTemporalCli({ env: { TEMPORAL_CLI_PATH: file }, repoRoot: root })).toThrow(/TEMPORAL_CLI_PATH=.* is not an executable file/);
    expect(() => findTemporalCli({ env: { TEMPORAL_CLI_PATH: root }, repoRoot: root })).toThrow(/not an executable file/);
  });

  it('resolves the repo root from its own location, not the cwd', () => {
    expect(existsSync(join(REPO_ROOT, 'package.json'))).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'src', 'temporal', 'cli-locator.ts'))).toBe(true);
    expect(projectLocalCliPath()).toBe(join(REPO_ROOT, '.temporal', 'bin', 'temporal'));
  });
});

describe('installTemporalCli / ensureTemporalCli', () => {
  it('fails with install instructions when nothing is found and go is absent', async () => {
    const env = { PATH: join(root, 'empty') }; // no temporal, no go
    const err = await ensureTemporalCli({ env, repoRoot: join(root, 'repo') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporalCliError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/Go is not installed/);
    expect(msg).toMatch(/Go >= 1\.25/);
    expect(msg).toContain('https://go.dev/dl');
    expect(msg).toContain('golang-go');
    expect(msg).toContain('TEMPORAL_CLI_PATH');
    expect(msg).toContain('TEMPORAL_ADDRESS');
    expect(msg).toContain(`${TEMPORAL_CLI_GO_PACKAGE}@${TEMPORAL_CLI_VERSION}`);
  });

  it('includes the tail of go output when the build fails', async () => {
    const bin = join(root, 'bin');
    fakeGo(bin, 'fail', 'go1.22.2');
    const logs: string[] = [];
    const err = await installTemporalCli({ env: { PATH: bin }, repoRoot: join(root, 'repo'), log: (m) => logs.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemporalCliError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/exited with 1/);
    expect(msg).toContain('requires go >= 1.25.0 (running go 1.22.2');
    expect(msg).toContain('go.temporal.io/server/common');
    expect(msg).toContain('TEMPORAL_CLI_PATH');
    expect(logs.join('\n')).toMatch(/Go 1\.22\.2; v1\.5\.1 needs Go >= 1\.25/);
  });

  it('runs go install with GOBIN=<repo>/.temporal/bin, then uses the cached build', async () => {
    const bin = join(root, 'bin');
    fakeGo(bin, 'ok');
    const repo = join(root, 'repo');
    const env = { PATH: bin };
    const path = await installTemporalCli({ env, repoRoot: repo });
    expect(path).toBe(projectLocalCliPath(repo));
    const calls = readFileSync(join(bin, 'go-calls.log'), 'utf8').trim().split('\n');
    expect(calls).toEqual([`args=install -v ${TEMPORAL_CLI_GO_PACKAGE}@${TEMPORAL_CLI_VERSION} GOBIN=${join(repo, '.temporal', 'bin')}`]);

    // cached: neither install nor ensure runs go again
    expect(await installTemporalCli({ env, repoRoot: repo })).toBe(path);
    expect(await ensureTemporalCli({ env, repoRoot: repo })).toBe(path);
    expect(readFileSync(join(bin, 'go-calls.log'), 'utf8').trim().split('\n')).toHaveLength(1);

    // force rebuilds
    await installTemporalCli({ env, repoRoot: repo, force: true });
    expect(readFileSync(join(bin, 'go-calls.log'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('rebuilds a project-local binary that reports another server version', async () => {
    const bin = join(root, 'bin');
    fakeGo(bin, 'ok');
    const repo = join(root, 'repo');
    fakeTemporal(projectLocalCliPath(repo), 'temporal version 1.1.0 (Server 1.25.0, UI 2.30.0)');
    const logs: string[] = [];
    await ensureTemporalCli({ env: { PATH: bin }, repoRoot: repo, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toMatch(/Rebuilding .* want Server 1\.29\.1/);
    expect(readFileSync(join(bin, 'go-calls.log'), 'utf8')).toContain('install');
  });

  it('uses TEMPORAL_CLI_PATH / PATH binaries as they are and never builds', async () => {
    const bin = join(root, 'bin');
    fakeGo(bin, 'ok');
    const explicit = fakeTemporal(join(root, 'x', 'temporal'), 'temporal version 1.0.0 (Server 1.24.0, UI 2.2.0)');
    const logs: string[] = [];
    expect(await ensureTemporalCli({ env: { PATH: bin, TEMPORAL_CLI_PATH: explicit }, repoRoot: join(root, 'repo'), log: (m) => logs.push(m) })).toBe(explicit);
    expect(logs.join('\n')).toMatch(/Temporal CLI 1\.0\.0; >= 1\.2\.0 is expected/);
    expect(existsSync(join(bin, 'go-calls.log'))).toBe(false);
  });
});

describe('version helpers', () => {
  it('parses `temporal --version`', () => {
    expect(parseTemporalCliVersion(`${GOOD_VERSION}\n`)).toEqual({ raw: GOOD_VERSION, cli: '0.0.0-DEV', server: '1.29.1', ui: '2.42.1' });
    expect(parseTemporalCliVersion('temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)')?.cli).toBe('1.5.1');
    expect(parseTemporalCliVersion('something else')).toBeUndefined();
  });

  it('compares versions numerically', () => {
    expect(compareVersions('1.26.8', '1.25')).toBe(1);
    expect(compareVersions('1.25', '1.25.0')).toBe(0);
    expect(compareVersions('1.9', '1.10')).toBe(-1);
  });
});
