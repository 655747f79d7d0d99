/**
 * Integration: real container clients drive the OCI runtime under test.
 *
 *   1. podman (+ conmon):  podman --runtime <runtime> run --rm <busybox> echo hi; then, on one
 *                          detached container (run -d ... sleep 1000, a counter loop beside it):
 *                          exec sh -c (output, exit code), pause/unpause (freezer, counter stops
 *                          and resumes), stats --no-stream (mem usage, pids), update --memory 64m
 *                          (the container's memory cgroup limit), rm --force
 *   2. dockerd + containerd (runc v2 shim), daemon.json `runtimes: {berth: {path: <runtime>}}`:
 *                          docker run --runtime berth --rm <busybox> echo hi
 *
 * Runtime under test: $BERTH_RUNTIME, default <repo>/dist/berth-runtime.cjs. Any runc-compatible
 * binary works (validate the harness with BERTH_RUNTIME=/usr/sbin/runc or /usr/bin/crun).
 *
 * There is no registry: a busybox image is built from Debian's busybox-static (rootfs with
 * /bin/busybox + applet symlinks + /etc/passwd), tarred and imported (`podman import`,
 * `docker import`, CMD /bin/sh).
 *
 * Everything lives in one temp dir (/var/tmp/bpeers.XXXXXX: kept short, podman 4.3/conmon 2.1
 * stall 20 s when the storage runroot path is 51+ characters):
 *   - podman: CONTAINERS_CONF / CONTAINERS_STORAGE_CONF / CONTAINERS_REGISTRIES_CONF /
 *     REGISTRY_AUTH_FILE (must exist); cgroupfs, file events, ulimits within the host's hard
 *     limits (no CAP_SYS_RESOURCE here), netns none, private CNI config dir (else podman takes
 *     /etc/cni/net.d/cni.lock), its own cgroup parent. `podman import` writes a blob-info cache to
 *     /var/lib/containers/cache whatever the config says, so it runs in a private mount namespace
 *     with an overlay on /var/lib whose upper dir is in the temp dir. Podman passes no --root to
 *     the runtime (and drops --runtime-flag in its cleanup process), so the runtime would keep its
 *     state in its default root (/run/runc, ...); the wrapper below adds --root <temp>/... when a
 *     call has none.
 *   - docker: our own containerd (root/state/sockets/opt dir in the temp dir, CRI off) and dockerd
 *     (`containerd` = that socket; data-root, exec-root, pidfile, socket, trust key path, cgroup
 *     parent in the temp dir; overlay2 with a vfs fallback; no iptables/ip-masq/ip-forward,
 *     bridge none). Both run in one private mount namespace in which /run is a bind mount of a
 *     temp dir: the runc v2 shim puts its sockets in /run/containerd/s whatever containerd's
 *     `state` is, and dockerd creates /run/docker/plugins. Mounts made by the daemons (overlay2,
 *     shm, ...) live only in that namespace and vanish with it.
 *
 * Proof that the runtime under test ran the container: clients get a wrapper script (named
 * berth-runtime) that appends each call's argv to a log and execs the runtime; the test checks the
 * log holds `create` and `start` for the container id the client reports (--cidfile), and that
 * the container printed "hi". The podman detached-container tests likewise check the log for
 * `exec`, `pause`, `resume`, `update` and `delete` calls naming that container.
 *
 * Teardown (also after failures): containers removed, daemons stopped by PID (TERM, then KILL),
 * strays killed (processes whose command line names the temp dir, processes in the daemons' mount
 * namespace, processes in our cgroups), mounts under the temp dir unmounted (umount -n, so no
 * /run/mount/utab), our cgroups removed in every hierarchy (frozen ones thawed first; also the plain
 * directories podman makes for unmounted controllers, e.g. /sys/fs/cgroup/hugetlb/<parent>), the
 * temp dir deleted. Known host paths the peers like to create, and the peers' default cgroup
 * parents (libpod_parent, docker, ...), are checked before/after: new ones are reported (empty
 * such cgroups removed), and fail the run when BERTH_PEERS_STRICT=1 (off by default: other users
 * of the host create them too).
 *
 * Needs root and: podman conmon docker.io containerd busybox-static (+ util-linux, tar). Missing
 * prerequisites skip the tests unless BERTH_REQUIRE_PEERS=1. BERTH_PEERS_CMD_TIMEOUT_MS bounds
 * each client command (default 90 s). The docker CLI is $DOCKER_CLI, else /usr/local/bin/docker,
 * else docker on PATH.
 *
 * crun 1.8 refuses cgroup v1 "hybrid" hosts whose cgroup2 mount has controllers; to validate the
 * harness with it, run the test in `unshare -m sh -c 'umount -n /sys/fs/cgroup/unified && exec node ...'`.
 *
 * Run: node --import tsx --test test/integration/peers.test.ts
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNTIME = path.resolve(process.env.BERTH_RUNTIME ?? path.join(REPO, 'dist', 'berth-runtime.cjs'));
const REQUIRE_PEERS = process.env.BERTH_REQUIRE_PEERS === '1';
const STRICT_HOST = process.env.BERTH_PEERS_STRICT === '1';
const IMAGE = 'localhost/berth-busybox:peers';
const TEST_TIMEOUT_MS = 240_000;
const CMD_TIMEOUT_MS = Number(process.env.BERTH_PEERS_CMD_TIMEOUT_MS ?? 90_000); // per client command

// Host paths podman / dockerd / containerd / runc / crun / mount(8) create when not kept private.
const WATCHED_HOST_PATHS = [
  '/run/runc', '/run/crun', '/run/libpod', '/run/containers', '/run/docker', '/run/docker.sock',
  '/run/containerd', '/run/netns', '/run/mount', '/var/lib/containers', '/var/lib/docker',
  '/var/lib/containerd', '/var/lib/cni', '/etc/docker/key.json', '/opt/containerd',
  '/etc/cni/net.d/cni.lock', '/root/.docker', '/root/.config/containers', '/root/.local/share/containers',
];

// Default cgroup parents of the peers (podman with cgroupfs, dockerd, containerd's moby namespace).
const PEER_DEFAULT_CGROUPS = ['libpod_parent', 'docker', 'moby'];

// ---------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------

function which(name: string, extraDirs: string[] = []): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', ...extraDirs];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** true when the ELF file has no PT_INTERP program header (i.e. it is statically linked). */
function isStaticElf(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 /* 64-bit */) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface RunResult {
  cmd: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

function describeRun(r: RunResult): string {
  return `$ ${r.cmd}\n  exit=${r.code} signal=${r.signal}${r.timedOut ? ' (TIMED OUT)' : ''} ${r.ms.toFixed(0)} ms\n` +
    `  stdout: ${JSON.stringify(r.stdout.slice(-4000))}\n  stderr: ${JSON.stringify(r.stderr.slice(-4000))}`;
}

/** Run a command to completion (never throws; SIGKILL after timeoutMs). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = CMD_TIMEOUT_MS): Promise<RunResult> {
  const t0 = performance.now();
  const cmd = [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ cmd, code: 127, signal: null, stdout, stderr: stderr + String(e), ms: performance.now() - t0, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ cmd, code, signal, stdout, stderr, ms: performance.now() - t0, timedOut });
    });
  });
}

function mustSucceed(r: RunResult, what: string): RunResult {
  assert.ok(r.code === 0 && !r.timedOut, `${what} failed:\n${describeRun(r)}`);
  return r;
}

function tail(file: string, n = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch (e) {
    return `(cannot read ${file}: ${(e as Error).message})`;
  }
}

// ---------------------------------------------------------------------------------------------
// processes, mounts, cgroups
// ---------------------------------------------------------------------------------------------

/** A process we started in the background; `exited` resolves when node has reaped it. */
interface Daemon {
  name: string;
  pid: number;
  log: string;
  exited: Promise<void>;
  done: boolean;
}

function startDaemon(name: string, file: string, args: string[], env: NodeJS.ProcessEnv, log: string): Daemon {
  const fd = fs.openSync(log, 'a');
  const child = spawn(file, args, { env, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const d: Daemon = { name, pid: child.pid ?? -1, log, done: false, exited: Promise.resolve() };
  d.exited = new Promise<void>((resolve) => {
    child.on('exit', () => {
      d.done = true;
      resolve();
    });
    child.on('error', () => {
      d.done = true;
      resolve();
    });
  });
  child.unref();
  if (d.pid < 0) d.done = true;
  return d;
}

async function stopDaemon(d: Daemon | undefined, graceMs = 20_000): Promise<string[]> {
  const notes: string[] = [];
  if (!d || d.done) return notes;
  try {
    process.kill(d.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const t0 = Date.now();
  while (!d.done && Date.now() - t0 < graceMs) await sleep(100);
  if (!d.done) {
    notes.push(`${d.name} (pid ${d.pid}) ignored SIGTERM for ${graceMs} ms: SIGKILL`);
    try {
      process.kill(d.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([d.exited, sleep(5_000)]);
  }
  return notes;
}

function pids(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function mntNs(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** pids of this process and its ancestors: never to be killed by the sweeps. */
function protectedPids(): Set<number> {
  const s = new Set<number>([1]);
  let p = process.pid;
  while (p > 1 && !s.has(p)) {
    s.add(p);
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return s;
}

/** SIGTERM, then SIGKILL, the given pids (all of them started by this test). */
async function killPids(list: number[], label: string, notes: string[]): Promise<void> {
  const keep = protectedPids();
  const victims = [...new Set(list)].filter((p) => !keep.has(p) && alive(p));
  if (victims.length === 0) return;
  notes.push(`${label}: ${victims.map((p) => `${p} [${cmdline(p).slice(0, 160)}]`).join('; ')}`);
  for (const p of victims) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const t0 = Date.now();
  while (victims.some(alive) && Date.now() - t0 < 3_000) await sleep(100);
  for (const p of victims.filter(alive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const t1 = Date.now();
  while (victims.some(alive) && Date.now() - t1 < 3_000) await sleep(100);
}

function pidsMatching(pred: (pid: number) => boolean): number[] {
  const keep = protectedPids();
  return pids().filter((p) => !keep.has(p) && alive(p) && pred(p));
}

/** Mount points (in this process's mount namespace) at or below dir, deepest first. */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

async function unmountUnder(dir: string, env: NodeJS.ProcessEnv, notes: string[]): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) return;
    for (const mp of mps) {
      // -n: no /run/mount/utab bookkeeping on the host
      const r = await run('umount', ['-n', mp], env, 30_000);
      if (r.code !== 0) {
        const l = await run('umount', ['-n', '-l', mp], env, 30_000);
        notes.push(`umount ${mp}: ${r.stderr.trim()}${l.code === 0 ? ' (lazy unmount done)' : ` ; lazy: ${l.stderr.trim()}`}`);
      }
    }
  }
  const left = mountsUnder(dir);
  if (left.length) notes.push(`still mounted: ${left.join(' ')}`);
}

/** Mount points of every cgroup hierarchy visible here (v1 controllers, name=systemd, cgroup2). */
function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') roots.push(line.split(' ')[4]);
  }
  return [...new Set(roots)];
}

function topLevelCgroups(): Set<string> {
  const s = new Set<string>();
  for (const r of cgroupRoots()) {
    try {
      for (const e of fs.readdirSync(r, { withFileTypes: true })) if (e.isDirectory()) s.add(path.join(r, e.name));
    } catch {
      /* unreadable hierarchy */
    }
  }
  return s;
}

function cgroupProcs(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const l of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l.trim()) out.push(Number(l));
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
    } catch {
      /* vanished */
    }
  };
  walk(dir);
  return out;
}

/** Thaw every frozen cgroup v1 freezer cgroup at or below dir (frozen tasks cannot die). */
function thawTree(dir: string, notes: string[]): void {
  try {
    const f = path.join(dir, 'freezer.state');
    if (fs.existsSync(f) && fs.readFileSync(f, 'utf8').trim() !== 'THAWED') {
      fs.writeFileSync(f, 'THAWED');
      notes.push(`thawed ${dir}`);
    }
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) thawTree(path.join(dir, e.name), notes);
  } catch {
    /* vanished */
  }
}

/** rmdir a cgroup and its children (bottom-up), killing what still runs in it (ours). */
async function removeCgroupTree(dir: string, notes: string[]): Promise<void> {
  if (!fs.existsSync(dir)) return;
  thawTree(dir, notes);
  for (let attempt = 0; attempt < 5; attempt++) {
    const procs = cgroupProcs(dir);
    if (procs.length) await killPids(procs, `processes left in ${dir}`, notes);
    const rm = (d: string): boolean => {
      let ok = true;
      try {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) ok = rm(path.join(d, e.name)) && ok;
        fs.rmdirSync(d);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
      }
      return ok;
    };
    if (rm(dir)) return;
    await sleep(200 * (attempt + 1));
  }
  notes.push(`could not remove cgroup ${dir}`);
}

const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * Remove our cgroup `name` (a top-level cgroup parent) everywhere: in every hierarchy, and as a
 * plain directory beside them under /sys/fs/cgroup (a tmpfs here). Podman (cgroupfs manager, v1)
 * mkdirs its cgroup parent in /sys/fs/cgroup/<controller> for every controller /proc/cgroups lists
 * as enabled, mounted or not, and writes conmon's pid to a `tasks` file there: hugetlb is enabled
 * but not mounted on this host, so podman leaves /sys/fs/cgroup/hugetlb/<parent>/conmon/tasks as
 * ordinary files on the tmpfs.
 */
async function removeOurCgroups(name: string, notes: string[]): Promise<void> {
  const hierarchies = cgroupRoots();
  for (const r of hierarchies) await removeCgroupTree(path.join(r, name), notes);
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync('/sys/fs/cgroup', { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join('/sys/fs/cgroup', e.name, name);
    if (!e.isDirectory() || hierarchies.includes(path.dirname(dir)) || !fs.existsSync(dir)) continue;
    const type = fs.statfsSync(dir).type;
    if (type === CGROUP_SUPER_MAGIC || type === CGROUP2_SUPER_MAGIC) continue; // a hierarchy after all
    try {
      fs.rmSync(dir, { recursive: true });
    } catch (err) {
      notes.push(`could not remove ${dir}: ${(err as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// preflight
// ---------------------------------------------------------------------------------------------

const TOOLS = {
  podman: which('podman'),
  conmon: which('conmon', ['/usr/libexec/podman']),
  dockerd: which('dockerd'),
  containerd: which('containerd'),
  shim: which('containerd-shim-runc-v2'),
  docker: process.env.DOCKER_CLI ?? (isExecutable('/usr/local/bin/docker') ? '/usr/local/bin/docker' : which('docker')),
  unshare: which('unshare'),
  nsenter: which('nsenter'),
  tar: which('tar'),
  mount: which('mount'),
  umount: which('umount'),
  busybox: ['/bin/busybox', '/usr/bin/busybox'].find((p) => isExecutable(p) && isStaticElf(p)),
};

function missing(names: (keyof typeof TOOLS)[]): string | undefined {
  const m = names.filter((n) => !TOOLS[n]);
  return m.length ? `missing: ${m.join(', ')}` : undefined;
}

const isRoot = process.getuid?.() === 0;
const common = isRoot ? missing(['unshare', 'tar', 'mount', 'umount', 'busybox']) : 'needs root';
const podmanSkip = common ?? missing(['podman', 'conmon']);
const dockerSkip = common ?? missing(['dockerd', 'containerd', 'shim', 'docker', 'nsenter']);
const skipReason = (r: string | undefined): string | false => (r && !REQUIRE_PEERS ? `${r} (install: podman conmon docker.io containerd busybox-static)` : false);

// ---------------------------------------------------------------------------------------------
// shared fixture: temp root, busybox image tarball, runtime wrappers
// ---------------------------------------------------------------------------------------------

let T = '';
let SUFFIX = '';
let BASE_ENV: NodeJS.ProcessEnv = {};
let hostBefore = new Map<string, boolean>();
let cgroupsBefore = new Set<string>();
let ourCgroupNames: string[] = [];
const setupNotes: string[] = [];

function hostLimits(): { nofile: number; nproc: number } {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const hard = (label: string): number => {
    const line = limits.split('\n').find((l) => l.startsWith(label)) ?? '';
    const v = line.slice(label.length).trim().split(/\s+/)[1];
    return v === undefined || v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v);
  };
  const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  return { nofile: Math.min(hard('Max open files'), 1048576), nproc: Math.min(hard('Max processes'), pidMax) };
}

/** A runc-CLI wrapper: logs each call, adds --root when the client gave none, execs the runtime. */
function writeWrapper(dir: string, log: string, defaultRoot: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, 'berth-runtime');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(
    p,
    `#!/bin/sh
# written by test/integration/peers.test.ts: record the client's call, then run the runtime under test
printf '%s\\n' "$*" >> ${q(log)}
case " $* " in
  *" --root "*|*" --root="*) ;;
  *) set -- --root ${q(defaultRoot)} "$@" ;;
esac
exec ${q(RUNTIME)} "$@"
`,
    { mode: 0o755 },
  );
  return p;
}

/** A running runtime call of ours: the wrapper itself, or the runtime it exec'd (names our dir). */
function isRuntimeCall(cmd: string, wrapper: string, dir: string): boolean {
  return cmd.includes(wrapper) || (cmd.includes(RUNTIME) && cmd.includes(dir));
}

function readCalls(log: string): string[] {
  try {
    return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function assertRanUnderRuntime(calls: string[], cid: string, what: string): void {
  const create = calls.find((l) => / create( |$)/.test(` ${l}`) && l.includes(cid));
  const start = calls.find((l) => / start( |$)/.test(` ${l}`) && l.endsWith(cid));
  assert.ok(
    create && start,
    `${what}: the runtime under test was not asked to create+start container ${cid}; calls seen:\n  ${calls.join('\n  ') || '(none)'}`,
  );
}

function readCid(file: string, calls: string[]): string {
  let cid = '';
  try {
    cid = fs.readFileSync(file, 'utf8').trim();
  } catch {
    /* client removed it */
  }
  if (!/^[0-9a-f]{64}$/.test(cid)) {
    // fall back to the id the client passed to `create`
    const c = calls.find((l) => / create /.test(` ${l}`));
    cid = c?.split(' ').pop() ?? '';
  }
  return cid;
}

before(async () => {
  if (podmanSkip && dockerSkip && !REQUIRE_PEERS) return;
  if (!isRoot) return;
  hostBefore = new Map(WATCHED_HOST_PATHS.map((p) => [p, fs.existsSync(p)]));
  cgroupsBefore = topLevelCgroups();
  T = fs.mkdtempSync('/var/tmp/bpeers.');
  SUFFIX = path.basename(T).replace(/^bpeers\./, '').replace(/[^A-Za-z0-9]/g, '');
  ourCgroupNames = [`berth-peers-${SUFFIX}-podman`, `berth-peers-${SUFFIX}-docker`];
  for (const d of ['home', 'tmp', 'rootfs']) fs.mkdirSync(path.join(T, d), { recursive: true });
  const pathDirs = [path.dirname(process.execPath), ...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  BASE_ENV = {
    PATH: [...new Set(pathDirs.filter(Boolean))].join(':'),
    HOME: path.join(T, 'home'),
    TMPDIR: path.join(T, 'tmp'),
    LANG: 'C.UTF-8',
  };

  // busybox rootfs -> tar (Debian's busybox-static, one symlink per applet at its canonical path)
  const t0 = performance.now();
  const root = path.join(T, 'rootfs');
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'var']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync(TOOLS.busybox!, path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const list = mustSucceed(await run(TOOLS.busybox!, ['--list-full'], BASE_ENV), 'busybox --list-full');
  for (const applet of list.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
    const p = path.join(root, applet);
    if (fs.existsSync(p)) continue;
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.symlinkSync('/bin/busybox', p);
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  mustSucceed(await run(TOOLS.tar!, ['--numeric-owner', '-C', root, '-cf', path.join(T, 'busybox.tar'), '.'], BASE_ENV), 'tar of the busybox rootfs');
  setupNotes.push(`busybox rootfs + tar: ${(performance.now() - t0).toFixed(0)} ms`);
});

after(async () => {
  if (!T) return;
  const notes: string[] = [];
  // safety net: anything still running that names the temp dir is ours
  await killPids(pidsMatching((p) => cmdline(p).includes(T)), 'stray processes naming the temp dir', notes);
  for (const n of ourCgroupNames) await removeOurCgroups(n, notes);
  await unmountUnder(T, BASE_ENV, notes);
  if (mountsUnder(T).length === 0) {
    const r = await run('rm', ['-rf', '--one-file-system', T], BASE_ENV, 120_000);
    if (r.code !== 0) notes.push(`rm -rf ${T}: ${r.stderr.trim()}`);
  } else {
    notes.push(`left ${T} in place: mounts remain`);
  }
  // the peers' default cgroup parents (podman's libpod_parent, dockerd's docker, ...) must not have
  // appeared: every client here has its own parent. Ones that appeared during the run are removed
  // when empty (rmdir fails on a cgroup in use, e.g. by a concurrent user's container).
  const newCgroups = [...topLevelCgroups()].filter((c) => !cgroupsBefore.has(c) && PEER_DEFAULT_CGROUPS.includes(path.basename(c)));
  for (const c of newCgroups) {
    const rmEmpty = (d: string): void => {
      try {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmEmpty(path.join(d, e.name));
        if (cgroupProcs(d).length === 0) fs.rmdirSync(d);
      } catch {
        /* in use or gone */
      }
    };
    rmEmpty(c);
  }
  const leaked = WATCHED_HOST_PATHS.filter((p) => hostBefore.get(p) === false && fs.existsSync(p));
  for (const n of [...setupNotes, ...notes]) console.log(`peers: ${n}`);
  if (newCgroups.length) console.log(`peers: peer default cgroups appeared during the run (removed if empty): ${newCgroups.join(' ')}`);
  if (leaked.length) console.log(`peers: host paths that appeared during the run: ${leaked.join(' ')}`);
  if (STRICT_HOST) {
    assert.deepEqual(leaked, [], 'host paths created during the run');
    assert.deepEqual(newCgroups, [], 'cgroups created outside our own parents');
    assert.ok(!fs.existsSync(T), `${T} not removed`);
  }
});

// ---------------------------------------------------------------------------------------------
// 1. podman
// ---------------------------------------------------------------------------------------------

/** Does a logged runtime call (argv joined by spaces) run `verb` on container id? */
function isCall(line: string, verb: string, id: string): boolean {
  const argv = line.split(' ');
  const at = argv.indexOf(verb);
  return at >= 0 && argv.slice(at + 1).includes(id);
}

/** The cgroup v1 path of pid in the hierarchy holding controller (from /proc/<pid>/cgroup). */
function cgroupPath(pid: number, controller: string): string {
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctls, p] = line.split(':');
    if (ctls?.split(',').includes(controller)) return p;
  }
  throw new Error(`pid ${pid} has no ${controller} cgroup`);
}

/** A file of pid's cgroup in the v1 hierarchy holding controller, as the host sees it. */
function cgroupFile(pid: number, controller: string, file: string): string {
  const cgPath = cgroupPath(pid, controller);
  for (const root of cgroupRoots()) {
    const f = path.join(root, cgPath, file);
    if (path.basename(root).split(',').includes(controller) && fs.existsSync(f)) return f;
  }
  throw new Error(`no ${file} for pid ${pid}'s ${controller} cgroup ${cgPath}`);
}

/** The counter the podman detached container's loop writes to /tmp/count (read via /proc/<pid>/root). */
async function readCounter(pid: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    try {
      const n = Number.parseInt(fs.readFileSync(`/proc/${pid}/root/tmp/count`, 'utf8'), 10);
      if (Number.isFinite(n)) return n;
    } catch {
      /* not written yet */
    }
    await sleep(20);
  }
  throw new Error(`cannot read /proc/${pid}/root/tmp/count`);
}

/** Wait (up to ms) for the counter to pass above; returns the last value read. */
async function waitCounter(pid: number, above: number, ms: number): Promise<number> {
  const t0 = Date.now();
  let n = above;
  while (Date.now() - t0 < ms) {
    try {
      n = await readCounter(pid);
    } catch {
      /* not written yet */
    }
    if (n > above) return n;
    await sleep(50);
  }
  return n;
}

/** "1.23MB" / "67.35GB" / "512kB" / "3B" (podman's decimal sizes; binary KiB/MiB/GiB too) -> bytes. */
function parseSize(s: string): number {
  const m = /^\s*([\d.]+)\s*([kKMGT]?i?)B\s*$/.exec(s);
  if (!m) return Number.NaN;
  const unit = m[2].toUpperCase();
  const base = unit.endsWith('I') ? 1024 : 1000;
  return Number(m[1]) * base ** (unit ? 'KMGT'.indexOf(unit[0]) + 1 : 0);
}

test('podman --runtime <runtime>: run --rm, exec, pause/unpause, stats, update', { timeout: TEST_TIMEOUT_MS, skip: skipReason(podmanSkip) }, async (t: TestContext) => {
  assert.ok(isRoot, 'needs root');
  assert.ok(!podmanSkip, podmanSkip);
  assert.ok(isExecutable(RUNTIME), `runtime under test ${RUNTIME} is not an executable file (build it, or set BERTH_RUNTIME)`);
  const P = path.join(T, 'p');
  const calls = path.join(P, 'runtime-calls.log');
  for (const d of ['c', 'cni', 'tmp', 'rtstate', 'varlib-up', 'varlib-work']) fs.mkdirSync(path.join(P, d), { recursive: true });
  const wrapper = writeWrapper(path.join(P, 'bin'), calls, path.join(P, 'rtstate'));
  const lim = hostLimits();
  const env: NodeJS.ProcessEnv = {
    ...BASE_ENV,
    CONTAINERS_CONF: path.join(P, 'c/containers.conf'),
    CONTAINERS_STORAGE_CONF: path.join(P, 'c/storage.conf'),
    CONTAINERS_REGISTRIES_CONF: path.join(P, 'c/registries.conf'),
    REGISTRY_AUTH_FILE: path.join(P, 'c/auth.json'),
    TMPDIR: path.join(P, 'tmp'),
  };
  fs.writeFileSync(env.REGISTRY_AUTH_FILE!, '{}\n');
  fs.writeFileSync(env.CONTAINERS_REGISTRIES_CONF!, 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  const storageConf = (driver: string) =>
    fs.writeFileSync(
      env.CONTAINERS_STORAGE_CONF!,
      `[storage]\ndriver = "${driver}"\ngraphroot = "${P}/${driver === 'overlay' ? 'root' : `root-${driver}`}"\nrunroot = "${P}/run"\n`,
    );
  storageConf('overlay');
  // no custom static_dir: podman 4.3 does not pass it to the cleanup process (20 s conmon timeouts)
  fs.writeFileSync(
    env.CONTAINERS_CONF!,
    `[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=${lim.nofile}:${lim.nofile}", "nproc=${lim.nproc}:${lim.nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${P}/events.log"
tmp_dir = "${P}/tmp"
image_copy_tmp_dir = "${P}/tmp"

[network]
network_config_dir = "${P}/cni"
`,
  );
  assert.ok((P + '/run').length < 51, 'podman runroot path too long for conmon');
  const podman = TOOLS.podman!;
  const cgParent = `/${ourCgroupNames[0]}`;
  const notes: string[] = [];
  let longCid = ''; // the detached container, while it exists
  try {
    // import: private mount namespace with /var/lib overlaid (containers/image blob-info cache)
    const importImage = () =>
      run(
        TOOLS.unshare!,
        [
          '--mount', '--propagation', 'private', '--', 'sh', '-c',
          'mount -n -t overlay overlay -o "lowerdir=/var/lib,upperdir=$1,workdir=$2" /var/lib && shift 2 && exec "$@"',
          'sh', path.join(P, 'varlib-up'), path.join(P, 'varlib-work'),
          podman, 'import', '--change', 'CMD ["/bin/sh"]', path.join(T, 'busybox.tar'), IMAGE,
        ],
        env,
      );
    let imp = await importImage();
    if (imp.code !== 0 && /overlay/i.test(imp.stderr)) {
      // e.g. the temp dir itself on overlayfs: fall back to the vfs driver
      notes.push(`podman storage driver overlay failed, using vfs: ${imp.stderr.trim().slice(0, 300)}`);
      storageConf('vfs');
      imp = await importImage();
    }
    mustSucceed(imp, 'podman import');
    t.diagnostic(`podman import: ${imp.ms.toFixed(0)} ms`);

    // podman takes the runtime from --runtime on every command (the container records only its name)
    const pod = (args: string[], timeoutMs?: number) => run(podman, ['--runtime', wrapper, ...args], env, timeoutMs);
    const callsText = () => readCalls(calls).map((l) => l.replace(/[0-9a-f]{64}/g, '<id>').replaceAll(T, '$T')).join(' | ');

    await t.test('run --rm busybox echo hi', async (t: TestContext) => {
      const cidfile = path.join(P, 'cid');
      const r = await pod(['run', '--rm', '--pull', 'never', '--cidfile', cidfile, '--cgroup-parent', cgParent, IMAGE, 'echo', 'hi']);
      t.diagnostic(`podman run --rm: ${r.ms.toFixed(0)} ms`);
      const c = readCalls(calls);
      assert.ok(
        r.code === 0 && r.stdout === 'hi\n',
        `podman run did not print hi:\n${describeRun(r)}\nruntime calls:\n  ${c.join('\n  ') || '(none)'}`,
      );
      const cid = readCid(cidfile, c);
      assertRanUnderRuntime(c, cid, 'podman');
      t.diagnostic(`runtime calls: ${callsText()}`);
    });

    // One detached container for exec / pause / stats / update: pid 1 is `sleep 1000`, beside it a
    // loop that bumps a counter in /tmp/count (written via rename, read from the host through
    // /proc/<pid>/root) every 20 ms.
    const longCidfile = path.join(P, 'cid-long');
    let pid = 0;
    let conmonPid = 0;
    let pausedState: RunResult | undefined;
    const cgFile = (controller: string, file: string) => cgroupFile(pid, controller, file);
    await t.test('run -d busybox sleep 1000 (with a counter loop)', async (t: TestContext) => {
      const loop = 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.02; done & exec sleep 1000';
      const r = await pod(['run', '-d', '--pull', 'never', '--cidfile', longCidfile, '--cgroup-parent', cgParent, IMAGE, 'sh', '-c', loop]);
      t.diagnostic(`podman run -d: ${r.ms.toFixed(0)} ms`);
      const c = readCalls(calls);
      mustSucceed(r, `podman run -d (runtime calls: ${callsText()})`);
      longCid = readCid(longCidfile, []);
      assert.match(longCid, /^[0-9a-f]{64}$/, `no container id in ${longCidfile}`);
      assert.equal(r.stdout.trim(), longCid, 'podman run -d printed another id than its --cidfile');
      assertRanUnderRuntime(c, longCid, 'podman');
      const st = mustSucceed(await pod(['inspect', '--format', '{{.State.Status}} {{.State.Pid}} {{.State.ConmonPid}}', longCid]), 'podman inspect');
      const [status, p, cp] = st.stdout.trim().split(' ');
      conmonPid = Number(cp);
      assert.equal(status, 'running', `container status after run -d:\n${describeRun(st)}`);
      pid = Number(p);
      assert.ok(pid > 0 && alive(pid), `container pid ${p} is not alive`);
      assert.match(cmdline(pid), /^sleep 1000$/, `pid 1 of the container (host pid ${pid}) is not sleep 1000`);
      for (const ctl of ['memory', 'freezer', 'pids']) {
        assert.ok(
          cgroupPath(pid, ctl).startsWith(`${cgParent}/`),
          `${ctl} cgroup of the container (${cgroupPath(pid, ctl)}) is not under --cgroup-parent ${cgParent}`,
        );
      }
      const n = await waitCounter(pid, 0, 5_000);
      assert.ok(n > 0, 'the counter loop in the container does not advance');
    });
    const needCtr = longCid && pid ? false : 'the detached container did not start';

    await t.test('exec sh -c: output and exit code', { skip: needCtr }, async (t: TestContext) => {
      const script = 'echo out-$((6*7)); tr "\\0" " " < /proc/1/cmdline; echo; echo err-line >&2; exit 7';
      const r = await pod(['exec', longCid, 'sh', '-c', script]);
      t.diagnostic(`podman exec (exit 7): ${r.ms.toFixed(0)} ms`);
      assert.ok(
        r.code === 7 && !r.timedOut && r.stdout === 'out-42\nsleep 1000 \n' && r.stderr.includes('err-line'),
        `podman exec sh -c: expected exit 7, stdout "out-42\\nsleep 1000 \\n", stderr with err-line:\n${describeRun(r)}\nruntime calls: ${callsText()}`,
      );
      const ok = await pod(['exec', longCid, 'sh', '-c', 'cat /tmp/count > /dev/null && echo fine']);
      assert.ok(ok.code === 0 && ok.stdout === 'fine\n', `podman exec (exit 0):\n${describeRun(ok)}`);
      const execs = readCalls(calls).filter((l) => isCall(l, 'exec', longCid));
      assert.ok(execs.length >= 2, `the runtime under test was not asked to exec in ${longCid} twice; calls: ${callsText()}`);
      t.diagnostic(`exec call: ${execs[0].replace(/[0-9a-f]{64}/g, '<id>').replaceAll(T, '$T')}`);
    });

    await t.test('pause / unpause: processes frozen, then resumed', { skip: needCtr }, async (t: TestContext) => {
      const status = async () => mustSucceed(await pod(['inspect', '--format', '{{.State.Status}}', longCid]), 'podman inspect').stdout.trim();
      const freezer = cgFile('freezer', 'freezer.state');
      const before = await readCounter(pid);
      assert.ok((await waitCounter(pid, before, 3_000)) > before, 'counter does not advance before pause');
      const pause = await pod(['pause', longCid]);
      t.diagnostic(`podman pause: ${pause.ms.toFixed(0)} ms`);
      let unpause: RunResult | undefined;
      try {
        mustSucceed(pause, `podman pause (runtime calls: ${callsText()})`);
        assert.equal(await status(), 'paused', 'podman inspect .State.Status after pause');
        assert.equal(fs.readFileSync(freezer, 'utf8').trim(), 'FROZEN', `${freezer} after pause`);
        const p0 = await readCounter(pid);
        await sleep(500);
        const p1 = await readCounter(pid);
        assert.equal(p1, p0, 'the counter advanced while the container was paused');
        // checked in the next subtest (podman 4.3 itself does not ask the runtime here)
        pausedState = await run(RUNTIME, ['--root', path.join(P, 'rtstate'), 'state', longCid], env);
      } finally {
        unpause = await pod(['unpause', longCid]);
        t.diagnostic(`podman unpause: ${unpause.ms.toFixed(0)} ms`);
        if (unpause.code !== 0 && fs.readFileSync(freezer, 'utf8').trim() !== 'THAWED') {
          fs.writeFileSync(freezer, 'THAWED'); // else the container cannot be stopped
          t.diagnostic(`podman unpause failed: thawed ${freezer} by hand`);
        }
      }
      mustSucceed(unpause, `podman unpause (runtime calls: ${callsText()})`);
      assert.equal(await status(), 'running', 'podman inspect .State.Status after unpause');
      assert.equal(fs.readFileSync(freezer, 'utf8').trim(), 'THAWED', `${freezer} after unpause`);
      const u0 = await readCounter(pid);
      assert.ok((await waitCounter(pid, u0, 3_000)) > u0, 'the counter does not advance after unpause');
      const c = readCalls(calls);
      assert.ok(c.some((l) => isCall(l, 'pause', longCid)), `no runtime pause call for ${longCid}: ${callsText()}`);
      assert.ok(c.some((l) => isCall(l, 'resume', longCid)), `no runtime resume call for ${longCid}: ${callsText()}`);
    });

    await t.test('runtime `state` of the paused container says "paused" (as runc\'s does)', { skip: needCtr }, () => {
      assert.ok(pausedState, 'the container was not paused');
      mustSucceed(pausedState, 'runtime state while paused');
      assert.equal(JSON.parse(pausedState.stdout).status, 'paused', `\`${RUNTIME} state\` of the paused container:\n${pausedState.stdout}`);
    });

    await t.test('stats --no-stream --format json: mem usage and pids', { skip: needCtr }, async (t: TestContext) => {
      const r = mustSucceed(await pod(['stats', '--no-stream', '--format', 'json', longCid]), 'podman stats');
      t.diagnostic(`podman stats: ${r.ms.toFixed(0)} ms: ${r.stdout.replace(/\s+/g, ' ').trim()}`);
      const all = JSON.parse(r.stdout) as Record<string, string>[];
      const s = all.find((e) => longCid.startsWith(String(e.id)));
      assert.ok(s, `no stats entry for ${longCid}:\n${r.stdout}`);
      const pids = Number(s.pids);
      // sleep 1000 + the loop's subshell (+ its transient sleep/mv)
      assert.ok(pids >= 2 && pids <= 10, `stats pids ${s.pids}: expected 2..10`);
      const [usage, limit] = String(s.mem_usage).split('/').map((x) => parseSize(x));
      assert.ok(usage > 0 && usage < 64e6, `stats mem_usage ${s.mem_usage}: usage should be > 0 and < 64 MB`);
      assert.ok(limit > usage, `stats mem_usage ${s.mem_usage}: limit should exceed usage`);
      const host = Number(fs.readFileSync(cgFile('memory', 'memory.usage_in_bytes'), 'utf8'));
      assert.ok(host > 0, `memory.usage_in_bytes of the container cgroup is ${host}`);
    });

    await t.test('update --memory 64m: memory cgroup limit', { skip: needCtr }, async (t: TestContext) => {
      const limitFile = cgFile('memory', 'memory.limit_in_bytes');
      const before = Number(fs.readFileSync(limitFile, 'utf8'));
      assert.ok(before > 64 * 2 ** 20, `memory limit before update is already ${before}`);
      const r = await pod(['update', '--memory', '64m', longCid]);
      t.diagnostic(`podman update --memory 64m: ${r.ms.toFixed(0)} ms`);
      mustSucceed(r, `podman update --memory 64m (runtime calls: ${callsText()})`);
      const upd = readCalls(calls).filter((l) => isCall(l, 'update', longCid));
      assert.ok(upd.length, `no runtime update call for ${longCid}: ${callsText()}`);
      t.diagnostic(`update call: ${upd[0].replace(/[0-9a-f]{64}/g, '<id>').replaceAll(T, '$T')}`);
      assert.equal(fs.readFileSync(limitFile, 'utf8').trim(), String(64 * 2 ** 20), `${limitFile} after update`);
      const inside = await pod(['exec', longCid, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes']);
      assert.ok(inside.code === 0 && inside.stdout.trim() === String(64 * 2 ** 20), `memory.limit_in_bytes seen inside the container:\n${describeRun(inside)}`);
      // (podman 4.3.1 does not record the new limit: `podman inspect` keeps .HostConfig.Memory 0
      // and `podman stats` keeps showing the host's memory as the limit, with runc too)
      const insp = mustSucceed(await pod(['inspect', '--format', '{{.State.Status}}', longCid]), 'podman inspect');
      assert.equal(insp.stdout.trim(), 'running', 'podman inspect .State.Status after update');
      const n = await readCounter(pid);
      assert.ok((await waitCounter(pid, n, 3_000)) > n, 'the counter does not advance after update');
    });

    await t.test('rm --force the detached container', { skip: needCtr }, async (t: TestContext) => {
      const r = await pod(['rm', '--force', '--time', '0', longCid]);
      t.diagnostic(`podman rm --force: ${r.ms.toFixed(0)} ms`);
      mustSucceed(r, `podman rm --force (runtime calls: ${callsText()})`);
      const cid = longCid;
      longCid = '';
      assert.ok(!alive(pid), `container process ${pid} still alive after podman rm`);
      const conmonGone = await waitFor(() => !alive(conmonPid), 5_000, () => false);
      assert.ok(conmonGone, `conmon (pid ${conmonPid}) of the removed container still running 5 s after podman rm`);
      const ps = mustSucceed(await pod(['ps', '--all', '--quiet', '--no-trunc']), 'podman ps');
      assert.ok(!ps.stdout.includes(cid), `podman ps still lists ${cid}`);
      assert.ok(readCalls(calls).some((l) => isCall(l, 'delete', cid)), `no runtime delete call for ${cid}: ${callsText()}`);
      assert.ok(!fs.existsSync(path.join(P, 'rtstate', cid)), 'the runtime kept state for the removed container');
      t.diagnostic(`runtime calls: ${callsText()}`);
    });
  } finally {
    const t0 = performance.now();
    // runtime calls still running now are hung (each call is short-lived); not conmon (its command
    // line names the wrapper too): the detached container's conmon must write the exit file `podman rm` waits for
    const conmonCall = (p: number) => path.basename(cmdline(p).split(' ')[0]) === 'conmon';
    await killPids(pidsMatching((p) => isRuntimeCall(cmdline(p), wrapper, P) && !conmonCall(p)), 'runtime calls still running', notes);
    if (longCid) {
      const r = await run(podman, ['--runtime', wrapper, 'rm', '--force', '--time', '0', longCid], env, 30_000);
      notes.push(`removed the detached container ${longCid}: exit ${r.code} ${r.stderr.trim().slice(0, 300)}`);
    }
    // the cleanup process conmon starts (`podman container cleanup`) may still be running
    for (let i = 0; i < 50 && pidsMatching((p) => cmdline(p).includes(P)).length; i++) await sleep(100);
    await killPids(pidsMatching((p) => cmdline(p).includes(P)), 'podman processes still running', notes);
    await run(podman, ['--runtime', wrapper, 'rm', '--all', '--force', '--time', '0'], env, 30_000);
    await killPids(pidsMatching((p) => cmdline(p).includes(P)), 'podman processes still running after rm', notes);
    // containers the runtime still knows about in the wrapper's --root
    for (const id of fs.existsSync(path.join(P, 'rtstate')) ? fs.readdirSync(path.join(P, 'rtstate')) : []) {
      if (/^[0-9a-f]{64}$/.test(id)) {
        await run(RUNTIME, ['--root', path.join(P, 'rtstate'), 'delete', '--force', id], env, 30_000);
        notes.push(`runtime state of ${id} was left in the runtime's --root`);
      }
    }
    await removeOurCgroups(ourCgroupNames[0], notes);
    await unmountUnder(P, BASE_ENV, notes);
    for (const n of notes) t.diagnostic(`teardown: ${n}`);
    t.diagnostic(`podman teardown: ${(performance.now() - t0).toFixed(0)} ms`);
  }
});

// ---------------------------------------------------------------------------------------------
// 2. dockerd (+ private containerd), daemon.json runtimes.berth.path
// ---------------------------------------------------------------------------------------------

async function waitFor(pred: () => Promise<boolean> | boolean, ms: number, dead: () => boolean): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await pred()) return true;
    if (dead()) return false;
    await sleep(100);
  }
  return false;
}

test('docker run --runtime berth --rm busybox echo hi (dockerd runtimes entry)', { timeout: TEST_TIMEOUT_MS, skip: skipReason(dockerSkip) }, async (t: TestContext) => {
  assert.ok(isRoot, 'needs root');
  assert.ok(!dockerSkip, dockerSkip);
  assert.ok(isExecutable(RUNTIME), `runtime under test ${RUNTIME} is not an executable file (build it, or set BERTH_RUNTIME)`);
  const D = path.join(T, 'd');
  const C = path.join(D, 'ctd');
  for (const d of ['run', 'data', 'exec', 'cli', 'ctd/root', 'ctd/state', 'ctd/opt']) fs.mkdirSync(path.join(D, d), { recursive: true });
  const calls = path.join(D, 'runtime-calls.log');
  const wrapper = writeWrapper(path.join(D, 'bin'), calls, path.join(D, 'rtstate'));
  const ctdSock = path.join(C, 'containerd.sock');
  const dockerSock = path.join(D, 'docker.sock');
  const env: NodeJS.ProcessEnv = { ...BASE_ENV, DOCKER_HOST: `unix://${dockerSock}`, DOCKER_CONFIG: path.join(D, 'cli') };
  const daemonEnv: NodeJS.ProcessEnv = { ...BASE_ENV };
  fs.writeFileSync(
    path.join(C, 'config.toml'),
    `version = 2
root = "${C}/root"
state = "${C}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${ctdSock}"

[ttrpc]
  address = "${ctdSock}.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${C}/opt"
`,
  );
  const daemonJson = (driver: string) =>
    JSON.stringify(
      {
        'data-root': path.join(D, 'data'),
        'exec-root': path.join(D, 'exec'),
        pidfile: path.join(D, 'docker.pid'),
        hosts: [`unix://${dockerSock}`],
        containerd: ctdSock,
        'deprecated-key-path': path.join(D, 'key.json'),
        'storage-driver': driver,
        iptables: false,
        'ip-masq': false,
        'ip-forward': false,
        bridge: 'none',
        'cgroup-parent': `/${ourCgroupNames[1]}`,
        runtimes: { berth: { path: wrapper } },
      },
      null,
      2,
    );
  const docker = TOOLS.docker!;
  let containerd: Daemon | undefined;
  let dockerd: Daemon | undefined;
  let ns: string | undefined;
  const notes: string[] = [];
  try {
    // containerd in a new mount namespace whose /run is <temp>/d/run
    const t0 = performance.now();
    containerd = startDaemon(
      'containerd',
      TOOLS.unshare!,
      ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -n --bind "$1" /run && shift && exec "$@"', 'sh', path.join(D, 'run'), TOOLS.containerd!, '--config', path.join(C, 'config.toml')],
      daemonEnv,
      path.join(D, 'containerd.log'),
    );
    const ctdUp = await waitFor(() => fs.existsSync(ctdSock), 30_000, () => containerd!.done);
    assert.ok(ctdUp, `containerd did not come up:\n${tail(containerd.log)}`);
    ns = mntNs(containerd.pid);
    assert.ok(ns && ns !== mntNs(process.pid), 'containerd is not in a private mount namespace');

    // dockerd in the same mount namespace (it mounts the rootfs the shim hands to the runtime)
    let driver = 'overlay2';
    for (;;) {
      fs.writeFileSync(path.join(D, 'daemon.json'), daemonJson(driver));
      dockerd = startDaemon(
        'dockerd',
        TOOLS.nsenter!,
        [`--mount=/proc/${containerd.pid}/ns/mnt`, '--', TOOLS.dockerd!, '--config-file', path.join(D, 'daemon.json')],
        daemonEnv,
        path.join(D, 'dockerd.log'),
      );
      const up = await waitFor(async () => fs.existsSync(dockerSock) && (await run(docker, ['version'], env, 10_000)).code === 0, 60_000, () => dockerd!.done);
      if (up) break;
      if (driver === 'overlay2') {
        notes.push(`dockerd with overlay2 failed; retrying with vfs:\n${tail(dockerd.log, 15)}`);
        notes.push(...(await stopDaemon(dockerd)));
        driver = 'vfs';
        continue;
      }
      assert.fail(`dockerd did not come up:\n${tail(dockerd.log)}`);
    }
    t.diagnostic(`containerd + dockerd (${driver}) up: ${(performance.now() - t0).toFixed(0)} ms`);

    const imp = mustSucceed(await run(docker, ['import', '--change', 'CMD ["/bin/sh"]', path.join(T, 'busybox.tar'), IMAGE], env), 'docker import');
    t.diagnostic(`docker import: ${imp.ms.toFixed(0)} ms`);

    const cidfile = path.join(D, 'cid');
    const r = await run(docker, ['run', '--runtime', 'berth', '--rm', '--pull', 'never', '--cidfile', cidfile, IMAGE, 'echo', 'hi'], env);
    t.diagnostic(`docker run --rm: ${r.ms.toFixed(0)} ms`);
    const c = readCalls(calls);
    assert.ok(
      r.code === 0 && r.stdout === 'hi\n',
      `docker run did not print hi:\n${describeRun(r)}\nruntime calls:\n  ${c.join('\n  ') || '(none)'}\ndockerd log:\n${tail(dockerd.log, 25)}`,
    );
    const cid = readCid(cidfile, c);
    assertRanUnderRuntime(c, cid, 'docker');
    t.diagnostic(`runtime calls: ${c.map((l) => l.replace(/[0-9a-f]{64}/g, '<id>').replaceAll(T, '$T')).join(' | ')}`);
  } finally {
    const t0 = performance.now();
    // runtime calls still running now are hung (each call is short-lived): kill them so the
    // shim, dockerd and `docker rm` are not stuck behind them
    await killPids(pidsMatching((p) => isRuntimeCall(cmdline(p), wrapper, D)), 'runtime calls still running', notes);
    if (dockerd && !dockerd.done) {
      const ls = await run(docker, ['ps', '--all', '--quiet'], env, 15_000);
      const ids = ls.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
      if (ids.length) {
        notes.push(`removing leftover containers ${ids.join(' ')}`);
        await run(docker, ['rm', '--force', ...ids], env, 20_000);
      }
    }
    notes.push(...(await stopDaemon(dockerd)));
    // shims and anything else left in the daemons' mount namespace, then containerd itself
    if (ns) await killPids(pidsMatching((p) => p !== containerd?.pid && mntNs(p) === ns), 'processes left in the daemons\' mount namespace', notes);
    notes.push(...(await stopDaemon(containerd)));
    if (ns) await killPids(pidsMatching((p) => mntNs(p) === ns), 'processes left in the daemons\' mount namespace', notes);
    await killPids(pidsMatching((p) => cmdline(p).includes(D)), 'processes naming the docker temp dir', notes);
    await removeOurCgroups(ourCgroupNames[1], notes);
    await unmountUnder(D, BASE_ENV, notes);
    for (const n of notes) t.diagnostic(`teardown: ${n}`);
    t.diagnostic(`docker teardown: ${(performance.now() - t0).toFixed(0)} ms`);
  }
});
