// The Engine API over raw HTTP against a real `berth daemon`: version negotiation, error shapes,
// /_ping, /version, /info, /system/df and /events, compared with what dockerd answers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname, release, totalmem } from 'node:os';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';

let d: TestDaemon;
before(async () => { d = await TestDaemon.start({ config: { 'insecure-registries': ['myregistry.test:5000', '10.1.0.0/16'], 'registry-mirrors': ['https://mirror.example.com'] } }); });
after(async () => { await d?.cleanup(); });

describe('version negotiation', () => {
  test('HEAD /_ping: headers the docker CLI reads, empty body', async () => {
    const r = await d.request('HEAD', '/_ping');
    assert.equal(r.status, 200);
    assert.equal(r.headers['api-version'], '1.47');
    assert.equal(r.headers.ostype, 'linux');
    assert.equal(r.headers['docker-experimental'], 'false');
    assert.equal(r.headers['builder-version'], '1');
    assert.equal(r.headers.swarm, 'inactive');
    assert.equal(r.headers['cache-control'], 'no-cache, no-store, must-revalidate');
    assert.equal(r.headers.pragma, 'no-cache');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.headers['content-length'], '0');
    assert.match(String(r.headers.server), /^Berth\/\d+\.\d+\.\d+ \(linux\)$/);
    assert.equal(r.body.length, 0);
  });

  test('GET /_ping answers OK, with and without a version prefix', async () => {
    for (const path of ['/_ping', '/v1.24/_ping', '/v1.47/_ping', '/v1.41/_ping']) {
      const r = await d.request('GET', path);
      assert.equal(r.status, 200, path);
      assert.equal(r.text, 'OK', path);
      assert.equal(r.headers['api-version'], '1.47', path);
    }
  });

  test('a version above 1.47 is refused with dockerd\'s message', async () => {
    const r = await d.request('GET', '/v1.99/version');
    assert.equal(r.status, 400);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json(), { message: 'client version 1.99 is too new. Maximum supported API version is 1.47' });
    assert.equal(r.headers['api-version'], '1.47', 'the client learns the maximum from the header');
    assert.equal((await d.request('GET', '/v1.48/_ping')).status, 400);
  });

  test('a version below 1.24 is refused with dockerd\'s message', async () => {
    const r = await d.request('GET', '/v1.10/version');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json(), { message: 'client version 1.10 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version' });
    assert.equal((await d.request('GET', '/v1.23/info')).status, 400);
    assert.equal((await d.request('GET', '/v1.24/info')).status, 200);
  });
});

