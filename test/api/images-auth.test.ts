// docker login/logout against an htpasswd registry through berth daemon (POST /auth), pulls
// and pushes that carry X-Registry-Auth, `pull --all-tags`, and concurrent pulls of one image.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { DOCKER_BIN, TestDaemon, type RunResult } from '../helpers/daemon.ts';
import { startRegistry, TEST_PASSWORD, TEST_USER, type TestRegistry } from '../helpers/registry.ts';
import { buildBusyboxLayout, buildMultiLayerLayout, pushLayout, tempLayoutDir, type Layout } from '../helpers/images.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let reg: TestRegistry;
let plain: TestRegistry;
let token: TestRegistry;
let busybox: Layout;
let multi: Layout;
const creds = `${TEST_USER}:${TEST_PASSWORD}`;

before(async () => {
  if (skip) return;
  reg = await startRegistry({ auth: 'htpasswd' });
  plain = await startRegistry();
  busybox = buildBusyboxLayout(tempLayoutDir());
  multi = buildMultiLayerLayout(tempLayoutDir());
  await pushLayout(busybox, reg.host, 'private/bb:latest', { creds });
  await pushLayout(busybox, plain.host, 'tags/bb:one');
  await pushLayout(multi, plain.host, 'tags/bb:two');
  await pushLayout(multi, plain.host, 'same/multi:latest');
  token = await startRegistry({ auth: 'token' });
  await pushLayout(busybox, token.host, 'public/bb:latest', { creds });
  await pushLayout(busybox, token.host, 'team/bb:latest', { creds });
  d = await TestDaemon.start();
});
after(async () => {
  await d?.cleanup();
  await reg?.stop();
  await plain?.stop();
  await token?.stop();
  for (const l of [busybox, multi]) if (l) rmSync(l.dir, { recursive: true, force: true });
});

const explain = (r: RunResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

test('docker login (wrong, right), pull and push with credentials, logout', { skip }, async () => {
  const name = `${reg.host}/private/bb:latest`;
  // A 401 makes docker ≥ 26 offer an interactive login; stdin at EOF declines it.
  let r = await d.docker(['pull', name], { input: '' });
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /unauthorized|authentication required|access denied|Login prior to pull/i, explain(r));

  r = await d.docker(['login', '-u', TEST_USER, '--password-stdin', reg.host], { input: 'wrong\n' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Error response from daemon: /, explain(r));

  r = await d.docker(['login', '-u', TEST_USER, '--password-stdin', reg.host], { input: `${TEST_PASSWORD}\n` });
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /Login Succeeded/);

  r = await d.docker(['pull', name]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['tag', name, `${reg.host}/private/copy:v1`]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['push', `${reg.host}/private/copy:v1`]);
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /: (Mounted from private\/bb|Layer already exists)$/m);

  r = await d.docker(['logout', reg.host]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['push', `${reg.host}/private/copy:v1`], { input: '' });
  assert.notEqual(r.code, 0);
});

test('docker pull --all-tags', { skip }, async () => {
  const r = await d.docker(['pull', '--all-tags', `${plain.host}/tags/bb`], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /^one: Pulling from tags\/bb$/m);
  assert.match(r.stdout, /^two: Pulling from tags\/bb$/m);
  const tags = await d.docker(['images', '--format', '{{.Tag}}', `${plain.host}/tags/bb`]);
  assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['one', 'two']);
});

test('concurrent pulls of one image share the work and both succeed', { skip }, async () => {
  const name = `${plain.host}/same/multi:latest`;
  await d.docker(['rmi', '-f', `${plain.host}/tags/bb:two`]);
  const [a, b] = await Promise.all([d.docker(['pull', name], { timeoutMs: 120_000 }), d.docker(['pull', name], { timeoutMs: 120_000 })]);
  assert.equal(a.code, 0, explain(a));
  assert.equal(b.code, 0, explain(b));
  const ids = await d.docker(['images', '-q', name]);
  assert.equal(ids.stdout.trim(), multi.images[0]!.configDigest.slice(7, 19));
});

test('token-auth registry: anonymous pull of a public repository, login for a private one, push with a token', { skip }, async () => {
  let r = await d.docker(['pull', `${token.host}/public/bb`]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['pull', `${token.host}/team/bb`], { input: '' });
  assert.notEqual(r.code, 0);
  r = await d.docker(['login', '-u', TEST_USER, '--password-stdin', token.host], { input: `${TEST_PASSWORD}\n` });
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['pull', `${token.host}/team/bb`]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['tag', `${token.host}/team/bb`, `${token.host}/team/copy:v1`]);
  assert.equal(r.code, 0, explain(r));
  r = await d.docker(['push', `${token.host}/team/copy:v1`]);
  assert.equal(r.code, 0, explain(r));
  assert.match(r.stdout, /: (Mounted from team\/bb|Layer already exists)$/m);
  const scopes = token.tokenServer!.requests.flatMap((q) => q.scopes);
  assert.ok(scopes.some((x) => /repository:team\/copy:.*push/.test(x)), scopes.join(' '));
});
