// The build context and COPY/ADD: .dockerignore rules, pack → extract round trip, hostile context
// tars, checksums that ignore mtimes, docker's copy semantics, writes that never leave the rootfs
// through a symlink, ADD of archives in every compression and of URLs with --checksum.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { extractContext, packContext, sourcesChecksum } from '../../src/build/context.ts';
import { copyInto, resolveInRoot, type CopyRequest } from '../../src/build/copy.ts';
import { parseDockerignore, PatternMatcher } from '../../src/build/dockerignore.ts';
import { BuildError } from '../../src/build/types.ts';
import { gzip, rawTar, tempDir } from '../helpers/tar.ts';

const dirs: string[] = [];
const tmp = (): string => {
  const d = tempDir('berth-ctx-');
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

describe('.dockerignore', () => {
  test('comments, whitespace, cleaning, leading slash, exceptions in order, **, parents', () => {
    const patterns = parseDockerignore('# comment\n  *.log  \n/build/\n!keep.log\n**/node_modules\ndocs/**/*.md\n\n./tmp/../cache\n');
    assert.deepEqual(patterns, ['*.log', 'build', '!keep.log', '**/node_modules', 'docs/**/*.md', 'cache']);
    const m = new PatternMatcher(patterns);
    const table: Array<[string, boolean]> = [
      ['a.log', true], ['keep.log', false], ['sub/a.log', false], ['build', true], ['build/out/x', true],
      ['node_modules', true], ['a/b/node_modules/x.js', true], ['docs/a.md', true], ['docs/x/y/a.md', true], ['docs/a.txt', false],
      ['cache/z', true], ['src/main.c', false],
    ];
    for (const [path, want] of table) assert.equal(m.matches(path), want, path);
    assert.equal(m.hasExclusions, true);
    const last = new PatternMatcher(['!a', 'a']);
    assert.equal(last.matches('a'), true);
    const cls = new PatternMatcher(['file[0-9].txt', 'q?.txt', 'esc\\*']);
    assert.equal(cls.matches('file3.txt'), true);
    assert.equal(cls.matches('filex.txt'), false);
    assert.equal(cls.matches('qa.txt'), true);
    assert.equal(cls.matches('esc*'), true);
    assert.equal(cls.matches('escx'), false);
  });
});

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('context', () => {
  test('packContext applies .dockerignore but keeps the Dockerfile; extractContext restores modes, links and mtimes', async () => {
    const src = tmp();
    files(src, { Dockerfile: 'FROM x\n', '.dockerignore': '*.secret\nDockerfile\nlogs\n!logs/keep\n', 'a.txt': 'a', 'x.secret': 's', 'logs/drop': 'd', 'logs/keep': 'k', 'sub/b.txt': 'b' });
    symlinkSync('../a.txt', join(src, 'sub', 'link'));
    spawnSync('chmod', ['755', join(src, 'a.txt')]);
    utimesSync(join(src, 'a.txt'), new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    const { stream } = packContext(src);
    const tar = await collect(stream);
    const dst = tmp();
    const { bytes } = await extractContext(Readable.from([tar]), dst);
    assert.equal(bytes, tar.length);
    assert.equal(readFileSync(join(dst, 'Dockerfile'), 'utf8'), 'FROM x\n');
    assert.equal(existsSync(join(dst, 'x.secret')), false);
    assert.equal(existsSync(join(dst, 'logs', 'drop')), false);
    assert.equal(readFileSync(join(dst, 'logs', 'keep'), 'utf8'), 'k');
    assert.equal(readlinkSync(join(dst, 'sub', 'link')), '../a.txt');
    assert.equal(statSync(join(dst, 'a.txt')).mode & 0o777, 0o755);
    assert.equal(statSync(join(dst, 'a.txt')).mtimeMs, 1_000_000_000_000);
    // gzip-compressed contexts too.
    const dst2 = tmp();
    await extractContext(Readable.from([gzip(tar)]), dst2);
    assert.equal(readFileSync(join(dst2, 'sub', 'b.txt'), 'utf8'), 'b');
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

  test('a Dockerfile from stdin is added under a generated name', async () => {
    const src = tmp();
    const { stream, dockerfileName } = packContext(src, { dockerfileContent: 'FROM y\n' });
    const dst = tmp();
    await extractContext(Readable.from([await collect(stream)]), dst);
    assert.match(dockerfileName!, /^\.dockerfile\.[0-9a-f]+$/);
    assert.equal(readFileSync(join(dst, dockerfileName!), 'utf8'), 'FROM y\n');
  });

  test('hostile context tars: ../, a write through a symlink it made, devices; absolute names stay inside', async () => {
    const bad: Array<[string, Parameters<typeof rawTar>[0]]> = [
      ['dot-dot', [{ name: '../escape', data: 'x' }]],
      ['through symlink', [{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/owned', data: 'x' }]],
      ['hardlink out', [{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]],
    ];
    for (const [what, entries] of bad) {
      const dst = tmp();
      await assert.rejects(extractContext(Readable.from([rawTar(entries)]), dst), (e: unknown) => e instanceof BuildError, what);
    }
    assert.equal(existsSync('/tmp/owned'), false);
    const dst = tmp();
    await extractContext(Readable.from([rawTar([{ name: '/abs/file', data: 'in' }, { name: 'dev', type: 'char', devmajor: 1, devminor: 3 }])]), dst);
    assert.equal(readFileSync(join(dst, 'abs', 'file'), 'utf8'), 'in');
    assert.equal(existsSync(join(dst, 'dev')), false);
    await assert.rejects(extractContext(Readable.from([Buffer.from('not a tar at all, certainly not'.repeat(40))]), tmp()), BuildError);
  });

  test('sourcesChecksum: mtimes do not count, content, names and modes do', async () => {
    const root = tmp();
    files(root, { 'd/a': 'one', 'd/b': 'two', f: 'file' });
    const sum = await sourcesChecksum(root, ['d', 'f']);
    utimesSync(join(root, 'd', 'a'), new Date(0), new Date(0));
    assert.equal(await sourcesChecksum(root, ['d', 'f']), sum);
    writeFileSync(join(root, 'd', 'a'), 'ONE');
    assert.notEqual(await sourcesChecksum(root, ['d', 'f']), sum);
    const sum2 = await sourcesChecksum(root, ['d', 'f']);
    spawnSync('chmod', ['700', join(root, 'f')]);
    assert.notEqual(await sourcesChecksum(root, ['d', 'f']), sum2);
    await assert.rejects(sourcesChecksum(root, ['missing']), /file not found in build context/);
    await assert.rejects(sourcesChecksum(root, ['../x']), /forbidden path outside the build context/);
  });
});

describe('COPY and ADD', () => {
  const request = (ctx: string, target: string, over: Partial<CopyRequest>): CopyRequest => ({
    kind: 'copy', sourceRoot: ctx, sourceIsContext: true, sources: [], dest: '/', workdir: '/', targetRoot: target, ...over,
  });

  test('docker\'s rules: file → file, file → dir/, dir contents, globs, several sources, workdir-relative, owners and modes', async () => {
    const ctx = tmp();
    const root = tmp();
    files(ctx, { 'a.txt': 'A', 'b.conf': 'B', 'c.conf': 'C', 'dir/x': 'X', 'dir/sub/y': 'Y' });
    symlinkSync('x', join(ctx, 'dir', 'lnk'));
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: '/out/renamed' }));
    assert.equal(readFileSync(join(root, 'out', 'renamed'), 'utf8'), 'A');
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: '/out/' }));
    assert.equal(readFileSync(join(root, 'out', 'a.txt'), 'utf8'), 'A');
    await copyInto(request(ctx, root, { sources: ['dir'], dest: '/copied' }));
    assert.equal(readFileSync(join(root, 'copied', 'sub', 'y'), 'utf8'), 'Y');
    assert.equal(readlinkSync(join(root, 'copied', 'lnk')), 'x');
    await copyInto(request(ctx, root, { sources: ['*.conf'], dest: '/conf/' }));
    assert.equal(readFileSync(join(root, 'conf', 'c.conf'), 'utf8'), 'C');
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: 'rel.txt', workdir: '/work/dir' }));
    assert.equal(readFileSync(join(root, 'work', 'dir', 'rel.txt'), 'utf8'), 'A');
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: '/owned', uid: 12, gid: 34, mode: 0o640 }));
    const st = statSync(join(root, 'owned'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [12, 34, 0o640]);
    await assert.rejects(copyInto(request(ctx, root, { sources: ['a.txt', 'b.conf'], dest: '/nodir' })), /destination must be a directory and end with a \//);
    await assert.rejects(copyInto(request(ctx, root, { sources: ['*.none'], dest: '/x/' })), /no source files were specified/);
    await assert.rejects(copyInto(request(ctx, root, { sources: ['../etc/passwd'], dest: '/x' })), /forbidden path outside the build context/);
  });

  test('symlinks in the target and in the context never lead outside their roots', async () => {
    const ctx = tmp();
    const root = tmp();
    const outside = tmp();
    files(ctx, { 'a.txt': 'A' });
    symlinkSync(outside, join(ctx, 'escape'));
    symlinkSync(outside, join(root, 'evil'));
    symlinkSync('/etc', join(root, 'etclink'));
    mkdirSync(join(root, 'etc'));
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: '/evil/' }));
    assert.equal(existsSync(join(outside, 'a.txt')), false);
    assert.equal(readFileSync(join(root, outside, 'a.txt'), 'utf8'), 'A');
    await copyInto(request(ctx, root, { sources: ['a.txt'], dest: '/etclink/x' }));
    assert.equal(readFileSync(join(root, 'etc', 'x'), 'utf8'), 'A');
    // The context's own symlink to a host directory resolves inside the context.
    await assert.rejects(copyInto(request(ctx, root, { sources: ['escape/anything'], dest: '/y' })), /file not found in build context/);
    assert.equal(resolveInRoot(root, '/evil/../../../etc'), join(root, 'etc'));
  });

  test('ADD extracts tar, tar.gz, tar.bz2 and tar.xz; a plain .gz is copied as is', async () => {
    const ctx = tmp();
    const root = tmp();
    const payload = tmp();
    files(payload, { 'inner/file': 'from archive' });
    assert.equal(spawnSync('tar', ['-cf', join(ctx, 'a.tar'), '-C', payload, 'inner']).status, 0);
    for (const [flag, ext] of [['-z', 'tgz'], ['-j', 'tbz'], ['-J', 'txz']]) {
      assert.equal(spawnSync('tar', [flag!, '-cf', join(ctx, `a.${ext}`), '-C', payload, 'inner']).status, 0);
    }
    for (const name of ['a.tar', 'a.tgz', 'a.tbz', 'a.txz']) {
      await copyInto(request(ctx, root, { kind: 'add', sources: [name], dest: `/x-${name}/` }));
      assert.equal(readFileSync(join(root, `x-${name}`, 'inner', 'file'), 'utf8'), 'from archive', name);
    }
    writeFileSync(join(ctx, 'plain.gz'), gzip(Buffer.from('text')));
    await copyInto(request(ctx, root, { kind: 'add', sources: ['plain.gz'], dest: '/p/' }));
    assert.ok(lstatSync(join(root, 'p', 'plain.gz')).isFile());
    // COPY never extracts.
    await copyInto(request(ctx, root, { sources: ['a.tgz'], dest: '/c/' }));
    assert.ok(lstatSync(join(root, 'c', 'a.tgz')).isFile());
  });

  test('ADD of a URL: file name from the path, mode 0600, --checksum verified', async () => {
    const body = Buffer.from('downloaded\n');
    const server = createServer((req, res) => {
      if (req.url === '/files/tool.sh') {
        res.setHeader('Last-Modified', new Date(1_500_000_000_000).toUTCString());
        res.end(body);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ctx = tmp();
      const root = tmp();
      const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      await copyInto(request(ctx, root, { kind: 'add', sources: [`${base}/files/tool.sh`], dest: '/bin/', checksum: sum }));
      const st = statSync(join(root, 'bin', 'tool.sh'));
      assert.equal(readFileSync(join(root, 'bin', 'tool.sh'), 'utf8'), 'downloaded\n');
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.mtimeMs, 1_500_000_000_000);
      await assert.rejects(copyInto(request(ctx, root, { kind: 'add', sources: [`${base}/files/tool.sh`], dest: '/x', checksum: `sha256:${'0'.repeat(64)}` })), /checksum mismatch/);
      await assert.rejects(copyInto(request(ctx, root, { kind: 'add', sources: [`${base}/missing`], dest: '/x' })), /status 404/);
    } finally {
      server.close();
    }
  });

  test('COPY heredocs write their content', async () => {
    const root = tmp();
    await copyInto(request(tmp(), root, { sources: ['<<EOF'], dest: '/etc/conf', heredocs: [{ name: 'EOF', content: 'line\n' }] }));
    assert.equal(readFileSync(join(root, 'etc', 'conf'), 'utf8'), 'line\n');
  });
});
