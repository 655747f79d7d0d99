// Volumes and container mounts (src/engine/volumes.ts, volume-copyup.ts) against a real
// metadata DB and real directories: dockerd's parsing rules and messages, mount planning with
// rollback, references, OCI mounts, local driver options (a real tmpfs mount), and copy-up from
// a rootfs, including a hostile one whose symlinks point out of it.
import assert from 'node:assert/strict';
import {
  existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync,
  symlinkSync, writeFileSync, chownSync, chmodSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DaemonContext } from '../../src/api/context.ts';
import { MetadataDb } from '../../src/engine/db.ts';
import { EventBus, type EventMessage } from '../../src/engine/events.ts';
import { Logger } from '../../src/engine/log.ts';
import {
  ANONYMOUS_LABEL, mergeTmpfsOptions, parseBind, parseVolumesFrom, rootfsPropagation, VolumeError, VolumeService,
} from '../../src/engine/volumes.ts';
import { FilterArgs } from '../../src/engine/filters.ts';

const C1 = 'c1'.padEnd(64, '1');
const C2 = 'c2'.padEnd(64, '2');
const C3 = 'c3'.padEnd(64, '3');

let base: string;
let db: MetadataDb;
let svc: VolumeService;
let daemon: DaemonContext;
const events: EventMessage[] = [];

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'berth-volumes-test-'));
  db = MetadataDb.open(join(base, 'data', 'berth.db'));
  db.migrate();
  const bus = new EventBus();
  bus.subscribe({}, (ev) => events.push(ev));
  daemon = {
    config: { dataRoot: join(base, 'data') },
    db,
    events: bus,
    log: new Logger('error'),
    id: 'test',
    startedAt: new Date(),
    storageDriver: 'overlay2',
    storageDriverStatus: [],
    services: {},
    infoContributors: [],
    diskUsageContributors: [],
    onShutdown: () => {},
  } as unknown as DaemonContext;
  svc = await VolumeService.open(daemon);
});

after(() => {
  // Anything a failed test left mounted under the data root must go before the directory does.
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && base && mp.startsWith(base)) spawnSync('umount', ['-l', mp]);
  }
  db.close();
  rmSync(base, { recursive: true, force: true });
});

