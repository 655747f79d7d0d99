// `state <id>`: the OCI state JSON and its fields through the lifecycle.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { explain, pidAlive, waitFor, withBundle } from '../helpers/bundle.ts';

test('state JSON has ociVersion, id, status, pid, bundle and annotations', async () => {
  await withBundle({
    mutate: (s) => {
      s.root.readonly = false;
      s.process.args = ['sh', '-c', 'while [ ! -e /go ]; do sleep 0.05; done'];
      s.annotations = { 'org.berth.test': 'yes', 'com.example.empty': '' };
    },
  }, async (b) => {
    const id = b.newId();
    const c = await b.create(id);
    assert.equal(c.code, 0, explain(c));

    const r = await b.run(['state', id]);
    assert.equal(r.code, 0, explain(r));
    const st = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(typeof st.ociVersion, 'string');
    assert.match(st.ociVersion as string, /^\d+\.\d+\.\d+(-[\w.]+)?$/, 'ociVersion is SemVer');
    assert.equal(st.id, id);
    assert.equal(st.status, 'created');
    assert.equal(typeof st.pid, 'number');
    assert.ok(pidAlive(st.pid as number));
    assert.equal(st.bundle, b.dir, 'bundle is the absolute bundle path');
    assert.deepEqual(st.annotations, { 'org.berth.test': 'yes', 'com.example.empty': '' });

    assert.equal((await b.start(id)).code, 0);
    const running = await b.state(id);
    assert.equal(running.status, 'running');
    assert.equal(running.pid, st.pid, 'the pid does not change on start');
    assert.equal(running.id, id);
    assert.equal(running.bundle, b.dir);

    writeFileSync(join(b.rootfs, 'go'), '');
    await waitFor('stopped', async () => (await b.state(id)).status === 'stopped');
    const stopped = await b.state(id);
    assert.equal(stopped.id, id);
    assert.equal(stopped.bundle, b.dir);
    assert.equal((await b.delete(id)).code, 0);
  });
});

test('state reports "stopped" when the init was killed from outside the runtime', async () => {
  await withBundle({ mutate: (s) => { s.process.args = ['sleep', '1000']; } }, async (b) => {
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    const { pid } = await b.state(id);
    process.kill(pid!, 'SIGKILL');
    await waitFor('stopped', async () => (await b.state(id)).status === 'stopped');
    assert.equal((await b.delete(id)).code, 0, 'a stopped container deletes without --force');
  });
});

test('state with a relative bundle path reports it absolute', async () => {
  await withBundle({ mutate: (s) => { s.process.args = ['sleep', '1000']; } }, async (b) => {
    const id = b.newId();
    const r = await b.run(['create', '--bundle', 'bundle', id], { cwd: b.base });
    assert.equal(r.code, 0, explain(r));
    assert.equal((await b.state(id)).bundle, b.dir);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});
