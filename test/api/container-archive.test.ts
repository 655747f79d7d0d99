// The container archive API in-process (HEAD/GET/PUT /containers/{id}/archive, export, changes,
// commit) against a real image store and a real writable snapshot mounted as the container's
// rootfs, with a bind mount and a read-only volume. The container service is a small real
// ContainerAccess over that snapshot (the same storage the engine's containers use).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApiModule } from '../../src/api/context.ts';
import { startDaemon, type DaemonHandle } from '../../src/api/daemon.ts';
import { NotFoundError } from '../../src/api/errors.ts';
import { containerArchiveModule } from '../../src/api/routes/container-archive.ts';
import { imageArchiveModule } from '../../src/api/routes/image-archive.ts';
import { imagesModule } from '../../src/api/routes/images.ts';
import { systemModule } from '../../src/api/routes/system.ts';
import type { ContainerAccess, ContainerRecord } from '../../src/engine/containers/types.ts';
import { Logger } from '../../src/engine/log.ts';
import type { ImageService } from '../../src/image/service.ts';
import { TarReader, type TarEntry } from '../../src/image/unpack/index.ts';
import { httpRequest } from '../helpers/daemon.ts';
import { makeBusyboxRootfs, tarDirectory } from '../helpers/images.ts';
import { packTar, rawTar } from '../helpers/tar.ts';

interface Parsed { entry: TarEntry; data: Buffer }
function parseTar(tar: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let cur: Parsed | undefined;
  const r = new TarReader({
    entry(e) { cur = { entry: e, data: Buffer.alloc(0) }; out.push(cur); },
    data(c) { cur!.data = Buffer.concat([cur!.data, c]); },
    entryEnd() { cur = undefined; },
  });
  r.push(tar);
  r.end();
  return out;
}

/** A minimal real container service: records in memory, rootfs = an active snapshot mounted on a temp dir. */
class TestContainers implements ContainerAccess {
  readonly recs = new Map<string, ContainerRecord>();
  readonly mountsAt = new Map<string, string>();
  constructor(private readonly images: () => ImageService, private readonly dir: string) {}

  async create(id: string, name: string, imageRef: string, extra: Partial<ContainerRecord> = {}): Promise<ContainerRecord> {
    const images = this.images();
    const image = images.get(imageRef);
    await images.snapshots.prepareActive(id, image.chainIds.at(-1) ?? null);
    const target = join(this.dir, `rootfs-${id.slice(0, 8)}`);
    mkdirSync(target, { recursive: true });
    await images.snapshots.mount(id, target);
    this.mountsAt.set(id, target);
    const rec = {
      Id: id, Name: `/${name}`, Created: new Date().toISOString(), Path: 'sh', Args: [], ImageRef: imageRef, Image: image.id,
      Config: { Cmd: ['sh'], Env: ['PATH=/bin', 'A=1'], Image: imageRef, Labels: { from: 'container' }, WorkingDir: '/' },
      HostConfig: {}, State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: '', FinishedAt: '' },
      RestartCount: 0, NetworkSettings: { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} }, Mounts: [],
      LogPath: '', ResolvConfPath: '', HostnamePath: '', HostsPath: '', Runtime: 'berth', ExecIDs: [], ...extra,
    } as ContainerRecord;
    this.recs.set(id, rec);
    return rec;
  }

  get(idOrName: string): ContainerRecord {
    for (const r of this.recs.values()) if (r.Id === idOrName || r.Id.startsWith(idOrName) || r.Name === `/${idOrName.replace(/^\//, '')}`) return r;
    throw new NotFoundError(`No such container: ${idOrName}`);
  }
  list(): ContainerRecord[] { return [...this.recs.values()]; }
  async withRootfs<T>(id: string, fn: (rootfs: string) => T | Promise<T>): Promise<T> { return fn(this.mountsAt.get(this.get(id).Id)!); }
  snapshotMounts(id: string) { return this.images().snapshots.mounts(this.get(id).Id); }
  dataDir(id: string): string { return join(this.dir, 'containers', id); }
  unmountAll(): void { for (const m of this.mountsAt.values()) spawnSync('umount', [m]); }
}

let dir: string;
let daemon: DaemonHandle;
let sock: string;
let containers: TestContainers;
let rootfs: string;
let hostSecret: string;
let volume: string;
let roVolume: string;
const ID = 'c0ffee'.padEnd(64, '0');

const req = (method: string, path: string, opts: Parameters<typeof httpRequest>[3] = {}) => httpRequest(sock, method, `/v1.47${path}`, opts);
const images = (): ImageService => daemon.context.services.images!;

