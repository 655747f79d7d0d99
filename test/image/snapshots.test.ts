// Snapshots, both drivers: layers keyed by chain ID, a 3-layer image mounted and seen merged
// (deleted files gone, opaque dir contents hidden), parent/child rules, crash leftovers,
// concurrent preparation, usage, and the overlay lowerdir page limit.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { chainId, chainIds, probeOverlay, SnapshotError, Snapshotter, type SnapshotDriver } from '../../src/image/snapshots.ts';
import { applyLayer } from '../../src/image/unpack/index.ts';
import { diffTrees, gzip, rawTar, sha256, tree, withTempDir, type RawEntry } from '../helpers/tar.ts';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Unpacks layers (tar bytes) one on top of the other; returns the chain IDs. */
async function unpackImage(snaps: Snapshotter, layers: Buffer[]): Promise<string[]> {
  const ids = chainIds(layers.map((l) => sha256(l)));
  for (let i = 0; i < layers.length; i++) {
    const target = await snaps.prepareLayer(ids[i]!, i ? ids[i - 1] : null);
    if (!target) continue;
    try {
      const r = await applyLayer(Readable.from([gzip(layers[i]!)]), { target: target.dir, mode: target.mode, lowers: target.lowers, expectedDiffId: sha256(layers[i]!) });
      await target.commit({ diffId: r.diffId, size: r.size, opaqueDirs: r.opaqueDirs });
    } catch (err) {
      await target.abort();
      throw err;
    }
  }
  return ids;
}

async function withMount<T>(snaps: Snapshotter, key: string, parent: string, fn: (dir: string) => Promise<T> | T): Promise<T> {
  await snaps.prepareActive(key, parent);
  const target = join(snaps.root, `mnt-${key}`);
  mkdirSync(target, { recursive: true });
  await snaps.mount(key, target);
  try {
    return await fn(target);
  } finally {
    await snaps.unmount(target);
    rmSync(target, { recursive: true, force: true });
  }
}

const L1 = rawTar([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
  { name: 'etc/removed', data: 'deleted by layer 2' },
  { name: 'opaque/', type: 'dir' },
  { name: 'opaque/hidden-a', data: 'hidden by layer 2' },
  { name: 'opaque/sub/', type: 'dir' },
  { name: 'opaque/sub/hidden-b', data: 'hidden by layer 2' },
  { name: 'bin/', type: 'dir' },
  { name: 'bin/tool', data: 'v1', mode: 0o755 },
  { name: 'gone/', type: 'dir' },
  { name: 'gone/file', data: 'deleted with its dir' },
]);
const L2 = rawTar([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/.wh.removed' },
  { name: 'opaque/', type: 'dir', mode: 0o700 },
  { name: 'opaque/.wh..wh..opq' },
  { name: 'opaque/visible', data: 'from layer 2' },
  { name: '.wh.gone' },
  { name: 'bin/', type: 'dir' },
  { name: 'bin/tool', data: 'v2', mode: 0o755 },
]);
const L3 = rawTar([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/new', data: 'layer 3' },
  { name: 'opaque/', type: 'dir', mode: 0o700 },
  { name: 'opaque/three', data: 'layer 3' },
]);

test('chain IDs follow the OCI image spec', () => {
  const d = [sha256('a'), sha256('b'), sha256('c')];
  const c2 = `sha256:${hex(`${d[0]} ${d[1]}`)}`;
  const c3 = `sha256:${hex(`${c2} ${d[2]}`)}`;
  assert.deepEqual(chainIds(d), [d[0], c2, c3]);
  assert.equal(chainId(d), c3);
  assert.equal(chainId([d[0]!]), d[0]);
  assert.throws(() => chainId(['sha256:nothex']), /invalid digest/);
});

test('overlay works in this data root (the tests below need it)', async () => {
  await withTempDir((dir) => {
    const r = probeOverlay(dir);
    assert.ok(r.ok, r.ok ? '' : r.reason);
  });
});

