// Layer diffs of real writable snapshots (overlay mounts and the copying vfs driver): whiteouts,
// opaque directories, hard links, xattrs, determinism, and the round trip through the unpacker.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ContentStore } from '../../src/image/content-store.ts';
import { chainId } from '../../src/image/digest.ts';
import { changes, EMPTY_LAYER_DIFF_ID, layerTar, writeLayer } from '../../src/image/layer-diff.ts';
import { Snapshotter, type MountSpec } from '../../src/image/snapshots.ts';
import { applyLayer, TarReader, type TarEntry } from '../../src/image/unpack/index.ts';
import { diffTrees, packTar, setXattr, sha256, tempDir, tree } from '../helpers/tar.ts';

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

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}

const T0 = 1_600_000_000;

/** The base image layer both drivers start from. */
async function baseLayer(): Promise<Buffer> {
  const d = (name: string) => ({ name, type: 'directory' as const, mode: 0o755, mtime: new Date(T0 * 1000) });
  const f = (name: string, data: string, mode = 0o644) => ({ name, type: 'file' as const, mode, data, mtime: new Date(T0 * 1000) });
  return packTar([
    d('etc/'), f('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'), f('etc/keep', 'keep\n'), f('etc/gone', 'gone\n'),
    d('opq/'), f('opq/old1', 'old1'), f('opq/old2', 'old2'),
    d('deldir/'), f('deldir/x', 'x'), d('deldir/sub/'), f('deldir/sub/y', 'y'),
    d('untouched/'), f('untouched/z', 'z'),
    { name: 'lnk', type: 'symlink' as const, linkname: 'etc/passwd', mtime: new Date(T0 * 1000) },
  ]);
}

/** What a container does to its root: every kind of change. */
function mutate(root: string): void {
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/ash\n'); // modified
  unlinkSync(join(root, 'etc/gone')); // deleted file
  rmSync(join(root, 'deldir'), { recursive: true }); // deleted directory
  rmSync(join(root, 'opq'), { recursive: true }); // deleted and recreated: opaque
  mkdirSync(join(root, 'opq'));
  writeFileSync(join(root, 'opq/new'), 'new');
  mkdirSync(join(root, 'added/deep'), { recursive: true });
  writeFileSync(join(root, 'added/deep/file'), 'data'.repeat(1000));
  linkSync(join(root, 'added/deep/file'), join(root, 'added/hardlink'));
  symlinkSync('/etc/keep', join(root, 'added/sym'));
  writeFileSync(join(root, 'added/cap'), 'binary');
  chmodSync(join(root, 'added/cap'), 0o4755);
  setXattr(join(root, 'added/cap'), 'user.berth-test', Buffer.from([0, 1, 2, 0xff]));
  execFileSync('mknod', [join(root, 'added/null'), 'c', '1', '3']);
  execFileSync('mkfifo', [join(root, 'added/fifo')]);
  utimesSync(join(root, 'added/deep/file'), T0 + 500, T0 + 500);
}

