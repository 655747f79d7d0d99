// The web UI end to end: Debian's Chromium (headless, driven by playwright-core) against a real
// `berth daemon --ui` and a real registry. Every page is photographed into
// test-artifacts/webui/ (light and dark), kept as the run's artefacts.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, launchBrowser, signedInPage } from '../helpers/browser.ts';
import { importBusybox } from '../helpers/containers.ts';
import { DOCKER_BIN, REPO_ROOT, TestDaemon } from '../helpers/daemon.ts';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';

const skip = !existsSync(DOCKER_BIN) ? `the docker CLI is not installed at ${DOCKER_BIN}`
  : !existsSync(CHROMIUM) ? `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)` : false;
export const SHOTS = join(REPO_ROOT, 'test-artifacts', 'webui');

let d: TestDaemon;
let reg: TestRegistry;
let browser: Browser;
let work: string;
let base: string;
let token: string;
let webImage: string;
let layeredImage: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** Console errors and CSP violations: a page that logs any fails its test. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  // Failed requests are logged by Chromium too; those a flow expects (a 404 before a pull) are
  // not page errors. Script errors and CSP refusals ("Refused to …") are.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return problems;
}

async function ok(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await d.docker(args, { timeoutMs });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}\n${d.log().slice(-2000)}`);
  return r.stdout;
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-webui-e2e-'));
  reg = await startRegistry();
  d = await TestDaemon.start({ args: ['--ui', '127.0.0.1:0'] });
  await importBusybox(d, work);
  // A small web server image, pushed to the registry and removed here, so the UI must pull it.
  const ctx = join(work, 'web');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /www && echo hello-from-berth-ui > /www/index.html\nRUN echo tmp > /tmp/x && rm /tmp/x\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
  webImage = `${reg.host}/ui/web:1`;
  await ok(['build', '-q', '-t', webImage, ctx]);
  await ok(['push', webImage]);
  await ok(['rmi', webImage]);
  // A layered image for the images pages: pulled through the UI, its layers explored.
  const layered = join(work, 'layered');
  mkdirSync(layered);
  writeFileSync(join(layered, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /app/data && echo a > /app/a.txt && echo b > /app/data/b.txt && echo changed-motd > /etc/motd\nRUN rm /app/a.txt && echo c > /c.txt\n');
  layeredImage = `${reg.host}/ui/layered:1`;
  await ok(['build', '-q', '-t', layeredImage, layered]);
  await ok(['push', layeredImage]);
  await ok(['rmi', layeredImage]);
  const status = (await d.request('GET', '/berth/ui')).json<{ URL: string; Token: string }>();
  base = status.URL;
  token = status.Token;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await d?.cleanup();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('without the token: only the sign-in page; the API and pages refuse', { skip, timeout: 60_000 }, async () => {
  const context = await browser.newContext({ baseURL: base });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await page.goto('/');
  assert.equal(new URL(page.url()).pathname, '/login');
  await shot(page, 'login');
  const api = await page.evaluate(async () => (await fetch('/api/containers/json')).status);
  assert.equal(api, 401);
  const write = await page.evaluate(async () => (await fetch('/api/containers/prune', { method: 'POST' })).status);
  assert.equal(write, 401);
  await page.fill('#token', 'not-the-token');
  await page.click('button[type=submit]');
  await page.waitForSelector('.login-error');
  assert.match(await page.textContent('.login-error') ?? '', /Wrong token/);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.goto('/#/containers');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(problems, []);
  await context.close();
});

test('sign in with the link `berth ui` prints (token in the fragment, then removed from the address bar)', { skip, timeout: 60_000 }, async () => {
  const context = await browser.newContext({ baseURL: base });
  const page = await context.newPage();
  const problems = watchConsole(page);
  await page.goto(`/login#token=${token}`);
  await page.waitForURL(base);
  await page.waitForSelector('text=Daemon');
  assert.equal(new URL(page.url()).hash, '');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'berth_session');
  assert.ok(session?.httpOnly && session.sameSite === 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'page scripts cannot read the session');
  assert.deepEqual(problems, []);
  await context.close();
});

