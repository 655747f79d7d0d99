// Docker's default seccomp profile as an OCI `linux.seccomp` object, and docker's seccomp profile
// format (archMap, includes/excludes by capability, architecture and kernel version) converted to
// OCI's, for `--security-opt seccomp=<profile JSON>`.
//
// The facts are moby's (profiles/seccomp/default.json): the default action is EPERM, an allow list
// of ordinary syscalls, syscalls allowed only with the capability that makes them meaningful
// (mount with CAP_SYS_ADMIN, reboot with CAP_SYS_BOOT, …), per-architecture extras, and argument
// rules: socket(2) refuses AF_ALG (38) and AF_VSOCK (40); personality(2) takes only the handful of
// personas programs use; clone(2) without CAP_SYS_ADMIN refuses namespace flags; clone3(2) without
// it fails with ENOSYS so libc falls back to clone(2), whose flags the filter can see.
// The rules below are declared with "when"/"unless" gates; docker's profile format maps onto the
// same gates, so the default profile and a user's profile go through one filter.
import { release as osRelease, endianness } from 'node:os';
import type { Seccomp } from '../runtime/spec-types.ts';

/** A --security-opt seccomp profile docker would refuse; the message is moby's. */
export class SeccompProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SeccompProfileError';
  }
}

export interface SeccompProfileOptions {
  /** The container's bounding capabilities ("CAP_SYS_ADMIN", …): they unlock capability-gated syscalls. */
  capabilities: string[];
  /** The host architecture: Node's process.arch ("x64", "arm64", …) or Go's ("amd64", "386", …). Default: process.arch. */
  arch?: string;
  /** The host kernel release for minKernel gates, e.g. "6.1.0-18-amd64". Default: os.release(). */
  kernelRelease?: string;
}

type SeccompArg = NonNullable<NonNullable<Seccomp['syscalls']>[number]['args']>[number];
type SeccompSyscall = NonNullable<Seccomp['syscalls']>[number];

/** When a rule applies. `when`: every listed condition holds; `unless`: none of them does. */
interface Gate {
  /** Capabilities (all of them for `when`, any of them for `unless`). */
  caps?: string[];
  /** libseccomp's native architecture names: amd64, x86, x32, arm, arm64, s390x, … */
  arches?: string[];
  /** "major.minor": the host kernel is at least this. */
  minKernel?: string;
}

interface ProfileRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
  when?: Gate;
  unless?: Gate;
}

const ALLOW = 'SCMP_ACT_ALLOW';
const EPERM = 1;
const ENOSYS = 38;
// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_ALG = 38;
const AF_VSOCK = 40;

/** Allowed whatever the capabilities and architecture. */
const ALWAYS_ALLOWED: readonly string[] = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'cachestat', 'capget', 'capset', 'chdir',
  'chmod', 'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64',
  'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect',
  'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old',
  'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit',
  'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir',
  'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr',
  'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs',
  'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_requeue', 'futex_time64', 'futex_wait',
  'futex_waitv', 'futex_wake', 'futimesat', 'getcpu', 'getcwd', 'getdents', 'getdents64', 'getegid', 'getegid32',
  'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer', 'getpeername', 'getpgid',
  'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32',
  'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid',
  'gettimeofday', 'getuid', 'getuid32', 'getxattr', 'getxattrat', 'inotify_add_watch', 'inotify_init',
  'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl', 'io_destroy', 'io_getevents', 'io_pgetevents',
  'io_pgetevents_time64', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit', 'ipc', 'kill', 'landlock_add_rule',
  'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen',
  'listmount', 'listxattr', 'listxattrat', 'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat',
  'lstat64', 'madvise', 'map_shadow_stack', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir',
  'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr',
  'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64',
  'mq_unlink', 'mremap', 'mseal', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap',
  'name_to_handle_at', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat', 'openat2', 'pause', 'pidfd_open',
  'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64',
  'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease', 'pselect6', 'pselect6_time64',
  'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom',
  'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'removexattrat', 'rename', 'renameat',
  'renameat2', 'restart_syscall', 'riscv_hwprobe', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending',
  'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64',
  'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_get_priority_max',
  'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
  'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select',
  'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg',
  'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
  'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32',
  'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list', 'setsid', 'setsockopt',
  'set_thread_area', 'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'setxattrat', 'shmat', 'shmctl', 'shmdt',
  'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socketcall',
  'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statmount', 'statx', 'symlink', 'symlinkat',
  'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete',
  'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create',
  'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times', 'tkill', 'truncate',
  'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'uretprobe', 'utime', 'utimensat',
  'utimensat_time64', 'utimes', 'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev'
];

