/**
 * The doctor's reads against an https pveproxy stand-in with a self-signed certificate: the
 * fingerprint is read whether or not the client would trust the certificate (so a first run shows
 * what to pin), a matching pin passes, a stale one is a blocker; and the readiness details.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorReadinessDetails, createDoctor, probeEnvironment } from '../../src/doctor/probe.js';
import { createReadinessCheck } from '../../src/api/http/health.js';
import { policySchema } from '../../src/policy/schema.js';
import { createProxmoxClient, type ProxmoxClient } from '../../src/proxmox/index.js';
import { makeCertWithNodeCrypto, type TestCert } from '../proxmox/helpers/certs.js';
import { sendJson, startTestServer, type TestServer } from '../proxmox/helpers/http-server.js';

const TOKEN = 'proxmox-agent@pve!agent';
const flip = (fp: string): string => (fp.startsWith('00') ? `01${fp.slice(2)}` : `00${fp.slice(2)}`);
const ALL = { 'VM.Audit': 1, 'VM.PowerMgmt': 1, 'Sys.Audit': 1, 'Datastore.Audit': 1 };

let cert: TestCert;
let server: TestServer;
const clients: ProxmoxClient[] = [];

beforeAll(async () => {
  cert = makeCertWithNodeCrypto();
  server = await startTestServer(
    (req, res) => {
      const path = new URL(req.url ?? '/', 'https://x').pathname;
      if (path.endsWith('/version')) return sendJson(res, 200, { data: { version: '8.4.1', release: '8.4', repoid: '2a5fa54a' } });
      if (path.endsWith('/access/permissions')) return sendJson(res, 200, { data: { '/vms': ALL, '/nodes': ALL, '/storage': ALL } });
      if (path.endsWith('/nodes')) return sendJson(res, 200, { data: [{ node: 'pve1', status: 'online' }] });
      return sendJson(res, 404, { data: null });
    },
    { key: cert.keyPem, cert: cert.certPem },
  );
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
});

function setup(tls?: { fingerprintSha256: string }) {
  const config = {
    environments: { lab: { tier: 'nonprod' as const, maxActivitiesPerSecond: 5, proxmox: { url: server.url, tokenId: TOKEN, tokenSecret: { env: 'X' }, ...(tls ? { tls } : {}) } } },
    // Only power actions are allowed in lab, so the stand-in's grants are exactly enough.
    policy: policySchema.parse({ rules: [{ id: 'power-only', match: { actions: ['*.snapshot.*', '*.clone', '*.migrate', '*.config.update', '*.disk.resize', '*.delete', '*.backup', '*.suspend'] }, decision: 'deny' }] }),
  };
  const client = createProxmoxClient({ baseUrl: server.url, tokenId: TOKEN, tokenSecret: 'not-a-real-secret', ...(tls ? { tls } : {}) });
  clients.push(client);
  return { config, env: { client, tokenId: TOKEN } };
}

describe('doctor probe over https', () => {
  it('with the right pin: the fingerprint shown as pinned, the release read, no blocker', async () => {
    const { config, env } = setup({ fingerprintSha256: cert.fingerprint256 });
    const r = await probeEnvironment(config, 'lab', env);
    expect(r.checks.find((c) => c.id === 'tls')).toMatchObject({ ok: true, detail: `certificate SHA-256 ${cert.fingerprint256}, pinned` });
    expect(r.pve).toEqual({ version: '8.4.1', release: '8.4', major: 8 });
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('with a stale pin: a blocker naming the certificate the server presents', async () => {
    const { config, env } = setup({ fingerprintSha256: flip(cert.fingerprint256) });
    const r = await probeEnvironment(config, 'lab', env);
    const tls = r.checks.find((c) => c.id === 'tls')!;
    expect(tls).toMatchObject({ ok: false, severity: 'blocker' });
    expect(tls.fix).toEqual([`environments.lab.proxmox.tls.fingerprintSha256: "${cert.fingerprint256}"  (after checking it on the node: pvenode cert info)`]);
    expect(r.checks.find((c) => c.id === 'reach')).toMatchObject({ ok: false, severity: 'blocker' });
  });

  it('unpinned and untrusted (the first run against a self-signed pveproxy): the fingerprint to pin is shown', async () => {
    const { config, env } = setup();
    const r = await probeEnvironment(config, 'lab', env);
    expect(r.checks.find((c) => c.id === 'tls')!.fix).toEqual([`to pin it: environments.lab.proxmox.tls.fingerprintSha256: "${cert.fingerprint256}"`]);
    expect(r.checks.find((c) => c.id === 'reach')).toMatchObject({ ok: false, severity: 'blocker' });
  });

  it('readiness shows the last run per environment, and a blocker does not make it fail', async () => {
    const { config, env } = setup();
    const doctor = createDoctor(config, () => env);
    const watch = { status: () => ({ reachable: true, checks: { temporal: { ok: true, detail: 'up' } } }) } as never;
    const ready = createReadinessCheck(watch, () => false, () => doctorReadinessDetails(doctor));
    expect((await ready()).checks).not.toHaveProperty('doctor.lab');
    await doctor.run();
    const report = await ready();
    expect(report.ok).toBe(true);
    expect(report.checks['doctor.lab']).toMatchObject({ ok: false });
    expect(report.checks['doctor.lab']!.detail).toMatch(/^1 blocker\(s\): reach \(as of /);
  });
});
