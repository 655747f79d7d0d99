// Namespaces: new ones differ from the host's, omitted ones are shared, paths are joined,
// user namespaces map ids.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { explain, hostNs, waitFor, withBundle } from '../helpers/bundle.ts';

const KINDS: Record<string, string> = { pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mnt', cgroup: 'cgroup', user: 'user' };
const NS_SCRIPT = 'for n in pid net ipc uts mnt cgroup user; do echo "$n $(readlink /proc/self/ns/$n)"; done';

function parseNs(out: string): Record<string, string> {
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

test('each requested namespace is new; user stays the host\'s when not requested', async () => {
  await withBundle({}, async (b) => {
    const ns = parseNs(await b.output(NS_SCRIPT));
    for (const type of ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup']) {
      const kind = KINDS[type];
      assert.match(ns[kind], new RegExp(`^${kind}:\\[\\d+\\]$`));
      assert.notEqual(ns[kind], hostNs(kind), `${type} namespace must be new`);
    }
    assert.equal(ns.user, hostNs('user'), 'no user namespace was requested');
  });
});

test('namespaces left out of the config are shared with the host', async () => {
  await withBundle({}, async (b) => {
    const ns = parseNs(await b.output(NS_SCRIPT, (s) => {
      s.linux.namespaces = [{ type: 'mount' }];
      delete s.hostname;
      // Without a new network namespace sysfs cannot be mounted by a non-init-ns owner in
      // every runtime; keep the host's /sys out of the picture.
      s.mounts = s.mounts.filter((m) => !m.destination.startsWith('/sys'));
      s.linux.maskedPaths = s.linux.maskedPaths?.filter((p) => !p.startsWith('/sys'));
    }));
    for (const kind of ['pid', 'net', 'ipc', 'uts', 'cgroup', 'user']) assert.equal(ns[kind], hostNs(kind), `${kind} shared with the host`);
    assert.notEqual(ns.mnt, hostNs('mnt'));
  });
});

test('the init is pid 1 of its pid namespace and sees only its own processes', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('echo $$; ls -d /proc/[0-9]* | wc -l');
    const [pid, count] = out.trim().split('\n');
    assert.equal(pid, '1');
    assert.ok(Number(count) <= 3, `only a few processes visible, got ${count}`);
  });
});

test('a cgroup namespace roots the container\'s cgroup paths at /', async () => {
  await withBundle({}, async (b) => {
    const out = await b.output('cat /proc/self/cgroup');
    for (const line of out.trim().split('\n')) assert.match(line, /:\/$/, `cgroup path inside the namespace: ${line}`);
  });
});