for (const driver of ['overlay', 'vfs'] as const) {
  describe(`layer diff (${driver})`, () => {
    let dir: string;
    let snaps: Snapshotter;
    let store: ContentStore;
    let baseChain: string;
    let spec: MountSpec;
    let merged: string;
    const mounted: string[] = [];
    const parent = () => (driver === 'vfs' ? snaps.dirOf(baseChain) : undefined);

    before(async () => {
      dir = tempDir('berth-layerdiff-');
      snaps = await Snapshotter.open(join(dir, 'snapshots'), { driver });
      store = new ContentStore(join(dir, 'content'));
      const base = await baseLayer();
      baseChain = sha256(base);
      const target = (await snaps.prepareLayer(baseChain, null))!;
      const res = await applyLayer(Readable.from([base]), { target: target.dir, mode: target.mode, lowers: target.lowers });
      await target.commit(res);
      spec = await snaps.prepareActive('c1', baseChain);
      merged = join(dir, 'merged');
      mkdirSync(merged);
      await snaps.mount('c1', merged);
      mounted.push(merged);
      mutate(merged);
    });

    after(async () => {
      for (const m of mounted.reverse()) spawnSync('umount', [m]);
      rmSync(dir, { recursive: true, force: true });
    });

    test('the tar has whiteouts, an opaque marker, hard links, xattrs and devices, in sorted order', async () => {
      const entries = parseTar(await collect(layerTar(spec, { parent: parent() })));
      const names = entries.map((e) => e.entry.name);
      for (const want of ['etc/', 'etc/.wh.gone', 'etc/passwd', '.wh.deldir', 'opq/', 'opq/new', 'added/', 'added/deep/file', 'added/hardlink', 'added/sym', 'added/null', 'added/fifo']) {
        assert.ok(names.includes(want), `${want} in ${names.join(' ')}`);
      }
      assert.ok(!names.some((n) => n.startsWith('untouched')), 'unchanged directories stay out');
      assert.ok(!names.includes('etc/keep'), 'unchanged files stay out');
      assert.ok(!names.some((n) => n.startsWith('deldir/')), 'a deleted directory is one whiteout');
      // overlay: the recreated directory is opaque; vfs: its old entries are whited out one by one.
      if (driver === 'overlay') {
        assert.equal(names[names.indexOf('opq/') + 1], 'opq/.wh..wh..opq');
      } else {
        assert.ok(names.includes('opq/.wh.old1') && names.includes('opq/.wh.old2'), names.join(' '));
      }
      const byName = new Map(entries.map((e) => [e.entry.name, e]));
      const wh = byName.get('etc/.wh.gone')!.entry;
      assert.equal(wh.type, 'file');
      assert.equal(wh.size, 0);
      const first = byName.get('added/deep/file')!;
      assert.equal(first.entry.type, 'file');
      assert.equal(first.data.toString(), 'data'.repeat(1000));
      assert.equal(first.entry.mtime.sec, T0 + 500);
      const hl = byName.get('added/hardlink')!.entry;
      assert.equal(hl.type, 'link');
      assert.equal(hl.linkname, 'added/deep/file');
      assert.equal(byName.get('added/sym')!.entry.linkname, '/etc/keep');
      const cap = byName.get('added/cap')!.entry;
      assert.equal(cap.mode, 0o4755);
      assert.deepEqual(cap.xattrs?.get('user.berth-test'), Buffer.from([0, 1, 2, 0xff]));
      const nul = byName.get('added/null')!.entry;
      assert.deepEqual([nul.type, nul.devmajor, nul.devminor], ['char', 1, 3]);
      assert.equal(byName.get('added/fifo')!.entry.type, 'fifo');
      for (const e of entries) {
        assert.ok(![...(e.entry.xattrs?.keys() ?? [])].some((k) => k.startsWith('trusted.overlay.')), `overlay xattrs leak on ${e.entry.name}`);
      }
      // Depth-first, bytewise-sorted names within each directory.
      // overlay: a whiteout stands where the deleted name was (moby's order); vfs: by its own name.
      const comps = names.map((n) => n.replace(/\/$/, '')).map((n) => (driver === 'overlay' ? n.replace(/(^|\/)\.wh\.(?!\.wh\.)/, '$1') : n));
      const sorted = [...comps].sort((a, b) => {
        const pa = a.split('/'); const pb = b.split('/');
        for (let i = 0; i < Math.min(pa.length, pb.length); i++) if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
        return pa.length - pb.length;
      });
      if (driver === 'vfs') assert.deepEqual(comps, sorted);
      else assert.deepEqual(comps.filter((n) => !n.endsWith('.wh..wh..opq')), sorted.filter((n) => !n.endsWith('.wh..wh..opq')));
    });

    test('written to the content store: gzip blob, diff ID of the tar, the same digest every time', async () => {
      const a = await writeLayer(store, spec, { parent: parent() });
      const b = await writeLayer(store, spec, { parent: parent() });
      assert.equal(a.digest, b.digest);
      assert.equal(a.diffId, b.diffId);
      const blob = await store.readBuffer(a.digest);
      assert.equal(blob.length, a.size);
      assert.equal(sha256(blob), a.digest);
      const tar = gunzipSync(blob);
      assert.equal(sha256(tar), a.diffId);
      assert.equal(tar.length, a.uncompressedSize);
      assert.equal(a.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
      // tee: a second consumer gets the same uncompressed bytes in the same pass.
      const teed = await writeLayer(store, spec, { parent: parent(), tee: (t) => collect(t) });
      assert.equal(teed.digest, a.digest);
      assert.ok((teed.teeResult as Buffer).equals(tar));
      // A failing tee fails the write.
      await assert.rejects(writeLayer(store, spec, { parent: parent(), tee: async () => { throw new Error('tee broke'); } }), /tee broke/);
      // SOURCE_DATE_EPOCH clamps every mtime (and changes the digest).
      const c = await writeLayer(store, spec, { parent: parent(), sourceDateEpoch: T0 });
      assert.notEqual(c.diffId, a.diffId);
      for (const e of parseTar(gunzipSync(await store.readBuffer(c.digest)))) assert.ok(e.entry.mtime.sec <= T0, e.entry.name);
    });

    test('round trip: the layer unpacked on the base gives the container\'s view', async () => {
      const layer = await writeLayer(store, spec, { parent: parent() });
      const chain = chainId([baseChain, layer.diffId]);
      const target = (await snaps.prepareLayer(chain, baseChain))!;
      const res = await applyLayer(store.createReadStream(layer.digest), { target: target.dir, mode: target.mode, lowers: target.lowers, expectedDiffId: layer.diffId });
      await target.commit(res);
      await snaps.prepareActive('c2', chain);
      const again = join(dir, 'again');
      mkdirSync(again);
      await snaps.mount('c2', again);
      mounted.push(again);
      const diffs = diffTrees(tree(merged, { xattrs: true, mtimes: false }), tree(again, { xattrs: true, mtimes: false }), (rel) => rel === '.');
      assert.deepEqual(diffs, []);
    });

    test('changes: docker diff\'s kinds', async () => {
      const list = await changes(spec, { parent: parent() });
      const map = new Map(list.map((c) => [c.Path, c.Kind]));
      assert.equal(map.get('/etc'), 0);
      assert.equal(map.get('/etc/passwd'), 0);
      assert.equal(map.get('/etc/gone'), 2);
      assert.equal(map.get('/deldir'), 2);
      assert.equal(map.get('/added'), 1);
      assert.equal(map.get('/added/deep/file'), 1);
      assert.equal(map.get('/added/hardlink'), 1);
      assert.equal(map.get('/opq/new'), 1);
      assert.ok(!map.has('/untouched') && !map.has('/etc/keep') && !map.has('/deldir/x'), JSON.stringify(list));
      // Deleted and recreated: overlay reports the directory deleted (moby's overlay rule), vfs modified.
      assert.equal(map.get('/opq'), driver === 'overlay' ? 2 : 0);
      assert.equal(new Set(list.map((c) => c.Path)).size, list.length, 'no path twice');
    });

    test('excluded engine files, and directories there only for them, are not changes', async () => {
      await snaps.prepareActive('engine', baseChain);
      const target = join(dir, 'engine');
      mkdirSync(target);
      await snaps.mount('engine', target);
      mounted.push(target);
      writeFileSync(join(target, 'etc/hosts'), '');
      writeFileSync(join(target, 'etc/hostname'), '');
      mkdirSync(join(target, 'newempty'));
      const spec2 = snaps.mounts('engine');
      const exclude = ['etc/hosts', '/etc/hostname'];
      assert.deepEqual(await changes(spec2, { parent: parent(), exclude }), [{ Path: '/newempty', Kind: 1 }]);
      assert.deepEqual(parseTar(await collect(layerTar(spec2, { parent: parent(), exclude }))).map((e) => e.entry.name), ['newempty/']);
      // Without the exclusion they are the container's own files.
      assert.ok((await changes(spec2, { parent: parent() })).some((c) => c.Path === '/etc/hosts'));
    });

    test('an unchanged container has the empty layer', async () => {
      await snaps.prepareActive('fresh', baseChain);
      const spec2 = snaps.mounts('fresh');
      const w = await writeLayer(store, spec2, { parent: parent() });
      assert.equal(w.diffId, EMPTY_LAYER_DIFF_ID);
      assert.deepEqual(await changes(spec2, { parent: parent() }), []);
    });
  });
}
