// Image config + docker-style run options → OCI runtime spec, with Docker's defaults (issue 5).
//
// A pure function apart from reading the image's /etc/passwd and /etc/group, which is done from
// the host side without following any symlink (a hostile image could point /etc/passwd at a host
// file; the check mirrors src/runtime/passwd.ts, whose reader is private and reads passwd only).
// Annotations: the image's labels and -l verbatim, plus the stop signal under the OCI image-spec's
// conversion key org.opencontainers.image.stopSignal. The defaults follow moby (oci/defaults.go,
// daemon/oci_linux.go, oci/caps): facts learned from it, not its code. Seccomp: docker's default
// profile unless --privileged or seccomp=unconfined (seccomp-default.ts). Devices (--device,
// --device-cgroup-rule, --privileged's host devices) are read from the host's /dev with lstat.
// Not here yet: /etc/hosts, /etc/hostname, /etc/resolv.conf, volumes, networking.
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CAPABILITIES } from '../runtime/capabilities.ts';
import { readEtcFile } from '../runtime/passwd.ts';
import type { ContainerConfig, ImageConfig } from '../image/types.ts';
import type { Device, DeviceCgroupRule, LinuxResources, Mount, Namespace, Rlimit, Seccomp, Spec } from '../runtime/spec-types.ts';
import { defaultSeccompProfile, loadSeccompProfile, SeccompProfileError, type DockerSeccompProfile } from './seccomp-default.ts';

/** A run option that docker would refuse; the message is docker's where it has one. */
export class RunOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunOptionsError';
  }
}

export type NamespaceMode = 'private' | 'host';

/** What `docker run` flags say about the container, already parsed from the command line. */
export interface RunOptions {
  /** The container id (64 hex); its first 12 characters are the default hostname. */
  id: string;
  /** Host path of the container's root filesystem (root.path; /etc/passwd and /etc/group are read from it). */
  rootfs: string;
  /** User args after the image name: replace the image's Cmd. */
  cmd?: string[];
  /** --entrypoint: a string (docker's flag) or an argv; '' or [] resets the image's entrypoint. */
  entrypoint?: string | string[];
  /** -e KEY=VALUE (a bare KEY is taken as given: the CLI resolves it from its own environment). */
  env?: string[];
  /** -w */
  workingDir?: string;
  /** -u name|uid[:group|gid] */
  user?: string;
  /** --group-add: group names (resolved in the image's /etc/group) or numeric gids. */
  groupAdd?: string[];
  /** -h */
  hostname?: string;
  domainname?: string;
  /** -t */
  tty?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** --read-only */
  readOnly?: boolean;
  /** --security-opt no-new-privileges[=true] */
  noNewPrivileges?: boolean;
  /**
   * --security-opt seccomp=…: 'unconfined' (no filter), 'builtin' (docker's default), a profile's
   * JSON text (what the docker CLI sends: the file's contents) or a parsed profile, in docker's
   * format (archMap, includes/excludes) or OCI's. Undefined: docker's default profile.
   * --privileged runs without seccomp whatever this says.
   */
  seccomp?: string | DockerSeccompProfile | Seccomp;
  /** The host architecture for the seccomp profile (Node's or Go's name; default process.arch). */
  arch?: string;
  /** --device (HostConfig.Devices); parseDeviceSpec turns the CLI form into this. */
  devices?: DeviceMapping[];
  /** --device-cgroup-rule 'c 1:3 rwm' */
  deviceCgroupRules?: string[];
  /**
   * --init: the host path of the init binary (dist/berth-init). It is bind-mounted read-only at
   * /sbin/docker-init, docker's path, and runs the process as its child.
   */
  init?: string;
  /** -m / --memory, bytes. */
  memory?: number;
  /** --memory-swap, bytes (memory + swap); -1 unlimited. Default: twice --memory, as docker. */
  memorySwap?: number;
  /** --cpus, e.g. 1.5 */
  cpus?: number;
  /** --cpu-shares */
  cpuShares?: number;
  /** --pids-limit; 0 or negative: unlimited. */
  pidsLimit?: number;
  /** --ulimit name=soft[:hard], e.g. 'nofile=1024:2048'. */
  ulimits?: string[];
  /** --sysctl key=value */
  sysctls?: Record<string, string>;
  /** --tmpfs: destination → options ('' for the defaults), e.g. {'/run': 'size=64m,exec'}. */
  tmpfs?: Record<string, string>;
  /** --shm-size in bytes; default 64 MiB. */
  shmSize?: number;
  /** --network host|…: only whether a network namespace is made matters here. */
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  uts?: NamespaceMode;
  /** --cgroupns; default private on cgroup v2, host on v1 (docker's default-cgroupns-mode). */
  cgroupns?: NamespaceMode;
  /** Whether the host runs cgroup v2 (the caller detects it; keeps this function pure). */
  cgroupV2?: boolean;
  /** -l: added to the image's labels (carried as annotations). */
  labels?: Record<string, string>;
  /** --stop-signal: overrides the image's StopSignal. */
  stopSignal?: string;
  cgroupsPath?: string;
}

