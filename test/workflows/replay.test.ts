/**
 * Replays committed histories against today's workflow code. A history recorded by an older version
 * (scripts/record-histories.ts) must replay without a determinism error: that is what lets a new
 * worker pick up runs an old worker started (docs/operations.md, "Upgrading running workflows").
 * No server needed; the workflow bundle is built from source.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildWorkflowBundle } from '../../scripts/build-workflow-bundle.js';
import { WORKFLOWS_PATH } from '../../src/worker/worker.js';
import { readHistory } from './support/history.js';

const DIR = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never;

let bundle: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  // The diverging-code check makes the core log its nondeterminism at WARN: expected here.
  Runtime.install({ logger: new DefaultLogger('WARN'), telemetryOptions: { logging: { forward: {}, filter: { core: 'ERROR', other: 'ERROR' } } } });
  bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
}, 120_000);

describe('replay of recorded histories', () => {
  it('has fixtures of the one path the workflow has (v5: no patches, the dispatch journal, the plan published in the memo, the apply-time re-check a regular activity)', () => {
    // No deployment exists yet, so older paths are not kept (docs/operations.md). From the first
    // release on, a change to the workflow's commands is gated by patched() and adds fixtures here.
    expect(files).toEqual(expect.arrayContaining(['v5-vm-start-lab.json', 'v5-vm-delete-prod-two-approvals.json']));
  });

  it('fails on workflow code that diverges from a history (the check has teeth)', async () => {
    const diverging = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./support/diverging-workflow.ts', import.meta.url)), logger: quiet });
    const history = readHistory(join(DIR, 'v5-vm-start-lab.json'));
    await expect(Worker.runReplayHistory({ workflowBundle: diverging }, history, 'diverging')).rejects.toMatchObject({ name: 'DeterminismViolationError' });
  }, 60_000);

  it.each(files)('%s replays deterministically', async (file) => {
    const history = readHistory(join(DIR, file));
    await expect(Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history, file)).resolves.toBeUndefined();
  }, 60_000);

  it('replays from the prebuilt bundle the Docker image ships (npm run build:workflows)', async () => {
    const codePath = await buildWorkflowBundle(join(mkdtempSync(join(tmpdir(), 'pa-bundle-')), 'workflow-bundle.js'));
    const history = readHistory(join(DIR, 'v5-vm-delete-prod-two-approvals.json'));
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath } }, history, 'prebuilt')).resolves.toBeUndefined();
  }, 60_000);
});
