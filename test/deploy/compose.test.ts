/**
 * Deployment files (issue 7 §4, issue 13 item 5). There is no Docker engine here, so this checks their
 * structure against the code instead: the compose stack's services, ports, dependencies and health
 * checks; the schema job before the server (the server image, not the retired auto-setup); the
 * dynamic config it mounts (the same settings as npm run temporal:cluster); environment names that the
 * config loader and the Temporal connection actually read; the search attributes the one-shot
 * registers; and the Dockerfile's key properties.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { CLUSTER_DYNAMIC_CONFIG } from '../../src/temporal/cluster-config.js';
import { CLI_SEARCH_ATTRIBUTE_TYPE } from '../../src/temporal/search-attributes-admin.js';
import { PROJECT_SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  secrets?: string[];
  stop_grace_period?: string;
  restart?: string;
  deploy?: { replicas?: number };
};
const compose = parse(read('docker-compose.temporal.yml'), { merge: true }) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
const services = compose.services;
const APP = ['proxmox-agent-api', 'proxmox-agent-worker'] as const;

/** Every environment variable name the service's code reads. */
function namesReadByCode(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) {
        const text = readFileSync(path, 'utf8');
        for (const m of text.matchAll(/\benv\??\.([A-Z][A-Z0-9_]+)\b/g)) names.add(m[1]!);
        // connection.ts reads the TEMPORAL_* variables through its zod schema's keys.
        for (const m of text.matchAll(/^\s+(TEMPORAL_[A-Z_]+):/gm)) names.add(m[1]!);
      }
    }
  };
  walk(join(ROOT, 'src'));
  return names;
}

/** `{env: NAME}` and `{file: PATH}` references in a config file. */
function secretRefs(value: unknown, out = { env: new Set<string>(), file: new Set<string>() }) {
  if (Array.isArray(value)) value.forEach((v) => secretRefs(v, out));
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.env === 'string' && Object.keys(o).length === 1) out.env.add(o.env);
    if (typeof o.file === 'string' && Object.keys(o).length === 1) out.file.add(o.file);
    Object.values(o).forEach((v) => secretRefs(v, out));
  }
  return out;
}

const exampleConfig = parse(read('deploy/config.example.yaml'));

