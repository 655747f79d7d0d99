// Security properties: no host fd leaks into the container, --preserve-fds passes exactly what
// it says, symlinked mount destinations and cwd stay inside the rootfs, the state root is private.
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deviation, explain, mountsUnder, waitFor, withBundle, type Bundle } from '../helpers/bundle.ts';

/** Parses `ls -l /proc/self/fd` into fd → link target. */
function parseFds(out: string): Map<number, string> {
  const fds = new Map<number, string>();
  for (const line of out.split('\n')) {
    const m = /\s(\d+) -> (.*)$/.exec(line);
    if (m) fds.set(Number(m[1]), m[2]);
  }
  return fds;
}

/** Asserts only 0, 1, 2 (and ls's own directory fd) are open. */
function assertOnlyStdio(fds: Map<number, string>, context: string): void {
  assert.ok(fds.has(0) && fds.has(1) && fds.has(2), `${context}: stdio open: ${[...fds.keys()]}`);
  for (const [fd, target] of fds) {
    if (fd <= 2) continue;
    assert.match(target, /^\/proc\/\d+\/fd$/, `${context}: unexpected fd ${fd} -> ${target}`);
  }
}

test('no fd of the runtime\'s caller leaks into the container (run)', async () => {
  await withBundle({}, async (b) => {
    const secret = join(b.scratch('host'), 'secret');
    writeFileSync(secret, 'host secret\n');
    const fd = openSync(secret, 'r');
    try {
      const r = await b.exec('ls -l /proc/self/fd', undefined, { extraFds: [null, null, fd, fd] });
      assert.equal(r.code, 0, explain(r));
      const fds = parseFds(r.stdout);
      assertOnlyStdio(fds, 'run');
      assert.ok(!r.stdout.includes(secret), 'the host file is not reachable through an fd');
    } finally {
      closeSync(fd);
    }
  });
});

test('no fd of the runtime\'s caller leaks into the container (create + start)', async () => {
  await withBundle({}, async (b) => {
    const secret = join(b.scratch('host'), 'secret');
    writeFileSync(secret, 'host secret\n');
    const fd = openSync(secret, 'r');
    try {
      b.writeConfig((s) => { s.process.args = ['sh', '-c', 'ls -l /proc/self/fd; ls -l /proc/1/fd']; });
      const id = b.newId();
      const c = await b.create(id, [], { extraFds: [fd, null, fd] });
      assert.equal(c.code, 0, explain(c));
      assert.equal((await b.start(id, { extraFds: [fd, fd, fd] })).code, 0);
      await waitFor('stopped', async () => (await b.state(id)).status === 'stopped');
      const out = c.readStdout();
      const [self, init] = out.split(/\n(?=total)/);
      assertOnlyStdio(parseFds(self), 'ls in the container');
      const initFds = parseFds(init ?? '');
      for (const [n, target] of initFds) assert.ok(n <= 2, `init (sh) has fd ${n} -> ${target}`);
      assert.ok(!out.includes(secret));
      assert.equal((await b.delete(id)).code, 0);
    } finally {
      closeSync(fd);
    }
  });
});

test('--preserve-fds passes exactly the first N extra fds', async () => {
  await withBundle({}, async (b) => {
    const dir = b.scratch('host');
    writeFileSync(join(dir, 'three'), 'fd three\n');
    writeFileSync(join(dir, 'four'), 'fd four\n');
    const three = openSync(join(dir, 'three'), 'r');
    const four = openSync(join(dir, 'four'), 'r');
    try {
      b.writeConfig((s) => { s.process.args = ['sh', '-c', 'cat <&3; ls -l /proc/self/fd']; });
      const r = await b.runContainer(b.newId(), ['--preserve-fds', '1'], { extraFds: [three, four] });
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /^fd three$/m);
      const fds = parseFds(r.stdout);
      assert.match(fds.get(3) ?? '', /\/three$/, 'fd 3 is preserved');
      for (const [n, target] of fds) {
        if (n <= 3) continue;
        assert.match(target, /^\/proc\/\d+\/fd$/, `fd ${n} -> ${target} must not be passed`);
      }
    } finally {
      closeSync(three);
      closeSync(four);
    }
  });
});

/** rootfs/<name> → an absolute or relative symlink to a host directory outside the rootfs. */
function escapeLink(b: Bundle, name: string, hostDir: string, kind: 'absolute' | 'relative'): void {
  const target = kind === 'absolute' ? hostDir : join('../'.repeat(12), hostDir);
  symlinkSync(target, join(b.rootfs, name));
}

