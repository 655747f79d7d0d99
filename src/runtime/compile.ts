// Policy: turns a validated spec into the plan the C stage executes (native/PLAN.md).
// Every decision (what to mount where, which devices, which order, which ids) is made here.
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import { capabilityMask } from './capabilities.ts';
import type { CgroupMountInfo } from './cgroups/index.ts';
import { ConfigError } from './errors.ts';
import { MS, parseMountOptions, type ParsedMountOptions } from './mount-options.ts';
import { homeOf } from './passwd.ts';
import { Op, Plan } from './plan.ts';
import { rlimitNumber } from './rlimits.ts';
import { compileSeccomp, SECCOMP_FILTER_FLAGS, type CompiledSeccomp } from './seccomp/index.ts';
import { namespacesOf } from './spec.ts';
import type { Device, DeviceCgroupRule, Hook, IdMapping, LinuxResources, Mount, NamespaceType, Process, Seccomp, Spec, State } from './spec-types.ts';
import { OCI_VERSION } from './state.ts';

const CLONE_FLAG: Record<Exclude<NamespaceType, 'time'>, number> = {
  mount: 0x00020000,
  cgroup: 0x02000000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
};

/** setns(2) type names used in the plan, in the order namespaces are joined (user first). */
const SETNS_ORDER: [NamespaceType, string][] = [
  ['user', 'user'], ['ipc', 'ipc'], ['uts', 'uts'], ['network', 'net'], ['pid', 'pid'],
  ['cgroup', 'cgroup'], ['time', 'time'], ['mount', 'mnt'],
];

const DEFAULT_DEVICES: Required<Pick<Device, 'path' | 'type' | 'major' | 'minor' | 'fileMode'>>[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666 },
];

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CompileOptions {
  id: string;
  bundle: string;
  /** The exec fifo in the state dir (FIFO op). */
  fifoPath: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  /** Where compile reports fields it ignores on purpose. */
  warn?: (message: string) => void;
  preserveFds?: number;
  /** `run` in the foreground: the stage stays as the init's parent and reports its exit. */
  stay?: boolean;
  /** cgroup.procs files to join, and what a "cgroup" mount should show. */
  cgroupProcs: string[];
  cgroupMounts?: CgroupMountInfo;
  /** cgroup v2: the container's cgroup dir and the eBPF device program (cgroups/devices-bpf.ts) to attach to it. */
  cgroupDevices?: { dir: string; program: Buffer };
  /** Rootless (rootless.ts): what the stage writes itself, and whether Node maps first (newuidmap/newgidmap). */
  idMaps?: { uidMap: string; gidMap: string; setgroups: '' | 'deny'; external: boolean };
}

export interface CompiledPlan {
  plan: Plan;
  /** Names of the SYNC points, in order; Node answers each. */
  syncPoints: ('createRuntime' | 'startContainer')[];
}

