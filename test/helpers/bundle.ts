// Test bundles for the runtime suite: a busybox rootfs, a runc-like default config.json,
// a private state root (`--root`) per bundle, and a helper that drives the runtime CLI.
//
// The suite is runtime-agnostic: the binary under test is $BERTH_RUNTIME, or
// <repo>/dist/berth-runtime.cjs when unset (e.g. BERTH_RUNTIME=/usr/sbin/runc to check the
// tests themselves against a reference runtime).
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readFileSync, readlinkSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RUNTIME = process.env.BERTH_RUNTIME ?? join(REPO_ROOT, 'dist', 'berth-runtime.cjs');
/** Basename of the runtime under test: 'berth-runtime.cjs', 'runc', 'crun', … */
export const RUNTIME_NAME = basename(RUNTIME);
export const BUSYBOX = process.env.BERTH_TEST_BUSYBOX ?? '/bin/busybox';
export const PYTHON = process.env.BERTH_TEST_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const TMP_BASE = process.env.BERTH_TEST_TMPDIR ?? '/tmp';

/**
 * For tests that assert the spec where a reference runtime is known to deviate from it:
 * returns a node:test `todo` reason when the runtime under test is one of `runtimes`, so the
 * test still runs (and reports) but does not fail the suite for that reference runtime.
 */
export function deviation(runtimes: string[], reason: string): string | undefined {
  return runtimes.includes(RUNTIME_NAME) ? `${RUNTIME_NAME} deviates from the spec: ${reason}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------------------

export interface IdMapping { containerID: number; hostID: number; size: number }
export interface Mount { destination: string; type?: string; source?: string; options?: string[] }
export interface Hook { path: string; args?: string[]; env?: string[]; timeout?: number }
export type HookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';
export interface Capabilities { bounding?: string[]; effective?: string[]; inheritable?: string[]; permitted?: string[]; ambient?: string[] }
export interface Device { type: string; path: string; major?: number; minor?: number; fileMode?: number; uid?: number; gid?: number }

export interface Spec {
  ociVersion: string;
  process: {
    terminal?: boolean;
    consoleSize?: { height: number; width: number };
    user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Capabilities;
    rlimits?: { type: string; hard: number; soft: number }[];
    noNewPrivileges?: boolean;
    oomScoreAdj?: number;
    [key: string]: unknown;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts: Mount[];
  hooks?: Partial<Record<HookKind, Hook[]>>;
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
    devices?: Device[];
    sysctl?: Record<string, string>;
    resources?: Record<string, unknown>;
    cgroupsPath?: string;
    rootfsPropagation?: string;
    maskedPaths?: string[];
    readonlyPaths?: string[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The spec `runc spec` writes (runc 1.1), with terminal off and a cgroup namespace added. */
export function defaultSpec(): Spec {
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
        ambient: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

export const CAP_NUMBERS: Record<string, number> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5,
  CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

/** The 16-digit hex mask /proc/<pid>/status prints for a set of capability names. */
export function capsHex(names: string[]): string {
  let mask = 0n;
  for (const name of names) {
    const bit = CAP_NUMBERS[name];
    if (bit === undefined) throw new Error(`unknown capability ${name}`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}

/** Parses "Key:\tvalue" lines of /proc/<pid>/status (or any such text). */
export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The rootfs
// ---------------------------------------------------------------------------------------------

let appletCache: string[] | null = null;
function applets(): string[] {
  if (appletCache) return appletCache;
  const r = spawnSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${BUSYBOX} --list-full failed (install busybox-static): ${r.stderr}`);
  appletCache = r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  return appletCache;
}

export const ALICE = { uid: 1000, gid: 1000 };
export const STAFF_GID = 50;

/** A busybox rootfs: /bin/busybox, a symlink per applet, passwd/group, the usual directories. */
export function makeRootfs(rootfs: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home/alice', 'var', 'run', 'mnt']) {
    mkdirSync(join(rootfs, d), { recursive: true, mode: 0o755 });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const full of applets()) {
    // full is e.g. "usr/bin/env" or "bin/sh"
    const rel = full.replace(/^\/+/, '');
    const dest = join(rootfs, rel);
    if (rel === 'bin/busybox' || existsSync(dest)) continue;
    mkdirSync(dirname(dest), { recursive: true });
    symlinkSync('/bin/busybox', dest);
  }
  writeFileSync(join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(rootfs, 'etc', 'group'),
    'root:x:0:\ntty:x:5:\nstaff:x:50:alice\nalice:x:1000:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'etc', 'hostname'), 'berth-test\n');
  spawnSync('chown', ['1000:1000', join(rootfs, 'home', 'alice')]);
}

