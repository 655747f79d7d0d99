// Headless Chromium (Debian's package) driven by playwright-core, for the web UI's tests.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.BERTH_TEST_CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-features=Translate,MediaRouter,OptimizationHints', '--js-flags=--expose-gc'],
  });
}

/** A fresh browser context (own cookies) with a page that has signed in with `token`. */
export async function signedInPage(browser: Browser, baseUrl: string, token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: baseUrl, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto('/login');
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(`${baseUrl}`), page.click('button[type=submit]')]);
  return { context, page };
}
