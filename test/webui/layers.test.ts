// The layer explorer's logic: reading `docker save` archives (built here with GNU tar, the real
// thing, in both the OCI and docker's legacy layouts) and the per-layer added/changed/deleted diff.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  changeTree, diffLayers, layerHistory, normalizePath, readableCreatedBy, SaveArchiveReader, type FileHeader,
} from '../../src/webui/lib/layers.ts';
import { writeTar } from '../../src/webui/lib/tar.ts';

const f = (path: string, size = 0): FileHeader => ({ path, type: 'file', size });
const d = (path: string): FileHeader => ({ path, type: 'dir', size: 0 });

function byPath(changes: Array<{ path: string; kind: string }>): Record<string, string> {
  return Object.fromEntries(changes.map((c) => [c.path, c.kind]));
}

test('normalizePath strips ./, leading and trailing slashes', () => {
  assert.equal(normalizePath('./etc/'), 'etc');
  assert.equal(normalizePath('/usr//bin/sh'), 'usr/bin/sh');
  assert.equal(normalizePath('./'), '');
  assert.equal(normalizePath('.'), '');
});

test('diffLayers: added, changed, whiteout and opaque deletions with sizes', () => {
  const base = [d('etc'), f('etc/motd', 6), d('bin'), f('bin/busybox', 1000), { path: 'bin/sh', type: 'symlink' as const, size: 0, link: 'busybox' }];
  const l1 = [d('app'), f('app/a.txt', 4), d('app/data'), f('app/data/b.txt', 4), d('app/data/sub'), f('app/data/sub/z', 7), d('etc'), f('etc/motd', 14)];
  const l2 = [d('app'), f('app/.wh.a.txt'), f('app/c.txt', 4), d('app/data'), f('app/data/.wh..wh..opq'), f('app/data/d.txt', 6), f('bin/.wh.busybox')];
  const [r0, r1, r2] = diffLayers([base, l1, l2]);

  assert.deepEqual(byPath(r0.changes), { bin: 'added', 'bin/busybox': 'added', 'bin/sh': 'added', etc: 'added', 'etc/motd': 'added' });
  assert.deepEqual(r0.added, { count: 5, bytes: 1006 });
  assert.equal(r0.changes.find((c) => c.path === 'bin/sh')?.link, 'busybox');

  assert.deepEqual(byPath(r1.changes), {
    app: 'added', 'app/a.txt': 'added', 'app/data': 'added', 'app/data/b.txt': 'added', 'app/data/sub': 'added', 'app/data/sub/z': 'added',
    etc: 'changed', 'etc/motd': 'changed',
  });
  const motd = r1.changes.find((c) => c.path === 'etc/motd');
  assert.equal(motd?.size, 14);
  assert.equal(motd?.prevSize, 6);
  // The directory re-listed only because a file in it changed is not counted as a change.
  assert.equal(r1.changes.find((c) => c.path === 'etc')?.meta, true);
  assert.deepEqual(r1.changed, { count: 1, bytes: 14 });
  assert.deepEqual(r1.added, { count: 6, bytes: 15 });
  assert.equal(r1.size, 29);

  assert.deepEqual(byPath(r2.changes), {
    app: 'changed', 'app/a.txt': 'deleted', 'app/c.txt': 'added', 'app/data': 'changed',
    'app/data/b.txt': 'deleted', 'app/data/sub': 'deleted', 'app/data/d.txt': 'added', 'bin/busybox': 'deleted',
  });
  const sub = r2.changes.find((c) => c.path === 'app/data/sub');
  assert.equal(sub?.opaque, true);
  assert.equal(sub?.removed, 2, 'the hidden directory and the file under it');
  assert.equal(sub?.size, 7);
  assert.equal(r2.changes.find((c) => c.path === 'app/a.txt')?.size, 4);
  assert.equal(r2.changes.find((c) => c.path === 'app/a.txt')?.opaque, undefined);
  assert.deepEqual(r2.deleted, { count: 4, bytes: 4 + 4 + 7 + 1000 });
  assert.deepEqual(r2.added, { count: 2, bytes: 10 });
});

test('diffLayers: a whiteout of a directory removes its subtree; a path re-added later counts as added', () => {
  const [, r1, r2] = diffLayers([
    [d('opt'), d('opt/x'), f('opt/x/1', 10), f('opt/x/2', 20), f('keep', 1)],
    [f('opt/.wh.x')],
    [d('opt/x'), f('opt/x/1', 3)],
  ]);
  assert.deepEqual(r1.changes, [{ path: 'opt/x', kind: 'deleted', type: 'dir', size: 30, removed: 3 }]);
  assert.deepEqual(byPath(r2.changes), { 'opt/x': 'added', 'opt/x/1': 'added' });
});

