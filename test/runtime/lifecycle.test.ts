// Lifecycle through the CLI: create, start, state, kill, delete, run, list, --pid-file, spec.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type Spec, cgroupDirsOf, explain, findCgroupDirs, makeRootfs, pidAlive, runRuntime, waitFor, withBundle, type Bundle,
} from '../helpers/bundle.ts';

const writable = { mutate: (s: Spec) => { s.root.readonly = false; } };

async function waitStatus(b: Bundle, id: string, status: string, timeoutMs = 10000): Promise<void> {
  await waitFor(`container ${id} to be ${status}`, async () => (await b.state(id)).status === status, timeoutMs);
}

test('create leaves the process waiting; start runs it; it stops; delete removes everything', async () => {
  await withBundle(writable, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'echo ran > /ran; sleep 0.3']; });
    const id = b.newId();
    const c = await b.create(id);
    assert.equal(c.code, 0, explain(c));

    const st = await b.state(id);
    assert.equal(st.status, 'created');
    assert.equal(typeof st.pid, 'number');
    assert.ok(st.pid! > 0 && pidAlive(st.pid!), `the init process ${st.pid} exists after create`);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!existsSync(join(b.rootfs, 'ran')), 'the user process must not run before start');
    const cgroups = cgroupDirsOf(st.pid!);

    const s = await b.start(id);
    assert.equal(s.code, 0, explain(s));
    await waitFor('the process to write /ran', () => existsSync(join(b.rootfs, 'ran')));
    assert.equal(readFileSync(join(b.rootfs, 'ran'), 'utf8'), 'ran\n');
    const running = await b.state(id);
    assert.ok(['running', 'stopped'].includes(running.status), running.status);
    await waitStatus(b, id, 'stopped');

    const d = await b.delete(id);
    assert.equal(d.code, 0, explain(d));
    const gone = await b.run(['state', id]);
    assert.notEqual(gone.code, 0, 'state of a deleted container fails');
    assert.ok(!existsSync(join(b.root, id)), 'the state directory is removed');
    assert.ok(!pidAlive(st.pid!), 'the init process is gone');
    for (const dir of cgroups) assert.ok(!existsSync(dir), `cgroup ${dir} is removed on delete`);
    assert.deepEqual(findCgroupDirs([id]), [], 'no cgroup named after the container remains');
  });
});

test('state is "running" while the process runs, "stopped" after it exits', async () => {
  await withBundle(writable, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'while [ ! -e /go ]; do sleep 0.05; done']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    const st = await b.state(id);
    assert.equal(st.status, 'running');
    assert.ok(pidAlive(st.pid!));
    writeFileSync(join(b.rootfs, 'go'), '');
    await waitStatus(b, id, 'stopped');
    assert.equal((await b.delete(id)).code, 0);
  });
});

test('kill by signal name delivers the signal to the init process', async () => {
  await withBundle(writable, async (b) => {
    b.writeConfig((s) => {
      s.process.args = ['sh', '-c', 'trap "echo TERM > /sig; exit 3" TERM; trap "echo USR1 >> /sig1" USR1; echo ready > /ready; while :; do sleep 0.05; done'];
    });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    await waitFor('the traps to be set', () => existsSync(join(b.rootfs, 'ready')));

    const usr1 = await b.run(['kill', id, 'SIGUSR1']);
    assert.equal(usr1.code, 0, explain(usr1));
    await waitFor('SIGUSR1 to arrive', () => existsSync(join(b.rootfs, 'sig1')));
    assert.equal((await b.state(id)).status, 'running', 'SIGUSR1 (trapped) does not stop it');

    const term = await b.run(['kill', id, 'TERM']);
    assert.equal(term.code, 0, explain(term));
    await waitFor('SIGTERM to arrive', () => existsSync(join(b.rootfs, 'sig')));
    assert.equal(readFileSync(join(b.rootfs, 'sig'), 'utf8'), 'TERM\n');
    await waitStatus(b, id, 'stopped');
    assert.equal((await b.delete(id)).code, 0);
  });
});

test('kill by signal number; kill of a stopped container fails', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    const { pid } = await b.state(id);
    const k = await b.run(['kill', id, '9']);
    assert.equal(k.code, 0, explain(k));
    await waitStatus(b, id, 'stopped');
    assert.ok(!pidAlive(pid!));
    const again = await b.run(['kill', id, '9']);
    assert.notEqual(again.code, 0, 'signalling a stopped container is an error');
    assert.ok(again.stderr.trim().length > 0, 'with a message');
    assert.equal((await b.delete(id)).code, 0);
  });
});

