// COPY/ADD into a rootfs, table-driven against the classic docker builder's rules: destinations
// (file, dir/, existing dir), directory contents, globs, several sources, symlinks kept inside the
// context and never followed out of the target rootfs, owners and modes, archives in every
// compression (hostile ones refused), URLs (name, 0600, Last-Modified, --checksum) and the wording
// of docker's errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyInto, resolveInRoot, type CopyRequest } from '../../src/build/copy.ts';
import { BuildError } from '../../src/build/types.ts';
import { gzip, rawTar, tempDir } from '../helpers/tar.ts';

const dirs: string[] = [];
const tmp = (): string => {
  const d = tempDir('berth-copy-t-');
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

/** A fresh context and target; the context has a fixed set of files. */
function setup(): { ctx: string; target: string; req: (over: Partial<CopyRequest>) => CopyRequest } {
  const ctx = tmp();
  const target = tmp();
  files(ctx, { 'a.txt': 'A', 'b.txt': 'B', 'c.md': 'C', 'dir/x': 'X', 'dir/sub/y': 'Y', 'other/z': 'Z' });
  mkdirSync(join(target, 'existing'));
  const req = (over: Partial<CopyRequest>): CopyRequest => ({ kind: 'copy', sourceRoot: ctx, sourceIsContext: true, sources: [], dest: '/', workdir: '/', targetRoot: target, ...over });
  return { ctx, target, req };
}

const isBuildError = (code: string, re: RegExp) => (e: unknown) => e instanceof BuildError && e.code === code && re.test(e.message);

describe('COPY destinations and sources', () => {
  // [sources, dest, workdir, expected files in the target (path → content)]
  const table: Array<[string, string[], string, string, Record<string, string>]> = [
    ['file → file name', ['a.txt'], '/out', '/', { out: 'A' }],
    ['file → dir/', ['a.txt'], '/out/', '/', { 'out/a.txt': 'A' }],
    ['file → existing dir without /', ['a.txt'], '/existing', '/', { 'existing/a.txt': 'A' }],
    ['file → relative to workdir', ['a.txt'], 'rel/', '/w', { 'w/rel/a.txt': 'A' }],
    ['file → .', ['a.txt'], '.', '/w', { 'w/a.txt': 'A' }],
    ['dir → its contents, not itself', ['dir'], '/d', '/', { 'd/x': 'X', 'd/sub/y': 'Y' }],
    ['dir/ → same', ['dir/'], '/d/', '/', { 'd/x': 'X', 'd/sub/y': 'Y' }],
    ['. → the whole context', ['.'], '/all/', '/', { 'all/a.txt': 'A', 'all/dir/sub/y': 'Y', 'all/other/z': 'Z' }],
    ['glob', ['*.txt'], '/g/', '/', { 'g/a.txt': 'A', 'g/b.txt': 'B' }],
    ['glob with one match → a file name', ['*.md'], '/g/readme', '/', { 'g/readme': 'C' }],
    ['glob matching a dir copies its contents', ['d?r'], '/g/', '/', { 'g/x': 'X', 'g/sub/y': 'Y' }],
    ['glob in a directory part', ['*/z'], '/g/', '/', { 'g/z': 'Z' }],
    ['several sources', ['a.txt', 'dir', 'c.md'], '/m/', '/', { 'm/a.txt': 'A', 'm/x': 'X', 'm/sub/y': 'Y', 'm/c.md': 'C' }],
    ['./ and leading / in sources stay in the context', ['./a.txt', '/b.txt'], '/m/', '/', { 'm/a.txt': 'A', 'm/b.txt': 'B' }],
  ];
  for (const [name, sources, dest, workdir, want] of table) {
    test(name, async () => {
      const { target, req } = setup();
      await copyInto(req({ sources, dest, workdir }));
      for (const [p, content] of Object.entries(want)) assert.equal(readFileSync(join(target, p), 'utf8'), content, p);
    });
  }

  test('files keep their mode and mtime; owners are 0:0 unless --chown; --chmod overrides', async () => {
    const { ctx, target, req } = setup();
    spawnSync('chmod', ['751', join(ctx, 'a.txt')]);
    utimesSync(join(ctx, 'a.txt'), new Date(1_400_000_000_000), new Date(1_400_000_000_000));
    await copyInto(req({ sources: ['a.txt'], dest: '/keep' }));
    const st = statSync(join(target, 'keep'));
    assert.equal(st.mode & 0o7777, 0o751);
    assert.equal(st.mtime.getTime(), 1_400_000_000_000);
    assert.deepEqual([st.uid, st.gid], [0, 0]);
    await copyInto(req({ sources: ['dir'], dest: '/new/parents/d', uid: 1234, gid: 5678 }));
    for (const p of ['new', 'new/parents', 'new/parents/d', 'new/parents/d/sub', 'new/parents/d/sub/y']) {
      const s = lstatSync(join(target, p));
      assert.deepEqual([s.uid, s.gid], [1234, 5678], p);
    }
    assert.equal(statSync(join(target, 'new')).mode & 0o777, 0o755);
    await copyInto(req({ sources: ['b.txt'], dest: '/chm', mode: 0o600 }));
    assert.equal(statSync(join(target, 'chm')).mode & 0o7777, 0o600);
  });

  test('an existing file is replaced; a directory is not replaced by a file', async () => {
    const { target, req } = setup();
    writeFileSync(join(target, 'f'), 'old');
    await copyInto(req({ sources: ['a.txt'], dest: '/f' }));
    assert.equal(readFileSync(join(target, 'f'), 'utf8'), 'A');
    mkdirSync(join(target, 'd', 'a.txt'), { recursive: true });
    await assert.rejects(copyInto(req({ sources: ['a.txt'], dest: '/d/' })), BuildError);
  });
});

describe('COPY symlinks', () => {
  test('symlinks inside a copied directory stay symlinks; a named symlink is followed inside the context', async () => {
    const { ctx, target, req } = setup();
    symlinkSync('x', join(ctx, 'dir', 'lx'));
    symlinkSync('/etc/passwd', join(ctx, 'dir', 'abs'));
    symlinkSync('a.txt', join(ctx, 'top'));
    symlinkSync('dir', join(ctx, 'topdir'));
    await copyInto(req({ sources: ['dir'], dest: '/d/' }));
    assert.equal(readlinkSync(join(target, 'd', 'lx')), 'x');
    assert.equal(readlinkSync(join(target, 'd', 'abs')), '/etc/passwd');
    await copyInto(req({ sources: ['top'], dest: '/t/' }));
    assert.equal(lstatSync(join(target, 't', 'top')).isFile(), true);
    assert.equal(readFileSync(join(target, 't', 'top'), 'utf8'), 'A');
    await copyInto(req({ sources: ['topdir'], dest: '/td' }));
    assert.equal(readFileSync(join(target, 'td', 'x'), 'utf8'), 'X');
  });

  test('a symlink in the context pointing outside resolves inside the context, never on the host', async () => {
    const { ctx, req } = setup();
    const host = tmp();
    writeFileSync(join(host, 'secret'), 'host secret');
    symlinkSync(join(host, 'secret'), join(ctx, 'leak'));
    symlinkSync('../../../../../../../../..' + host, join(ctx, 'leakdir'));
    await assert.rejects(copyInto(req({ sources: ['leak'], dest: '/l' })), isBuildError('not-found', /file not found in build context/));
    await assert.rejects(copyInto(req({ sources: ['leakdir/secret'], dest: '/l' })), isBuildError('not-found', /file not found in build context/));
  });

  test('symlinks in the target never let a write leave the rootfs', async () => {
    const { target, req } = setup();
    const host = tmp();
    writeFileSync(join(host, 'x'), 'host');
    symlinkSync(host, join(target, 'absdir'));
    symlinkSync('../../../../../../../..' + host, join(target, 'reldir'));
    symlinkSync(join(host, 'x'), join(target, 'filelink'));
    mkdirSync(join(target, 'app'));
    symlinkSync(host, join(target, 'app', 'sub'));
    await copyInto(req({ sources: ['a.txt'], dest: '/absdir/' }));
    await copyInto(req({ sources: ['a.txt'], dest: '/reldir/a.txt' }));
    await copyInto(req({ sources: ['b.txt'], dest: '/filelink' }));
    await copyInto(req({ sources: ['dir'], dest: '/app/' }));
    await copyInto(req({ sources: ['a.txt'], dest: '/absdir/../../../x' }));
    assert.equal(readFileSync(join(host, 'x'), 'utf8'), 'host');
    assert.deepEqual(spawnSync('ls', ['-A', host], { encoding: 'utf8' }).stdout.trim().split('\n'), ['x']);
    // the writes happened inside, where chroot would put them
    assert.equal(readFileSync(join(target, host, 'a.txt'), 'utf8'), 'A');
    assert.equal(readFileSync(join(target, 'filelink'), 'utf8'), 'B');
  });

  test('resolveInRoot: .. stops at the root; absolute and relative links resolve inside', () => {
    const root = tmp();
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    symlinkSync('/a', join(root, 'abs'));
    symlinkSync('../../../..', join(root, 'a', 'up'));
    assert.equal(resolveInRoot(root, '/../../etc'), join(root, 'etc'));
    assert.equal(resolveInRoot(root, '/abs/b'), join(root, 'a', 'b'));
    assert.equal(resolveInRoot(root, '/a/up/a/b'), join(root, 'a', 'b'));
    symlinkSync('loop', join(root, 'loop'));
    assert.throws(() => resolveInRoot(root, '/loop'), BuildError);
  });
});

describe('COPY errors (docker wording)', () => {
  const cases: Array<[string, Partial<CopyRequest>, string, RegExp]> = [
    ['a wildcard matching nothing', { sources: ['*.none'], dest: '/x/' }, 'not-found', /no source files were specified/],
    ['a missing file', { sources: ['missing.txt'], dest: '/x' }, 'not-found', /file not found in build context or excluded by \.dockerignore: stat missing\.txt: file does not exist/],
    ['../ out of the context', { sources: ['../x'], dest: '/x' }, 'invalid', /forbidden path outside the build context: \.\.\/x \(\)/],
    ['/../ out of the context', { sources: ['/../x'], dest: '/x' }, 'invalid', /forbidden path outside the build context/],
    ['a/../../ out of the context', { sources: ['a.txt/../../x'], dest: '/x' }, 'invalid', /forbidden path outside the build context/],
    ['several sources without a trailing /', { sources: ['a.txt', 'b.txt'], dest: '/x' }, 'invalid', /When using COPY with more than one source file, the destination must be a directory and end with a \//],
    ['several sources into an existing dir without /', { sources: ['a.txt', 'b.txt'], dest: '/existing' }, 'invalid', /the destination must be a directory and end with a \//],
    ['a glob with several matches without /', { sources: ['*.txt'], dest: '/x' }, 'invalid', /more than one source file/],
    ['ADD wording', { kind: 'add', sources: ['a.txt', 'b.txt'], dest: '/x' }, 'invalid', /When using ADD with more than one source file/],
  ];
  for (const [name, over, code, re] of cases) {
    test(name, async () => {
      const { target, req } = setup();
      await assert.rejects(copyInto(req(over)), isBuildError(code, re));
      assert.equal(existsSync(join(target, 'x')), false);
    });
  }

  test('--from roots: absolute paths are inside the root and ../ stays in it', async () => {
    const { target, req } = setup();
    const stage = tmp();
    files(stage, { 'usr/bin/tool': 'T' });
    await copyInto(req({ sourceRoot: stage, sourceIsContext: false, sources: ['/usr/bin/tool', '../../usr/bin/tool'], dest: '/bin/' }));
    assert.equal(readFileSync(join(target, 'bin', 'tool'), 'utf8'), 'T');
    await assert.rejects(copyInto(req({ sourceRoot: stage, sourceIsContext: false, sources: ['/nope'], dest: '/x' })), isBuildError('not-found', /nope/));
  });
});

describe('ADD archives', () => {
  const inner = () => rawTar([{ name: 'pkg/', type: 'dir', mode: 0o750 }, { name: 'pkg/bin', data: 'BIN', mode: 0o755 }, { name: 'pkg/l', type: 'symlink', linkname: 'bin' }]);
  const encoders: Array<[string, (b: Buffer) => Buffer]> = [
    ['tar', (b) => b],
    ['tar.gz', gzip],
    ['tar.bz2', (b) => spawnSync('bzip2', ['-c'], { input: b }).stdout],
    ['tar.xz', (b) => spawnSync('xz', ['-c'], { input: b }).stdout],
  ];
  for (const [ext, encode] of encoders) {
    test(`a local .${ext} is extracted into the destination directory`, async () => {
      const { ctx, target, req } = setup();
      writeFileSync(join(ctx, `a.${ext}`), encode(inner()));
      await copyInto(req({ kind: 'add', sources: [`a.${ext}`], dest: '/opt' }));
      assert.equal(readFileSync(join(target, 'opt', 'pkg', 'bin'), 'utf8'), 'BIN');
      assert.equal(statSync(join(target, 'opt', 'pkg', 'bin')).mode & 0o777, 0o755);
      assert.equal(readlinkSync(join(target, 'opt', 'pkg', 'l')), 'bin');
      // COPY never extracts
      await copyInto(req({ kind: 'copy', sources: [`a.${ext}`], dest: '/c/' }));
      assert.equal(lstatSync(join(target, 'c', `a.${ext}`)).isFile(), true);
    });
  }

  test('a .gz that is not a tar, and a file that only looks like one, are copied as they are', async () => {
    const { ctx, target, req } = setup();
    const gz = gzip(Buffer.from('just text'));
    writeFileSync(join(ctx, 'notes.gz'), gz);
    writeFileSync(join(ctx, 'fake.tar'), 'not a tar');
    await copyInto(req({ kind: 'add', sources: ['notes.gz', 'fake.tar'], dest: '/o/' }));
    assert.deepEqual(readFileSync(join(target, 'o', 'notes.gz')), gz);
    assert.equal(readFileSync(join(target, 'o', 'fake.tar'), 'utf8'), 'not a tar');
  });

  test('hostile archives are refused and write nothing outside the rootfs', async () => {
    const host = tmp();
    const bad: Array<[string, Buffer]> = [
      ['dot-dot', rawTar([{ name: '../../../../../../../..' + host + '/evil', data: 'x' }])],
      ['through a symlink', rawTar([{ name: 'l', type: 'symlink', linkname: host }, { name: 'l/evil', data: 'x' }])],
      ['hardlink out', rawTar([{ name: 'h', type: 'link', linkname: '../../../../../../../..' + host + '/victim' }])],
      ['hardlink through a symlink', rawTar([{ name: 'l', type: 'symlink', linkname: host }, { name: 'h', type: 'link', linkname: 'l/victim' }])],
    ];
    writeFileSync(join(host, 'victim'), 'v');
    for (const [what, data] of bad) {
      const { ctx, req } = setup();
      writeFileSync(join(ctx, 'bad.tar'), data);
      await copyInto(req({ kind: 'add', sources: ['bad.tar'], dest: '/x' })).catch((e: unknown) => assert.ok(e instanceof BuildError, what));
    }
    assert.equal(existsSync(join(host, 'evil')), false);
    assert.equal(readFileSync(join(host, 'victim'), 'utf8'), 'v');
    assert.equal(statSync(join(host, 'victim')).nlink, 1, 'no hard link to a host file');
  });
});

describe('ADD URLs', () => {
  let server: Server;
  let base = '';
  const body = Buffer.from('downloaded content\n');
  const digest = createHash('sha256').update(body).digest('hex');
  const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/missing') { res.writeHead(404); res.end(); return; }
      if (req.url === '/archive.tar.gz') { res.end(gzip(rawTar([{ name: 'in', data: 'x' }]))); return; }
      res.writeHead(200, { 'Last-Modified': lastModified });
      res.end(body);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  test('into a dir/: named after the URL path, mode 0600, mtime from Last-Modified, owner from --chown', async () => {
    const { target, req } = setup();
    await copyInto(req({ kind: 'add', sources: [`${base}/files/tool.sh?x=1`], dest: '/dl/', uid: 7, gid: 8 }));
    const p = join(target, 'dl', 'tool.sh');
    assert.deepEqual(readFileSync(p), body);
    const st = statSync(p);
    assert.equal(st.mode & 0o7777, 0o600);
    assert.equal(st.mtime.getTime(), Date.parse(lastModified));
    assert.deepEqual([st.uid, st.gid], [7, 8]);
  });

  test('to a file name; archives from URLs are not extracted', async () => {
    const { target, req } = setup();
    await copyInto(req({ kind: 'add', sources: [`${base}/archive.tar.gz`], dest: '/a.tgz' }));
    assert.equal(lstatSync(join(target, 'a.tgz')).isFile(), true);
  });

  test('--checksum verified; a mismatch and an HTTP error fail', async () => {
    const { target, req } = setup();
    await copyInto(req({ kind: 'add', sources: [`${base}/f`], dest: '/ok', checksum: `sha256:${digest}` }));
    assert.deepEqual(readFileSync(join(target, 'ok')), body);
    await assert.rejects(copyInto(req({ kind: 'add', sources: [`${base}/f`], dest: '/bad', checksum: `sha256:${'0'.repeat(64)}` })), isBuildError('failed', /checksum mismatch/));
    assert.equal(existsSync(join(target, 'bad')), false);
    await assert.rejects(copyInto(req({ kind: 'add', sources: [`${base}/missing`], dest: '/m' })), isBuildError('failed', /404/));
  });

  test('COPY does not download: a URL is a (missing) file name', async () => {
    const { req } = setup();
    await assert.rejects(copyInto(req({ kind: 'copy', sources: [`${base}/f`], dest: '/x' })), BuildError);
  });
});

describe('COPY heredocs', () => {
  test('the content is written under the heredoc name or the destination', async () => {
    const { target, req } = setup();
    await copyInto(req({ sources: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'hello\n' }], dest: '/h/' }));
    assert.equal(readFileSync(join(target, 'h', 'EOF'), 'utf8'), 'hello\n');
    await copyInto(req({ sources: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'x' }], dest: '/named', mode: 0o755 }));
    assert.equal(readFileSync(join(target, 'named'), 'utf8'), 'x');
    assert.equal(statSync(join(target, 'named')).mode & 0o777, 0o755);
  });
});