function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: Error) => {
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function volumeNames(): string[] {
  return svc.all().map((v) => v.name);
}

const hostConfig = (hc: Record<string, unknown>) => hc as never;

describe('parsing -v, --volumes-from and tmpfs options as dockerd', () => {
  test('host paths are binds, names are volumes, a lone path is an anonymous volume', () => {
    const b = parseBind('/srv/www:/var/www:ro,rslave');
    assert.equal(b.spec.Type, 'bind');
    assert.equal(b.spec.ReadOnly, true);
    assert.equal(b.spec.BindOptions?.Propagation, 'rslave');
    assert.equal(b.mode, 'ro,rslave');
    const v = parseBind('data:/data:nocopy');
    assert.equal(v.spec.Type, 'volume');
    assert.equal(v.name, 'data');
    assert.equal(v.copyData, false);
    const a = parseBind('/data');
    assert.equal(a.spec.Type, 'volume');
    assert.equal(a.name, undefined);
  });

  test('malformed specs get dockerd\'s messages', () => {
    rejects(() => parseBind(':/x'), "invalid volume specification: ':/x'");
    rejects(() => parseBind('/foo:rw'), "invalid volume specification: '/foo:rw'");
    rejects(() => parseBind('a:/b:ro:x:y'), "invalid volume specification: 'a:/b:ro:x:y'");
    rejects(() => parseBind('/h:/c:bogus'), 'invalid mode: bogus');
    rejects(() => parseBind('/h:/c:ro,rw'), 'invalid mode: ro,rw');
    rejects(() => parseBind('foo:rel'), `invalid volume specification: 'foo:rel': invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`);
    rejects(() => parseBind('/h:/'), `invalid volume specification: '/h:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`);
    rejects(() => parseVolumesFrom(''), 'volumes-from specification cannot be an empty string');
    rejects(() => parseVolumesFrom('c:rshared'), 'invalid mode: rshared');
    rejects(() => parseVolumesFrom('c:nocopy'), 'invalid mode: nocopy');
    assert.deepEqual(parseVolumesFrom('c'), { id: 'c', mode: 'rw' });
    assert.deepEqual(parseVolumesFrom('c:ro'), { id: 'c', mode: 'ro' });
  });

  test('tmpfs options merge as moby\'s: the last of a flag group or key wins', () => {
    assert.deepEqual(mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', 'exec', 'size=1m', 'size=2m']), ['nosuid', 'nodev', 'rprivate', 'exec', 'size=2m']);
    rejects(() => mergeTmpfsOptions(['bogus=1']), /invalid tmpfs option/);
  });
});

describe('volumes', () => {
  test('create, get, list with filters, and remove with docker\'s errors', () => {
    const { volume, created } = svc.create('web-data', { labels: { tier: 'web' }, options: {} });
    assert.equal(created, true);
    assert.ok(statSync(svc.dataPath('web-data')).isDirectory());
    assert.equal(statSync(svc.dataPath('web-data')).mode & 0o7777, 0o755);
    assert.equal(statSync(join(svc.root, 'web-data')).mode & 0o7777, 0o701);
    const d = svc.toDocker(volume);
    assert.deepEqual(Object.keys(d), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
    assert.equal(d.Mountpoint, join(base, 'data', 'volumes', 'web-data', '_data'));
    assert.match(d.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    // The same name again returns the volume unchanged.
    assert.equal(svc.create('web-data', { labels: { other: 'x' } }).created, false);
    assert.deepEqual(svc.get('web-data').labels, { tier: 'web' });
    svc.create('db2', {});
    svc.create('db10', {});
    assert.deepEqual(svc.list(FilterArgs.fromPairs(['label=tier=web'])).map((v) => v.name), ['web-data']);
    assert.deepEqual(svc.list(FilterArgs.fromPairs(['name=^db'])).map((v) => v.name), ['db10', 'db2']);
    assert.deepEqual(svc.list(FilterArgs.fromPairs(['driver=nosuch'])).length, 0);
    rejects(() => svc.list(FilterArgs.fromPairs(['bogus=1'])), "invalid filter 'bogus'");
    rejects(() => svc.get('nosuch'), 'get nosuch: no such volume');
    rejects(() => svc.remove('nosuch'), 'get nosuch: no such volume');
    svc.remove('nosuch', { force: true });
    for (const n of ['web-data', 'db2', 'db10']) svc.remove(n);
    assert.equal(existsSync(join(svc.root, 'web-data')), false);
    assert.ok(events.some((e) => e.Type === 'volume' && e.Action === 'create' && e.Actor.ID === 'db2' && e.Actor.Attributes.driver === 'local'));
    assert.ok(events.some((e) => e.Type === 'volume' && e.Action === 'destroy' && e.Actor.ID === 'db2'));
  });

  test('names and driver options are checked as dockerd\'s local driver does', () => {
    rejects(() => svc.create('a'), 'create a: volume name is too short, names should be at least two alphanumeric characters');
    rejects(() => svc.create('foo/bar'), 'create foo/bar: "foo/bar" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path');
    rejects(() => svc.create('vv', { options: { foo: '1' } }), 'create vv: invalid option: "foo"');
    rejects(() => svc.create('vv', { options: { device: 'tmpfs' } }), 'create vv: missing required option: "type"');
    rejects(() => svc.create('vv', { options: { size: '10m' } }), 'create vv: quota size requested but no quota support');
    rejects(() => svc.create('vv', { driver: 'flocker' }), 'create vv: error looking up volume plugin flocker: plugin "flocker" not found');
    assert.equal(existsSync(join(svc.root, 'vv')), false);
  });

  test('a bind volume (type=none, o=bind, device=DIR) shows DIR while in use and leaves it on remove', async () => {
    const dir = mkdtempSync(join(base, 'bind-device-'));
    writeFileSync(join(dir, 'hello'), 'from the host');
    svc.create('hostbind', { options: { type: 'none', o: 'bind', device: dir } });
    const mounts = svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['hostbind:/data'] }), imageVolumes: {} });
    await svc.ociMounts(C1, mounts, mkdtempSync(join(base, 'rootfs-')));
    assert.equal(readFileSync(join(svc.dataPath('hostbind'), 'hello'), 'utf8'), 'from the host');
    assert.deepEqual(readdirSync(dir), ['hello'], 'no copy-up into a volume that already has data');
    await svc.release(C1, true);
    svc.remove('hostbind');
    assert.equal(readFileSync(join(dir, 'hello'), 'utf8'), 'from the host');
    // As dockerd: the options are only tried when a container uses the volume.
    svc.create('badmount', { options: { type: 'none', o: 'bind', device: join(base, 'nonexistent') } });
    const bad = svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['badmount:/data'] }), imageVolumes: {} });
    await assert.rejects(svc.ociMounts(C1, bad, mkdtempSync(join(base, 'rootfs-'))), { message: new RegExp(`^error while mounting volume '${svc.dataPath('badmount')}': failed to mount local volume: `) });
    await svc.release(C1, true);
    svc.remove('badmount');
  });

  test('remove refuses a volume with something still mounted in it, and leaves that alone', () => {
    svc.create('busy');
    const hostData = mkdtempSync(join(base, 'host-data-'));
    writeFileSync(join(hostData, 'precious'), 'x');
    assert.equal(spawnSync('mount', ['--bind', hostData, svc.dataPath('busy')]).status, 0);
    try {
      rejects(() => svc.remove('busy'), `remove busy: ${svc.dataPath('busy')} is still mounted`);
      assert.equal(readFileSync(join(hostData, 'precious'), 'utf8'), 'x');
    } finally {
      spawnSync('umount', [svc.dataPath('busy')]);
    }
    svc.remove('busy');
    assert.equal(readFileSync(join(hostData, 'precious'), 'utf8'), 'x');
  });

  test('a volume with type/device/o is mounted at _data while in use, unmounted after', async () => {
    svc.create('scratch', { options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,mode=0700' } });
    const mounts = svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['scratch:/scratch'] }), imageVolumes: {} });
    const rootfs = mkdtempSync(join(base, 'rootfs-'));
    const oci = await svc.ociMounts(C1, mounts, rootfs);
    const data = svc.dataPath('scratch');
    assert.deepEqual(oci, [{ destination: '/scratch', type: 'bind', source: data, options: ['rbind'] }]);
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === data);
    assert.ok(line, 'tmpfs mounted at _data');
    assert.match(line!, / - tmpfs tmpfs .*size=1024k/);
    assert.equal(statSync(data).mode & 0o777, 0o700);
    // Not counted by df or prune (dockerd leaves volumes with options out of both).
    assert.ok(!svc.diskUsage().some((v) => v.Name === 'scratch'));
    await svc.release(C1, false);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === data), 'unmounted');
    svc.remove('scratch');
  });
});