describe('docker-compose.temporal.yml', () => {
  it('has Temporal on PostgreSQL after a schema job, the Web UI, the namespace one-shot, and the API and worker', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['postgresql', 'proxmox-agent-api', 'proxmox-agent-worker', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui'].sort(),
    );
    expect(services.postgresql!.image).toMatch(/^postgres:\d+/);
    // The server image: temporalio/auto-setup is no longer built (issue 13, item 5).
    expect(services.temporal!.image).toMatch(/^temporalio\/server:1\.29\.\d+$/);
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(services['temporal-ui']!.image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(services['temporal-ui']!.environment!.TEMPORAL_ADDRESS).toBe('temporal:7233');
    for (const job of ['temporal-schema', 'temporal-namespace']) {
      expect(services[job]!.image, job).toMatch(/^temporalio\/admin-tools:1\.29\.\d+/);
      expect(services[job]!.restart, job).toBe('no');
    }
    for (const s of Object.values(services)) if (s.image) expect(s.image, 'pinned tags').not.toMatch(/:latest$|^[^:]+$/);
    for (const name of APP) {
      expect(services[name]!.build, `${name} is built from the Dockerfile`).toBe('.');
      expect(services[name]!.image).toBe('proxmox-agent:local');
    }
    expect(services['proxmox-agent-worker']!.deploy?.replicas).toBeGreaterThanOrEqual(2);
  });

  it('starts things in order: database, schema job, Temporal, namespace and search attributes, then the API and workers', () => {
    expect(services['temporal-schema']!.depends_on).toEqual({ postgresql: { condition: 'service_healthy' } });
    expect(services.temporal!.depends_on).toEqual({
      postgresql: { condition: 'service_healthy' },
      'temporal-schema': { condition: 'service_completed_successfully' },
    });
    expect(services['temporal-namespace']!.depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
    expect(services['temporal-ui']!.depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
    for (const name of APP) {
      expect(services[name]!.depends_on).toEqual({
        temporal: { condition: 'service_healthy' },
        'temporal-namespace': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('health-checks every long-running service, the app ones on /readyz at their configured ports', () => {
    for (const [name, s] of Object.entries(services)) {
      if (name === 'temporal-schema' || name === 'temporal-namespace') continue;
      expect(s.healthcheck?.test, name).toBeDefined();
    }
    const api = services['proxmox-agent-api']!;
    const worker = services['proxmox-agent-worker']!;
    expect(api.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${api.environment!.PORT}/readyz`);
    expect(worker.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${worker.environment!.WORKER_PORT}/readyz`);
  });

  it('publishes only the API and the UI, on loopback; Temporal and the workers stay internal', () => {
    expect(services['proxmox-agent-api']!.ports).toEqual([`127.0.0.1:8787:${services['proxmox-agent-api']!.environment!.PORT}`]);
    expect(services['temporal-ui']!.ports).toEqual(['127.0.0.1:8080:8080']);
    for (const name of ['temporal', 'postgresql', 'proxmox-agent-worker', 'temporal-schema', 'temporal-namespace']) expect(services[name]!.ports, name).toBeUndefined();
  });

  it('sets only environment variables the code or the config reads, and every one they need', () => {
    const read = namesReadByCode();
    const refs = secretRefs(exampleConfig);
    // Sanity: the scan finds what the loader and the connection read.
    for (const n of ['PROXMOX_AGENT_CONFIG', 'PORT', 'WORKER_PORT', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY', 'TEMPORAL_UI_URL', 'LOG_LEVEL']) expect(read, n).toContain(n);
    for (const name of APP) {
      const env = services[name]!.environment!;
      for (const key of Object.keys(env)) expect(read.has(key) || refs.env.has(key), `${name}: ${key} is read by nothing`).toBe(true);
      for (const needed of ['PROXMOX_AGENT_CONFIG', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', ...refs.env]) expect(env, `${name} sets ${needed}`).toHaveProperty(needed);
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
      // The config file is mounted where PROXMOX_AGENT_CONFIG points.
      expect(services[name]!.volumes).toContain(`./deploy/config.yaml:${env.PROXMOX_AGENT_CONFIG}:ro`);
    }
    expect(services['proxmox-agent-api']!.command).toEqual(['node', 'dist/bin/api.mjs']);
    expect(services['proxmox-agent-worker']!.command).toEqual(['node', '--max-semi-space-size=4', 'dist/bin/worker.mjs']);
  });

  it('hands secrets over as files or variables, never in the config', () => {
    const refs = secretRefs(exampleConfig);
    expect(refs.file.size).toBeGreaterThan(0);
    for (const file of refs.file) {
      const m = /^\/run\/secrets\/(.+)$/.exec(file);
      expect(m, `${file} is a compose secret`).not.toBeNull();
      expect(compose.secrets[m![1]!], file).toBeDefined();
      for (const name of APP) expect(services[name]!.secrets).toContain(m![1]);
    }
    // Passwords come from .env (interpolated), not from the file itself.
    const text = read('docker-compose.temporal.yml');
    for (const line of text.split('\n').filter((l) => /PASSWORD|PWD|DATABASE_URL/.test(l) && !l.trim().startsWith('#'))) expect(line).toMatch(/\$\{TEMPORAL_DB_PASSWORD:\?/);
  });

  it('lets a worker finish a running Proxmox task before it is killed', () => {
    const grace = (s: string) => Number(/^(\d+)s$/.exec(s)![1]);
    const config = parseConfig(exampleConfig);
    expect(grace(services['proxmox-agent-worker']!.stop_grace_period!)).toBeGreaterThan(config.worker.shutdownGraceSeconds);
    expect(config.worker.port).toBe(Number(services['proxmox-agent-worker']!.environment!.WORKER_PORT));
  });
});

describe('the schema job', () => {
  const script = read('deploy/compose/temporal-schema.sh');

  it('creates, sets up and updates both databases with temporal-sql-tool, from the image\'s schema files', () => {
    const job = services['temporal-schema']!;
    expect(job.volumes).toContain('./deploy/compose/temporal-schema.sh:/temporal-schema.sh:ro');
    expect(job.entrypoint).toEqual(['/bin/sh', '/temporal-schema.sh']);
    expect(job.environment).toMatchObject({ SQL_PLUGIN: 'postgres12', SQL_HOST: 'postgresql', SQL_PORT: '5432', SQL_USER: 'temporal' });
    expect(script).toMatch(/^set -eu$/m);
    for (const step of ['create-database', 'setup-schema -v 0.0', 'update-schema -d']) expect(script).toContain(`temporal-sql-tool --db "$db" ${step}`);
    expect(script).toContain('temporal:temporal temporal_visibility:visibility');
    expect(script).toContain('/etc/temporal/schema/postgresql/v12');
  });
});

describe('the dynamic config', () => {
  it('is mounted where DYNAMIC_CONFIG_FILE_PATH points', () => {
    const temporal = services.temporal!;
    const mount = temporal.volumes!.find((v) => v.startsWith('./deploy/compose/dynamicconfig:'));
    expect(mount).toBe('./deploy/compose/dynamicconfig:/etc/temporal/config/dynamicconfig:ro');
    expect(temporal.environment!.DYNAMIC_CONFIG_FILE_PATH).toBe('config/dynamicconfig/proxmox-agent.yaml');
  });

  it('raises the visibility rate limit (issue 13, item 1) and holds the same settings as npm run temporal:cluster', () => {
    const file = parse(read('deploy/compose/dynamicconfig/proxmox-agent.yaml')) as Record<string, { value: unknown }[]>;
    expect(file['frontend.namespaceRPS.visibility']).toEqual([{ value: 100 }]);
    expect(file).toEqual(Object.fromEntries(CLUSTER_DYNAMIC_CONFIG.map((s) => [s.key, [{ value: s.value }]])));
  });
});

describe('the namespace and search-attribute one-shot', () => {
  const script = read('deploy/compose/register-search-attributes.sh');

  it('creates the namespace with retention unless it exists', () => {
    expect(services['temporal-namespace']!.environment).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'default', TEMPORAL_NAMESPACE_RETENTION: '720h' });
    expect(script).toMatch(/temporal operator namespace create --namespace "\$ns" --retention/);
  });

  it('registers exactly the project attributes with their types', () => {
    const created = [...script.matchAll(/^create (\w+) (\w+)$/gm)].map((m) => `${m[1]}=${m[2]}`).sort();
    expect(created).toEqual(PROJECT_SEARCH_ATTRIBUTES.map((a) => `${a.name}=${CLI_SEARCH_ATTRIBUTE_TYPE[a.type]}`).sort());
    expect(services['temporal-namespace']!.volumes).toContain('./deploy/compose/register-search-attributes.sh:/register-search-attributes.sh:ro');
  });

  it('exits only once a workflow using them can start (the server caches search attributes)', () => {
    expect(script).toMatch(/until temporal workflow start [^\n]*\\\n[^\n]*\$probe_args/);
    expect(script).toContain('temporal workflow delete');
  });
});

describe('deploy/config.example.yaml', () => {
  it('is a valid config for several workers: PostgreSQL audit store, a rate limit per environment', () => {
    const config = parseConfig(exampleConfig);
    expect(config.audit.postgres).toBeDefined();
    expect(config.server.host).toBe('0.0.0.0');
    for (const env of Object.values(config.environments)) expect(env.maxActivitiesPerSecond).toBeGreaterThan(0);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const lines = dockerfile.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = lines.filter((l) => /^FROM\s/i.test(l));
  const finalStage = lines.slice(lines.lastIndexOf(stages.at(-1)!));

  it('is multi-stage on a slim Node 20 base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20[\w.-]*-slim$/m);
  });

  it('installs production dependencies only, and prebuilds the entry points and the workflow bundle the worker loads', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/scripts\/build\.ts --out dist$/m);
    expect(finalStage.join('\n')).toMatch(/WORKFLOW_BUNDLE=\/app\/dist\/workflow-bundle\.js/);
  });

  it('runs as a non-root user', () => {
    const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    // Nothing after USER switches back.
    expect(finalStage.slice(finalStage.indexOf(user!) + 1).some((l) => /^USER\s/i.test(l))).toBe(false);
  });

  it('bakes no secrets in and keeps local state out of the build context', () => {
    for (const l of lines.filter((l) => /^(ENV|ARG)\s/i.test(l))) expect(l).not.toMatch(/SECRET|TOKEN|PASSWORD|API_KEY|PRIVATE/i);
    expect(dockerfile).not.toMatch(/COPY[^\n]*\.env\b/);
    expect(dockerfile).not.toMatch(/COPY\s+\.\s/);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const p of ['.env', 'node_modules', '.data', '.temporal', 'deploy/secrets', 'deploy/config.yaml', '.git']) expect(ignored, p).toContain(p);
  });

  it('defaults to the worker and exposes the API and worker ports', () => {
    expect(finalStage.find((l) => /^CMD\s/.test(l))).toBe('CMD ["node", "--max-semi-space-size=4", "dist/bin/worker.mjs"]');
    expect(dockerfile).toMatch(/^EXPOSE 8787 9464$/m);
  });
});
