// Mounts: bind ro/rw, recursive binds, tmpfs options, mount flags, propagation, root.readonly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { explain, mountAt, mountsUnder, parseMountInfo, waitFor, withBundle, type Bundle, type Spec } from '../helpers/bundle.ts';

/** Runs `script` then prints a separator and the container's mountinfo. */
async function runAndMountinfo(b: Bundle, script: string, mutate: Parameters<Bundle['exec']>[1]) {
  const r = await b.exec(`${script}\necho ===MOUNTINFO===; cat /proc/self/mountinfo`, mutate);
  const [out, mi = ''] = r.stdout.split('===MOUNTINFO===\n');
  return { r, out, mounts: parseMountInfo(mi) };
}

/** Mounts on the host for one test; everything is unmounted again by `release`. */
class HostMounts {
  private readonly points: string[] = [];
  mount(...args: string[]): void {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.points.push(args[args.length - 1]);
  }
  release(): void {
    for (const p of this.points.reverse()) {
      try { execFileSync('umount', ['-l', p], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  }
}

test('bind mount read-write: the container reads and writes the host directory', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data', 0o777);
    writeFileSync(join(data, 'hello'), 'from host\n');
    const { r, out, mounts } = await runAndMountinfo(b, 'cat /data/hello; echo from container > /data/new', (s) => {
      s.mounts.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] });
    });
    assert.equal(r.code, 0, explain(r));
    assert.equal(out, 'from host\n');
    assert.equal(readFileSync(join(data, 'new'), 'utf8'), 'from container\n');
    assert.ok(mountAt(mounts, '/data')?.options.includes('rw'));
  });
});

test('bind mount read-only: writes fail with EROFS and the mount is ro', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data', 0o777);
    writeFileSync(join(data, 'hello'), 'ro data\n');
    const { r, out, mounts } = await runAndMountinfo(b,
      'cat /data/hello; if echo x > /data/new; then echo WROTE; else echo DENIED; fi; touch /data/hello 2>&1 | grep -q "Read-only" && echo EROFS',
      (s) => { s.mounts.push({ destination: '/data', type: 'bind', source: data, options: ['bind', 'ro'] }); });
    assert.equal(r.code, 0, explain(r));
    assert.equal(out, 'ro data\nDENIED\nEROFS\n');
    assert.ok(!existsSync(join(data, 'new')));
    const m = mountAt(mounts, '/data');
    assert.ok(m, 'mounted at /data');
    assert.ok(m.options.includes('ro'), `ro in ${m.options}`);
  });
});

test('bind mount of a single file, with missing parent directories created', async () => {
  await withBundle({}, async (b) => {
    const file = join(b.scratch('files'), 'conf');
    writeFileSync(file, 'file content\n');
    const out = await b.output('cat /etc/deep/er/conf; ls -ld /etc/deep/er | cut -c1', (s) => {
      s.mounts.push({ destination: '/etc/deep/er/conf', type: 'bind', source: file, options: ['bind', 'ro'] });
    });
    assert.equal(out, 'file content\nd\n');
  });
});

test('tmpfs with size, mode and nosuid/nodev/noexec/noatime', async () => {
  await withBundle({}, async (b) => {
    const { r, out, mounts } = await runAndMountinfo(b, [
      'stat -c %a /scratch',
      // (busybox picks the applet from argv[0]: name the copy after one.)
      'cp /bin/busybox /scratch/true; if /scratch/true 2>/dev/null; then echo EXEC; else echo NOEXEC; fi',
      'cp /bin/busybox /exec/true; /exec/true && echo EXEC',
      'dd if=/dev/zero of=/scratch/fill bs=1024 count=4096 2>/dev/null && echo FITS || echo FULL',
    ].join('\n'), (s) => {
      s.mounts.push(
        { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'noatime', 'size=3m', 'mode=0710'] },
        { destination: '/exec', type: 'tmpfs', source: 'tmpfs', options: ['size=4m'] },
      );
    });
    assert.equal(r.code, 0, explain(r));
    assert.equal(out, '710\nNOEXEC\nEXEC\nFULL\n');
    const m = mountAt(mounts, '/scratch');
    assert.ok(m, 'tmpfs mounted');
    assert.equal(m.fstype, 'tmpfs');
    for (const flag of ['nosuid', 'nodev', 'noexec', 'noatime']) assert.ok(m.options.includes(flag), `${flag} in ${m.options}`);
    assert.ok(m.superOptions.includes('size=3072k'), `size in ${m.superOptions}`);
    assert.ok(m.superOptions.includes('mode=710'), `mode in ${m.superOptions}`);
    const e = mountAt(mounts, '/exec');
    assert.ok(e && !e.options.includes('noexec') && !e.options.includes('nosuid'));
  });
});

