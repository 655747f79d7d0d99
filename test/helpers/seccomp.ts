// Seccomp test helpers: a classic-BPF interpreter for seccomp programs, the Docker/podman
// profile format → OCI `linux.seccomp` conversion, and a C probe that loads a filter and makes
// syscalls in a real process.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdirSync, openSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// A seccomp BPF interpreter (the subset seccomp allows: ld abs, alu, jumps, ret), checking what
// the kernel's verifier checks: in-range forward jumps, aligned loads, a return at the end.
// ---------------------------------------------------------------------------------------------

export interface SeccompData { nr: number; arch: number; ip?: bigint; args?: bigint[] }

interface Decoded { code: Uint16Array; jt: Uint8Array; jf: Uint8Array; k: Uint32Array }
const decodedCache = new WeakMap<Buffer, Decoded>();

function decodeFilter(filter: Buffer): Decoded {
  let d = decodedCache.get(filter);
  if (d) return d;
  const n = filter.length / 8;
  if (!Number.isInteger(n) || n === 0 || n > 4096) throw new Error(`bpf: bad program length ${filter.length}`);
  d = { code: new Uint16Array(n), jt: new Uint8Array(n), jf: new Uint8Array(n), k: new Uint32Array(n) };
  for (let pc = 0; pc < n; pc++) {
    d.code[pc] = filter.readUInt16LE(pc * 8);
    d.jt[pc] = filter.readUInt8(pc * 8 + 2);
    d.jf[pc] = filter.readUInt8(pc * 8 + 3);
    d.k[pc] = filter.readUInt32LE(pc * 8 + 4);
  }
  decodedCache.set(filter, d);
  return d;
}

const mem = new Uint32Array(16); // struct seccomp_data, little-endian words

export function runFilter(filter: Buffer, data: SeccompData): number {
  const { code, jt, jf, k } = decodeFilter(filter);
  mem[0] = data.nr >>> 0;
  mem[1] = data.arch >>> 0;
  const ip = data.ip ?? 0n;
  mem[2] = Number(ip & 0xffffffffn);
  mem[3] = Number((ip >> 32n) & 0xffffffffn);
  for (let i = 0; i < 6; i++) {
    const v = BigInt.asUintN(64, data.args?.[i] ?? 0n);
    mem[4 + 2 * i] = Number(v & 0xffffffffn);
    mem[5 + 2 * i] = Number(v >> 32n);
  }
  const n = code.length;
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < n;) {
    const c = code[pc]!;
    const kk = k[pc]!;
    const t = jt[pc]!;
    const f = jf[pc]!;
    pc++;
    switch (c) {
      case 0x20: // ld [k]
        if (kk % 4 !== 0 || kk > 60) throw new Error(`bpf: bad load offset ${kk}`);
        a = mem[kk / 4]!; break;
      case 0x00: a = kk; break; // ld #k
      case 0x01: x = kk; break; // ldx #k
      case 0x87: a = x; break; // txa
      case 0x07: x = a; break; // tax
      case 0x54: a = (a & kk) >>> 0; break;
      case 0x44: a = (a | kk) >>> 0; break;
      case 0x04: a = (a + kk) >>> 0; break;
      case 0x05: pc += kk; break;
      case 0x15: pc += a === kk ? t : f; break;
      case 0x25: pc += a > kk ? t : f; break;
      case 0x35: pc += a >= kk ? t : f; break;
      case 0x45: pc += (a & kk) !== 0 ? t : f; break;
      case 0x1d: pc += a === x ? t : f; break;
      case 0x2d: pc += a > x ? t : f; break;
      case 0x3d: pc += a >= x ? t : f; break;
      case 0x06: return kk;
      case 0x16: return a >>> 0;
      default: throw new Error(`bpf: unsupported opcode 0x${c.toString(16)} at ${pc - 1}`);
    }
    if (pc > n) throw new Error('bpf: jump out of range');
  }
  throw new Error('bpf: fell off the end');
}

// ---------------------------------------------------------------------------------------------
// Docker/podman seccomp profiles (archMap, names, includes/excludes by caps and arch) → OCI.
// The rules are moby's (profiles/seccomp/seccomp_linux.go setupSeccomp), which
// containers/common follows.
// ---------------------------------------------------------------------------------------------

/** podman's default capability set (containers.conf default_capabilities). */
export const PODMAN_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

interface DockerFilter { caps?: string[]; arches?: string[]; minKernel?: string }
interface DockerSyscall {
  name?: string; names?: string[]; action: string; errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: DockerFilter; excludes?: DockerFilter;
}
export interface DockerProfile {
  defaultAction: string; defaultErrnoRet?: number;
  architectures?: string[]; archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls?: DockerSyscall[];
}

