/**
 * Bundles the workflow code ahead of time (`npm run build:workflows` → dist/workflow-bundle.js), as
 * the Dockerfile does: a worker started with WORKFLOW_BUNDLE=<that file> skips bundling at start
 * (seconds of CPU per worker process) and runs exactly the code that was built and tested.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../src/worker/worker.js';

export const DEFAULT_BUNDLE_PATH = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never;

export async function buildWorkflowBundle(out = DEFAULT_BUNDLE_PATH, opts: { verbose?: boolean } = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, ...(opts.verbose ? {} : { logger: quiet }) });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  buildWorkflowBundle(values.out ? resolve(values.out) : undefined).then(
    (path) => console.log(`workflow bundle written to ${path}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