function mappingText(maps: IdMapping[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** Normalises a container path to an absolute, dot-free form ("dev/shm" → "/dev/shm"). */
function containerPath(p: string): string {
  return posix.resolve('/', p);
}

function hookArgs(hook: Hook): (string | number)[] {
  const argv = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  return [hook.timeout ?? 0, '', hook.path, argv.length, ...argv, ...(hook.env ?? [])];
}

/** Sysctls are namespaced only in some namespaces; anything else would change the host. */
function checkSysctl(key: string, spec: Spec): void {
  const ns = namespacesOf(spec);
  const ipcKeys = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
  if (ipcKeys.includes(key) || key.startsWith('fs.mqueue.')) {
    if (!ns.has('ipc')) throw new ConfigError(`linux.sysctl: "${key}" needs an ipc namespace; without one it would change the host`);
    return;
  }
  if (key.startsWith('net.')) {
    if (!ns.has('network')) throw new ConfigError(`linux.sysctl: "${key}" needs a network namespace; without one it would change the host`);
    return;
  }
  if (key === 'kernel.hostname' || key === 'kernel.domainname') {
    if (!ns.has('uts')) throw new ConfigError(`linux.sysctl: "${key}" needs a uts namespace`);
    return;
  }
  throw new ConfigError(`linux.sysctl: "${key}" is not namespaced; setting it would change the host`);
}

function selinuxEnabled(): boolean {
  return existsSync('/sys/fs/selinux/enforce');
}

export function compile(spec: Spec, opts: CompileOptions): CompiledPlan {
  const plan = new Plan();
  const syncPoints: CompiledPlan['syncPoints'] = [];
  const linux = spec.linux ?? {};
  const ns = namespacesOf(spec);
  const process = spec.process;
  if (!process) throw new ConfigError('process: is required to create a container');
  if (!process.args || process.args.length === 0) throw new ConfigError('process.args: must name the program to run');
  if (process.apparmorProfile) throw new ConfigError('process.apparmorProfile: AppArmor is not available on this host');
  if (process.selinuxLabel) throw new ConfigError('process.selinuxLabel: SELinux is not available on this host');
  // A mount label only tags files for an SELinux policy; on a host without SELinux there is no
  // policy to feed, so ignoring it weakens nothing (runc and crun ignore it too). A process label
  // would be a promise about the process's confinement, so that one stays an error above.
  if (linux.mountLabel) {
    if (selinuxEnabled()) throw new ConfigError('linux.mountLabel: SELinux labels are not supported by berth-runtime');
    opts.warn?.(`linux.mountLabel "${linux.mountLabel}" ignored: SELinux is not enabled on this host`);
  }
  if (linux.intelRdt) throw new ConfigError('linux.intelRdt: Intel RDT is not supported');
  const personality = personalityValue(linux.personality);
  // Without a mount namespace the container shares the host's mount table (the spec allows it, runc
  // and crun do it): its mounts land under the rootfs on the host, and delete unmounts them again.
  // Anything that would change mounts outside the rootfs is refused.
  const ownMountNs = ns.has('mount');
  if (!ownMountNs) {
    if (linux.rootfsPropagation) throw new ConfigError('linux.rootfsPropagation: needs a mount namespace (it would change the host\'s propagation)');
    if (opts.noPivot) throw new ConfigError('--no-pivot: needs a mount namespace');
  }

  const newUserNs = ns.has('user') && !ns.get('user')!.path;
  if (newUserNs && (!linux.uidMappings?.length || !linux.gidMappings?.length)) {
    throw new ConfigError('linux.uidMappings/gidMappings: a new user namespace needs both mappings');
  }
  if (!ns.has('user') && (linux.uidMappings?.length || linux.gidMappings?.length)) {
    throw new ConfigError('linux.uidMappings: mappings are given but no user namespace is requested');
  }
  if ((spec.hostname || spec.domainname) && !ns.has('uts')) {
    throw new ConfigError('hostname: setting the hostname needs a uts namespace (it would change the host)');
  }
  if (process.terminal && !opts.consoleSocket && !opts.stay) {
    throw new ConfigError('process.terminal is true: pass --console-socket to receive the pty (or set terminal to false)');
  }
  if (linux.timeOffsets && !(ns.has('time') && !ns.get('time')!.path)) {
    throw new ConfigError('linux.timeOffsets: needs a new time namespace');
  }

  const rootfs = resolve(opts.bundle, spec.root!.path);
  if (!existsSync(rootfs) || !statSync(rootfs).isDirectory()) throw new ConfigError(`root.path: ${rootfs} is not a directory`);

  // Everything checked that can be checked before touching the system.
  // The listener learns the container's state as of create; the pid is the init's (spliced in by the stage).
  const listenerState: State = { ociVersion: OCI_VERSION, id: opts.id, status: 'creating', bundle: opts.bundle };
  if (spec.annotations && Object.keys(spec.annotations).length > 0) listenerState.annotations = spec.annotations;
  const prepared = prepareProcess(process, linux.seccomp, listenerState);
  for (const key of Object.keys(linux.sysctl ?? {})) checkSysctl(key, spec);

  // ---- parent (stage 0), in the host's namespaces ----
  if (process.oomScoreAdj !== undefined) plan.add(Op.OOM_SCORE_ADJ, process.oomScoreAdj);
  for (const procs of opts.cgroupProcs) plan.add(Op.CGROUP_JOIN, procs);
  // v2 device rules: attached once the stage is in the cgroup, so everything after is subject to them.
  if (opts.cgroupDevices) plan.add(Op.CGROUP_DEVICES, opts.cgroupDevices.dir, opts.cgroupDevices.program);
  plan.add(Op.FIFO, opts.fifoPath);
  if (process.terminal && opts.consoleSocket) plan.add(Op.CONSOLE_SOCKET, resolve(opts.consoleSocket));
  else if (process.terminal) plan.add(Op.CONSOLE_PROXY);
  addSeccompListener(plan, prepared);
  for (const [type, setnsName] of SETNS_ORDER) {
    const path = ns.get(type)?.path;
    if (path) plan.add(Op.SETNS, setnsName, path);
  }
  if (ns.has('time') && !ns.get('time')!.path) {
    const offsets = Object.entries(linux.timeOffsets ?? {})
      .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`).join('');
    plan.add(Op.UNSHARE_TIME, offsets);
  }
  if (newUserNs && opts.idMaps) {
    const m = opts.idMaps;
    plan.add(Op.ID_MAPS, m.uidMap, m.gidMap, m.setgroups, ...(m.external ? [1] : []));
  } else if (newUserNs) {
    plan.add(Op.ID_MAPS, mappingText(linux.uidMappings!), mappingText(linux.gidMappings!), '');
  }
  let cloneFlags = 0;
  for (const [type, flag] of Object.entries(CLONE_FLAG)) {
    const n = ns.get(type as NamespaceType);
    if (n && !n.path) cloneFlags |= flag;
  }
  plan.add(Op.CLONE, cloneFlags, opts.stay ? 1 : 0);

  // ---- child: the container's init ----
  if (!opts.noNewKeyring) plan.add(Op.SESSION_KEYRING, `_ses.${opts.id}`);
  if (spec.hostname !== undefined && spec.hostname !== '') plan.add(Op.HOSTNAME, spec.hostname);
  if (spec.domainname !== undefined && spec.domainname !== '') plan.add(Op.DOMAINNAME, spec.domainname);

  // Propagation: never let the container's mounts reach the host (slave unless asked otherwise;
  // pivot_root refuses shared mounts, so "shared" is applied after the pivot).
  const rootProp = linux.rootfsPropagation;
  // (unbindable would also forbid binding the rootfs onto itself, so it too waits for the pivot.)
  const initialProp = rootProp && /^r?(private|slave)$/.test(rootProp) ? propagationFlag(rootProp) | MS.REC : MS.SLAVE | MS.REC;
  if (ownMountNs) {
    plan.add(Op.MOUNT, '', '/', '', initialProp, '', 'none', 0);
    plan.add(Op.MOUNT, rootfs, rootfs, '', MS.BIND | MS.REC, '', 'none', 0);
    plan.add(Op.MOUNT, '', rootfs, '', MS.PRIVATE, '', 'none', 0);
  } else if (spec.root!.readonly) {
    // No mount namespace: the host's filesystem must stay writable, so the rootfs is bound onto
    // itself (a private mount of our own, which delete removes) and only that bind becomes
    // read-only at the end.
    plan.add(Op.MOUNT, rootfs, rootfs, '', MS.BIND | MS.REC, '', 'none', 0);
    plan.add(Op.MOUNT, '', rootfs, '', MS.PRIVATE, '', 'none', 0);
  }
  plan.add(Op.ROOTFS, rootfs);

  const mounts = spec.mounts ?? [];
  const devIsBind = mounts.some((m) => containerPath(m.destination) === '/dev' && isBindMount(m));
  const deferredRemounts: [string, number][] = [];
  const deferredAttrs: [string, number, number][] = [];
  // Propagation of individual mounts is set after the pivot: detaching the old root (made rslave
  // first, so nothing propagates to the host) would otherwise turn a shared mount private again.
  const propagation: [string, number][] = [];
  for (const [i, mount] of mounts.entries()) {
    compileMount(plan, mount, i, opts, ns.has('cgroup') && !ns.get('cgroup')!.path, deferredRemounts, propagation, deferredAttrs);
  }

  // /dev: the default devices and the spec's, unless /dev is a bind mount of a ready-made tree.
  if (!devIsBind) {
    const devices = new Map<string, Device>();
    for (const d of DEFAULT_DEVICES) devices.set(d.path, d);
    for (const d of linux.devices ?? []) devices.set(containerPath(d.path), { ...d, path: containerPath(d.path) });
    for (const d of devices.values()) addDevice(plan, d, newUserNs);
    const hasPts = mounts.some((m) => containerPath(m.destination) === '/dev/pts');
    plan.add(Op.SYMLINK, '/proc/self/fd', '/dev/fd');
    plan.add(Op.SYMLINK, '/proc/self/fd/0', '/dev/stdin');
    plan.add(Op.SYMLINK, '/proc/self/fd/1', '/dev/stdout');
    plan.add(Op.SYMLINK, '/proc/self/fd/2', '/dev/stderr');
    if (hasPts && !devices.has('/dev/ptmx')) plan.add(Op.SYMLINK, 'pts/ptmx', '/dev/ptmx');
    if (existsSync('/proc/kcore')) plan.add(Op.SYMLINK, '/proc/kcore', '/dev/core');
  } else {
    for (const d of linux.devices ?? []) addDevice(plan, { ...d, path: containerPath(d.path) }, newUserNs);
  }
  for (const [target, flags] of deferredRemounts) plan.add(Op.MOUNT, '', target, '', flags, '', 'none', 1);
  for (const [target, set, clr] of deferredAttrs) plan.add(Op.MOUNT_SETATTR, target, set, clr, 1);

  const hooks = spec.hooks ?? {};
  if (hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length) {
    plan.add(Op.SYNC, 'createRuntime');
    syncPoints.push('createRuntime');
    for (const hook of hooks.createContainer ?? []) plan.add(Op.RUN_HOOK, ...hookArgs(hook));
  }

  plan.add(Op.PIVOT, !ownMountNs ? 2 : opts.noPivot ? 1 : 0);

  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    plan.add(Op.WRITE_FILE, `/proc/sys/${key.replace(/\./g, '/')}`, value);
  }
  for (const p of linux.readonlyPaths ?? []) {
    if (!isAbsolute(p)) throw new ConfigError(`linux.readonlyPaths: "${p}" must be absolute`);
    plan.add(Op.READONLY, containerPath(p));
  }
  for (const p of linux.maskedPaths ?? []) {
    if (!isAbsolute(p)) throw new ConfigError(`linux.maskedPaths: "${p}" must be absolute`);
    plan.add(Op.MASK, containerPath(p));
  }
  if (spec.root!.readonly) plan.add(Op.MOUNT, '', '/', '', MS.BIND | MS.REMOUNT | MS.RDONLY, '', 'none', 0);
  // Last: an unbindable root would forbid the bind mounts of readonlyPaths and maskedPaths above.
  if (rootProp) plan.add(Op.MOUNT, '', '/', '', propagationFlag(rootProp) | MS.REC, '', 'none', 0);
  for (const [target, flags] of propagation) plan.add(Op.MOUNT, '', target, '', flags, '', 'none', 1);

  if (process.terminal) {
    plan.add(Op.CONSOLE, process.consoleSize?.height ?? 0, process.consoleSize?.width ?? 0, '/dev/console');
  }
  addPersonality(plan, personality);
  addProcessSetup(plan, process, prepared, rootfs);
  addPrivilegeDrop(plan, process, prepared, opts.idMaps?.setgroups === 'deny' ? '-' : (process.user.additionalGids ?? []).join(','));

  if (hooks.startContainer?.length) {
    plan.add(Op.SYNC, 'startContainer');
    syncPoints.push('startContainer');
  }
  plan.add(Op.WAIT_START);
  for (const hook of hooks.startContainer ?? []) plan.add(Op.RUN_HOOK, ...hookArgs(hook));
  addLateSeccomp(plan, process, prepared);
  plan.add(Op.EXEC, opts.preserveFds ?? 0);
  return { plan, syncPoints };
}

/** What create and exec check about a process before anything runs. */
export interface PreparedProcess {
  bounding: bigint;
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  ambient: bigint;
  rlimits: { resource: number; soft: number; hard: number }[];
  seccomp?: CompiledSeccomp;
  /** SCMP_ACT_NOTIFY: where the notify fd goes, and the containerProcessState JSON around the pid. */
  listener?: { path: string; json: string[] };
}

/** Capability names, rlimit types and the seccomp filter, validated and compiled. `state`: the
 * container's state for a seccomp listener; without a pid, the process's own (create: the init). */
export function prepareProcess(process: Process, seccompSpec: Seccomp | undefined, state?: State): PreparedProcess {
  const caps = process.capabilities ?? {};
  const permitted = capabilityMask(caps.permitted, 'permitted');
  const inheritable = capabilityMask(caps.inheritable, 'inheritable');
  const seccomp = seccompSpec ? compileSeccomp(seccompSpec) : undefined;
  let listener: PreparedProcess['listener'];
  if (seccomp?.needsListener) {
    if (!seccompSpec!.listenerPath) {
      throw new ConfigError('linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY (the notify fd must go to a listener)');
    }
    if (!state) throw new Error('prepareProcess: a seccomp listener needs the container state');
    listener = { path: resolve(seccompSpec!.listenerPath), json: containerProcessStateParts(state, seccompSpec!.listenerMetadata) };
  }
  return {
    bounding: capabilityMask(caps.bounding, 'bounding'),
    effective: capabilityMask(caps.effective, 'effective'),
    permitted,
    inheritable,
    // The kernel only lets a capability be ambient if it is permitted and inheritable; runc skips
    // the others with a warning, and dropping them only takes privileges away.
    ambient: capabilityMask(caps.ambient, 'ambient') & permitted & inheritable,
    rlimits: (process.rlimits ?? []).map((r) => ({ resource: rlimitNumber(r.type), soft: r.soft, hard: r.hard })),
    seccomp,
    listener,
  };
}

/** The runtime-spec's containerProcessState as JSON, split where the stage inserts the host pid
 * of the process that loaded the filter ("pid", and "state.pid" when the state has none). */
function containerProcessStateParts(state: State, metadata: string | undefined): string[] {
  const head = JSON.stringify({ ociVersion: OCI_VERSION, fds: ['seccompFd'], ...(metadata !== undefined ? { metadata } : {}) });
  const parts = [`${head.slice(0, -1)},"pid":`];
  if (state.pid !== undefined) {
    parts.push(`,"state":${JSON.stringify(state)}}`);
  } else {
    parts.push(`,"state":${JSON.stringify(state).slice(0, -1)},"pid":`, '}}');
  }
  return parts;
}

/** Parent phase: connect to the seccomp listener while its host path is still reachable. */
export function addSeccompListener(plan: Plan, prepared: PreparedProcess): void {
  if (prepared.listener) plan.add(Op.SECCOMP_LISTENER, prepared.listener.path);
}

function addSeccomp(plan: Plan, prepared: PreparedProcess): void {
  const s = prepared.seccomp!;
  if (prepared.listener) {
    plan.add(Op.SECCOMP_NOTIFY, s.flags | SECCOMP_FILTER_FLAGS.SECCOMP_FILTER_FLAG_NEW_LISTENER!, s.filter, ...prepared.listener.json);
  } else {
    plan.add(Op.SECCOMP, s.flags, s.filter);
  }
}

/** personality(2) domains and flags (<linux/personality.h>) by their runtime-spec / kernel names. */
const PERSONALITY_DOMAINS: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };
const PERSONALITY_FLAGS: Record<string, number> = {
  UNAME26: 0x0020000, ADDR_NO_RANDOMIZE: 0x0040000, FDPIC_FUNCPTRS: 0x0080000, MMAP_PAGE_ZERO: 0x0100000,
  ADDR_COMPAT_LAYOUT: 0x0200000, READ_IMPLIES_EXEC: 0x0400000, ADDR_LIMIT_32BIT: 0x0800000,
  SHORT_INODE: 0x1000000, WHOLE_SECONDS: 0x2000000, STICKY_TIMEOUTS: 0x4000000, ADDR_LIMIT_3GB: 0x8000000,
};

/** linux.personality as the persona value for personality(2); undefined when not set. */
export function personalityValue(p: unknown): number | undefined {
  if (p === undefined || p === null) return undefined;
  if (typeof p !== 'object' || Array.isArray(p)) throw new ConfigError('linux.personality: must be an object');
  const domain = (p as { domain?: unknown }).domain;
  if (typeof domain !== 'string' || !Object.hasOwn(PERSONALITY_DOMAINS, domain)) {
    throw new ConfigError(`linux.personality.domain: ${JSON.stringify(domain)} is not supported (use "LINUX" or "LINUX32")`);
  }
  let value = PERSONALITY_DOMAINS[domain];
  const flags = (p as { flags?: unknown }).flags;
  if (flags !== undefined && flags !== null) {
    if (!Array.isArray(flags)) throw new ConfigError('linux.personality.flags: must be an array of strings');
    flags.forEach((f: unknown, i) => {
      if (typeof f !== 'string' || !Object.hasOwn(PERSONALITY_FLAGS, f)) {
        throw new ConfigError(`linux.personality.flags[${i}]: unknown personality flag ${JSON.stringify(f)} (known: ${Object.keys(PERSONALITY_FLAGS).join(', ')})`);
      }
      value |= PERSONALITY_FLAGS[f];
    });
  }
  return value;
}

/** The execution domain, set before any seccomp filter is loaded (a filter may restrict personality(2)). */
export function addPersonality(plan: Plan, persona: number | undefined): void {
  if (persona !== undefined) plan.add(Op.PERSONALITY, persona);
}

/** cwd, rlimits, and the program looked up now, so that a missing binary fails before start. */
export function addProcessSetup(plan: Plan, process: Process, prepared: PreparedProcess, rootfs: string): void {
  plan.add(Op.CHDIR, process.cwd);
  for (const r of prepared.rlimits) plan.add(Op.RLIMIT, r.resource, BigInt.asUintN(64, BigInt(r.soft)), BigInt.asUintN(64, BigInt(r.hard)));
  const env = dedupEnv(process.env ?? []);
  // As runc: a process without HOME (or with an empty one) gets the user's home from the image's
  // /etc/passwd, else "/".
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${homeOf(rootfs, process.user.uid)}`);
  const pathVar = env.filter((e) => e.startsWith('PATH=')).pop()?.slice(5) ?? DEFAULT_PATH;
  plan.add(Op.EXEC_PREPARE, pathVar, process.args!.length, ...process.args!, ...env);
}

/**
 * The environment as the process gets it: a name given more than once keeps its last value, listed
 * once, where it last appears (as runc; a duplicate would otherwise reach the process twice, and
 * which one getenv(3) finds depends on the libc). An empty HOME counts as unset.
 */
export function dedupEnv(env: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = env.length - 1; i >= 0; i--) {
    const entry = env[i];
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (seen.has(name)) continue;
    seen.add(name);
    if (entry === 'HOME=') continue;
    out.push(entry);
  }
  return out.reverse();
}

