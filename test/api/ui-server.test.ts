// The web UI's server, from outside: a real `berth daemon --ui`, spoken to over HTTP and
// websockets as a browser (or an attacker's page) would. The browser itself is in test/webui/.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { importBusybox } from '../helpers/containers.ts';
import { DOCKER_BIN, TestDaemon } from '../helpers/daemon.ts';

const skip = existsSync(DOCKER_BIN) ? false : `the docker CLI is not installed at ${DOCKER_BIN}`;
let d: TestDaemon;
let work: string;
let base: URL;
let token: string;

interface Answer { status: number; headers: IncomingHttpHeaders; body: string }

function http(method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, method, path, headers: { Host: base.host, ...(opts.headers ?? {}) }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function signIn(): Promise<{ cookie: string; csrf: string }> {
  const r = await http('POST', '/login', { headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: base.origin }, body: `token=${encodeURIComponent(token)}` });
  assert.equal(r.status, 303, r.body);
  const setCookie = r.headers['set-cookie']?.[0] ?? '';
  const cookie = setCookie.split(';')[0];
  const page = await http('GET', '/', { headers: { Cookie: cookie } });
  assert.equal(page.status, 200);
  const csrf = /<meta name="berth-csrf" content="([^"]+)">/.exec(page.body)?.[1];
  assert.ok(csrf, 'the app page carries the CSRF token');
  return { cookie, csrf };
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'berth-ui-'));
  d = await TestDaemon.start({ args: ['--ui', '127.0.0.1:0'] });
  await importBusybox(d, work);
  const status = (await d.request('GET', '/berth/ui')).json<{ Enabled: boolean; URL: string; Token: string; TokenFile: string }>();
  assert.equal(status.Enabled, true);
  base = new URL(status.URL);
  token = status.Token;
});
after(async () => {
  await d?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the token file is root-only and matches what `berth ui` prints', { skip }, async () => {
  const file = join(d.execRoot, 'ui', 'token');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(d.execRoot, 'ui')).mode & 0o777, 0o700);
  assert.equal(readFileSync(file, 'utf8').trim(), token);
  assert.ok(token.length >= 32);
  const r = await d.berth(['ui']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Berth web UI: ${base.href.replace(/[.]/g, '\\.')}`));
  assert.ok(r.stdout.includes(`Token:        ${token}`));
  assert.ok(r.stdout.includes(`${base.href}login#token=${token}`));
  const j = await d.berth(['ui', '--format', 'json']);
  assert.deepEqual(JSON.parse(j.stdout), { URL: base.href, Token: token, TokenFile: file });
});

test('without a session: only the sign-in page and its static files', { skip }, async () => {
  const root = await http('GET', '/');
  assert.equal(root.status, 303);
  assert.equal(root.headers.location, '/login');
  const login = await http('GET', '/login');
  assert.equal(login.status, 200);
  assert.match(login.body, /<form class="login-card" method="post" action="\/login"/);
  for (const path of ['/api/info', '/api/containers/json', '/api/_ping']) {
    const r = await http('GET', path);
    assert.equal(r.status, 401, path);
    assert.match(r.body, /not signed in/);
  }
  assert.equal((await http('POST', '/api/containers/prune')).status, 401);
  // A forged cookie is no session.
  assert.equal((await http('GET', '/api/info', { headers: { Cookie: 'berth_session=forged' } })).status, 401);
  const ws = await wsOutcome('/ui/ws/exec/abc?csrf=x', { Origin: base.origin });
  assert.equal(ws, 'refused 403');
});