describe('errors', () => {
  test('unknown paths and methods: 404 {"message":"page not found"}', async () => {
    for (const [method, path] of [['GET', '/nope'], ['GET', '/v1.47/nope'], ['POST', '/version'], ['DELETE', '/info'], ['GET', '/version/'], ['PATCH', '/version'], ['GET', '/v1.47']]) {
      const r = await d.request(method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.text, '{"message":"page not found"}\n', `${method} ${path}`);
    }
  });

  test('invalid query values are 400 with a message', async () => {
    let r = await d.request('GET', '/events?since=yesterday');
    assert.equal(r.status, 400);
    assert.match(r.json().message, /since/);
    r = await d.request('GET', '/events?filters=%7Bnot%20json');
    assert.equal(r.status, 400);
    assert.match(r.json().message, /^invalid filter/);
    r = await d.request('GET', '/events?since=200&until=100');
    assert.equal(r.status, 400);
    assert.equal(r.json().message, '`since` time (200) cannot be after `until` time (100)');
    r = await d.request('GET', '/system/df?type=bogus');
    assert.equal(r.status, 400);
    assert.equal(r.json().message, 'unknown object type: bogus');
  });

  test('HTTP keep-alive: several requests on one connection', async () => {
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
      const req = request({ socketPath: d.socket, path, agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(await Promise.all([get('/_ping'), get('/nope'), get('/version'), get('/v1.99/info')]), [200, 404, 200, 400]);
    agent.destroy();
  });
});

describe('/version', () => {
  test('docker\'s SystemVersion shape', async () => {
    const v = (await d.request('GET', '/v1.47/version')).json();
    assert.deepEqual(Object.keys(v), ['Platform', 'Components', 'Version', 'ApiVersion', 'MinAPIVersion', 'GitCommit', 'GoVersion', 'Os', 'Arch', 'KernelVersion', 'BuildTime']);
    assert.equal(v.Platform.Name, 'Berth');
    assert.equal(v.ApiVersion, '1.47');
    assert.equal(v.MinAPIVersion, '1.24');
    assert.equal(v.Os, 'linux');
    assert.equal(v.KernelVersion, release());
    assert.equal(v.GoVersion, `node${process.versions.node}`);
    assert.match(v.Version, /^\d+\.\d+\.\d+/);
    assert.ok(!Number.isNaN(Date.parse(v.BuildTime)), `BuildTime ${v.BuildTime} is RFC 3339`);
    const engine = v.Components.find((c: { Name: string }) => c.Name === 'Engine');
    assert.ok(engine);
    assert.deepEqual(Object.keys(engine.Details).sort(), ['ApiVersion', 'Arch', 'BuildTime', 'Experimental', 'GitCommit', 'GoVersion', 'KernelVersion', 'MinAPIVersion', 'Os']);
    assert.equal(engine.Details.ApiVersion, '1.47');
    assert.equal(engine.Details.MinAPIVersion, '1.24');
  });

  test('HEAD /version is not a route (as dockerd)', async () => {
    assert.equal((await d.request('HEAD', '/version')).status, 404);
  });
});

describe('/info', () => {
  test('docker\'s Info shape with this host\'s real values', async () => {
    const info = (await d.request('GET', '/v1.47/info')).json();
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
    assert.equal(info.OperatingSystem, pretty);
    assert.equal(info.OSType, 'linux');
    assert.equal(info.KernelVersion, release());
    assert.equal(info.NCPU, availableParallelism());
    assert.equal(info.MemTotal, totalmem());
    assert.equal(info.Name, hostname());
    assert.equal(info.DockerRootDir, d.dataRoot);
    assert.equal(info.DefaultRuntime, 'berth');
    assert.ok(info.Runtimes.berth?.path, 'the built-in runtime is listed with its path');
    assert.equal(info.CgroupDriver, 'cgroupfs');
    const v2 = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / \/sys\/fs\/cgroup - cgroup2 /.test(l));
    assert.equal(info.CgroupVersion, v2 ? '2' : '1');
    assert.ok(['overlay2', 'vfs'].includes(info.Driver));
    assert.equal(info.Containers, 0);
    assert.equal(info.Images, 0);
    assert.equal(info.Swarm.LocalNodeState, 'inactive');
    assert.ok(info.SecurityOptions.includes('name=seccomp,profile=builtin'));
    assert.equal(info.IndexServerAddress, 'https://index.docker.io/v1/');
    assert.equal(typeof info.ID, 'string');
    assert.equal(info.ServerVersion, (await d.request('GET', '/version')).json().Version);
    assert.match(info.SystemTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    for (const k of ['MemoryLimit', 'SwapLimit', 'CpuCfsPeriod', 'CpuCfsQuota', 'CPUShares', 'CPUSet', 'PidsLimit', 'IPv4Forwarding', 'Debug', 'OomKillDisable', 'ExperimentalBuild', 'LiveRestoreEnabled']) {
      assert.equal(typeof info[k], 'boolean', k);
    }
  });

  test('RegistryConfig as dockerd builds it from insecure-registries and registry-mirrors', async () => {
    const rc = (await d.request('GET', '/info')).json().RegistryConfig;
    assert.deepEqual(rc.InsecureRegistryCIDRs, ['10.1.0.0/16', '127.0.0.0/8']);
    assert.deepEqual(rc.Mirrors, ['https://mirror.example.com/']);
    assert.deepEqual(rc.IndexConfigs['myregistry.test:5000'], { Name: 'myregistry.test:5000', Mirrors: [], Secure: false, Official: false });
    assert.deepEqual(rc.IndexConfigs['docker.io'], { Name: 'docker.io', Mirrors: ['https://mirror.example.com/'], Secure: true, Official: true });
  });
});

test('/system/df: the skeleton the image and container modules fill', async () => {
  assert.deepEqual((await d.request('GET', '/system/df')).json(), { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] });
  assert.deepEqual((await d.request('GET', '/v1.47/system/df?type=image&type=volume')).json(), { LayersSize: 0, Images: [], Volumes: [] });
  assert.deepEqual((await d.request('GET', '/v1.41/system/df')).json(), { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [], BuilderSize: 0 });
});

describe('/events', () => {
  /** Emits a `daemon reload` event (SIGHUP) and returns after the daemon logged it. */
  async function reloadEvent(): Promise<void> {
    const before = d.log().split('Reloaded configuration').length;
    d.signal('SIGHUP');
    for (let i = 0; i < 200 && d.log().split('Reloaded configuration').length === before; i++) await new Promise((r) => setTimeout(r, 10));
  }

  test('since/until replays kept events as JSON lines in dockerd\'s format', async () => {
    const t0 = Date.now() / 1000;
    await reloadEvent();
    const r = await d.request('GET', `/events?since=${Math.floor(t0)}&until=${Math.ceil(Date.now() / 1000) + 1}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    const lines = r.text.trim().split('\n');
    const last = lines[lines.length - 1];
    // Field order, scope, and a timeNano with all its digits (bigger than a double holds exactly).
    assert.match(last, /^\{"Type":"daemon","Action":"reload","Actor":\{"ID":"[^"]+","Attributes":\{"debug":"false",.*\}\},"scope":"local","time":\d{10},"timeNano":\d{19}\}$/);
    const ev = JSON.parse(last);
    assert.equal(ev.Actor.Attributes.name, hostname());
    const nano = BigInt(/"timeNano":(\d+)/.exec(last)![1]);
    assert.equal(nano / 1_000_000_000n, BigInt(ev.time));
    // Attributes keys are sorted, as Go encodes maps.
    const keys = Object.keys(ev.Actor.Attributes);
    assert.deepEqual(keys, [...keys].sort());
  });

  test('filters: type and event', async () => {
    await reloadEvent();
    const until = Math.ceil(Date.now() / 1000) + 1;
    const q = (f: object): Promise<string> => d.request('GET', `/events?since=0&until=${until}&filters=${encodeURIComponent(JSON.stringify(f))}`).then((r) => r.text);
    assert.match(await q({ type: { daemon: true } }), /"Action":"reload"/);
    assert.equal(await q({ type: { container: true } }), '');
    assert.equal(await q({ event: { start: true } }), '');
    assert.match(await q({ event: ['reload'] }), /"Action":"reload"/, 'the pre-1.22 list form');
    assert.equal(await q({ container: { abc: true } }), '', 'a container filter drops daemon events');
  });

  test('streams live events until `until`, and stops when the client leaves', async () => {
    const until = Math.floor(Date.now() / 1000) + 3;
    const got = new Promise<{ text: string; ms: number }>((resolve, reject) => {
      const start = Date.now();
      const req = request({ socketPath: d.socket, path: `/v1.47/events?until=${until}&filters=${encodeURIComponent('{"type":{"daemon":true}}')}` }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve({ text, ms: Date.now() - start }));
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    await reloadEvent();
    const { text, ms } = await got;
    // As dockerd, `until` alone also replays the kept events up to it; the live one comes last.
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    const live = events.filter((e) => e.time * 1000 >= Math.floor(sent / 1000) * 1000 && e.Action === 'reload');
    assert.ok(live.length >= 1, text);
    assert.ok(ms >= 2000, `the stream stayed open until \`until\` (${ms} ms)`);

    // A client that disconnects is unsubscribed (NEventsListener goes back down).
    const req = request({ socketPath: d.socket, path: '/events' });
    req.end();
    await new Promise<void>((resolve) => req.on('response', () => resolve()));
    assert.equal((await d.request('GET', '/info')).json().NEventsListener, 1);
    req.destroy();
    for (let i = 0; i < 100; i++) {
      if ((await d.request('GET', '/info')).json().NEventsListener === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await d.request('GET', '/info')).json().NEventsListener, 0);
  });
});
