// `berth daemon` as a process: socket permissions, the single-instance lock, stale leftovers,
// restarts that keep the DB, graceful shutdown, and configuration errors.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { BERTH_BIN, run, TestDaemon } from '../helpers/daemon.ts';

test('socket is 0660 root:root, pid file holds the daemon\'s pid, dirs are private', async () => {
  const d = await TestDaemon.start();
  try {
    const st = statSync(d.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 0);
    assert.equal(readFileSync(join(d.execRoot, 'berth.pid'), 'utf8'), String(d.pid));
    assert.equal(statSync(d.dataRoot).mode & 0o777, 0o700);
    assert.equal(statSync(join(d.dataRoot, 'berth.db')).mode & 0o777, 0o600);
  } finally {
    await d.cleanup();
  }
});

test('--group gives the socket to that group', async () => {
  const group = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] && f[2] !== '0');
  assert.ok(group, 'a non-root group exists');
  const d = await TestDaemon.start({ args: ['--group', group[0]] });
  try {
    const st = statSync(d.socket);
    assert.equal(st.gid, Number(group[2]));
    assert.equal(st.mode & 0o777, 0o660);
  } finally {
    await d.cleanup();
  }
});

test('a second daemon on the same exec root or socket refuses to start and leaves the first intact', async () => {
  const d = await TestDaemon.start();
  try {
    // Same exec root (pid file), another socket.
    let r = await run(process.execPath, [BERTH_BIN, 'daemon', '--host', `unix://${d.dir}/other.sock`, '--data-root', d.dataRoot, '--exec-root', d.execRoot, '--config-file', d.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`another berth daemon \\(pid ${d.pid}\\) is running with this exec root`));
    assert.ok(!existsSync(join(d.dir, 'other.sock')));
    // Same socket, another exec root.
    const other = mkdtempSync('/tmp/berth-other-');
    r = await run(process.execPath, [BERTH_BIN, 'daemon', '--host', d.host, '--data-root', join(other, 'data'), '--exec-root', join(other, 'run'), '--config-file', d.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /another daemon is already listening on/);
    assert.ok(!existsSync(join(other, 'run', 'berth.pid')), 'the loser released its pid file');
    rmSync(other, { recursive: true, force: true });
    assert.equal((await d.request('GET', '/_ping')).text, 'OK', 'the first daemon still serves');
    assert.equal(readFileSync(join(d.execRoot, 'berth.pid'), 'utf8'), String(d.pid));
  } finally {
    await d.cleanup();
  }
});

test('after kill -9, the stale socket and pid file are replaced; the DB and daemon ID survive', async () => {
  const d = await TestDaemon.start();
  try {
    const id = (await d.request('GET', '/info')).json().ID;
    await d.stop('SIGKILL');
    assert.ok(existsSync(d.socket), 'a killed daemon leaves its socket');
    assert.ok(existsSync(join(d.execRoot, 'berth.pid')), 'and its pid file');
    await d.restart();
    assert.equal((await d.request('GET', '/info')).json().ID, id);
    assert.equal(readFileSync(join(d.execRoot, 'berth.pid'), 'utf8'), String(d.pid));
  } finally {
    await d.cleanup();
  }
});

test('SIGTERM: graceful stop ends event streams, removes socket and pid file, checkpoints the DB', async () => {
  const d = await TestDaemon.start();
  try {
    const { request } = await import('node:http');
    const ended = new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: d.socket, path: '/events' }, (res) => { res.resume(); res.on('end', resolve); res.on('error', resolve); });
      req.on('error', reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const exit = await d.stop('SIGTERM');
    await ended;
    assert.equal(exit.code, 0, d.log());
    assert.ok(Date.now() - t0 < 4000, 'an open /events stream does not hold the shutdown');
    assert.ok(!existsSync(d.socket));
    assert.ok(!existsSync(join(d.execRoot, 'berth.pid')));
    assert.match(d.log(), /Daemon shutdown complete/);
    assert.ok(!existsSync(join(d.dataRoot, 'berth.db-wal')) || statSync(join(d.dataRoot, 'berth.db-wal')).size === 0, 'WAL folded into the DB');
    const db = new Database(join(d.dataRoot, 'berth.db'), { readonly: true });
    const rows = db.prepare('SELECT component, version FROM schema_migrations ORDER BY component, version').all();
    // Every registered component's migrations were applied (the daemon's own and the modules').
    const applied = rows as Array<{ component: string; version: number }>;
    assert.ok(applied.some((r) => r.component === 'engine' && r.version === 1), JSON.stringify(rows));
    assert.ok(applied.some((r) => r.component === 'images'), JSON.stringify(rows));
    db.close();
    // Restart over the same data root: same ID, no migration applied twice.
    await d.restart();
    assert.doesNotMatch(d.log().split('Daemon shutdown complete')[1] ?? '', /applied DB migration/);
  } finally {
    await d.cleanup();
  }
});