test('first load stays under 200 KB of compressed JS and CSS', { skip, timeout: 60_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  await page.goto('/#/dashboard');
  // Not 'networkidle': the event feed keeps a request open for as long as the page lives.
  await page.waitForSelector('text=Storage driver');
  await sleep(500);
  const sizes = await page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => /\/assets\/.*\.(js|css)$/.test(e.name))
    .map((e) => ({ name: e.name, bytes: (e as PerformanceResourceTiming).encodedBodySize, decoded: (e as PerformanceResourceTiming).decodedBodySize })));
  const total = sizes.reduce((n, s) => n + s.bytes, 0);
  const decoded = sizes.reduce((n, s) => n + s.decoded, 0);
  console.log(`# first load: ${sizes.length} files, ${(total / 1024).toFixed(1)} KiB compressed (${(decoded / 1024).toFixed(1)} KiB decoded)`);
  assert.ok(sizes.some((s) => s.name.endsWith('.js')) && sizes.some((s) => s.name.endsWith('.css')));
  assert.ok(total > 0 && total < decoded, 'assets come compressed');
  assert.ok(total < 200 * 1024, `first load is ${total} bytes`);
  assert.ok(!sizes.some((s) => /xterm/i.test(s.name)), 'the terminal is not part of the first load');
  await context.close();
});

test('dashboard: daemon facts, counts, disk usage and live events', { skip, timeout: 60_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto('/#/dashboard');
  await page.waitForSelector('text=Storage driver');
  await page.waitForSelector('table[aria-label="Disk usage"]');
  await ok(['run', '--rm', '--name', 'ui-event-probe', 'busybox', 'true']);
  await page.waitForSelector('.events >> text=ui-event-probe', { timeout: 15_000 });
  await shot(page, 'dashboard');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'dashboard-dark');
  assert.deepEqual(problems, []);
  await context.close();
});

