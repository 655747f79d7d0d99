// Garbage collection: the GC lock's ordering, prune against a load that is still streaming (the
// load's blobs must survive), collection of what deleted images leave (snapshots top first,
// blobs, stale ingests), and old-style archives whose layers are symlinks.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, utimesSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadImages, readArchive, type ArchiveStores } from '../../src/image/archive.ts';
import { ContentStore } from '../../src/image/content-store.ts';
import { collectGarbage, diskUsage, GcLock, parseUntil, pruneImages } from '../../src/image/gc.ts';
import { ImageStore } from '../../src/image/image-store.ts';
import { Snapshotter } from '../../src/image/snapshots.ts';
import { MetadataDb } from '../../src/engine/db.ts';
import { rawTar, sha256, withTempDir } from '../helpers/tar.ts';

async function openStores(dir: string): Promise<ArchiveStores & { db: MetadataDb }> {
  const db = MetadataDb.open(join(dir, 'meta.db'));
  const images = ImageStore.open(db);
  return { db, images, content: new ContentStore(join(dir, 'content')), snapshots: await Snapshotter.open(join(dir, 'snaps')), lock: new GcLock() };
}

/** A docker-archive (old style) of images built from tar layers. */
function dockerArchive(images: Array<{ tags: string[]; layers: Buffer[]; created?: string; labels?: Record<string, string> }>): Buffer {
  const entries: Parameters<typeof rawTar>[0] = [];
  const manifest = [];
  for (const [i, img] of images.entries()) {
    const paths = img.layers.map((l, j) => {
      const p = `img${i}-l${j}/layer.tar`;
      entries.push({ name: p, data: l });
      return p;
    });
    const config = JSON.stringify({
      architecture: 'amd64', os: 'linux', created: img.created ?? '2024-01-01T00:00:00Z',
      config: { Labels: img.labels ?? {} }, rootfs: { type: 'layers', diff_ids: img.layers.map((l) => sha256(l)) },
    });
    entries.push({ name: `img${i}.json`, data: config });
    manifest.push({ Config: `img${i}.json`, RepoTags: img.tags, Layers: paths });
  }
  entries.push({ name: 'manifest.json', data: JSON.stringify(manifest) });
  return rawTar(entries);
}

const BASE = rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' }]);
const TOP_A = rawTar([{ name: 'a.txt', data: 'a'.repeat(5000) }]);
const TOP_B = rawTar([{ name: 'b.txt', data: 'b'.repeat(7000) }]);

