/**
 * Finds (or builds) the Temporal CLI binary that provides `temporal server start-dev`.
 *
 * Lookup order (first hit wins):
 *   1. `TEMPORAL_CLI_PATH` — must point at an existing executable, otherwise a clear error is thrown;
 *   2. `temporal` on `PATH`;
 *   3. the project-local build `<repo>/.temporal/bin/temporal` (made by `npm run temporal:install`).
 *
 * No Temporal server ships in any npm/Debian package, and `@temporalio/testing` would download the
 * CLI at run time (impossible offline), so the project builds it from the Go module proxy:
 * `go install github.com/temporalio/cli/cmd/temporal@v1.5.1`. v1.5.1 is the last tag without a `replace`
 * directive in its go.mod (later tags cannot be `go install`ed); it embeds server 1.29.1 + the Web UI +
 * pure-Go SQLite. See docs/temporal-server.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { silentLog, type TemporalLog } from './log.js';

/** Go package installed by `installTemporalCli`. */
export const TEMPORAL_CLI_GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';
/** Pinned tag: the last one that `go install` accepts (see file header). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** The server version embedded in {@link TEMPORAL_CLI_VERSION}; used as the cache key of the local build. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
/** Minimum Go toolchain for building {@link TEMPORAL_CLI_VERSION} (its go.mod says `go 1.25.0`). */
export const MIN_GO_VERSION = '1.25';
/** Oldest Temporal CLI we accept from TEMPORAL_CLI_PATH / PATH (server 1.26.2: Update-with-Start on by default). */
export const MIN_TEMPORAL_CLI_VERSION = '1.2.0';

/** Repository root, resolved from this file's location (never from the cwd). */
export const REPO_ROOT: string = fileURLToPath(new URL('../../', import.meta.url));

export interface LocatorOptions {
  /** Environment to read `TEMPORAL_CLI_PATH` and `PATH` from. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Repository root holding `.temporal/bin`. Default: {@link REPO_ROOT}. */
  repoRoot?: string;
}

export interface InstallOptions extends LocatorOptions {
  log?: TemporalLog;
  /** Rebuild even if a matching binary is already present. */
  force?: boolean;
}

export interface TemporalCliVersion {
  /** Full first line of `temporal --version`, e.g. `temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)`. */
  raw: string;
  /** CLI version (`0.0.0-DEV` for a `go install` build). */
  cli: string | undefined;
  server: string | undefined;
  ui: string | undefined;
}

/** Thrown when no usable Temporal CLI can be found or built. The message says what to install. */
export class TemporalCliError extends Error {
  override readonly name = 'TemporalCliError';
}

/** `<repo>/.temporal/bin` — the `GOBIN` used by {@link installTemporalCli}. */
export function projectLocalBinDir(repoRoot: string = REPO_ROOT): string {
  return join(repoRoot, '.temporal', 'bin');
}

/** `<repo>/.temporal/bin/temporal` */
export function projectLocalCliPath(repoRoot: string = REPO_ROOT): string {
  return join(projectLocalBinDir(repoRoot), 'temporal');
}

/** True for an existing regular file this process may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Searches `PATH` (from `env`) for an executable named `name`, like `command -v`. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Returns the Temporal CLI to use, or `undefined` if there is none.
 * Throws {@link TemporalCliError} if `TEMPORAL_CLI_PATH` is set but unusable (no silent fallback).
 */
export function findTemporalCli(opts: LocatorOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit !== undefined && explicit !== '') {
    if (!existsSync(explicit)) {
      throw new TemporalCliError(`TEMPORAL_CLI_PATH=${explicit} does not exist. Point it at a Temporal CLI binary (>= ${MIN_TEMPORAL_CLI_VERSION}) or unset it.`);
    }
    if (!isExecutableFile(explicit)) {
      throw new TemporalCliError(`TEMPORAL_CLI_PATH=${explicit} is not an executable file (check it is the 'temporal' binary and chmod +x it), or unset it.`);
    }
    return explicit;
  }
  const onPath = findOnPath('temporal', env);
  if (onPath) return onPath;
  const local = projectLocalCliPath(opts.repoRoot);
  if (isExecutableFile(local)) return local;
  return undefined;
}