/** Polls `fn` until it returns a truthy value. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

async function containerId(name: string): Promise<string | undefined> {
  const r = await d.request('GET', `/containers/${name}/json`);
  return r.status === 200 ? r.json<{ Id: string }>().Id : undefined;
}

test('run form: an image that is not here is pulled (with progress), started with a published port, and answers', { skip, timeout: 120_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  const hostPort = await freePort();
  await page.goto('/#/containers');
  await page.click('text=Run a container');
  await page.fill('input[name=image]', webImage);
  await page.fill('input[name=name]', 'ui-web');
  await page.fill('textarea[name=ports]', `127.0.0.1:${hostPort}:80`);
  await page.fill('input[name=memory]', '64m');
  await page.click('dialog button[type=submit]');
  // The form pulls first: per-layer progress shows up in the dialog.
  await page.waitForSelector('[data-testid=pull-progress] .layer-row', { timeout: 30_000 });
  await shot(page, 'run-form-pulling');
  const id = await until('the container to exist', () => containerId('ui-web'), 60_000);
  await page.waitForURL((u) => u.hash.startsWith(`#/containers/${id}`), { timeout: 30_000 });
  const body = await until('the published port to answer', async () => {
    const r = await fetch(`http://127.0.0.1:${hostPort}/`);
    return r.ok ? r.text() : undefined;
  });
  assert.equal(body, 'hello-from-berth-ui\n');
  const inspect = (await d.request('GET', `/containers/${id}/json`)).json<{ HostConfig: { Memory: number } }>();
  assert.equal(inspect.HostConfig.Memory, 64 * 1024 * 1024);
  // The list: state, ports and, for a running container, CPU and memory.
  await page.goto('/#/containers');
  const row = page.locator('[data-testid=containers-table] tr', { hasText: 'ui-web' });
  await row.waitFor();
  assert.match(await row.textContent() ?? '', new RegExp(`127\\.0\\.0\\.1:${hostPort}->80/tcp`));
  await until('CPU and memory in the row', async () => /\d+\.\d\d%/.test(await row.textContent() ?? '') && /iB/.test(await row.textContent() ?? ''), 20_000);
  await shot(page, 'containers');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'containers-dark');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the run form shows the daemon\'s error as it is', { skip, timeout: 60_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  await page.goto('/#/containers');
  await page.click('text=Run a container');
  await page.fill('input[name=image]', 'busybox');
  await page.fill('input[name=name]', 'ui-web');
  await page.click('dialog button[type=submit]');
  const err = page.locator('dialog .form-error');
  await err.waitFor();
  assert.match(await err.textContent() ?? '', /Conflict\. The container name "\/ui-web" is already in use/);
  await page.fill('textarea[name=ports]', '80:http');
  await page.click('dialog button[type=submit]');
  await until('the form error', async () => /invalid port mapping "80:http"/.test(await err.textContent() ?? ''));
  await context.close();
});

test('stop and remove from the list, with a confirmation before removing', { skip, timeout: 90_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await ok(['run', '-d', '--name', 'ui-doomed', 'busybox', 'sleep', '600']);
  await page.goto('/#/containers');
  const row = page.locator('[data-testid=containers-table] tr', { hasText: 'ui-doomed' });
  await row.waitFor();
  await row.locator('button', { hasText: 'Stop' }).click();
  await until('the container to stop', async () => (await d.request('GET', '/containers/ui-doomed/json')).json<{ State: { Status: string } }>().State.Status === 'exited', 30_000);
  await row.locator('.badge-exited').waitFor({ timeout: 10_000 });
  await row.locator('button', { hasText: 'Remove' }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  assert.match(await dialog.textContent() ?? '', /Remove this container/);
  await shot(page, 'containers-confirm-remove');
  // Cancel keeps it.
  await dialog.locator('button', { hasText: 'Cancel' }).click();
  assert.equal((await d.request('GET', '/containers/ui-doomed/json')).status, 200);
  await row.locator('button', { hasText: 'Remove' }).click();
  await page.locator('dialog[open] button', { hasText: 'Remove' }).click();
  await until('the container to go', async () => (await d.request('GET', '/containers/ui-doomed/json')).status === 404);
  await row.waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(problems, []);
  await context.close();
});

test('a list of 500 containers renders in under 200 ms (and scrolls to the last one)', { skip, timeout: 600_000 }, async () => {
  const ids: string[] = [];
  const queue = Array.from({ length: 500 }, (_, i) => i);
  const create = async (): Promise<void> => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      const r = await d.request('POST', `/containers/create?name=ui-many-${i}`, { body: JSON.stringify({ Image: 'busybox', Cmd: ['true'], Labels: { 'ui-many': '1' } }), headers: { 'Content-Type': 'application/json' }, timeoutMs: 60_000 });
      assert.equal(r.status, 201, r.body.toString());
      ids.push(r.json<{ Id: string }>().Id);
    }
  };
  try {
    await Promise.all([create(), create(), create(), create()]);
    const { context, page } = await signedInPage(browser, base, token);
    const runs: Array<{ render: number; fetch: number; total: number }> = [];
    for (let round = 0; round < 3; round++) {
      await page.goto('/#/dashboard');
      await page.waitForSelector('text=Storage driver');
      // A string, not a function: tsx's transform would add helpers (__name) the page lacks.
      const m = await page.evaluate(`(async () => {
        performance.clearResourceTimings();
        const t0 = performance.now();
        location.hash = '#/containers';
        await new Promise((resolve) => {
          (function check() {
            const t = document.querySelector('[data-testid=containers-table]');
            if (t && Number(t.getAttribute('data-count')) >= 500 && t.querySelectorAll('tbody tr:not(.spacer)').length >= 20) resolve();
            else requestAnimationFrame(check);
          })();
        });
        // The frame after the rows are in the DOM is the one that shows them.
        await new Promise((r) => requestAnimationFrame(r));
        const t1 = performance.now();
        const e = performance.getEntriesByType('resource').filter((x) => x.name.includes('/api/containers/json'))[0];
        return { render: t1 - e.responseEnd, fetch: e.responseEnd - e.startTime, total: t1 - t0 };
      })()`) as { render: number; fetch: number; total: number };
      runs.push(m);
    }
    await shot(page, 'containers-500', false);
    // Offscreen rows are stand-ins: scrolling brings the real ones.
    const table = page.locator('[data-testid=containers-table]');
    const height = await table.evaluate((t) => t.getBoundingClientRect().height);
    assert.ok(height > 500 * 30, `the table is as tall as 500 rows (${height}px)`);
    const names = await table.locator('tbody tr:not(.spacer) td:first-child').allTextContents();
    await page.mouse.wheel(0, height);
    await until('the last rows after scrolling', async () => {
      const now = await table.locator('tbody tr:not(.spacer) td:first-child').allTextContents();
      return now.length > 0 && !now.some((n) => names.includes(n)) ? now : undefined;
    });
    const all = new Set<string>();
    for (let y = 0; y <= height + 1000; y += 400) {
      await page.evaluate((top) => scrollTo(0, top), y);
      await sleep(60);
      for (const n of await table.locator('tbody tr:not(.spacer) td:first-child').allTextContents()) all.add(n);
    }
    assert.equal([...all].filter((n) => n.startsWith('ui-many-')).length, 500, 'every container is reachable by scrolling');
    await context.close();
    const render = runs.map((r) => r.render).sort((a, b) => a - b)[1];
    console.log(`# 500 containers: render ${runs.map((r) => r.render.toFixed(0)).join('/')} ms (median ${render.toFixed(0)}), API ${runs.map((r) => r.fetch.toFixed(0)).join('/')} ms, total ${runs.map((r) => r.total.toFixed(0)).join('/')} ms`);
    assert.ok(render < 200, `rendering 500 containers took ${render.toFixed(0)} ms`);
  } finally {
    const left = [...ids];
    const remove = async (): Promise<void> => {
      for (let id = left.shift(); id !== undefined; id = left.shift()) await d.request('DELETE', `/containers/${id}?force=1`, { timeoutMs: 60_000 });
    };
    await Promise.all([remove(), remove(), remove(), remove()]);
  }
});

test('build: a pasted Dockerfile with an added file builds, streams its log, is tagged; the rebuild is CACHED', { skip, timeout: 180_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto('/#/build');
  await page.fill('textarea[name=dockerfile]', 'FROM busybox\nCOPY greeting.txt /greeting.txt\nRUN cat /greeting.txt && echo built-in-ui\nCMD ["cat", "/greeting.txt"]\n');
  const file = join(work, 'greeting.txt');
  writeFileSync(file, 'hello from the build page\n');
  await page.setInputFiles('input[name=files]', file);
  await page.fill('input[name=tag]', 'ui-built:1');
  await page.click('[data-testid=build-submit]');
  await page.waitForSelector('[data-testid=build-status][data-build="1"][data-phase=done]', { timeout: 120_000 });
  const log = await page.locator('[data-testid=build-log]').textContent() ?? '';
  assert.match(log, /hello from the build page/);
  assert.match(log, /built-in-ui/);
  assert.equal(await page.locator('[data-testid=build-log] .badge-cached').count(), 0, 'nothing cached on the first build');
  await page.locator('[data-testid=build-result]').waitFor();
  assert.match(await page.locator('[data-testid=build-result]').textContent() ?? '', /ui-built:1/);
  await shot(page, 'build');
  const run = await d.docker(['run', '--rm', 'ui-built:1']);
  assert.equal(run.stdout, 'hello from the build page\n');
  await page.click('[data-testid=build-submit]');
  await page.waitForSelector('[data-testid=build-status][data-build="2"][data-phase=done]', { timeout: 120_000 });
  assert.ok(await page.locator('[data-testid=build-log] .badge-cached').count() >= 2, 'COPY and RUN come from the cache');
  await shot(page, 'build-cached');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'build-dark');
  assert.deepEqual(problems, []);
  await context.close();
});

test('build: a failing step shows the daemon\'s error', { skip, timeout: 120_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  await page.goto('/#/build');
  await page.fill('textarea[name=dockerfile]', 'FROM busybox\nRUN echo about-to-fail && exit 7\n');
  await page.click('[data-testid=build-submit]');
  await page.waitForSelector('[data-testid=build-status][data-phase=failed]', { timeout: 120_000 });
  assert.match(await page.locator('[data-testid=build-error]').textContent() ?? '', /returned a non-zero code: 7/);
  assert.match(await page.locator('[data-testid=build-log]').textContent() ?? '', /about-to-fail/);
  await shot(page, 'build-failed');
  await context.close();
});

test('volumes and networks: create, see, remove', { skip, timeout: 120_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto('/#/volumes');
  await page.click('text=Create volume');
  await page.fill('dialog input[name=name]', 'ui-vol');
  await page.click('dialog button[type=submit]');
  await page.locator('tr[data-volume=ui-vol]').waitFor();
  assert.equal((await d.request('GET', '/volumes/ui-vol')).status, 200);
  await shot(page, 'volumes');
  await page.locator('tr[data-volume=ui-vol] button', { hasText: 'Remove' }).click();
  await page.locator('dialog[open] button', { hasText: 'Remove' }).click();
  await page.locator('tr[data-volume=ui-vol]').waitFor({ state: 'detached' });
  assert.equal((await d.request('GET', '/volumes/ui-vol')).status, 404);

  await page.goto('/#/networks');
  await page.click('text=Create network');
  await page.fill('dialog input[name=name]', 'ui-net');
  await page.fill('dialog input[name=subnet]', '10.231.7.0/24');
  await page.click('dialog button[type=submit]');
  await page.locator('tr[data-network=ui-net]').waitFor();
  assert.match(await page.locator('tr[data-network=ui-net]').textContent() ?? '', /10\.231\.7\.0\/24/);
  const builtin = page.locator('tr[data-network=bridge] button', { hasText: 'Remove' });
  assert.equal(await builtin.isDisabled(), true, 'the built-in bridge cannot be removed');
  await shot(page, 'networks');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'networks-dark');
  await page.locator('tr[data-network=ui-net] button', { hasText: 'Remove' }).click();
  await page.locator('dialog[open] button', { hasText: 'Remove' }).click();
  await page.locator('tr[data-network=ui-net]').waitFor({ state: 'detached' });
  assert.equal((await d.request('GET', '/networks/ui-net')).status, 404);
  assert.deepEqual(problems, []);
  await context.close();
});

test('images: pull with live per-layer progress, tag, push, explore layers, remove', { skip, timeout: 180_000 }, async () => {
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto('/#/images');
  await page.getByRole('button', { name: 'Pull', exact: true }).first().click();
  await page.fill('input[name="pull-ref"]', layeredImage);
  await page.click('dialog button[type=submit]');
  await page.waitForSelector('[data-testid=pull-progress] .layer-row');
  await page.locator('[data-testid=transfer-result]').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('[data-testid=transfer-result]').textContent() ?? '', /Downloaded newer image for/);
  const layerRows = await page.locator('[data-testid=pull-progress] .layer-row').allTextContents();
  assert.ok(layerRows.length >= 3, `a row per layer: ${layerRows.join(' | ')}`);
  assert.ok(layerRows.every((r) => /Pull complete|Already exists/.test(r)), layerRows.join(' | '));
  await shot(page, 'images-pull');
  await page.locator('dialog[open] .btn-icon[aria-label=Close]').click();
  assert.equal((await d.request('GET', `/images/${layeredImage}/json`)).status, 200);

  const row = page.locator(`tr[data-ref="${layeredImage}"]`);
  await row.waitFor();
  await row.locator('button', { hasText: 'Tag' }).click();
  const pushed = `${reg.host}/ui/retagged:2`;
  await page.fill('input[name="tag-target"]', pushed);
  await page.click('dialog button[type=submit]');
  await page.locator(`tr[data-ref="${pushed}"]`).waitFor();
  await page.locator(`tr[data-ref="${pushed}"] button`, { hasText: 'Push' }).click();
  await page.click('dialog button[type=submit]');
  await page.locator('[data-testid=transfer-result]').waitFor({ timeout: 60_000 });
  const pushedManifest = await fetch(`${reg.url}/v2/ui/retagged/manifests/2`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(pushedManifest.status, 200, 'the registry has the pushed tag');
  await shot(page, 'images-push');
  await page.locator('dialog[open] .btn-icon[aria-label=Close]').click();
  await shot(page, 'images');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'images-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // The image page: overview, history, and the layer explorer (adds, changes, deletes).
  const id = (await d.request('GET', `/images/${layeredImage}/json`)).json<{ Id: string }>().Id;
  await page.goto(`/#/images/${id}`);
  await page.waitForSelector('dt:text("Platform")');
  await shot(page, 'image-overview');
  await page.goto(`/#/images/${id}/history`);
  await page.locator('[data-testid=history-table]').waitFor();
  assert.match(await page.locator('[data-testid=history-table]').textContent() ?? '', /rm \/app\/a\.txt/);
  await shot(page, 'image-history');
  await page.goto(`/#/images/${id}/layers`);
  await page.locator('[data-testid=layers]').waitFor({ timeout: 60_000 });
  const cards = page.locator('[data-testid=layer]');
  const n = await cards.count();
  assert.ok(n >= 3, `${n} layers`);
  for (let i = 0; i < n; i++) await cards.nth(i).locator('summary').click();
  const text = await page.locator('[data-testid=layers]').textContent() ?? '';
  assert.match(text, /app\/a\.txt/, 'the file added then deleted shows up');
  assert.match(text, /etc\/motd/, 'the changed file shows up');
  assert.match(text, /c\.txt/);
  await shot(page, 'image-layers');

  await page.goto('/#/images');
  await page.locator(`tr[data-ref="${pushed}"] button`, { hasText: 'Remove' }).click();
  await page.locator('dialog[open] button', { hasText: 'Remove' }).click();
  await page.locator(`tr[data-ref="${pushed}"]`).waitFor({ state: 'detached' });
  assert.equal((await d.request('GET', `/images/${pushed}/json`)).status, 404);
  assert.equal((await d.request('GET', `/images/${layeredImage}/json`)).status, 200, 'removing one tag keeps the other');
  assert.deepEqual(problems, []);
  await context.close();
});

test('container page: overview, live logs, terminal, stats, processes, files', { skip, timeout: 180_000 }, async () => {
  const id = (await ok(['run', '-d', '--name', 'ui-ticker', 'busybox', 'sh', '-c', 'i=0; while true; do echo tick-$i; echo warn-$i >&2; i=$((i+1)); sleep 0.3; done'])).trim();
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto(`/#/containers/${id}`);
  await page.locator('[data-testid=container-overview]').waitFor();
  assert.match(await page.locator('[data-testid=container-overview]').textContent() ?? '', /busybox/);
  await shot(page, 'container-overview');

  // Logs stream: lines keep arriving while the page is open.
  await page.goto(`/#/containers/${id}/logs`);
  const logView = page.locator('[data-testid=log-view]');
  await until('log lines', async () => /tick-\d+/.test(await logView.textContent() ?? ''));
  const highest = async (): Promise<number> => Math.max(...[...(await logView.textContent() ?? '').matchAll(/tick-(\d+)/g)].map((m) => Number(m[1])));
  const first = await highest();
  await until('more log lines streaming in', async () => (await highest()) >= first + 3);
  assert.ok(await logView.locator('.log-line.stderr').count() > 0, 'stderr lines are told apart');
  await shot(page, 'container-logs');

  // Terminal: an exec with a TTY over the websocket, typed into.
  await page.goto(`/#/containers/${id}/terminal`);
  const term = page.locator('[data-testid=terminal]');
  await term.locator('.xterm-rows').waitFor({ timeout: 30_000 });
  await until('a prompt', async () => /#|\$/.test(await term.locator('.xterm-rows').textContent() ?? ''), 15_000);
  await term.click();
  await page.keyboard.type('echo "hello-$((6*7))"\n');
  await until('the command\'s output in the terminal', async () => (await term.locator('.xterm-rows').textContent() ?? '').includes('hello-42'), 15_000);
  await shot(page, 'container-terminal');

  // Stats: live numbers and charts.
  await page.goto(`/#/containers/${id}/stats`);
  await page.locator('[data-testid=stats-cpu]').waitFor();
  await until('memory figures', async () => /\d(\.\d+)?[KMG]?iB/.test(await page.locator('[data-testid=stats-mem]').textContent() ?? ''), 15_000);
  assert.ok(await page.locator('[data-testid=stats] canvas').count() >= 3, 'charts are drawn');
  await sleep(3000);
  await shot(page, 'container-stats');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'container-stats-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // Processes.
  await page.goto(`/#/containers/${id}/top`);
  await page.locator('[data-testid=top-table]').waitFor();
  assert.match(await page.locator('[data-testid=top-table]').textContent() ?? '', /sleep|sh -c/);
  await shot(page, 'container-top');

  // Files: the root directory lists, as in the image.
  await page.goto(`/#/containers/${id}/files`);
  await page.locator('[data-testid=files-table] tr[data-name=bin]').waitFor({ timeout: 30_000 }).catch(async (e) => { await shot(page, 'container-files-failed'); throw e; });
  assert.ok(await page.locator('[data-testid=files-table] tr[data-name=etc]').count() === 1);
  // Into /tmp: upload a file, see it listed and in the container, download it back.
  await page.locator('[data-testid=files-table] tr[data-name=tmp] button.link-button').click();
  await page.locator('[aria-label="Files in /tmp"]').or(page.locator('text=/tmp is empty')).first().waitFor();
  const upload = join(work, 'from the browser.txt');
  writeFileSync(upload, 'uploaded-through-the-ui\n');
  await page.setInputFiles('[data-testid=file-upload]', upload);
  await page.locator('[data-testid=files-table] tr[data-name="from the browser.txt"]').waitFor({ timeout: 20_000 });
  assert.equal((await d.docker(['exec', id, 'cat', '/tmp/from the browser.txt'])).stdout, 'uploaded-through-the-ui\n');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('button[aria-label="Download from the browser.txt"]').click(),
  ]);
  const saved = join(work, 'downloaded.txt');
  await download.saveAs(saved);
  assert.equal(readFileSync(saved, 'utf8'), 'uploaded-through-the-ui\n');
  await shot(page, 'container-files');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the page heap grows by less than 10 MB over an hour of 1 Hz stats', { skip, timeout: 240_000 }, async () => {
  const id = (await d.request('GET', '/containers/ui-ticker/json')).json<{ Id: string }>().Id;
  // Real samples from the daemon (a few seconds' worth) ...
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const real: Array<Record<string, any>> = [];
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ socketPath: d.socket, path: `/containers/${id}/stats?stream=1`, headers: { Host: 'localhost' } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) real.push(JSON.parse(l));
        if (real.length >= 4) { req.destroy(); resolve(); }
      });
    });
    req.on('error', (e) => { if (real.length < 4) reject(e); });
    req.end();
  });
  // ... replayed as an hour: 3600 samples, one second apart, counters growing by the real deltas.
  const hour = (count: number): string => {
    const out: string[] = [];
    const t0 = Date.parse(real[0].read);
    let cpu = real[0].cpu_stats.cpu_usage.total_usage as number;
    let sys = real[0].cpu_stats.system_cpu_usage as number;
    for (let i = 0; i < count; i++) {
      const r = real[i % real.length];
      const p = real[(i + real.length - 1) % real.length];
      const s = structuredClone(r);
      const pre = { cpu_usage: { ...s.cpu_stats.cpu_usage, total_usage: cpu }, system_cpu_usage: sys, online_cpus: s.cpu_stats.online_cpus };
      cpu += Math.max(1, r.cpu_stats.cpu_usage.total_usage - p.cpu_stats.cpu_usage.total_usage);
      sys += Math.max(1_000_000, r.cpu_stats.system_cpu_usage - p.cpu_stats.system_cpu_usage);
      s.read = new Date(t0 + i * 1000).toISOString();
      s.preread = new Date(t0 + (i - 1) * 1000).toISOString();
      s.cpu_stats.cpu_usage.total_usage = cpu;
      s.cpu_stats.system_cpu_usage = sys;
      s.precpu_stats = pre;
      // The last sample is recognisable on the page.
      if (i === count - 1) s.memory_stats.usage = 123 * 1024 * 1024 + (s.memory_stats.stats?.inactive_file ?? s.memory_stats.stats?.total_inactive_file ?? 0);
      out.push(JSON.stringify(s));
    }
    return `${out.join('\n')}\n`;
  };
  const { context, page } = await signedInPage(browser, base, token);
  const cdp = await context.newCDPSession(page);
  const heapAfter = async (count: number): Promise<number> => {
    let served = false;
    await page.route(`**/api/containers/${id}/stats?stream=1`, async (route) => {
      if (served) { await route.continue(); return; }
      served = true;
      await route.fulfill({ status: 200, contentType: 'application/json', body: hour(count) });
    });
    await page.goto('/#/dashboard');
    await page.reload();
    await page.goto(`/#/containers/${id}/stats`);
    await until('the replayed hour to be drawn', async () => /\b123MiB/.test(await page.locator('[data-testid=stats-mem]').textContent() ?? ''), 60_000);
    await sleep(500);
    await page.unroute(`**/api/containers/${id}/stats?stream=1`);
    for (let i = 0; i < 3; i++) await cdp.send('HeapProfiler.collectGarbage');
    return (await cdp.send('Runtime.getHeapUsage')).usedSize;
  };
  const oneSample = await heapAfter(2);
  const anHour = await heapAfter(3600);
  const growth = anHour - oneSample;
  console.log(`# stats heap: ${(oneSample / 1048576).toFixed(2)} MiB after 1 s of stats, ${(anHour / 1048576).toFixed(2)} MiB after 3600 s (growth ${(growth / 1048576).toFixed(2)} MiB)`);
  assert.ok(growth < 10 * 1024 * 1024, `the heap grew by ${growth} bytes`);
  await shot(page, 'container-stats-hour');
  await context.close();
});