/** HostConfig.Devices entry. */
export interface DeviceMapping {
  PathOnHost: string;
  /** Default: PathOnHost. */
  PathInContainer?: string;
  /** Default: "rwm". */
  CgroupPermissions?: string;
}

/** Where --init's binary appears in the container (docker's path). */
export const INIT_PATH = '/sbin/docker-init';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set (moby oci/caps). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The annotation for the image's stop signal, as the OCI image-spec's conversion rules name it. */
export const STOP_SIGNAL_ANNOTATION = 'org.opencontainers.image.stopSignal';

const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
const CPU_PERIOD = 100000;
const MIN_MEMORY = 6 * 1024 * 1024; // moby's linuxMinMemory

// The device cgroup rules docker allows by default (deny everything else).
const DEFAULT_DEVICE_RULES: DeviceCgroupRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // tun
];

// ---------------------------------------------------------------------------------------------
// The image's /etc/passwd and /etc/group
// ---------------------------------------------------------------------------------------------

interface PasswdEntry { name: string; uid: number; gid: number }
interface GroupEntry { name: string; gid: number; members: string[] }

const isId = (s: string): boolean => /^\d+$/.test(s) && Number(s) <= 0x7fffffff; // libcontainer's range

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text?.split('\n') ?? []) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isId(f[2]) || !isId(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text?.split('\n') ?? []) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !isId(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

export interface ResolvedUser { uid: number; gid: number; additionalGids: number[] }

/**
 * docker's -u rules (libcontainer's GetExecUser): a name must exist in /etc/passwd; a numeric uid
 * need not (its gid is then 0); the primary gid is the passwd entry's unless a group is given
 * (a name must exist in /etc/group, a number need not). Without an explicit group, the user's
 * memberships in /etc/group become additional gids; --group-add entries are appended. As moby
 * does now, the primary gid comes first in additionalGids (duplicates are dropped here).
 */
export function resolveUser(rootfs: string, spec: string | undefined, groupAdd: string[] = []): ResolvedUser {
  const passwd = parsePasswd(readEtcFile(rootfs, 'passwd'));
  const groups = parseGroup(readEtcFile(rootfs, 'group'));
  const raw = spec ?? '';
  const colon = raw.indexOf(':');
  const userPart = colon < 0 ? raw : raw.slice(0, colon);
  const groupPart = colon < 0 ? undefined : raw.slice(colon + 1);

  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  if (userPart === '') {
    const root = passwd.find((p) => p.uid === 0);
    name = root?.name;
    gid = root?.gid ?? 0;
  } else if (isId(userPart)) {
    uid = Number(userPart);
    const entry = passwd.find((p) => p.uid === uid);
    name = entry?.name;
    gid = entry?.gid ?? 0;
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new RunOptionsError(`unable to find user ${userPart}: no matching entries in passwd file`);
    ({ uid, gid, name } = entry);
  }

  const additional: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    if (isId(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g) throw new RunOptionsError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  } else if (name !== undefined) {
    for (const g of groups) if (g.members.includes(name)) additional.push(g.gid);
  }
  for (const add of groupAdd) {
    if (isId(add)) additional.push(Number(add));
    else {
      const g = groups.find((e) => e.name === add);
      if (!g) throw new RunOptionsError(`Unable to find group ${add}: no matching entries in group file`);
      additional.push(g.gid);
    }
  }
  return { uid, gid, additionalGids: [...new Set([gid, ...additional])] };
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

function normalizeCaps(names: string[]): string[] {
  return names.map((raw) => {
    const up = raw.trim().toUpperCase();
    if (up === 'ALL') return 'ALL';
    const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
    if (!CAPABILITIES.includes(name)) throw new RunOptionsError(`unknown capability: "${raw}"`);
    return name;
  });
}

/**
 * "All capabilities" (--privileged, --cap-add ALL): those in the daemon's own bounding set. A
 * daemon confined to fewer (a container host that dropped CAP_SYS_RESOURCE) cannot grant the
 * rest, and asking capset(2) for them would fail every privileged container.
 */
function allCapabilities(): string[] {
  let bounding: bigint | undefined;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) bounding = BigInt(`0x${m[1]}`);
  } catch { /* not Linux: keep every name */ }
  return CAPABILITIES.filter((_c, i) => bounding === undefined || ((bounding >> BigInt(i)) & 1n) === 1n);
}