for (const driver of ['overlay', 'vfs'] as SnapshotDriver[]) {
  describe(`${driver} driver`, () => {
    test('three layers mounted: deletions and opaque dirs hide lower files; writes go to the container layer', async () => {
      await withTempDir(async (root) => {
        const snaps = await Snapshotter.open(root, { driver });
        assert.equal(snaps.driver, driver);
        const ids = await unpackImage(snaps, [L1, L2, L3]);
        assert.ok(snaps.has(ids[2]!));
        assert.equal(snaps.get(ids[1]!)?.parent, ids[0]);
        await withMount(snaps, 'ctr1', ids[2]!, (m) => {
          assert.equal(readFileSync(join(m, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
          assert.ok(!existsSync(join(m, 'etc/removed')), 'whiteout hides the lower file');
          assert.ok(!existsSync(join(m, 'gone')), 'whiteout hides a lower directory');
          assert.deepEqual(readdirSync(join(m, 'opaque')).sort(), ['three', 'visible'], 'opaque dir shows only layers 2 and 3');
          assert.equal(readFileSync(join(m, 'bin/tool'), 'utf8'), 'v2');
          assert.equal(readFileSync(join(m, 'etc/new'), 'utf8'), 'layer 3');
          writeFileSync(join(m, 'etc/written-by-container'), 'rw');
        });
        // The container's write landed in its own snapshot, not in the image's layers.
        await withMount(snaps, 'ctr2', ids[2]!, (m) => assert.ok(!existsSync(join(m, 'etc/written-by-container'))));
        assert.ok((await snaps.usage('ctr1')).inodes >= 2);
        assert.ok((await snaps.usage(ids[0]!)).size > 0);
        await snaps.remove('ctr1');
        await snaps.remove('ctr2');
      });
    });

    test('layers are shared by chain ID; removal refuses parents; reopening finds everything', async () => {
      await withTempDir(async (root) => {
        const snaps = await Snapshotter.open(root, { driver });
        const ids = await unpackImage(snaps, [L1, L2]);
        assert.equal(await snaps.prepareLayer(ids[0]!, null), null, 'an existing chain ID is not prepared again');
        // A second image sharing layer 1 only.
        const other = await unpackImage(snaps, [L1, L3]);
        assert.equal(other[0], ids[0]);
        assert.equal(snaps.list().filter((s) => s.kind === 'committed').length, 3);
        await assert.rejects(snaps.remove(ids[0]!), (e: unknown) => e instanceof SnapshotError && e.code === 'has-children' && /parent of 2/.test(e.message));
        await snaps.prepareActive('c', ids[1]!);
        await assert.rejects(snaps.remove(ids[1]!), (e: unknown) => e instanceof SnapshotError && e.code === 'has-children');
        await assert.rejects(snaps.prepareActive('c', ids[1]!), (e: unknown) => e instanceof SnapshotError && e.code === 'exists');
        await assert.rejects(snaps.prepareActive('d', sha256('no such layer')), (e: unknown) => e instanceof SnapshotError && e.code === 'not-found');

        const again = await Snapshotter.open(root);
        assert.equal(again.driver, driver, 'the driver is remembered');
        assert.deepEqual(again.list().map((s) => [s.name, s.parent]), snaps.list().map((s) => [s.name, s.parent]));
        await again.remove('c');
        await again.remove(ids[1]!);
        await again.remove(other[1]!);
        await again.remove(ids[0]!);
        assert.deepEqual(again.list(), []);
        assert.deepEqual(readdirSync(join(root, 'snapshots')), []);
        await assert.rejects(again.remove(ids[0]!), (e: unknown) => e instanceof SnapshotError && e.code === 'not-found');
      });
    });

    test('an unfinished preparation (kill -9 during unpack) and an interrupted removal are cleaned up on open', async () => {
      await withTempDir(async (root) => {
        const snaps = await Snapshotter.open(root, { driver });
        const [base] = await unpackImage(snaps, [L1]);
        const t = await snaps.prepareLayer(sha256('half'), base);
        assert.ok(t);
        writeFileSync(join(t.dir, 'partial'), 'x'); // then the process dies: no commit, no abort
        mkdirSync(join(root, 'snapshots', 'rm-99', 'fs'), { recursive: true });
        const reopened = await Snapshotter.open(root);
        assert.ok(!reopened.has(sha256('half')));
        assert.ok(reopened.has(base!));
        assert.deepEqual(readdirSync(join(root, 'snapshots')), [String(reopened.get(base!)!.id)]);
      });
    });

    test('concurrent preparations of one chain ID: the second waits and finds it done', async () => {
      await withTempDir(async (root) => {
        const snaps = await Snapshotter.open(root, { driver });
        const id = sha256(L1);
        const first = await snaps.prepareLayer(id, null);
        assert.ok(first);
        const second = snaps.prepareLayer(id, null);
        let settled = false;
        void second.then(() => { settled = true; });
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(settled, false, 'the second caller waits');
        await applyLayer(Readable.from([L1]), { target: first.dir, mode: first.mode });
        await first.commit();
        assert.equal(await second, null);
        // After an abort, the next caller gets a fresh target.
        const t = await snaps.prepareLayer(sha256('x'), id);
        const waiting = snaps.prepareLayer(sha256('x'), id);
        await t!.abort();
        const fresh = await waiting;
        assert.ok(fresh && fresh.id !== t!.id);
        assert.ok(!existsSync(t!.dir));
        await fresh.abort();
      });
    });
  });
}

test('the same image gives the same merged tree with either driver', async () => {
  await withTempDir(async (root) => {
    const trees = [];
    for (const driver of ['overlay', 'vfs'] as SnapshotDriver[]) {
      const snaps = await Snapshotter.open(join(root, driver), { driver });
      const ids = await unpackImage(snaps, [L1, L2, L3]);
      trees.push(await withMount(snaps, 'c', ids[2]!, (m) => tree(m, { mtimes: false })));
    }
    assert.deepEqual(diffTrees(trees[0]!, trees[1]!), []);
  });
});

test('overlay: 150 layers mount (lowerdir string beyond one page with absolute paths)', async () => {
  await withTempDir(async (root) => {
    const snaps = await Snapshotter.open(root, { driver: 'overlay' });
    const layers: Buffer[] = [];
    for (let i = 0; i < 150; i++) {
      const entries: RawEntry[] = [{ name: `f${i}`, data: String(i) }];
      if (i > 0) entries.push({ name: `.wh.f${i - 1}` });
      layers.push(rawTar(entries));
    }
    const ids = await unpackImage(snaps, layers);
    const spec = snaps.mounts((await snaps.prepareActive('big', ids[149]!), 'big'));
    assert.equal(spec.type, 'overlay');
    assert.ok(spec.type === 'overlay' && spec.options[0]!.length > 4096, 'absolute lowerdirs would not fit one page');
    await snaps.remove('big');
    await withMount(snaps, 'c', ids[149]!, (m) => {
      assert.deepEqual(readdirSync(m), ['f149']);
    });
    const mounted = spawnSync('grep', ['-c', root, '/proc/self/mountinfo'], { encoding: 'utf8' });
    assert.equal(mounted.stdout.trim(), '0', 'every mount is gone');
  });
});
