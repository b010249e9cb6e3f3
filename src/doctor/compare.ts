/**
 * The connection doctor's judgement, without I/O: from what was read off one environment's Proxmox
 * (reachability, TLS certificate, release, the token's effective permissions, nodes, storages) and
 * what the configuration asks of it (the actions its policy allows, the nodes its rules name), the
 * list of checks with what to fix. `probe.ts` gathers the facts; docs/doctor.md explains each check.
 *
 * Severity: `blocker` — something the environment's allowed actions (or every preflight) cannot do
 * without; `warning` — works, but not as it should (partial grants, more privileges than needed,
 * plain http); `info` — facts worth seeing (fingerprint, release, privilege separation).
 */
import type { EffectivePermissions, VersionInfo } from '../proxmox/types.js';
import { ACTION_PRIVILEGES, aclPathOf, PVE_PRIVILEGES, READ_PRIVILEGES, type PveMajor } from '../proxmox/privileges.js';

export type Severity = 'blocker' | 'warning' | 'info';

export interface DoctorCheck {
  id: string;
  ok: boolean;
  severity: Severity;
  detail: string;
  /** Exact commands (pveum on a cluster node, or a config change) that fix a failing check. */
  fix?: string[];
}

export type Failure = { error: string };

export interface DoctorFacts {
  environment: string;
  /** `user@realm!token` */
  tokenId: string;
  /** The in-process demo simulator (loopback http by design). */
  simulated: boolean;
  /** The first call (GET /version): its failure means nothing else could be read. */
  version: VersionInfo | Failure;
  tls: { kind: 'http' } | { kind: 'https'; fingerprint?: string; pinned?: string; caFile?: boolean; error?: string };
  permissions?: EffectivePermissions | Failure;
  /** The token's user's permissions (privilege separation); `forbidden` without Sys.Audit on /access. */
  userPermissions?: EffectivePermissions | 'forbidden' | Failure;
  /** The catalog actions the policy does not deny in this environment. */
  allowedActions: readonly string[];
  /** Nodes the policy's rules name: `scoped` when the rule names this environment. */
  policyNodes: readonly { node: string; rule: string; scoped: boolean }[];
  clusterNodes?: readonly string[] | Failure;
  /** Storages with `backup` content the token sees (asked only when a backup action is allowed). */
  backupStorages?: readonly string[] | Failure;
}

export interface DoctorReport {
  environment: string;
  /** No failing blocker. */
  ok: boolean;
  pve?: { version: string; release: string; major: number };
  privsep: 'on' | 'off-or-same' | 'unknown';
  checks: DoctorCheck[];
}

const failed = (x: unknown): x is Failure => typeof x === 'object' && x !== null && 'error' in x;

/** Privileges a token should not need for this project: held, they widen what a leaked secret can do. */
const POWERFUL_IN_BOTH = ['Permissions.Modify', 'User.Modify', 'Realm.Allocate', 'Realm.AllocateUser', 'Group.Allocate', 'Sys.Modify', 'Sys.Console', 'Sys.PowerMgmt', 'VM.Console'];
const POWERFUL: Record<PveMajor, readonly string[]> = {
  // QEMU monitor access: arbitrary commands to the VM process.
  8: [...POWERFUL_IN_BOTH, 'VM.Monitor'],
  // Guest agent command execution and file writes inside the guest.
  9: [...POWERFUL_IN_BOTH, 'VM.GuestAgent.Unrestricted', 'VM.GuestAgent.FileWrite'],
};

export function majorOf(version: VersionInfo): number {
  return Number.parseInt((version.release || version.version).split('.')[0] ?? '', 10);
}