test('mounts apply in order: a later mount lands inside an earlier one', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data');
    writeFileSync(join(data, 'f'), 'inner\n');
    const out = await b.output('cat /outer/inner/f; grep -c " /outer" /proc/self/mountinfo', (s) => {
      s.mounts.push(
        { destination: '/outer', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] },
        { destination: '/outer/inner', type: 'bind', source: data, options: ['bind', 'ro'] },
      );
    });
    assert.equal(out, 'inner\n2\n');
  });
});

test('bind is not recursive, rbind is', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data');
    mkdirSync(join(data, 'sub'));
    const host = new HostMounts();
    try {
      host.mount('-t', 'tmpfs', '-o', 'size=1m', 'berth-sub', join(data, 'sub'));
      writeFileSync(join(data, 'sub', 'in-submount'), 'x');
      const out = await b.output('ls /plain/sub; echo --; ls /recursive/sub', (s) => {
        s.mounts.push(
          { destination: '/plain', type: 'bind', source: data, options: ['bind'] },
          { destination: '/recursive', type: 'bind', source: data, options: ['rbind'] },
        );
      });
      assert.equal(out, '--\nin-submount\n');
    } finally {
      host.release();
    }
  });
});

test('mount propagation: rslave receives host mounts, rprivate does not; mountinfo shows it', async () => {
  await withBundle({}, async (b) => {
    const shared = b.scratch('shared');
    const host = new HostMounts();
    try {
      // A shared mount on the host, so that propagation has something to carry.
      host.mount('--bind', shared, shared);
      host.mount('--make-shared', shared);
      const script = [
        'cat /proc/self/mountinfo > /dev/shm/mi',
        'touch /dev/shm/ready',
        'i=0; while [ $i -lt 60 ]; do if [ -e /m/sub/flag ]; then echo SEEN; break; fi; sleep 0.05; i=$((i+1)); done',
        '[ -e /m/sub/flag ] || echo NOT-SEEN',
        'grep " /m " /dev/shm/mi',
      ].join('\n');
      const results: Record<string, { out: string; optional: string[] }> = {};
      for (const prop of ['rslave', 'rprivate', 'rshared']) {
        b.writeConfig((s) => {
          s.process.args = ['sh', '-c', script];
          s.linux.rootfsPropagation = 'rslave';
          s.mounts = s.mounts.filter((m) => m.destination !== '/m');
          s.mounts.push({ destination: '/m', type: 'bind', source: shared, options: ['rbind', prop] });
        });
        const id = b.newId();
        const c = await b.create(id);
        assert.equal(c.code, 0, explain(c));
        const st = await b.state(id);
        assert.equal((await b.start(id)).code, 0);
        // /dev/shm is the container's own tmpfs: reach it through /proc/<pid>/root.
        await waitFor('the container to be ready', () => existsSync(`/proc/${st.pid}/root/dev/shm/ready`));
        const sub = join(shared, 'sub');
        mkdirSync(sub, { recursive: true });
        host.mount('-t', 'tmpfs', '-o', 'size=1m', 'berth-prop', sub);
        writeFileSync(join(sub, 'flag'), '');
        await waitFor('the container to finish', async () => (await b.state(id)).status === 'stopped');
        const out = readFileSync(c.stdoutPath, 'utf8');
        execFileSync('umount', [sub]);
        assert.equal((await b.delete(id)).code, 0);
        const line = out.split('\n').find((l) => l.includes(' /m '));
        results[prop] = { out, optional: line ? parseMountInfo(line)[0].optional : [] };
      }
      assert.match(results.rslave.out, /^SEEN$/m, `rslave: ${results.rslave.out}`);
      assert.ok(results.rslave.optional.some((o) => o.startsWith('master:')), `rslave mountinfo: ${results.rslave.optional}`);
      assert.ok(!results.rslave.optional.some((o) => o.startsWith('shared:')), `rslave mountinfo: ${results.rslave.optional}`);
      assert.match(results.rprivate.out, /^NOT-SEEN$/m, `rprivate: ${results.rprivate.out}`);
      assert.deepEqual(results.rprivate.optional, [], 'rprivate: no propagation fields');
      assert.match(results.rshared.out, /^SEEN$/m, `rshared: ${results.rshared.out}`);
      assert.ok(results.rshared.optional.some((o) => o.startsWith('shared:')), `rshared mountinfo: ${results.rshared.optional}`);
    } finally {
      host.release();
    }
    assert.deepEqual(mountsUnder(shared), [], 'nothing left mounted on the host');
  });
});

