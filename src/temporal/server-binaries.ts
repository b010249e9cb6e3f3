/**
 * The real Temporal server, its SQL schema tool and the PostgreSQL schema files, for
 * `npm run temporal:cluster` (cluster.ts). Built from the Go module proxy like the CLI
 * (cli-locator.ts), pinned to the server the CLI embeds ({@link TEMPORAL_SERVER_VERSION}):
 *
 *   GOBIN=<repo>/.temporal/bin go install go.temporal.io/server/cmd/server@v1.29.1       → .temporal/bin/server
 *   GOBIN=<repo>/.temporal/bin go install go.temporal.io/server/cmd/tools/sql@v1.29.1    → .temporal/bin/sql
 *
 * The module's go.mod has no `replace` directive, so `go install pkg@version` accepts it. The schema
 * files (`schema/postgresql/v12/{temporal,visibility}/versioned`) are in the module's source, which
 * `go install` leaves in the Go module cache; they are copied to `.temporal/schema/` (found with
 * `go mod download -json go.temporal.io/server@v1.29.1`), so a cleaned module cache does not matter.
 *
 * Cached: a binary is rebuilt only when it is missing or reports another version.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareVersions, findOnPath, goInstall, goVersion, isExecutableFile, MIN_GO_VERSION, projectLocalBinDir, REPO_ROOT, TEMPORAL_SERVER_VERSION, type InstallOptions } from './cli-locator.js';
import { silentLog } from './log.js';

export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
export const TEMPORAL_SERVER_GO_PACKAGE = `${TEMPORAL_SERVER_MODULE}/cmd/server`;
export const TEMPORAL_SQL_TOOL_GO_PACKAGE = `${TEMPORAL_SERVER_MODULE}/cmd/tools/sql`;

/** Thrown when the server or the SQL tool cannot be found or built; the message says what to do. */
export class TemporalServerBuildError extends Error {
  override readonly name = 'TemporalServerBuildError';
}

export interface TemporalServerBinaries {
  /** `.temporal/bin/server` (`temporal version 1.29.1`). */
  server: string;
  /** `.temporal/bin/sql` (`temporal-sql-tool version 1.29.1`). */
  sqlTool: string;
  /** `.temporal/schema/v1.29.1/postgresql/v12`, holding `temporal/versioned` and `visibility/versioned`. */
  postgresSchemaDir: string;
}

export function projectLocalServerPath(repoRoot: string = REPO_ROOT): string {
  return join(projectLocalBinDir(repoRoot), 'server');
}

export function projectLocalSqlToolPath(repoRoot: string = REPO_ROOT): string {
  return join(projectLocalBinDir(repoRoot), 'sql');
}

export function projectLocalSchemaDir(repoRoot: string = REPO_ROOT): string {
  return join(repoRoot, '.temporal', 'schema', `v${TEMPORAL_SERVER_VERSION}`, 'postgresql', 'v12');
}

/** The version `<path> --version` prints (`temporal version 1.29.1` → `1.29.1`), or undefined. */
export function readBinaryVersion(path: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const res = spawnSync(path, ['--version'], { env, encoding: 'utf8', timeout: 30_000 });
  if (res.error || res.status !== 0) return undefined;
  return /version\s+v?(\d+\.\d+\.\d+\S*)/.exec(`${res.stdout}\n${res.stderr}`)?.[1];
}

function instructions(): string {
  return [
    'To build the Temporal server and its SQL tool for `npm run temporal:cluster`:',
    `  - install Go >= ${MIN_GO_VERSION} (https://go.dev/dl) and re-run; it runs`,
    `    GOBIN=<repo>/.temporal/bin go install ${TEMPORAL_SERVER_GO_PACKAGE}@v${TEMPORAL_SERVER_VERSION}`,
    `    GOBIN=<repo>/.temporal/bin go install ${TEMPORAL_SQL_TOOL_GO_PACKAGE}@v${TEMPORAL_SERVER_VERSION}`,
    '  - or point the service at an existing cluster with TEMPORAL_ADDRESS (docs/temporal-server.md).',
  ].join('\n');
}

function findGo(env: NodeJS.ProcessEnv, log: (m: string) => void): { go: string; version: string | undefined } {
  const go = findOnPath('go', env);
  if (!go) throw new TemporalServerBuildError(`Go is not installed (no \`go\` on PATH), so the Temporal server cannot be built.\n${instructions()}`);
  const version = goVersion(go, env);
  if (version && compareVersions(version, MIN_GO_VERSION) < 0) {
    log(`warning: ${go} is Go ${version}; server v${TEMPORAL_SERVER_VERSION} needs Go >= ${MIN_GO_VERSION}. The build will fail unless GOTOOLCHAIN lets Go fetch a newer toolchain.`);
  }
  return { go, version };
}