describe('planMounts', () => {
  test('-v bind, named and anonymous volumes, --mount and --tmpfs: inspect\'s Mounts and the OCI mounts', async () => {
    const host = join(base, 'host-dir-created-at-start');
    const src = mkdtempSync(join(base, 'src-'));
    const mounts = svc.planMounts({
      containerId: C1,
      hostConfig: hostConfig({
        Binds: [`${host}:/host:ro`, 'named1:/named', '/anon-bind'],
        Mounts: [
          { Type: 'bind', Source: src, Target: '/m-bind', BindOptions: { Propagation: 'rslave', NonRecursive: true } },
          { Type: 'volume', Source: 'named2', Target: '/m-vol', ReadOnly: true, VolumeOptions: { Labels: { a: 'b' }, NoCopy: true } },
          { Type: 'tmpfs', Target: '/m-tmp', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 } },
        ],
        Tmpfs: { '/run': '' },
      }),
      imageVolumes: { '/named': {}, '/img': {}, '/run': {} },
    });
    const byDest = new Map(mounts.map((m) => [m.Destination, m]));
    assert.deepEqual(byDest.get('/host'), { Type: 'bind', Source: host, Destination: '/host', Mode: 'ro', RW: false, Propagation: 'rprivate' });
    assert.deepEqual(byDest.get('/named'), { Type: 'volume', Name: 'named1', Source: svc.dataPath('named1'), Destination: '/named', Driver: 'local', Mode: 'z', RW: true, Propagation: '' });
    assert.deepEqual(byDest.get('/m-bind'), { Type: 'bind', Source: src, Destination: '/m-bind', Mode: '', RW: true, Propagation: 'rslave' });
    assert.deepEqual(byDest.get('/m-vol'), { Type: 'volume', Name: 'named2', Source: svc.dataPath('named2'), Destination: '/m-vol', Driver: 'local', Mode: 'z', RW: false, Propagation: '' });
    assert.deepEqual(byDest.get('/m-tmp'), { Type: 'tmpfs', Source: '', Destination: '/m-tmp', Mode: '', RW: true, Propagation: '' });
    const anonBind = byDest.get('/anon-bind')!;
    const img = byDest.get('/img')!;
    for (const a of [anonBind, img]) {
      assert.match(a.Name!, /^[0-9a-f]{64}$/);
      assert.deepEqual(svc.get(a.Name!).labels, { [ANONYMOUS_LABEL]: '' });
    }
    assert.equal(img.Mode, '');
    assert.equal(anonBind.Mode, 'z');
    assert.ok(!byDest.has('/run'), 'an image VOLUME under a --tmpfs is not a volume');
    assert.deepEqual(svc.get('named2').labels, { a: 'b' });
    assert.deepEqual(svc.references('named1'), [C1]);
    // The -v host directory is created at start, not at create.
    assert.equal(existsSync(host), false);
    const rootfs = mkdtempSync(join(base, 'rootfs-'));
    const oci = await svc.ociMounts(C1, mounts, rootfs);
    assert.ok(statSync(host).isDirectory());
    const ociBy = new Map(oci.map((m) => [m.destination, m]));
    assert.deepEqual(ociBy.get('/host'), { destination: '/host', type: 'bind', source: host, options: ['rbind', 'rro', 'rprivate'] });
    assert.deepEqual(ociBy.get('/m-bind')!.options, ['bind', 'rslave']);
    assert.deepEqual(ociBy.get('/m-vol'), { destination: '/m-vol', type: 'bind', source: svc.dataPath('named2'), options: ['rbind', 'rro'] });
    assert.deepEqual(ociBy.get('/m-tmp'), { destination: '/m-tmp', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'mode=1777', 'size=64m'] });
    assert.ok(events.some((e) => e.Type === 'volume' && e.Action === 'mount' && e.Actor.ID === 'named1' && e.Actor.Attributes.container === C1 && e.Actor.Attributes.destination === '/named'));

    // In use: docker's message lists the containers.
    svc.planMounts({ containerId: C2, hostConfig: hostConfig({ Binds: ['named1:/again'] }), imageVolumes: {} });
    rejects(() => svc.remove('named1'), `remove named1: volume is in use - [${C1}, ${C2}]`);
    assert.deepEqual(svc.list(FilterArgs.fromPairs(['dangling=true'])).map((v) => v.name), []);

    // rm -v: anonymous volumes go, named ones stay (and stay referenced by C2).
    await svc.release(C1, true);
    assert.equal(svc.find(anonBind.Name!), undefined);
    assert.equal(svc.find(img.Name!), undefined);
    assert.deepEqual(svc.references('named1'), [C2]);
    assert.deepEqual(svc.list(FilterArgs.fromPairs(['dangling=true'])).map((v) => v.name), ['named2']);
    await svc.release(C2, true);
    svc.remove('named1');
    svc.remove('named2');
    assert.deepEqual(volumeNames(), []);
  });

  test('errors leave nothing created: missing bind source, duplicates, bad names', () => {
    const before = readdirSync(svc.root).length;
    rejects(() => svc.planMounts({
      containerId: C1,
      hostConfig: hostConfig({ Binds: ['fresh:/a'], Mounts: [{ Type: 'bind', Source: '/nonexistent-berth-src', Target: '/b' }] }),
      imageVolumes: { '/img': {} },
    }), 'invalid mount config for type "bind": bind source path does not exist: /nonexistent-berth-src');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['fresh:/a', '/tmp:/a/'] }), imageVolumes: {} }), 'Duplicate mount point: /a');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['fresh:/run'], Tmpfs: { '/run': 'size=1m' } }), imageVolumes: {} }), 'Duplicate mount point: /run');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['fresh:/a'], Mounts: [{ Type: 'volume', Target: '/a/' }] }), imageVolumes: {} }), 'Duplicate mount point: /a/');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['fresh:/a', 'x:/b'] }), imageVolumes: {} }), /^create x: volume name is too short/);
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Mounts: [{ Type: 'tmpfs', Source: 'x', Target: '/t' }] }), imageVolumes: {} }), 'invalid mount config for type "tmpfs": field Source must not be specified');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Mounts: [{ Type: 'bind', Source: '/tmp', Target: '/t', VolumeOptions: {} }] }), imageVolumes: {} }), 'invalid mount config for type "bind": field VolumeOptions must not be specified');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Mounts: [{ Type: 'volume', Target: '/t', VolumeOptions: { Subpath: 'x' } }] }), imageVolumes: {} }), 'invalid mount config for type "volume": must not set Subpath when using anonymous volumes');
    assert.equal(readdirSync(svc.root).length, before);
    assert.deepEqual(volumeNames(), []);
    assert.deepEqual(svc.plannedMounts(C1), []);
    const err = (() => { try { svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['/h:/a', '/h:/a'] }), imageVolumes: {} }); } catch (e) { return e; } })();
    assert.ok(err instanceof VolumeError && err.statusCode === 400);
  });

  test('--volumes-from shares mounts, read-only with :ro; rm -v of the second keeps a volume the first uses', async () => {
    const first = svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['shared:/shared', '/tmp:/hosttmp'] }), imageVolumes: { '/anon': {} } });
    const second = svc.planMounts({
      containerId: C2,
      hostConfig: hostConfig({ VolumesFrom: ['first:ro'] }),
      imageVolumes: {},
      volumesFrom: (id) => {
        assert.equal(id, 'first');
        return first;
      },
    });
    assert.equal(second.length, 3);
    for (const m of second) assert.equal(m.RW, false);
    const anon = first.find((m) => m.Destination === '/anon')!.Name!;
    assert.deepEqual(svc.references(anon), [C1, C2]);
    rejects(() => svc.planMounts({ containerId: C3, hostConfig: hostConfig({ VolumesFrom: ['nosuch'] }), imageVolumes: {}, volumesFrom: () => { throw new Error('No such container: nosuch'); } }), 'No such container: nosuch');
    await svc.release(C2, true);
    assert.ok(svc.find(anon), 'still used by the first container');
    await svc.release(C1, true);
    assert.equal(svc.find(anon), undefined);
    svc.remove('shared');
  });
});

