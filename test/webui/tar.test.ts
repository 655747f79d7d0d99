// The browser-side tar reader and writer, against GNU tar (the real thing) in both directions.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TarFormatError, TarReader, writeTar, type TarEntry } from '../../src/webui/lib/tar.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-webui-tar-'));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(src, 'hello.txt'), 'hello\n');
  writeFileSync(join(src, 'sub', 'big.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(src, 'sub', 'deeper', `${'n'.repeat(120)}.txt`), 'long name\n');
  writeFileSync(join(src, 'ünïcödé.txt'), 'u\n');
  writeFileSync(join(src, 'empty'), '');
  symlinkSync(`../${'t'.repeat(110)}`, join(src, 'sub', 'link'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function read(bytes: Uint8Array, chunk: number, wantData = (e: TarEntry) => e.type === 'file'): Array<TarEntry & { data?: string }> {
  const out: Array<TarEntry & { data?: string }> = [];
  const datas = new Map<TarEntry, Buffer[]>();
  const r = new TarReader({
    onEntry: (e) => { out.push(e); if (wantData(e)) { datas.set(e, []); return true; } return false; },
    onData: (e, c) => datas.get(e)!.push(Buffer.from(c)),
  });
  for (let i = 0; i < bytes.length; i += chunk) r.push(bytes.subarray(i, i + chunk));
  assert.ok(r.ended, 'the end-of-archive blocks were seen');
  return out.map((e) => (datas.has(e) ? { ...e, data: Buffer.concat(datas.get(e)!).toString('latin1') } : e));
}

for (const format of ['gnu', 'pax', 'ustar']) {
  test(`reads GNU tar's ${format} format: names (long and UTF-8), types, sizes, link targets, data — in any chunking`, () => {
    const args = ['-C', join(dir, 'src'), '--format', format, '--sort=name', '-cf', '-', '.'];
    let tarBytes: Buffer;
    try {
      tarBytes = execFileSync('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      // ustar cannot hold the 120-byte name: GNU tar says so, and that is the format's limit.
      assert.equal(format, 'ustar', (e as Error).message);
      return;
    }
    for (const chunk of [1, 511, 512, 513, 4096, 1 << 20]) {
      const entries = read(tarBytes, chunk);
      const byName = new Map(entries.map((e) => [e.name.replace(/\/$/, ''), e]));
      assert.equal(byName.get('./hello.txt')?.data, 'hello\n');
      assert.equal(byName.get('./hello.txt')?.type, 'file');
      assert.equal(byName.get('./sub')?.type, 'dir');
      assert.equal(byName.get('./sub/big.bin')?.size, 70_000);
      assert.equal(byName.get('./sub/big.bin')?.data, Buffer.alloc(70_000, 7).toString('latin1'));
      assert.equal(byName.get(`./sub/deeper/${'n'.repeat(120)}.txt`)?.data, 'long name\n');
      assert.equal(byName.get('./sub/link')?.type, 'symlink');
      assert.equal(byName.get('./sub/link')?.linkname, `../${'t'.repeat(110)}`);
      assert.equal(byName.get('./empty')?.size, 0);
      assert.ok(byName.has('./ünïcödé.txt'), [...byName.keys()].join(' '));
    }
  });
}

test('reading headers only skips the data', () => {
  const tarBytes = execFileSync('tar', ['-C', join(dir, 'src'), '-cf', '-', '.']);
  const entries = read(tarBytes, 1000, () => false);
  assert.ok(entries.every((e) => e.data === undefined));
  assert.ok(entries.length >= 8);
});

test('a file that is not a tar is an error', () => {
  const r = new TarReader({ onEntry: () => false });
  assert.throws(() => r.push(new Uint8Array(512).fill(65)), TarFormatError);
});

test('writeTar output is read by GNU tar: names (also longer than 100 bytes), contents, modes', () => {
  const longName = `dir-${'x'.repeat(150)}.txt`;
  const bytes = writeTar([
    { name: 'a.txt', data: new TextEncoder().encode('alpha\n'), mode: 0o600 },
    { name: longName, data: new Uint8Array(1025).fill(66) },
    { name: 'empty', data: new Uint8Array(0) },
  ]);
  assert.equal(bytes.length % 512, 0);
  const file = join(dir, 'out.tar');
  writeFileSync(file, bytes);
  const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
  assert.match(listing, /^-rw------- .* 6 .* a\.txt$/m);
  assert.ok(listing.includes(longName));
  const x = join(dir, 'x');
  mkdirSync(x);
  execFileSync('tar', ['-C', x, '-xf', file]);
  assert.equal(readFileSync(join(x, 'a.txt'), 'utf8'), 'alpha\n');
  assert.equal(readFileSync(join(x, longName)).length, 1025);
  assert.deepEqual(read(bytes, 100).map((e) => [e.name, e.size]), [['a.txt', 6], [longName, 1025], ['empty', 0]]);
});

test('a global PAX header applies to no single entry: it does not rename the one after it', () => {
  // GNU tar puts `keyword=value` pax options into a global ('g') header.
  const bytes = execFileSync('tar', ['-C', join(dir, 'src'), '--format=pax', '--pax-option=path=renamed.txt', '-cf', '-', 'hello.txt']);
  assert.ok(bytes.includes(Buffer.from('path=renamed.txt')), 'the archive has the global header');
  assert.deepEqual(read(bytes, 300).map((e) => [e.name, e.data]), [['hello.txt', 'hello\n']]);
});
