// Archive formats without the daemon: save (docker-archive + OCI layout in one tar, streamed) read
// back by skopeo and by readArchive; archives written by skopeo (old-style docker-archive) and
// plain OCI layout tars; hostile archives refused with nothing left in the store; import of a
// rootfs tarball; --change parsing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, test } from 'node:test';
import {
  applyChanges, ArchiveError, importRootfs, readArchive, unpackLayers, writeArchive, type ArchiveImage,
} from '../../src/image/archive.ts';
import { ContentStore } from '../../src/image/content-store.ts';
import { chainId } from '../../src/image/digest.ts';
import { parseDockerReference } from '../../src/image/reference.ts';
import { Snapshotter } from '../../src/image/snapshots.ts';
import { buildBusyboxLayout, buildMultiLayerLayout, type Layout } from '../helpers/images.ts';
import { gzip, rawTar, sha256, withTempDir } from '../helpers/tar.ts';

/** Copies an OCI layout's blobs into a content store and describes its image for writeArchive. */
async function storeLayout(store: ContentStore, layout: Layout, names: string[]): Promise<ArchiveImage> {
  const img = layout.images[0]!;
  const blobs = join(layout.dir, 'blobs', 'sha256');
  for (const f of readdirSync(blobs)) await store.writeBuffer(readFileSync(join(blobs, f)), `sha256:${f}`);
  return {
    id: img.configDigest,
    config: img.configBytes,
    layers: img.layers.map((l) => ({ diffId: l.diffId, blob: { mediaType: l.mediaType, digest: l.digest, size: l.size } })),
    refs: names.map(parseDockerReference),
    manifest: { digest: img.manifestDigest, bytes: img.manifestBytes },
  };
}

async function saveTo(store: ContentStore, images: ArchiveImage[], file: string, format: 'docker' | 'oci' = 'docker'): Promise<void> {
  const out = createWriteStream(file);
  await writeArchive(store, images, out, { format });
  out.end();
  await finished(out);
}