describe('copy-up', () => {
  let rootfs: string;
  let outside: string;

  before(() => {
    rootfs = mkdtempSync(join(base, 'image-rootfs-'));
    outside = mkdtempSync(join(base, 'outside-'));
    writeFileSync(join(outside, 'secret'), 'host secret');
    // A sane image path: ownership, modes (setuid too), nested dirs, symlinks, hard links, a FIFO.
    const d = join(rootfs, 'var', 'lib', 'app');
    mkdirSync(join(d, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(d, 'config'), 'config=1\n');
    chownSync(join(d, 'config'), 1234, 5678);
    chmodSync(join(d, 'config'), 0o640);
    writeFileSync(join(d, 'tool'), '#!/bin/sh\n');
    chmodSync(join(d, 'tool'), 0o4755);
    linkSync(join(d, 'config'), join(d, 'config.hard'));
    writeFileSync(join(d, 'sub', 'deeper', 'f'), 'deep');
    linkSync(join(d, 'sub', 'deeper', 'f'), join(d, 'sub', 'f-hard'));
    symlinkSync('/etc/passwd', join(d, 'abs-link'));
    symlinkSync('../../../../../../etc', join(d, 'rel-link'));
    spawnSync('mkfifo', [join(d, 'pipe')]);
    chownSync(d, 999, 999);
    chmodSync(d, 0o750);
    // Hostile: mount points that are symlinks out of the rootfs, absolute and relative.
    symlinkSync(outside, join(rootfs, 'abs-escape'));
    symlinkSync(`../../../../../../../..${outside}`, join(rootfs, 'rel-escape'));
    // …and a symlink whose target exists inside the rootfs once re-rooted (dockerd follows it there).
    mkdirSync(join(rootfs, 'real', 'data'), { recursive: true });
    writeFileSync(join(rootfs, 'real', 'data', 'inside'), 'inside the image');
    symlinkSync('/real/data', join(rootfs, 'linked'));
    writeFileSync(join(rootfs, 'a-file'), 'x');
  });

  test('an image VOLUME gets the image\'s content once, with owners, modes, links and FIFOs', async () => {
    const mounts = svc.planMounts({ containerId: C1, hostConfig: hostConfig({}), imageVolumes: { '/var/lib/app': {} } });
    const vol = mounts[0].Source;
    await svc.ociMounts(C1, mounts, rootfs);
    const st = (p: string) => lstatSync(join(vol, p));
    assert.equal(readFileSync(join(vol, 'config'), 'utf8'), 'config=1\n');
    assert.equal(st('config').uid, 1234);
    assert.equal(st('config').gid, 5678);
    assert.equal(st('config').mode & 0o7777, 0o640);
    assert.equal(st('tool').mode & 0o7777, 0o4755, 'setuid kept (chmod after chown)');
    assert.equal(st('config.hard').ino, st('config').ino, 'hard link kept');
    assert.equal(readFileSync(join(vol, 'sub', 'deeper', 'f'), 'utf8'), 'deep');
    assert.equal(st('sub/f-hard').ino, st('sub/deeper/f').ino, 'hard link across directories kept');
    assert.equal(readlinkSync(join(vol, 'abs-link')), '/etc/passwd');
    assert.equal(readlinkSync(join(vol, 'rel-link')), '../../../../../../etc');
    assert.ok(st('pipe').isFIFO());
    // The volume's root takes the image directory's owner and mode, as dockerd's copy.
    assert.equal(statSync(vol).uid, 999);
    assert.equal(statSync(vol).mode & 0o7777, 0o750);
    assert.equal(st('config').mtimeMs, lstatSync(join(rootfs, 'var/lib/app/config')).mtimeMs);
    // Once: a later start does not copy again, even into an emptied volume.
    for (const n of readdirSync(vol)) rmSync(join(vol, n), { recursive: true });
    await svc.ociMounts(C1, mounts, rootfs);
    assert.deepEqual(readdirSync(vol), []);
    await svc.release(C1, true);
  });

  test('symlinks at the mount point are resolved inside the rootfs, never on the host', async () => {
    const mounts = svc.planMounts({
      containerId: C1,
      hostConfig: hostConfig({}),
      imageVolumes: { '/abs-escape': {}, '/rel-escape': {}, '/linked': {}, '/var/lib/app/rel-link': {} },
    });
    await svc.ociMounts(C1, mounts, rootfs);
    const src = (d: string) => mounts.find((m) => m.Destination === d)!.Source;
    assert.deepEqual(readdirSync(src('/abs-escape')), [], 'the host directory the symlink names was not copied');
    assert.deepEqual(readdirSync(src('/rel-escape')), []);
    assert.deepEqual(readdirSync(src('/var/lib/app/rel-link')), [], '"../../../etc" stops at the rootfs, which has no /etc');
    assert.deepEqual(readdirSync(src('/linked')), ['inside']);
    await svc.release(C1, true);
  });

  test('nocopy, non-empty volumes and files in the image', async () => {
    const m1 = svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['nc:/var/lib/app:nocopy'] }), imageVolumes: {} });
    await svc.ociMounts(C1, m1, rootfs);
    assert.deepEqual(readdirSync(svc.dataPath('nc')), []);
    await svc.release(C1, false);
    writeFileSync(join(svc.dataPath('nc'), 'mine'), 'keep');
    const m2 = svc.planMounts({ containerId: C2, hostConfig: hostConfig({ Binds: ['nc:/var/lib/app'] }), imageVolumes: {} });
    await svc.ociMounts(C2, m2, rootfs);
    assert.deepEqual(readdirSync(svc.dataPath('nc')), ['mine'], 'a volume with data is not copied into');
    await svc.release(C2, false);
    svc.remove('nc');
    const m3 = svc.planMounts({ containerId: C3, hostConfig: hostConfig({}), imageVolumes: { '/a-file': {} } });
    await assert.rejects(svc.ociMounts(C3, m3, rootfs), { message: `cannot mount volume over existing file, file exists ${join(rootfs, 'a-file')}` });
    await svc.release(C3, true);
    assert.deepEqual(volumeNames(), []);
  });
});

