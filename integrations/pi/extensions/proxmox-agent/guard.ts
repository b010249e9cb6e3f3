/**
 * Which shell commands would act on Proxmox without going through proxmox-agent. The agent's
 * `bash` tool calls are checked before they run, and a match is blocked with a reason that points
 * the agent at the proxmox_* tools.
 *
 * Blocked:
 *  - the Proxmox CLIs as commands: qm, pct, pvesh, pveum, pvesm, pvenode, pvecm, ha-manager, vzdump,
 *    qmrestore, pct…, also behind wrappers (sudo, env, timeout, nohup, xargs, exec, command…), by
 *    path (/usr/sbin/qm), quoted ("qm"), after `;` `&&` `||` `|` `&`, in subshells and command
 *    substitutions, and inside `bash -c '…'`, `eval '…'`, `su -c '…'` and commands given to `ssh`;
 *  - HTTP and socket clients (curl, wget, httpie, python -c …) whose arguments name port 8006 or the
 *    API path `/api2/json` (or `/api2/extjs`).
 *
 * Allowed: the words as data (`echo qm`, `echo "qm stop 100"`, `grep -rn "qm stop" docs/`,
 * `man qm`, `which qm`), and this service's own API.
 *
 * This is a speed bump against an agent that improvises, not the security boundary: the agent holds
 * no Proxmox credentials (only proxmox-agent does), and a determined program could still hide a
 * call from any text check. The check runs on what the shell would see, so it errs on blocking.
 */

const PROXMOX_COMMANDS = new Set([
  'qm',
  'pct',
  'pvesh',
  'pveum',
  'pvesm',
  'pvenode',
  'pvecm',
  'pveam',
  'pvesr',
  'pve-firewall',
  'ha-manager',
  'vzdump',
  'qmrestore',
  'pct-restore',
  'proxmox-backup-client',
]);

/** Commands that run their arguments as a command. */
const WRAPPERS = new Set(['sudo', 'doas', 'env', 'nohup', 'nice', 'ionice', 'time', 'timeout', 'exec', 'command', 'builtin', 'xargs', 'stdbuf', 'setsid', 'chroot', 'flock', 'unbuffer', 'watch', 'strace', 'runuser', 'chrt', 'taskset']);
/** Shells and evaluators whose string argument is a script. */
const SHELLS = new Set(['bash', 'sh', 'dash', 'zsh', 'ksh', 'ash', 'fish', 'busybox', 'su']);
const NETWORK_CLIENTS = new Set(['curl', 'wget', 'http', 'https', 'xh', 'xhs', 'httpie', 'curlie', 'aria2c', 'nc', 'ncat', 'netcat', 'socat', 'openssl', 'telnet', 'websocat', 'grpcurl', 'lwp-request', 'GET', 'POST', 'PUT', 'DELETE']);
const INTERPRETERS = new Set(['python', 'python2', 'python3', 'node', 'nodejs', 'deno', 'bun', 'perl', 'ruby', 'php', 'lua', 'pwsh', 'powershell', 'osascript']);

const API_TARGET = /:8006\b|\/api2\/(json|extjs)\b/i;
const PROXMOX_WORD = new RegExp(`(^|[^\\w./-])(${[...PROXMOX_COMMANDS].map((c) => c.replace(/-/g, '\\-')).join('|')})(?=\\s|$|['"\\]),;])`);

export interface GuardVerdict {
  block: boolean;
  reason?: string;
}

const REASON =
  'Blocked by the proxmox-agent extension: this command would change or query Proxmox directly, bypassing plan → policy → approval → audit. Use proxmox_catalog, proxmox_inventory, proxmox_plan_action, proxmox_apply_action and proxmox_action_status instead.';

export function checkCommand(command: string): GuardVerdict {
  const why = findBypass(command, 0);
  return why ? { block: true, reason: `${REASON} (${why})` } : { block: false };
}

function findBypass(script: string, depth: number): string | undefined {
  if (depth > 8) return 'nested too deeply to check';
  const { commands, substitutions } = lex(script);
  for (const sub of substitutions) {
    const why = findBypass(sub, depth + 1);
    if (why) return why;
  }
  for (const words of commands) {
    const why = checkSimpleCommand(words, depth);
    if (why) return why;
  }
  return undefined;
}

