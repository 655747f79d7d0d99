// The container page's pure logic: directory listings from archives (made by GNU tar, as a
// container's archive would arrive), path helpers, the bounded log buffer over stdcopy frames
// and raw TTY output, log search.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { breadcrumbs, decodePathStat, DirListing, modeString, normalizePath, parentPath, statIsDir } from '../../src/webui/lib/container-files.ts';
import { filterLines, LogBuffer, logText, splitMatches, stripAnsi } from '../../src/webui/lib/logs.ts';
import { TarReader } from '../../src/webui/lib/tar.ts';

function gnuTar(dir: string, member: string): Uint8Array {
  return new Uint8Array(execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-c', member]));
}

/** Feeds `tar` to a listing in chunks of `chunk` bytes, as a stream would. */
function list(tar: Uint8Array, path: string, chunk: number, limit?: number): DirListing {
  const l = new DirListing(path, limit);
  let stop = false;
  const r = new TarReader({ onEntry: (e) => { if (!l.add(e)) stop = true; } });
  for (let i = 0; i < tar.length && !stop; i += chunk) r.push(tar.subarray(i, i + chunk));
  return l;
}

test('DirListing keeps only the direct children of the directory, with types, sizes, modes and link targets', () => {
  const d = mkdtempSync(join(tmpdir(), 'berth-ctr-test-'));
  try {
    mkdirSync(join(d, 'etc/sub/deeper'), { recursive: true });
    writeFileSync(join(d, 'etc/passwd'), 'root:x:0:0\n', { mode: 0o644 });
    writeFileSync(join(d, 'etc/sub/inner'), 'x');
    writeFileSync(join(d, 'etc/sub/deeper/x'), 'y');
    writeFileSync(join(d, 'etc/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('passwd', join(d, 'etc/link'));
    writeFileSync(join(d, 'etc/' + 'n'.repeat(120)), 'long name');
    const tar = gnuTar(d, 'etc');
    for (const chunk of [1, 7, 512, 100000]) {
      const l = list(tar, '/etc', chunk);
      assert.equal(l.partial, false);
      const byName = new Map(l.entries.map((e) => [e.name, e]));
      assert.deepEqual([...byName.keys()].sort(), ['link', 'n'.repeat(120), 'passwd', 'run.sh', 'sub'].sort(), `chunk ${chunk}`);
      assert.equal(byName.get('passwd')!.size, 11);
      assert.equal(byName.get('passwd')!.type, 'file');
      assert.equal(byName.get('run.sh')!.mode, 0o755);
      assert.equal(byName.get('sub')!.type, 'dir');
      assert.equal(byName.get('link')!.type, 'symlink');
      assert.equal(byName.get('link')!.linkname, 'passwd');
      assert.deepEqual(l.sorted().map((e) => e.name)[0], 'sub', 'directories first');
      assert.equal(l.seen, 9); // etc, passwd, run.sh, link, n…, sub, sub/inner, sub/deeper, sub/deeper/x
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('DirListing of / (no root entry) and of a directory reached under another name', () => {
  const d = mkdtempSync(join(tmpdir(), 'berth-ctr-test-'));
  try {
    mkdirSync(join(d, 'bin'));
    writeFileSync(join(d, 'bin/sh'), 'x');
    mkdirSync(join(d, 'tmp'));
    const root = new Uint8Array(execFileSync('tar', ['-C', d, '-c', 'bin', 'tmp']));
    assert.deepEqual(list(root, '/', 512).sorted().map((e) => e.name), ['bin', 'tmp']);
    // /lib → usr/lib: the archive of '/lib/' is named after what it resolved to.
    const other = gnuTar(d, 'bin');
    assert.deepEqual(list(other, '/somewhere-else', 512).entries.map((e) => e.name), ['sh']);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('DirListing stops at its limit and says the listing is partial', () => {
  const d = mkdtempSync(join(tmpdir(), 'berth-ctr-test-'));
  try {
    mkdirSync(join(d, 'many'));
    for (let i = 0; i < 50; i++) writeFileSync(join(d, `many/f${String(i).padStart(2, '0')}`), '');
    const l = list(gnuTar(d, 'many'), '/many', 512, 10);
    assert.equal(l.partial, true);
    assert.equal(l.seen, 10);
    assert.ok(l.entries.length <= 9);
    assert.equal(l.add({ name: 'many/zz', type: 'file', size: 0, mode: 0, linkname: '', mtime: 0, uid: 0, gid: 0 }), false);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('path helpers and mode strings', () => {
  assert.equal(normalizePath(''), '/');
  assert.equal(normalizePath('/a//b/../c/'), '/a/c');
  assert.equal(normalizePath('/../..'), '/');
  assert.equal(parentPath('/usr/lib'), '/usr');
  assert.equal(parentPath('/'), '/');
  assert.deepEqual(breadcrumbs('/usr/lib/x'), [{ name: '/', path: '/' }, { name: 'usr', path: '/usr' }, { name: 'lib', path: '/usr/lib' }, { name: 'x', path: '/usr/lib/x' }]);
  assert.equal(modeString('dir', 0o755), 'drwxr-xr-x');
  assert.equal(modeString('file', 0o4755), '-rwsr-xr-x');
  assert.equal(modeString('dir', 0o1777), 'drwxrwxrwt');
  assert.equal(modeString('symlink', 0o777), 'lrwxrwxrwx');
  assert.equal(modeString('file', 0o2640), '-rw-r-S---');
  // As the daemon sends it for /bin/ls → /bin/busybox, and for a directory.
  const s = decodePathStat('eyJuYW1lIjoibHMiLCJzaXplIjo3LCJtb2RlIjoxMzQyMTgyMzksIm10aW1lIjoiMjAyNi0xMS0yOFQxMDozODoyN1oiLCJsaW5rVGFyZ2V0IjoiL2Jpbi9idXN5Ym94In0=');
  assert.equal(s?.linkTarget, '/bin/busybox');
  assert.equal(statIsDir(s!), false);
  assert.equal(statIsDir({ name: 'bin', size: 4096, mode: 2147484141, mtime: '', linkTarget: '' }), true);
  assert.equal(decodePathStat('not base64 json!'), undefined);
});

function frame(stream: number, text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

test('LogBuffer splits multiplexed stdout/stderr into lines with timestamps, at any chunk boundary', () => {
  const all = new Uint8Array([
    ...frame(1, '2026-11-28T10:00:00.000000001Z tick\n'),
    ...frame(2, '2026-11-28T10:00:00.5Z err 1\n2026-11-28T10:00:00.6Z err 2\n'),
    ...frame(1, '2026-11-28T10:00:01.000000001Z tock\n'),
  ]);
  for (const size of [1, 3, 9, all.length]) {
    const b = new LogBuffer(false);
    for (let i = 0; i < all.length; i += size) b.push(all.subarray(i, i + size));
    b.end();
    assert.deepEqual(b.lines.map((l) => [l.stream, l.time, l.text]), [
      [1, '2026-11-28T10:00:00.000000001Z', 'tick'],
      [2, '2026-11-28T10:00:00.5Z', 'err 1'],
      [2, '2026-11-28T10:00:00.6Z', 'err 2'],
      [1, '2026-11-28T10:00:01.000000001Z', 'tock'],
    ], `chunk ${size}`);
    assert.equal(logText(b.lines, false), 'tick\nerr 1\nerr 2\ntock\n');
    assert.match(logText(b.lines, true), /^2026-11-28T10:00:00.000000001Z tick\n/);
  }
});

test('LogBuffer reads raw TTY output (CRLF, colours) and refuses TTY bytes taken for frames', () => {
  const b = new LogBuffer(true);
  b.push(new TextEncoder().encode('\x1b[1;32mgreen\x1b[0m\r\nplain\r\npart'));
  b.end();
  assert.deepEqual(b.lines.map((l) => [l.stream, l.text]), [[1, 'green'], [1, 'plain'], [1, 'part']]);
  assert.throws(() => new LogBuffer(false).push(new TextEncoder().encode('hello world\n')), /is the container using a TTY/);
  assert.equal(stripAnsi('\x1b]0;title\x07a\x1b[Kb'), 'ab');
});

test('LogBuffer keeps at most its capacity, dropping the oldest lines', () => {
  const b = new LogBuffer(false, 100);
  for (let i = 0; i < 1000; i++) b.push(frame(1, `line ${i}\n`));
  assert.equal(b.lines.length, 100);
  assert.equal(b.dropped, 900);
  assert.equal(b.lines[0].text, 'line 900');
  assert.equal(b.lines[99].text, 'line 999');
  assert.ok(b.lines[99].id > b.lines[0].id);
});

test('log search filters and highlights case-insensitively', () => {
  const b = new LogBuffer(false);
  b.push(frame(1, 'Tick\ntock\nTICK tick\n'));
  assert.deepEqual(filterLines(b.lines, 'tick').map((l) => l.text), ['Tick', 'TICK tick']);
  assert.equal(filterLines(b.lines, '').length, 3);
  assert.deepEqual(splitMatches('TICK tick!', 'tick'), ['', 'TICK', ' ', 'tick', '!']);
  assert.deepEqual(splitMatches('abc', ''), ['abc']);
  assert.deepEqual(splitMatches('abc', 'x'), ['abc']);
});