test('rro: rbind,rro makes the mount and every submount read-only; rbind,ro only the top one', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data');
    mkdirSync(join(data, 'sub'));
    const host = new HostMounts();
    try {
      host.mount('-t', 'tmpfs', '-o', 'size=1m', 'berth-sub', join(data, 'sub'));
      const probe = (d: string) => `for f in ${d}/top ${d}/sub/inner; do touch $f 2>/dev/null && echo "$f RW" || echo "$f RO"; done`;
      const out = await b.output([probe('/ro'), probe('/rro'), probe('/ro-rro'), probe('/rrw')].join('\n'), (s) => {
        s.mounts.push(
          { destination: '/ro', type: 'bind', source: data, options: ['rbind', 'ro'] },
          { destination: '/rro', type: 'bind', source: data, options: ['rbind', 'rro'] },
          { destination: '/ro-rro', type: 'bind', source: data, options: ['rbind', 'ro', 'rro'] },
          { destination: '/rrw', type: 'bind', source: data, options: ['rbind', 'rro', 'rrw'] },
        );
      });
      assert.equal(out, [
        '/ro/top RO', '/ro/sub/inner RW',
        '/rro/top RO', '/rro/sub/inner RO',
        '/ro-rro/top RO', '/ro-rro/sub/inner RO',
        '/rrw/top RW', '/rrw/sub/inner RW',
      ].join('\n') + '\n');
      // The host's mounts are untouched: still writable.
      writeFileSync(join(data, 'sub', 'after'), 'x');
    } finally {
      host.release();
    }
  });
});

test('recursive atime and nosuid/nodev/noexec options reach submounts (mount_setattr)', async () => {
  await withBundle({}, async (b) => {
    const data = b.scratch('data');
    mkdirSync(join(data, 'sub'));
    const host = new HostMounts();
    try {
      host.mount('-t', 'tmpfs', '-o', 'size=1m', 'berth-sub', join(data, 'sub'));
      const { r, mounts } = await runAndMountinfo(b, 'true', (s) => {
        s.mounts.push(
          { destination: '/a', type: 'bind', source: data, options: ['rbind', 'rnoatime', 'rnosuid', 'rnodev', 'rnoexec'] },
          { destination: '/b', type: 'bind', source: data, options: ['rbind', 'rstrictatime'] },
          { destination: '/c', type: 'bind', source: data, options: ['rbind', 'rnoatime', 'ratime'] },
        );
      });
      assert.equal(r.code, 0, explain(r));
      for (const p of ['/a', '/a/sub']) {
        const o = mountAt(mounts, p)?.options ?? [];
        for (const want of ['noatime', 'nosuid', 'nodev', 'noexec']) assert.ok(o.includes(want), `${p}: ${want} in ${o.join(',')}`);
      }
      for (const p of ['/b', '/b/sub']) {
        const o = mountAt(mounts, p)?.options ?? [];
        assert.ok(!o.includes('relatime') && !o.includes('noatime'), `${p}: strictatime (${o.join(',')})`);
      }
      // The last atime option wins; "ratime" selects relatime (as runc).
      for (const p of ['/c', '/c/sub']) assert.ok(mountAt(mounts, p)?.options.includes('relatime'), `${p}: relatime`);
    } finally {
      host.release();
    }
  });
});