/** docker's --cap-add/--cap-drop/--privileged rules over the default set. */
export function capabilitySet(opts: Pick<RunOptions, 'capAdd' | 'capDrop' | 'privileged'>): string[] {
  if (opts.privileged) return allCapabilities();
  const add = normalizeCaps(opts.capAdd ?? []);
  const drop = normalizeCaps(opts.capDrop ?? []);
  let caps: string[];
  if (add.includes('ALL')) caps = allCapabilities().filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps)];
}

// ---------------------------------------------------------------------------------------------
// Command, environment
// ---------------------------------------------------------------------------------------------

/**
 * docker's merge: an --entrypoint replaces the image's Entrypoint and then the image's Cmd is not
 * used; an empty --entrypoint resets it (the image's Cmd still applies when no args are given);
 * user args replace Cmd.
 */
export function processArgs(image: ContainerConfig, opts: Pick<RunOptions, 'entrypoint' | 'cmd'>): string[] {
  const userEntry = typeof opts.entrypoint === 'string' ? (opts.entrypoint === '' ? [] : [opts.entrypoint]) : opts.entrypoint;
  let entrypoint: string[];
  let cmd: string[];
  if (userEntry !== undefined && userEntry.length > 0) {
    entrypoint = userEntry;
    cmd = opts.cmd ?? [];
  } else {
    entrypoint = userEntry ?? image.Entrypoint ?? [];
    cmd = opts.cmd && opts.cmd.length > 0 ? opts.cmd : (image.Cmd ?? []);
  }
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new RunOptionsError('No command specified');
  return args;
}

const envKey = (kv: string): string => {
  const i = kv.indexOf('=');
  return i < 0 ? kv : kv.slice(0, i);
};