/** The privilege drop. groups: comma-separated gids, or "-" where the user ns denies setgroups. */
export function addPrivilegeDrop(plan: Plan, process: Process, prepared: PreparedProcess, groups: string): void {
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while the process still
  // has it. With no_new_privs it is loaded as late as possible, right before exec (as runc does).
  if (prepared.seccomp && !process.noNewPrivileges) addSeccomp(plan, prepared);
  plan.add(Op.CAPS_BOUNDING, prepared.bounding);
  plan.add(Op.USER, process.user.uid, process.user.gid, process.user.umask ?? 0o022, groups);
  plan.add(Op.CAPS, prepared.effective, prepared.permitted, prepared.inheritable, prepared.ambient);
  if (process.noNewPrivileges) plan.add(Op.NO_NEW_PRIVS);
}

/** The filter under no_new_privs: the last thing before exec. */
export function addLateSeccomp(plan: Plan, process: Process, prepared: PreparedProcess): void {
  if (prepared.seccomp && process.noNewPrivileges) addSeccomp(plan, prepared);
}

function propagationFlag(name: string): number {
  switch (name.replace(/^r/, '')) {
    case 'private': return MS.PRIVATE;
    case 'slave': return MS.SLAVE;
    case 'shared': return MS.SHARED;
    case 'unbindable': return MS.UNBINDABLE;
    default: throw new ConfigError(`linux.rootfsPropagation: unknown propagation "${name}"`);
  }
}