for (const kind of ['absolute', 'relative'] as const) {
  test(`a mount destination through an ${kind} symlink stays inside the rootfs`, async () => {
    await withBundle({}, async (b) => {
      const hostDir = b.scratch('host-target');
      const hostDir2 = b.scratch('host-target2');
      const source = b.scratch('source');
      writeFileSync(join(source, 'marker'), 'from source\n');
      escapeLink(b, 'evil', hostDir, kind);
      escapeLink(b, 'evil2', hostDir2, kind);
      const r = await b.exec('cat /evil/sub/deeper/marker; echo pwned > /evil2/pwned; echo pwned > /evil/sub/deeper/pwned; true', (s) => {
        s.mounts.push(
          { destination: '/evil/sub/deeper', type: 'bind', source, options: ['bind'] },
          { destination: '/evil2', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        );
      });
      assert.deepEqual(readdirSync(hostDir), [], `the host directory the symlink points to is untouched (${explain(r)})`);
      assert.deepEqual(readdirSync(hostDir2), [], `the host directory the symlink points to is untouched (${explain(r)})`);
      assert.deepEqual(mountsUnder(b.base), [], 'nothing mounted on the host');
      if (r.code === 0) {
        // The runtime resolved the symlink inside the rootfs: the mount is visible in the container.
        assert.match(r.stdout, /^from source$/m, explain(r));
        const inRoot = join(b.rootfs, hostDir);
        assert.ok(statSync(join(inRoot, 'sub', 'deeper')).isDirectory(), 'the mount point was created under the rootfs');
      } else {
        assert.ok(r.stderr.trim().length > 0, 'refusing is fine too, with a message');
      }
    });
  });
}

test('cwd cannot leave the rootfs: ".." and symlinks resolve inside it', async () => {
  await withBundle({
    populate: (rootfs) => writeFileSync(join(rootfs, 'tmp', 'rootfs-tmp-marker'), ''),
  }, async (b) => {
    const hostDir = b.scratch('host-target');
    writeFileSync(join(hostDir, 'HOST_MARKER'), '');
    const dotdot = await b.exec('pwd; ls', (s) => { s.process.cwd = '/../../../../../../../../tmp'; });
    assert.equal(dotdot.code, 0, explain(dotdot));
    assert.match(dotdot.stdout, /rootfs-tmp-marker/, 'cwd is the rootfs /tmp');

    escapeLink(b, 'cwdlink', hostDir, 'absolute');
    const viaLink = await b.exec('pwd -P; ls -a', (s) => { s.process.cwd = '/cwdlink'; s.root.readonly = false; });
    assert.ok(!viaLink.stdout.includes('HOST_MARKER'), `the host directory is not the cwd: ${explain(viaLink)}`);
    assert.deepEqual(readdirSync(hostDir), ['HOST_MARKER'], 'the host directory is untouched');
    if (viaLink.code !== 0) assert.ok(viaLink.stderr.trim().length > 0);
  });
});

test('the state root is not writable by other users', async () => {
  await withBundle({ mutate: (s) => { s.process.args = ['sleep', '1000']; } }, async (b) => {
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    const mode = statSync(b.root).mode & 0o777;
    assert.equal(mode & 0o022, 0, `state root mode ${mode.toString(8)}`);
    const entry = statSync(join(b.root, id)).mode & 0o777;
    assert.equal(entry & 0o022, 0, `state dir mode ${entry.toString(8)}`);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('the runtime code running in the container cannot be overwritten from inside (CVE-2019-5736 class)', {
  // runc 1.1 protects itself differently (its init's exe is not an unlinked copy), so the nlink
  // check below is Berth's mechanism rather than a spec requirement.
  todo: deviation(['runc'], 'runc 1.1 protects runc init by other means than an unlinked sealed copy'),
}, async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    // Until start, the container's init is still the runtime's own code.
    const { pid } = await b.state(id);
    assert.ok(pid && pid > 0);
    // It must not be a file on any filesystem (a sealed memfd copy has no links): otherwise a
    // process in the container could reopen it for writing once the runtime has exec'd.
    assert.equal(statSync(`/proc/${pid}/exe`).nlink, 0, `the init runs an executable that is linked on disk (${readlinkSync(`/proc/${pid}/exe`)})`);
    // Even root on the host cannot write through /proc/<pid>/exe.
    let wrote = false;
    try {
      closeSync(openSync(`/proc/${pid}/exe`, 'r+'));
      wrote = true;
    } catch (err) {
      assert.ok(['ETXTBSY', 'EPERM', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? ''), `open /proc/${pid}/exe: ${(err as Error).message}`);
    }
    assert.equal(wrote, false, 'the init\'s executable must not be writable');
    // From inside: a process exec'd into the container sees the init as pid 1 and tries the same.
    const r = await b.run(['exec', id, 'sh', '-c', 'echo pwned > /proc/1/exe && echo WROTE; exit 0']);
    assert.doesNotMatch(r.stdout, /WROTE/, `the container overwrote its init's executable: ${explain(r)}`);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('--no-pivot: the host\'s full /proc is hidden, so no unmasked procfs can be mounted inside (as runc)', async () => {
  await withBundle({}, async (b) => {
    // A user namespace of its own lets the container mount procfs wherever the kernel finds a fully
    // visible one in the mount namespace: with --no-pivot the host's would still be there, below.
    b.writeConfig((s) => {
      s.process.args = ['unshare', '-mrpf', 'sh', '-c', 'mount -t proc none /proc && echo MOUNTED'];
      for (const set of ['bounding', 'permitted', 'effective'] as const) s.process.capabilities![set]!.push('CAP_SETFCAP');
    });
    const id = b.newId('nopiv');
    const res = await b.runContainer(id, ['--no-pivot']);
    assert.doesNotMatch(res.stdout, /MOUNTED/, `procfs was mountable: ${explain(res)}`);
    assert.match(res.stderr, /[Pp]ermission denied|Operation not permitted/, explain(res));
    // The same in a pivoted container, for comparison: its masked /proc is the only one there.
    const pivoted = await b.runContainer(b.newId('piv'));
    assert.doesNotMatch(pivoted.stdout, /MOUNTED/, explain(pivoted));
  });
});

test('procfs is never mounted through a symlink (a /proc pointing elsewhere would dodge the masks)', async () => {
  await withBundle({}, async (b) => {
    rmSync(join(b.rootfs, 'proc'), { recursive: true, force: true });
    mkdirSync(join(b.rootfs, 'elsewhere'));
    symlinkSync('/elsewhere', join(b.rootfs, 'proc'));
    const r = await b.exec(['true']);
    assert.notEqual(r.code, 0, `a symlinked /proc must be refused: ${explain(r)}`);
    assert.ok(r.stderr.trim().length > 0, 'with a message');
    assert.deepEqual(readdirSync(join(b.rootfs, 'elsewhere')), [], 'nothing was mounted or created behind the symlink');
  });
});
