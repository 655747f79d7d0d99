// Hostile layers: traversal, writes through symlinks (made by the layer or by a lower one),
// hard links out of the snapshot, whiteouts that would delete outside, truncated or corrupt
// streams, wrong digests. Each must fail with a LayerError that names the layer and entry,
// touch nothing outside, and leave the snapshotter exactly as it was.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { chainIds, Snapshotter, type SnapshotDriver } from '../../src/image/snapshots.ts';
import { applyLayer, LayerError, type LayerErrorReason } from '../../src/image/unpack/index.ts';
import { diffTrees, gzip, rawTar, sha256, tree, withTempDir, zstd, type RawEntry } from '../helpers/tar.ts';

interface Case {
  name: string;
  /** Builds the layer; `victim` is an absolute directory outside the snapshot root. */
  layer: (victim: string) => Buffer;
  reason: LayerErrorReason;
  message: RegExp;
  /** The layer's blob is passed as is (not gzipped), e.g. already corrupt compressed data. */
  raw?: boolean;
  diffId?: (tar: Buffer) => string;
  digest?: (blob: Buffer) => string;
  /** Entries of a base layer below the hostile one. */
  base?: (victim: string) => RawEntry[];
}

const tar = (entries: RawEntry[], opts?: { end?: boolean }) => rawTar(entries, opts);
const plainFile = rawTar([{ name: 'f', data: 'x'.repeat(5000) }]);

