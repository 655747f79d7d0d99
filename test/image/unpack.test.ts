// The layer unpacker against GNU tar as the oracle: every entry type, PAX and GNU long names,
// binary xattrs (security.capability included), ownership, special modes, nanosecond mtimes,
// gzip/zstd/plain; then whiteouts in both modes and the replacement rules.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { applyLayer, LayerError, TarReader, type TarEntry, type UnpackMode } from '../../src/image/unpack/index.ts';
import {
  diffTrees, gnuTar, gzip, packTar, rawTar, readXattrs, setXattr, sha256, tempDir, tree, withTempDir, zstd,
} from '../helpers/tar.ts';
import { rmSync } from 'node:fs';

const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // VFS_CAP_REVISION_2, cap_net_raw+ep
const BINARY = Buffer.from([0x80, 0xff, 0x00, 0x41, 0xc3, 0x28]);
const NON_UTF8 = Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0xe9, 0xff]).toString('latin1'); // "name\xe9\xff"

function source(data: Buffer, chunk = 0): Readable {
  if (!chunk) return Readable.from([data]);
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return Readable.from(parts);
}

/** A tree with every kind of entry, built on disk, to be archived by GNU tar. */
function buildRichTree(dir: string): void {
  mkdirSync(join(dir, 'etc', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(dir, 'etc', 'sub', 'empty'), '');
  writeFileSync(join(dir, 'big'), Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a));
  writeFileSync(join(dir, 'ping'), '#!/bin/sh\n');
  chmodSync(join(dir, 'ping'), 0o4755);
  setXattr(join(dir, 'ping'), 'security.capability', CAP_NET_RAW);
  writeFileSync(join(dir, 'sgid'), 'x');
  chownSync(join(dir, 'sgid'), 0, 50);
  chmodSync(join(dir, 'sgid'), 0o2711);
  mkdirSync(join(dir, 'tmp'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  mkdirSync(join(dir, 'ro'));
  writeFileSync(join(dir, 'ro', 'inside'), 'in a 0555 dir');
  chmodSync(join(dir, 'ro'), 0o555);
  writeFileSync(join(dir, 'owned'), 'by 1000:1001');
  chownSync(join(dir, 'owned'), 1000, 1001);
  setXattr(join(dir, 'owned'), 'user.binary', BINARY);
  setXattr(join(dir, 'owned'), 'trusted.berth', Buffer.from('t'));
  setXattr(join(dir, 'etc'), 'user.dir', Buffer.from('on a directory'));
  symlinkSync('/etc/hosts', join(dir, 'abs-link'));
  symlinkSync('../big', join(dir, 'etc', 'rel-link'));
  symlinkSync('t'.repeat(250), join(dir, 'long-target'));
  const sym = join(dir, 'owned-link');
  symlinkSync('owned', sym);
  execFileSync('chown', ['-h', '7:8', sym]);
  linkSync(join(dir, 'big'), join(dir, 'big-hardlink'));
  linkSync(join(dir, 'ping'), join(dir, 'etc', 'ping-hardlink'));
  execFileSync('mknod', ['-m', '0620', join(dir, 'null-ish'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '0660', join(dir, 'disk'), 'b', '259', '65537']);
  execFileSync('mkfifo', ['-m', '0604', join(dir, 'fifo')]);
  const deep = join(dir, 'd'.repeat(99), 'e'.repeat(99), 'f'.repeat(99));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'g'.repeat(120)), 'a 400-byte path');
  writeFileSync(Buffer.from(`${dir}/${NON_UTF8}`, 'latin1'), 'a name that is not UTF-8');
  // Times last: creating entries changes the parents' mtimes.
  execFileSync('touch', ['-h', '-d', '2021-03-04 05:06:07.123456789', join(dir, 'owned'), sym, join(dir, 'fifo')]);
  execFileSync('touch', ['-d', '2019-01-01 00:00:00.5', join(dir, 'etc', 'sub')]);
  execFileSync('touch', ['-d', '2001-09-09 01:46:40', join(dir, 'etc')]);
}

describe('unpacking matches GNU tar', () => {
  let src: string;
  let paxTar: Buffer;
  let gnuFormatTar: Buffer;
  let oracle: string;
  const cleanup: string[] = [];

  before(() => {
    src = tempDir();
    buildRichTree(src);
    paxTar = gnuTar(['--format=pax', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', '-', '-C', src, '.']);
    gnuFormatTar = gnuTar(['--format=gnu', '--numeric-owner', '-cf', '-', '-C', src, '.']);
    oracle = tempDir();
    gnuTar(['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '-xpf', '-', '-C', oracle], { input: paxTar });
    cleanup.push(src, oracle);
  });
  after(() => { for (const d of cleanup) rmSync(d, { recursive: true, force: true }); });

  for (const mode of ['overlay', 'apply'] as UnpackMode[]) {
    for (const codec of ['gzip', 'zstd', 'none'] as const) {
      test(`PAX archive, ${codec}, ${mode} mode: same tree, xattrs and mtimes as GNU tar and as the source`, async () => {
        const blob = codec === 'gzip' ? gzip(paxTar) : codec === 'zstd' ? zstd(paxTar) : paxTar;
        await withTempDir(async (out) => {
          // Small odd chunks exercise headers and PAX records split across writes.
          const r = await applyLayer(source(blob, codec === 'none' ? 7919 : 0), { target: out, mode, expectedDiffId: sha256(paxTar), digest: sha256(blob) });
          assert.equal(r.compression, codec);
          assert.equal(r.diffId, sha256(paxTar));
          assert.equal(r.size, paxTar.length);
          assert.deepEqual(diffTrees(tree(out, { xattrs: true }), tree(oracle, { xattrs: true })), []);
          assert.deepEqual(diffTrees(tree(out, { xattrs: true }), tree(src, { xattrs: true }), (rel) => rel === '.'), []);
          // And GNU tar's own comparison of the archive against the result.
          const cmp = spawnSync('tar', ['--compare', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-f', '-', '-C', out], { input: paxTar });
          assert.equal(cmp.status, 0, `tar --compare: ${cmp.stdout}${cmp.stderr}`);
        });
      });
    }
  }

  test('security.capability and binary xattr values are byte-exact', async () => {
    await withTempDir(async (out) => {
      await applyLayer(source(gzip(paxTar)), { target: out, mode: 'overlay' });
      const x = readXattrs(out);
      assert.equal(x.get('ping')?.get('security.capability'), CAP_NET_RAW.toString('hex'));
      assert.equal(x.get('owned')?.get('user.binary'), BINARY.toString('hex'));
      assert.equal(lstatSync(join(out, 'ping')).mode & 0o7777, 0o4755, 'setuid survives the chown and the xattr');
    });
  });

  test('GNU format (L/K long names, no PAX) gives the same tree without xattrs', async () => {
    await withTempDir(async (out) => {
      const gnuOracle = tempDir();
      try {
        gnuTar(['--numeric-owner', '--same-owner', '-xpf', '-', '-C', gnuOracle], { input: gnuFormatTar });
        await applyLayer(source(gnuFormatTar, 1000), { target: out, mode: 'overlay' });
        assert.deepEqual(diffTrees(tree(out), tree(gnuOracle)), []);
        assert.ok(existsSync(join(out, 'd'.repeat(99), 'e'.repeat(99), 'f'.repeat(99), 'g'.repeat(120))));
        assert.equal(readlinkSync(join(out, 'long-target')), 't'.repeat(250));
      } finally {
        rmSync(gnuOracle, { recursive: true, force: true });
      }
    });
  });
});

describe('tar reader', () => {
  test('byte-exact PAX xattrs (SCHILY and LIBARCHIVE) where tar-stream would decode UTF-8', async () => {
    const tar = rawTar([
      { name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.raw': BINARY, 'LIBARCHIVE.xattr.user.b64%3Dname': BINARY.toString('base64') } },
    ]);
    const seen: TarEntry[] = [];
    const reader = new TarReader({ entry: (e) => seen.push(e), data: () => {}, entryEnd: () => {} });
    reader.push(tar);
    reader.end();
    assert.deepEqual(seen[0]!.xattrs?.get('user.raw'), BINARY);
    assert.deepEqual(seen[0]!.xattrs?.get('user.b64=name'), BINARY);
    await withTempDir(async (out) => {
      await applyLayer(source(tar), { target: out, mode: 'overlay' });
      const x = readXattrs(out);
      assert.equal(x.get('f')?.get('user.raw'), BINARY.toString('hex'));
      assert.equal(x.get('f')?.get('user.b64=name'), BINARY.toString('hex'));
    });
  });

  test('PAX path, linkpath, size, uid/gid, ns mtime; global headers; base-256 numbers', async () => {
    const longName = `${'p'.repeat(150)}/${'q'.repeat(150)}`;
    const tar = rawTar([
      { name: 'dir', type: 'dir' },
      { name: 'x'.repeat(100), pax: { path: longName, uid: '70000', gid: '80000', mtime: '1600000000.987654321' }, data: 'long' },
      { name: 'l', type: 'symlink', linkname: 'short', pax: { linkpath: 'L'.repeat(300) } },
      { name: 'h', type: 'link', linkname: 'nope', pax: { linkpath: longName } },
    ], { globalPax: { comment: 'made by a test', uid: '5' } });
    await withTempDir(async (out) => {
      await applyLayer(source(tar, 100), { target: out, mode: 'overlay' });
      const st = lstatSync(join(out, longName), { bigint: true });
      assert.equal(st.uid, 70000n);
      assert.equal(st.gid, 80000n);
      assert.equal(st.mtimeNs, 1600000000987654321n);
      assert.equal(readlinkSync(join(out, 'l')), 'L'.repeat(300));
      assert.equal(lstatSync(join(out, 'l')).uid, 5, 'a global PAX uid applies where the entry has none');
      assert.equal(BigInt(lstatSync(join(out, 'h')).ino), st.ino);
      assert.equal(readFileSync(join(out, longName), 'utf8'), 'long');
    });
    // base-256 size/uid as GNU tar writes for large values
    const big = rawTar([{ name: 'u', data: 'y' }]);
    big.fill(0, 108, 116);
    big[108] = 0x80;
    big.writeUInt32BE(3_000_000_000, 112);
    let sum = 0;
    big.fill(0x20, 148, 156);
    for (let i = 0; i < 512; i++) sum += big[i]!;
    big.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await withTempDir(async (out) => {
      await applyLayer(source(big), { target: out, mode: 'overlay' });
      assert.equal(lstatSync(join(out, 'u')).uid, 3_000_000_000);
    });
  });

  test('tar-stream packed archives unpack like GNU tar does', async () => {
    const tar = await packTar([
      { name: 'a/', type: 'directory', mode: 0o750, uid: 3, gid: 4, mtime: new Date('2020-02-02T00:00:00Z') },
      { name: 'a/file', mode: 0o640, uid: 3, gid: 4, data: 'content', mtime: new Date('2020-02-03T00:00:00Z') },
      { name: 'a/link', type: 'symlink', linkname: '/a/file', mtime: new Date('2020-02-04T00:00:00Z') },
      { name: 'a/hard', type: 'link', linkname: 'a/file' },
      { name: 'a/chr', type: 'character-device', devmajor: 5, devminor: 1, mode: 0o600 },
      { name: 'a/fifo', type: 'fifo', mode: 0o644 },
      { name: `a/${'n'.repeat(120)}/${'m'.repeat(120)}`, data: 'pax path' },
    ]);
    const oracle = tempDir();
    try {
      gnuTar(['--numeric-owner', '--same-owner', '-xpf', '-', '-C', oracle], { input: tar });
      await withTempDir(async (out) => {
        await applyLayer(source(tar), { target: out, mode: 'apply' });
        // The n… directory is not in the archive: both create it, each at its own time.
        const implicit = `a/${'n'.repeat(120)}`;
        assert.deepEqual(diffTrees(tree(out), tree(oracle), (rel) => rel === '.' || rel === implicit), []);
        assert.ok(lstatSync(join(out, implicit)).isDirectory());
      });
    } finally {
      rmSync(oracle, { recursive: true, force: true });
    }
  });

  test('the diff ID covers the whole stream, trailing zero padding included', async () => {
    const tar = Buffer.concat([rawTar([{ name: 'f', data: 'x' }]), Buffer.alloc(8192)]);
    await withTempDir(async (out) => {
      const r = await applyLayer(source(gzip(tar)), { target: out, mode: 'overlay', expectedDiffId: sha256(tar) });
      assert.equal(r.diffId, sha256(tar));
      assert.equal(r.size, tar.length);
      assert.equal(r.entries, 1);
    });
  });

  test('an empty stream is an empty layer; unknown entry types and sparse files are refused', async () => {
    await withTempDir(async (out) => {
      const r = await applyLayer(source(Buffer.alloc(0)), { target: out, mode: 'overlay' });
      assert.equal(r.entries, 0);
      await assert.rejects(applyLayer(source(rawTar([{ name: 'z', type: { flag: 'Z' } }])), { target: out, mode: 'overlay' }),
        (e: unknown) => e instanceof LayerError && e.reason === 'format' && /unknown entry type "Z"/.test(e.message));
      await assert.rejects(applyLayer(source(rawTar([{ name: 's', type: { flag: 'S' } }])), { target: out, mode: 'overlay' }),
        (e: unknown) => e instanceof LayerError && e.reason === 'unsupported' && /sparse/.test(e.message));
    });
  });
});

describe('whiteouts', () => {
  const layer = () => rawTar([
    { name: 'keep/', type: 'dir' },
    { name: 'keep/new', data: 'from this layer' },
    { name: 'keep/.wh.new' }, // same-layer entry: not hidden
    { name: 'keep/.wh.old' },
    { name: 'opq/', type: 'dir', mode: 0o700 },
    { name: 'opq/.wh..wh..opq' },
    { name: 'opq/mine', data: 'kept' },
    { name: '.wh.gone-dir' },
    { name: 'implicit/deeper/.wh.x' },
    { name: '.wh..wh.plnk/', type: 'dir' }, // aufs bookkeeping: skipped
  ]);

  test('overlay mode: 0:0 character devices and trusted.overlay.opaque', async () => {
    await withTempDir(async (out) => {
      const r = await applyLayer(source(gzip(layer())), { target: out, mode: 'overlay' });
      const wh = (rel: string) => {
        const st = lstatSync(join(out, rel));
        return st.isCharacterDevice() && st.rdev === 0;
      };
      assert.ok(wh('keep/old'));
      assert.ok(wh('gone-dir'));
      assert.ok(wh('implicit/deeper/x'));
      assert.ok(!existsSync(join(out, 'keep/.wh.old')));
      assert.equal(readFileSync(join(out, 'keep/new'), 'utf8'), 'from this layer');
      assert.equal(readXattrs(out).get('opq')?.get('trusted.overlay.opaque'), Buffer.from('y').toString('hex'));
      assert.equal(readFileSync(join(out, 'opq/mine'), 'utf8'), 'kept');
      assert.equal(lstatSync(join(out, 'opq')).mode & 0o777, 0o700);
      assert.ok(!existsSync(join(out, '.wh..wh.plnk')));
      assert.deepEqual(r.opaqueDirs, ['opq']);
    });
  });

  test('apply mode: deletes the lower entries, empties opaque dirs but keeps the layer\'s own', async () => {
    await withTempDir(async (out) => {
      // The parent's tree, as the copying snapshotter would have it.
      mkdirSync(join(out, 'keep'));
      writeFileSync(join(out, 'keep/old'), 'lower');
      writeFileSync(join(out, 'keep/other'), 'lower, untouched');
      mkdirSync(join(out, 'opq/sub'), { recursive: true });
      writeFileSync(join(out, 'opq/lower-file'), 'hidden');
      writeFileSync(join(out, 'opq/sub/deep'), 'hidden');
      mkdirSync(join(out, 'gone-dir/x'), { recursive: true });
      await applyLayer(source(layer()), { target: out, mode: 'apply' });
      assert.ok(!existsSync(join(out, 'keep/old')));
      assert.equal(readFileSync(join(out, 'keep/other'), 'utf8'), 'lower, untouched');
      assert.equal(readFileSync(join(out, 'keep/new'), 'utf8'), 'from this layer');
      assert.deepEqual(execFileSync('ls', ['-A', join(out, 'opq')]).toString().trim().split('\n'), ['mine']);
      assert.ok(!existsSync(join(out, 'gone-dir')));
      assert.ok(!existsSync(join(out, 'implicit')), 'a whiteout under a missing dir creates nothing');
    });
  });
});

describe('replacing entries', () => {
  test('later entries replace earlier ones of another type; a symlink pointing outside is replaced, not followed', async () => {
    await withTempDir(async (root) => {
      const out = join(root, 'out');
      const victim = join(root, 'victim');
      mkdirSync(out);
      writeFileSync(victim, 'untouched');
      symlinkSync(victim, join(out, 'evil')); // a lower entry (apply mode) pointing outside
      const tar = rawTar([
        { name: 'evil', data: 'a regular file now' },
        { name: 'd', type: 'dir' },
        { name: 'd/f', data: 'in a dir' },
        { name: 'd', data: 'a file replaces the dir' },
        { name: 'f', data: 'file' },
        { name: 'f', type: 'symlink', linkname: '/nowhere' },
        { name: 's', type: 'symlink', linkname: 'x' },
        { name: 's', type: 'dir', mode: 0o711 },
        { name: 'n', type: 'fifo' },
        { name: 'n', data: 'no longer a fifo' },
      ]);
      await applyLayer(source(tar), { target: out, mode: 'apply' });
      assert.equal(readFileSync(victim, 'utf8'), 'untouched');
      assert.ok(lstatSync(join(out, 'evil')).isFile());
      assert.equal(readFileSync(join(out, 'evil'), 'utf8'), 'a regular file now');
      assert.equal(readFileSync(join(out, 'd'), 'utf8'), 'a file replaces the dir');
      assert.equal(readlinkSync(join(out, 'f')), '/nowhere');
      assert.ok(lstatSync(join(out, 's')).isDirectory());
      assert.equal(readFileSync(join(out, 'n'), 'utf8'), 'no longer a fifo');
    });
  });

  test('overlay mode: missing parents take the lower directory\'s metadata; hard links to lower files copy them up', async () => {
    await withTempDir(async (root) => {
      const lower = join(root, 'lower');
      const upper = join(root, 'upper');
      mkdirSync(join(lower, 'usr/share'), { recursive: true });
      chownSync(join(lower, 'usr/share'), 12, 34);
      chmodSync(join(lower, 'usr/share'), 0o750);
      execFileSync('touch', ['-d', '2000-01-01 00:00:00.25', join(lower, 'usr/share')]);
      writeFileSync(join(lower, 'usr/lib-file'), 'lower content');
      chownSync(join(lower, 'usr/lib-file'), 5, 6);
      mkdirSync(upper);
      const tar = rawTar([
        { name: 'usr/share/new', data: 'n' },
        { name: 'usr/link-to-lower', type: 'link', linkname: 'usr/lib-file' },
      ]);
      await applyLayer(source(tar), { target: upper, mode: 'overlay', lowers: [{ dir: lower }] });
      const st = lstatSync(join(upper, 'usr/share'), { bigint: true });
      assert.equal(Number(st.mode & 0o7777n), 0o750);
      assert.equal(st.uid, 12n);
      assert.equal(st.mtimeNs, 946684800250000000n);
      assert.equal(readFileSync(join(upper, 'usr/link-to-lower'), 'utf8'), 'lower content');
      assert.equal(lstatSync(join(upper, 'usr/link-to-lower')).ino, lstatSync(join(upper, 'usr/lib-file')).ino);
      assert.equal(lstatSync(join(upper, 'usr/lib-file')).uid, 5);
    });
  });
});

test('an AbortSignal stops the unpack', async () => {
  await withTempDir(async (out) => {
    const ac = new AbortController();
    const slow = Readable.from((async function* () {
      yield rawTar([{ name: 'a', data: 'x' }], { end: false });
      ac.abort();
      await new Promise((r) => setTimeout(r, 50));
      yield Buffer.alloc(1024);
    })());
    await assert.rejects(applyLayer(slow, { target: out, mode: 'overlay', signal: ac.signal }), (e: unknown) => (e as Error).name === 'AbortError');
  });
});