async function ensureBinary(target: string, pkg: string, what: string, expect: string, opts: InstallOptions): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  if (!opts.force && isExecutableFile(target)) {
    const v = readBinaryVersion(target, env);
    if (v === TEMPORAL_SERVER_VERSION) {
      log(`${what} already built: ${target} (${v})`);
      return target;
    }
    log(`Rebuilding ${target}: it reports ${v ?? 'no usable version'}, want ${TEMPORAL_SERVER_VERSION}`);
  }
  const { go, version } = findGo(env, log);
  const full = `${pkg}@v${TEMPORAL_SERVER_VERSION}`;
  const result = await goInstall({ go, goVersion: version, pkg: full, binDir: projectLocalBinDir(opts.repoRoot), env, log, what, expect });
  if (result.code !== 0) {
    throw new TemporalServerBuildError(
      `Building ${what} failed (go install ${full} exited with ${result.code} after ${result.secs} s, Go ${version ?? 'unknown version'}).\n` +
        `Last lines of go's output:\n${result.tail.map((l) => `  | ${l}`).join('\n')}\n${instructions()}`,
    );
  }
  const v = isExecutableFile(target) ? readBinaryVersion(target, env) : undefined;
  if (v !== TEMPORAL_SERVER_VERSION) throw new TemporalServerBuildError(`go install ${full} succeeded but ${target} ${v ? `reports ${v}` : 'is missing or does not run'}.\n${instructions()}`);
  log(`Built ${target} in ${result.secs} s (${result.downloads} modules downloaded, ${result.packages} packages compiled): ${v}`);
  return target;
}

/** Copies a directory tree with ordinary modes (the module cache's files are read-only). */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o755 });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.isFile()) writeFileSync(dst, readFileSync(src), { mode: 0o644 });
  }
}

/** The PostgreSQL schema files of the pinned server, copied from its module source once. */
export async function ensurePostgresSchemaDir(opts: InstallOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  const target = projectLocalSchemaDir(opts.repoRoot);
  const complete = (dir: string) => ['temporal', 'visibility'].every((db) => existsSync(join(dir, db, 'versioned')));
  if (!opts.force && complete(target)) return target;

  const { go } = findGo(env, log);
  const mod = `${TEMPORAL_SERVER_MODULE}@v${TEMPORAL_SERVER_VERSION}`;
  const res = spawnSync(go, ['mod', 'download', '-json', mod], { cwd: projectLocalBinDir(opts.repoRoot), env, encoding: 'utf8', timeout: 600_000 });
  let moduleDir: string | undefined;
  try {
    moduleDir = (JSON.parse(res.stdout) as { Dir?: string }).Dir;
  } catch {
    /* reported below */
  }
  const source = moduleDir ? join(moduleDir, 'schema', 'postgresql', 'v12') : undefined;
  if (!source || !complete(source)) {
    throw new TemporalServerBuildError(`go mod download -json ${mod} did not give the module's schema/postgresql/v12 (exit ${res.status}): ${(res.stderr || res.stdout).trim().slice(-2000)}\n${instructions()}`);
  }
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  copyTree(source, tmp);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(join(target, '..'), { recursive: true });
  renameSync(tmp, target);
  log(`Copied the PostgreSQL schema of ${mod} from ${source} to ${target}`);
  return target;
}

/**
 * The server, the SQL tool and the schema files, built or copied when missing (cached in `.temporal/`).
 * With nothing cached and warm Go caches this takes about a minute; with empty Go caches a few minutes.
 * Throws {@link TemporalServerBuildError} naming what to install when Go is missing or a build fails.
 */
export async function ensureTemporalServerBinaries(opts: InstallOptions = {}): Promise<TemporalServerBinaries> {
  mkdirSync(projectLocalBinDir(opts.repoRoot), { recursive: true });
  const server = await ensureBinary(projectLocalServerPath(opts.repoRoot), TEMPORAL_SERVER_GO_PACKAGE, 'the Temporal server', '~1400 packages', opts);
  const sqlTool = await ensureBinary(projectLocalSqlToolPath(opts.repoRoot), TEMPORAL_SQL_TOOL_GO_PACKAGE, 'the Temporal SQL schema tool', '~600 packages', opts);
  const postgresSchemaDir = await ensurePostgresSchemaDir(opts);
  return { server, sqlTool, postgresSchemaDir };
}