test('sign-in: a wrong token is refused; the right one gives an HttpOnly SameSite=Strict session cookie', { skip }, async () => {
  const started = Date.now();
  const bad = await http('POST', '/login', { headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: base.origin }, body: 'token=wrong' });
  assert.equal(bad.status, 401);
  assert.ok(Date.now() - started >= 350, 'failures are slowed down');
  assert.equal(bad.headers['set-cookie'], undefined);
  assert.match(bad.body, /Wrong token/);
  const good = await http('POST', '/login', { headers: { 'Content-Type': 'application/json', Origin: base.origin }, body: JSON.stringify({ token }) });
  assert.equal(good.status, 200);
  const cookie = good.headers['set-cookie']?.[0] ?? '';
  assert.match(cookie, /^berth_session=[A-Za-z0-9_-]{40,};/);
  assert.match(cookie, /; HttpOnly/);
  assert.match(cookie, /; SameSite=Strict/);
  assert.match(cookie, /; Path=\//);
  // Sign-in from another site's form is refused even with the right token.
  const cross = await http('POST', '/login', { headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://evil.example' }, body: `token=${token}` });
  assert.equal(cross.status, 403);
  const crossSite = await http('POST', '/login', { headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Sec-Fetch-Site': 'cross-site' }, body: `token=${token}` });
  assert.equal(crossSite.status, 403);
});

test('signed in: the Engine API answers through /api, reads without CSRF, writes only with it and same origin', { skip }, async () => {
  const { cookie, csrf } = await signIn();
  const info = await http('GET', '/api/info', { headers: { Cookie: cookie } });
  assert.equal(info.status, 200);
  const direct = (await d.request('GET', '/info')).json<{ ID: string }>();
  assert.equal(JSON.parse(info.body).ID, direct.ID);
  const versioned = await http('GET', '/api/v1.41/version', { headers: { Cookie: cookie } });
  assert.equal(versioned.status, 200);
  assert.equal(versioned.headers['api-version'], '1.47');

  const body = JSON.stringify({ Name: `uivol${process.pid}` });
  const json = { 'Content-Type': 'application/json', Cookie: cookie };
  assert.equal((await http('POST', '/api/volumes/create', { headers: json, body })).status, 403, 'no CSRF token');
  assert.equal((await http('POST', '/api/volumes/create', { headers: { ...json, 'X-Berth-CSRF': 'wrong' }, body })).status, 403, 'wrong CSRF token');
  assert.equal((await http('POST', '/api/volumes/create', { headers: { ...json, 'X-Berth-CSRF': csrf, Origin: 'http://evil.example' }, body })).status, 403, 'other origin');
  assert.equal((await http('POST', '/api/volumes/create', { headers: { ...json, 'X-Berth-CSRF': csrf, 'Sec-Fetch-Site': 'cross-site' }, body })).status, 403, 'cross-site fetch');
  const made = await http('POST', '/api/volumes/create', { headers: { ...json, 'X-Berth-CSRF': csrf, Origin: base.origin, 'Sec-Fetch-Site': 'same-origin' }, body });
  assert.equal(made.status, 201, made.body);
  assert.equal(JSON.parse(made.body).Name, `uivol${process.pid}`);
  const gone = await http('DELETE', `/api/volumes/uivol${process.pid}`, { headers: { Cookie: cookie, 'X-Berth-CSRF': csrf, Origin: base.origin } });
  assert.equal(gone.status, 204);
  // The daemon's own error message reaches the page.
  const missing = await http('GET', '/api/containers/nosuchthing/json', { headers: { Cookie: cookie } });
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).message, 'No such container: nosuchthing');
});

test('no CORS, strict CSP and hardening headers on every answer', { skip }, async () => {
  const { cookie } = await signIn();
  const pre = await http('OPTIONS', '/api/containers/json', { headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-berth-csrf' } });
  assert.equal(pre.status, 403);
  for (const [path, headers] of [['/login', {}], ['/', { Cookie: cookie }], ['/api/info', { Cookie: cookie, Origin: 'http://evil.example' }]] as Array<[string, Record<string, string>]>) {
    const r = await http('GET', path, { headers });
    for (const h of Object.keys(r.headers)) assert.ok(!h.startsWith('access-control-'), `${path}: ${h}`);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/, path);
    assert.match(csp, /script-src 'self';/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, path);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
  }
  const page = await http('GET', '/', { headers: { Cookie: cookie } });
  const nonce = /'nonce-([^']+)'/.exec(String(page.headers['content-security-policy']))?.[1];
  assert.ok(nonce && page.body.includes(`content="${nonce}"`), 'the style nonce is the page\'s own');
  const again = await http('GET', '/', { headers: { Cookie: cookie } });
  assert.notEqual(/'nonce-([^']+)'/.exec(String(again.headers['content-security-policy']))?.[1], nonce, 'a fresh nonce per response');
  assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<]/, 'no inline script');
});

test('DNS rebinding: a Host that is not an IP literal or localhost is refused', { skip }, async () => {
  const { cookie } = await signIn();
  for (const host of [`evil.example:${base.port}`, 'attacker.test', `127.0.0.1.nip.io:${base.port}`]) {
    const r = await http('GET', '/api/info', { headers: { Host: host, Cookie: cookie } });
    assert.equal(r.status, 421, host);
  }
  assert.equal((await http('GET', '/login', { headers: { Host: `localhost:${base.port}` } })).status, 200);
  assert.equal((await http('GET', '/api/info', { headers: { Host: `127.0.0.1:${base.port}`, Cookie: cookie } })).status, 200);
  assert.equal(await wsOutcome('/ui/ws/exec/abc?csrf=x', { Origin: `http://evil.example:${base.port}`, Host: `evil.example:${base.port}` }), 'refused 421');
});

