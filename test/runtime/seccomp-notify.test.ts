// SCMP_ACT_NOTIFY with linux.seccomp.listenerPath: the runtime sends the seccomp notify fd and the
// containerProcessState JSON to the listener (runtime-spec config-linux.md "seccomp"), and the
// agent (test/helpers/seccomp-agent.c) answers the container's notified syscalls: mkdir fails
// with ENOTUNIQ, rmdir "succeeds" without doing anything. For create and for exec.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { explain, REPO_ROOT, RUNTIME, waitFor, withBundle, type Bundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/seccomp.ts';

const AGENT_SOURCE = join(REPO_ROOT, 'test', 'helpers', 'seccomp-agent.c');
const ENOTUNIQ_TEXT = /Name not unique on network/;
let build: { path: string; remove: () => void };
let agentBin: string;

before(() => {
  build = tempDir('berth-notify-agent-');
  agentBin = join(build.path, 'agent');
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', agentBin, AGENT_SOURCE], { encoding: 'utf8' });
  assert.equal(r.status, 0, `gcc: ${r.stderr}`);
});
after(() => build.remove());

interface Agent { socket: string; dir: string; proc: ChildProcess; stop: () => void }

/** Starts the agent listening on a socket in the bundle's scratch space. */
async function startAgent(b: Bundle): Promise<Agent> {
  const dir = b.scratch('agent');
  const socket = join(dir, 'listener.sock');
  // Own process group: its per-connection children go with it at stop().
  const proc = spawn(agentBin, [socket, dir], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  await waitFor('the agent\'s socket', () => existsSync(socket));
  return { socket, dir, proc, stop: () => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } } };
}

interface Received { fd: boolean; json: { ociVersion: string; fds: string[]; pid: number; metadata?: string; state: Record<string, unknown> } }

function received(agent: Agent, n: number): Promise<Received> {
  return waitFor(`connection ${n} at the agent`, () => {
    const p = join(agent.dir, `conn-${n}.json`);
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) as Received : undefined;
  });
}

/** "<pid> <nr>" lines: the notifications the agent answered on connection n. */
function answered(agent: Agent, n: number): { pid: number; nr: number }[] {
  const p = join(agent.dir, `conn-${n}.log`);
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
    const [pid, nr] = l.split(' ').map(Number);
    return { pid, nr };
  });
}

function notifyProfile(listenerPath: string | undefined, metadata?: string): Record<string, unknown> {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    ...(listenerPath !== undefined ? { listenerPath } : {}),
    ...(metadata !== undefined ? { listenerMetadata: metadata } : {}),
    syscalls: [{ names: ['mkdir', 'mkdirat', 'rmdir'], action: 'SCMP_ACT_NOTIFY' }],
  };
}

const SCRIPT = 'mkdir /dev/shm/a 2>&1; echo mkdir=$?; rmdir /dev/shm/nonexistent && echo rmdir=ok; ls -d /dev/shm/a 2>/dev/null; echo done';

test('features lists SCMP_ACT_NOTIFY', () => {
  const r = spawnSync(RUNTIME, ['features'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok((JSON.parse(r.stdout) as { linux: { seccomp: { actions: string[] } } }).linux.seccomp.actions.includes('SCMP_ACT_NOTIFY'));
});

test('SCMP_ACT_NOTIFY without listenerPath is refused, naming the field', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.linux.seccomp = notifyProfile(undefined); s.process.args = ['true']; });
    const id = b.newId();
    const r = await b.create(id);
    assert.notEqual(r.code, 0, explain(r));
    assert.match(r.stderr, /linux\.seccomp\.listenerPath/);
  });
});

test('SCMP_ACT_NOTIFY on write is refused (the runtime writes after loading the filter; runc refuses it too)', async () => {
  await withBundle({}, async (b) => {
    for (const names of [['write'], ['read', 'write']]) {
      b.writeConfig((s) => {
        s.linux.seccomp = { ...notifyProfile('/nonexistent/agent.sock'), syscalls: [{ names, action: 'SCMP_ACT_NOTIFY' }] };
        s.process.args = ['true'];
      });
      const r = await b.create(b.newId());
      assert.notEqual(r.code, 0, explain(r));
      assert.match(r.stderr, /SCMP_ACT_NOTIFY cannot be used for the write syscall/);
    }
  });
});

