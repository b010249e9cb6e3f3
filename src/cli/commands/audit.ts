import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { verifyBundleAgainstLog, verifyEvidenceBundle, type EvidenceBundle } from '../../audit/evidence.js';
import { checkpointsPathFor, readCheckpoints, readRecords } from '../../audit/file-store.js';
import { readPostgresAudit, redactUrl } from '../../audit/pg-store.js';
import type { AuditRecord } from '../../audit/record.js';
import { generateAuditKeyPair, parsePublicKey, type SignedCheckpoint } from '../../audit/signing.js';
import { verifyAudit, type VerifyReport } from '../../audit/verify.js';
import { loadConfig, resolveSecret } from '../../config/load.js';

interface VerifyOpts {
  file?: string;
  checkpoints?: string;
  postgresUrlEnv?: string;
  publicKey?: string;
  head?: string[];
  bundle?: string;
  config?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const audit = program.command('audit').description('Check the audit log and manage its signing key');

  audit
    .command('verify')
    .description(
      'Check the hash chain (edits, deletions, insertions, reordering) and the signed heads (truncation); ' +
        'exit 0 when intact, 1 with the first bad record otherwise',
    )
    .option('--file <path>', 'a JSONL audit log (its checkpoints are read from <path>.checkpoints.jsonl)')
    .option('--checkpoints <path>', 'signed checkpoints file, if not beside the log')
    .option('--postgres-url-env <VAR>', 'environment variable holding the PostgreSQL connection string')
    .option('--public-key <path>', 'PEM public key that must have signed every checkpoint (audit keygen)')
    .option('--head <path...>', 'signed heads kept elsewhere (a checkpoint or an evidence bundle, JSON): the log must still contain them')
    .option('--bundle <path>', 'an evidence bundle (GET /v1/actions/{planId}/evidence): checked offline, and against the log if one is given')
    .option('--config <path>', 'take the store (and public key) from this config (default when no --file/--postgres-url-env: PROXMOX_AGENT_CONFIG or the demo config)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: VerifyOpts) => {
      process.exitCode = (await verifyCommand(opts)) ? 0 : 1;
    });

  audit
    .command('keygen')
    .description('Make an Ed25519 key pair for signing chain heads (audit.signing.privateKey)')
    .option('--out-dir <dir>', 'write audit-signing.key (mode 0600) and audit-signing.pub there instead of printing the private key')
    .action((opts: { outDir?: string }) => {
      const pair = generateAuditKeyPair();
      if (opts.outDir) {
        mkdirSync(opts.outDir, { recursive: true });
        const keyFile = resolve(opts.outDir, 'audit-signing.key');
        const pubFile = resolve(opts.outDir, 'audit-signing.pub');
        if (existsSync(keyFile)) throw new Error(`${keyFile} exists: refusing to overwrite a signing key`);
        writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
        chmodSync(keyFile, 0o600);
        writeFileSync(pubFile, pair.publicKeyPem);
        console.log(`private key: ${keyFile} (keep it secret: it signs the audit log)\npublic key:  ${pubFile} (give it to auditors: audit verify --public-key)\nkey id:      ${pair.keyId}\n`);
        console.log(`audit:\n  signing:\n    privateKey: { file: ${keyFile} }`);
        return;
      }
      console.log(pair.privateKeyPem + pair.publicKeyPem + `# key id ${pair.keyId}\n`);
      console.log('# Keep the private key secret (audit.signing.privateKey: {file: ...} or {env: ...});');
      console.log('# give the public key to auditors: proxmox-agent audit verify --public-key <file>.');
    });
}

