// The extension points other modules use, exercised in-process through a test module:
// routes (incl. {name:.*} image names), JSON bodies, errors, DB migrations, /info and
// /system/df contributors, the progress stream (rendered by the real docker CLI), events with
// the legacy fields, and hijacked connections with stdcopy frames.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type DaemonHandle } from '../../src/api/daemon.ts';
import type { ApiModule } from '../../src/api/context.ts';
import { ConflictError, noSuchImage, registerErrorStatus } from '../../src/api/errors.ts';
import { MEDIA_TYPE_MULTIPLEXED_STREAM, muxFrame, StdDemuxer, STDOUT, STDERR } from '../../src/api/hijack.ts';
import { systemModule } from '../../src/api/routes/system.ts';
import { registerMigrations } from '../../src/engine/db.ts';
import { Logger } from '../../src/engine/log.ts';
import { BERTH_BIN, checkBundleFresh, DOCKER_BIN, httpRequest, run } from '../helpers/daemon.ts';

class WidgetError extends Error { code = 'gone'; }
registerErrorStatus((e) => (e instanceof WidgetError ? 410 : undefined));

registerMigrations('testmod', [
  { version: 1, name: 'widgets', up: (db) => db.exec('CREATE TABLE widgets (name TEXT PRIMARY KEY)') },
  { version: 2, name: 'widget sizes', up: (db) => db.exec('ALTER TABLE widgets ADD COLUMN size INTEGER NOT NULL DEFAULT 0') },
]);

