// Rootless: the runtime run by an unprivileged user (a throwaway account made for this file),
// with `spec --rootless`, id maps through newuidmap/newgidmap, exec, and cgroups it may or may
// not use. The user, its /etc/subuid and /etc/subgid lines, its files and cgroups are removed
// at the end; nothing else in those files is touched.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync,
  rmdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeRootfs, pidAlive, RUNTIME, RUNTIME_NAME, sleep, startTimeOf, waitFor } from '../helpers/bundle.ts';

const NEWUIDMAP = ['/usr/bin/newuidmap', '/usr/bin/newgidmap'];
const SUB_COUNT = 65536;

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Why the suite cannot run here, or false. */
function skipReason(): string | false {
  if (process.geteuid?.() !== 0) return 'needs root (it creates a test user)';
  if (!NEWUIDMAP.every((p) => existsSync(p))) return 'needs newuidmap/newgidmap (Debian package uidmap)';
  if (spawnSync('useradd', ['--help'], { stdio: 'ignore' }).error) return 'needs useradd';
  if (readSysctl('kernel.unprivileged_userns_clone') === '0') return 'kernel.unprivileged_userns_clone is 0';
  if (readSysctl('user.max_user_namespaces') === '0') return 'user.max_user_namespaces is 0';
  if (!existsSync('/bin/busybox')) return 'needs busybox-static';
  return false;
}
const skip = skipReason();

interface User { name: string; uid: number; gid: number; subStart: number; home: string }
let user: User;
/** How to start the runtime: node + the .cjs (copied where the user can read it if need be), or a binary. */
let runtimeArgv: string[] = [];
const containers = new Set<string>();
const trackedPids = new Map<number, string>();
const cgroupDirs: string[] = [];

/** Ranges in /etc/subuid-style text, as [start, end). */
function subRanges(file: string): [number, number][] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* none */ }
  return text.split('\n').map((l) => l.split(':')).filter((f) => f.length === 3)
    .map((f) => [Number(f[1]), Number(f[1]) + Number(f[2])] as [number, number]);
}

/** The user's own entry (useradd may have made one), else a fresh range appended for it only. */
function ensureSubIds(name: string): number {
  const own = (file: string) => readFileSync(file, 'utf8').split('\n').map((l) => l.split(':'))
    .find((f) => f[0] === name && Number(f[2]) >= SUB_COUNT);
  const u = existsSync('/etc/subuid') ? own('/etc/subuid') : undefined;
  const g = existsSync('/etc/subgid') ? own('/etc/subgid') : undefined;
  if (u && g && u[1] === g[1]) return Number(u[1]);
  const taken = [...subRanges('/etc/subuid'), ...subRanges('/etc/subgid')];
  let start = 1_600_000_000 + Math.floor(Math.random() * 1000) * SUB_COUNT;
  while (taken.some(([a, b]) => start < b && a < start + SUB_COUNT)) start += SUB_COUNT;
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    writeFileSync(file, `${text}${text && !text.endsWith('\n') ? '\n' : ''}${name}:${start}:${SUB_COUNT}\n`);
  }
  return start;
}

/** Removes every line of `name` (and only those) from /etc/subuid and /etc/subgid. */
function dropSubIds(name: string): void {
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const kept = text.split('\n').filter((l) => !l.startsWith(`${name}:`));
    const next = kept.join('\n');
    if (next !== text) writeFileSync(file, next);
  }
}

interface Result { code: number | null; stdout: string; stderr: string }
const show = (r: Result) => `exit ${r.code}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`;

/**
 * Runs argv as the test user (setpriv --init-groups), stdout/stderr into files (a detached
 * container keeps them open). `cgroupProcs`: a cgroup.procs file the command is moved into first.
 */
