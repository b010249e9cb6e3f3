/**
 * Records workflow histories for the replay test (test/workflows/replay.test.ts): starts a
 * throw-away headless dev server and the demo service in this process, runs each scenario to its end
 * through the HTTP API, and writes each run's history (`temporal workflow show --output json`) to
 * test/fixtures/histories/.
 *
 * Run it BEFORE a change to the workflow's commands, from the commit whose behaviour the fixtures must
 * pin (docs/operations.md, "Upgrading running workflows"):
 *
 *   npx tsx scripts/record-histories.ts [--prefix v1]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logging.js';
import { startService } from '../src/service.js';
import { ensureTemporalCli } from '../src/temporal/cli-locator.js';
import { getFreePort, startDevServer } from '../src/temporal/dev-server.js';
import { installTemporalRuntime } from '../src/temporal/runtime.js';

const OUT = fileURLToPath(new URL('../test/fixtures/histories/', import.meta.url));
const { values } = parseArgs({ options: { prefix: { type: 'string', default: 'v1' } } });

interface Scenario {
  name: string;
  plan: { action: string; environment: string; target: { vmid: number }; params: Record<string, unknown>; reason: string };
  approvers: string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'vm-start-lab', plan: { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'replay fixture: low risk' }, approvers: [] },
  {
    name: 'vm-delete-prod-two-approvals',
    plan: { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'replay fixture: critical, two approvals' },
    approvers: ['demo-approver-1-token', 'demo-approver-2-token'],
  },
];

async function main(): Promise<void> {
  const log = createLogger({ level: 'warn' });
  installTemporalRuntime(log);
  const cli = await ensureTemporalCli();
  const tmp = mkdtempSync(join(tmpdir(), 'pa-record-'));
  const server = await startDevServer({ port: await getFreePort(), dbFile: join(tmp, 'temporal.sqlite'), headless: true, reuseExisting: false });
  const { config, path } = loadConfig({});
  config.server.port = 0;
  config.audit.file = join(tmp, 'audit.jsonl');
  const service = await startService({ config, configPath: path, temporal: { address: server.address, namespace: server.namespace }, log, pollIntervalMs: 50, simulator: { taskDurationMs: 50 } });
  const call = async (method: string, p: string, token: string, body?: unknown) => {
    const res = await fetch(`${service.url}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return (await res.json()) as Record<string, any>;
  };
  try {
    mkdirSync(OUT, { recursive: true });
    for (const s of SCENARIOS) {
      const plan = await call('POST', '/v1/actions/plan', 'demo-agent-token', s.plan);
      await call('POST', '/v1/actions/apply', 'demo-agent-token', { planId: plan.planId, requestHash: plan.requestHash });
      for (const token of s.approvers) await call('POST', `/v1/actions/${plan.planId}/approvals`, token, { decision: 'approve' });
      const handle = service.client.workflow.getHandle(plan.planId);
      await handle.result();
      const file = join(OUT, `${values.prefix}-${s.name}.json`);
      // The CLI's proto JSON is what Worker.runReplayHistory reads (historyFromJSON); the SDK's own
      // historyToJSON trips over two protobufjs copies in this install.
      const json = execFileSync(cli, ['workflow', 'show', '--workflow-id', plan.planId, '--output', 'json', '--address', server.address, '--namespace', server.namespace], { encoding: 'utf8' });
      writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
      const final = await call('GET', `/v1/actions/${plan.planId}`, 'demo-agent-token');
      console.log(`${s.name}: ${final.status} → ${file}`);
    }
  } finally {
    await service.stop();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