before(async () => {
  dir = mkdtempSync('/tmp/berth-carchive-');
  sock = join(dir, 'berth.sock');
  writeFileSync(join(dir, 'daemon.json'), '{}');
  const testModule: ApiModule = { name: 'test-containers', init(d) { (d.services as { containers?: unknown }).containers = containers; } };
  containers = new TestContainers(images, dir);
  daemon = await startDaemon(
    { hosts: [`unix://${sock}`], dataRoot: join(dir, 'data'), execRoot: join(dir, 'run'), configFile: join(dir, 'daemon.json') },
    { modules: [systemModule, imagesModule, imageArchiveModule, containerArchiveModule, testModule], logger: new Logger('error') },
  );
  // The image: a busybox rootfs imported as bb:1, with mount points and a symlink that points at
  // a host directory by its host path (inside the container it means something else).
  const src = join(dir, 'src');
  makeBusyboxRootfs(src);
  mkdirSync(join(src, 'data'));
  mkdirSync(join(src, 'ro'));
  writeFileSync(join(src, 'etc', 'motd'), 'hello\n');
  hostSecret = join(dir, 'host-secret');
  mkdirSync(hostSecret);
  writeFileSync(join(hostSecret, 'secret'), 'host only');
  symlinkSync(hostSecret, join(src, 'hostlink'));
  symlinkSync('../../../../../../..', join(src, 'updir'));
  symlinkSync('etc', join(src, 'etclink'));
  const r = await req('POST', '/images/create?fromSrc=-&repo=bb&tag=1', { body: tarDirectory(src), headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(r.status, 200, r.text);
  volume = join(dir, 'vol');
  roVolume = join(dir, 'rovol');
  mkdirSync(volume);
  mkdirSync(roVolume);
  writeFileSync(join(volume, 'inside'), 'volume data');
  const rec = await containers.create(ID, 'web', 'bb:1', {
    Mounts: [
      { Type: 'bind', Source: volume, Destination: '/data', Mode: '', RW: true, Propagation: 'rprivate' },
      { Type: 'volume', Name: 'ro', Source: roVolume, Destination: '/ro', Driver: 'local', Mode: 'ro', RW: false, Propagation: '' },
      { Type: 'bind', Source: join(dir, 'host.conf'), Destination: '/etc/mounted.conf', Mode: '', RW: true, Propagation: 'rprivate' },
    ],
  });
  rootfs = containers.mountsAt.get(rec.Id)!;
  // A file bind mount: the engine's placeholder in the rootfs, the content on the host.
  writeFileSync(join(dir, 'host.conf'), 'mounted file\n');
  writeFileSync(join(rootfs, 'etc', 'mounted.conf'), '');
});

after(async () => {
  containers?.unmountAll();
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function statOf(r: { headers: Record<string, string | string[] | undefined> }): { name: string; size: number; mode: number; mtime: string; linkTarget: string } {
  const h = r.headers['x-docker-container-path-stat'];
  assert.ok(typeof h === 'string', 'the stat header is present');
  return JSON.parse(Buffer.from(h, 'base64').toString('utf8'));
}

describe('HEAD /containers/{id}/archive', () => {
  test('a file, a directory and a symlink: Go FileMode bits, RFC 3339 mtime, resolved link target', async () => {
    let r = await req('HEAD', `/containers/web/archive?path=/etc/motd`);
    assert.equal(r.status, 200);
    let s = statOf(r);
    assert.equal(s.name, 'motd');
    assert.equal(s.size, 6);
    assert.equal(s.mode, 0o644);
    assert.match(s.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(s.linkTarget, '');
    s = statOf(await req('HEAD', `/containers/web/archive?path=/etc/`));
    assert.equal(s.name, 'etc');
    assert.equal(s.mode, 2 ** 31 + 0o755);
    s = statOf(await req('HEAD', `/containers/web/archive?path=/etclink`));
    assert.equal(s.mode, 2 ** 27 + 0o777);
    assert.equal(s.linkTarget, '/etc');
    s = statOf(await req('HEAD', `/containers/${ID.slice(0, 12)}/archive?path=/tmp`));
    assert.equal(s.mode, 2 ** 31 + 2 ** 20 + 0o777, 'sticky bit');
  });

  test('missing paths, and host paths through symlinks, are not found', async () => {
    let r = await req('HEAD', `/containers/web/archive?path=/nope`);
    assert.equal(r.status, 404);
    r = await req('GET', `/containers/web/archive?path=/nope`);
    assert.equal(r.status, 404);
    assert.equal(r.json().message, 'Could not find the file /nope in container web');
    // /hostlink points at a host directory's path: inside the container that path does not exist.
    r = await req('GET', `/containers/web/archive?path=/hostlink/secret`);
    assert.equal(r.status, 404);
    r = await req('GET', `/containers/web/archive?path=${encodeURIComponent(`/updir${hostSecret}/secret`)}`);
    assert.equal(r.status, 404, '.. stops at the container root');
    assert.equal((await req('GET', `/containers/nosuch/archive?path=/`)).status, 404);
    assert.equal((await req('GET', `/containers/web/archive`)).status, 400);
  });
});

describe('GET /containers/{id}/archive', () => {
  test('docker\'s entry names: the base name, "dir/." as ".", a followed symlink under its own name', async () => {
    let r = await req('GET', `/containers/web/archive?path=/etc`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/x-tar');
    let names = parseTar(r.body).map((e) => e.entry.name);
    assert.ok(names.includes('etc/') && names.includes('etc/motd') && names.includes('etc/passwd'), names.join(' '));
    r = await req('GET', `/containers/web/archive?path=/etc/.`);
    names = parseTar(r.body).map((e) => e.entry.name);
    assert.ok(names.includes('./') && names.includes('./motd'), names.join(' '));
    r = await req('GET', `/containers/web/archive?path=/etclink/`);
    names = parseTar(r.body).map((e) => e.entry.name);
    assert.ok(names.includes('etclink/') && names.includes('etclink/motd'), names.join(' '));
    r = await req('GET', `/containers/web/archive?path=/etclink`);
    const only = parseTar(r.body);
    assert.deepEqual(only.map((e) => [e.entry.name, e.entry.type, e.entry.linkname]), [['etclink', 'symlink', 'etc']]);
    r = await req('GET', `/containers/web/archive?path=/etc/motd`);
    const file = parseTar(r.body);
    assert.equal(file.length, 1);
    assert.equal(file[0]!.entry.name, 'motd');
    assert.equal(file[0]!.data.toString(), 'hello\n');
    assert.equal(statOf(r).name, 'motd');
  });

  test('a file bind mount: its host file, alone or inside its directory', async () => {
    let r = await req('GET', `/containers/web/archive?path=/etc/mounted.conf`);
    assert.equal(r.status, 200, r.text);
    assert.equal(parseTar(r.body)[0]!.data.toString(), 'mounted file\n');
    assert.equal(statOf(r).size, 13);
    r = await req('GET', `/containers/web/archive?path=/etc`);
    const entry = parseTar(r.body).find((e) => e.entry.name === 'etc/mounted.conf');
    assert.equal(entry?.data.toString(), 'mounted file\n');
  });

  test('paths in mounts come from the mount source; the root includes the mounts\' contents', async () => {
    let r = await req('GET', `/containers/web/archive?path=/data/inside`);
    assert.equal(parseTar(r.body)[0]!.data.toString(), 'volume data');
    r = await req('GET', `/containers/web/archive?path=/`);
    const names = parseTar(r.body).map((e) => e.entry.name);
    assert.ok(names.includes('data/inside') && names.includes('bin/busybox'), names.slice(0, 20).join(' '));
    assert.ok(!names.some((n) => n.includes('secret')), 'nothing from the host');
  });
});

describe('PUT /containers/{id}/archive', () => {
  test('extracts into the writable layer, through a symlinked destination, and into a bind mount', async () => {
    const tar = await packTar([
      { name: 'newdir/', type: 'directory', mode: 0o750 },
      { name: 'newdir/file', data: 'put data', mode: 0o640, uid: 1234, gid: 5678 },
      { name: 'newdir/link', type: 'symlink', linkname: '/etc/motd' },
      { name: 'newdir/hard', type: 'link', linkname: 'newdir/file' },
    ]);
    let r = await req('PUT', `/containers/web/archive?path=/tmp`, { body: tar });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(join(rootfs, 'tmp/newdir/file'), 'utf8'), 'put data');
    const st = statSync(join(rootfs, 'tmp/newdir/file'));
    assert.deepEqual([st.mode & 0o7777, st.uid, st.gid, st.nlink], [0o640, 1234, 5678, 2]);
    assert.equal(statSync(join(rootfs, 'tmp/newdir')).mode & 0o7777, 0o750);
    assert.equal(readlinkSync(join(rootfs, 'tmp/newdir/link')), '/etc/motd');
    const spec = containers.snapshotMounts(ID);
    if (spec.type === 'overlay') assert.ok(existsSync(join(spec.upperdir, 'tmp/newdir/file')), 'written to the upper dir');
    // The destination's last element is followed inside the container.
    r = await req('PUT', `/containers/web/archive?path=/etclink`, { body: await packTar([{ name: 'viaLink', data: 'x' }]) });
    assert.equal(r.status, 200, r.text);
    assert.ok(existsSync(join(rootfs, 'etc/viaLink')));
    r = await req('PUT', `/containers/web/archive?path=/data`, { body: await packTar([{ name: 'sub/put-in-volume', data: 'v' }]) });
    assert.equal(r.status, 200, r.text);
    assert.equal(readFileSync(join(volume, 'sub/put-in-volume'), 'utf8'), 'v');
    // Entries that cross into a mount from above land in its source too.
    r = await req('PUT', `/containers/web/archive?path=/`, { body: await packTar([{ name: 'data/from-root', data: 'r' }]) });
    assert.equal(r.status, 200, r.text);
    assert.ok(existsSync(join(volume, 'from-root')));
    assert.ok(!existsSync(join(rootfs, 'data/from-root')));
  });

  test('copyUIDGID gives the files to the container\'s user', async () => {
    containers.get('web').Config.User = 'nobody';
    try {
      const r = await req('PUT', `/containers/web/archive?path=/tmp&copyUIDGID=1`, { body: await packTar([{ name: 'owned', data: 'o', uid: 1, gid: 2 }]) });
      assert.equal(r.status, 200, r.text);
      const st = statSync(join(rootfs, 'tmp/owned'));
      assert.deepEqual([st.uid, st.gid], [65534, 65534]);
    } finally {
      delete containers.get('web').Config.User;
    }
  });

  test('refusals: not a directory, read-only volume, noOverwriteDirNonDir, missing destination', async () => {
    const one = await packTar([{ name: 'f', data: 'x' }]);
    let r = await req('PUT', `/containers/web/archive?path=/etc/motd`, { body: one });
    assert.equal(r.status, 400);
    assert.equal(r.json().message, 'extraction point is not a directory');
    r = await req('PUT', `/containers/web/archive?path=/ro`, { body: one });
    assert.equal(r.status, 403);
    assert.match(r.json().message, /read-only/);
    assert.ok(!existsSync(join(roVolume, 'f')));
    r = await req('PUT', `/containers/web/archive?path=/&noOverwriteDirNonDir=true`, { body: await packTar([{ name: 'etc', data: 'not a dir' }]) });
    assert.equal(r.status, 400);
    assert.match(r.json().message, /cannot overwrite directory "\/etc" with non-directory "etc"/);
    assert.ok(statSync(join(rootfs, 'etc')).isDirectory());
    r = await req('PUT', `/containers/web/archive?path=/nope`, { body: one });
    assert.equal(r.status, 404);
  });

  test('hostile archives: .. entries and symlinks out of the rootfs are refused and write nothing outside', async () => {
    const outside = join(dir, 'outside-target');
    // ../ climbing out of the destination.
    let r = await req('PUT', `/containers/web/archive?path=/tmp`, { body: rawTar([{ name: '../../../../../../../../..' + outside, data: 'pwned' }]) });
    assert.equal(r.status, 400, r.text);
    assert.ok(!existsSync(outside));
    // A symlink pointing out of the rootfs, then a file through it.
    r = await req('PUT', `/containers/web/archive?path=/tmp`, {
      body: rawTar([{ name: 'evil', type: 'symlink', linkname: hostSecret }, { name: 'evil/pwned', data: 'pwned' }]),
    });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json().message, /symbolic link/);
    assert.ok(!existsSync(join(hostSecret, 'pwned')));
    // A symlink already in the container, pointing at the host directory's path.
    r = await req('PUT', `/containers/web/archive?path=/`, { body: rawTar([{ name: 'hostlink/pwned2', data: 'pwned' }]) });
    assert.equal(r.status, 400, r.text);
    assert.ok(!existsSync(join(hostSecret, 'pwned2')));
    // As the destination: resolved inside the container, where that path does not exist.
    r = await req('PUT', `/containers/web/archive?path=/hostlink`, { body: rawTar([{ name: 'pwned3', data: 'pwned' }]) });
    assert.equal(r.status, 404, r.text);
    assert.ok(!existsSync(join(hostSecret, 'pwned3')));
    // A hard link to a host file.
    r = await req('PUT', `/containers/web/archive?path=/tmp`, { body: rawTar([{ name: 'hl', type: 'link', linkname: `../../../..${hostSecret}/secret` }]) });
    assert.equal(r.status, 400, r.text);
    assert.ok(!existsSync(join(rootfs, 'tmp/hl')));
    assert.deepEqual(readFileSync(join(hostSecret, 'secret'), 'utf8'), 'host only');
    assert.ok(lstatSync(join(rootfs, 'hostlink')).isSymbolicLink(), 'the container\'s own symlink is left alone');
  });
});

describe('export, changes, commit', () => {
  test('export: the whole rootfs without the mounts\' contents', async () => {
    const r = await req('GET', `/containers/web/export`);
    assert.equal(r.status, 200);
    const names = parseTar(r.body).map((e) => e.entry.name);
    assert.ok(names.includes('bin/busybox') && names.includes('tmp/newdir/file') && names.includes('data/'), names.slice(0, 10).join(' '));
    assert.ok(!names.includes('data/inside'), 'volumes are not exported');
    assert.ok(!names.some((n) => n.startsWith('./') || n.startsWith('/')));
  });

  test('changes: docker diff of what the PUTs wrote', async () => {
    const r = await req('GET', `/containers/web/changes`);
    assert.equal(r.status, 200);
    const list = r.json<Array<{ Path: string; Kind: number }>>();
    const map = new Map(list.map((c) => [c.Path, c.Kind]));
    assert.equal(map.get('/tmp'), 0);
    assert.equal(map.get('/tmp/newdir'), 1);
    assert.equal(map.get('/tmp/newdir/file'), 1);
    assert.equal(map.get('/etc/viaLink'), 1);
    assert.ok(!map.has('/data/sub'), 'mount contents are not changes');
  });

  test('commit: config merge, --change, author, comment, history, tag, and a snapshot ready to run', async () => {
    const before = images().get('bb:1');
    const r = await req('POST', `/commit?container=web&repo=committed&tag=v1&comment=${encodeURIComponent('my change')}&author=me&changes=${encodeURIComponent('ENV B=2')}&changes=${encodeURIComponent('EXPOSE 80')}`);
    assert.equal(r.status, 201, r.text);
    const id = r.json().Id as string;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    const inspect = (await req('GET', `/images/committed:v1/json`)).json();
    assert.equal(inspect.Id, id);
    assert.equal(inspect.Comment, 'my change');
    assert.equal(inspect.Author, 'me');
    assert.deepEqual(inspect.Config.Cmd, ['sh']);
    assert.deepEqual(inspect.Config.Env, ['PATH=/bin', 'A=1', 'B=2']);
    assert.deepEqual(inspect.Config.ExposedPorts, { '80/tcp': {} });
    assert.deepEqual(inspect.Config.Labels, { from: 'container' });
    assert.equal(inspect.RootFS.Layers.length, before.diffIds.length + 1);
    const config = JSON.parse((await images().content.readBuffer(id)).toString());
    assert.equal(config.container, ID);
    assert.deepEqual(config.container_config.Cmd, ['sh']);
    assert.deepEqual(Object.keys(config), [...Object.keys(config)].sort(), 'top-level keys sorted as moby writes them');
    const last = config.history.at(-1);
    assert.equal(last.created_by, 'sh');
    assert.equal(last.comment, 'my change');
    assert.equal(last.author, 'me');
    const rec = images().get(id);
    assert.equal(rec.parent, before.id);
    assert.ok(images().snapshots.has(rec.chainIds.at(-1)!), 'the new layer is unpacked already');
    // A container of the committed image sees the files.
    const c2 = await containers.create('beef'.padEnd(64, '1'), 'second', 'committed:v1');
    const root2 = containers.mountsAt.get(c2.Id)!;
    assert.equal(readFileSync(join(root2, 'tmp/newdir/file'), 'utf8'), 'put data');
    assert.ok(!existsSync(join(root2, 'data/inside')));
    // Nothing changed in it: an empty layer, as docker.
    const r2 = await req('POST', `/commit?container=second&repo=docker.io/library/again`);
    assert.equal(r2.status, 201, r2.text);
    const again = (await req('GET', `/images/again:latest/json`)).json();
    assert.equal(again.RootFS.Layers.length, rec.diffIds.length);
    const cfg2 = JSON.parse((await images().content.readBuffer(again.Id)).toString());
    assert.equal(cfg2.history.at(-1).empty_layer, true);
  });

  test('commit refusals: a bad change, a digest reference, an unknown container', async () => {
    let r = await req('POST', `/commit?container=web&changes=${encodeURIComponent('FROB x')}`);
    assert.equal(r.status, 400);
    r = await req('POST', `/commit?container=web&repo=${encodeURIComponent('x@sha256:' + 'a'.repeat(64))}`);
    assert.equal(r.status, 400);
    assert.equal(r.json().message, 'cannot create a tag for a digested reference');
    r = await req('POST', `/commit?container=nosuch`);
    assert.equal(r.status, 404);
  });
});