test('kill with no signal sends SIGTERM', async () => {
  await withBundle(writable, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'trap "echo TERM > /sig; exit 0" TERM; touch /ready; while :; do sleep 0.05; done']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    await waitFor('ready', () => existsSync(join(b.rootfs, 'ready')));
    const k = await b.run(['kill', id]);
    assert.equal(k.code, 0, explain(k));
    await waitFor('SIGTERM to arrive', () => existsSync(join(b.rootfs, 'sig')));
    await waitStatus(b, id, 'stopped');
  });
});

test('start twice fails with a message', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    const again = await b.start(id);
    assert.notEqual(again.code, 0, 'second start must fail');
    assert.ok(again.stderr.trim().length > 0, 'with a message on stderr');
    assert.equal((await b.state(id)).status, 'running', 'the container is unaffected');
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('delete of a running container fails without --force; --force kills and removes it', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    assert.equal((await b.start(id)).code, 0);
    const { pid } = await b.state(id);
    const d = await b.delete(id);
    assert.notEqual(d.code, 0, 'delete of a running container must fail');
    assert.ok(d.stderr.trim().length > 0, 'with a message');
    const st = await b.state(id);
    assert.equal(st.status, 'running', 'and leave it running');
    assert.ok(pidAlive(pid!));
    const f = await b.delete(id, true);
    assert.equal(f.code, 0, explain(f));
    assert.ok(!pidAlive(pid!), 'the process is killed');
    assert.notEqual((await b.run(['state', id])).code, 0);
  });
});

test('delete --force of a created (never started) container', async () => {
  await withBundle(writable, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'touch /ran']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    const { pid } = await b.state(id);
    const f = await b.delete(id, true);
    assert.equal(f.code, 0, explain(f));
    assert.ok(!pidAlive(pid!));
    assert.ok(!existsSync(join(b.rootfs, 'ran')), 'the user process never ran');
    assert.ok(!existsSync(join(b.root, id)));
  });
});

test('operations on an unknown id fail with a message', async () => {
  await withBundle({}, async (b) => {
    const id = 'no-such-container';
    for (const args of [['state', id], ['start', id], ['kill', id, 'KILL'], ['delete', id]]) {
      const r = await b.run(args);
      assert.notEqual(r.code, 0, `${args[0]} of an unknown id must fail`);
      assert.match(r.stderr, /no-such-container|not exist|not found/i, `${args[0]}: message: ${r.stderr}`);
    }
  });
});

test('create with an id already in use fails and leaves the first container alone', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    const { pid } = await b.state(id);
    const dup = await b.create(id);
    assert.notEqual(dup.code, 0, 'duplicate id must fail');
    assert.ok(dup.stderr.trim().length > 0);
    const st = await b.state(id);
    assert.equal(st.status, 'created');
    assert.equal(st.pid, pid);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('run in the foreground propagates the exit code and output, then deletes the container', async () => {
  await withBundle({}, async (b) => {
    const id = b.newId();
    b.writeConfig((s) => { s.process.args = ['sh', '-c', 'echo out; echo err >&2; exit 7']; });
    const r = await b.runContainer(id);
    assert.equal(r.code, 7, explain(r));
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err$/m);
    assert.notEqual((await b.run(['state', id])).code, 0, 'a foreground run removes the container');

    const ok = await b.exec(['true']);
    assert.equal(ok.code, 0, explain(ok));
    // (No pid namespace here: an init cannot SIGKILL itself inside its own pid namespace.)
    const killed = await b.exec(['sh', '-c', 'kill -9 $$'], (s) => {
      s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'pid');
    });
    assert.equal(killed.code, 137, `killed by SIGKILL → 128+9: ${explain(killed)}`);
  });
});

test('run passes stdin through', async () => {
  await withBundle({}, async (b) => {
    const r = await b.exec(['sh', '-c', 'read line; echo "got $line"'], undefined, { input: 'hello\n' });
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.stdout, 'got hello\n');
  });
});

test('run --detach returns while the container runs', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    const started = Date.now();
    const r = await b.run(['run', '--detach', '--bundle', b.dir, id], { timeoutMs: 10000 });
    assert.equal(r.code, 0, explain(r));
    assert.ok(Date.now() - started < 8000);
    const st = await b.state(id);
    assert.equal(st.status, 'running');
    assert.ok(pidAlive(st.pid!));
    assert.equal((await b.run(['kill', id, 'KILL'])).code, 0);
    await waitStatus(b, id, 'stopped');
    assert.equal((await b.delete(id)).code, 0);
  });
});

