import { createHash, randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { apiTokenSchema, SCOPES } from '../../config/schema.js';

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

/** 32 random bytes (256 bits), base64url, with a prefix that secret scanners and humans recognise. */
export function newTokenSecret(): string {
  return `pa_${randomBytes(32).toString('base64url')}`;
}

/** `90d`, `12h`, `30m`, `2w` → milliseconds; anything else is a usage error. */
export function parseDuration(value: string): number {
  const m = /^([1-9][0-9]{0,3})([mhdw])$/.exec(value.trim()); // at most 9999 units: 9999w ends in 2218
  if (!m) throw new Error(`--expires-in: '${value}' is not a duration such as 30m, 12h, 90d or 2w`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

export function register(program: Command): void {
  const tokens = program.command('tokens').description('Manage API tokens');
  tokens
    .command('create')
    .description('Make a new API token: prints its secret once, and the config entry that holds only its SHA-256')
    .requiredOption('--id <id>', 'token id, e.g. pi-agent (lowercase letters, digits, . _ -)')
    .requiredOption('--principal <principal>', 'who acts with it, e.g. agent:pi or human:alice')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, list)
    .requiredOption('--environments <list>', "comma-separated environment names, or '*'", list)
    .option('--actions <list>', "limit plan, apply and approve/reject to these action patterns, e.g. 'vm.start,vm.snapshot.*'", list)
    .option('--roles <list>', 'approver roles policy rules may require', list)
    .option('--channels <list>', "channels it may approve through: api, cli (default: api only; the CLI's approvals need cli)", list)
    .option('--expires-in <duration>', 'refuse the token after this long: 30m, 12h, 90d, 2w (default: no expiry)')
    .option('--json', 'print {secret, token} as JSON instead')
    .action((opts: { id: string; principal: string; scopes: string[]; environments: string[]; actions?: string[]; roles?: string[]; channels?: string[]; expiresIn?: string; json?: boolean }) => {
      const expiresAt = opts.expiresIn === undefined ? undefined : new Date(Date.now() + parseDuration(opts.expiresIn)).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const secret = newTokenSecret();
      const entry = {
        id: opts.id,
        principal: opts.principal,
        secretSha256: createHash('sha256').update(secret, 'utf8').digest('hex'),
        scopes: opts.scopes,
        environments: opts.environments,
        ...(opts.actions ? { actions: opts.actions } : {}),
        ...(opts.roles ? { roles: opts.roles } : {}),
        ...(opts.channels ? { channels: opts.channels } : {}),
        ...(expiresAt ? { expiresAt } : {}),
      };
      const parsed = apiTokenSchema.safeParse(entry);
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join('; '));
      if (opts.scopes.includes('approve') && (opts.scopes.includes('plan') || opts.scopes.includes('apply')))
        console.error('note: this token can plan and approve; it will still never count as an approver of its own plans');
      if (opts.json) {
        console.log(JSON.stringify({ secret, token: entry }, null, 2));
        return;
      }
      console.log(`Secret of token '${opts.id}' (shown once; only its hash is kept):\n\n  ${secret}\n`);
      console.log('Add this entry under `tokens:` in the config:\n');
      // JSON values are valid YAML flow values, and quote whatever needs quoting.
      const lines = Object.entries(entry).map(([k, v], i) => `${i === 0 ? '  - ' : '    '}${k}: ${JSON.stringify(v).replaceAll('","', '", "')}`);
      console.log(lines.join('\n'));
    });
}
