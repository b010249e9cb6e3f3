/**
 * The target of the third-party conformance test (scripts/conformance/proxmoxer_conformance.py):
 * the prod demo cluster of the simulator on a random loopback port, behind a TLS-terminating proxy
 * on another random loopback port, with a certificate made for this run only. A real client such as
 * proxmoxer only speaks HTTPS, and it should meet the simulator the way it meets pveproxy.
 *
 * Prints one JSON line on stdout once both listen:
 *   {"host","port","user","tokenName","secret","ca","simUrl"}
 * and runs until SIGTERM/SIGINT or stdin closes (the test's process ending).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { DEMO_TOKEN_ID, demoClusters, startSimulator } from '../../src/simulator/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pve-conformance-'));
const key = join(dir, 'key.pem');
const cert = join(dir, 'cert.pem');
// Self-signed for 127.0.0.1, valid one day: the client verifies it against this file (no `verify_ssl=False`).
execFileSync(
  'openssl',
  ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
  { stdio: 'ignore' },
);

const secret = randomUUID();
const sim = await startSimulator({
  cluster: demoClusters({ lab: randomUUID(), prod: secret }).prod,
  host: '127.0.0.1',
  port: 0,
  // Short tasks keep the run quick; the 3 s delay on a failed login stays as on a real pveproxy.
  taskDurationMs: 300,
});
const simPort = Number(new URL(sim.url).port);

// TLS in, plain TCP out: the simulator sees the very bytes the client sent (no HTTP rewriting).
const proxy = tls.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (client) => {
  const upstream = net.connect(simPort, '127.0.0.1');
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const port = (proxy.address() as net.AddressInfo).port;

const [user, tokenName] = DEMO_TOKEN_ID.split('!') as [string, string];
process.stdout.write(`${JSON.stringify({ host: '127.0.0.1', port, user, tokenName, secret, ca: cert, simUrl: sim.url })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  proxy.close();
  void sim.close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
