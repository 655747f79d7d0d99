// `exec`: a new process in an existing container — its namespaces, cgroup, rootfs and process
// settings (flags, --process), exit status, --detach/--pid-file, --tty, user namespaces, refusals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CAP_NUMBERS, PYTHON, REPO_ROOT, cgroupDirsOf, explain, parseStatus, pidAlive, waitFor, withBundle,
  type Bundle, type BundleOptions,
} from '../helpers/bundle.ts';
import { compileExec, execProcess } from '../../src/runtime/exec.ts';
import { Op } from '../../src/runtime/plan.ts';

const RECEIVER = join(REPO_ROOT, 'test', 'helpers', 'console-receiver.py');
const NS = ['pid', 'net', 'uts', 'ipc', 'mnt', 'cgroup'];

const sleeper: BundleOptions = {
  mutate: (s) => { s.process.args = ['sleep', '1000']; },
  populate: (rootfs) => {
    writeFileSync(join(rootfs, 'marker'), 'in-the-rootfs\n');
    symlinkSync('../../../../../..', join(rootfs, 'up'));
  },
};

/** Creates and starts a container running the bundle's process; returns its id and init pid. */
async function started(b: Bundle): Promise<{ id: string; pid: number }> {
  const id = b.newId();
  return { id, pid: await b.createAndStart(id) };
}

function nsOf(pid: number): string[] {
  return NS.map((n) => readlinkSync(`/proc/${pid}/ns/${n}`));
}

test('exec: joins the init\'s namespaces, rootfs and cgroup; exit status, rlimits, seccomp, fds', async () => {
  await withBundle({
    ...sleeper,
    mutate: (s) => {
      s.process.args = ['sleep', '1000'];
      s.linux.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      };
    },
  }, async (b) => {
    const { id, pid } = await started(b);
    const script = [
      ...NS.map((n) => `readlink /proc/self/ns/${n}`),
      'hostname', 'cat /marker', 'ulimit -n', 'grep ^Seccomp: /proc/self/status',
      'mkdir /dev/shm/d 2>/dev/null && echo MKDIR-ALLOWED || echo MKDIR-DENIED',
    ].join('; ');
    const r = await b.run(['exec', id, 'sh', '-c', script]);
    assert.equal(r.code, 0, explain(r));
    const lines = r.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines.slice(0, NS.length), nsOf(pid), 'the same namespaces as the init');
    assert.deepEqual(lines.slice(NS.length), ['runc', 'in-the-rootfs', '1024', 'Seccomp: 2', 'MKDIR-DENIED']);

    const exit = await b.run(['exec', id, 'sh', '-c', 'exit 3']);
    assert.equal(exit.code, 3, explain(exit));

    // Nothing but stdio reaches the process (ls's own directory fd is the 4th entry).
    const fds = await b.run(['exec', id, 'ls', '/proc/self/fd']);
    assert.equal(fds.code, 0, explain(fds));
    assert.deepEqual(fds.stdout.trim().split(/\s+/), ['0', '1', '2', '3']);
    // --preserve-fds passes the caller's fd 3 on.
    writeFileSync(join(b.base, 'preserved'), 'preserved\n');
    const fd = openSync(join(b.base, 'preserved'), 'r');
    try {
      const p = await b.run(['exec', '--preserve-fds', '1', id, 'sh', '-c', 'cat <&3'], { extraFds: [fd] });
      assert.equal(p.code, 0, explain(p));
      assert.equal(p.stdout, 'preserved\n');
    } finally {
      closeSync(fd);
    }
    // The cwd is resolved inside the container: a symlink climbing out ends at its root.
    const up = await b.run(['exec', '--cwd', '/up', id, 'cat', 'marker']);
    assert.equal(up.code, 0, explain(up));
    assert.equal(up.stdout, 'in-the-rootfs\n');

    // --detach + --pid-file: the pid is the host pid of a process in the container's cgroup.
    const pidFile = join(b.base, 'exec.pid');
    const d = await b.run(['exec', '--detach', '--pid-file', pidFile, id, 'sleep', '1000']);
    assert.equal(d.code, 0, explain(d));
    const execPid = Number(readFileSync(pidFile, 'utf8').trim());
    b.trackPid(execPid);
    assert.ok(pidAlive(execPid), 'the detached process runs');
    assert.deepEqual(nsOf(execPid), nsOf(pid));
    const cg = cgroupDirsOf(execPid);
    assert.ok(cg.length > 0, 'in a cgroup of its own');
    assert.deepEqual(cg, cgroupDirsOf(pid), 'the container\'s cgroup');
    assert.ok(existsSync(`/proc/${execPid}/root/marker`), 'rooted in the container\'s rootfs');
    // It is one of the container's processes: delete --force takes it down too.
    assert.equal((await b.delete(id, true)).code, 0);
    await waitFor('the exec\'d process to go', () => !pidAlive(execPid), 5000);
  });
});

