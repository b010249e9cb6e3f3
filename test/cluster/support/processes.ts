/**
 * The service's processes as the cluster suite runs them: `node --import tsx src/<role>/main.ts`,
 * which is what `npm run api` / `npm run worker` run (tsx), without npm's wrapper process in between,
 * so a signal reaches the service itself. Each process writes its whole output to
 * test-artifacts/cluster/<name>.log (every start of it, one after the other).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  readonly name: string;
  /** Its HTTP base URL (API, or the worker's /healthz, /readyz, /metrics). */
  readonly url: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Exits nobody asked for (a crash); the suite expects none. */
  readonly unexpectedExits: Exit[];
  readonly logFile: string;
  start(): Promise<void>;
  /** SIGKILL; resolves when the process is gone. */
  kill(): Promise<Exit>;
  /** SIGTERM; resolves with its exit (SIGKILL after `timeoutMs`). */
  term(timeoutMs?: number): Promise<Exit>;
  /** The last `chars` characters of its output, for failure messages. */
  tail(chars?: number): string;
}

export interface ServiceProcessOptions {
  name: string;
  root: string;
  script: string;
  env: NodeJS.ProcessEnv;
  url: string;
  /** The log message (pino `msg`) that says the process is up. */
  readyMessage: string;
  logDir: string;
  startTimeoutMs?: number;
}

export function serviceProcess(o: ServiceProcessOptions): ServiceProcess {
  mkdirSync(o.logDir, { recursive: true });
  const logFile = join(o.logDir, `${o.name}.log`);
  writeFileSync(logFile, '');
  let child: ChildProcess | undefined;
  let exit: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  let expected = false;
  let recent = '';
  const unexpectedExits: Exit[] = [];
  const write = (s: string) => {
    appendFileSync(logFile, s);
    recent = (recent + s).slice(-20_000);
  };

  const stopWith = async (signal: NodeJS.Signals, timeoutMs: number): Promise<Exit> => {
    const c = child;
    if (!c) return { code: null, signal: null };
    expected = true;
    write(`\n----- ${signal} at ${new Date().toISOString()} -----\n`);
    c.kill(signal);
    const hard = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    const e = await exit;
    clearTimeout(hard);
    return e;
  };

  return {
    name: o.name,
    url: o.url,
    logFile,
    unexpectedExits,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined;
    },
    tail: (chars = 4000) => recent.slice(-chars),
    async start() {
      if (child) throw new Error(`${o.name} is already running`);
      write(`\n----- start at ${new Date().toISOString()} -----\n`);
      expected = false;
      const c = spawn(process.execPath, ['--import', 'tsx', join(o.root, o.script)], { cwd: o.root, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      exit = new Promise<Exit>((resolve) =>
        c.once('exit', (code, signal) => {
          write(`\n----- exited (${code ?? signal}) at ${new Date().toISOString()} -----\n`);
          if (!expected) unexpectedExits.push({ code, signal });
          if (child === c) child = undefined;
          resolve({ code, signal });
        }),
      );
      let pending = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${o.name} not up within ${(o.startTimeoutMs ?? 180_000) / 1000} s:\n${recent.slice(-4000)}`)), o.startTimeoutMs ?? 180_000);
        const onLine = (line: string) => {
          try {
            if ((JSON.parse(line) as { msg?: string }).msg !== o.readyMessage) return;
          } catch {
            return;
          }
          clearTimeout(timer);
          resolve();
        };
        c.stdout!.on('data', (d: Buffer) => {
          const s = d.toString();
          write(s);
          const lines = (pending + s).split('\n');
          pending = lines.pop() ?? '';
          lines.forEach(onLine);
        });
        c.stderr!.on('data', (d: Buffer) => write(d.toString()));
        void exit.then((e) => {
          clearTimeout(timer);
          reject(new Error(`${o.name} exited (${e.code ?? e.signal}) before it was up:\n${recent.slice(-4000)}`));
        });
      });
    },
    kill: () => stopWith('SIGKILL', 10_000),
    term: (timeoutMs = 60_000) => stopWith('SIGTERM', timeoutMs),
  };
}