describe('bind propagation', () => {
  test('shared and slave binds need a shared (or slave) source mount and set the rootfs propagation', () => {
    const shr = join(base, 'shared-mnt');
    const prv = join(base, 'private-mnt');
    mkdirSync(shr);
    mkdirSync(prv);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', shr]).status, 0);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', prv]).status, 0);
    try {
      assert.equal(spawnSync('mount', ['--make-shared', shr]).status, 0);
      assert.equal(spawnSync('mount', ['--make-private', prv]).status, 0);
      mkdirSync(join(shr, 'src'));
      mkdirSync(join(prv, 'src'));
      const bind = (source: string, prop: string) => ({ destination: '/x', type: 'bind', source, options: ['rbind', prop] });
      assert.equal(rootfsPropagation([bind(join(prv, 'src'), 'rprivate')]), undefined);
      assert.equal(rootfsPropagation([bind(join(shr, 'src'), 'rshared')]), 'shared');
      assert.equal(rootfsPropagation([bind(join(shr, 'src'), 'rslave')]), 'rslave');
      assert.equal(rootfsPropagation([bind(join(shr, 'src'), 'rslave'), bind(join(shr, 'src'), 'shared')]), 'shared');
      rejects(() => rootfsPropagation([bind(join(prv, 'src'), 'rshared')]), `path ${join(prv, 'src')} is mounted on ${prv} but it is not a shared mount`);
      rejects(() => rootfsPropagation([bind(join(prv, 'src'), 'slave')]), `path ${join(prv, 'src')} is mounted on ${prv} but it is not a shared or slave mount`);
    } finally {
      spawnSync('umount', [shr]);
      spawnSync('umount', [prv]);
    }
  });
});

