/**
 * One entry point of the service as its own OS process (SIGKILL-able), started and awaited until it
 * logs its ready line: the harnesses that run the API and workers as separate processes share it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ReadyProcess {
  child: ChildProcess;
  /** The ready line, parsed (its fields name the process's URL). */
  line: Record<string, any>;
  /** Everything the process wrote, for the secret scan and for debugging a failure. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns `entry` (a repo-relative .ts file run through tsx, or built JavaScript) with `env`; resolves
 * with the first JSON log line whose msg is `ready`, or rejects with its output if it exits first or
 * stays silent for `timeoutMs`.
 */
export async function spawnUntilReady(entry: string, ready: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ReadyProcess> {
  const args = entry.endsWith('.ts') ? ['--import', 'tsx', join(ROOT, entry)] : [entry];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = await new Promise<Record<string, any>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not start:\n${out}`)), timeoutMs);
    const check = () => {
      const found = out.split('\n').find((l) => l.includes(`"msg":"${ready}"`));
      if (found) {
        clearTimeout(timer);
        resolve(JSON.parse(found));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    line,
    output: () => out,
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
