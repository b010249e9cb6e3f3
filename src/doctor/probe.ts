/**
 * The connection doctor's I/O: read, per environment, what compare.ts judges. Every read is
 * best-effort (a failure becomes a fact, never an exception), with a short timeout, so one slow
 * cluster cannot hold `GET /v1/doctor` or the readiness details.
 */
import { connect as tlsConnect } from 'node:tls';
import type { Config } from '../config/schema.js';
import { riskMatrix } from '../policy/matrix.js';
import { ProxmoxPermissionError, type ProxmoxClient } from '../proxmox/index.js';
import { normalizeFingerprint } from '../proxmox/tls.js';
import { diagnose, type DoctorFacts, type DoctorReport, type Failure } from './compare.js';

export interface DoctorEnvironment {
  client: ProxmoxClient;
  tokenId: string;
}

export interface Doctor {
  /** Runs the checks now, for every configured environment or one. */
  run(environment?: string): Promise<DoctorReport[]>;
  /** The last run's report per environment (readiness details), without waiting on Proxmox. */
  last(): ReadonlyMap<string, { report: DoctorReport; at: string }>;
}

const CALL_TIMEOUT_MS = 5_000;

const asFailure = (err: unknown): Failure => ({ error: (err as Error).message ?? String(err) });
const attempt = <T>(fn: () => Promise<T>): Promise<T | Failure> => fn().catch(asFailure);

/** SHA-256 of the leaf certificate the server presents, whether or not it would be trusted. */
export function certificateFingerprint(url: string, timeoutMs = CALL_TIMEOUT_MS): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: u.hostname,
      port: Number(u.port || 443),
      ...(/^[\d.]+$|:/.test(u.hostname) ? {} : { servername: u.hostname }),
      // Only to read the certificate: no request is sent on this connection.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const fp = socket.getPeerCertificate()?.fingerprint256;
      socket.destroy();
      if (fp) resolve(fp.toUpperCase());
      else reject(new Error('the server presented no certificate'));
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', reject);
  });
}

/** The catalog actions the policy does not deny in `environment`, and the nodes its rules name. */
export function policyFacts(config: Pick<Config, 'environments' | 'policy'>, environment: string): Pick<DoctorFacts, 'allowedActions' | 'policyNodes'> {
  const cells = riskMatrix(config).environments.find((e) => e.environment === environment)?.actions ?? [];
  const policyNodes = config.policy.rules.flatMap((r) => {
    const envs = r.match.environments;
    if (envs && !envs.includes(environment)) return [];
    return (r.match.nodes ?? []).map((node) => ({ node, rule: r.id, scoped: envs !== undefined }));
  });
  return { allowedActions: cells.filter((c) => c.decision !== 'denied').map((c) => c.action), policyNodes };
}

export async function probeEnvironment(config: Pick<Config, 'environments' | 'policy'>, name: string, env: DoctorEnvironment): Promise<DoctorReport> {
  const endpoint = config.environments[name]!.proxmox;
  const simulated = 'simulator' in endpoint;
  // One deadline for every read of this environment.
  const call = { signal: AbortSignal.timeout(CALL_TIMEOUT_MS * 2) };
  const client = env.client;
  let tls: DoctorFacts['tls'] = { kind: 'http' };
  if (!simulated && endpoint.url.startsWith('https:')) {
    const pinned = endpoint.tls?.fingerprintSha256 ? normalizeFingerprint(endpoint.tls.fingerprintSha256) : undefined;
    const fp = await attempt(() => certificateFingerprint(endpoint.url));
    tls = {
      kind: 'https',
      ...(typeof fp === 'string' ? { fingerprint: fp } : { error: fp.error }),
      ...(pinned ? { pinned } : {}),
      ...(endpoint.tls?.caFile ? { caFile: true } : {}),
    };
  }
  const version = await attempt(() => client.version(call));
  const facts: DoctorFacts = { environment: name, tokenId: env.tokenId, simulated, version, tls, ...policyFacts(config, name) };
  if (!('error' in version)) {
    const user = env.tokenId.split('!')[0]!;
    const [permissions, userPermissions, nodes] = await Promise.all([
      attempt(() => client.permissions({}, call)),
      client.permissions({ userid: user }, call).catch((err: unknown) => (err instanceof ProxmoxPermissionError ? ('forbidden' as const) : asFailure(err))),
      attempt(() => client.nodes(call)),
    ]);
    facts.permissions = permissions;
    facts.userPermissions = userPermissions;
    facts.clusterNodes = 'error' in nodes ? nodes : nodes.map((n) => n.node);
    if (facts.allowedActions.some((a) => a.endsWith('.backup')) && !('error' in nodes)) {
      const online = nodes.filter((n) => n.status === 'online').map((n) => n.node);
      const lists = await Promise.all(
        online.map((node) =>
          attempt(() => client.request<{ storage: string }[], '/nodes/{node}/storage'>('GET', '/nodes/{node}/storage', { node }, { content: 'backup' }, call)),
        ),
      );
      const failedList = lists.find((l): l is Failure => 'error' in l);
      facts.backupStorages = failedList ?? [...new Set(lists.flatMap((l) => ('error' in l ? [] : l.map((s) => s.storage))))].sort();
    }
  }
  return diagnose(facts);
}

export function createDoctor(config: Pick<Config, 'environments' | 'policy'>, environments: (name: string) => DoctorEnvironment | undefined): Doctor {
  const last = new Map<string, { report: DoctorReport; at: string }>();
  return {
    async run(environment) {
      const names = environment === undefined ? Object.keys(config.environments) : [environment];
      const reports = await Promise.all(
        names.map(async (name) => {
          const env = environments(name);
          if (!env) throw new Error(`no environment '${name}'`);
          return probeEnvironment(config, name, env);
        }),
      );
      const at = new Date().toISOString();
      for (const r of reports) last.set(r.environment, { report: r, at });
      return reports;
    },
    last: () => last,
  };
}

/** The doctor's last results as readiness details (`doctor.<env>`); never part of the readiness verdict. */
export function doctorReadinessDetails(doctor: Doctor): Record<string, { ok: boolean; detail: string }> {
  const out: Record<string, { ok: boolean; detail: string }> = {};
  for (const [env, { report, at }] of doctor.last()) {
    const failing = report.checks.filter((c) => !c.ok);
    const blockers = failing.filter((c) => c.severity === 'blocker').map((c) => c.id);
    const warnings = failing.filter((c) => c.severity === 'warning').map((c) => c.id);
    const parts = [
      blockers.length > 0 ? `${blockers.length} blocker(s): ${blockers.join(', ')}` : 'no blockers',
      ...(warnings.length > 0 ? [`${warnings.length} warning(s): ${warnings.join(', ')}`] : []),
    ];
    out[`doctor.${env}`] = { ok: blockers.length === 0, detail: `${parts.join('; ')} (as of ${at}; GET /v1/doctor or proxmox-agent doctor for the fixes)` };
  }
  return out;
}