test('diffLayers: an opaque directory keeps what the layer brings back as changed', () => {
  const [, r1] = diffLayers([
    [d('a'), f('a/same', 5), d('a/k'), f('a/k/deep', 9)],
    [d('a'), f('a/.wh..wh..opq'), f('a/same', 6), d('a/k')],
  ]);
  assert.deepEqual(byPath(r1.changes), { a: 'changed', 'a/same': 'changed', 'a/k': 'changed', 'a/k/deep': 'deleted' });
  assert.equal(r1.changes.find((c) => c.path === 'a/k/deep')?.opaque, true);
});

test('changeTree aggregates counts and bytes per directory, sorted by name', () => {
  const [r] = diffLayers([[d('b'), f('b/y', 2), f('b/x', 3), f('a', 1)]]);
  const t = changeTree(r.changes);
  assert.deepEqual(t.children.map((c) => c.name), ['a', 'b']);
  assert.equal(t.count, 4);
  assert.equal(t.bytes, 6);
  const b = t.children[1];
  assert.deepEqual(b.children.map((c) => c.path), ['b/x', 'b/y']);
  assert.equal(b.bytes, 5);
  assert.equal(b.change?.kind, 'added');
});

test('readableCreatedBy and layerHistory', () => {
  assert.equal(readableCreatedBy('/bin/sh -c #(nop)  CMD ["sh"]'), 'CMD ["sh"]');
  assert.equal(readableCreatedBy('/bin/sh -c #(nop) WORKDIR /app'), 'WORKDIR /app');
  assert.equal(readableCreatedBy('/bin/sh -c echo hi > /x'), 'RUN echo hi > /x');
  assert.equal(readableCreatedBy('RUN /bin/sh -c apk add curl # buildkit'), 'RUN /bin/sh -c apk add curl');
  assert.equal(readableCreatedBy(undefined), '');
  const h = [{ comment: 'Imported' }, { created_by: 'ENV', empty_layer: true }, { created_by: 'RUN x' }];
  assert.deepEqual(layerHistory(h, 2), [{ comment: 'Imported' }, { created_by: 'RUN x' }]);
  assert.deepEqual(layerHistory(h, 3), [undefined, undefined, undefined], 'counts that disagree pair nothing');
});

// --- archives built with GNU tar ---

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'berth-layers-test-'));
}

