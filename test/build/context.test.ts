// The build context: what packContext sends (docker CLI rules for .dockerignore, the Dockerfile
// and .dockerignore always sent, sorted entries owned by 0:0), what extractContext accepts
// (every compression docker accepts; hostile entries refused), and sourcesChecksum stability.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import tar from 'tar-stream';
import { extractContext, packContext, removeIgnoredBuildFiles, sourcesChecksum } from '../../src/build/context.ts';
import { BuildError } from '../../src/build/types.ts';
import { gzip, rawTar, tempDir } from '../helpers/tar.ts';

const dirs: string[] = [];
const tmp = (): string => {
  const d = tempDir('berth-ctxt-');
  dirs.push(d);
  return d;
};
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function files(root: string, map: Record<string, string>): void {
  for (const [name, content] of Object.entries(map)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), content);
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function headers(data: Buffer): Promise<tar.Header[]> {
  const out: tar.Header[] = [];
  const ex = tar.extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, s, next) => { out.push(h); s.on('end', next); s.resume(); });
    ex.on('finish', res);
    ex.on('error', rej);
  });
  ex.end(data);
  await done;
  return out;
}

function compress(tool: 'bzip2' | 'xz', data: Buffer): Buffer {
  const r = spawnSync(tool, ['-c'], { input: data });
  assert.equal(r.status, 0, `${tool} is needed`);
  return r.stdout;
}

describe('packContext', () => {
  test('entries sorted, owned by 0:0, modes and mtimes kept', async () => {
    const src = tmp();
    files(src, { 'b/z': 'z', 'a': 'a', 'b/a': 'ba', Dockerfile: 'FROM x\n' });
    utimesSync(join(src, 'a'), new Date(1_500_000_000_000), new Date(1_500_000_000_000));
    spawnSync('chmod', ['640', join(src, 'a')]);
    const hs = await headers(await collect(packContext(src).stream));
    const names = hs.map((h) => h.name.replace(/\/$/, ''));
    assert.deepEqual(names, ['Dockerfile', 'a', 'b', 'b/a', 'b/z']);
    for (const h of hs) assert.deepEqual([h.uid, h.gid], [0, 0], h.name);
    const a = hs.find((h) => h.name === 'a')!;
    assert.equal(a.mode! & 0o777, 0o640);
    assert.equal(a.mtime!.getTime(), 1_500_000_000_000);
  });

  test('.dockerignore and the Dockerfile travel even when excluded, also from an excluded directory', async () => {
    const src = tmp();
    files(src, { '.dockerignore': '.dockerignore\nbuild\n*.secret\n', 'build/Dockerfile.dev': 'FROM x\n', 'build/other': 'o', 'k.secret': 's', keep: 'k' });
    const tarData = await collect(packContext(src, { dockerfile: 'build/Dockerfile.dev' }).stream);
    const dst = tmp();
    await extractContext(Readable.from([tarData]), dst);
    assert.equal(readFileSync(join(dst, 'build', 'Dockerfile.dev'), 'utf8'), 'FROM x\n');
    assert.equal(existsSync(join(dst, '.dockerignore')), true);
    assert.equal(existsSync(join(dst, 'build', 'other')), false);
    assert.equal(existsSync(join(dst, 'k.secret')), false);
    assert.equal(readFileSync(join(dst, 'keep'), 'utf8'), 'k');
  });

  test('a Dockerfile from stdin: the one in the directory follows .dockerignore like any file', async () => {
    const src = tmp();
    files(src, { '.dockerignore': 'Dockerfile\n', Dockerfile: 'FROM old\n', f: 'f' });
    const { stream, dockerfileName } = packContext(src, { dockerfileContent: 'FROM new\n' });
    const dst = tmp();
    await extractContext(Readable.from([await collect(stream)]), dst);
    assert.equal(readFileSync(join(dst, dockerfileName!), 'utf8'), 'FROM new\n');
    assert.equal(existsSync(join(dst, 'Dockerfile')), false);
  });

  test('symlinks are sent as symlinks, never followed', async () => {
    const src = tmp();
    files(src, { Dockerfile: 'FROM x\n' });
    symlinkSync('/etc/passwd', join(src, 'passwd'));
    const dst = tmp();
    await extractContext(Readable.from([await collect(packContext(src).stream)]), dst);
    assert.equal(lstatSync(join(dst, 'passwd')).isSymbolicLink(), true);
    assert.equal(readlinkSync(join(dst, 'passwd')), '/etc/passwd');
  });
});