describe('what is on disk', () => {
  test('volume directories without a record come back at open; a leftover directory is reused, not wiped', async () => {
    mkdirSync(join(svc.root, 'stray', '_data'), { recursive: true });
    writeFileSync(join(svc.root, 'stray', '_data', 'kept'), 'x');
    mkdirSync(join(svc.root, 'not a volume'), { recursive: true });
    const again = await VolumeService.open(daemon);
    assert.deepEqual(again.get('stray').labels, null);
    assert.equal(again.find('not a volume'), undefined);
    assert.equal(readFileSync(join(svc.dataPath('stray'), 'kept'), 'utf8'), 'x');
    svc.remove('stray');
    rmSync(join(svc.root, 'not a volume'), { recursive: true });
    // A crash between mkdir and commit leaves a directory: create takes it over, with its data.
    mkdirSync(join(svc.root, 'leftover', '_data'), { recursive: true });
    writeFileSync(join(svc.root, 'leftover', '_data', 'data'), 'y');
    rejects(() => svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['leftover:/l', 'bad/name:/b'] }), imageVolumes: {} }), /^create bad\/name: /);
    assert.equal(readFileSync(join(svc.root, 'leftover', '_data', 'data'), 'utf8'), 'y', 'a rollback never removes a directory it did not make');
    assert.equal(svc.create('leftover').created, true);
    assert.equal(readFileSync(join(svc.dataPath('leftover'), 'data'), 'utf8'), 'y');
    svc.remove('leftover');
    daemon.services.volumes = svc;
  });
});