function isBindMount(m: Mount): boolean {
  return m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

function addDevice(plan: Plan, d: Device, newUserNs: boolean): void {
  const type = d.type === 'u' ? 'c' : d.type;
  if (newUserNs) {
    // mknod is not allowed in a user namespace: bind the host's node of the same path.
    if (!existsSync(d.path)) throw new ConfigError(`linux.devices: ${d.path} does not exist on the host, so it cannot be bound into a user-namespaced container`);
    plan.add(Op.MOUNT, d.path, d.path, '', MS.BIND, '', 'file', 1);
    return;
  }
  plan.add(Op.MKNOD, d.path, type, d.major ?? 0, d.minor ?? 0, (d.fileMode ?? 0o666) & 0o7777, d.uid ?? 0, d.gid ?? 0);
}

function compileMount(plan: Plan, mount: Mount, index: number, opts: CompileOptions, newCgroupNs: boolean, deferred: [string, number][], propagation: [string, number][], deferredAttrs: [string, number, number][] = []): void {
  const where = `mounts[${index}]`;
  const dest = containerPath(mount.destination);
  if (dest === '/') throw new ConfigError(`${where}.destination: cannot mount over the root; use root.path`);
  const o = parseMountOptions(mount.options, `${where}.options`);
  compileMountOnly(plan, mount, where, dest, o, opts, newCgroupNs, deferred, propagation);
  // Recursive attributes (rro, rnosuid, …): on the new mount and every mount below it, once it is
  // complete (/dev: once the device nodes exist).
  if (o.recAttrSet !== 0 || o.recAttrClr !== 0) {
    if (dest === '/dev') deferredAttrs.push([dest, o.recAttrSet, o.recAttrClr]);
    else plan.add(Op.MOUNT_SETATTR, dest, o.recAttrSet, o.recAttrClr, 1);
  }
}

function compileMountOnly(plan: Plan, mount: Mount, where: string, dest: string, o: ParsedMountOptions, opts: CompileOptions, newCgroupNs: boolean, deferred: [string, number][], propagation: [string, number][]): void {
  const type = mount.type ?? (o.bind ? 'bind' : '');

  if (o.bind || type === 'bind') {
    if (!mount.source) throw new ConfigError(`${where}.source: a bind mount needs a source`);
    const source = resolve(opts.bundle, mount.source);
    let kind: 'dir' | 'file';
    try {
      kind = statSync(source).isDirectory() ? 'dir' : 'file';
    } catch {
      throw new ConfigError(`${where}.source: ${source} does not exist`);
    }
    plan.add(Op.MOUNT, source, dest, '', MS.BIND | (o.recursive ? MS.REC : 0), '', kind, 1);
    // A bind mount ignores most flags: apply them with a remount, as mount(8) does.
    const remountFlags = o.flags & ~(MS.REMOUNT | MS.BIND | MS.REC);
    if (remountFlags !== 0) plan.add(Op.MOUNT, '', dest, '', MS.BIND | MS.REMOUNT | remountFlags, '', 'none', 1);
    for (const p of o.propagation) propagation.push([dest, p]);
    return;
  }

  if (type === 'cgroup' || type === 'cgroup2') {
    compileCgroupMount(plan, dest, o.flags, opts.cgroupMounts, newCgroupNs, where);
    return;
  }

  if (!type) throw new ConfigError(`${where}.type: required for a non-bind mount at ${dest}`);
  // /dev must stay writable until the device nodes exist; its read-only flag comes afterwards.
  let flags = o.flags;
  if (dest === '/dev' && flags & MS.RDONLY) {
    flags &= ~MS.RDONLY;
    deferred.push([dest, MS.REMOUNT | o.flags]);
  }
  const source = mount.source ?? type;
  // procfs and sysfs only on an ordinary directory: masks and read-only paths assume them there.
  const kind = type === 'proc' || type === 'sysfs' ? 'realdir' : 'dir';
  plan.add(Op.MOUNT, source, dest, type, flags, o.data.join(','), kind, 1);
  for (const p of o.propagation) propagation.push([dest, p]);
}

function compileCgroupMount(plan: Plan, dest: string, flags: number, info: CgroupMountInfo | undefined, newCgroupNs: boolean, where: string): void {
  if (!info || info.entries.length === 0) throw new ConfigError(`${where}: a cgroup mount needs the container's cgroup, but no cgroup hierarchy was found`);
  const ro = flags & MS.RDONLY;
  const baseFlags = (flags | MS.NOSUID | MS.NODEV | MS.NOEXEC) & ~MS.RDONLY;
  if (info.version === 2) {
    if (newCgroupNs && !info.bindOnly) {
      plan.add(Op.MOUNT, 'cgroup2', dest, 'cgroup2', baseFlags | ro, '', 'dir', 1);
    } else {
      plan.add(Op.MOUNT, info.entries[0].hostDir, dest, '', MS.BIND | MS.REC, '', 'dir', 1);
      plan.add(Op.MOUNT, '', dest, '', MS.BIND | MS.REMOUNT | baseFlags | ro, '', 'none', 1);
    }
    return;
  }
  // v1: a tmpfs with one bind per hierarchy showing the container's own cgroup as its root.
  plan.add(Op.MOUNT, 'tmpfs', dest, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755', 'dir', 1);
  for (const entry of info.entries) {
    const target = posix.join(dest, entry.name);
    plan.add(Op.MOUNT, entry.hostDir, target, '', MS.BIND | MS.REC, '', 'dir', 1);
    plan.add(Op.MOUNT, '', target, '', MS.BIND | MS.REMOUNT | baseFlags | ro, '', 'none', 1);
  }
  for (const link of info.symlinks) plan.add(Op.SYMLINK, link.target, posix.join(dest, link.name));
  if (ro) plan.add(Op.MOUNT, '', dest, '', MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755', 'none', 1);
}


/** Device cgroup rules every container gets after the spec's own (runc's and crun's defaults). */
const ALLOWED_DEVICE_RULES = [
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
] as const;

/**
 * The resources to give the cgroup: the spec's, with the runtime's default device allows after its
 * device rules. linux.devices only creates nodes: access to them is what linux.resources.devices
 * grants (as in runc and crun; engines add an allow rule for each device they pass), so a spec
 * can create a node and still deny it.
 */
export function cgroupResources(spec: Spec): LinuxResources {
  const resources = spec.linux?.resources ?? {};
  // Without rules of its own a container still gets deny-all plus the defaults, never the host's devices.
  const rules: DeviceCgroupRule[] = resources.devices ? [...resources.devices] : [{ allow: false, access: 'rwm' }];
  // The spec's rules first, in their order (the runtime-spec requires it, and the runtime-tools
  // suite checks devices.list position by position), then the runtime's allows, as runc and crun do.
  return { ...resources, devices: [...rules, ...ALLOWED_DEVICE_RULES.map((r) => ({ ...r }))] };
}