test('list shows containers as a table and as JSON', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const created = b.newId();
    const running = b.newId();
    assert.equal((await b.create(created)).code, 0);
    assert.equal((await b.create(running)).code, 0);
    assert.equal((await b.start(running)).code, 0);

    const table = await b.run(['list']);
    assert.equal(table.code, 0, explain(table));
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0], /^ID\s+PID\s+STATUS\s+BUNDLE/);
    const row = (id: string): string[] => (lines.find((l) => l.startsWith(`${id} `)) ?? '').split(/\s+/);
    assert.equal(row(created)[2], 'created', table.stdout);
    assert.equal(row(running)[2], 'running', table.stdout);
    assert.ok(lines.some((l) => l.startsWith(created) && l.includes(b.dir)), 'table shows the bundle');

    const json = await b.run(['list', '--format', 'json']);
    assert.equal(json.code, 0, explain(json));
    const list = JSON.parse(json.stdout) as { id: string; pid: number; status: string; bundle: string }[];
    assert.equal(list.length, 2);
    const byId = new Map(list.map((c) => [c.id, c]));
    assert.equal(byId.get(created)?.status, 'created');
    assert.equal(byId.get(running)?.status, 'running');
    assert.equal(byId.get(running)?.bundle, b.dir);
    assert.equal(byId.get(running)?.pid, (await b.state(running)).pid);

    assert.equal((await b.delete(created, true)).code, 0);
    assert.equal((await b.delete(running, true)).code, 0);
    const empty = await b.run(['list', '--format', 'json']);
    assert.equal(empty.code, 0);
    const after = JSON.parse(empty.stdout) as unknown[] | null;
    assert.ok(after === null || after.length === 0, `no containers left: ${empty.stdout}`);
  });
});

test('list in a state root that does not exist yet is empty', async () => {
  await withBundle({}, async (b) => {
    const r = await b.run(['list', '--format', 'json']);
    assert.equal(r.code, 0, explain(r));
    const v = JSON.parse(r.stdout) as unknown[] | null;
    assert.ok(v === null || v.length === 0);
  });
});

test('create --pid-file writes the init pid', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    const pidFile = join(b.base, 'container.pid');
    const r = await b.create(id, ['--pid-file', pidFile]);
    assert.equal(r.code, 0, explain(r));
    const { pid } = await b.state(id);
    assert.equal(readFileSync(pidFile, 'utf8').trim(), String(pid));

    const id2 = b.newId();
    const pidFile2 = join(b.base, 'run.pid');
    const d = await b.run(['run', '--detach', '--pid-file', pidFile2, '--bundle', b.dir, id2]);
    assert.equal(d.code, 0, explain(d));
    assert.equal(readFileSync(pidFile2, 'utf8').trim(), String((await b.state(id2)).pid));
    assert.equal((await b.delete(id, true)).code, 0);
    assert.equal((await b.delete(id2, true)).code, 0);
  });
});

test('spec writes a config.json that runs', async () => {
  await withBundle({}, async (b) => {
    const dir = b.scratch('fresh');
    const r = await runRuntime(null, ['spec'], b.ioDir, { cwd: dir });
    assert.equal(r.code, 0, explain(r));
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Spec;
    assert.match(spec.ociVersion, /^\d+\.\d+\.\d+/);
    assert.equal(spec.root.path, 'rootfs');
    assert.ok(Array.isArray(spec.process.args) && spec.process.args.length > 0);
    assert.ok(spec.linux.namespaces.some((n) => n.type === 'mount'));

    // Existing config.json is not overwritten.
    const again = await runRuntime(null, ['spec'], b.ioDir, { cwd: dir });
    assert.notEqual(again.code, 0, 'spec refuses to overwrite config.json');

    // --bundle writes into another directory.
    const other = b.scratch('other');
    const viaBundle = await runRuntime(null, ['spec', '--bundle', other], b.ioDir, { cwd: b.base });
    assert.equal(viaBundle.code, 0, explain(viaBundle));
    assert.ok(existsSync(join(other, 'config.json')));

    mkdirSync(join(dir, 'rootfs'));
    makeRootfs(join(dir, 'rootfs'));
    spec.process.terminal = false;
    spec.process.args = ['sh', '-c', 'echo hello from spec'];
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
    const id = b.newId();
    const run = await b.run(['run', '--bundle', dir, id]);
    assert.equal(run.code, 0, explain(run));
    assert.equal(run.stdout, 'hello from spec\n');
  });
});

test('create uses the current directory as the bundle when --bundle is omitted', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.process.args = ['sleep', '1000']; });
    const id = b.newId();
    const r = await b.run(['create', id], { cwd: b.dir });
    assert.equal(r.code, 0, explain(r));
    assert.equal((await b.state(id)).bundle, b.dir);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});
