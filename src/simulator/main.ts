/**
 * `npm run sim`: the two demo clusters on loopback with fresh random token secrets.
 * Ports come from SIM_LAB_PORT / SIM_PROD_PORT (default 8006 / 8007). A busy port is an error, not a
 * reason to pick another one: scripts and demos rely on the announced address.
 */
import { randomUUID } from 'node:crypto';
import { DEMO_TOKEN_ID, demoClusters, startSimulator, type ProxmoxSimulator } from './index.js';

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a TCP port (1-65535), got '${raw}'`);
  return n;
}

async function start(label: string, envName: string, fallback: number, cluster: Parameters<typeof startSimulator>[0]['cluster']): Promise<ProxmoxSimulator> {
  const p = port(envName, fallback);
  try {
    return await startSimulator({ cluster, port: p });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${p} for the ${label} cluster is already in use; free it or set ${envName} to another port`);
    }
    throw e;
  }
}

async function main(): Promise<void> {
  const secrets = { lab: randomUUID(), prod: randomUUID() };
  const clusters = demoClusters(secrets);
  const lab = await start('lab', 'SIM_LAB_PORT', 8006, clusters.lab);
  let prod: ProxmoxSimulator;
  try {
    prod = await start('prod', 'SIM_PROD_PORT', 8007, clusters.prod);
  } catch (e) {
    await lab.close();
    throw e;
  }

  console.log('Proxmox VE API simulator running (loopback only)\n');
  for (const [name, sim, secret] of [['lab', lab, secrets.lab], ['prod', prod, secrets.prod]] as const) {
    console.log(`${name}:`);
    console.log(`  url:      ${sim.url}/api2/json`);
    console.log(`  token id: ${DEMO_TOKEN_ID}`);
    console.log(`  secret:   ${secret}`);
    console.log(`  header:   Authorization: PVEAPIToken=${DEMO_TOKEN_ID}=${secret}\n`);
  }
  console.log('Press Ctrl+C to stop.');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal} received, shutting down`);
    Promise.all([lab.close(), prod.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`simulator failed to start: ${(err as Error).message}`);
  process.exit(1);
});