async function asUser(argv: string[], opts: { env?: Record<string, string>; cgroupProcs?: string; timeoutMs?: number; cwd?: string } = {}): Promise<Result> {
  const io = join(user.home, 'io');
  mkdirSync(io, { recursive: true });
  const tag = `${Date.now()}-${randomBytes(3).toString('hex')}`;
  const outPath = join(io, `${tag}.out`);
  const errPath = join(io, `${tag}.err`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  const setpriv = ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', ...argv];
  const full = opts.cgroupProcs ? ['sh', '-c', 'echo $$ > "$0" && exec "$@"', opts.cgroupProcs, ...setpriv] : setpriv;
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: user.home, USER: user.name, LOGNAME: user.name, ...opts.env };
  const child = spawn(full[0], full.slice(1), { stdio: ['ignore', out, err], env, cwd: opts.cwd ?? user.home });
  closeSync(out);
  closeSync(err);
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
    child.on('exit', (c, s) => { clearTimeout(timer); resolve(s ? null : c); });
  });
  return { code, stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8') };
}

/** The runtime as the test user; remembers container ids for cleanup. */
function runtime(args: string[], opts: Parameters<typeof asUser>[1] = {}): Promise<Result> {
  const i = args.findIndex((a) => a === 'create' || a === 'run');
  if (i >= 0) containers.add(args[args.length - 1]);
  return asUser([...runtimeArgv, ...args], opts);
}

/** A bundle owned by the user: busybox rootfs and the config `spec --rootless` writes (terminal off). */
async function rootlessBundle(name: string, mutate?: (spec: Record<string, any>) => void): Promise<string> {
  const dir = join(user.home, name);
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true, mode: 0o755 });
  makeRootfs(rootfs);
  spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  const r = await runtime(['spec', '--rootless', '--bundle', dir]);
  assert.equal(r.code, 0, `spec --rootless: ${show(r)}`);
  const path = join(dir, 'config.json');
  const spec = JSON.parse(readFileSync(path, 'utf8'));
  spec.process.terminal = false;
  mutate?.(spec);
  writeFileSync(path, JSON.stringify(spec, null, 2));
  return dir;
}