function checkSimpleCommand(words: string[], depth: number): string | undefined {
  let i = 0;
  // Leading assignments: FOO=bar cmd
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!)) i++;
  while (i < words.length) {
    const word = words[i]!;
    const name = basename(word);
    const args = words.slice(i + 1);
    if (PROXMOX_COMMANDS.has(name)) return `runs ${name}`;
    // A command name computed by a substitution (`$(which qm) stop 100`), or a quoted one with spaces.
    if (/\$\(|`/.test(word) && PROXMOX_WORD.test(word)) return 'runs a Proxmox CLI found by substitution';
    if (/\s/.test(word)) return findBypass(word, depth + 1);
    if (name === 'command' && /^-[vV]$/.test(args[0] ?? '')) return undefined;
    if (WRAPPERS.has(name)) {
      // Skip the wrapper's own options and values (`timeout 30`, `sudo -u root`, `env -i A=b`).
      i++;
      while (i < words.length && (words[i]!.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!) || /^\d+[smhd]?$/.test(words[i]!))) {
        if (['-u', '-g', '-n', '-s', '-k', '-c', '-C'].includes(words[i]!) && name !== 'watch') i++;
        i++;
      }
      continue;
    }
    if (name === 'eval') return findBypass(args.join(' '), depth + 1);
    if (SHELLS.has(name)) {
      const c = args.findIndex((a) => a === '-c' || /^-[a-z]*c$/.test(a));
      if (c >= 0 && args[c + 1] !== undefined) return findBypass(args[c + 1]!, depth + 1);
      return undefined;
    }
    if (name === 'ssh') {
      const remote = sshRemoteCommand(args);
      return remote ? findBypass(remote, depth + 1) : undefined;
    }
    if (NETWORK_CLIENTS.has(name) && args.some((a) => API_TARGET.test(a))) return `${name} to the Proxmox API (port 8006 or /api2/)`;
    if (INTERPRETERS.has(name)) {
      const code = args.join(' ');
      if (API_TARGET.test(code)) return `${name} code that calls the Proxmox API`;
      if (PROXMOX_WORD.test(code) && /subprocess|os\.system|exec|spawn|system\(|popen|`|child_process|Runtime/.test(code)) return `${name} code that runs a Proxmox CLI`;
    }
    return undefined;
  }
  return undefined;
}

/** The command ssh runs on the remote host: the words after the destination. */
function sshRemoteCommand(args: string[]): string | undefined {
  const withValue = new Set(['-b', '-c', '-D', '-E', '-e', '-F', '-I', '-i', '-J', '-L', '-l', '-m', '-O', '-o', '-p', '-Q', '-R', '-S', '-W', '-w', '-B', '-P']);
  let i = 0;
  while (i < args.length && args[i]!.startsWith('-')) i += withValue.has(args[i]!) ? 2 : 1;
  const rest = args.slice(i + 1);
  return rest.length ? rest.join(' ') : undefined;
}

function basename(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}

/**
 * A small POSIX-shell lexer: splits a script into simple commands (words with quotes removed) at
 * `;` `&` `|` `&&` `||` newlines and parentheses, and collects the text of `$(…)` and backtick
 * substitutions (checked as scripts of their own). A word that holds a substitution keeps its text.
 */
function lex(script: string): { commands: string[][]; substitutions: string[] } {
  const commands: string[][] = [];
  const substitutions: string[] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  let i = 0;
  while (i < script.length) {
    const ch = script[i]!;
    if (ch === '\\') {
      if (script[i + 1] === '\n') {
        i += 2;
        continue;
      }
      word += script[i + 1] ?? '';
      inWord = true;
      i += 2;
      continue;
    }
    if (ch === "'") {
      const end = script.indexOf("'", i + 1);
      word += script.slice(i + 1, end < 0 ? undefined : end);
      inWord = true;
      i = end < 0 ? script.length : end + 1;
      continue;
    }
    if (ch === '"') {
      i++;
      inWord = true;
      while (i < script.length && script[i] !== '"') {
        if (script[i] === '\\' && i + 1 < script.length) {
          word += script[i + 1];
          i += 2;
        } else if (script.startsWith('$(', i)) {
          const end = matchParen(script, i + 1);
          substitutions.push(script.slice(i + 2, end));
          word += script.slice(i, end + 1);
          i = end + 1;
        } else if (script[i] === '`') {
          const end = script.indexOf('`', i + 1);
          substitutions.push(script.slice(i + 1, end < 0 ? undefined : end));
          i = end < 0 ? script.length : end + 1;
        } else word += script[i++];
      }
      i++;
      continue;
    }
    if (script.startsWith('$(', i)) {
      const end = matchParen(script, i + 1);
      const inner = script.slice(i + 2, end);
      substitutions.push(inner);
      word += `$(${inner})`;
      inWord = true;
      i = end + 1;
      continue;
    }
    if (ch === '`') {
      const end = script.indexOf('`', i + 1);
      const inner = script.slice(i + 1, end < 0 ? undefined : end);
      substitutions.push(inner);
      inWord = true;
      word += `\`${inner}\``;
      i = end < 0 ? script.length : end + 1;
      continue;
    }
    if (ch === '#' && !inWord) {
      const nl = script.indexOf('\n', i);
      i = nl < 0 ? script.length : nl;
      continue;
    }
    if (/[;&|\n()]/.test(ch)) {
      endCommand();
      i++;
      continue;
    }
    if (/\s/.test(ch)) {
      endWord();
      i++;
      continue;
    }
    if ((ch === '<' || ch === '>') && !inWord) {
      // A redirection: its target is not a command word.
      endWord();
      i++;
      while (script[i] === '>' || script[i] === '&') i++;
      while (/\s/.test(script[i] ?? '')) i++;
      while (i < script.length && !/[\s;&|()]/.test(script[i]!)) i++;
      continue;
    }
    word += ch;
    inWord = true;
    i++;
  }
  endCommand();
  return { commands, substitutions };
}

/** Index of the `)` that closes the `(` at `open`, counting nesting and skipping quotes. */
function matchParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const ch = s[i];
    if (ch === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return s.length;
      i = end;
    } else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i;
  }
  return s.length;
}