/** Parses the output of `temporal --version`. */
export function parseTemporalCliVersion(output: string): TemporalCliVersion | undefined {
  const raw = output.split('\n').find((l) => /temporal version/i.test(l))?.trim();
  if (!raw) return undefined;
  return {
    raw,
    cli: /temporal version\s+v?(\S+)/i.exec(raw)?.[1],
    server: /Server\s+v?([0-9][^\s,)]*)/.exec(raw)?.[1],
    ui: /UI\s+v?([0-9][^\s,)]*)/.exec(raw)?.[1],
  };
}

/** Runs `<path> --version`; `undefined` if it does not run or does not look like the Temporal CLI. */
export function readTemporalCliVersion(path: string, env: NodeJS.ProcessEnv = process.env): TemporalCliVersion | undefined {
  const res = spawnSync(path, ['--version'], { env, encoding: 'utf8', timeout: 30_000 });
  if (res.error || res.status !== 0) return undefined;
  return parseTemporalCliVersion(`${res.stdout}\n${res.stderr}`);
}

/** Compares dotted versions numerically (`1.10.0` > `1.9`). Non-numeric parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function installInstructions(): string {
  return [
    'To get a Temporal server for local runs and tests, do ONE of:',
    `  - install Go >= ${MIN_GO_VERSION} (https://go.dev/dl, or Debian's golang-go if \`go version\` reports >= ${MIN_GO_VERSION}) and re-run \`npm run temporal:install\``,
    `    (it runs: GOBIN=<repo>/.temporal/bin go install ${TEMPORAL_CLI_GO_PACKAGE}@${TEMPORAL_CLI_VERSION});`,
    `  - or set TEMPORAL_CLI_PATH to an existing Temporal CLI binary (>= ${MIN_TEMPORAL_CLI_VERSION});`,
    '  - or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TLS/API-key variables as needed) to use an existing Temporal server.',
  ].join('\n');
}

export interface GoInstallResult {
  /** go's exit code (0 on success), or a description of how it failed to run. */
  code: number | string;
  secs: number;
  downloads: number;
  packages: number;
  /** The last 40 lines of go's output. */
  tail: string[];
}

/**
 * `GOBIN=<binDir> go install -v <pkg>` from outside any Go module, logging progress (modules downloaded,
 * packages compiled) every 15 s. Shared by the CLI build and the server/SQL-tool build (server-binaries.ts).
 */