/** The OCI object moby/podman would put in config.json for this profile, caps and GOARCH. */
export function dockerProfileToOci(profile: DockerProfile, caps: string[], goarch = 'amd64') {
  const nativeScmp = ({ amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', '386': 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM' } as Record<string, string>)[goarch];
  const architectures: string[] = [];
  for (const m of profile.archMap ?? []) {
    if (m.architecture === nativeScmp) architectures.push(m.architecture, ...(m.subArchitectures ?? []));
  }
  if (profile.architectures) architectures.push(...profile.architectures);
  const syscalls = [];
  for (const call of profile.syscalls ?? []) {
    if (call.excludes?.arches?.includes(goarch)) continue;
    if (call.excludes?.caps?.some((c) => caps.includes(c))) continue;
    if (call.includes?.arches?.length && !call.includes.arches.includes(goarch)) continue;
    if (call.includes?.caps?.length && !call.includes.caps.every((c) => caps.includes(c))) continue;
    if (call.includes?.minKernel || call.excludes?.minKernel) throw new Error('minKernel is not handled by this converter');
    const names = call.names ?? (call.name ? [call.name] : []);
    syscalls.push({
      names, action: call.action,
      ...(call.errnoRet !== undefined ? { errnoRet: call.errnoRet } : {}),
      ...(call.args ? { args: call.args } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}

// ---------------------------------------------------------------------------------------------
// The probe: a static C program that runs syscalls, each in a forked child that first loads
// the filter (when given), and prints one line per syscall:
//   ok <return value> | err <errno> | trap <nr> | signal <n> | listener <errno>
// A test spec is `[notify:][x86:|x32:]NR[,ARG…]`; ARG is a number (decimal or 0x…) or `s:TEXT`
// (a pointer to TEXT). `x86:` makes the call through int 0x80 (the i386 ABI, up to 5 numeric
// 32-bit arguments), `x32:` sets the x32 bit in the number. `notify:` loads the filter with
// SECCOMP_FILTER_FLAG_NEW_LISTENER and a thread that answers each notification with errno 77
// (only there: a KILL_THREAD would leave such a thread behind). `exec PATH ARG…` (last) execs a program under the filter.
// ---------------------------------------------------------------------------------------------

export const PROBE_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sock_fprog prog;
static unsigned int flags;
static int have_filter;
static int out_fd;

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "trap %d\n", si->si_syscall);
  write(out_fd, buf, n);
  _exit(0);
}

static void *responder(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  for (;;) {
    memset(&req, 0, sizeof req);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) return NULL;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.error = -77; /* the listener's answer: EBADE */
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
}

static int with_listener;

static void load(void) {
  if (!have_filter) return;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { perror("probe: no_new_privs"); _exit(120); }
  unsigned int f = flags | (with_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0);
  long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f, &prog);
  if (fd < 0) { dprintf(out_fd, "load-error %d\n", errno); _exit(121); }
  if (with_listener) {
    pthread_t t;
    pthread_create(&t, NULL, responder, (void *)fd);
  }
}

static unsigned long long arg_value(const char *s) {
  if (strncmp(s, "s:", 2) == 0) return (unsigned long long)(uintptr_t)(s + 2);
  return strtoull(s, NULL, 0);
}

static void run_one(char *spec) {
  int mode = 0; /* 0 native, 1 i386, 2 x32 */
  if (strncmp(spec, "notify:", 7) == 0) { with_listener = 1; spec += 7; }
  if (strncmp(spec, "x86:", 4) == 0) { mode = 1; spec += 4; }
  else if (strncmp(spec, "x32:", 4) == 0) { mode = 2; spec += 4; }
  unsigned long long a[7] = {0};
  int n = 0;
  for (char *tok = strtok(spec, ","); tok && n < 7; tok = strtok(NULL, ",")) a[n++] = arg_value(tok);
  long nr = (long)a[0];
  if (mode == 2) nr |= 0x40000000L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSYS, &sa, NULL);
  load();
  long r;
  if (mode == 1) {
    unsigned int eax = (unsigned int)nr;
    __asm__ volatile("int $0x80"
                     : "+a"(eax)
                     : "b"((unsigned)a[1]), "c"((unsigned)a[2]), "d"((unsigned)a[3]), "S"((unsigned)a[4]), "D"((unsigned)a[5])
                     : "memory", "cc", "r8", "r9", "r10", "r11");
    r = (int)eax;
    if (r < 0 && r > -4096) { errno = (int)-r; r = -1; }
  } else {
    r = syscall(nr, a[1], a[2], a[3], a[4], a[5], a[6]);
  }
  if (r == -1 && errno == 77 && with_listener) dprintf(out_fd, "listener %d\n", errno);
  else if (r == -1) dprintf(out_fd, "err %d\n", errno);
  else dprintf(out_fd, "ok %ld\n", r);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: probe BPF|- FLAGS SPEC... [exec PATH ARG...]\n"); return 2; }
  out_fd = dup(1);
  if (strcmp(argv[1], "-") != 0) {
    static unsigned char buf[65536];
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("probe: open"); return 2; }
    ssize_t len = read(fd, buf, sizeof buf);
    close(fd);
    if (len <= 0 || len % 8) { fprintf(stderr, "probe: bad filter size %zd\n", len); return 2; }
    prog.len = (unsigned short)(len / 8);
    prog.filter = (struct sock_filter *)buf;
    have_filter = 1;
  }
  flags = (unsigned int)strtoul(argv[2], NULL, 0);
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "exec") == 0) {
      fflush(stdout);
      load();
      execv(argv[i + 1], argv + i + 1);
      dprintf(out_fd, "exec-error %d\n", errno);
      return 127;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) run_one(argv[i]);
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) dprintf(out_fd, "signal %d\n", WTERMSIG(st));
    else if (WEXITSTATUS(st) != 0) dprintf(out_fd, "exit %d\n", WEXITSTATUS(st));
  }
  return 0;
}
`;

/** Compiles the probe (static, so it also runs in a busybox container) into `dir`. */
export function buildProbe(dir: string): string {
  const src = join(dir, 'probe.c');
  const bin = join(dir, 'probe');
  writeFileSync(src, PROBE_SOURCE);
  const r = spawnSync(process.env.CC ?? 'gcc', ['-O1', '-static', '-pthread', '-o', bin, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling the seccomp probe failed (needs gcc and libc6-dev):\n${r.stderr}${r.error ?? ''}`);
  return bin;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(process.env.BERTH_TEST_TMPDIR ?? '/tmp', prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A readable listing of a seccomp BPF program (for failure messages). */
export function disassemble(filter: Buffer): string {
  const names: Record<number, string> = { 0x20: 'ld', 0x54: 'and', 0x05: 'ja', 0x15: 'jeq', 0x25: 'jgt', 0x35: 'jge', 0x45: 'jset', 0x06: 'ret' };
  const lines: string[] = [];
  for (let pc = 0; pc < filter.length / 8; pc++) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    const op = names[code] ?? `op${code.toString(16)}`;
    const hex = `0x${k.toString(16)}`;
    let text: string;
    if (op === 'ld') text = `ld [${k}]`;
    else if (op === 'ja') text = `ja ${pc + 1 + k}`;
    else if (op.startsWith('j')) text = `${op} ${hex} ? ${pc + 1 + jt} : ${pc + 1 + jf}`;
    else text = `${op} ${hex}`;
    lines.push(`${String(pc).padStart(4)}: ${text}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// crun (libseccomp) as the reference: bundles with a busybox rootfs and the probe.
// ---------------------------------------------------------------------------------------------

export const CRUN = process.env.BERTH_TEST_CRUN ?? '/usr/bin/crun';

/**
 * Runs crun with `args` against the state root `root`. crun 1.8 refuses a hybrid cgroup setup
 * whose v2 hierarchy has controllers, so it runs in a private mount namespace without the v2
 * mount (harmless elsewhere), and without touching cgroups at all.
 */
export function crun(root: string, args: string[], timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string; error?: Error } {
  const script = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --cgroup-manager=disabled --root "$@"';
  // Output goes through a file: a created container's init keeps crun's stdio open until it runs
  // or dies, and a pipe would keep spawnSync waiting that long.
  const log = mkdtempSync(join(process.env.BERTH_TEST_TMPDIR ?? '/tmp', 'berth-crun-out-'));
  try {
    const out = openSync(join(log, 'stdout'), 'w');
    const err = openSync(join(log, 'stderr'), 'w');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, CRUN, root, ...args], {
      stdio: ['ignore', out, err], timeout: timeoutMs,
    });
    closeSync(out);
    closeSync(err);
    return {
      status: r.status, error: r.error,
      stdout: readFileSync(join(log, 'stdout'), 'utf8'), stderr: readFileSync(join(log, 'stderr'), 'utf8'),
    };
  } finally {
    rmSync(log, { recursive: true, force: true });
  }
}

/** Writes an OCI bundle at `dir`: busybox and the probe in rootfs/bin, crun's default config. */
export function probeBundle(dir: string, opts: { probe: string; busybox: string; args: string[]; caps: string[]; seccomp?: unknown }): void {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  copyFileSync(opts.busybox, join(rootfs, 'bin', 'busybox'));
  copyFileSync(opts.probe, join(rootfs, 'bin', 'probe'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  chmodSync(join(rootfs, 'bin', 'probe'), 0o755);
  symlinkSync('busybox', join(rootfs, 'bin', 'sh'));
  const r = spawnSync(CRUN, ['spec'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`crun spec failed: ${r.stderr}${r.error ?? ''}`);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = opts.args;
  for (const set of ['bounding', 'effective', 'permitted']) spec.process.capabilities[set] = opts.caps;
  if (opts.seccomp) spec.linux.seccomp = opts.seccomp;
  else delete spec.linux.seccomp;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
}

/** JSON.stringify that writes bigints as exact JSON integers (config.json takes full uint64s). */
export function toJson(value: unknown, indent = 2): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `\0big${marks.push(v.toString()) - 1}\0` : v), indent);
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}