declare module '../../src/api/context.ts' {
  interface Services { widgets: { count(): number } }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const testModule: ApiModule = {
  name: 'test',
  init(daemon) {
    daemon.db.sqlite.prepare("INSERT OR IGNORE INTO widgets (name, size) VALUES ('a', 1), ('b', 2), ('c', 3)").run();
    daemon.services.widgets = { count: () => (daemon.db.sqlite.prepare('SELECT COUNT(*) AS n FROM widgets').get() as { n: number }).n };
    daemon.infoContributors.push((info) => { info.Images = daemon.services.widgets!.count(); });
    daemon.diskUsageContributors.push((du, opts) => {
      if (opts.images) {
        du.LayersSize = 1234;
        du.Images.push({ Id: 'sha256:abc', ParentId: '', RepoTags: ['x:1'], RepoDigests: [], Created: 1, Size: 1234, SharedSize: 0, Labels: {}, Containers: 0 });
      }
    });
  },
  routes(r) {
    r.get('/images/{name:.*}/json', (ctx) => {
      if (ctx.params.name === 'missing') throw noSuchImage('missing:latest');
      ctx.json({ name: ctx.params.name });
    });
    r.delete('/images/{name:.*}', (ctx) => ctx.json([{ Untagged: ctx.params.name }]));
    r.get('/containers/{id}/json', (ctx) => ctx.json({ Id: ctx.params.id, Config: { Tty: false } }));
    r.post('/test/echo', async (ctx) => ctx.json(await ctx.readJSON({ limit: 1024 })));
    r.post('/test/conflict', () => { throw new ConflictError('conflict: unable to remove repository reference "x" (must force)'); });
    r.get('/test/gone', () => { throw new WidgetError('the widget is gone'); });
    r.get('/test/crash', () => { throw new Error('something broke'); });
    r.post('/test/event', (ctx) => {
      ctx.daemon.events.log('container', 'start', { ID: 'c0ffee', Attributes: { image: 'busybox', name: 'c1' } });
      ctx.daemon.events.log('image', 'pull', { ID: 'busybox:latest', Attributes: { name: 'busybox' } });
      ctx.noContent();
    });
    r.post('/images/create', async (ctx) => {
      const from = ctx.query.get('fromImage') ?? '';
      const p = ctx.progress();
      p.status(`Pulling from library/${from.replace(/^.*\//, '')}`, ctx.query.get('tag') ?? 'latest');
      const sink = p.sink();
      for (const id of ['aaaaaaaaaaaa', 'bbbbbbbbbbbb']) sink({ id, status: 'Pulling fs layer' });
      for (let i = 0; i <= 4; i++) {
        sink({ id: 'aaaaaaaaaaaa', status: 'Downloading', current: i * 250_000, total: 1_000_000 });
        await sleep(5);
      }
      if (from.endsWith('fail')) {
        p.error(new Error('unexpected EOF'));
        p.end();
        return;
      }
      sink({ id: 'aaaaaaaaaaaa', status: 'Download complete' });
      sink({ id: 'aaaaaaaaaaaa', status: 'Pull complete' });
      sink({ id: 'bbbbbbbbbbbb', status: 'Already exists' });
      p.status('Digest: sha256:0000000000000000000000000000000000000000000000000000000000000000');
      p.status(`Status: Downloaded newer image for ${from}:latest`);
      p.end();
    });
    r.get('/test/ws', (ctx) => {
      if (!ctx.upgrade) { ctx.json({ upgrade: false }); return; }
      const { socket, head } = ctx.rawUpgrade();
      socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhead=${head.toString()}`);
    });
    r.post('/containers/{id}/attach', (ctx) => {
      const { socket } = ctx.hijack({ contentType: MEDIA_TYPE_MULTIPLEXED_STREAM });
      socket.write(muxFrame(STDOUT, 'hello\n'));
      socket.on('data', (b: Buffer) => {
        socket.write(muxFrame(STDERR, b));
        socket.end();
      });
    });
  },
};

let dir: string;
let daemon: DaemonHandle;
let sock: string;
const logLines: string[] = [];

before(async () => {
  checkBundleFresh();
  dir = mkdtempSync('/tmp/berth-modules-');
  sock = join(dir, 'berth.sock');
  writeFileSync(join(dir, 'daemon.json'), '{}');
  daemon = await startDaemon(
    { hosts: [`unix://${sock}`], dataRoot: join(dir, 'data'), execRoot: join(dir, 'run'), configFile: join(dir, 'daemon.json') },
    { modules: [systemModule, testModule], logger: new Logger('debug', (l) => { logLines.push(l); }) },
  );
});
after(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const req = (method: string, path: string, opts: Parameters<typeof httpRequest>[3] = {}) => httpRequest(sock, method, path, opts);

describe('routes', () => {
  test('{name:.*} parameters take image names with slashes, ports, tags and digests', async () => {
    for (const name of ['busybox', 'library/busybox:1.36', 'localhost:5000/a/b/c:tag', 'x@sha256:' + 'a'.repeat(64)]) {
      const r = await req('GET', `/v1.47/images/${name}/json`);
      assert.equal(r.status, 200, name);
      assert.deepEqual(r.json(), { name }, name);
    }
    assert.deepEqual((await req('DELETE', '/images/localhost:5000/a:b')).json(), [{ Untagged: 'localhost:5000/a:b' }]);
    assert.deepEqual((await req('GET', '/containers/abc/json')).json().Id, 'abc');
    assert.equal((await req('GET', '/containers/a/b/json')).status, 404, 'one-segment parameters stay one segment');
  });

  test('errors: typed statuses, registered mappers, 500 for the unexpected', async () => {
    let r = await req('GET', '/images/missing/json');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { message: 'No such image: missing:latest' });
    r = await req('POST', '/test/conflict');
    assert.equal(r.status, 409);
    r = await req('GET', '/test/gone');
    assert.equal(r.status, 410);
    assert.deepEqual(r.json(), { message: 'the widget is gone' });
    r = await req('GET', '/test/crash');
    assert.equal(r.status, 500);
    assert.deepEqual(r.json(), { message: 'something broke' });
    assert.ok(logLines.some((l) => /level=error msg="Handler for GET \/test\/crash returned error: something broke"/.test(l)));
  });

  test('JSON bodies: dockerd\'s checks and messages', async () => {
    let r = await req('POST', '/test/echo', { body: '{"a":[1,2]}', headers: { 'Content-Type': 'application/json' } });
    assert.deepEqual(r.json(), { a: [1, 2] });
    r = await req('POST', '/test/echo', { body: '{"a":1}' });
    assert.equal(r.status, 200, 'no Content-Type is accepted');
    r = await req('POST', '/test/echo', { body: '' });
    assert.equal(r.status, 400);
    assert.equal(r.json().message, 'invalid JSON: got EOF while reading request body');
    r = await req('POST', '/test/echo', { body: '{"a":', headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 400);
    assert.match(r.json().message, /^invalid JSON: /);
    r = await req('POST', '/test/echo', { body: '{"a":1}', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 400);
    assert.equal(r.json().message, "unsupported Content-Type header (text/plain): must be 'application/json'");
    r = await req('POST', '/test/echo', { body: JSON.stringify({ big: 'x'.repeat(2000) }) });
    assert.equal(r.status, 400);
    assert.match(r.json().message, /request body is too large/);
  });
});

test('migrations registered by a module ran once, in order', async () => {
  const rows = daemon.context.db.sqlite.prepare("SELECT version, name FROM schema_migrations WHERE component = 'testmod' ORDER BY version").all();
  assert.deepEqual(rows, [{ version: 1, name: 'widgets' }, { version: 2, name: 'widget sizes' }]);
  assert.equal(daemon.context.db.migrate().length, 0, 'nothing left to apply');
  assert.equal(daemon.context.services.widgets?.count(), 3);
});

test('berth system df prints what docker system df prints', { skip: existsSync(DOCKER_BIN) ? false : 'no docker CLI' }, async () => {
  const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'docker-config') };
  for (const extra of [[], ['--format', 'json'], ['--format', '{{.Type}}: {{.Reclaimable}}']]) {
    const theirs = await run(DOCKER_BIN, ['system', 'df', ...extra], { env });
    const ours = await run(process.execPath, [BERTH_BIN, '-H', `unix://${sock}`, 'system', 'df', ...extra], { env: { ...process.env, BERTH_AUTOSTART: '0' } });
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout, extra.join(' '));
  }
});

test('/info and /system/df contributors', async () => {
  assert.equal((await req('GET', '/info')).json().Images, 3);
  const du = (await req('GET', '/system/df')).json();
  assert.equal(du.LayersSize, 1234);
  assert.equal(du.Images[0].Id, 'sha256:abc');
  assert.deepEqual((await req('GET', '/system/df?type=volume')).json(), { LayersSize: 0, Volumes: [] });
});

describe('progress stream', () => {
  test('JSON lines in dockerd\'s shape, throttled per layer', async () => {
    const r = await req('POST', '/images/create?fromImage=busybox&tag=latest');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    const lines = r.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], { status: 'Pulling from library/busybox', id: 'latest' });
    assert.deepEqual(lines[1], { status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' });
    const dl = lines.filter((l) => l.status === 'Downloading');
    assert.ok(dl.length >= 2 && dl.length <= 5, `throttled: ${dl.length} updates`);
    assert.deepEqual(Object.keys(dl[0]), ['status', 'progressDetail', 'progress', 'id']);
    assert.deepEqual(dl[dl.length - 1].progressDetail, { current: 1_000_000, total: 1_000_000 }, 'the final update always goes out');
    assert.match(dl[dl.length - 1].progress, /^\[={50}>\] {2}\s*1MB\/1MB$/);
    assert.deepEqual(lines[lines.length - 1], { status: 'Status: Downloaded newer image for busybox:latest' });
  });

  test('an error mid-stream is an errorDetail line after a 200', async () => {
    const r = await req('POST', '/images/create?fromImage=willfail');
    assert.equal(r.status, 200);
    const last = JSON.parse(r.text.trim().split('\n').pop()!);
    assert.deepEqual(last, { errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' });
  });

  test('the docker CLI renders it (docker pull)', { skip: existsSync(DOCKER_BIN) ? false : 'no docker CLI' }, async () => {
    const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'docker-config') };
    let r = await run(DOCKER_BIN, ['pull', 'busybox'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    // Without a terminal, docker drops the bar updates and prints the status lines.
    assert.equal(r.stdout, [
      'Using default tag: latest',
      'latest: Pulling from library/busybox',
      'aaaaaaaaaaaa: Pulling fs layer',
      'bbbbbbbbbbbb: Pulling fs layer',
      'aaaaaaaaaaaa: Download complete',
      'aaaaaaaaaaaa: Pull complete',
      'bbbbbbbbbbbb: Already exists',
      'Digest: sha256:0000000000000000000000000000000000000000000000000000000000000000',
      'Status: Downloaded newer image for docker.io/library/busybox:latest',
      'docker.io/library/busybox:latest',
      '',
    ].join('\n'));
    r = await run(DOCKER_BIN, ['pull', 'willfail'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unexpected EOF/);
  });
});

test('events: legacy fields for containers and images; docker events filters by container and image', async () => {
  const since = Math.floor(Date.now() / 1000);
  await req('POST', '/test/event');
  const until = Math.floor(Date.now() / 1000) + 1;
  const text = (await req('GET', `/events?since=${since}&until=${until}`)).text.trim().split('\n');
  assert.match(text[0], /^\{"status":"start","id":"c0ffee","from":"busybox","Type":"container","Action":"start","Actor":\{"ID":"c0ffee","Attributes":\{"image":"busybox","name":"c1"\}\},"scope":"local","time":\d+,"timeNano":\d+\}$/);
  assert.match(text[1], /^\{"status":"pull","id":"busybox:latest","Type":"image","Action":"pull",/);
  if (!existsSync(DOCKER_BIN)) return;
  const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'docker-config') };
  const ev = (args: string[]) => run(DOCKER_BIN, ['events', '--since', String(since), '--until', String(until), '--format', '{{.Type}} {{.Action}}', ...args], { env }).then((r) => r.stdout.trim());
  assert.equal(await ev(['--filter', 'container=c1']), 'container start');
  assert.equal(await ev(['--filter', 'container=c0f']), 'container start', 'container IDs match by prefix');
  assert.equal(await ev(['--filter', 'image=busybox']), 'container start\nimage pull');
  assert.equal(await ev(['--filter', 'image=busybox:latest', '--filter', 'type=image']), 'image pull');
  assert.equal(await ev(['--filter', 'image=alpine']), '');
  assert.equal(await ev(['--filter', 'event=start', '--filter', 'event=pull']), 'container start\nimage pull');
});

test('hijack: 101 UPGRADED, raw stdcopy frames both ways', async () => {
  const s = connect(sock);
  const frames: Array<[number, string]> = [];
  let head = '';
  let upgraded = false;
  const demux = new StdDemuxer((stream, data) => frames.push([stream, data.toString()]));
  const done = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.on('data', (b: Buffer) => {
    if (!upgraded) {
      head += b.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      head = head.slice(0, end);
      if (rest.length) demux.push(rest);
      s.write('ping');
      return;
    }
    demux.push(b);
  });
  s.write('POST /v1.47/containers/abc/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n');
  await done;
  assert.equal(head, `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${MEDIA_TYPE_MULTIPLEXED_STREAM}\r\nConnection: Upgrade\r\nUpgrade: tcp`);
  assert.deepEqual(frames, [[1, 'hello\n'], [2, 'ping']]);
  assert.equal(demux.leftover, 0);
});

test('rawUpgrade: another protocol (websocket-style) gets the bare socket and the early bytes', async () => {
  const s = connect(sock);
  let text = '';
  s.on('data', (b: Buffer) => { text += b.toString(); });
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.write('GET /test/ws HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly');
  await closed;
  assert.equal(text, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhead=early');
  assert.deepEqual((await req('GET', '/test/ws')).json(), { upgrade: false });
  // An upgrade request to an ordinary route gets an ordinary answer, then the connection closes.
  const s2 = connect(sock);
  let t2 = '';
  s2.on('data', (b: Buffer) => { t2 += b.toString(); });
  const c2 = new Promise<void>((resolve) => s2.on('close', () => resolve()));
  s2.write('GET /v1.47/version HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  await c2;
  assert.match(t2, /^HTTP\/1\.1 200 OK\r\n[\s\S]*"ApiVersion":"1\.47"/);
});