export async function goInstall(opts: {
  go: string;
  goVersion: string | undefined;
  pkg: string;
  binDir: string;
  env: NodeJS.ProcessEnv;
  log: TemporalLog;
  /** What is built, for the log, e.g. "the Temporal CLI". */
  what: string;
  /** How much, for the log, e.g. "~1500 packages". */
  expect: string;
}): Promise<GoInstallResult> {
  const { go, pkg, binDir, env, log } = opts;
  mkdirSync(binDir, { recursive: true });
  log(`Building ${opts.what} with ${go} (Go ${opts.goVersion ?? '?'}): GOBIN=${binDir} go install ${pkg}`);
  log(`This downloads modules from the Go module proxy and compiles ${opts.expect}; expect a few minutes on 2 cores (cached afterwards). Progress every 15 s.`);

  const started = Date.now();
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  let packages = 0;
  let downloads = 0;
  let lastReport = Date.now();

  const code = await new Promise<number | string>((resolve) => {
    const child = spawn(go, ['install', '-v', pkg], {
      cwd: binDir, // outside any Go module, so `go install pkg@version` is unambiguous
      env: { ...env, GOBIN: binDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onLine = (line: string) => {
      if (!line.trim()) return;
      remember(line);
      if (/^go: downloading /.test(line)) downloads++;
      else if (!/^go: /.test(line)) packages++;
      const now = Date.now();
      if (now - lastReport > 15_000) {
        lastReport = now;
        log(`go install: ${downloads} modules downloaded, ${packages} packages compiled (${Math.round((now - started) / 1000)} s)`);
      }
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (err) => resolve(`spawn error: ${err.message}`));
    child.on('close', (c, signal) => resolve(c ?? `signal ${signal}`));
  });
  return { code, secs: Math.round((Date.now() - started) / 1000), downloads, packages, tail };
}

/** `go env GOVERSION` without the `go` prefix, or undefined. */
export function goVersion(goPath: string, env: NodeJS.ProcessEnv): string | undefined {
  const res = spawnSync(goPath, ['env', 'GOVERSION'], { env, encoding: 'utf8', timeout: 30_000 });
  if (res.error || res.status !== 0) return undefined;
  return res.stdout.trim().replace(/^go/, '') || undefined;
}

/**
 * Builds the pinned Temporal CLI into `<repo>/.temporal/bin/temporal` with `go install`.
 * Cached: returns immediately if that binary exists and reports `Server 1.29.1` (unless `force`).
 * Progress (a line every 15 s) goes to `log`.
 * Throws {@link TemporalCliError} naming what to install if Go is missing or the build fails.
 */
export async function installTemporalCli(opts: InstallOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  const binDir = projectLocalBinDir(opts.repoRoot);
  const target = projectLocalCliPath(opts.repoRoot);

  if (!opts.force && isExecutableFile(target)) {
    const v = readTemporalCliVersion(target, env);
    if (v?.server === TEMPORAL_SERVER_VERSION) {
      log(`Temporal CLI already built: ${target} (${v.raw})`);
      return target;
    }
    log(`Rebuilding ${target}: it reports ${v ? `"${v.raw}"` : 'no usable version'}, want Server ${TEMPORAL_SERVER_VERSION}`);
  }

  const go = findOnPath('go', env);
  if (!go) {
    throw new TemporalCliError(`No Temporal CLI found and Go is not installed (no \`go\` on PATH), so it cannot be built.\n${installInstructions()}`);
  }
  const gv = goVersion(go, env);
  if (gv && compareVersions(gv, MIN_GO_VERSION) < 0) {
    log(`warning: ${go} is Go ${gv}; ${TEMPORAL_CLI_VERSION} needs Go >= ${MIN_GO_VERSION}. The build will fail unless GOTOOLCHAIN lets Go fetch a newer toolchain.`);
  }

  const pkg = `${TEMPORAL_CLI_GO_PACKAGE}@${TEMPORAL_CLI_VERSION}`;
  const result = await goInstall({ go, goVersion: gv, pkg, binDir, env, log, what: 'the Temporal CLI', expect: '~1500 packages' });
  if (result.code !== 0) {
    throw new TemporalCliError(
      `Building the Temporal CLI failed (go install ${pkg} exited with ${result.code} after ${result.secs} s, Go ${gv ?? 'unknown version'}).\n` +
        `Last lines of go's output:\n${result.tail.map((l) => `  | ${l}`).join('\n')}\n${installInstructions()}`,
    );
  }
  const { secs, downloads, packages } = result;
  const v = isExecutableFile(target) ? readTemporalCliVersion(target, env) : undefined;
  if (!v) {
    throw new TemporalCliError(`go install ${pkg} succeeded but ${target} is missing or does not run.\n${installInstructions()}`);
  }
  log(`Built ${target} in ${secs} s (${downloads} modules downloaded, ${packages} packages compiled): ${v.raw}`);
  return target;
}

/**
 * Finds the Temporal CLI ({@link findTemporalCli}) or builds it ({@link installTemporalCli}).
 * A project-local build is re-checked for the pinned server version (and rebuilt if it differs).
 */
export async function ensureTemporalCli(opts: InstallOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  const found = findTemporalCli(opts);
  if (found && found !== projectLocalCliPath(opts.repoRoot)) {
    const v = readTemporalCliVersion(found, env);
    const source = env.TEMPORAL_CLI_PATH ? 'TEMPORAL_CLI_PATH' : 'PATH';
    if (!v) {
      log(`warning: ${found} (from ${source}) did not answer \`--version\` like the Temporal CLI; using it anyway.`);
    } else {
      if (v.cli && !v.cli.startsWith('0.0.0') && compareVersions(v.cli, MIN_TEMPORAL_CLI_VERSION) < 0) {
        log(`warning: ${found} (from ${source}) is Temporal CLI ${v.cli}; >= ${MIN_TEMPORAL_CLI_VERSION} is expected (Update-with-Start).`);
      }
      log(`Using Temporal CLI ${found} (from ${source}): ${v.raw}`);
    }
    return found;
  }
  return installTemporalCli(opts);
}
