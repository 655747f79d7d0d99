// Malformed or unsatisfiable configurations: create fails with a clear message and leaves no
// state entry, no process and no cgroup behind.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { deviation, explain, findCgroupDirs, withBundle, type Bundle, type RunResult, type Spec } from '../helpers/bundle.ts';

/** Runs create and checks that it failed cleanly; returns the result for message checks. */
async function createFails(b: Bundle, id = b.newId()): Promise<RunResult> {
  const r = await b.create(id, [], { timeoutMs: 15000 });
  assert.notEqual(r.code, 0, `create must fail: ${explain(r)}`);
  assert.ok(r.code !== null, 'the runtime exits by itself');
  assert.ok(r.stderr.trim().length > 0, 'with a message on stderr');
  assert.notEqual((await b.run(['state', id])).code, 0, 'no container state remains');
  assert.ok(!existsSync(join(b.root, id)), 'no state directory entry remains');
  const list = await b.run(['list', '--format', 'json']);
  assert.equal(list.code, 0, explain(list));
  assert.ok(!list.stdout.includes(id), 'the container is not listed');
  assert.deepEqual(findCgroupDirs([id]), [], 'no cgroup remains');
  return r;
}

function withConfig(mutate: (s: Spec) => void): (b: Bundle) => void {
  return (b) => b.writeConfig(mutate);
}

test('config.json that is not valid JSON', async () => {
  await withBundle({}, async (b) => {
    writeFileSync(join(b.dir, 'config.json'), '{ "ociVersion": "1.0.2", "process": ');
    const r = await createFails(b);
    assert.match(r.stderr, /json|parse|config|syntax|unexpected|EOF/i);
  });
});

test('missing config.json', async () => {
  await withBundle({}, async (b) => {
    rmSync(join(b.dir, 'config.json'));
    const r = await createFails(b);
    assert.match(r.stderr, /config\.json|no such file/i);
  });
});

test('missing root.path', {
  todo: deviation(['runc'], 'runc 1.1 does not check root.path: it uses the bundle directory as the rootfs and fails later on an unrelated error'),
}, async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { delete (s.root as { path?: string }).path; })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /root/i);
  });
});

test('root.path that does not exist', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.root.path = 'no-such-rootfs'; })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /no-such-rootfs|no such file|rootfs/i);
  });
});

test('unknown capability CAP_FOO', {
  todo: deviation(['runc', 'crun'], 'runc 1.1 and crun 1.8 only warn about unknown capabilities (the spec says they MUST error)'),
}, async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.process.capabilities!.bounding = ['CAP_KILL', 'CAP_FOO']; })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /CAP_FOO/);
  });
});

test('unknown namespace type', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.linux.namespaces.push({ type: 'foo' }); })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /foo/);
  });
});

test('the same namespace type twice', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.linux.namespaces.push({ type: 'pid' }); })(b);
    await createFails(b);
  });
});

test('unknown rlimit type', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.process.rlimits = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]; })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /RLIMIT_FOO/);
  });
});

test('a relative process.cwd', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.process.cwd = 'relative/dir'; })(b);
    await createFails(b);
  });
});

test('a mount of an unknown filesystem type', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.mounts.push({ destination: '/x', type: 'berthfs-nonexistent', source: 'none' }); })(b);
    await createFails(b);
  });
});

test('a bind mount whose source does not exist', async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.mounts.push({ destination: '/x', type: 'bind', source: join(b.base, 'missing'), options: ['bind'] }); })(b);
    await createFails(b);
  });
});

test('invalid container ids are refused and create nothing outside the state root', async () => {
  await withBundle({}, async (b) => {
    for (const id of ['../escape', 'a/b', '']) {
      const r = await b.run(['create', '--bundle', b.dir, id]);
      assert.notEqual(r.code, 0, `id "${id}" must be refused`);
      assert.ok(r.stderr.trim().length > 0);
    }
    assert.ok(!existsSync(join(b.base, 'escape')), 'nothing created next to the state root');
    assert.deepEqual(existsSync(b.root) ? readdirSync(b.root) : [], [], 'no state entries');
  });
});

test('a process that cannot be executed fails create or start, with a message', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['/etc/passwd']; });
    const id = b.newId();
    const c = await b.create(id);
    if (c.code === 0) {
      // runc reports exec failures at start.
      const s = await b.start(id);
      assert.notEqual(s.code, 0, `start must fail: ${explain(s)}`);
      assert.ok(s.stderr.trim().length > 0);
    } else {
      assert.ok(c.stderr.trim().length > 0);
    }
  });
});

test('an SELinux process label on a host without SELinux is an error', {
  skip: existsSync('/sys/fs/selinux/enforce') ? 'this host has SELinux' : false,
}, async () => {
  await withBundle({}, async (b) => {
    withConfig((s) => { s.process.selinuxLabel = 'system_u:system_r:container_t:s0'; })(b);
    const r = await createFails(b);
    assert.match(r.stderr, /selinux/i);
  });
});

test('an SELinux mount label on a host without SELinux is ignored with a warning, as runc and crun do', {
  skip: existsSync('/sys/fs/selinux/enforce') ? 'this host has SELinux' : false,
}, async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec(['echo', 'labelled'], (s) => { s.linux.mountLabel = 'system_u:object_r:container_file_t:s0'; });
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /labelled/);
    if (!deviation(['runc', 'crun'], 'x')) assert.match(r.stderr, /mountLabel.*ignored/);
  });
});
