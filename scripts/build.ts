/**
 * `npm run build` → dist/: what a deployment runs, built ahead (the Dockerfile does this):
 *  - dist/workflow-bundle.js: the workflow code (scripts/build-workflow-bundle.ts);
 *  - dist/bin/worker.mjs and dist/bin/api.mjs: the worker and API entry points as plain JavaScript
 *    (esbuild; npm packages stay external, resolved from node_modules). Run by `node` without tsx:
 *    a worker holds ~40 MB less (tsx's loader and its source maps), which npm run bench measured
 *    (docs/benchmarks.md), and starts without compiling TypeScript.
 * The bundles sit two levels under the project root like the sources under src/<part>/, so the
 * paths the code resolves from its own location (config/, docs/) stay right.
 *
 *   npx tsx scripts/build.ts [--out dist]
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { buildWorkflowBundle } from './build-workflow-bundle.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface BuiltEntryPoints {
  worker: string;
  api: string;
  workflowBundle: string;
}

export async function buildEntryPoints(outDir = resolve(ROOT, 'dist')): Promise<BuiltEntryPoints> {
  const [, workflowBundle] = await Promise.all([
    build({
      entryPoints: { worker: resolve(ROOT, 'src/worker/main.ts'), api: resolve(ROOT, 'src/api/http/main.ts') },
      outdir: resolve(outDir, 'bin'),
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      // Stack traces map back to src/ with `node --enable-source-maps` (off by default: it costs memory).
      sourcemap: 'linked',
      logLevel: 'warning',
    }),
    buildWorkflowBundle(resolve(outDir, 'workflow-bundle.js')),
  ]);
  return { worker: resolve(outDir, 'bin/worker.mjs'), api: resolve(outDir, 'bin/api.mjs'), workflowBundle };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  buildEntryPoints(values.out ? resolve(values.out) : undefined).then(
    (built) => console.log(`built ${built.worker}, ${built.api} and ${built.workflowBundle}`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