test('keyboard and small screens: tab to a page and open it, Escape closes a dialog, the menu folds on a phone', { skip, timeout: 90_000 }, async () => {
  await ok(['create', '--name', 'ui-kbd', '-p', '127.0.0.1::80', 'busybox', 'true']);
  const { context, page } = await signedInPage(browser, base, token);
  const problems = watchConsole(page);
  await page.goto('/#/dashboard');
  await page.waitForSelector('text=Storage driver');
  let reached = false;
  for (let i = 0; i < 15 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.textContent === 'Containers');
  }
  assert.ok(reached, 'the Containers link is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/containers$/);
  await page.getByRole('button', { name: 'Run a container' }).focus();
  await page.keyboard.press('Enter');
  await page.locator('dialog[open]').waitFor();
  assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name), 'image', 'the first field has the focus');
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  const phone = await browser.newContext({ baseURL: base, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, storageState: await context.storageState() });
  const small = await phone.newPage();
  await small.goto('/#/containers');
  await small.locator('[data-testid=containers-table]').waitFor();
  assert.equal(await small.locator('.nav').isVisible(), false, 'the menu is folded');
  const scrollWidth = await small.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= 400, `the page itself does not scroll sideways (${scrollWidth}px)`);
  await shot(small, 'phone-containers');
  await small.getByRole('button', { name: 'Menu' }).click();
  await small.locator('.nav').waitFor();
  await shot(small, 'phone-menu');
  await small.getByRole('link', { name: 'Images' }).click();
  await small.waitForURL(/#\/images$/);
  await small.locator('[data-testid=images-table]').waitFor();
  await shot(small, 'phone-images');
  await small.goto('/#/dashboard');
  await small.waitForSelector('text=Storage driver');
  await shot(small, 'phone-dashboard');
  for (const route of ['#/dashboard', '#/images', '#/build', '#/volumes', '#/networks']) {
    await small.goto(`/${route}`);
    await sleep(800);
    const width = await small.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 400, `${route} does not scroll sideways on a phone (${width}px)`);
  }
  await phone.close();
  assert.deepEqual(problems, []);
  await context.close();
  await ok(['rm', 'ui-kbd']);
});