test('configuration errors stop the daemon with a message naming the problem', async () => {
  const cases: Array<[Record<string, unknown> | string, RegExp]> = [
    [{ 'log-driver': 'json-file' }, /directives in .* are not supported by Berth: log-driver/],
    [{ debug: 'yes' }, /"debug" must be true or false/],
    [{ 'default-runtime': 'crun' }, /default runtime "crun" does not exist/],
    [{ runtimes: { berth: { path: '/bin/true' } } }, /runtime name 'berth' is reserved/],
    [{ 'registry-mirrors': ['ftp://x'] }, /invalid mirror: unsupported scheme "ftp"/],
    [{ 'insecure-registries': ['ftp://x'] }, /should not contain '::\/\/'|should not contain ':\/\/'/],
    [{ 'data-root': '/tmp/elsewhere' }, /specified both as a flag and in the configuration file .*data-root/],
    [{ hosts: ['tcp://0.0.0.0:2375'] }, /specified both as a flag and in the configuration file/],
    ['{not json', /invalid JSON/],
  ];
  for (const [config, message] of cases) {
    const dir = mkdtempSync('/tmp/berth-cfg-');
    try {
      writeFileSync(join(dir, 'daemon.json'), typeof config === 'string' ? config : JSON.stringify(config));
      const r = await run(process.execPath, [BERTH_BIN, 'daemon', '--host', `unix://${dir}/s.sock`, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'run'), '--config-file', join(dir, 'daemon.json')]);
      assert.equal(r.code, 1, `${JSON.stringify(config)}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!existsSync(join(dir, 's.sock')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('tcp:// hosts are refused (the API is root-equivalent and Berth has no TLS)', async () => {
  const dir = mkdtempSync('/tmp/berth-tcp-');
  try {
    const r = await run(process.execPath, [BERTH_BIN, 'daemon', '--host', 'tcp://127.0.0.1:2375', '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'run'), '--config-file', join(dir, 'none.json')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unable to configure the Berth daemon with file .*none.json: no such file/);
    writeFileSync(join(dir, 'd.json'), '{}');
    const r2 = await run(process.execPath, [BERTH_BIN, 'daemon', '--host', 'tcp://127.0.0.1:2375', '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'run'), '--config-file', join(dir, 'd.json')]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /refusing to listen on tcp:\/\/127\.0\.0\.1:2375: .*TLS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP reloads debug and registries; a bad file is reported and the old config kept', async () => {
  const d = await TestDaemon.start();
  try {
    assert.equal((await d.request('GET', '/info')).json().Debug, false);
    writeFileSync(d.configFile, JSON.stringify({ debug: true, 'insecure-registries': ['reg.test:5000'] }));
    d.signal('SIGHUP');
    for (let i = 0; i < 100 && !(await d.request('GET', '/info')).json().Debug; i++) await new Promise((r) => setTimeout(r, 20));
    const info = (await d.request('GET', '/info')).json();
    assert.equal(info.Debug, true);
    assert.equal(info.RegistryConfig.IndexConfigs['reg.test:5000'].Secure, false);
    writeFileSync(d.configFile, '{"debug": 1}');
    d.signal('SIGHUP');
    for (let i = 0; i < 100 && !d.log().includes('Error reconfiguring'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(d.log(), /Error reconfiguring the daemon: .*debug.* must be true or false/);
    assert.equal((await d.request('GET', '/info')).json().Debug, true);
  } finally {
    await d.cleanup();
  }
});