describe('extractContext', () => {
  const plain = () => rawTar([{ name: 'Dockerfile', data: 'FROM x\n' }, { name: 'd/f', data: 'ff' }]);
  for (const [name, encode] of [
    ['plain', (b: Buffer) => b],
    ['gzip', gzip],
    ['bzip2', (b: Buffer) => compress('bzip2', b)],
    ['xz', (b: Buffer) => compress('xz', b)],
  ] as Array<[string, (b: Buffer) => Buffer]>) {
    test(`a ${name} context`, async () => {
      const body = encode(plain());
      const dst = tmp();
      const { bytes } = await extractContext(Readable.from([body]), dst);
      assert.equal(bytes, body.length);
      assert.equal(readFileSync(join(dst, 'd', 'f'), 'utf8'), 'ff');
    });
  }

  test('hostile entries are refused and nothing lands outside', async () => {
    const outside = tmp();
    const bad: Array<[string, Parameters<typeof rawTar>[0]]> = [
      ['nested ..', [{ name: 'a/../../escape', data: 'x' }]],
      ['through a relative symlink', [{ name: 'up', type: 'symlink', linkname: `../../../../../../..${outside}` }, { name: 'up/owned', data: 'x' }]],
      ['through an absolute symlink', [{ name: 'abs', type: 'symlink', linkname: outside }, { name: 'abs/owned', data: 'x' }]],
      ['hardlink to an absolute path', [{ name: 'h', type: 'link', linkname: `${outside}/victim` }]],
      ['hardlink through a symlink it made', [{ name: 'l', type: 'symlink', linkname: outside }, { name: 'h', type: 'link', linkname: 'l/victim' }]],
    ];
    writeFileSync(join(outside, 'victim'), 'v');
    for (const [what, entries] of bad) {
      const dst = tmp();
      await assert.rejects(extractContext(Readable.from([rawTar(entries)]), dst), (e: unknown) => e instanceof BuildError && e.code === 'invalid', what);
    }
    assert.equal(existsSync(join(outside, 'owned')), false);
    assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'v');
  });

  test('the context cache: an identical file sent again is a link to the same inode; any change is a new one', async () => {
    const cache = tmp();
    const tarOf = (content: string, mtime: number) => rawTar([{ name: 'f.txt', data: content, mode: 0o644, mtime }, { name: 'g.txt', data: 'same', mode: 0o600, mtime }]);
    const [a, b, c] = [tmp(), tmp(), tmp()];
    await extractContext(Readable.from([tarOf('one', 1000)]), a, { cacheDir: cache });
    await extractContext(Readable.from([tarOf('one', 1000)]), b, { cacheDir: cache });
    await extractContext(Readable.from([tarOf('two', 1000)]), c, { cacheDir: cache });
    assert.equal(statSync(join(a, 'f.txt')).ino, statSync(join(b, 'f.txt')).ino);
    assert.notEqual(statSync(join(a, 'f.txt')).ino, statSync(join(c, 'f.txt')).ino);
    assert.equal(readFileSync(join(c, 'f.txt'), 'utf8'), 'two');
    // Same content under another path never shares an inode.
    assert.notEqual(statSync(join(a, 'f.txt')).ino, statSync(join(a, 'g.txt')).ino);
    assert.equal(statSync(join(b, 'g.txt')).mode & 0o777, 0o600);
    assert.equal(statSync(join(b, 'g.txt')).mtimeMs, 1_000_000);
  });

  test('a hardlink inside the context is kept', async () => {
    const dst = tmp();
    await extractContext(Readable.from([rawTar([{ name: 'a', data: 'same' }, { name: 'b', type: 'link', linkname: 'a' }])]), dst);
    assert.equal(readFileSync(join(dst, 'b'), 'utf8'), 'same');
  });

  test('a body that is not an archive is the Dockerfile itself, as dockerd takes it', async () => {
    const dir = tmp();
    await extractContext(Readable.from([Buffer.from('FROM busybox\nRUN true\n')]), dir);
    assert.equal(readFileSync(join(dir, 'Dockerfile'), 'utf8'), 'FROM busybox\nRUN true\n');
    await assert.rejects(extractContext(Readable.from([Buffer.alloc(2 << 20, 0x41)]), tmp()), /neither a tar archive nor a Dockerfile/);
  });

  test('an aborted upload stops', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(extractContext(Readable.from([plain()]), tmp(), { signal: ac.signal }));
  });
});

