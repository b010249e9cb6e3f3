/**
 * The Temporal Web UI as the operator's console (issue 7 §1), in a real browser: Debian's headless
 * Chromium driven by playwright-core (never a downloaded browser) opens the UI of a dev server started
 * for this test (the shared test server is headless), filters runs by a search attribute, finds the
 * plan, opens it, and saves screenshots under test-artifacts/.
 *
 * Without /usr/bin/chromium the test is skipped on a developer machine and fails in CI (CI=true):
 * .ci/run installs it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort, startDevServer, type DevServerHandle } from '../../src/temporal/dev-server.js';
import { startTestService, TOKENS, type TestService } from './support/service.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CI = process.env.CI === 'true' || process.env.CI === '1';
const hasChromium = existsSync(CHROMIUM);

if (!hasChromium && CI) {
  describe('Temporal Web UI in a browser', () => {
    it('has Chromium installed (CI installs it: .ci/run)', () => {
      throw new Error(`${CHROMIUM} not found; apt-get install -y chromium`);
    });
  });
} else {
  describe.skipIf(!hasChromium)(`Temporal Web UI in a browser${hasChromium ? '' : ' (no /usr/bin/chromium)'}`, () => {
    let tmp: string;
    let server: DevServerHandle;
    let t: TestService;
    let browser: BrowserContext;
    let page: Page;
    const plans: Record<'prod' | 'lab', { planId: string; temporalUi: string }> = {} as never;

    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'pa-ui-'));
      server = await startDevServer({ port: await getFreePort(), uiPort: await getFreePort(), dbFile: join(tmp, 'temporal.sqlite'), reuseExisting: false });
      t = await startTestService(() => {}, { service: { temporal: { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl! } } });
      for (let i = 0; i < 100 && (await t.call('GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
      // A prod delete that waits for two approvals, and a lab start next to it that the filter must hide.
      for (const [env, body] of [
        ['prod', { action: 'vm.delete', environment: 'prod', target: { vmid: 201 }, params: { purge: true }, reason: 'Decommission db-prod (CHG-42)' }],
        ['lab', { action: 'vm.start', environment: 'lab', target: { vmid: 101 }, params: {}, reason: 'Bring db-lab up' }],
      ] as const) {
        const res = await t.call('POST', '/v1/actions/plan', { token: TOKENS.agent, body });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        plans[env] = { planId: res.body.planId, temporalUi: res.body.links.temporalUi };
      }
      browser = await chromium.launchPersistentContext(join(tmp, 'chromium-profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1440, height: 900 },
      });
      page = browser.pages()[0] ?? (await browser.newPage());
      mkdirSync(ARTIFACTS, { recursive: true });
    }, 180_000);

    /** Waits until `text` is visible in the page or one of its frames (the UI renders Markdown metadata in an iframe). */
    async function shown(text: string, timeoutMs = 30_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const frame of page.frames()) if (await frame.getByText(text).first().isVisible().catch(() => false)) return;
        if (Date.now() > deadline) throw new Error(`"${text}" is not shown on ${page.url()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    afterAll(async () => {
      await browser?.close();
      await t?.stop();
      await server?.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('links every plan to its run in the UI', () => {
      expect(plans.prod.temporalUi).toBe(`${server.uiUrl}/namespaces/${server.namespace}/workflows/${plans.prod.planId}`);
    });

    it('filters runs by a search attribute and finds the plan', async () => {
      const query = 'ProxmoxEnvironment="prod" AND ProxmoxStatus="awaiting_approval"';
      await page.goto(`${server.uiUrl}/namespaces/${server.namespace}/workflows?query=${encodeURIComponent(query)}`);
      const row = page.getByText(plans.prod.planId).first();
      await row.waitFor({ state: 'visible', timeout: 30_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'temporal-ui-filtered-by-search-attribute.png'), fullPage: true });
      // The filter is applied by the server: the lab plan, which does not match, is not listed.
      expect(await page.getByText(plans.lab.planId).count()).toBe(0);
      expect(existsSync(join(ARTIFACTS, 'temporal-ui-filtered-by-search-attribute.png'))).toBe(true);
    }, 60_000);

    it('opens the run from the link, with its summary and search attributes', async () => {
      await page.goto(plans.prod.temporalUi);
      await page.getByText(plans.prod.planId).first().waitFor({ state: 'visible', timeout: 30_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'temporal-ui-plan.png'), fullPage: true });
      // The static summary and details (User Metadata), then the search attributes the run keeps current.
      await page.getByText('User Metadata', { exact: true }).first().click();
      await shown('vm.delete prod/201');
      await shown('Requested by agent:pi-demo: Decommission db-prod (CHG-42)');
      await page.screenshot({ path: join(ARTIFACTS, 'temporal-ui-plan-summary.png'), fullPage: true });
      await page.getByText('Search Attributes', { exact: true }).first().click();
      for (const text of ['ProxmoxEnvironment', 'ProxmoxStatus', 'awaiting_approval', 'ProxmoxRisk', 'critical', 'ProxmoxRequester', 'agent:pi-demo', 'ProxmoxNode', 'pve-prod']) await shown(text);
      await page.screenshot({ path: join(ARTIFACTS, 'temporal-ui-plan-search-attributes.png'), fullPage: true });
    }, 60_000);
  });
}
