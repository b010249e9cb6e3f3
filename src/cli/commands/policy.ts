import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../config/load.js';
import { casesFileSchema, runCases } from '../../policy/cases.js';

export function register(program: Command): void {
  const policy = program.command('policy').description('Test and inspect the policy');
  policy
    .command('test')
    .argument('<file>', 'YAML file of cases: request → expected risk and decision')
    .option('--config <path>', 'config file whose policy to test (default: the file named in the cases, else PROXMOX_AGENT_CONFIG, else the demo config)')
    .description('Run policy test cases; exits 1 if any case fails')
    .action((file: string, opts: { config?: string }) => {
      const parsed = casesFileSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
      if (!parsed.success) {
        throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      const configPath = opts.config ?? (parsed.data.config ? resolve(dirname(file), parsed.data.config) : undefined);
      const { config, path } = loadConfig(configPath ? { ...process.env, PROXMOX_AGENT_CONFIG: configPath } : process.env);
      const results = runCases(config, parsed.data.cases);
      for (const r of results) {
        const d = r.decision;
        const summary = d ? `${d.risk}/${d.decision}${d.approvalsRequired ? ` (${d.approvalsRequired} approvals)` : ''}` : '';
        console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}${summary ? `  → ${summary}` : ''}`);
        for (const f of r.failures) console.log(`        ${f}`);
      }
      const failed = results.filter((r) => !r.ok).length;
      console.log(`\n${results.length - failed} passed, ${failed} failed (policy of ${path})`);
      if (failed > 0) process.exitCode = 1;
    });
}