/** Syscalls allowed only with a capability: capability → names. */
const BY_CAPABILITY: ReadonlyArray<[string, readonly string[]]> = [
  ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ['CAP_SYS_ADMIN', [
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie',
    'lsm_get_self_attr', 'lsm_list_modules', 'lsm_set_self_attr', 'mount', 'mount_setattr', 'move_mount',
    'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'syslog',
    'umount', 'umount2', 'unshare',
  ]],
  ['CAP_SYS_BOOT', ['reboot']],
  ['CAP_SYS_CHROOT', ['chroot']],
  ['CAP_SYS_MODULE', ['delete_module', 'init_module', 'finit_module']],
  ['CAP_SYS_PACCT', ['acct']],
  ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace']],
  ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
  ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64']],
  ['CAP_SYS_TTY_CONFIG', ['vhangup']],
  ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
  ['CAP_SYSLOG', ['syslog']],
  ['CAP_BPF', ['bpf']],
  ['CAP_PERFMON', ['perf_event_open']],
];

/** Architecture-specific syscalls: names → the architectures that get them. */
const BY_ARCH: ReadonlyArray<[readonly string[], readonly string[]]> = [
  [['sync_file_range2', 'swapcontext'], ['ppc64le']],
  [['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'], ['arm', 'arm64']],
  [['arch_prctl'], ['amd64', 'x32']],
  [['modify_ldt'], ['amd64', 'x32', 'x86']],
  [['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], ['s390', 's390x']],
  [['riscv_flush_icache'], ['riscv64']],
];

/** personality(2) personas: PER_LINUX, PER_LINUX32, UNAME26 alone and with PER_LINUX32, and the query value. */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const arg = (index: number, op: string, value: number): SeccompArg => ({ index, value, op });

function defaultRules(): ProfileRule[] {
  const s390 = ['s390', 's390x'];
  return [
    { names: [...ALWAYS_ALLOWED], action: ALLOW },
    // Before 4.8 a ptracer could bypass seccomp; since then these are safe for anyone.
    { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: ALLOW, when: { minKernel: '4.8' } },
    { names: ['socket'], action: ALLOW, args: [arg(0, 'SCMP_CMP_LT', AF_ALG)] },
    { names: ['socket'], action: ALLOW, args: [arg(0, 'SCMP_CMP_EQ', AF_ALG + 1)] },
    { names: ['socket'], action: ALLOW, args: [arg(0, 'SCMP_CMP_GT', AF_VSOCK)] },
    ...PERSONAS.map((p): ProfileRule => ({ names: ['personality'], action: ALLOW, args: [arg(0, 'SCMP_CMP_EQ', p)] })),
    ...BY_ARCH.map(([names, arches]): ProfileRule => ({ names: [...names], action: ALLOW, when: { arches: [...arches] } })),
    ...BY_CAPABILITY.map(([cap, names]): ProfileRule => ({ names: [...names], action: ALLOW, when: { caps: [cap] } })),
    // Without CAP_SYS_ADMIN: clone(2) only without namespace flags (s390 passes the flags second).
    { names: ['clone'], action: ALLOW, args: [arg(0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS)], unless: { caps: ['CAP_SYS_ADMIN'], arches: s390 } },
    { names: ['clone'], action: ALLOW, args: [arg(1, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS)], when: { arches: s390 }, unless: { caps: ['CAP_SYS_ADMIN'] } },
    // clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc use clone(2).
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, unless: { caps: ['CAP_SYS_ADMIN'] } },
  ];
}

/** libseccomp's native architecture → the OCI architectures a filter for it covers (native first). */
const ARCH_FAMILIES: Readonly<Record<string, readonly string[]>> = {
  amd64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  mips64: ['SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32'],
  mips64n32: ['SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64'],
  mipsel64: ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32'],
  mipsel64n32: ['SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  riscv64: ['SCMP_ARCH_RISCV64'],
  loongarch64: ['SCMP_ARCH_LOONGARCH64'],
};

/** The OCI name of each libseccomp native architecture (for a docker profile's archMap). */
const OCI_ARCH: Readonly<Record<string, string>> = {
  amd64: 'SCMP_ARCH_X86_64', x86: 'SCMP_ARCH_X86', x32: 'SCMP_ARCH_X32', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  mips: 'SCMP_ARCH_MIPS', mipsel: 'SCMP_ARCH_MIPSEL', mips64: 'SCMP_ARCH_MIPS64', mips64n32: 'SCMP_ARCH_MIPS64N32',
  mipsel64: 'SCMP_ARCH_MIPSEL64', mipsel64n32: 'SCMP_ARCH_MIPSEL64N32', ppc: 'SCMP_ARCH_PPC', ppc64: 'SCMP_ARCH_PPC64',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
  loongarch64: 'SCMP_ARCH_LOONGARCH64',
};

/** Node's or Go's architecture name → libseccomp's native name (what profiles' "arches" use). */
export function seccompNativeArch(arch: string = process.arch): string {
  const names: Record<string, string> = {
    x64: 'amd64', amd64: 'amd64', x86_64: 'amd64', ia32: 'x86', '386': 'x86', x86: 'x86', i386: 'x86',
    arm64: 'arm64', aarch64: 'arm64', arm: 'arm', loong64: 'loongarch64', loongarch64: 'loongarch64',
    mips: 'mips', mipsle: 'mipsel', mipsel: 'mipsel', mips64le: 'mipsel64', mips64: 'mips64',
    ppc: 'ppc', ppc64le: 'ppc64le', riscv64: 'riscv64', s390: 's390', s390x: 's390x',
  };
  // Node says "ppc64" for both byte orders; Go says ppc64le for the little-endian one.
  if (arch === 'ppc64') return endianness() === 'LE' ? 'ppc64le' : 'ppc64';
  return names[arch] ?? arch;
}

function kernelAtLeast(releaseText: string, min: string): boolean {
  const have = /^(\d+)\.(\d+)/.exec(releaseText);
  const want = /^(\d+)\.(\d+)$/.exec(min);
  if (!have) throw new SeccompProfileError(`failed to parse kernel version "${releaseText}"`);
  if (!want) throw new SeccompProfileError(`invalid kernel version: "${min}", expected "<kernel>.<major>"`);
  const [hk, hm, wk, wm] = [have[1], have[2], want[1], want[2]].map(Number);
  return hk > wk || (hk === wk && hm >= wm);
}

interface Host { caps: Set<string>; arch: string; kernel: string }

function applies(rule: ProfileRule, host: Host): boolean {
  const { when, unless } = rule;
  if (unless) {
    if (unless.arches?.includes(host.arch)) return false;
    if (unless.caps?.some((c) => host.caps.has(c))) return false;
    if (unless.minKernel && kernelAtLeast(host.kernel, unless.minKernel)) return false;
  }
  if (when) {
    if (when.arches?.length && !when.arches.includes(host.arch)) return false;
    if (when.caps?.some((c) => !host.caps.has(c))) return false;
    if (when.minKernel && !kernelAtLeast(host.kernel, when.minKernel)) return false;
  }
  return true;
}

function toOci(rule: ProfileRule): SeccompSyscall {
  const out: SeccompSyscall = { names: [...rule.names], action: rule.action };
  if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
  if (rule.args?.length) out.args = rule.args.map((a) => ({ ...a }));
  return out;
}

function hostOf(opts: SeccompProfileOptions): Host {
  return { caps: new Set(opts.capabilities), arch: seccompNativeArch(opts.arch), kernel: opts.kernelRelease ?? osRelease() };
}

/**
 * Docker's default profile for a container with these bounding capabilities on this architecture:
 * EPERM for anything not listed, the architecture's family (x86_64 with x86 and x32, aarch64 with
 * arm), and the rules that apply.
 */
export function defaultSeccompProfile(opts: SeccompProfileOptions): Seccomp {
  const host = hostOf(opts);
  const profile: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: EPERM };
  // Without a family (e.g. ppc64le), the filter covers the native architecture only.
  if (ARCH_FAMILIES[host.arch]) profile.architectures = [...ARCH_FAMILIES[host.arch]];
  profile.syscalls = defaultRules().filter((r) => applies(r, host)).map(toOci);
  return profile;
}

// ---------------------------------------------------------------------------------------------
// docker's profile format
// ---------------------------------------------------------------------------------------------

/** A seccomp profile as `docker run --security-opt seccomp=<file>` takes it (OCI's fields, plus these). */
export interface DockerSeccompProfile extends Omit<Seccomp, 'syscalls'> {
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }> | null;
  syscalls?: Array<{
    name?: string;
    names?: string[];
    action: string;
    errnoRet?: number;
    args?: SeccompArg[] | null;
    comment?: string;
    includes?: Gate | null;
    excludes?: Gate | null;
  }> | null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function gateOf(v: unknown, where: string): Gate | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new SeccompProfileError(`Decoding seccomp profile failed: ${where} must be an object`);
  const strings = (x: unknown, f: string): string[] | undefined => {
    if (x === undefined || x === null) return undefined;
    if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) {
      throw new SeccompProfileError(`Decoding seccomp profile failed: ${where}.${f} must be an array of strings`);
    }
    return x;
  };
  const gate: Gate = { caps: strings(v.caps, 'caps'), arches: strings(v.arches, 'arches') };
  if (v.minKernel !== undefined && v.minKernel !== null && v.minKernel !== '') {
    const min = v.minKernel;
    if (typeof min !== 'string' || !/^\d+\.\d+$/.test(min) || /^0+\.0+$/.test(min)) {
      throw new SeccompProfileError(`invalid kernel version: ${JSON.stringify(min)}, expected "<kernel>.<major>"`);
    }
    gate.minKernel = min;
  }
  return gate;
}