function tarList(file: string): string[] {
  const r = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

function skopeo(args: string[]): string {
  const r = spawnSync('skopeo', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function expectRefused(store: ContentStore, tar: Buffer, code: ArchiveError['code'] | RegExp): Promise<void> {
  const before = (await store.list()).map((b) => b.digest).sort();
  await assert.rejects(readArchive(Readable.from([tar]), store), (err: Error) => {
    if (code instanceof RegExp) assert.match(err.message, code);
    else assert.equal((err as ArchiveError).code, code, err.message);
    return true;
  });
  assert.deepEqual((await store.list()).map((b) => b.digest).sort(), before, 'a refused archive leaves no blobs behind');
}

describe('archive', () => {
  test('save: docker-archive + OCI layout, uncompressed layers; skopeo and readArchive read it back', async () => {
    await withTempDir(async (dir) => {
      const store = new ContentStore(join(dir, 'store'));
      const bb = buildBusyboxLayout(join(dir, 'bb'));
      const ml = buildMultiLayerLayout(join(dir, 'ml'));
      const a = await storeLayout(store, bb, ['busybox:latest', 'busybox:v1']);
      const b = await storeLayout(store, ml, ['localhost:5000/multi:2']);
      const file = join(dir, 'out.tar');
      await saveTo(store, [a, b], file);
      const names = tarList(file);
      for (const n of ['index.json', 'manifest.json', 'oci-layout', 'repositories', `blobs/sha256/${a.id.slice(7)}`]) assert.ok(names.includes(n), n);
      // the shared busybox layer is written once
      const bbLayer = `blobs/sha256/${bb.images[0]!.layers[0]!.diffId.slice(7)}`;
      assert.equal(names.filter((n) => n === bbLayer).length, 1);

      const x = join(dir, 'x');
      mkdirSync(x);
      spawnSync('tar', ['-C', x, '-xf', file]);
      const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
      assert.deepEqual(manifest[0].RepoTags, ['busybox:latest', 'busybox:v1']);
      assert.deepEqual(manifest[1].RepoTags, ['localhost:5000/multi:2']);
      assert.equal(manifest[1].Layers.length, 3);
      const repos = JSON.parse(readFileSync(join(x, 'repositories'), 'utf8'));
      assert.equal(repos.busybox.latest, bb.images[0]!.layers[0]!.diffId.slice(7));
      const index = JSON.parse(readFileSync(join(x, 'index.json'), 'utf8'));
      assert.equal(index.manifests[0].annotations['io.containerd.image.name'], 'docker.io/library/busybox:latest');
      assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
      // every layer file is an uncompressed tar whose digest is its diff ID
      for (const l of ml.images[0]!.layers) assert.equal(sha256(readFileSync(join(x, 'blobs', 'sha256', l.diffId.slice(7)))), l.diffId);

      // independent readers: skopeo as docker-archive and as OCI layout
      const inspected = JSON.parse(skopeo(['inspect', '--config', `docker-archive:${file}:localhost:5000/multi:2`]));
      assert.deepEqual(inspected.rootfs.diff_ids, ml.images[0]!.config.rootfs.diff_ids);
      const raw = JSON.parse(skopeo(['inspect', '--raw', `oci:${x}:latest`]));
      assert.equal(raw.config.digest, a.id);

      // and back in
      const store2 = new ContentStore(join(dir, 'store2'));
      const read = await readArchive(createReadStream(file), store2);
      assert.equal(read.format, 'docker-archive');
      assert.deepEqual(read.images.map((i) => i.id), [a.id, b.id]);
      assert.deepEqual(read.images[0]!.refs.map((r) => r.tag), ['latest', 'v1']);
      // the same archive again: every blob is already there (skipped, nothing new added)
      const again = await readArchive(createReadStream(file), store2);
      assert.deepEqual(again.images.map((i) => i.id), [a.id, b.id]);
      assert.equal(again.added.size, 0);
      const snaps = await Snapshotter.open(join(dir, 'snaps'));
      for (const img of read.images) await unpackLayers(store2, snaps, img.layers);
      const top = chainId(ml.images[0]!.config.rootfs.diff_ids);
      assert.ok(snaps.has(top));
    });
  });

  test('save --format oci keeps the stored manifests and compressed blobs', async () => {
    await withTempDir(async (dir) => {
      const store = new ContentStore(join(dir, 'store'));
      const bb = buildBusyboxLayout(join(dir, 'bb'));
      const a = await storeLayout(store, bb, ['busybox:latest']);
      const file = join(dir, 'oci.tar');
      await saveTo(store, [a], file, 'oci');
      const names = tarList(file);
      assert.ok(!names.includes('manifest.json'));
      assert.ok(names.includes(`blobs/sha256/${bb.images[0]!.manifestDigest.slice(7)}`));
      const read = await readArchive(createReadStream(file), new ContentStore(join(dir, 's2')));
      assert.equal(read.format, 'oci-layout');
      assert.equal(read.images[0]!.manifest.digest, bb.images[0]!.manifestDigest);
      assert.equal(read.images[0]!.layers[0]!.blob.digest, bb.images[0]!.layers[0]!.digest);
    });
  });

  test('load: skopeo docker-archive (old style) and an OCI layout tar', async () => {
    await withTempDir(async (dir) => {
      const ml = buildMultiLayerLayout(join(dir, 'ml'), { tag: 'v2' });
      const da = join(dir, 'skopeo.tar');
      skopeo(['copy', '-q', `oci:${ml.dir}:v2`, `docker-archive:${da}:example.com/team/multi:v2`]);
      const store = new ContentStore(join(dir, 'store'));
      const read = await readArchive(createReadStream(da), store);
      assert.equal(read.images.length, 1);
      assert.equal(read.images[0]!.id, ml.images[0]!.configDigest);
      assert.equal(read.images[0]!.refs.map((r) => `${r.domain}/${r.path}:${r.tag}`)[0], 'example.com/team/multi:v2');
      const snaps = await Snapshotter.open(join(dir, 'snaps'));
      await unpackLayers(store, snaps, read.images[0]!.layers);
      assert.ok(snaps.has(chainId(ml.images[0]!.config.rootfs.diff_ids)));

      // an OCI layout tar whose ref.name is a bare tag loads untagged; io.containerd.image.name names it
      const ot = join(dir, 'layout.tar');
      spawnSync('tar', ['-C', ml.dir, '--exclude=.rootfs', '-cf', ot, '.']);
      const read2 = await readArchive(createReadStream(ot), new ContentStore(join(dir, 'store2')));
      assert.equal(read2.format, 'oci-layout');
      assert.equal(read2.images[0]!.id, ml.images[0]!.configDigest);
      assert.deepEqual(read2.images[0]!.refs, []);
      const idx = JSON.parse(readFileSync(join(ml.dir, 'index.json'), 'utf8'));
      idx.manifests[0].annotations['io.containerd.image.name'] = 'docker.io/library/multi:v2';
      writeFileSync(join(ml.dir, 'index.json'), JSON.stringify(idx));
      spawnSync('tar', ['-C', ml.dir, '--exclude=.rootfs', '-cf', ot, '.']);
      const read3 = await readArchive(createReadStream(ot), new ContentStore(join(dir, 'store3')));
      assert.equal(read3.images[0]!.refs[0]!.path, 'library/multi');
    });
  });

  test('hostile archives are refused and leave nothing behind', async () => {
    await withTempDir(async (dir) => {
      const store = new ContentStore(join(dir, 'store'));
      const layer = rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hosts', data: 'x' }]);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
      const manifest = (layers: string[]) => JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:latest'], Layers: layers }]);
      await expectRefused(store, rawTar([{ name: '../escape', data: 'x' }]), 'unsafe');
      await expectRefused(store, rawTar([{ name: '/abs/path', data: 'x' }]), 'unsafe');
      await expectRefused(store, rawTar([{ name: 'l/layer.tar', type: 'symlink', linkname: '../../etc/passwd' }]), 'unsafe');
      await expectRefused(store, rawTar([{ name: 'dev', type: 'char', devmajor: 1, devminor: 3 }]), 'unsafe');
      // a blob whose content is not its name
      await expectRefused(store, rawTar([{ name: `blobs/sha256/${sha256('other').slice(7)}`, data: 'not other' }]), 'digest');
      // a layer that is not the diff ID the config names (the layer itself is stored first, then removed)
      const wrong = rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hosts', data: 'y' }]);
      await expectRefused(store, rawTar([
        { name: 'l/layer.tar', data: wrong }, { name: 'c.json', data: config }, { name: 'manifest.json', data: manifest(['l/layer.tar']) },
      ]), 'digest');
      // the same, gzip-compressed: caught while unpacking
      const read = await readArchive(Readable.from([rawTar([
        { name: 'l/layer.tar', data: gzip(wrong) }, { name: 'c.json', data: config }, { name: 'manifest.json', data: manifest(['l/layer.tar']) },
      ])]), store);
      const snaps = await Snapshotter.open(join(dir, 'snaps'));
      await assert.rejects(unpackLayers(store, snaps, read.images[0]!.layers), (err: Error) => (err as ArchiveError).code === 'digest');
      assert.equal(snaps.list().length, 0);
      // missing layer, missing manifest, not a tar
      await expectRefused(store, rawTar([{ name: 'c.json', data: config }, { name: 'manifest.json', data: manifest(['nope.tar']) }]), 'missing');
      await expectRefused(store, rawTar([{ name: 'hello', data: 'x' }]), 'format');
      await expectRefused(store, Buffer.alloc(4096, 0x41), /./);
    });
  });

  test('import: a gzip rootfs becomes one uncompressed layer with the changes applied', async () => {
    await withTempDir(async (dir) => {
      const store = new ContentStore(join(dir, 'store'));
      const tar = rawTar([{ name: 'bin/', type: 'dir' }, { name: 'bin/sh', data: '#!', mode: 0o755 }]);
      const img = await importRootfs(Readable.from([gzip(tar)]), store, { source: '-', changes: ['CMD ["sh"]', 'ENV A=1 B="two words"', 'EXPOSE 80 53/udp', 'WORKDIR /app'] });
      assert.equal(img.layer.diffId, sha256(tar));
      assert.equal(img.config.rootfs.diff_ids[0], sha256(tar));
      assert.deepEqual(img.config.config?.Cmd, ['sh']);
      assert.deepEqual(img.config.config?.Env, ['A=1', 'B=two words']);
      assert.deepEqual(Object.keys(img.config.config?.ExposedPorts ?? {}), ['80/tcp', '53/udp']);
      assert.equal(img.config.history?.[0]?.comment, 'Imported from -');
      assert.equal(sha256(await store.readBuffer(img.id)), img.id);
      assert.ok(existsSync(store.path(img.manifest.digest)));
    });
  });

  test('import: a source that fails half-way (client gone) fails the import instead of hanging', async () => {
    await withTempDir(async (dir) => {
      const store = new ContentStore(join(dir, 'store'));
      const data = gzip(rawTar([{ name: 'big', data: Buffer.alloc(1 << 20, 7) }]));
      async function* broken(): AsyncGenerator<Buffer> {
        yield data.subarray(0, 1000);
        throw new Error('aborted');
      }
      await assert.rejects(importRootfs(broken(), store, { source: '-' }), /aborted/);
      assert.deepEqual(await store.list(), []);
    });
  });

  test('--change instructions', () => {
    const c = applyChanges({ Cmd: ['old'], WorkingDir: '/a' }, [
      'ENTRYPOINT /bin/run --flag', 'LABEL a=b "c d"=e', 'USER 1000:1000', 'WORKDIR b', 'VOLUME ["/data", "/logs"]', 'STOPSIGNAL SIGINT', 'ENV K some value',
    ]);
    assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', '/bin/run --flag']);
    assert.equal(c.Cmd, null);
    assert.deepEqual(c.Labels, { a: 'b', 'c d': 'e' });
    assert.equal(c.User, '1000:1000');
    assert.equal(c.WorkingDir, '/a/b');
    assert.deepEqual(Object.keys(c.Volumes ?? {}), ['/data', '/logs']);
    assert.equal(c.StopSignal, 'SIGINT');
    assert.deepEqual(c.Env, ['K=some value']);
    assert.throws(() => applyChanges({}, ['RUN echo hi']), /RUN is not a valid change command/);
    assert.throws(() => applyChanges({}, ['EXPOSE nope']), /invalid port/);
  });
});