describe('removeIgnoredBuildFiles', () => {
  test('after the Dockerfile is read, an excluded Dockerfile and .dockerignore leave the context, as dockerd does', async () => {
    const src = tmp();
    files(src, { '.dockerignore': '.dockerignore\nbuild/\n', 'build/Dockerfile': 'FROM x\n', 'build/keep': 'k', Dockerfile: 'FROM y\n' });
    const dst = tmp();
    await extractContext(Readable.from([await collect(packContext(src, { dockerfile: 'build/Dockerfile' }).stream)]), dst);
    assert.equal(existsSync(join(dst, 'build', 'Dockerfile')), true);
    removeIgnoredBuildFiles(dst, 'build/Dockerfile');
    assert.equal(existsSync(join(dst, 'build', 'Dockerfile')), false);
    assert.equal(existsSync(join(dst, '.dockerignore')), false);
    assert.equal(readFileSync(join(dst, 'Dockerfile'), 'utf8'), 'FROM y\n');
    const kept = tmp();
    files(kept, { '.dockerignore': '*.log\n', Dockerfile: 'FROM x\n' });
    removeIgnoredBuildFiles(kept, 'Dockerfile');
    assert.equal(existsSync(join(kept, 'Dockerfile')), true);
    assert.equal(existsSync(join(kept, '.dockerignore')), true);
    const none = tmp();
    files(none, { Dockerfile: 'FROM x\n' });
    removeIgnoredBuildFiles(none, 'Dockerfile');
    assert.equal(existsSync(join(none, 'Dockerfile')), true);
  });
});

describe('sourcesChecksum', () => {
  test('stable across mtimes and runs; content, names, modes and symlink targets change it', async () => {
    const root = tmp();
    files(root, { 'src/a': 'a', 'src/b/c': 'c', 'x.txt': 'x', 'y.txt': 'y' });
    symlinkSync('a', join(root, 'src', 'l'));
    const pats = ['src', '*.txt'];
    const base = await sourcesChecksum(root, pats);
    assert.equal(await sourcesChecksum(root, pats), base);
    utimesSync(join(root, 'src', 'b', 'c'), new Date(0), new Date(0));
    utimesSync(join(root, 'src', 'b'), new Date(0), new Date(0));
    assert.equal(await sourcesChecksum(root, pats), base, 'mtimes do not count');
    const changes: Array<[string, () => void, () => void]> = [
      ['content', () => writeFileSync(join(root, 'src/b/c'), 'C'), () => writeFileSync(join(root, 'src/b/c'), 'c')],
      ['mode', () => spawnSync('chmod', ['700', join(root, 'x.txt')]), () => spawnSync('chmod', ['644', join(root, 'x.txt')])],
      ['symlink target', () => { rmSync(join(root, 'src/l')); symlinkSync('b', join(root, 'src/l')); }, () => { rmSync(join(root, 'src/l')); symlinkSync('a', join(root, 'src/l')); }],
      ['a new file matched by the glob', () => writeFileSync(join(root, 'z.txt'), ''), () => rmSync(join(root, 'z.txt'))],
      ['a renamed file', () => spawnSync('mv', [join(root, 'src/a'), join(root, 'src/a2')]), () => spawnSync('mv', [join(root, 'src/a2'), join(root, 'src/a')])],
    ];
    for (const [what, change, undo] of changes) {
      change();
      assert.notEqual(await sourcesChecksum(root, pats), base, what);
      undo();
    }
    spawnSync('chmod', ['644', join(root, 'x.txt')]);
    assert.equal(await sourcesChecksum(root, pats), base, 'undoing every change gives the first checksum back');
  });
});