/** Role ids are `[A-Za-z0-9.\-_]+`: one role per ACL path, so `pveum role add` defines it completely. */
export function roleFor(path: string): string {
  return path === '/' ? 'ProxmoxAgent' : `ProxmoxAgent-${path.slice(1).replace(/[^A-Za-z0-9.\-_]/g, '-')}`;
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Who holds a privilege where: on the path itself, or only below it (single guests, pools, storages). */
function holding(perms: EffectivePermissions, path: string, privilege: string): { at: boolean; below: string[] } {
  const at = perms[path]?.[privilege] !== undefined || perms['/']?.[privilege] === 1;
  const below = Object.keys(perms)
    .filter((p) => p !== path && (p.startsWith(`${path}/`) || (path === '/vms' && p.startsWith('/pool/')) || (path === '/storage' && p.startsWith('/pool/'))))
    .filter((p) => perms[p]?.[privilege] !== undefined);
  return { at, below };
}

export function diagnose(f: DoctorFacts): DoctorReport {
  const checks: DoctorCheck[] = [];
  const tokenUser = f.tokenId.split('!')[0]!;
  const report = (extra: Partial<DoctorReport> = {}): DoctorReport => ({
    environment: f.environment,
    ok: !checks.some((c) => !c.ok && c.severity === 'blocker'),
    privsep: 'unknown',
    checks,
    ...extra,
  });

  checks.push(tlsCheck(f));
  if (failed(f.version)) {
    checks.push({ id: 'reach', ok: false, severity: 'blocker', detail: `Proxmox did not answer GET /version: ${f.version.error}` });
    return report();
  }
  checks.push({ id: 'reach', ok: true, severity: 'info', detail: `Proxmox answered as ${f.tokenId}` });
  const major = majorOf(f.version);
  const known = major === 8 || major === 9;
  const pve = { version: f.version.version, release: f.version.release, major };
  checks.push({
    id: 'version',
    ok: known,
    severity: known ? 'info' : 'warning',
    detail: known ? `Proxmox VE ${f.version.version} (privilege names of PVE ${major})` : `Proxmox VE ${f.version.version}: this project knows the privileges of PVE 8 and 9 only; checked against PVE 9's`,
  });
  const names: PveMajor = major === 8 ? 8 : 9;

  if (!f.permissions || failed(f.permissions)) {
    checks.push({ id: 'permissions', ok: false, severity: 'blocker', detail: `cannot read the token's permissions (GET /access/permissions): ${f.permissions ? f.permissions.error : 'not read'}` });
    return report({ pve });
  }
  const perms = f.permissions;
  const userPerms = f.userPermissions && f.userPermissions !== 'forbidden' && !failed(f.userPermissions) ? f.userPermissions : undefined;
  const privsep = privsepOf(perms, userPerms);
  checks.push({
    id: 'privsep',
    ok: true,
    severity: 'info',
    detail:
      privsep === 'on'
        ? `privilege separation is on: ${f.tokenId} has less than ${tokenUser}; its privileges are the intersection of the user's and the token's ACLs, so grants go to both`
        : privsep === 'off-or-same'
          ? `${f.tokenId} has exactly ${tokenUser}'s privileges (no privilege separation, or token ACLs equal to the user's)`
          : `unknown: reading ${tokenUser}'s permissions needs Sys.Audit on /access; the fixes below grant to the user and to the token, which works either way`,
  });

  checks.push(...privilegeChecks(f, perms, userPerms, names));
  checks.push(powerfulCheck(f, perms, names));
  checks.push(...nodeChecks(f));
  const backup = backupCheck(f);
  if (backup) checks.push(backup);
  return report({ pve, privsep });
}

function privsepOf(token: EffectivePermissions, user: EffectivePermissions | undefined): DoctorReport['privsep'] {
  if (!user) return 'unknown';
  const flat = (p: EffectivePermissions) =>
    Object.entries(p)
      .flatMap(([path, privs]) => Object.keys(privs).map((x) => `${path} ${x}`))
      .sort()
      .join('\n');
  return flat(token) === flat(user) ? 'off-or-same' : 'on';
}

function tlsCheck(f: DoctorFacts): DoctorCheck {
  const t = f.tls;
  if (t.kind === 'http') {
    return f.simulated
      ? { id: 'tls', ok: true, severity: 'info', detail: 'the in-process simulator, over loopback http (no TLS to check)' }
      : { id: 'tls', ok: false, severity: 'warning', detail: 'plain http: the token secret crosses the network unencrypted', fix: ['use the https:// URL of pveproxy (port 8006) in environments.' + f.environment + '.proxmox.url'] };
  }
  if (t.error !== undefined || t.fingerprint === undefined) {
    return { id: 'tls', ok: false, severity: 'warning', detail: `could not read the server certificate: ${t.error ?? 'no certificate'}` };
  }
  if (t.pinned !== undefined) {
    return t.pinned === t.fingerprint
      ? { id: 'tls', ok: true, severity: 'info', detail: `certificate SHA-256 ${t.fingerprint}, pinned` }
      : {
          id: 'tls',
          ok: false,
          severity: 'blocker',
          detail: `the server presents certificate SHA-256 ${t.fingerprint}, but ${t.pinned} is pinned: every call is refused (a renewed certificate, or another server)`,
          fix: [`environments.${f.environment}.proxmox.tls.fingerprintSha256: "${t.fingerprint}"  (after checking it on the node: pvenode cert info)`],
        };
  }
  return {
    id: 'tls',
    ok: true,
    severity: 'info',
    detail: `certificate SHA-256 ${t.fingerprint}, not pinned (${t.caFile ? 'verified against tls.caFile' : 'verified against the system CAs'})`,
    fix: [`to pin it: environments.${f.environment}.proxmox.tls.fingerprintSha256: "${t.fingerprint}"`],
  };
}

function privilegeChecks(f: DoctorFacts, perms: EffectivePermissions, userPerms: EffectivePermissions | undefined, names: PveMajor): DoctorCheck[] {
  // What each privilege is for: the allowed actions that need it, or the reads.
  const purposes = new Map<string, { required: boolean; why: string[] }>();
  const need = (priv: string, required: boolean, why: string) => {
    const p = purposes.get(priv) ?? { required: false, why: [] };
    p.required ||= required;
    p.why.push(why);
    purposes.set(priv, p);
  };
  for (const p of READ_PRIVILEGES.required) need(p, true, 'every preflight');
  for (const p of READ_PRIVILEGES.useful) need(p, false, 'reads');
  for (const action of f.allowedActions) for (const p of ACTION_PRIVILEGES[action] ?? []) need(p, true, action);

  const byPath = new Map<string, string[]>();
  for (const priv of purposes.keys()) {
    if (!PVE_PRIVILEGES[names].includes(priv)) continue; // never: the catalog's privileges exist in both releases (a test checks)
    const path = aclPathOf(priv);
    byPath.set(path, [...(byPath.get(path) ?? []), priv]);
  }

  const out: DoctorCheck[] = [];
  for (const [path, privs] of [...byPath.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const missing: string[] = [];
    const partial: string[] = [];
    for (const priv of privs.sort()) {
      const h = holding(perms, path, priv);
      if (h.at) continue;
      // Storages and bridges are granted one by one; guests may be granted per guest or pool, then only those can be acted on.
      if (h.below.length > 0 && path !== '/vms' && path !== '/nodes') continue;
      if (h.below.length > 0) partial.push(`${priv} (only on ${h.below.join(', ')})`);
      else missing.push(priv);
    }
    const id = `privileges:${path}`;
    if (missing.length === 0 && partial.length === 0) {
      out.push({ id, ok: true, severity: 'info', detail: `${privs.join(', ')} on ${path}` });
      continue;
    }
    const severity: Severity = missing.some((p) => purposes.get(p)?.required) ? 'blocker' : 'warning';
    const lines = [
      ...missing.map((p) => `${p} missing (needed by ${purposes.get(p)!.why.join(', ')})`),
      ...partial.map((p) => `${p}: the others cannot be acted on (needed by ${purposes.get(p.split(' ')[0]!)!.why.join(', ')})`),
    ];
    const role = roleFor(path);
    const grantUser = !userPerms || [...missing, ...partial.map((p) => p.split(' ')[0]!)].some((p) => !holding(userPerms, path, p).at);
    out.push({
      id,
      ok: false,
      severity,
      detail: `${f.tokenId} on ${path}: ${lines.join('; ')}`,
      fix: [
        `pveum role add ${role} --privs ${quote(privs.join(','))}`,
        ...(grantUser ? [`pveum acl modify ${path} --users ${quote(f.tokenId.split('!')[0]!)} --roles ${role}`] : []),
        `pveum acl modify ${path} --tokens ${quote(f.tokenId)} --roles ${role}`,
      ],
    });
  }
  return out;
}

function powerfulCheck(f: DoctorFacts, perms: EffectivePermissions, names: PveMajor): DoctorCheck {
  const held = new Set(Object.values(perms).flatMap((p) => Object.keys(p)));
  const extra = POWERFUL[names].filter((p) => held.has(p));
  return extra.length === 0
    ? { id: 'least-privilege', ok: true, severity: 'info', detail: 'the token holds none of the privileges this project never needs that widen what a leaked secret can do' }
    : {
        id: 'least-privilege',
        ok: false,
        severity: 'warning',
        detail: `the token holds privileges this project never needs: ${extra.join(', ')} (PVE ${names} names); grant it only the roles below instead of Administrator/PVEAdmin`,
      };
}

function nodeChecks(f: DoctorFacts): DoctorCheck[] {
  if (f.policyNodes.length === 0) return [];
  if (!f.clusterNodes || failed(f.clusterNodes)) {
    return [{ id: 'policy-nodes', ok: false, severity: 'warning', detail: `cannot list the cluster's nodes: ${f.clusterNodes ? f.clusterNodes.error : 'not read'}` }];
  }
  const nodes = f.clusterNodes;
  const absent = f.policyNodes.filter((n) => !nodes.includes(n.node));
  const scoped = absent.filter((n) => n.scoped);
  if (absent.length === 0) {
    return [{ id: 'policy-nodes', ok: true, severity: 'info', detail: `the nodes the policy names exist: ${[...new Set(f.policyNodes.map((n) => n.node))].join(', ')}` }];
  }
  return [
    {
      id: 'policy-nodes',
      ok: false,
      // A rule scoped to this environment naming a node it lacks is a typo; an unscoped one may mean another cluster.
      severity: scoped.length > 0 ? 'warning' : 'info',
      detail: `policy rules name nodes this cluster lacks (it has ${nodes.join(', ')}): ${absent.map((n) => `${n.node} in rule ${n.rule}`).join(', ')}; such a rule never matches here`,
    },
  ];
}

function backupCheck(f: DoctorFacts): DoctorCheck | undefined {
  if (!f.allowedActions.some((a) => a.endsWith('.backup'))) return undefined;
  const s = f.backupStorages;
  if (!s || failed(s)) return { id: 'backup-storage', ok: false, severity: 'warning', detail: `cannot list the storages: ${s ? s.error : 'not read'}` };
  return s.length > 0
    ? { id: 'backup-storage', ok: true, severity: 'info', detail: `storages with backup content: ${s.join(', ')}` }
    : {
        id: 'backup-storage',
        ok: false,
        severity: 'warning',
        detail: 'backups are allowed, but the token sees no storage with backup content (it needs Datastore.Audit or Datastore.AllocateSpace on it)',
        fix: [`pveum acl modify /storage/<backup-storage> --tokens ${quote(f.tokenId)} --roles ${roleFor('/storage')}`],
      };
}
