/**
 * The connection doctor end to end: the real service against simulators emulating PVE 8 and PVE 9.
 * `lab` uses a privilege-separated token whose own ACL grants only VM.Audit and VM.PowerMgmt on /vms
 * (its user is an administrator); `prod` an administrator token. GET /v1/doctor, /readyz's details
 * and `proxmox-agent doctor`'s table and exit code must tell the one from the other, with the
 * pveum commands that fix lab.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_BLOCKERS } from '../../src/cli/commands/doctor.js';
import { runCli } from '../../src/cli/main.js';
import { PVE_PRIVILEGES } from '../../src/proxmox/privileges.js';
import { demoClusters, startSimulator, type ProxmoxSimulator } from '../../src/simulator/index.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';
import { until } from './support/until.js';
import { createOpenApiValidator } from '../api/support/openapi-validator.js';

const WEAK = 'proxmox-agent@pve!agent';
const ADMIN = 'root-ish@pve!admin';
const SECRET = 'doctor-test-secret-0001';

async function cli(t: TestService, tokenFile: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(' '));
  console.error = (...a: unknown[]) => out.push(a.join(' '));
  try {
    return { code: await runCli(['node', 'proxmox-agent', 'doctor', ...args, '--url', t.url, '--token-file', tokenFile]), out: out.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
    process.exitCode = 0;
  }
}

describe.each([8, 9] as const)('connection doctor against PVE %i', (pve) => {
  let sim: ProxmoxSimulator;
  let t: TestService;
  let tokenFile: string;

  beforeAll(async () => {
    const seed = demoClusters({ lab: SECRET, prod: 'unused' }).lab;
    seed.apiTokens = [
      { tokenId: WEAK, secret: SECRET, privsep: true, acl: [{ path: '/vms', privileges: ['VM.Audit', 'VM.PowerMgmt'] }] },
      { tokenId: ADMIN, secret: SECRET },
    ];
    sim = await startSimulator({ cluster: seed, pve, authFailureDelayMs: 0, taskDurationMs: 50 });
    t = await startTestService(
      (config) => {
        config.environments = {
          lab: { tier: 'nonprod', maxActivitiesPerSecond: 5, proxmox: { url: sim.url, tokenId: WEAK, tokenSecret: { env: 'DOCTOR_SECRET' } } },
          prod: { tier: 'prod', maxActivitiesPerSecond: 5, proxmox: { url: sim.url, tokenId: ADMIN, tokenSecret: { env: 'DOCTOR_SECRET' } } },
        };
        for (const tok of config.tokens) tok.environments = ['*'];
      },
      { service: { env: { ...process.env, DOCTOR_SECRET: SECRET } } },
    );
    const dir = mkdtempSync(join(tmpdir(), 'pa-doctor-'));
    tokenFile = join(dir, 'agent');
    writeFileSync(tokenFile, TOKENS.agent);
    chmodSync(tokenFile, 0o600);
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await sim?.close();
  });

  it('GET /v1/doctor: a blocker on /vms for the separated token, with the exact pveum commands; prod passes', async () => {
    const res = await t.call('GET', '/v1/doctor', { token: TOKENS.agent });
    expect(res.status).toBe(200);
    const lab = res.body.environments.find((e: { environment: string }) => e.environment === 'lab');
    const prod = res.body.environments.find((e: { environment: string }) => e.environment === 'prod');
    expect(lab.pve).toMatchObject({ major: pve });
    expect(lab.ok).toBe(false);
    const vms = lab.checks.find((c: { id: string }) => c.id === 'privileges:/vms');
    expect(vms).toMatchObject({ ok: false, severity: 'blocker' });
    expect(vms.detail).toContain('VM.Snapshot missing (needed by vm.snapshot.create');
    expect(vms.fix[0]).toMatch(/^pveum role add ProxmoxAgent-vms --privs '(VM\.[A-Za-z.]+,)+VM\.[A-Za-z.]+'$/);
    expect(vms.fix[0]).toContain('VM.Snapshot.Rollback');
    // The token cannot read its user's permissions (no Sys.Audit on /access): grant to both.
    expect(vms.fix.slice(1)).toEqual([
      "pveum acl modify /vms --users 'proxmox-agent@pve' --roles ProxmoxAgent-vms",
      "pveum acl modify /vms --tokens 'proxmox-agent@pve!agent' --roles ProxmoxAgent-vms",
    ]);
    expect(lab.privsep).toBe('unknown');
    expect(lab.checks.find((c: { id: string }) => c.id === 'privileges:/nodes')).toMatchObject({ ok: false, severity: 'warning' });
    expect(lab.checks.find((c: { id: string }) => c.id === 'tls')).toMatchObject({ ok: false, severity: 'warning' });

    expect(prod.ok).toBe(true);
    expect(prod.privsep).toBe('off-or-same');
    // The administrator holds the release's powerful privileges, named as that release names them.
    const least = prod.checks.find((c: { id: string }) => c.id === 'least-privilege');
    expect(least).toMatchObject({ ok: false, severity: 'warning' });
    expect(least.detail).toContain(pve === 8 ? 'VM.Monitor' : 'VM.GuestAgent.Unrestricted');
    expect(res.body.blockers).toBe(lab.checks.filter((c: { ok: boolean; severity: string }) => !c.ok && c.severity === 'blocker').length);

    // The answers conform to the OpenAPI document (200, and the 404 problem).
    const v = createOpenApiValidator((await t.call('GET', '/v1/openapi.json')).body);
    expect(v.checkResponse('GET', '/v1/doctor', 200, res.headers.get('content-type') ?? '', res.body)).toEqual([]);
    const mars = await t.call('GET', '/v1/doctor?environment=mars', { token: TOKENS.agent });
    expect(v.checkResponse('GET', '/v1/doctor', 404, mars.headers.get('content-type') ?? '', mars.body)).toEqual([]);

    const one = await t.call('GET', '/v1/doctor?environment=prod', { token: TOKENS.agent });
    expect(one.body.environments.map((e: { environment: string }) => e.environment)).toEqual(['prod']);
    expect((await t.call('GET', '/v1/doctor?environment=mars', { token: TOKENS.agent })).status).toBe(404);
    expect(PVE_PRIVILEGES[pve]).toContain('VM.Snapshot');
  });

  it('/readyz shows the doctor per environment without failing on it', async () => {
    const ready = await until('the doctor in /readyz', async () => {
      const r = await t.call('GET', '/readyz');
      return r.body?.checks?.['doctor.lab'] && r.body.checks['doctor.prod'] ? r : undefined;
    });
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(ready.body.checks['doctor.lab']).toMatchObject({ ok: false });
    expect(ready.body.checks['doctor.lab'].detail).toContain('privileges:/vms');
    expect(ready.body.checks['doctor.prod']).toMatchObject({ ok: true });
  });

  it('proxmox-agent doctor prints the fixes and exits non-zero on a blocker, zero without', async () => {
    const lab = await cli(t, tokenFile, '-e', 'lab');
    expect(lab.code).toBe(EXIT_BLOCKERS);
    expect(lab.out).toMatch(/lab\s+privileges:\/vms\s+BLOCKER/);
    expect(lab.out).toContain("pveum acl modify /vms --tokens 'proxmox-agent@pve!agent' --roles ProxmoxAgent-vms");
    const prod = await cli(t, tokenFile, '--environment', 'prod');
    expect(prod.code).toBe(0);
    expect(prod.out).toContain('No blockers');
    expect((await cli(t, tokenFile)).code).toBe(EXIT_BLOCKERS);
  });
});