// ---------------------------------------------------------------------------------------------
// Running the runtime
// ---------------------------------------------------------------------------------------------

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Files holding the command's stdout/stderr: a detached container keeps writing to them. */
  stdoutPath: string;
  stderrPath: string;
  /** Re-reads the output files (for what a container wrote after the command returned). */
  readStdout(): string;
  readStderr(): string;
}

export interface RunOptions {
  /** Working directory of the runtime process (default: the bundle directory). */
  cwd?: string;
  /** Data for stdin (a pipe); default stdin is /dev/null. */
  input?: string;
  /** Extra fds given to the runtime process at 3, 4, …; `null` leaves that slot closed. */
  extraFds?: (number | null)[];
  /** Kill the runtime after this many ms (default 30000); the result then has code null. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Don't pass `--root` (e.g. to test the default). */
  noRoot?: boolean;
}

/** Spawns the runtime binary with `--root <root>` and waits for it to exit (not for its output pipes). */
export function runRuntime(root: string | null, args: string[], ioDir: string, opts: RunOptions = {}): Promise<RunResult> {
  mkdirSync(ioDir, { recursive: true });
  const tag = `${Date.now()}-${randomBytes(3).toString('hex')}`;
  const stdoutPath = join(ioDir, `${tag}.out`);
  const stderrPath = join(ioDir, `${tag}.err`);
  const outFd = openSync(stdoutPath, 'w');
  const errFd = openSync(stderrPath, 'w');
  const stdio: StdioOptions = [opts.input !== undefined ? 'pipe' : 'ignore', outFd, errFd];
  for (const fd of opts.extraFds ?? []) stdio.push(fd === null ? 'ignore' : fd);
  const argv = root && !opts.noRoot ? ['--root', root, ...args] : args;
  return new Promise((resolvePromise, reject) => {
    let child;
    try {
      // Own process group: a runtime bug that signals its process group (kill(0, …)) cannot
      // take the test runner down with it.
      child = spawn(RUNTIME, argv, { cwd: opts.cwd, stdio, env: opts.env ?? process.env, detached: true });
    } catch (err) {
      closeSync(outFd);
      closeSync(errFd);
      reject(err);
      return;
    }
    closeSync(outFd);
    closeSync(errFd);
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const readStdout = (): string => readFileSync(stdoutPath, 'utf8');
      const readStderr = (): string => readFileSync(stderrPath, 'utf8');
      resolvePromise({ code, signal, stdout: readStdout(), stderr: readStderr(), stdoutPath, stderrPath, readStdout, readStderr });
    });
  });
}