test('create/start: the listener gets the fd and the state, and answers the container\'s syscalls; exec too', async () => {
  await withBundle({}, async (b) => {
    const agent = await startAgent(b);
    try {
      b.writeConfig((s) => {
        s.linux.seccomp = notifyProfile(agent.socket, 'meta-42');
        s.process.args = ['sh', '-c', `${SCRIPT}; exec sleep 1000`];
        s.annotations = { 'org.example.key': 'value' };
      });
      const id = b.newId();
      const c = await b.create(id);
      assert.equal(c.code, 0, explain(c));
      const st = await b.state(id);
      const s = await b.start(id);
      assert.equal(s.code, 0, explain(s));

      // Under no_new_privs the filter is loaded right before exec, i.e. after start.
      const got = await received(agent, 1);
      assert.ok(got.fd, 'the notify fd came with the JSON');
      assert.equal(got.json.ociVersion, st.ociVersion);
      assert.deepEqual(got.json.fds, ['seccompFd']);
      assert.equal(got.json.pid, st.pid, 'pid: the init\'s host pid');
      assert.equal(got.json.metadata, 'meta-42');
      assert.deepEqual(got.json.state, {
        ociVersion: st.ociVersion, id, status: 'creating', bundle: b.dir, pid: st.pid,
        annotations: { 'org.example.key': 'value' },
      });

      const out = await waitFor('the container\'s output', () => (c.readStdout().includes('done') ? c.readStdout() : undefined));
      assert.match(out, ENOTUNIQ_TEXT, out);
      assert.match(out, /mkdir=1/);
      assert.match(out, /rmdir=ok/, 'rmdir of a missing dir "succeeded": the agent answered it');
      assert.doesNotMatch(out, /^\/dev\/shm\/a$/m, 'the directory was never made');
      assert.ok(answered(agent, 1).length >= 2, 'the agent logged the calls it answered');

      // exec: the same filter, a listener connection of its own; pid = the exec'd process.
      const e = await b.run(['exec', id, 'mkdir', '/dev/shm/b']);
      assert.equal(e.code, 1, explain(e));
      assert.match(e.stderr, ENOTUNIQ_TEXT);
      const ex = await received(agent, 2);
      assert.ok(ex.fd);
      assert.equal(ex.json.metadata, 'meta-42');
      assert.equal(ex.json.state.pid, st.pid, 'state.pid: the init');
      assert.equal(ex.json.state.status, 'running');
      assert.equal(ex.json.state.id, id);
      const calls = answered(agent, 2);
      assert.ok(calls.length >= 1);
      assert.ok(calls.every((call) => call.pid === ex.json.pid), `pid ${ex.json.pid}: the process that made the calls (${JSON.stringify(calls)})`);
      assert.notEqual(ex.json.pid, st.pid);

      const d = await b.delete(id, true);
      assert.equal(d.code, 0, explain(d));
    } finally {
      agent.stop();
    }
  });
});

test('without no_new_privs (filter loaded before the privilege drop): run in the foreground', async () => {
  await withBundle({}, async (b) => {
    const agent = await startAgent(b);
    try {
      const r = await b.exec(SCRIPT, (s) => {
        s.linux.seccomp = notifyProfile(agent.socket);
        s.process.noNewPrivileges = false;
      });
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, ENOTUNIQ_TEXT);
      assert.match(r.stdout, /rmdir=ok/);
      const got = await received(agent, 1);
      assert.ok(got.fd);
      assert.equal(got.json.metadata, undefined);
      assert.equal(got.json.state.status, 'creating');
      assert.equal(got.json.state.pid, got.json.pid);
    } finally {
      agent.stop();
    }
  });
});

test('an unreachable listener fails create', async () => {
  await withBundle({}, async (b) => {
    b.writeConfig((s) => { s.linux.seccomp = notifyProfile(join(b.base, 'nobody-listens.sock')); s.process.args = ['true']; });
    const r = await b.create(b.newId());
    assert.notEqual(r.code, 0, explain(r));
    assert.match(r.stderr, /seccomp listener/);
  });
});