test("Berth's own /berth/ui endpoint (which returns the token) is not reachable through the UI", { skip }, async () => {
  const { cookie } = await signIn();
  for (const path of ['/api/berth/ui', '/api/v1.47/berth/ui', '/api/berth/ui/']) {
    const r = await http('GET', path, { headers: { Cookie: cookie } });
    assert.equal(r.status, 404, path);
    assert.ok(!r.body.includes(token));
  }
});

test('static files: hashed names, cached for good, compressed', { skip }, async () => {
  const login = await http('GET', '/login');
  const js = /src="(\/assets\/login-[A-Z0-9]+\.js)"/.exec(login.body)?.[1];
  const css = /href="(\/assets\/login-[A-Z0-9]+\.css)"/.exec(login.body)?.[1];
  assert.ok(js && css, login.body);
  const r = await http('GET', css, { headers: { 'Accept-Encoding': 'gzip, deflate' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.match(String(r.headers['cache-control']), /immutable/);
  assert.match(String(r.headers['content-type']), /^text\/css/);
  assert.equal((await http('GET', '/assets/../manifest.json')).status, 404);
  assert.equal((await http('GET', '/assets/nope.js')).status, 404);
});

/** 'open' (then closed), or 'refused <status>'. */
function wsOutcome(path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${base.host}${path}`, { headers });
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => { resolve(`refused ${res.statusCode}`); ws.terminate(); });
    ws.on('error', (e) => resolve(`error ${e.message}`));
  });
}

test('terminal websocket: an exec with a TTY, both ways; refused without the CSRF token or from another origin', { skip, timeout: 60_000 }, async () => {
  const { cookie, csrf } = await signIn();
  const run = await d.docker(['run', '-d', '--name', 'ui-ws', 'busybox', 'sleep', '300']);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const created = await http('POST', `/api/containers/${id}/exec`, {
    headers: { Cookie: cookie, 'X-Berth-CSRF': csrf, Origin: base.origin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, Cmd: ['sh'] }),
  });
  assert.equal(created.status, 201, created.body);
  const execId = JSON.parse(created.body).Id as string;

  assert.equal(await wsOutcome(`/ui/ws/exec/${execId}?tty=1`, { Origin: base.origin, Cookie: cookie }), 'refused 403', 'no CSRF token');
  assert.equal(await wsOutcome(`/ui/ws/exec/${execId}?tty=1&csrf=${csrf}`, { Origin: 'http://evil.example', Cookie: cookie }), 'refused 403', 'other origin');
  assert.equal(await wsOutcome(`/ui/ws/exec/${execId}?tty=1&csrf=${csrf}`, { Cookie: cookie }), 'refused 403', 'no Origin');

  const ws = new WebSocket(`ws://${base.host}/ui/ws/exec/${execId}?tty=1&csrf=${encodeURIComponent(csrf)}`, { headers: { Origin: base.origin, Cookie: cookie } });
  let out = '';
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (data: Buffer) => { out += data.toString('utf8'); });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send('echo "ws-$((6*7))"\n');
  const deadline = Date.now() + 15_000;
  while (!out.includes('ws-42') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(out.includes('ws-42'), `terminal output: ${JSON.stringify(out)}`);
  ws.send('exit\n');
  assert.equal(await closed, 1000, 'the socket closes when the shell exits');
  const inspect = (await d.request('GET', `/exec/${execId}/json`)).json<{ Running: boolean; ExitCode: number }>();
  assert.equal(inspect.Running, false);
  assert.equal(inspect.ExitCode, 0);

  // An exec that cannot start: the close reason carries the daemon's message.
  const bad = new WebSocket(`ws://${base.host}/ui/ws/exec/nosuchexec?csrf=${encodeURIComponent(csrf)}`, { headers: { Origin: base.origin, Cookie: cookie } });
  const [code, reason] = await new Promise<[number, string]>((resolve) => bad.on('close', (c, r) => resolve([c, r.toString()])));
  assert.equal(code, 4404);
  assert.match(reason, /No such exec instance/);
  await d.docker(['rm', '-f', id]);
});

test('sign-out ends the session', { skip }, async () => {
  const { cookie } = await signIn();
  assert.equal((await http('GET', '/api/_ping', { headers: { Cookie: cookie } })).status, 200);
  const out = await http('POST', '/logout', { headers: { Cookie: cookie, Origin: base.origin } });
  assert.equal(out.status, 303);
  assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
  assert.equal((await http('GET', '/api/_ping', { headers: { Cookie: cookie } })).status, 401);
});

test('`berth ui` starts the UI on a daemon running without it; the token changes with each daemon start', { skip, timeout: 90_000 }, async () => {
  const other = await TestDaemon.start();
  try {
    const off = (await other.request('GET', '/berth/ui')).json<{ Enabled: boolean }>();
    assert.equal(off.Enabled, false);
    assert.equal(existsSync(join(other.execRoot, 'ui', 'token')), false);
    const r = await other.berth(['ui', '--listen', '127.0.0.1:0', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const first = JSON.parse(r.stdout) as { URL: string; Token: string };
    assert.match(first.URL, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(readFileSync(join(other.execRoot, 'ui', 'token'), 'utf8').trim(), first.Token);
    const login = await fetch(`${first.URL}login`);
    assert.equal(login.status, 200);
    const bad = await other.berth(['ui', '--listen', 'nonsense:99999']);
    assert.equal(bad.code, 0, 'a running UI is kept; --listen only applies when it starts');
    await other.stop();
    assert.equal(existsSync(join(other.execRoot, 'ui', 'token')), false, 'the token file goes with the daemon');
  } finally {
    await other.cleanup();
  }
  const fresh = await TestDaemon.start();
  try {
    const r = await fresh.berth(['ui', '--listen', '127.0.0.1:99999']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid UI address "127\.0\.0\.1:99999": the port must be a number from 0 to 65535/);
  } finally {
    await fresh.cleanup();
  }
});

test('daemon.json "ui" starts the UI; a bad address or a taken port stops the daemon with a clear message', { skip, timeout: 90_000 }, async () => {
  const withFile = await TestDaemon.start({ config: { ui: '127.0.0.1:0' } });
  let port = 0;
  try {
    const s = (await withFile.request('GET', '/berth/ui')).json<{ Enabled: boolean; URL: string }>();
    assert.equal(s.Enabled, true);
    port = Number(new URL(s.URL).port);
    const clash = await TestDaemon.start({ args: ['--ui', `127.0.0.1:${port}`], noWait: true });
    try {
      const exit = await clash.waitExit();
      assert.equal(exit.code, 1);
      assert.match(clash.log(), new RegExp(`web UI: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    } finally {
      await clash.cleanup();
    }
  } finally {
    await withFile.cleanup();
  }
  const both = await TestDaemon.start({ config: { ui: '127.0.0.1:0' }, args: ['--ui', '127.0.0.1:0'], noWait: true });
  try {
    assert.equal((await both.waitExit()).code, 1);
    assert.match(both.log(), /directives are specified both as a flag and in the configuration file.*ui: \(from flag --ui/);
  } finally {
    await both.cleanup();
  }
});

// The bridge half-closes the exec's stream; the daemon then hangs up the TTY (the shell gets EOF).
test('a terminal whose browser goes away (websocket dropped) does not leave its shell running', { skip, timeout: 60_000 }, async () => {
  const { cookie, csrf } = await signIn();
  const run = await d.docker(['run', '-d', '--name', 'ui-hangup', 'busybox', 'sleep', '300']);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const created = await http('POST', `/api/containers/${id}/exec`, {
    headers: { Cookie: cookie, 'X-Berth-CSRF': csrf, Origin: base.origin, 'Content-Type': 'application/json' },
    body: JSON.stringify({ AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true, Cmd: ['sh'] }),
  });
  const execId = JSON.parse(created.body).Id as string;
  const ws = new WebSocket(`ws://${base.host}/ui/ws/exec/${execId}?tty=1&csrf=${encodeURIComponent(csrf)}`, { headers: { Origin: base.origin, Cookie: cookie } });
  let out = '';
  ws.on('message', (data: Buffer) => { out += data.toString('utf8'); });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send('echo ready-$((1+1))\n');
  const ready = Date.now() + 10_000;
  while (!out.includes('ready-2') && Date.now() < ready) await new Promise((r) => setTimeout(r, 50));
  assert.ok(out.includes('ready-2'), out);
  assert.equal((await d.request('GET', `/exec/${execId}/json`)).json<{ Running: boolean }>().Running, true);
  ws.terminate(); // no close handshake: a tab killed, a network gone
  const deadline = Date.now() + 10_000;
  let running = true;
  while (running && Date.now() < deadline) {
    running = (await d.request('GET', `/exec/${execId}/json`)).json<{ Running: boolean }>().Running;
    if (running) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(running, false, 'the shell ended');
  await d.docker(['rm', '-f', id]);
});
