import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { casesFileSchema, runCases } from '../../src/policy/cases.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const shipped = casesFileSchema.parse(parseYaml(readFileSync(join(ROOT, 'config/policy-cases.yaml'), 'utf8')));

describe('policy test cases', () => {
  it('the shipped cases pass against the default policy', () => {
    const results = runCases(loadConfig({}).config, shipped.cases);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(10);
  });

  it('a wrong expectation fails with what differed', () => {
    const [result] = runCases(loadConfig({}).config, [
      { name: 'wrong', request: { action: 'vm.delete', environment: 'prod', target: { vmid: 250 } }, expect: { risk: 'low', decision: 'allowed' } },
    ]);
    expect(result!.ok).toBe(false);
    expect(result!.failures).toEqual(['risk: expected low, got critical', 'decision: expected allowed, got requires_approval']);
  });

  it('an invalid request in a case is a failure, not a crash', () => {
    const [result] = runCases(loadConfig({}).config, [{ name: 'bad', request: { action: 'vm.fly', environment: 'lab', target: { vmid: 1 } }, expect: { decision: 'denied' } }]);
    expect(result!.failures[0]).toMatch(/request is not valid/);
  });
});

describe('proxmox-agent policy test', () => {
  const cli = (...args: string[]) => run('node', [join(ROOT, 'bin/proxmox-agent.mjs'), ...args], { cwd: ROOT, env: { ...process.env, PROXMOX_AGENT_CONFIG: '' } });

  it('exits 0 and prints PASS lines for the shipped cases', async () => {
    const { stdout } = await cli('policy', 'test', 'config/policy-cases.yaml');
    expect(stdout).toMatch(/^PASS  start in lab is low and allowed/m);
    expect(stdout).toMatch(/\d+ passed, 0 failed/);
  }, 30_000);

  it('exits 1 when a case fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-cases-'));
    const file = join(dir, 'cases.yaml');
    writeFileSync(file, `config: ${join(ROOT, 'config/demo.yaml')}\ncases:\n  - name: prod delete is surely fine\n    request: { action: vm.delete, environment: prod, target: { vmid: 250 } }\n    expect: { decision: allowed }\n`);
    const err = await cli('policy', 'test', file).then(() => undefined, (e: { code: number; stdout: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stdout).toMatch(/FAIL  prod delete is surely fine/);
    expect(err?.stdout).toMatch(/decision: expected allowed, got requires_approval/);
  }, 30_000);
});