/** Replaces entries of `base` by key, appends new keys (docker's ReplaceOrAppendEnvValues). */
function mergeEnv(base: string[], overrides: string[]): string[] {
  const out = [...base];
  for (const kv of overrides) {
    const i = out.findIndex((e) => envKey(e) === envKey(kv));
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/** PATH (default) and HOSTNAME, TERM with a tty, then the image's env, then -e, by key. */
export function processEnv(image: ContainerConfig, opts: Pick<RunOptions, 'env' | 'tty'>, hostname: string): string[] {
  const base = [DEFAULT_PATH, `HOSTNAME=${hostname}`];
  if (opts.tty) base.push('TERM=xterm');
  return mergeEnv(mergeEnv(base, image.Env ?? []), opts.env ?? []);
}

// ---------------------------------------------------------------------------------------------
// Mounts, resources, rlimits
// ---------------------------------------------------------------------------------------------

/** tmpfs options: docker's defaults then the user's; a later flag cancels its opposite, a later key=value wins. */
function tmpfsOptions(data: string): string[] {
  const opposite: Record<string, string> = {
    exec: 'noexec', noexec: 'exec', suid: 'nosuid', nosuid: 'suid', dev: 'nodev', nodev: 'dev', ro: 'rw', rw: 'ro',
  };
  const out: string[] = [];
  for (const opt of ['noexec', 'nosuid', 'nodev', ...data.split(',').map((s) => s.trim()).filter(Boolean)]) {
    const eq = opt.indexOf('=');
    const drop = eq < 0 ? [opt, opposite[opt]] : [];
    const key = eq < 0 ? undefined : opt.slice(0, eq + 1);
    for (let i = out.length - 1; i >= 0; i--) {
      if (drop.includes(out[i]) || (key && out[i].startsWith(key))) out.splice(i, 1);
    }
    out.push(opt);
  }
  return out;
}

function defaultMounts(shmSize: number): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`] },
  ];
}

/**
 * The container's mounts as moby arranges them: the defaults, the user's (--tmpfs) replacing a
 * default at the same destination; with --read-only every default mount but /proc, /dev,
 * /dev/pts, /dev/shm and /dev/mqueue gets "ro"; --privileged makes /sys writable (unless the
 * rootfs is read-only) and the cgroup mount writable.
 */
function containerMounts(opts: RunOptions): Mount[] {
  const mounts = defaultMounts(opts.shmSize && opts.shmSize > 0 ? opts.shmSize : DEFAULT_SHM_SIZE);
  const user: Mount[] = [];
  for (const [dest, data] of Object.entries(opts.tmpfs ?? {})) {
    if (!dest.startsWith('/')) throw new RunOptionsError(`invalid mount path: '${dest}' mount path must be absolute`);
    user.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options: tmpfsOptions(data) });
  }
  const userDest = new Set(user.map((m) => m.destination));
  const out = mounts.filter((m) => !userDest.has(m.destination));
  const keepWritable = new Set(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue']);
  const clearRo = (m: Mount): void => { m.options = m.options!.filter((o) => o !== 'ro'); };
  for (const m of out) {
    if (opts.readOnly && !keepWritable.has(m.destination) && !m.options!.includes('ro')) m.options!.push('ro');
    if (opts.privileged && m.destination === '/sys' && !opts.readOnly) clearRo(m);
    if (opts.privileged && m.type === 'cgroup') clearRo(m);
  }
  return [...out, ...user];
}

function resources(opts: RunOptions, deviceRules: DeviceCgroupRule[]): LinuxResources {
  const r: LinuxResources = { devices: deviceRules };
  if (opts.memorySwap !== undefined && opts.memorySwap !== 0 && opts.memory === undefined) {
    throw new RunOptionsError('You should always set the Memory limit when using Memoryswap limit');
  }
  if (opts.memory !== undefined && opts.memory > 0) {
    if (opts.memory < MIN_MEMORY) throw new RunOptionsError('Minimum memory limit allowed is 6MB');
    let swap = opts.memorySwap ?? 0;
    if (swap > 0 && swap < opts.memory) {
      throw new RunOptionsError('Minimum memoryswap limit should be larger than memory limit, see usage');
    }
    if (swap === 0) swap = opts.memory * 2;
    r.memory = { limit: opts.memory, swap };
  }
  if (opts.cpus !== undefined || opts.cpuShares !== undefined) {
    r.cpu = {};
    if (opts.cpuShares !== undefined && opts.cpuShares !== 0) r.cpu.shares = opts.cpuShares;
    if (opts.cpus !== undefined && opts.cpus !== 0) {
      if (!(opts.cpus > 0) || !Number.isFinite(opts.cpus)) throw new RunOptionsError(`invalid --cpus: ${opts.cpus}`);
      const nano = Math.round(opts.cpus * 1e9);
      r.cpu.period = CPU_PERIOD;
      r.cpu.quota = Math.round((nano * CPU_PERIOD) / 1e9);
    }
  }
  if (opts.pidsLimit !== undefined) r.pids = { limit: opts.pidsLimit > 0 ? opts.pidsLimit : -1 };
  return r;
}

const RLIMIT_NAMES = [
  'AS', 'CORE', 'CPU', 'DATA', 'FSIZE', 'LOCKS', 'MEMLOCK', 'MSGQUEUE', 'NICE', 'NOFILE', 'NPROC', 'RSS', 'RTPRIO',
  'RTTIME', 'SIGPENDING', 'STACK',
];

/**
 * --ulimit name=soft[:hard]; none by default (moby adds only the daemon's default-ulimits).
 * -1 means unlimited and stays -1 in the spec: JSON numbers cannot carry RLIM_INFINITY
 * (2^64-1) exactly, and the runtime reads the value as an unsigned 64-bit number.
 */
export function parseUlimits(ulimits: string[]): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const u of ulimits) {
    const m = /^([a-z]+)=(-1|\d+)(?::(-1|\d+))?$/.exec(u.trim());
    if (!m) throw new RunOptionsError(`invalid ulimit argument: ${u}`);
    if (!RLIMIT_NAMES.includes(m[1].toUpperCase())) throw new RunOptionsError(`invalid ulimit type: ${m[1]}`);
    const soft = Number(m[2]);
    const hard = m[3] === undefined ? soft : Number(m[3]);
    const rank = (n: number): number => (n < 0 ? Infinity : n);
    if (rank(soft) > rank(hard)) throw new RunOptionsError(`ulimit soft limit must be less than or equal to hard limit: ${m[2]} > ${m[3]}`);
    const type = `RLIMIT_${m[1].toUpperCase()}`;
    byType.set(type, { type, soft, hard });
  }
  return [...byType.values()];
}

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

const validDeviceMode = (mode: string): boolean =>
  mode.length > 0 && [...mode].every((c, i) => 'rwm'.includes(c) && mode.indexOf(c) === i);

/**
 * The docker CLI's --device forms: /dev/x, /dev/x:/dev/y, /dev/x:rw, /dev/x:/dev/y:rwm (the
 * middle part is a mode when it reads as one). The container path must be absolute.
 */
export function parseDeviceSpec(spec: string): DeviceMapping {
  const parts = spec.split(':');
  if (parts.length > 3 || parts[0] === '') throw new RunOptionsError(`bad format for path: ${spec}`);
  let dst = parts[0];
  let mode = 'rwm';
  if (parts.length === 2) {
    if (validDeviceMode(parts[1])) mode = parts[1];
    else dst = parts[1];
  } else if (parts.length === 3) {
    dst = parts[1];
    mode = parts[2];
    if (!validDeviceMode(mode)) throw new RunOptionsError(`bad mode specified: ${mode}`);
  }
  if (!dst.startsWith('/')) throw new RunOptionsError(`${dst} is not an absolute path`);
  return { PathOnHost: parts[0], PathInContainer: dst, CgroupPermissions: mode };
}

class NotADevice extends Error {}

// glibc's major()/minor() of a 64-bit dev_t.
const devMajor = (dev: bigint): number => Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
const devMinor = (dev: bigint): number => Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));

/** The node at `path` (not followed if a symlink), as linux.devices describes it. FIFOs count, as in containerd. */
function deviceAt(path: string): Device {
  const st = lstatSync(path, { bigint: true });
  const type = st.isBlockDevice() ? 'b' : st.isCharacterDevice() ? 'c' : st.isFIFO() ? 'p' : undefined;
  if (!type) throw new NotADevice('not a device node');
  return {
    type, path, major: devMajor(st.rdev), minor: devMinor(st.rdev),
    fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid),
  };
}

const cgroupRuleFor = (d: Device, access: string): DeviceCgroupRule => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access });

/**
 * One --device: a device node (a symlink to one is followed), or a directory whose device nodes
 * are all added under the container path. docker's error when there is nothing to add.
 */
export function devicesFromPath(m: DeviceMapping): { devices: Device[]; rules: DeviceCgroupRule[] } {
  const inContainer = m.PathInContainer || m.PathOnHost;
  const access = m.CgroupPermissions || 'rwm';
  let resolved = m.PathOnHost;
  try {
    if (lstatSync(resolved).isSymbolicLink()) resolved = realpathSync(resolved);
  } catch { /* reported by deviceAt below */ }
  const fail = (err: unknown): never => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = err instanceof NotADevice ? err.message
      : code === 'ENOENT' ? 'no such file or directory'
        : code === 'EACCES' ? 'permission denied'
          : code === 'ENOTDIR' ? 'not a directory' : (err as Error).message;
    throw new RunOptionsError(`error gathering device information while adding custom device ${JSON.stringify(m.PathOnHost)}: ${why}`);
  };
  try {
    const d = deviceAt(resolved);
    d.path = inContainer;
    return { devices: [d], rules: [cgroupRuleFor(d, access)] };
  } catch (err) {
    if (!(err instanceof NotADevice)) fail(err);
    let isDir = false;
    try { isDir = statSync(resolved).isDirectory(); } catch { /* not a directory */ }
    const devices: Device[] = [];
    if (isDir) {
      const walk = (dir: string): void => {
        let entries;
        try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
        for (const e of entries) {
          const p = join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else {
            try {
              const d = deviceAt(p);
              d.path = inContainer + p.slice(resolved.length);
              devices.push(d);
            } catch { /* not a device: skipped, as docker does */ }
          }
        }
      };
      walk(resolved);
    }
    if (devices.length === 0) fail(err);
    return { devices, rules: devices.map((d) => cgroupRuleFor(d, access)) };
  }
}

/** Every device node under the host's /dev, as --privileged gets them (no pts, shm, mqueue, fd, console or FIFOs). */
export function hostDevices(dir = '/dev', out: Device[] = []): Device[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev'].includes(e.name)) hostDevices(p, out);
      continue;
    }
    if (e.name === 'console') continue;
    try {
      const d = deviceAt(p);
      if (d.type !== 'p') out.push(d);
    } catch { /* gone meanwhile, or not a device */ }
  }
  return out;
}

/** --device-cgroup-rule 'type major:minor access' (type a, b or c; * for any number). */
export function parseDeviceCgroupRule(rule: string): DeviceCgroupRule {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule);
  if (!m) throw new RunOptionsError(`invalid device cgroup rule format: '${rule}'`);
  const num = (v: string): number | null => (v === '*' ? null : Number(v));
  return { allow: true, type: m[1], major: num(m[2]), minor: num(m[3]), access: m[4] };
}

/** linux.devices and the device cgroup rules, as moby arranges them. */
function containerDevices(opts: RunOptions): { devices: Device[]; rules: DeviceCgroupRule[] } {
  const devices: Device[] = [];
  if (opts.privileged) {
    devices.push(...hostDevices());
    // Every host device is there already; only a mapping to another path adds a node (with rwm).
    for (const m of opts.devices ?? []) {
      if ((m.PathInContainer || m.PathOnHost) === m.PathOnHost) continue;
      devices.push(...devicesFromPath({ ...m, CgroupPermissions: 'rwm' }).devices);
    }
    return { devices, rules: [{ allow: true, access: 'rwm' }] };
  }
  const rules = DEFAULT_DEVICE_RULES.map((d) => ({ ...d }));
  for (const m of opts.devices ?? []) {
    const got = devicesFromPath(m);
    devices.push(...got.devices);
    rules.push(...got.rules);
  }
  for (const r of opts.deviceCgroupRules ?? []) rules.push(parseDeviceCgroupRule(r));
  return { devices, rules };
}

// ---------------------------------------------------------------------------------------------
// Seccomp
// ---------------------------------------------------------------------------------------------

/** linux.seccomp for these options and the container's bounding capabilities. */
export function seccompFor(opts: Pick<RunOptions, 'seccomp' | 'privileged' | 'arch'>, capabilities: string[]): Seccomp | undefined {
  if (opts.privileged || opts.seccomp === 'unconfined') return undefined;
  const host = { capabilities, arch: opts.arch };
  if (opts.seccomp === undefined || opts.seccomp === 'builtin') return defaultSeccompProfile(host);
  try {
    return loadSeccompProfile(opts.seccomp as string | DockerSeccompProfile, host);
  } catch (err) {
    if (err instanceof SeccompProfileError) throw new RunOptionsError(err.message);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------------------

/** The OCI spec `docker run` would hand to runc for this image and these options. */
export function buildSpec(image: ImageConfig, opts: RunOptions): Spec {
  const config: ContainerConfig = image.config ?? {};
  if (!/^[0-9a-zA-Z][\w.-]*$/.test(opts.id)) throw new RunOptionsError(`invalid container id: ${JSON.stringify(opts.id)}`);
  const hostname = opts.hostname || opts.id.slice(0, 12);
  let args = processArgs(config, opts);
  if (opts.init) args = [INIT_PATH, '--', ...args];
  const env = processEnv(config, opts, hostname);
  const cwd = opts.workingDir || config.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw new RunOptionsError(`the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  const user = resolveUser(opts.rootfs, opts.user || config.User || undefined, opts.groupAdd);
  const caps = capabilitySet(opts);
  const privileged = opts.privileged === true;
  const mounts = containerMounts(opts);
  if (opts.init) {
    if (!opts.init.startsWith('/')) throw new RunOptionsError(`the init binary's path must be absolute: ${opts.init}`);
    mounts.push({ destination: INIT_PATH, type: 'bind', source: opts.init, options: ['bind', 'ro'] });
  }
  const devs = containerDevices(opts);
  const seccomp = seccompFor(opts, caps);

  const namespaces: Namespace[] = [{ type: 'mount' }];
  if (opts.network !== 'host') namespaces.push({ type: 'network' });
  if (opts.uts !== 'host') namespaces.push({ type: 'uts' });
  if (opts.pid !== 'host') namespaces.push({ type: 'pid' });
  if (opts.ipc !== 'host') namespaces.push({ type: 'ipc' });
  const cgroupns = opts.cgroupns ?? (opts.cgroupV2 ? 'private' : 'host');
  if (cgroupns === 'private') namespaces.push({ type: 'cgroup' });
  if (opts.uts === 'host' && opts.hostname) throw new RunOptionsError('Conflicting options: hostname and the UTS mode');

  const annotations: Record<string, string> = { ...(config.Labels ?? {}), ...(opts.labels ?? {}) };
  const stopSignal = opts.stopSignal || config.StopSignal;
  if (stopSignal) annotations[STOP_SIGNAL_ANNOTATION] = stopSignal;

  const spec: Spec = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: opts.tty === true,
      user,
      args,
      env,
      cwd,
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      noNewPrivileges: opts.noNewPrivileges === true,
    },
    root: { path: opts.rootfs, readonly: opts.readOnly === true },
    mounts,
    linux: {
      namespaces,
      resources: resources(opts, devs.rules),
      maskedPaths: privileged ? [] : [...DEFAULT_MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...DEFAULT_READONLY_PATHS],
    },
  };
  if (opts.uts !== 'host') spec.hostname = hostname;
  if (opts.domainname && opts.uts !== 'host') spec.domainname = opts.domainname;
  if (opts.ulimits?.length) spec.process!.rlimits = parseUlimits(opts.ulimits);
  if (opts.sysctls && Object.keys(opts.sysctls).length) spec.linux!.sysctl = { ...opts.sysctls };
  if (opts.cgroupsPath) spec.linux!.cgroupsPath = opts.cgroupsPath;
  if (devs.devices.length) spec.linux!.devices = devs.devices;
  if (seccomp) spec.linux!.seccomp = seccomp;
  if (Object.keys(annotations).length) spec.annotations = annotations;
  return spec;
}