function gnuTar(dir: string, out: string, names = ['.']): void {
  execFileSync('tar', ['--format=gnu', '-C', dir, '-cf', out, ...names]);
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function feed(reader: SaveArchiveReader, data: Buffer, chunk: number): void {
  for (let i = 0; i < data.length; i += chunk) reader.push(new Uint8Array(data.subarray(i, i + chunk)));
}

/** An OCI-layout `docker save` of two layers, as Berth writes it (blobs first, manifest.json last). */
function ociArchive(root: string): { archive: Buffer; layerDigests: string[] } {
  const l1 = join(root, 'l1');
  mkdirSync(join(l1, 'etc'), { recursive: true });
  writeFileSync(join(l1, 'etc/motd'), 'hello\n');
  mkdirSync(join(l1, 'bin'));
  writeFileSync(join(l1, 'bin/busybox'), Buffer.alloc(3000, 1));
  symlinkSync('busybox', join(l1, 'bin/sh'));
  const long = `deep/${'n'.repeat(90)}/${'m'.repeat(90)}`;
  mkdirSync(join(l1, long), { recursive: true });
  writeFileSync(join(l1, long, 'file-with-a-long-path'), 'x');
  const l2 = join(root, 'l2');
  mkdirSync(join(l2, 'etc'), { recursive: true });
  writeFileSync(join(l2, 'etc/motd'), 'hello, changed\n');
  writeFileSync(join(l2, 'etc/.wh.motd-old'), '');
  mkdirSync(join(l2, 'bin'));
  writeFileSync(join(l2, 'bin/.wh.sh'), '');
  const out = join(root, 'out');
  mkdirSync(join(out, 'blobs/sha256'), { recursive: true });
  const digests: string[] = [];
  for (const l of [l1, l2]) {
    const t = join(root, `${digests.length}.tar`);
    gnuTar(l, t);
    const b = readFileSync(t);
    digests.push(sha(b));
    writeFileSync(join(out, 'blobs/sha256', sha(b)), b);
  }
  const config = Buffer.from(JSON.stringify({
    history: [{ created_by: 'ADD rootfs' }, { created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true }, { created_by: '/bin/sh -c echo changed > /etc/motd' }],
    rootfs: { type: 'layers', diff_ids: digests.map((x) => `sha256:${x}`) },
  }));
  writeFileSync(join(out, 'blobs/sha256', sha(config)), config);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${sha(config)}`, RepoTags: ['t:1'], Layers: digests.map((x) => `blobs/sha256/${x}`) }]));
  writeFileSync(join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const archive = join(root, 'save.tar');
  gnuTar(out, archive, ['blobs', 'oci-layout', 'manifest.json']);
  return { archive: readFileSync(archive), layerDigests: digests };
}

test('SaveArchiveReader reads an OCI-layout save streamed in odd-sized chunks', () => {
  const root = tmp();
  try {
    const { archive, layerDigests } = ociArchive(root);
    for (const chunk of [1, 511, 4096, archive.length]) {
      if (chunk === 1 && archive.length > 200_000) continue;
      const r = new SaveArchiveReader();
      feed(r, archive, chunk);
      const saved = r.finish();
      assert.equal(saved.bytes, archive.length);
      assert.deepEqual(saved.layers.map((l) => l.name), layerDigests.map((x) => `blobs/sha256/${x}`));
      assert.deepEqual(saved.layers.map((l) => l.error), [undefined, undefined]);
      const paths = saved.layers[0].entries.map((e) => e.path).sort();
      assert.ok(paths.includes('bin/busybox'));
      assert.ok(paths.some((p) => p.endsWith('/file-with-a-long-path') && p.length > 200), 'GNU long names are read');
      assert.equal(saved.layers[0].entries.find((e) => e.path === 'bin/sh')?.link, 'busybox');
      assert.equal(saved.layers[0].entries.find((e) => e.path === 'bin/busybox')?.size, 3000);
      assert.equal(saved.config?.history?.length, 3);

      const [r0, r1] = diffLayers(saved.layers.map((l) => l.entries));
      assert.ok(r0.added.count >= 7);
      assert.equal(r0.added.bytes, 3000 + 6 + 1);
      assert.deepEqual(r1.changed, { count: 1, bytes: 15 });
      assert.equal(r1.changes.find((c) => c.path === 'bin/sh')?.kind, 'deleted');
      assert.equal(r1.changes.find((c) => c.path === 'etc/motd-old')?.removed, 0, 'a whiteout of nothing removes nothing');
      const hist = layerHistory(saved.config?.history, 2);
      assert.equal(hist[1]?.created_by, '/bin/sh -c echo changed > /etc/motd');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("SaveArchiveReader reads docker's legacy layout with a symlinked repeated layer", () => {
  const root = tmp();
  try {
    const layer = join(root, 'layer');
    mkdirSync(layer);
    writeFileSync(join(layer, 'a'), 'aaa');
    const out = join(root, 'out');
    for (const id of ['aaa111', 'bbb222']) mkdirSync(join(out, id), { recursive: true });
    gnuTar(layer, join(out, 'aaa111/layer.tar'));
    symlinkSync('../aaa111/layer.tar', join(out, 'bbb222/layer.tar'));
    writeFileSync(join(out, 'cfg.json'), '{"history":[]}');
    writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', Layers: ['aaa111/layer.tar', 'bbb222/layer.tar'] }]));
    const archive = join(root, 's.tar');
    gnuTar(out, archive, ['aaa111', 'bbb222', 'cfg.json', 'manifest.json']);
    const r = new SaveArchiveReader();
    feed(r, readFileSync(archive), 700);
    const saved = r.finish();
    assert.deepEqual(saved.layers.map((l) => l.entries.map((e) => e.path)), [['a'], ['a']]);
    assert.deepEqual(saved.config, { history: [] });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('SaveArchiveReader: the entry cap truncates; a compressed layer and a missing manifest are reported', () => {
  const layer = writeTar([{ name: 'a', data: new Uint8Array(1) }, { name: 'b', data: new Uint8Array(2) }, { name: 'c', data: new Uint8Array(3) }]);
  const gz = new Uint8Array([0x1f, 0x8b, 8, 0, ...new Array(600).fill(7)]);
  const manifest = new TextEncoder().encode(JSON.stringify([{ Config: 'cfg', Layers: ['l1', 'l2', 'l3'] }]));
  const archive = writeTar([{ name: 'l1', data: layer }, { name: 'l2', data: gz }, { name: 'manifest.json', data: manifest }]);
  const r = new SaveArchiveReader(2);
  for (let i = 0; i < archive.length; i++) r.push(archive.subarray(i, i + 1));
  const saved = r.finish();
  assert.equal(saved.truncated, true);
  assert.equal(saved.entries, 2);
  assert.deepEqual(saved.layers[0].entries.map((e) => e.path), ['a', 'b']);
  assert.match(saved.layers[1].error ?? '', /compressed/);
  assert.match(saved.layers[2].error ?? '', /missing/);

  const none = new SaveArchiveReader();
  none.push(writeTar([{ name: 'x', data: layer }]));
  assert.throws(() => none.finish(), /no manifest\.json/);
});