/** A short description of a result for assertion messages. */
export function explain(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a truthy value (returned) or the timeout passes (throws). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    // A zombie still answers kill(0); treat it as gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null if there is no such process. */
export function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The host's namespace link target (e.g. "net:[4026531840]") for the test process. */
export function hostNs(kind: string): string {
  return readlinkSync(`/proc/self/ns/${kind}`);
}

export interface OciState {
  ociVersion: string;
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

/**
 * Ids the helper will ever act on at cleanup (delete --force, cgroup lookups): well-formed and
 * long enough not to match unrelated names. Ids a test passes on purpose to provoke errors
 * ('', '../x', 'a/b') are never acted on.
 */
export function isCleanableId(id: string): boolean {
  return /^[\w+\-.]{6,}$/.test(id) && !/^\.+$/.test(id);
}

export interface BundleOptions {
  /** Edits the default spec before config.json is written. */
  mutate?: (spec: Spec) => void;
  /** Adds files to the rootfs after it is populated. */
  populate?: (rootfs: string) => void;
}

export class Bundle {
  /** Temp dir holding everything: bundle/, state/, io/, scratch space. */
  readonly base: string;
  /** The bundle directory (config.json, rootfs/). */
  readonly dir: string;
  readonly rootfs: string;
  /** The state root passed as `--root`. */
  readonly root: string;
  readonly ioDir: string;
  spec: Spec;
  private readonly ids = new Set<string>();
  /** pid → its start time, so a reused pid is never signalled. */
  private readonly pids = new Map<number, string>();

  constructor(opts: BundleOptions = {}) {
    this.base = mkdtempSync(join(TMP_BASE, 'berth-test-'));
    // World-traversable, so a container in a user namespace can reach its rootfs.
    chmodSync(this.base, 0o755);
    this.dir = join(this.base, 'bundle');
    this.rootfs = join(this.dir, 'rootfs');
    this.root = join(this.base, 'state');
    this.ioDir = join(this.base, 'io');
    mkdirSync(this.rootfs, { recursive: true, mode: 0o755 });
    mkdirSync(this.ioDir);
    makeRootfs(this.rootfs);
    opts.populate?.(this.rootfs);
    this.spec = defaultSpec();
    opts.mutate?.(this.spec);
    this.writeConfig();
  }

  /** Rewrites config.json from `this.spec`, optionally editing it first. */
  writeConfig(mutate?: (spec: Spec) => void): void {
    mutate?.(this.spec);
    writeFileSync(join(this.dir, 'config.json'), JSON.stringify(this.spec, null, 2));
  }

  /** A fresh directory under the bundle's temp dir (outside the rootfs). */
  scratch(name: string, mode = 0o755): string {
    const p = join(this.base, name);
    mkdirSync(p, { recursive: true, mode });
    chmodSync(p, mode);
    return p;
  }

  /** A container id unique on this host; remembered for cleanup. */
  newId(prefix = 'bt'): string {
    const id = `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.ids.add(id);
    return id;
  }

  /** Remembers a pid to make sure it is gone at cleanup. */
  trackPid(pid: number): void {
    if (!Number.isInteger(pid) || pid <= 1 || this.pids.has(pid)) return;
    const start = startTimeOf(pid);
    if (start) this.pids.set(pid, start);
  }

  /** Runs the runtime with this bundle's `--root` (cwd: the bundle dir). */
  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    // Remember ids passed to create/run so cleanup can find them even if `list` cannot.
    const last = args[args.length - 1];
    if ((args[0] === 'create' || args[0] === 'run') && isCleanableId(last)) this.ids.add(last);
    return runRuntime(this.root, args, this.ioDir, { cwd: this.dir, ...opts });
  }

  /** `create --bundle <dir> <id>` (extra args go before the id). */
  create(id: string, extra: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    if (isCleanableId(id)) this.ids.add(id);
    return this.run(['create', '--bundle', this.dir, ...extra, id], opts);
  }

  start(id: string, opts: RunOptions = {}): Promise<RunResult> {
    return this.run(['start', id], opts);
  }

  /** create + start; throws unless both succeed and the container runs; returns the init's pid. */
  async createAndStart(id: string): Promise<number> {
    const c = await this.create(id);
    if (c.code !== 0) throw new Error(`create ${id} failed: ${explain(c)}`);
    const s = await this.start(id);
    if (s.code !== 0) throw new Error(`start ${id} failed: ${explain(s)}`);
    const st = await this.state(id);
    if (st.status !== 'running' || typeof st.pid !== 'number' || st.pid <= 0) throw new Error(`${id} is not running after start: ${JSON.stringify(st)}`);
    return st.pid;
  }

  /** `run --bundle <dir> <id>` in the foreground: returns when the container has exited. */
  runContainer(id: string, extra: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    if (isCleanableId(id)) this.ids.add(id);
    return this.run(['run', '--bundle', this.dir, ...extra, id], opts);
  }

  /** `state <id>` parsed; throws with the runtime's output if it fails. */
  async state(id: string): Promise<OciState> {
    const r = await this.run(['state', id]);
    if (r.code !== 0) throw new Error(`state ${id} failed: ${explain(r)}`);
    const s = JSON.parse(r.stdout) as OciState;
    if (typeof s.pid === 'number') this.trackPid(s.pid);
    return s;
  }

  delete(id: string, force = false): Promise<RunResult> {
    return this.run(force ? ['delete', '--force', id] : ['delete', id]);
  }

  /**
   * Writes config.json with `args` (and optional edits), runs the container in the foreground
   * with a fresh id, and returns the result. The runtime deletes a foreground container itself.
   */
  async exec(args: string[] | string, mutate?: (spec: Spec) => void, opts: RunOptions = {}): Promise<RunResult> {
    this.writeConfig((s) => {
      s.process.args = typeof args === 'string' ? ['sh', '-c', args] : args;
      mutate?.(s);
    });
    return this.runContainer(this.newId(), [], opts);
  }

  /** Like exec, but throws unless the runtime exited 0; returns stdout. */
  async output(args: string[] | string, mutate?: (spec: Spec) => void, opts: RunOptions = {}): Promise<string> {
    const r = await this.exec(args, mutate, opts);
    if (r.code !== 0) throw new Error(`container failed: ${explain(r)}`);
    return r.stdout;
  }

  /** Ids the runtime knows in this root: `list --format json`, plus state-root entries. */
  async listIds(): Promise<string[]> {
    const ids = new Set<string>();
    try {
      const r = await this.run(['list', '--format', 'json'], { timeoutMs: 10000 });
      if (r.code === 0 && r.stdout.trim() && r.stdout.trim() !== 'null') {
        for (const c of JSON.parse(r.stdout) as { id: string }[]) ids.add(c.id);
      }
    } catch { /* ignore: fall back to the directory */ }
    if (existsSync(this.root)) {
      for (const e of readdirSync(this.root, { withFileTypes: true })) if (e.isDirectory()) ids.add(e.name);
    }
    return [...ids].filter(isCleanableId);
  }

  /**
   * Force-deletes every container of this root, kills any process still alive, removes leftover
   * cgroup directories named after its containers, unmounts anything left under the temp dir,
   * then removes the temp dir. Returns a list of what had to be cleaned by force (leaks).
   */
  async cleanup(): Promise<string[]> {
    const leaks: string[] = [];
    const known = await this.listIds().catch(() => [] as string[]);
    for (const id of new Set([...known, ...this.ids])) {
      if (!isCleanableId(id)) continue;
      if (!existsSync(join(this.root, id)) && !known.includes(id)) continue;
      try {
        const r = await this.run(['state', id], { timeoutMs: 10000 });
        if (r.code === 0) {
          const s = JSON.parse(r.stdout) as OciState;
          if (typeof s.pid === 'number') this.trackPid(s.pid);
        }
      } catch { /* ignore */ }
      const r = await this.run(['delete', '--force', id], { timeoutMs: 15000 }).catch(() => null);
      if (!r || r.code !== 0) leaks.push(`delete --force ${id} failed${r ? `: ${r.stderr.trim()}` : ''}`);
    }
    for (const [pid, start] of this.pids) {
      const same = (): boolean => pidAlive(pid) && startTimeOf(pid) === start;
      if (!same()) continue;
      await waitFor(`pid ${pid} to exit`, () => !same(), 2000).catch(() => {
        leaks.push(`process ${pid} still alive after delete`);
        if (same()) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
      });
    }
    leaks.push(...removeCgroupLeftovers([...this.ids, ...known]));
    leaks.push(...unmountUnder(this.base));
    if (mountsUnder(this.base).length === 0) {
      rmSync(this.base, { recursive: true, force: true, maxRetries: 3 });
    } else {
      leaks.push(`not removing ${this.base}: mounts remain under it`);
    }
    if (leaks.length) process.stderr.write(`bundle cleanup (${this.base}):\n  ${leaks.join('\n  ')}\n`);
    return leaks;
  }
}

export function makeBundle(opts: BundleOptions = {}): Bundle {
  return new Bundle(opts);
}

// ---------------------------------------------------------------------------------------------
// Host-side leftovers
// ---------------------------------------------------------------------------------------------

/** Mount points (host mount ns) at or under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\040/g, ' ');
    if (mp === dir || mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

function unmountUnder(dir: string): string[] {
  const leaks: string[] = [];
  for (const mp of mountsUnder(dir)) {
    leaks.push(`mount left on host: ${mp}`);
    spawnSync('umount', ['-l', mp]);
  }
  return leaks;
}

/** Cgroup v1/v2 mount points of this host. */
export function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(line.split(' ')[4]);
  }
  return out;
}

/**
 * Every directory under the cgroup mounts (depth ≤ 4) whose name contains one of `ids`
 * (e.g. "<id>", "berth-<id>", "<id>.scope"). Ids that are not well-formed are ignored.
 */
export function findCgroupDirs(ids: string[]): string[] {
  const found: string[] = [];
  ids = ids.filter(isCleanableId);
  if (ids.length === 0) return found;
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (ids.some((id) => e.name.includes(id))) found.push(p);
      else if (depth < 4) walk(p, depth + 1);
    }
  };
  for (const m of cgroupMounts()) walk(m, 0);
  return found;
}

function removeCgroupLeftovers(ids: string[]): string[] {
  const leaks: string[] = [];
  for (const dir of findCgroupDirs(ids)) {
    leaks.push(`cgroup left behind: ${dir}`);
    removeCgroupTree(dir);
  }
  return leaks;
}

/** rmdir of an (empty) cgroup tree, leaves first. Never signals processes: a populated cgroup stays. */
function removeCgroupTree(dir: string): void {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
    rmdirSync(dir);
  } catch { /* best effort: still populated, or gone */ }
}

/** Whether this process (root on the host) holds a capability in its effective set. */
export function hostHasCap(name: string): boolean {
  const eff = BigInt(`0x${parseStatus(readFileSync('/proc/self/status', 'utf8')).CapEff}`);
  return ((eff >> BigInt(CAP_NUMBERS[name])) & 1n) === 1n;
}

/** File type/ownership as `stat` would say, from the host side. */
export function hostStat(p: string): { uid: number; gid: number; mode: number } {
  const s = statSync(p);
  return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 };
}

/**
 * Runs `fn` with a fresh bundle and always cleans up. If the body passed but cleanup had to
 * remove leftovers by force (a container `delete` refused, a process, a cgroup or a mount left
 * behind), the test fails with the list.
 */
export async function withBundle(opts: BundleOptions, fn: (b: Bundle) => Promise<void>): Promise<void> {
  const b = makeBundle(opts);
  let failed = false;
  try {
    await fn(b);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    const leaks = await b.cleanup();
    if (!failed && leaks.length) throw new Error(`left behind after the test:\n  ${leaks.join('\n  ')}`);
  }
}

/** Cgroup directories (host paths) a process is in, excluding those the test process is in too. */
export function cgroupDirsOf(pid: number): string[] {
  const mounts: { point: string; root: string; fstype: string; opts: string[] }[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' || fstype === 'cgroup2') mounts.push({ point: f[4], root: f[3], fstype, opts: superOpts.split(',') });
  }
  const parse = (text: string): Map<string, string> => {
    const m = new Map<string, string>();
    for (const line of text.split('\n').filter(Boolean)) {
      const a = line.indexOf(':');
      const b2 = line.indexOf(':', a + 1);
      m.set(line.slice(a + 1, b2), line.slice(b2 + 1));
    }
    return m;
  };
  const mine = parse(readFileSync('/proc/self/cgroup', 'utf8'));
  const theirs = parse(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  const dirs: string[] = [];
  for (const [controllers, path] of theirs) {
    if (mine.get(controllers) === path) continue;
    const mount = controllers === ''
      ? mounts.find((m) => m.fstype === 'cgroup2')
      : mounts.find((m) => m.fstype === 'cgroup' && controllers.split(',').every((c) => m.opts.includes(c)));
    if (!mount) continue;
    const rel = mount.root === '/' ? path : path.startsWith(mount.root) ? path.slice(mount.root.length) : null;
    if (rel === null) continue;
    const dir = join(mount.point, rel);
    if (existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

export interface MountInfo {
  root: string;
  mountPoint: string;
  options: string[];
  optional: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

/** Parses /proc/<pid>/mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const [fstype, source, superOpts] = line.slice(sep + 3).split(' ');
    out.push({
      root: unescape(f[3]), mountPoint: unescape(f[4]), options: f[5].split(','), optional: f.slice(6),
      fstype, source, superOptions: (superOpts ?? '').split(','),
    });
  }
  return out;
}

/** The last (topmost) mount at `mountPoint` in parsed mountinfo. */
export function mountAt(mounts: MountInfo[], mountPoint: string): MountInfo | undefined {
  return mounts.filter((m) => m.mountPoint === mountPoint).pop();
}