describe('gc', () => {
  test('GcLock: readers share, a writer waits for them and goes before later readers', async () => {
    const lock = new GcLock();
    const order: string[] = [];
    let releaseReader!: () => void;
    const r1 = lock.shared(() => new Promise<void>((resolve) => { releaseReader = resolve; order.push('r1'); }));
    await sleep(1);
    const w = lock.exclusive(() => { order.push('w'); });
    const r2 = lock.shared(() => { order.push('r2'); });
    await sleep(5);
    assert.deepEqual(order, ['r1']);
    releaseReader();
    await Promise.all([r1, w, r2]);
    assert.deepEqual(order, ['r1', 'w', 'r2']);
    assert.deepEqual(lock.state, { readers: 0, writer: false, waiting: 0 });
  });

  test('prune waits for a load in progress; the loaded image and its blobs survive', async () => {
    await withTempDir(async (dir) => {
      const s = await openStores(dir);
      try {
        const tar = dockerArchive([{ tags: ['app:1'], layers: [BASE, TOP_A] }]);
        const body = new PassThrough();
        const loading = loadImages(s, body);
        const cut = 512 + Math.ceil(BASE.length / 512) * 512 + 512; // the first layer and the next header
        body.write(tar.subarray(0, cut));
        for (let i = 0; i < 100 && !(await s.content.has(sha256(BASE))); i++) await sleep(10);
        assert.ok(await s.content.has(sha256(BASE)), 'the first layer is in the store, referenced by nothing yet');
        // Without the lock this would delete that blob: no image names it yet.
        const pruning = pruneImages(s, { all: false });
        let pruned = false;
        void pruning.then(() => { pruned = true; });
        await sleep(20);
        assert.equal(pruned, false, 'prune must wait for the load');
        body.end(tar.subarray(cut));
        assert.deepEqual(await loading, ['Loaded image: app:1']);
        const report = await pruning;
        assert.deepEqual(report.ImagesDeleted, []);
        const [img] = s.images.list();
        assert.ok(img);
        for (const l of [BASE, TOP_A]) assert.ok(await s.content.has(sha256(l)));
        assert.ok(await s.content.has(img.id));
        assert.equal(s.snapshots.list().length, 2);
        // and -a then removes everything
        await pruneImages(s, { all: true });
        assert.deepEqual(s.images.list(), []);
        assert.deepEqual(await s.content.list(), []);
        assert.deepEqual(s.snapshots.list(), []);
      } finally {
        s.db.close();
      }
    });
  });

  test('a load whose upload breaks off fails, leaves nothing, and releases the lock', async () => {
    await withTempDir(async (dir) => {
      const s = await openStores(dir);
      try {
        const tar = dockerArchive([{ tags: ['app:1'], layers: [BASE, TOP_A] }]);
        const body = new PassThrough();
        const loading = loadImages(s, body);
        body.write(tar.subarray(0, 512 + Math.ceil(BASE.length / 512) * 512 + 700));
        await sleep(20);
        body.destroy(new Error('client went away'));
        await assert.rejects(loading, /client went away/);
        assert.deepEqual(await s.content.list(), []);
        assert.deepEqual(s.images.list(), []);
        const report = await Promise.race([pruneImages(s, { all: true }), sleep(2000).then(() => 'timeout' as const)]);
        assert.notEqual(report, 'timeout', 'the GC lock was released');
      } finally {
        s.db.close();
      }
    });
  });

  test('dangling prune and collection: shared layers stay, the rest goes top first; stale ingests', async () => {
    await withTempDir(async (dir) => {
      const s = await openStores(dir);
      try {
        await loadImages(s, Readable.from([dockerArchive([
          { tags: ['a:1'], layers: [BASE, TOP_A] },
          { tags: ['b:1'], layers: [BASE, TOP_B], labels: { keep: 'no' } },
        ])]));
        assert.equal(s.snapshots.list().length, 3);
        let du = await diskUsage(s);
        const aRow = du.images.find((i) => s.images.references(i.id)[0]?.familiar === 'a:1')!;
        assert.ok(aRow.sharedSize > 0 && aRow.sharedSize < aRow.size);
        assert.ok(du.layersSize > 0);

        // nothing dangling yet
        assert.deepEqual((await pruneImages(s, { all: false })).ImagesDeleted, []);
        // b loses its tag → dangling → pruned; a and the shared base stay
        const bId = s.images.byReference(ImageStore.normalize('b:1'))!;
        s.images.untag(ImageStore.normalize('b:1'));
        const report = await pruneImages(s, { all: false });
        assert.deepEqual(report.ImagesDeleted[0], { Deleted: bId });
        assert.ok(report.SpaceReclaimed > 7000);
        assert.equal(s.snapshots.list().length, 2);
        assert.ok(await s.content.has(sha256(TOP_A)));
        assert.ok(!(await s.content.has(sha256(TOP_B))));
        assert.ok(!(await s.content.has(bId)));

        // a stale ingest goes, a fresh one stays
        const ingest = join(dir, 'content', 'ingest');
        for (const [name, age] of [['a'.repeat(64), 2 * 86400], ['b'.repeat(64), 60]] as const) {
          mkdirSync(join(ingest, name), { recursive: true });
          writeFileSync(join(ingest, name, 'info.json'), JSON.stringify({ digest: `sha256:${name}`, size: 10, startedAt: new Date().toISOString() }));
          writeFileSync(join(ingest, name, 'data'), 'x');
          const t = Date.now() / 1000 - age;
          utimesSync(join(ingest, name, 'data'), t, t);
        }
        const c = await collectGarbage(s);
        assert.deepEqual(c.ingestsRemoved, ['a'.repeat(64)]);
        assert.deepEqual(readdirSync(ingest).filter((n) => !n.startsWith('tmp-')), ['b'.repeat(64)]);

        // label filter with -a
        assert.deepEqual((await pruneImages(s, { all: true, notLabels: ['keep'], labels: ['nope'] })).ImagesDeleted, []);
        du = await diskUsage(s);
        assert.equal(du.images.length, 1);
      } finally {
        s.db.close();
      }
    });
  });

  test('old-style archive whose layer is a symlink to another image\'s layer', async () => {
    await withTempDir(async (dir) => {
      const content = new ContentStore(join(dir, 'content'));
      const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(BASE)] } });
      const tar = rawTar([
        { name: 'one/layer.tar', data: BASE },
        { name: 'two/layer.tar', type: 'symlink', linkname: '../one/layer.tar' },
        { name: 'c.json', data: config },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['two/layer.tar'] }]) },
      ]);
      const read = await readArchive(Readable.from([tar]), content);
      assert.equal(read.images[0]!.layers[0]!.blob.digest, sha256(BASE));
      assert.equal(readFileSync(content.path(sha256(BASE))).length, BASE.length);
    });
  });

  test('until accepts timestamps, dates and durations', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseUntil('1700000000', now).getTime(), 1700000000_000);
    assert.equal(parseUntil('2024-01-01T00:00:00Z', now).toISOString(), '2024-01-01T00:00:00.000Z');
    assert.equal(parseUntil('1h30m', now).getTime(), now - 5_400_000);
    assert.throws(() => parseUntil('yesterday', now), /until/);
  });
});