test('joining an existing network namespace by path', async () => {
  const name = `berth-test-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  try {
    // Something to recognise the namespace by from inside.
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'mtu', '1234']);
    const path = `/run/netns/${name}`;
    const inode = statSync(path).ino;
    await withBundle({}, async (b) => {
      const out = await b.output('readlink /proc/self/ns/net; cat /sys/class/net/lo/mtu', (s) => {
        s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path } : n));
      });
      const [link, mtu] = out.trim().split('\n');
      assert.equal(link, `net:[${inode}]`, 'the container is in the named network namespace');
      assert.equal(mtu, '1234', 'and sees its interfaces');
    });
  } finally {
    execFileSync('ip', ['netns', 'delete', name]);
  }
});

test('joining another container\'s uts and ipc namespaces by path', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => {
      s.hostname = 'first-box';
      s.process.args = ['sleep', '1000'];
    });
    const first = b.newId();
    assert.equal((await b.create(first)).code, 0);
    const { pid } = await b.state(first);
    const firstUts = execFileSync('readlink', [`/proc/${pid}/ns/uts`], { encoding: 'utf8' }).trim();
    const firstIpc = execFileSync('readlink', [`/proc/${pid}/ns/ipc`], { encoding: 'utf8' }).trim();
    const out = await b.output('hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc', (s) => {
      delete s.hostname;
      s.linux.namespaces = s.linux.namespaces.map((n) => {
        if (n.type === 'uts') return { type: 'uts', path: `/proc/${pid}/ns/uts` };
        if (n.type === 'ipc') return { type: 'ipc', path: `/proc/${pid}/ns/ipc` };
        return n;
      });
    });
    assert.equal(out, `first-box\n${firstUts}\n${firstIpc}\n`);
    assert.equal((await b.delete(first, true)).code, 0);
  });
});

test('a namespace path that is not a namespace of that type fails', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec('true', (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: '/proc/self/ns/uts' } : n));
    });
    assert.notEqual(r.code, 0, explain(r));
    const missing = await b.exec('true', (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: '/run/netns/berth-does-not-exist' } : n));
    });
    assert.notEqual(missing.code, 0, explain(missing));
    assert.ok(missing.stderr.trim().length > 0);
  });
});

// In a user namespace the container's root is not the host's root: mount points are made
// beforehand (rootfs/shared), since creating them needs host-root access to the rootfs.
const withMountPoint = { populate: (rootfs: string) => mkdirSync(join(rootfs, 'shared')) };

test('user namespace: uid/gid maps, root inside, ownership seen through the mapping', async () => {
  await withBundle(withMountPoint, async (b) => {
    const shared = b.scratch('shared', 0o777);
    writeFileSync(join(shared, 'host-owned'), '');
    execFileSync('chown', ['100005:100007', join(shared, 'host-owned')]);
    const out = await b.output([
      'cat /proc/self/uid_map /proc/self/gid_map',
      'id -u; id -g',
      'readlink /proc/self/ns/user',
      'stat -c "%u %g" /shared/host-owned',
      'stat -c "%u %g" /bin/busybox',
      'echo hi > /shared/by-container',
      'chown 3:4 /shared/by-container && echo CHOWNED',
    ].join('\n'), (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] });
      s.process.capabilities = { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] };
    });
    const lines = out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.deepEqual(lines.slice(0, 2), ['0 100000 65536', '0 100000 65536']);
    assert.deepEqual(lines.slice(2, 4), ['0', '0']);
    assert.notEqual(lines[4], hostNs('user'), 'a new user namespace');
    assert.equal(lines[5], '5 7', 'host 100005:100007 is 5:7 inside');
    assert.equal(lines[6], '65534 65534', 'unmapped host root shows as the overflow id');
    assert.equal(lines[7], 'CHOWNED');
    const st = statSync(join(shared, 'by-container'));
    assert.deepEqual([st.uid, st.gid], [100003, 100004], 'container 3:4 is host 100003:100004');
  });
});

test('user namespace with a non-root process user', async () => {
  await withBundle(withMountPoint, async (b) => {
    const shared = b.scratch('shared', 0o777);
    const out = await b.output('id -u; id -g; touch /shared/f', (s) => {
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 2000 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 2000 }];
      s.process.user = { uid: 1000, gid: 1000 };
      s.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] });
    });
    assert.equal(out, '1000\n1000\n');
    const st = statSync(join(shared, 'f'));
    assert.deepEqual([st.uid, st.gid], [201000, 201000]);
  });
});

test('a process in the container can be waited for from the host through its pid', async () => {
  // The pid in `state` is the host pid: /proc/<pid>/ns/pid differs from ours.
  await withBundle({ mutate: (s) => { s.process.args = ['sleep', '1000']; } }, async (b) => {
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    const { pid } = await b.state(id);
    await waitFor('the init to exist', () => execFileSync('readlink', [`/proc/${pid}/ns/pid`], { encoding: 'utf8' }).trim());
    const ns = execFileSync('readlink', [`/proc/${pid}/ns/pid`], { encoding: 'utf8' }).trim();
    assert.notEqual(ns, hostNs('pid'));
    assert.equal((await b.delete(id, true)).code, 0);
  });
});