test('exec: --cwd, --env, --user, --additional-gids, --cap, --no-new-privs', async () => {
  await withBundle(sleeper, async (b) => {
    const { id } = await started(b);
    const r = await b.run(['exec', '--cwd', '/tmp', '-e', 'FOO=bar', '-e', 'TERM=dumb', '-u', '1000:1000', '-g', '50', id,
      'sh', '-c', 'pwd; echo "$FOO $TERM"; env | grep -c ^TERM=; id -u; id -g; id -G']);
    assert.equal(r.code, 0, explain(r));
    const [cwd, env, terms, uid, gid, groups] = r.stdout.trim().split('\n');
    assert.equal(cwd, '/tmp');
    assert.equal(env, 'bar dumb', '-e appends, overriding the config\'s TERM');
    assert.equal(terms, '1');
    assert.deepEqual([uid, gid], ['1000', '1000']);
    assert.ok(groups.split(' ').includes('50'), `groups: ${groups}`);

    const status = async (extra: string[]): Promise<Record<string, string>> => {
      const s = await b.run(['exec', ...extra, id, 'cat', '/proc/self/status']);
      assert.equal(s.code, 0, explain(s));
      return parseStatus(s.stdout);
    };
    const bit = (hex: string, cap: string) => (BigInt(`0x${hex}`) >> BigInt(CAP_NUMBERS[cap])) & 1n;
    const plain = await status([]);
    assert.equal(bit(plain.CapEff, 'CAP_SYS_ADMIN'), 0n);
    assert.equal(bit(plain.CapEff, 'CAP_KILL'), 1n, 'the config\'s capabilities');
    const withCap = await status(['--cap', 'CAP_SYS_ADMIN']);
    assert.equal(bit(withCap.CapEff, 'CAP_SYS_ADMIN'), 1n, `CapEff ${withCap.CapEff}`);
    assert.equal(bit(withCap.CapBnd, 'CAP_SYS_ADMIN'), 1n);
    assert.equal(bit(withCap.CapEff, 'CAP_KILL'), 1n);
    // The default config already sets noNewPrivileges; a container without it gets it from the flag.
    b.writeConfig((s) => { s.process.noNewPrivileges = false; });
    assert.equal((await status([])).NoNewPrivs, '0');
    assert.equal((await status(['--no-new-privs'])).NoNewPrivs, '1');
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('exec: --process runs an OCI process object', async () => {
  await withBundle(sleeper, async (b) => {
    const { id } = await started(b);
    const file = join(b.base, 'process.json');
    writeFileSync(file, JSON.stringify({
      terminal: false,
      user: { uid: 1000, gid: 1000 },
      args: ['sh', '-c', 'echo "$A"; pwd; id -u; grep ^CapEff: /proc/self/status; ulimit -n'],
      env: ['PATH=/bin:/usr/bin', 'A=from-json'],
      cwd: '/home/alice',
      // (a non-root user keeps capabilities across execve only as ambient ones)
      capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'], inheritable: ['CAP_CHOWN'], ambient: ['CAP_CHOWN'] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 512, soft: 512 }],
    }));
    const r = await b.run(['exec', '--process', file, id]);
    assert.equal(r.code, 0, explain(r));
    const lines = r.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' '));
    assert.deepEqual(lines, ['from-json', '/home/alice', '1000', 'CapEff: 0000000000000001', '512']);

    writeFileSync(file, JSON.stringify({ user: { uid: 0, gid: 0 }, args: ['true'], cwd: 'relative' }));
    const bad = await b.run(['exec', '--process', file, id]);
    assert.notEqual(bad.code, 0, 'a relative cwd is refused');
    assert.match(bad.stderr, /cwd/i);
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('exec: --tty hands the pty to --console-socket', async () => {
  await withBundle(sleeper, async (b) => {
    const { id } = await started(b);
    const dir = b.scratch('console');
    const socket = join(dir, 'c.sock');
    const outFile = join(dir, 'out');
    let events = '';
    const rx = spawn(PYTHON, [RECEIVER, socket, outFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    rx.stdout.on('data', (d: Buffer) => { events += d.toString(); });
    rx.stderr.on('data', (d: Buffer) => { events += d.toString(); });
    const done = new Promise<number | null>((r) => rx.on('exit', (code) => r(code)));
    try {
      await waitFor('the console receiver', () => events.includes('listening'), 10000);
      // runc requires --detach with --console-socket.
      const r = await b.run(['exec', '--detach', '--tty', '--console-socket', socket, id,
        'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo ALL-TTY; echo "TERM=$TERM"']);
      assert.equal(r.code, 0, explain(r));
      const code = await Promise.race([done, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 10000))]);
      assert.equal(code, 0, `receiver: ${events}`);
      const out = readFileSync(outFile, 'utf8').replace(/\r\n/g, '\n').trim().split('\n');
      assert.match(out[0], /^\/dev\/pts\/\d+$/);
      assert.deepEqual(out.slice(1), ['ALL-TTY', 'TERM=xterm']);
    } finally {
      rx.kill('SIGKILL');
    }
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('exec: into a container with a user namespace', async () => {
  await withBundle({
    ...sleeper,
    mutate: (s) => {
      s.process.args = ['sleep', '1000'];
      s.linux.namespaces.push({ type: 'user' });
      s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    },
  }, async (b) => {
    const { id, pid } = await started(b);
    const r = await b.run(['exec', id, 'sh', '-c', 'readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u; cat /marker']);
    assert.equal(r.code, 0, explain(r));
    const lines = r.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines, [readlinkSync(`/proc/${pid}/ns/user`), '0 100000 65536', '0', 'in-the-rootfs']);

    const pidFile = join(b.base, 'exec.pid');
    const d = await b.run(['exec', '-d', '--pid-file', pidFile, '-u', '1000:1000', id, 'sleep', '1000']);
    assert.equal(d.code, 0, explain(d));
    const execPid = Number(readFileSync(pidFile, 'utf8').trim());
    b.trackPid(execPid);
    const st = parseStatus(readFileSync(`/proc/${execPid}/status`, 'utf8'));
    assert.equal(st.Uid.split(/\s+/)[0], '101000', 'container uid 1000 is host uid 101000');
    assert.equal(st.Gid.split(/\s+/)[0], '101000');
    assert.equal((await b.delete(id, true)).code, 0);
  });
});

test('exec: a created container accepts it, a paused or stopped one refuses it', async () => {
  await withBundle(sleeper, async (b) => {
    const id = b.newId();
    assert.equal((await b.create(id)).code, 0);
    const r = await b.run(['exec', id, 'cat', '/marker']);
    assert.equal(r.code, 0, explain(r));
    assert.equal(r.stdout, 'in-the-rootfs\n');
    assert.equal((await b.start(id)).code, 0);

    assert.equal((await b.run(['pause', id])).code, 0);
    const paused = await b.run(['exec', id, 'true'], { timeoutMs: 10000 });
    assert.notEqual(paused.code, 0);
    assert.match(paused.stderr, /paused/);
    assert.equal((await b.run(['resume', id])).code, 0);

    assert.equal((await b.run(['kill', id, 'KILL'])).code, 0);
    await waitFor('the container to stop', async () => (await b.state(id)).status === 'stopped');
    const stopped = await b.run(['exec', id, 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /stopped/);
    assert.equal((await b.delete(id)).code, 0);

    const missing = await b.run(['exec', `${id}-missing`, 'true']);
    assert.notEqual(missing.code, 0);
    assert.ok(!existsSync(join(b.root, `${id}-missing`)));
  });
});

test('exec plan: host paths first, user namespace first and mnt last, no start fifo', () => {
  const spec = { ociVersion: '1.0.2', root: { path: 'rootfs' }, process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' } };
  const p = execProcess(spec, { args: ['true'], tty: true });
  const plan = compileExec(spec, p, {
    id: 'x', rootfs: '/nowhere', cgroupProcs: ['/sys/fs/cgroup/x/cgroup.procs'], setgroupsDenied: true,
    namespaces: [['user', '/proc/9/ns/user', 'user:[1]'], ['net', '/proc/9/ns/net', 'net:[2]'], ['mnt', '/proc/9/ns/mnt', 'mnt:[3]']],
  }, { stay: false, consoleSocket: '/run/c.sock' });
  const names = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k]));
  const ops = plan.records.map((r) => (r.op === Op.SETNS ? `SETNS ${String(r.args[0])}` : names[r.op]));
  assert.deepEqual(ops.slice(0, ops.indexOf('CLONE') + 1),
    ['CGROUP_JOIN', 'CONSOLE_SOCKET', 'SETNS user', 'SETNS net', 'SETNS mnt', 'CLONE']);
  assert.ok(!ops.includes('FIFO') && !ops.includes('WAIT_START'));
  const rootfs = plan.records.find((r) => r.op === Op.ROOTFS)!;
  assert.equal(rootfs.args[0], '/', 'after setns(mnt) the root is the container\'s');
  assert.equal(plan.records.find((r) => r.op === Op.USER)!.args[3], '-', 'setgroups denied: no setgroups(2)');
  assert.equal(plan.records.find((r) => r.op === Op.CONSOLE)!.args[2], '', 'no /dev/console bind');
  assert.equal(ops[ops.length - 1], 'EXEC');
});