async function verifyCommand(opts: VerifyOpts): Promise<boolean> {
  const bundle = opts.bundle ? (JSON.parse(readFileSync(opts.bundle, 'utf8')) as EvidenceBundle) : undefined;
  let publicKey: KeyObject | undefined = opts.publicKey ? parsePublicKey(readFileSync(opts.publicKey, 'utf8')) : undefined;
  const trustedHeads = (opts.head ?? []).map(readHead);

  let source: { label: string; records: AuditRecord[]; checkpoints: SignedCheckpoint[] } | undefined;
  if (opts.file) {
    source = {
      label: opts.file,
      records: await readRecords(opts.file),
      checkpoints: await readCheckpoints(opts.checkpoints ?? checkpointsPathFor(opts.file)),
    };
  } else if (opts.postgresUrlEnv) {
    const url = process.env[opts.postgresUrlEnv];
    if (!url) throw new Error(`environment variable ${opts.postgresUrlEnv} is not set`);
    source = { label: redactUrl(url), ...(await readPostgresAudit(url)) };
  } else if (!bundle || opts.config) {
    const { config, path } = loadConfig(opts.config ? { ...process.env, PROXMOX_AGENT_CONFIG: opts.config } : process.env);
    if (!publicKey && config.audit.signing) {
      // The operator's own check: the public half of the configured key. Auditors pass --public-key.
      publicKey = createPublicKey(resolveSecret(config.audit.signing.privateKey, 'audit.signing.privateKey', process.env, path));
    }
    if (config.audit.postgres) {
      const url = resolveSecret(config.audit.postgres.url, 'audit.postgres.url', process.env, path);
      source = { label: redactUrl(url), ...(await readPostgresAudit(url)) };
    } else {
      source = { label: config.audit.file, records: await readRecords(config.audit.file), checkpoints: await readCheckpoints(checkpointsPathFor(config.audit.file)) };
    }
  }

  let ok = true;
  const out: Record<string, unknown> = {};
  if (bundle) {
    const check = verifyEvidenceBundle(bundle, publicKey);
    const againstLog = source ? verifyBundleAgainstLog(bundle, source.records) : [];
    out.bundle = { ...check, problems: [...check.problems, ...againstLog], ok: check.ok && againstLog.length === 0 };
    ok &&= check.ok && againstLog.length === 0;
    if (bundle.audit.checkpoint) trustedHeads.push(bundle.audit.checkpoint);
  }
  if (source) {
    const report = verifyAudit(source.records, { checkpoints: source.checkpoints, trustedHeads, ...(publicKey ? { publicKey } : {}) });
    out.log = { source: source.label, ...report };
    ok &&= report.ok;
    if (!opts.json) printReport(source.label, report);
  }
  if (opts.json) console.log(JSON.stringify({ ok, ...out }, null, 2));
  else if (bundle) printBundle(opts.bundle!, out.bundle as { ok: boolean; problems: string[]; notes: string[] });
  return ok;
}

function readHead(path: string): SignedCheckpoint {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as SignedCheckpoint | EvidenceBundle;
  const head = 'audit' in parsed ? parsed.audit.checkpoint : parsed;
  if (!head || typeof head.seq !== 'number') throw new Error(`${path}: neither a signed checkpoint nor a bundle with one`);
  return head;
}

function printReport(label: string, r: VerifyReport): void {
  const sig = r.checkpoints.count === 0 ? 'no signed checkpoints' : `${r.checkpoints.count} signed checkpoint(s), signatures ${r.checkpoints.signaturesChecked ? 'verified' : 'NOT checked (no --public-key)'}`;
  if (r.ok) {
    console.log(`OK  ${label}: ${r.records} records, head seq ${r.head.seq} ${r.head.hash}; ${sig}`);
    if (r.checkpoints.count > 0) console.log(`    ${r.unsignedTail} record(s) after the newest signed head (seq ${r.checkpoints.latest?.seq ?? 0})`);
  } else {
    const p = r.problem!;
    console.log(`FAIL  ${label}: first bad ${p.source === 'chain' ? 'record' : p.source} at seq ${p.seq} (${p.source === 'chain' ? 'line' : 'entry'} ${p.line}): ${p.problem}`);
  }
  for (const w of r.warnings) console.log(`    warning: ${w}`);
}

function printBundle(path: string, check: { ok: boolean; problems: string[]; notes: string[] }): void {
  console.log(`${check.ok ? 'OK' : 'FAIL'}  bundle ${path}`);
  for (const p of check.problems) console.log(`    problem: ${p}`);
  for (const n of check.notes) console.log(`    note: ${n}`);
}