describe('prune and disk usage', () => {
  test('prune removes unused anonymous volumes, all=true named ones too; df reports size and references', () => {
    const { volume: anon } = svc.create('');
    svc.create('keep-named', { labels: { keep: 'yes' } });
    svc.create('other-named');
    writeFileSync(join(svc.dataPath(anon.name), 'f'), 'x'.repeat(1000));
    svc.planMounts({ containerId: C1, hostConfig: hostConfig({ Binds: ['other-named:/o'] }), imageVolumes: {} });
    const du = svc.diskUsage();
    assert.deepEqual(du.find((v) => v.Name === anon.name)!.UsageData, { RefCount: 0, Size: 1000 });
    assert.deepEqual(du.find((v) => v.Name === 'other-named')!.UsageData, { RefCount: 1, Size: 0 });
    assert.deepEqual(svc.prune(new FilterArgs()), { VolumesDeleted: [anon.name], SpaceReclaimed: 1000 });
    assert.deepEqual(svc.prune(FilterArgs.fromPairs(['all=true', 'label!=keep'])), { VolumesDeleted: [], SpaceReclaimed: 0 });
    assert.deepEqual(svc.prune(FilterArgs.fromPairs(['all=1'])), { VolumesDeleted: ['keep-named'], SpaceReclaimed: 0 });
    rejects(() => svc.prune(FilterArgs.fromPairs(['all=maybe'])), /^invalid filter 'all'/);
    rejects(() => svc.prune(FilterArgs.fromPairs(['name=x'])), "invalid filter 'name'");
    void svc.release(C1, false);
    svc.remove('other-named');
  });
});