/**
 * A profile in docker's format (JSON text or parsed) → the OCI object, with moby's filtering:
 * `archMap` picks the native architecture's family; a syscall entry is dropped when an `excludes`
 * condition holds (its architecture is listed, the container has one of its capabilities, the
 * kernel is at least its minKernel) or an `includes` one does not. OCI fields (defaultErrnoRet,
 * flags, listenerPath, …) are carried. A profile with neither a default action nor syscalls
 * means no filter (undefined), as in moby.
 */
export function loadSeccompProfile(profile: string | DockerSeccompProfile, opts: SeccompProfileOptions): Seccomp | undefined {
  let p: unknown = profile;
  if (typeof profile === 'string') {
    try {
      p = JSON.parse(profile);
    } catch (err) {
      throw new SeccompProfileError(`Decoding seccomp profile failed: ${(err as Error).message}`);
    }
  }
  if (!isObject(p)) throw new SeccompProfileError('Decoding seccomp profile failed: the profile must be a JSON object');
  const { archMap, syscalls, ...rest } = p as DockerSeccompProfile & Record<string, unknown>;
  if (!rest.defaultAction && !(Array.isArray(syscalls) && syscalls.length)) return undefined;
  if (rest.architectures?.length && archMap?.length) {
    throw new SeccompProfileError("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  if (syscalls !== undefined && syscalls !== null && !Array.isArray(syscalls)) {
    throw new SeccompProfileError('Decoding seccomp profile failed: syscalls must be an array');
  }
  const host = hostOf(opts);
  const out: Seccomp = { ...(rest as Seccomp) };
  const native = OCI_ARCH[host.arch];
  const family = archMap?.find((a) => a.architecture === native);
  if (family) out.architectures = [...(out.architectures ?? []), family.architecture, ...(family.subArchitectures ?? [])];

  const rules: ProfileRule[] = (syscalls ?? []).map((s, i) => {
    if (!isObject(s)) throw new SeccompProfileError(`Decoding seccomp profile failed: syscalls[${i}] must be an object`);
    if (s.name && s.names?.length) {
      throw new SeccompProfileError("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'");
    }
    const rule: ProfileRule = { names: s.name ? [s.name] : [...(s.names ?? [])], action: s.action };
    if (s.errnoRet !== undefined) rule.errnoRet = s.errnoRet;
    if (s.args) rule.args = s.args;
    const unless = gateOf(s.excludes, `syscalls[${i}].excludes`);
    const when = gateOf(s.includes, `syscalls[${i}].includes`);
    if (unless) rule.unless = unless;
    if (when) rule.when = when;
    return rule;
  });
  const kept = rules.filter((r) => applies(r, host)).map(toOci);
  delete out.syscalls;
  if (kept.length) out.syscalls = kept;
  return out;
}