const CASES: Case[] = [
  { name: '../x', layer: () => tar([{ name: '../x', data: 'out' }]), reason: 'escape', message: /entry "\.\.\/x" escapes the layer root/ },
  { name: 'a/../../x', layer: () => tar([{ name: 'a/', type: 'dir' }, { name: 'a/../../x', data: 'out' }]), reason: 'escape', message: /"a\/\.\.\/\.\.\/x" escapes/ },
  { name: 'PAX path ../../x', layer: () => tar([{ name: 'innocent', pax: { path: '../../pax-escape' }, data: 'out' }]), reason: 'escape', message: /pax-escape" escapes/ },
  { name: 'GNU long name with ..', layer: () => tar([{ name: `../${'l'.repeat(120)}`, gnuLong: true, data: 'out' }]), reason: 'escape', message: /escapes the layer root/ },
  {
    name: 'symlink to an absolute dir, then a write through it',
    layer: (v) => tar([{ name: 'a', type: 'symlink', linkname: v }, { name: 'a/passwd', data: 'owned' }]),
    reason: 'symlink', message: /entry "a\/passwd": parent "a" is a symbolic link; refusing to write through it/,
  },
  {
    name: 'symlink ../../ then a write through it',
    layer: () => tar([{ name: 'a', type: 'symlink', linkname: '../../' }, { name: 'a/x', data: 'out' }]),
    reason: 'symlink', message: /parent "a" is a symbolic link/,
  },
  {
    // Not "/" itself: if confinement ever broke, the test must not write to the host.
    name: 'symlink to an absolute dir deeper in the tree, then a directory through it',
    layer: (v) => tar([{ name: 'd/', type: 'dir' }, { name: 'd/root', type: 'symlink', linkname: v }, { name: 'd/root/sub/evil/', type: 'dir' }]),
    reason: 'symlink', message: /parent "d\/root" is a symbolic link/,
  },
  {
    name: 'a device through a symlink',
    layer: (v) => tar([{ name: 'a', type: 'symlink', linkname: v }, { name: 'a/null', type: 'char', devmajor: 1, devminor: 3 }]),
    reason: 'symlink', message: /parent "a" is a symbolic link/,
  },
  { name: 'hard link to /etc/passwd', layer: () => tar([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]), reason: 'hardlink', message: /hard link "h" -> "\/etc\/passwd": the target does not exist in the layer/ },
  { name: 'hard link to ../x', layer: () => tar([{ name: 'h', type: 'link', linkname: '../x' }]), reason: 'escape', message: /hard link "h" -> "\.\.\/x" escapes the layer root/ },
  {
    name: 'hard link through a symlink',
    layer: (v) => tar([{ name: 'l', type: 'symlink', linkname: v }, { name: 'h', type: 'link', linkname: 'l/file' }]),
    reason: 'symlink', message: /entry "h": parent "l" is a symbolic link/,
  },
  { name: 'hard link to a directory', layer: () => tar([{ name: 'd/', type: 'dir' }, { name: 'h', type: 'link', linkname: 'd' }]), reason: 'hardlink', message: /the target is a directory/ },
  { name: 'whiteout of ..', layer: () => tar([{ name: 'd/', type: 'dir' }, { name: 'd/.wh...' }]), reason: 'escape', message: /whiteout of "\.\." is not a file name/ },
  {
    name: 'whiteout through a symlink',
    layer: (v) => tar([{ name: 'a', type: 'symlink', linkname: v }, { name: 'a/.wh.file' }]),
    reason: 'symlink', message: /parent "a" is a symbolic link/,
  },
  {
    name: 'opaque marker in a symlinked dir',
    layer: (v) => tar([{ name: 'a', type: 'symlink', linkname: v }, { name: 'a/.wh..wh..opq' }]),
    reason: 'symlink', message: /"a" is a symbolic link/,
  },
  {
    name: 'write through a symlink from a lower layer',
    base: (v) => [{ name: 'lib', type: 'symlink', linkname: v }],
    layer: () => tar([{ name: 'lib/x', data: 'out' }]),
    reason: 'symlink', message: /parent "lib" is a symbolic link/,
  },
  {
    name: 'whiteout through a symlink from a lower layer',
    base: (v) => [{ name: 'lib', type: 'symlink', linkname: v }],
    layer: () => tar([{ name: 'lib/.wh.file' }]),
    reason: 'symlink', message: /parent "lib" is a symbolic link/,
  },
  {
    name: 'opaque dir that is a symlink in a lower layer',
    base: (v) => [{ name: 'lib', type: 'symlink', linkname: v }],
    layer: () => tar([{ name: 'lib/.wh..wh..opq' }]),
    reason: 'symlink', message: /"lib" is a symbolic link/,
  },
  { name: 'truncated gzip', raw: true, layer: () => { const g = gzip(plainFile); return g.subarray(0, g.length - 20); }, reason: 'truncated', message: /gzip stream truncated/ },
  { name: 'truncated zstd', raw: true, layer: () => { const z = zstd(plainFile); return z.subarray(0, z.length - 9); }, reason: 'truncated', message: /zstd stream truncated/ },
  {
    name: 'corrupt zstd data', raw: true, reason: 'compression', message: /corrupt zstd data/,
    layer: () => { const z = Buffer.from(zstd(Buffer.concat([plainFile, randomBytes(3000)]))); for (let i = 20; i < z.length - 8; i += 7) z[i] ^= 0xa5; return z; },
  },
  { name: 'truncated tar inside a file', raw: true, layer: () => plainFile.subarray(0, 2048), reason: 'truncated', message: /tar stream truncated at byte 2048, inside an entry/ },
  {
    name: 'tar cut right after an extended header', raw: true, reason: 'truncated', message: /tar stream truncated/,
    layer: () => { const t = tar([{ name: 'f', data: 'x', pax: { path: 'f' } }], { end: false }); return t.subarray(0, 1024); },
  },
  {
    name: 'corrupt gzip data', raw: true, reason: 'compression', message: /corrupt gzip data/,
    layer: () => { const g = Buffer.from(gzip(plainFile)); for (let i = 12; i < 40; i++) g[i] ^= 0x55; return g; },
  },
  { name: 'not a tar', raw: true, layer: () => Buffer.from('x'.repeat(2000)), reason: 'format', message: /bad header checksum at byte 0/ },
  { name: 'bzip2', raw: true, layer: () => Buffer.from('BZh91AY&SY'), reason: 'compression', message: /bzip2/ },
  { name: 'wrong diff ID', layer: () => plainFile, diffId: () => sha256('something else'), reason: 'diffid', message: /uncompressed content hashes to sha256:[0-9a-f]{64}, but the image config's diff_id is/ },
  { name: 'wrong blob digest', layer: () => plainFile, digest: () => sha256('something else'), reason: 'digest', message: /hash to sha256:[0-9a-f]{64}, not the layer digest/ },
];

function hashTree(dir: string): string {
  return createHash('sha256').update(JSON.stringify([...tree(dir)], (_k, v) => typeof v === 'bigint' ? v.toString() : v)).digest('hex');
}

for (const driver of ['overlay', 'vfs'] as SnapshotDriver[]) {
  describe(`hostile layers are refused (${driver})`, () => {
    for (const c of CASES) {
      test(c.name, async () => {
        await withTempDir(async (root) => {
          const victim = join(root, 'victim');
          mkdirSync(join(victim, 'sub'), { recursive: true });
          writeFileSync(join(victim, 'file'), 'precious');
          writeFileSync(join(victim, 'passwd'), 'precious');
          const snaps = await Snapshotter.open(join(root, 'data'), { driver });
          const baseTar = rawTar([{ name: 'base-file', data: 'base' }, ...(c.base?.(victim) ?? [])]);
          const [baseId] = chainIds([sha256(baseTar)]);
          const t0 = await snaps.prepareLayer(baseId!, null);
          const r0 = await applyLayer(Readable.from([baseTar]), { target: t0!.dir, mode: t0!.mode });
          await t0!.commit({ diffId: r0.diffId, opaqueDirs: r0.opaqueDirs });

          const before = { list: JSON.stringify(snaps.list()), dirs: readdirSync(join(root, 'data', 'snapshots')).sort(), victim: hashTree(victim) };
          const layerTar = c.layer(victim);
          const blob = c.raw ? layerTar : gzip(layerTar);
          const chain = chainIds([sha256(baseTar), sha256(layerTar)])[1]!;
          const target = await snaps.prepareLayer(chain, baseId);
          assert.ok(target);
          let error: unknown;
          try {
            await applyLayer(Readable.from([blob]), {
              target: target.dir, mode: target.mode, lowers: target.lowers,
              digest: c.digest ? c.digest(blob) : sha256(blob),
              expectedDiffId: c.diffId ? c.diffId(layerTar) : c.raw ? undefined : sha256(layerTar),
            });
            await target.commit();
          } catch (err) {
            error = err;
            await target.abort();
          }
          assert.ok(error instanceof LayerError, `expected a LayerError, got ${error instanceof Error ? error.stack : String(error)}`);
          assert.equal(error.reason, c.reason, error.message);
          assert.match(error.message, c.message);
          assert.match(error.message, /^layer sha256:[0-9a-f]{12}: /, 'the message names the layer');
          // Nothing changed: no snapshot, no directory left behind, nothing outside touched.
          assert.equal(JSON.stringify(snaps.list()), before.list);
          assert.deepEqual(readdirSync(join(root, 'data', 'snapshots')).sort(), before.dirs);
          assert.equal(hashTree(victim), before.victim, 'the victim directory is untouched');
          assert.equal(readFileSync(join(victim, 'passwd'), 'utf8'), 'precious');
          assert.ok(!existsSync(join(root, 'x')) && !existsSync(join(root, 'pax-escape')) && !existsSync(join(root, 'data', 'x')));
          assert.ok(!snaps.has(chain));
        });
      });
    }
  });
}

test('absolute names are confined (leading "/" stripped, as docker does)', async () => {
  await withTempDir(async (root) => {
    const out = join(root, 'out');
    mkdirSync(out);
    const name = `/berth-test-abs-${process.pid}/file`;
    await applyLayer(Readable.from([rawTar([{ name, data: 'inside' }, { name: '/', type: 'dir', mode: 0o711 }])]), { target: out, mode: 'overlay' });
    assert.equal(readFileSync(join(out, name), 'utf8'), 'inside');
    assert.ok(!existsSync(name.slice(0, name.lastIndexOf('/'))), 'nothing written at the absolute path');
    assert.deepEqual(diffTrees(tree(out), tree(out)), []);
  });
});

test('an archive that stops after its last entry (no end blocks, no padding) is accepted, as Go\'s reader accepts it', async () => {
  await withTempDir(async (root) => {
    const full = rawTar([{ name: 'a', data: 'first' }, { name: 'b', data: 'last' }], { end: false });
    for (const [label, cut] of [['no end blocks', full], ['no padding either', full.subarray(0, full.length - 512 + 4)]] as const) {
      const out = join(root, label.replace(/ /g, '-'));
      mkdirSync(out);
      await applyLayer(Readable.from([cut]), { target: out, mode: 'overlay' });
      assert.equal(readFileSync(join(out, 'b'), 'utf8'), 'last', label);
    }
  });
});
