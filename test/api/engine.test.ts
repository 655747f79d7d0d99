// Unit tests of the daemon's building blocks: metadata DB migrations, docker filters, the event
// bus, daemon configuration and registry rules.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MetadataDb, MetadataDbError, registerMigrations, type Migration } from '../../src/engine/db.ts';
import { FilterArgs, InvalidFilterError } from '../../src/engine/filters.ts';
import { EventBus, encodeEvent, eventFilter } from '../../src/engine/events.ts';
import {
  DaemonConfigError, loadDaemonConfig, normaliseInsecureRegistry, registryServiceConfig,
} from '../../src/engine/config.ts';

function tmp(): string {
  return mkdtempSync('/tmp/berth-engine-');
}

describe('MetadataDb', () => {
  test('WAL, synchronous=NORMAL, migrations applied once and recorded', () => {
    const dir = tmp();
    try {
      const m: Migration[] = [
        { version: 1, name: 'things', up: (db) => db.exec('CREATE TABLE things (id TEXT PRIMARY KEY)') },
        { version: 2, name: 'thing size', up: (db) => db.exec('ALTER TABLE things ADD COLUMN size INTEGER') },
      ];
      let db = MetadataDb.open(join(dir, 'berth.db'));
      assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.sqlite.pragma('synchronous', { simple: true }), 1);
      assert.deepEqual(db.migrate('things', m.slice(0, 1)).map((x) => x.version), [1]);
      assert.deepEqual(db.migrate('things', m).map((x) => x.version), [2]);
      assert.deepEqual(db.migrate('things', m), []);
      db.sqlite.prepare("INSERT INTO things VALUES ('a', 1)").run();
      db.close();
      db = MetadataDb.open(join(dir, 'berth.db'));
      assert.equal(db.version('things'), 2);
      assert.deepEqual(db.sqlite.prepare('SELECT * FROM things').all(), [{ id: 'a', size: 1 }]);
      // A DB from a newer Berth is refused, not used.
      assert.throws(() => db.migrate('things', m.slice(0, 1)), (e: Error) => e instanceof MetadataDbError && /written by a newer Berth: component "things" is at schema version 2, this build knows up to 1/.test(e.message));
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failing migration rolls back entirely and names itself', () => {
    const dir = tmp();
    try {
      const db = MetadataDb.open(join(dir, 'berth.db'));
      const bad: Migration[] = [{ version: 1, name: 'half', up: (s) => { s.exec('CREATE TABLE half (x)'); s.exec('THIS IS NOT SQL'); } }];
      assert.throws(() => db.migrate('bad', bad), /migration bad #1 \(half\) failed/);
      assert.equal(db.version('bad'), 0);
      assert.equal((db.sqlite.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'half'").get() as { n: number }).n, 0);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('migration lists must be numbered without gaps; meta key/value', () => {
    assert.throws(() => registerMigrations('gappy', [{ version: 2, name: 'x', up: () => {} }]), /numbered 1, 2, 3/);
    assert.throws(() => registerMigrations('Bad Name', []), /invalid migration component name/);
    const dir = tmp();
    try {
      const db = MetadataDb.open(join(dir, 'berth.db'));
      db.migrate('engine');
      assert.equal(db.getMeta('k'), undefined);
      db.setMeta('k', 'v1');
      db.setMeta('k', 'v2');
      assert.equal(db.getMeta('k'), 'v2');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FilterArgs', () => {
  test('both JSON forms, matching rules, validation', () => {
    const f = FilterArgs.fromJSON('{"type":{"container":true,"image":false},"label":["a=1","b"],"name":{"web":true}}');
    assert.deepEqual(f.get('type'), ['container']);
    assert.ok(f.exactMatch('type', 'container'));
    assert.ok(!f.exactMatch('type', 'image'));
    assert.ok(f.exactMatch('absent', 'anything'));
    assert.ok(f.fuzzyMatch('name', 'webserver'));
    assert.ok(!f.fuzzyMatch('name', 'db'));
    assert.ok(f.matchKVList('label', { a: '1', b: 'x' }));
    assert.ok(!f.matchKVList('label', { a: '2', b: 'x' }));
    assert.ok(!f.matchKVList('label', { a: '1' }));
    assert.throws(() => f.validate(['type', 'label']), (e: Error) => e instanceof InvalidFilterError && e.message === "invalid filter 'name'");
    assert.equal(FilterArgs.fromJSON('').size, 0);
    assert.throws(() => FilterArgs.fromJSON('[1]'), InvalidFilterError);
    assert.equal(FilterArgs.fromPairs(['type=container', 'label=a=b']).encode(), '{"type":{"container":true},"label":{"a=b":true}}');
    assert.throws(() => FilterArgs.fromPairs(['nope']), /bad format of filter/);
    assert.equal(FilterArgs.fromPairs(['dangling=true']).boolValue('dangling'), true);
    assert.throws(() => FilterArgs.fromPairs(['dangling=maybe']).boolValue('dangling'), /invalid filter 'dangling=maybe'/);
  });
});

describe('EventBus', () => {
  test('legacy fields, replay window, limit, filters, unsubscribe', () => {
    const bus = new EventBus(3);
    const live: string[] = [];
    const sub = bus.subscribe({ filter: eventFilter(FilterArgs.fromPairs(['type=container'])) }, (ev) => live.push(ev.Action));
    assert.deepEqual(sub.buffered, [], 'no replay without since/until');
    const a = bus.log('container', 'create', { ID: 'abc', Attributes: { image: 'busybox', name: 'web' } });
    bus.log('image', 'tag', { ID: 'sha256:1', Attributes: { name: 'busybox:latest' } });
    bus.log('volume', 'create', { ID: 'v1', Attributes: { driver: 'local' } });
    bus.log('container', 'start', { ID: 'abc', Attributes: { image: 'busybox', name: 'web' } });
    assert.deepEqual(live, ['create', 'start']);
    assert.equal(a.status, 'create');
    assert.equal(a.id, 'abc');
    assert.equal(a.from, 'busybox');
    assert.match(encodeEvent(a), /^\{"status":"create","id":"abc","from":"busybox","Type":"container",/);
    sub.unsubscribe();
    bus.log('container', 'stop', { ID: 'abc' });
    assert.deepEqual(live, ['create', 'start']);
    // Only the last 3 are kept.
    const replay = bus.subscribe({ since: 0n }, () => {});
    assert.deepEqual(replay.buffered.map((e) => e.Action), ['create', 'start', 'stop']);
    replay.unsubscribe();
    const imgs = bus.subscribe({ since: 0n, filter: eventFilter(FilterArgs.fromPairs(['image=busybox'])) }, () => {});
    assert.deepEqual(imgs.buffered.map((e) => `${e.Type} ${e.Action}`), ['container start']);
    imgs.unsubscribe();
    assert.equal(bus.listenerCount, 0);
  });

  test('timestamps increase strictly, in nanoseconds', () => {
    const bus = new EventBus();
    const t = Array.from({ length: 50 }, () => bus.log('daemon', 'x', { ID: 'd' }).timeNano);
    for (let i = 1; i < t.length; i++) assert.ok(t[i] > t[i - 1]);
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    assert.ok(t[0] > nowNs - 60_000_000_000n && t[0] < nowNs + 60_000_000_000n);
  });
});

describe('daemon configuration', () => {
  test('defaults, flags and file merged; conflicts listed', () => {
    const dir = tmp();
    try {
      const file = join(dir, 'daemon.json');
      writeFileSync(file, JSON.stringify({ 'insecure-registries': ['http://reg.test:5000', '10.0.0.1/8'], runtimes: { crun: { path: '/usr/bin/crun', runtimeArgs: ['--debug'] } }, 'default-runtime': 'crun', 'log-level': 'warn' }));
      const warnings: string[] = [];
      const c = loadDaemonConfig({ configFile: file, execRoot: join(dir, 'run') }, (w) => warnings.push(w));
      assert.equal(c.dataRoot, '/var/lib/berth');
      assert.deepEqual(c.hosts, [`unix://${dir}/run/berth.sock`], 'the default socket lives in the exec root');
      assert.deepEqual(c.insecureRegistries, ['reg.test:5000', '10.0.0.1/8']);
      assert.match(warnings[0], /should not contain 'http:\/\/'/);
      assert.equal(c.defaultRuntime, 'crun');
      assert.equal(c.logLevel, 'warn');
      assert.equal(c.pidFile, `${dir}/run/berth.pid`);
      assert.throws(() => loadDaemonConfig({ configFile: file, insecureRegistries: ['x:1'], defaultRuntime: 'berth' }),
        (e: Error) => e instanceof DaemonConfigError && /insecure-registries: \(from flag --insecure-registry/.test(e.message) && /default-runtime/.test(e.message));
      // A missing default file is fine; a missing explicit one is not.
      assert.doesNotThrow(() => loadDaemonConfig({}));
      assert.throws(() => loadDaemonConfig({ configFile: join(dir, 'absent.json') }), /no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('registry config for /info: CIDRs as Go prints them, loopback always insecure', () => {
    const cfg = { insecureRegistries: ['10.1.2.3/16', 'fd00::1/64', 'reg.test:5000', 'plain.test'], registryMirrors: [] };
    const rc = registryServiceConfig(cfg);
    assert.deepEqual(rc.InsecureRegistryCIDRs, ['10.1.0.0/16', 'fd00::/64', '127.0.0.0/8']);
    assert.deepEqual(Object.keys(rc.IndexConfigs).sort(), ['docker.io', 'plain.test', 'reg.test:5000']);
    assert.throws(() => normaliseInsecureRegistry('-bad'), /Cannot begin or end with a hyphen/);
    assert.throws(() => normaliseInsecureRegistry('ftp://x'), /should not contain '::\/\/'|should not contain ':\/\/'/);
  });
});