const rootArgs = () => ['--root', join(user.home, 'state')];
const newId = (p = 'rl') => `${p}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** The hierarchy that has the pids controller: its mountpoint and whether it is cgroup2. */
function pidsHierarchy(): { mountpoint: string; v2: boolean } | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    const mp = line.split(' ')[4];
    if (fstype === 'cgroup' && superOpts.split(',').includes('pids')) return { mountpoint: mp, v2: false };
    if (fstype === 'cgroup2' && mp === '/sys/fs/cgroup') {
      const ctrls = readFileSync(join(mp, 'cgroup.controllers'), 'utf8');
      if (/\bpids\b/.test(ctrls)) return { mountpoint: mp, v2: true };
    }
  }
  return undefined;
}

describe('rootless', { skip }, () => {
  before(() => {
    const name = `berthtest${randomBytes(5).toString('hex')}`;
    const r = spawnSync('useradd', ['-M', '-U', '-s', '/bin/sh', name], { encoding: 'utf8' });
    assert.equal(r.status, 0, `useradd: ${r.stderr}`);
    const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
    const home = mkdtempSync(join(process.env.BERTH_TEST_TMPDIR ?? '/tmp', 'berth-rootless-'));
    chmodSync(home, 0o755);
    user = { name, uid, gid, subStart: 0, home };
    spawnSync('chown', [`${uid}:${gid}`, home]);
    user.subStart = ensureSubIds(name);
    // The runtime must be readable by the user: the repo may sit below a directory it cannot enter.
    const readable = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', '--', 'test', '-r', RUNTIME]).status === 0;
    let path = RUNTIME;
    if (!readable) {
      const dist = join(home, 'dist');
      mkdirSync(dist);
      for (const f of readdirSync(dirname(RUNTIME))) if (!f.endsWith('.map')) copyFileSync(join(dirname(RUNTIME), f), join(dist, f));
      for (const f of readdirSync(dist)) chmodSync(join(dist, f), 0o755);
      path = join(dist, basename(RUNTIME));
    }
    runtimeArgv = path.endsWith('.cjs') || path.endsWith('.js') ? [process.execPath, path] : [path];
  });

  after(async () => {
    if (!user) return;
    for (const id of containers) await runtime([...rootArgs(), 'delete', '--force', id]).catch(() => undefined);
    for (const [pid, start] of trackedPids) {
      if (pidAlive(pid) && startTimeOf(pid) === start) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const dir of cgroupDirs.reverse()) {
      const rm = (d: string): void => {
        try {
          for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(join(d, e.name));
          rmdirSync(d);
        } catch { /* gone */ }
      };
      rm(dir);
    }
    spawnSync('userdel', [user.name]);
    spawnSync('groupdel', [user.name], { stdio: 'ignore' });
    dropSubIds(user.name);
    rmSync(user.home, { recursive: true, force: true });
  });

  test('spec --rootless writes runc\'s rootless spec for the caller', async () => {
    const dir = await rootlessBundle('spec');
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const types = spec.linux.namespaces.map((n: { type: string }) => n.type);
    assert.ok(types.includes('user'), 'a user namespace');
    assert.ok(!types.includes('network'), 'no network namespace (as runc: it could not be set up)');
    assert.deepEqual(spec.linux.uidMappings, [{ containerID: 0, hostID: user.uid, size: 1 }]);
    assert.deepEqual(spec.linux.gidMappings, [{ containerID: 0, hostID: user.gid, size: 1 }]);
    const sys = spec.mounts.find((m: { destination: string }) => m.destination === '/sys');
    assert.equal(sys.source, '/sys');
    assert.ok(sys.options.includes('rbind') && sys.options.includes('ro'), `/sys is a read-only rbind: ${JSON.stringify(sys)}`);
    for (const m of spec.mounts) assert.ok(!(m.options ?? []).some((o: string) => /^(uid|gid)=/.test(o)), `no uid=/gid= in ${m.destination}`);
    assert.equal(spec.linux.resources, undefined, 'no cgroup resources');
  });

  test('run: the caller is root inside, mapped with setgroups denied; files it makes are the caller\'s', async () => {
    const dir = await rootlessBundle('own', (s) => {
      s.root.readonly = false;
      s.process.args = ['sh', '-c', 'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; echo x > /made-inside; ls /dev/null >/dev/null && echo devnull'];
    });
    const r = await runtime([...rootArgs(), 'run', '--bundle', dir, newId()]);
    assert.equal(r.code, 0, show(r));
    const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(lines[0], '0', 'uid 0 inside');
    assert.equal(lines[1], '0', 'gid 0 inside');
    assert.equal(lines[2], `0 ${user.uid} 1`);
    assert.equal(lines[3], `0 ${user.gid} 1`);
    assert.equal(lines[4], 'deny', 'an unprivileged gid map needs setgroups denied');
    assert.equal(lines[5], 'devnull');
    const st = statSync(join(dir, 'rootfs', 'made-inside'));
    assert.equal(st.uid, user.uid, 'a file made by root inside belongs to the caller outside');
    assert.equal(st.gid, user.gid);
  });

  test('multi-range maps go through newuidmap/newgidmap: uid 1000 inside is a subordinate id outside', async () => {
    const { uid, gid, subStart } = user;
    const dir = await rootlessBundle('multi', (s) => {
      s.root.readonly = false;
      s.linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }, { containerID: 1, hostID: subStart, size: SUB_COUNT - 1 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }, { containerID: 1, hostID: subStart, size: SUB_COUNT - 1 }];
      s.process.user = { uid: 1000, gid: 1000, additionalGids: [50] };
      s.process.args = ['sh', '-c', 'id -u; id -g; id -G; cat /proc/self/uid_map; echo y > /tmp/by-1000'];
    });
    const r = await runtime([...rootArgs(), 'run', '--bundle', dir, newId()]);
    assert.equal(r.code, 0, show(r));
    const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(lines[0], '1000');
    assert.equal(lines[1], '1000');
    assert.deepEqual(lines[2].split(' ').sort(), ['1000', '50'].sort(), 'setgroups is allowed with subordinate gids');
    assert.deepEqual(lines.slice(3, 5), [`0 ${uid} 1`, `1 ${subStart} ${SUB_COUNT - 1}`]);
    const st = statSync(join(dir, 'rootfs', 'tmp', 'by-1000'));
    assert.equal(st.uid, subStart + 999, 'uid 1000 inside is subordinate uid start+999 outside');
    assert.equal(st.gid, subStart + 999);
  });

  test('a range outside the user\'s /etc/subuid is refused with newuidmap\'s reason', async () => {
    const dir = await rootlessBundle('refused', (s) => {
      s.linux.uidMappings = [{ containerID: 0, hostID: user.uid, size: 1 }, { containerID: 1, hostID: 1000, size: 1 }];
      s.process.args = ['true'];
    });
    const id = newId();
    const r = await runtime([...rootArgs(), 'run', '--bundle', dir, id]);
    assert.notEqual(r.code, 0, show(r));
    if (RUNTIME_NAME === 'berth-runtime.cjs') assert.match(r.stderr, /newuidmap.*(refused|not allowed|subuid)/is);
    const list = await runtime([...rootArgs(), 'list', '-q']);
    assert.ok(!list.stdout.includes(id), 'nothing is left of the failed container');
  });

  test('create, exec and delete as the user, state under $XDG_RUNTIME_DIR', async () => {
    const dir = await rootlessBundle('exec', (s) => { s.process.args = ['sleep', '1000']; });
    const xdg = join(user.home, 'xdg');
    mkdirSync(xdg, { mode: 0o700 });
    spawnSync('chown', [`${user.uid}:${user.gid}`, xdg]);
    const env = { XDG_RUNTIME_DIR: xdg };
    const id = newId();
    let r = await runtime(['create', '--bundle', dir, id], { env });
    assert.equal(r.code, 0, show(r));
    if (RUNTIME_NAME === 'berth-runtime.cjs') {
      assert.ok(existsSync(join(xdg, 'berth', id)), 'state in $XDG_RUNTIME_DIR/berth');
      assert.equal(statSync(join(xdg, 'berth')).mode & 0o7777, 0o1700, '0700 with the sticky bit, as runc');
    }
    r = await runtime(['start', id], { env });
    assert.equal(r.code, 0, show(r));
    r = await runtime(['state', id], { env });
    assert.equal(r.code, 0, show(r));
    const state = JSON.parse(r.stdout);
    assert.equal(state.status, 'running');
    trackedPids.set(state.pid, startTimeOf(state.pid) ?? '');
    assert.equal(statSync(`/proc/${state.pid}`).uid, user.uid, 'the init runs as the caller on the host');
    r = await runtime(['exec', id, 'sh', '-c', 'id -u; readlink /proc/1/exe'], { env });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '/bin/busybox']);
    r = await runtime(['exec', '--additional-gids', '5', id, 'true'], { env });
    assert.notEqual(r.code, 0, `groups cannot be set where setgroups is denied: ${show(r)}`);
    assert.match(r.stderr, /additional groups/);
    r = await runtime(['kill', id, 'KILL'], { env });
    assert.equal(r.code, 0, show(r));
    await waitFor('the container to stop', async () => JSON.parse((await runtime(['state', id], { env })).stdout).status === 'stopped');
    r = await runtime(['delete', id], { env });
    assert.equal(r.code, 0, show(r));
    assert.ok(!existsSync(join(xdg, 'berth', id)));
    containers.delete(id);
  });

  test('limits without a cgroup the user may write are a clear error; without limits there is no cgroup and no error', async () => {
    const id = newId();
    const dir = await rootlessBundle('limits', (s) => {
      s.process.args = ['true'];
      s.linux.resources = { pids: { limit: 50 } };
    });
    let r = await runtime([...rootArgs(), 'run', '--bundle', dir, id]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /cgroup/i);
    if (RUNTIME_NAME === 'berth-runtime.cjs') assert.match(r.stderr, /linux\.resources: the pids limit needs a cgroup, but this rootless container \(uid \d+\) cannot create one/);
    r = await runtime([...rootArgs(), 'list', '-q']);
    assert.ok(!r.stdout.includes(id), 'nothing is left');
    // Device rules alone are no limits: runc ignores them rootless too.
    const dir2 = await rootlessBundle('nolimits', (s) => {
      s.process.args = ['true'];
      s.linux.resources = { devices: [{ allow: false, access: 'rwm' }] };
    });
    r = await runtime([...rootArgs(), 'run', '--bundle', dir2, newId()]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stderr, '');
  });

  test('a cgroup delegated to the user is used, limits included', { skip: pidsHierarchy() ? false : 'no pids controller' }, async () => {
    const h = pidsHierarchy()!;
    // What systemd's Delegate=yes gives a user: a subtree it owns, with the caller in a leaf of it.
    const deleg = join(h.mountpoint, `${user.name}-deleg`);
    const leaf = join(deleg, 'leaf');
    mkdirSync(deleg);
    cgroupDirs.push(deleg);
    if (h.v2) writeFileSync(join(deleg, 'cgroup.subtree_control'), '+pids');
    mkdirSync(leaf);
    for (const d of [deleg, leaf]) {
      spawnSync('chown', [`${user.uid}:${user.gid}`, d]);
      for (const f of ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads', 'tasks']) {
        if (existsSync(join(d, f))) spawnSync('chown', [`${user.uid}:${user.gid}`, join(d, f)]);
      }
    }
    const id = newId();
    const dir = await rootlessBundle('deleg', (s) => {
      s.process.args = ['sleep', '1000'];
      s.linux.resources = { pids: { limit: 42 } };
    });
    let r = await runtime([...rootArgs(), 'run', '-d', '--bundle', dir, id], { cgroupProcs: join(leaf, 'cgroup.procs') });
    assert.equal(r.code, 0, show(r));
    r = await runtime([...rootArgs(), 'state', id]);
    const pid = JSON.parse(r.stdout).pid as number;
    trackedPids.set(pid, startTimeOf(pid) ?? '');
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')
      .find((l) => (h.v2 ? l.startsWith('0::') : l.split(':')[1].split(',').includes('pids')))!;
    const cg = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    const rel = deleg.slice(h.mountpoint.length);
    assert.equal(cg, `${rel}/berth/${id}`, 'the container sits in <delegated>/berth/<id>');
    assert.equal(readFileSync(join(h.mountpoint, cg, 'pids.max'), 'utf8').trim(), '42');
    r = await runtime([...rootArgs(), 'delete', '--force', id]);
    assert.equal(r.code, 0, show(r));
    containers.delete(id);
    await waitFor('the cgroup to go', () => !existsSync(join(h.mountpoint, cg)), 5000);
    await sleep(0);
  });

  test('additional groups need subordinate gids; a spec without a user namespace is refused', { skip: RUNTIME_NAME === 'berth-runtime.cjs' ? false : 'Berth\'s messages' }, async () => {
    const dir = await rootlessBundle('groups', (s) => {
      s.process.args = ['true'];
      s.process.user.additionalGids = [5];
    });
    let r = await runtime([...rootArgs(), 'run', '--bundle', dir, newId()]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /process\.user\.additionalGids: cannot set additional groups in a rootless container/);
    const dir2 = await rootlessBundle('nouserns', (s) => {
      s.process.args = ['true'];
      s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== 'user');
      delete s.linux.uidMappings;
      delete s.linux.gidMappings;
    });
    r = await runtime([...rootArgs(), 'run', '--bundle', dir2, newId()]);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /needs a user namespace/);
  });
});