test('root.readonly without a mount namespace: the container\'s root is ro, the host\'s rootfs stays writable', async () => {
  await withBundle({}, async (b) => {
    const noMountNs = (s: Spec) => {
      s.root.readonly = true;
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'mount');
      s.linux.maskedPaths = [];
      s.linux.readonlyPaths = [];
    };
    const r = await b.exec('touch /x 2>/dev/null && echo WROTE || echo DENIED; touch /dev/shm/y && echo SHM', noMountNs);
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.stdout, 'DENIED\nSHM\n');
    assert.ok(!existsSync(join(b.rootfs, 'x')));
    writeFileSync(join(b.rootfs, 'host-wrote'), 'x');   // the host's filesystem was not remounted
    assert.deepEqual(mountsUnder(b.rootfs), [], 'delete removed every mount, the rootfs bind included');
  });
});

test('root.readonly: the root is ro, mounts on top stay writable', async () => {
  await withBundle({}, async (b) => {
    const { r, out, mounts } = await runAndMountinfo(b,
      'touch /x 2>/dev/null && echo WROTE || echo DENIED; touch /tmp/x 2>/dev/null && echo WROTE || echo DENIED; touch /dev/shm/x && echo SHM',
      (s) => { s.root.readonly = true; });
    assert.equal(r.code, 0, explain(r));
    assert.equal(out, 'DENIED\nDENIED\nSHM\n');
    assert.ok(mountAt(mounts, '/')?.options.includes('ro'), 'the root mount is ro');
    assert.ok(!existsSync(join(b.rootfs, 'x')));
  });
});

test('root.readonly false: the root is writable', async () => {
  await withBundle({}, async (b) => {
    const { r, out, mounts } = await runAndMountinfo(b, 'echo hi > /x && echo WROTE', (s) => { s.root.readonly = false; });
    assert.equal(r.code, 0, explain(r));
    assert.equal(out, 'WROTE\n');
    assert.equal(readFileSync(join(b.rootfs, 'x'), 'utf8'), 'hi\n');
    assert.ok(mountAt(mounts, '/')?.options.includes('rw'));
  });
});

test('the container sees only its own mounts, and the host sees none of them', async () => {
  await withBundle({}, async (b) => {
    const { r, mounts } = await runAndMountinfo(b, 'true', (s) => {
      s.mounts.push({ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
    });
    assert.equal(r.code, 0, explain(r));
    assert.ok(!mounts.some((m) => m.mountPoint.startsWith(b.base)), 'no host paths are mount points inside');
    assert.deepEqual(mountsUnder(b.base), [], 'no mount leaks into the host mount namespace');
    const points = mounts.map((m) => m.mountPoint);
    for (const p of ['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/t']) assert.ok(points.includes(p), `${p} mounted`);
    assert.equal(mountAt(mounts, '/proc')?.fstype, 'proc');
    assert.equal(mountAt(mounts, '/dev/pts')?.fstype, 'devpts');
    assert.equal(mountAt(mounts, '/dev/mqueue')?.fstype, 'mqueue');
    assert.equal(mountAt(mounts, '/sys')?.fstype, 'sysfs');
    assert.ok(mountAt(mounts, '/sys')?.options.includes('ro'));
  });
});

test('the cgroup mount is read-only inside', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('mkdir /sys/fs/cgroup/x 2>/dev/null && echo MADE || echo DENIED; for d in /sys/fs/cgroup/*/; do mkdir "${d}berth-x" 2>/dev/null && echo "MADE $d" && rmdir "${d}berth-x"; done; echo done');
    assert.equal(out, 'DENIED\ndone\n');
  });
});
