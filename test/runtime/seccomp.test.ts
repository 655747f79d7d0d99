// linux.seccomp → classic BPF (src/runtime/seccomp): validation, the program's shape, the
// generated syscall tables, and behaviour — checked three ways:
//   1. a BPF interpreter (every syscall number, every architecture, argument edge values),
//   2. the real kernel: a static C probe loads the filter and makes syscalls,
//   3. crun 1.8 (libseccomp 2.5) as the reference: the BPF that crun generates for the same
//      config is compared input by input, and the probe runs in two crun containers — one with
//      crun's filter, one loading Berth's — and must see the same results syscall by syscall.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/runtime/errors.ts';
import { assemble, type Insn } from '../../src/runtime/seccomp/bpf.ts';
import type { Seccomp } from '../../src/runtime/spec-types.ts';
import {
  AUDIT_ARCH, BAD_ARCH_ACTION, compileSeccomp, decode, SECCOMP_RET, SYSCALL_TABLES, syscallNumber,
} from '../../src/runtime/seccomp/index.ts';
import {
  buildProbe, CRUN, crun, disassemble, dockerProfileToOci, PODMAN_DEFAULT_CAPS, probeBundle, runFilter,
  tempDir, toJson, type DockerProfile,
} from '../helpers/seccomp.ts';

const REPO = join(import.meta.dirname, '..', '..');
const PODMAN_PROFILE = '/usr/share/containers/seccomp.json';
const BUSYBOX = process.env.BERTH_TEST_BUSYBOX ?? '/bin/busybox';
const X86_64 = AUDIT_ARCH.x86_64;
const I386 = AUDIT_ARCH.x86;
const AARCH64 = AUDIT_ARCH.aarch64;
const ARM = AUDIT_ARCH.arm;
const { ALLOW, ERRNO, KILL_THREAD, KILL_PROCESS, TRAP, TRACE, LOG, USER_NOTIF } = SECCOMP_RET;
const errno = (e: number) => (ERRNO | e) >>> 0;

/** Numbers above 2^53 are written as bigints (the compiler takes both; JSON.parse cannot). */
const seccomp = (s: unknown) => s as Seccomp;

function podmanProfile(): Seccomp {
  assert.ok(existsSync(PODMAN_PROFILE), `${PODMAN_PROFILE} is missing: apt-get install golang-github-containers-common (podman depends on it)`);
  const profile = JSON.parse(readFileSync(PODMAN_PROFILE, 'utf8')) as DockerProfile;
  return seccomp(dockerProfileToOci(profile, PODMAN_DEFAULT_CAPS, 'amd64'));
}

// A profile with every action and every operator, on syscalls that ignore their arguments or
// are harmless with them. Each operator rule answers with its own errno (10…20).
const HAND = seccomp({
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
  syscalls: [
    { names: ['getpid'], action: 'SCMP_ACT_ALLOW' }, // = default: a no-op, not an unconditional allow
    { names: ['umask'], action: 'SCMP_ACT_ERRNO' },
    { names: ['alarm'], action: 'SCMP_ACT_ERRNO', errnoRet: 33 },
    { names: ['getpgid'], action: 'SCMP_ACT_KILL' },
    { names: ['getsid'], action: 'SCMP_ACT_KILL_PROCESS' },
    { names: ['sched_getscheduler'], action: 'SCMP_ACT_KILL_THREAD' },
    { names: ['getpriority'], action: 'SCMP_ACT_TRAP' },
    { names: ['sched_get_priority_max'], action: 'SCMP_ACT_TRACE', errnoRet: 5 },
    { names: ['sched_get_priority_min'], action: 'SCMP_ACT_LOG' },
    { names: ['sched_yield'], action: 'SCMP_ACT_NOTIFY' },
    { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 10, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0x1_0000_0005 }] },
    { names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 11, args: [{ index: 1, op: 'SCMP_CMP_NE', value: 7 }] },
    { names: ['getuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 12, args: [{ index: 2, op: 'SCMP_CMP_LT', value: 0x1_0000_0000 }] },
    { names: ['geteuid'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 3, op: 'SCMP_CMP_LE', value: 0x2_0000_0003 }] },
    { names: ['getgid'], action: 'SCMP_ACT_ERRNO', errnoRet: 14, args: [{ index: 4, op: 'SCMP_CMP_GE', value: 0x1_8000_0000 }] },
    { names: ['getegid'], action: 'SCMP_ACT_ERRNO', errnoRet: 15, args: [{ index: 5, op: 'SCMP_CMP_GT', value: 0xffff_ffff }] },
    {
      names: ['gettid'], action: 'SCMP_ACT_ERRNO', errnoRet: 16,
      args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0xff00_0000_0000_00ffn, valueTwo: 0x1200_0000_0000_0034n }],
    },
    {
      names: ['getpgrp'], action: 'SCMP_ACT_ERRNO', errnoRet: 17,
      args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1 }, { index: 1, op: 'SCMP_CMP_EQ', value: 2 }],
    },
    { names: ['munlockall'], action: 'SCMP_ACT_ERRNO', errnoRet: 18, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1 }] },
    { names: ['munlockall'], action: 'SCMP_ACT_ERRNO', errnoRet: 19, args: [{ index: 1, op: 'SCMP_CMP_GE', value: 1 }] },
    {
      names: ['inotify_init', 'not_a_syscall'], action: 'SCMP_ACT_ERRNO', errnoRet: 20,
      args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 3 }, { index: 0, op: 'SCMP_CMP_EQ', value: 4 }],
    },
  ],
});

// probe spec → expected line, for HAND on this x86_64 kernel (x86 = int 0x80, x32 = not listed).
const HAND_EXPECT: [string, string | RegExp][] = [
  ['39', /^ok \d+$/], // getpid: the ALLOW entry equal to the default is a no-op
  ['95,0o22', 'err 1'], // umask: SCMP_ACT_ERRNO without errnoRet → EPERM
  ['37,0', 'err 33'], // alarm: errnoRet 33
  ['121,0', 'signal 31'], // getpgid: SCMP_ACT_KILL → SIGSYS
  ['124,0', 'signal 31'], // getsid: SCMP_ACT_KILL_PROCESS
  ['145,0', 'signal 31'], // sched_getscheduler: SCMP_ACT_KILL_THREAD
  ['140,0,0', 'trap 140'], // getpriority: SCMP_ACT_TRAP → SIGSYS with si_syscall
  ['146,0', 'err 38'], // sched_get_priority_max: SCMP_ACT_TRACE without a tracer → ENOSYS
  ['147,0', 'ok 0'], // sched_get_priority_min: SCMP_ACT_LOG runs it
  ['notify:24', 'listener 77'], // sched_yield: SCMP_ACT_NOTIFY → the listener answers
  ['24', 'err 38'], // … and without a listener the kernel says ENOSYS
  ['39,0x100000005', 'err 10'], // EQ on 64 bits
  ['39,5', /^ok \d+$/], // … the low half alone does not match
  ['39,0x200000005', /^ok \d+$/],
  ['110,0,7', /^ok \d+$/], // NE
  ['110,0,8', 'err 11'],
  ['110,0,0x100000007', 'err 11'], // … differs in the high half only
  ['102,0,0,0xffffffff', 'err 12'], // LT 2^32
  ['102,0,0,0x100000000', 'ok 0'],
  ['107,0,0,0,0x200000003', 'err 13'], // LE
  ['107,0,0,0,0x100000009', 'err 13'],
  ['107,0,0,0,0x200000004', 'ok 0'],
  ['104,0,0,0,0,0x180000000', 'err 14'], // GE
  ['104,0,0,0,0,0x200000000', 'err 14'],
  ['104,0,0,0,0,0x17fffffff', 'ok 0'],
  ['108,0,0,0,0,0,0x100000000', 'err 15'], // GT (arg 5)
  ['108,0,0,0,0,0,0xffffffff', 'ok 0'],
  ['186,0x1200000000000034', 'err 16'], // MASKED_EQ on both halves
  ['186,0x12abcdef12345634', 'err 16'],
  ['186,0x1300000000000034', /^ok \d+$/],
  ['186,0x1200000000000035', /^ok \d+$/],
  ['111,1,2', 'err 17'], // two arguments: AND
  ['111,1,3', /^ok \d+$/],
  ['111,0,2', /^ok \d+$/],
  ['152,1', 'err 18'], // two rules: OR
  ['152,0,1', 'err 19'],
  ['152,0', 'ok 0'],
  ['253,3', 'err 20'], // two conditions on one argument: one rule each (runc/crun), OR
  ['253,4', 'err 20'],
  ['253,5', /^ok \d+$/],
  ['x86:20,5', 'err 10'], // i386 getpid: only the low half of 0x100000005 is compared
  ['x86:20,6', /^ok \d+$/],
  ['x86:24', 'ok 0'], // i386 getuid: LT 2^32 truncates to LT 0, never true
  ['x32:39', 'signal 31'], // x32 is not listed: bad arch → killed
  ['0xffffffff', 'err 38'], // nr -1 is not an x32 call: default action, then the kernel's ENOSYS
];

// ---------------------------------------------------------------------------------------------

describe('validation', () => {
  const bad: [string, unknown, RegExp][] = [
    ['unknown default action', { defaultAction: 'SCMP_ACT_NOPE' }, /linux\.seccomp\.defaultAction: unknown seccomp action "SCMP_ACT_NOPE"/],
    ['missing default action', {}, /linux\.seccomp\.defaultAction: must be a string/],
    ['unknown rule action', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'ALLOW' }] }, /linux\.seccomp\.syscalls\[0\]\.action: unknown seccomp action/],
    ['unknown operator', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_NOPE' }] }] }, /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op: unknown seccomp operator "SCMP_CMP_NOPE"/],
    ['index over 5', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.index: must be a syscall argument index from 0 to 5/],
    ['negative value', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.value: must be an unsigned 64-bit integer/],
    ['value over 2^64', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1n << 64n, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.value: must be an unsigned 64-bit integer/],
    ['unknown architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }, /linux\.seccomp\.architectures\[1\]: unknown seccomp architecture "SCMP_ARCH_VAX"/],
    ['unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NOPE'] }, /linux\.seccomp\.flags\[0\]: unknown seccomp flag/],
    ['errnoRet on ALLOW', { defaultAction: 'SCMP_ACT_KILL', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }, /linux\.seccomp\.syscalls\[0\]\.errnoRet: SCMP_ACT_ALLOW takes no errno/],
    ['defaultErrnoRet on ALLOW', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, /linux\.seccomp\.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno/],
    ['errno out of range', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 70000 }, /linux\.seccomp\.defaultErrnoRet: must be an errno number/],
    ['empty names', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }, /linux\.seccomp\.syscalls\[0\]\.names: must be a non-empty array/],
    ['metadata without a listener path', { defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }, /linux\.seccomp\.listenerMetadata/],
    ['TSYNC with NOTIFY', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYNC'], syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /linux\.seccomp\.flags: SECCOMP_FILTER_FLAG_TSYNC cannot be used with SCMP_ACT_NOTIFY/],
  ];
  for (const [what, input, message] of bad) {
    test(`ConfigError: ${what}`, () => {
      assert.throws(() => compileSeccomp(seccomp(input)), (e: unknown) => e instanceof ConfigError && message.test(e.message));
    });
  }

  test('a rule whose action is the default one is still validated', () => {
    assert.throws(() => compileSeccomp(seccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 9, value: 0, op: 'SCMP_CMP_EQ' }] }],
    })), ConfigError);
  });

  test('architectures the spec names but this kernel cannot run are accepted and need no code', () => {
    const plain = compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW' }));
    const more = compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_S390X', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_RISCV64'] }));
    assert.deepEqual(more.filter, plain.filter);
  });

  test('flags map to SECCOMP_FILTER_FLAG_* bits', () => {
    const all = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
      'SECCOMP_FILTER_FLAG_NEW_LISTENER', 'SECCOMP_FILTER_FLAG_TSYNC_ESRCH', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];
    assert.equal(compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: all })).flags, 63);
    assert.equal(compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] })).flags, 6);
    assert.equal(compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW' })).flags, 0);
  });

  test('needsListener: only when the filter can return SECCOMP_RET_USER_NOTIF', () => {
    assert.equal(compileSeccomp(HAND).needsListener, true);
    assert.equal(compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_NOTIFY', syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] })).needsListener, true);
    // write must never be notified, not even by default: the runtime itself writes after loading the filter.
    for (const s of [
      seccomp({ defaultAction: 'SCMP_ACT_NOTIFY', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] }),
      seccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_NOTIFY', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }] }),
    ]) {
      assert.throws(() => compileSeccomp(s), /SCMP_ACT_NOTIFY cannot be used for the write syscall/);
    }
    assert.equal(compileSeccomp(seccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['no_such_call'], action: 'SCMP_ACT_NOTIFY' }] })).needsListener, false);
    assert.equal(compileSeccomp(podmanProfile()).needsListener, false);
  });

  test('unknown syscall names are ignored and reported', () => {
    assert.deepEqual(compileSeccomp(HAND).ignoredSyscalls, ['not_a_syscall']);
  });
});

describe('BPF program', () => {
  const X86_64_NR = SYSCALL_TABLES.x86_64;

  test('shape: the arch check first, forward jumps in range, a return last, under 4096 instructions', () => {
    for (const s of [HAND, podmanProfile(), seccomp({ defaultAction: 'SCMP_ACT_KILL' })]) {
      const { filter } = compileSeccomp(s);
      assert.equal(filter.length % 8, 0);
      const insns = decode(filter);
      assert.ok(insns.length <= 4096);
      assert.deepEqual(insns[0], { code: 0x20, jt: 0, jf: 0, k: 4 }, 'ld seccomp_data.arch');
      assert.equal(insns.at(-1)!.code, 0x06, 'ends with ret');
      insns.forEach((i, pc) => {
        if ((i.code & 7) !== 5) return;
        const targets = i.code === 0x05 ? [pc + 1 + i.k] : [pc + 1 + i.jt, pc + 1 + i.jf];
        for (const t of targets) assert.ok(t < insns.length, `jump at ${pc} out of range`);
      });
    }
  });

  test('actions and errnos (interpreter)', () => {
    const { filter } = compileSeccomp(HAND);
    const run = (nr: number, args: bigint[] = [], arch = X86_64) => runFilter(filter, { nr, arch, args });
    assert.equal(run(X86_64_NR.read!), ALLOW);
    assert.equal(run(X86_64_NR.umask!), errno(1));
    assert.equal(run(X86_64_NR.alarm!), errno(33));
    assert.equal(run(X86_64_NR.getpgid!), KILL_THREAD);
    assert.equal(run(X86_64_NR.getsid!), KILL_PROCESS);
    assert.equal(run(X86_64_NR.sched_getscheduler!), KILL_THREAD);
    assert.equal(run(X86_64_NR.getpriority!), TRAP);
    assert.equal(run(X86_64_NR.sched_get_priority_max!), (TRACE | 5) >>> 0);
    assert.equal(run(X86_64_NR.sched_get_priority_min!), LOG);
    assert.equal(run(X86_64_NR.sched_yield!), USER_NOTIF);
    assert.equal(run(X86_64_NR.getpid!, [0x1_0000_0005n]), errno(10));
    assert.equal(run(X86_64_NR.getpid!, [5n]), ALLOW);
    // x32 (not listed) is a bad arch; so is any architecture not allowed.
    assert.equal(run(0x4000_0000 | X86_64_NR.getpid!), BAD_ARCH_ACTION);
    assert.equal(run(X86_64_NR.getpid!, [], AARCH64), BAD_ARCH_ACTION);
    assert.equal(BAD_ARCH_ACTION, KILL_PROCESS);
  });

  test('errnoRet: per rule, EPERM when absent; defaultErrnoRet only for the default action', () => {
    const { filter } = compileSeccomp(seccomp({
      defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38,
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO' },
        { names: ['rmdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }, // = default: no-op
        { names: ['ptrace'], action: 'SCMP_ACT_TRACE' },
      ],
    }));
    const run = (name: string) => runFilter(filter, { nr: X86_64_NR[name]!, arch: X86_64 });
    assert.equal(run('read'), ALLOW);
    assert.equal(run('mkdir'), errno(1));
    assert.equal(run('rmdir'), errno(38));
    assert.equal(run('ptrace'), (TRACE | 1) >>> 0);
    assert.equal(run('write'), errno(38));
  });

  test('an unconditional rule wins over conditional ones for the same syscall (libseccomp)', () => {
    const { filter } = compileSeccomp(seccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 2, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0 }] },
        { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 3 },
        { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 4 },
      ],
    }));
    assert.equal(runFilter(filter, { nr: 0, arch: X86_64, args: [0n] }), errno(3));
    assert.equal(runFilter(filter, { nr: 0, arch: X86_64, args: [1n] }), errno(3));
  });

  test('x32 and i386 each get their own numbers; nr -1 gets the default action', () => {
    const { filter } = compileSeccomp(seccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [{ names: ['getpid', 'rt_sigaction', 'socket'], action: 'SCMP_ACT_ALLOW' }],
    }));
    const run = (nr: number, arch = X86_64, args: bigint[] = []) => runFilter(filter, { nr, arch, args });
    assert.equal(run(39), ALLOW); // x86_64 getpid
    assert.equal(run(13), ALLOW); // x86_64 rt_sigaction
    assert.equal(run(0x4000_0000 | 39), ALLOW); // x32 getpid
    assert.equal(run(0x4000_0000 | 512), ALLOW); // x32 rt_sigaction is 512
    assert.equal(run(0x4000_0000 | 13), errno(1)); // … not 13
    assert.equal(run(20, I386), ALLOW); // i386 getpid
    assert.equal(run(39, I386), errno(1));
    assert.equal(run(0xffff_ffff), errno(1));
    // i386 socket: the direct call and socketcall(SYS_SOCKET, …) (libseccomp's multiplexing)
    assert.equal(run(359, I386), ALLOW);
    assert.equal(run(102, I386, [1n]), ALLOW);
    assert.equal(run(102, I386, [2n]), errno(1));
  });

  test('aarch64 native (interpreter): arm is compat, 32-bit compares there, others are bad arch', () => {
    const { filter } = compileSeccomp(seccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['renameat', 'open'], action: 'SCMP_ACT_ERRNO', errnoRet: 2 },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 3, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 0x1_0000_0008 }] },
        { names: ['cacheflush'], action: 'SCMP_ACT_ERRNO', errnoRet: 4 },
      ],
    }), { nativeArch: 'aarch64' });
    const run = (nr: number, arch: number, args: bigint[] = []) => runFilter(filter, { nr, arch, args });
    assert.equal(run(38, AARCH64), errno(2)); // aarch64 renameat (asm-generic, __ARCH_WANT_RENAMEAT)
    assert.equal(run(329, ARM), errno(2)); // arm renameat
    assert.equal(run(5, ARM), errno(2)); // arm open (aarch64 has none)
    assert.equal(run(92, AARCH64, [0x1_0000_0008n]), errno(3)); // aarch64 personality, 64-bit compare
    assert.equal(run(92, AARCH64, [8n]), ALLOW);
    assert.equal(run(136, ARM, [8n]), errno(3)); // arm personality: low half only
    assert.equal(run(0xf0002, ARM), errno(4)); // ARM-private cacheflush
    assert.equal(run(0, X86_64), BAD_ARCH_ACTION); // an aarch64 kernel never runs x86_64 code
  });

  test('long programs: jumps past 255 instructions (a distinct conditional rule for every syscall)', () => {
    const names = Object.keys(SYSCALL_TABLES.x86_64).filter((_, i) => i % 2 === 0);
    const s = seccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: names.map((n, i) => ({
        names: [n], action: 'SCMP_ACT_ERRNO', errnoRet: i + 1,
        args: [{ index: i % 6, op: 'SCMP_CMP_GT', value: 1000 + i }],
      })),
    });
    const { filter } = compileSeccomp(s);
    const insns = decode(filter);
    assert.ok(insns.length > 1000, `${insns.length} instructions`);
    assert.ok(insns.some((i) => i.code === 0x05), 'uses BPF_JA');
    names.forEach((n, i) => {
      const args = [0n, 0n, 0n, 0n, 0n, 0n];
      assert.equal(runFilter(filter, { nr: SYSCALL_TABLES.x86_64[n]!, arch: X86_64, args }), ALLOW, n);
      args[i % 6] = BigInt(1001 + i);
      assert.equal(runFilter(filter, { nr: SYSCALL_TABLES.x86_64[n]!, arch: X86_64, args }), errno(i + 1), n);
    });
  });

  test('assembler: far true, far false and both far branches get trampolines', () => {
    const pad = (n: number): Insn[] => Array.from({ length: n }, () => ({ op: 'ld', k: 0 }) as Insn);
    for (const [jt, jf] of [['far', 'near'], ['near', 'far'], ['far', 'far'], ['near', 'near']] as const) {
      const prog: Insn[] = [
        { op: 'ld', k: 16 },
        { op: 'jmp', cond: 'jeq', k: 1, jt: jt === 'far' ? 'T' : { ret: 0x7fff0000 }, jf: jf === 'far' ? 'F' : { ret: 0x50002 } },
        ...pad(300), { op: 'label', name: 'T' }, { op: 'ret', k: 0x50003 },
        ...pad(300), { op: 'label', name: 'F' }, { op: 'ret', k: 0x50004 },
      ];
      const filter = assemble(prog);
      const want = (hit: boolean) => (hit ? (jt === 'far' ? 0x50003 : 0x7fff0000) : (jf === 'far' ? 0x50004 : 0x50002));
      assert.equal(runFilter(filter, { nr: 0, arch: 0, args: [1n] }), want(true), `${jt}/${jf} true`);
      assert.equal(runFilter(filter, { nr: 0, arch: 0, args: [2n] }), want(false), `${jt}/${jf} false`);
    }
  });

  test('too many rules for one filter is a ConfigError', () => {
    const s = seccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: Array.from({ length: 1200 }, (_, i) => ({
        names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: i }],
      })),
    });
    assert.throws(() => compileSeccomp(s), /more than the kernel's limit of 4096/);
  });
});

describe('syscall tables', () => {
  test('generated from the kernel headers, with a stated source', () => {
    const text = readFileSync(join(REPO, 'src/runtime/seccomp/syscalls.ts'), 'utf8');
    assert.match(text, /^\/\/ GENERATED by scripts\/gen-syscalls\.mjs/);
    assert.match(text, /linux-libc-dev 6\.\d+/);
    assert.match(text, /Linux \d+\.\d+\.\d+ headers/);
  });

  test('spot checks per architecture', () => {
    assert.equal(syscallNumber('x86_64', 'read'), 0);
    assert.equal(syscallNumber('x86_64', 'clone3'), 435);
    assert.equal(syscallNumber('x86_64', 'socketcall'), undefined);
    assert.equal(syscallNumber('x86', 'socketcall'), 102);
    assert.equal(syscallNumber('x86', '_llseek'), 140);
    assert.equal(syscallNumber('x32', 'read'), 0x4000_0000);
    assert.equal(syscallNumber('x32', 'execve'), 0x4000_0000 + 520);
    assert.equal(syscallNumber('aarch64', 'openat'), 56);
    assert.equal(syscallNumber('aarch64', 'open'), undefined);
    assert.equal(syscallNumber('aarch64', 'renameat'), 38);
    assert.equal(syscallNumber('aarch64', 'fstat'), 80);
    assert.equal(syscallNumber('aarch64', 'getrlimit'), 163);
    assert.equal(syscallNumber('aarch64', 'fcntl64'), undefined);
    assert.equal(syscallNumber('arm', 'cacheflush'), 0xf0002);
    assert.equal(syscallNumber('arm', 'fcntl64'), 221);
    assert.equal(syscallNumber('x86_64', 'toString'), undefined);
  });

  test('the matching linux-libc-dev headers give the committed tables (gen-syscalls --check)', (t) => {
    const needed = ['/usr/include/x86_64-linux-gnu/asm/unistd_64.h', '/usr/aarch64-linux-gnu/include/asm/unistd.h', '/usr/arm-linux-gnueabihf/include/asm/unistd-eabi.h'];
    const missing = needed.filter((p) => !existsSync(p));
    if (missing.length) {
      t.skip(`header packages not installed (${missing.join(', ')}): apt-get install linux-libc-dev-arm64-cross linux-libc-dev-armhf-cross`);
      return;
    }
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/gen-syscalls.mjs'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});

// ---------------------------------------------------------------------------------------------
// The real kernel
// ---------------------------------------------------------------------------------------------

describe('kernel', () => {
  let dir: ReturnType<typeof tempDir>;
  let probe: string;
  before(() => {
    dir = tempDir('berth-seccomp-');
    probe = buildProbe(dir.path);
  });
  after(() => dir?.remove());

  function runProbe(s: Seccomp, specs: string[], tail: string[] = []) {
    const { filter, flags } = compileSeccomp(s);
    const file = join(dir.path, `filter-${Math.random().toString(36).slice(2)}.bpf`);
    writeFileSync(file, filter);
    const r = spawnSync(probe, [file, String(flags), ...specs, ...tail], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `probe failed: ${r.stderr}${r.error ?? ''}`);
    return r.stdout.split('\n').filter(Boolean);
  }

  test('every action and operator (hand profile)', () => {
    const lines = runProbe(HAND, HAND_EXPECT.map(([s]) => s));
    assert.equal(lines.length, HAND_EXPECT.length, lines.join('\n'));
    HAND_EXPECT.forEach(([spec, want], i) => {
      const got = lines[i]!;
      if (typeof want === 'string') assert.equal(got, want, `probe ${spec}`);
      else assert.match(got, want, `probe ${spec}`);
    });
  });

  test('containers-common profile: denied calls, argument rules, and a shell still works', () => {
    const profile = podmanProfile();
    const expect: [string, string | RegExp][] = [
      ['39', /^ok \d+$/], // getpid
      ['135,0', 'ok 0'], // personality(PER_LINUX) is allowed …
      ['135,0xffffffff', 'ok 0'], // … and the query
      ['135,0x1234', 'err 38'], // … other personas are not (the default: ENOSYS)
      ['135,0x100000000', 'err 38'], // … not even with only the high half set
      ['246,0,0,0,0', 'err 1'], // kexec_load: explicit EPERM rule
      ['321,0,0,0', 'err 1'], // bpf: needs CAP_SYS_ADMIN in the profile → EPERM
      ['304,0,0,0', 'err 1'], // open_by_handle_at: needs CAP_DAC_READ_SEARCH
      ['248,0,0,0,0,0', 'err 38'], // add_key: not listed → ENOSYS
      ['425,0,0', 'err 38'], // io_uring_setup: not listed
      ['41,16,3,9', 'err 22'], // socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT): EINVAL rule (no CAP_AUDIT_WRITE)
      ['41,16,3,0', /^ok \d+$/], // socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)
      ['41,1,1,0', /^ok \d+$/], // socket(AF_UNIX, SOCK_STREAM, 0)
      ['x86:359,16,3,9', 'err 22'], // i386 socket: the same rule
      ['x86:20', /^ok \d+$/], // i386 getpid
      ['x32:39', 'err 38'], // x32 is listed (kernel without x32: ENOSYS)
      ['83,s:/', 'err 17'], // mkdir("/") is allowed: EEXIST from the kernel
      ['56,0x800,0,0,0,0', 'err 22'], // clone(CLONE_SIGHAND without CLONE_VM) reaches the kernel: EINVAL
      ['250,9999', 'err 95'], // keyctl(bad op) reaches the kernel: EOPNOTSUPP
    ];
    const lines = runProbe(profile, expect.map(([s]) => s), ['exec', BUSYBOX, 'sh', '-c', 'echo ok from busybox']);
    assert.equal(lines.length, expect.length + 1, lines.join('\n'));
    expect.forEach(([spec, want], i) => {
      const got = lines[i]!;
      if (typeof want === 'string') assert.equal(got, want, `probe ${spec}`);
      else assert.match(got, want, `probe ${spec}`);
    });
    assert.equal(lines.at(-1), 'ok from busybox');
  });

  test('containers-common profile: size', (t) => {
    const { filter } = compileSeccomp(podmanProfile());
    t.diagnostic(`containers-common profile (x86_64 + x86 + x32): ${filter.length / 8} instructions, ${filter.length} bytes`);
    assert.ok(filter.length / 8 < 1000);
  });
});

// ---------------------------------------------------------------------------------------------
// crun (libseccomp) as the reference
// ---------------------------------------------------------------------------------------------

describe('same behaviour as crun (libseccomp)', () => {
  let dir: ReturnType<typeof tempDir>;
  let probe: string;
  let n = 0;
  before(() => {
    assert.ok(existsSync(CRUN), `${CRUN} is missing: apt-get install crun`);
    assert.ok(existsSync(BUSYBOX), `${BUSYBOX} is missing: apt-get install busybox-static`);
    dir = tempDir('berth-seccomp-crun-');
    probe = buildProbe(dir.path);
  });
  after(() => dir?.remove());

  /** The filter crun generates for `s` (libseccomp's seccomp_export_bpf, kept in crun's state dir). */
  function crunFilter(s: Seccomp): Buffer {
    const id = `berth-seccomp-${process.pid}-${n++}`;
    const bundle = join(dir.path, id);
    const state = join(dir.path, 'state');
    probeBundle(bundle, { probe, busybox: BUSYBOX, args: ['/bin/sh', '-c', 'true'], caps: PODMAN_DEFAULT_CAPS });
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    config.linux.seccomp = s;
    writeFileSync(join(bundle, 'config.json'), toJson(config));
    const r = crun(state, ['create', '-b', bundle, id]);
    try {
      assert.equal(r.status, 0, `crun create: ${r.stderr}${r.error ?? ''}`);
      return readFileSync(join(state, id, 'seccomp.bpf'));
    } finally {
      crun(state, ['delete', '-f', id]);
    }
  }

  /** Runs both filters over every syscall number of every architecture, with edge-value arguments. */
  function compareFilters(s: Seccomp, argValues: bigint[]) {
    const ours = compileSeccomp(s).filter;
    const theirs = crunFilter(s);
    const nrs: number[] = [0xffff_ffff, 0x3fff_ffff, 0x7fff_ffff, 0x8000_0000, 0xf0002];
    for (let i = 0; i < 1024; i++) nrs.push(i, 0x4000_0000 + i);
    const argSets: bigint[][] = [[]];
    for (const v of argValues) {
      for (const i of [0, 1, 2, 3, 4, 5]) { const a = [0n, 0n, 0n, 0n, 0n, 0n]; a[i] = v; argSets.push(a); }
    }
    const diffs: string[] = [];
    let count = 0;
    for (const arch of [X86_64, I386, AARCH64, 0x1234]) {
      for (const nr of nrs) {
        for (const args of argSets) {
          count++;
          let a = runFilter(ours, { nr, arch, args });
          const b = runFilter(theirs, { nr, arch, args });
          // The one intended difference: Berth kills the process on a bad arch, libseccomp the thread.
          if (a === BAD_ARCH_ACTION && b === KILL_THREAD) a = KILL_THREAD;
          if (a !== b && diffs.length < 20) diffs.push(`arch 0x${arch.toString(16)} nr 0x${nr.toString(16)} args [${args.join(',')}]: berth 0x${a.toString(16)}, crun 0x${b.toString(16)}`);
        }
      }
    }
    assert.deepEqual(diffs, [], `${diffs.length} differences, e.g.:\n${diffs.join('\n')}\n--- berth:\n${disassemble(ours).slice(0, 4000)}`);
    return { count, ours: ours.length / 8, theirs: theirs.length / 8 };
  }

  test('hand profile: the same verdict for every input', (t) => {
    const r = compareFilters(HAND, [1n, 2n, 3n, 4n, 5n, 7n, 8n, 0xffff_ffffn, 0x1_0000_0000n, 0x1_0000_0005n, 0x1_0000_0007n,
      0x1_7fff_ffffn, 0x1_8000_0000n, 0x2_0000_0003n, 0x2_0000_0004n, 0x1200_0000_0000_0034n, 0x12ab_cdef_1234_5634n, 0xffff_ffff_ffff_ffffn]);
    t.diagnostic(`${r.count} inputs; berth ${r.ours} instructions, crun ${r.theirs}`);
  });

  test('containers-common profile: the same verdict for every input', (t) => {
    const r = compareFilters(podmanProfile(), [1n, 3n, 8n, 9n, 16n, 0x20000n, 0x20008n, 0xffff_ffffn, 0x1_0000_0000n, 0x1_0000_0009n, 0x1_0000_0010n]);
    t.diagnostic(`${r.count} inputs; berth ${r.ours} instructions, crun ${r.theirs}`);
  });

  test('containers-common profile: syscall matrix in crun containers (crun\'s filter vs Berth\'s)', (t) => {
    const profile = podmanProfile();
    const specs = [
      '39', '102', '135,0', '135,8', '135,0x20000', '135,0x20008', '135,0xffffffff', '135,0x1234', '135,0x100000000',
      '246,0,0,0,0', '321,0,0,0', '304,0,0,0', '248,0,0,0,0,0', '425,0,0', '41,16,3,9', '41,16,3,0', '41,2,2,0', '41,1,1,0',
      'x86:359,16,3,9', 'x86:359,1,1,0', 'x86:102,1,0', 'x86:20', 'x86:24', 'x86:66', 'x32:39', '0xffffffff',
      '83,s:/', '84,s:/nonexistent', '56,0x800,0,0,0,0', '250,9999', '272,0', '272,0x10000000', '308,-1,0',
      '165,0,0,0,0,0', '155,0,0', '161,s:/nonexistent', '169,0,0,0,0', '103,2,0,0', '101,2,0,0,0', '310,0,0,0,0,0,0',
      '312,0,0,0,0,0', '163,0', '167,0,0', '168,0', '175,0,0,0', '176,0,0', '305,0,0', '227,0,0,0', '164,0,0',
      '500', '1000', '0x40000200',
    ];
    const state = join(dir.path, 'state');
    const ourFile = join(dir.path, 'ours.bpf');
    const compiled = compileSeccomp(profile);
    writeFileSync(ourFile, compiled.filter);
    const runIn = (withCrunFilter: boolean) => {
      const id = `berth-seccomp-${process.pid}-${n++}`;
      const bundle = join(dir.path, id);
      const args = withCrunFilter ? ['/bin/probe', '-', '0', ...specs] : ['/bin/probe', '/filter.bpf', String(compiled.flags), ...specs];
      probeBundle(bundle, { probe, busybox: BUSYBOX, args, caps: PODMAN_DEFAULT_CAPS });
      const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      if (withCrunFilter) config.linux.seccomp = profile;
      writeFileSync(join(bundle, 'config.json'), toJson(config));
      writeFileSync(join(bundle, 'rootfs', 'filter.bpf'), compiled.filter);
      const r = crun(state, ['run', '-b', bundle, id], 60_000);
      crun(state, ['delete', '-f', id]);
      assert.equal(r.status, 0, `crun run: ${r.stderr}${r.error ?? ''}`);
      return r.stdout.split('\n').filter(Boolean);
    };
    const theirs = runIn(true);
    const ours = runIn(false);
    assert.equal(theirs.length, specs.length, theirs.join('\n'));
    const matrix = specs.map((s, i) => `${s.padEnd(22)} crun: ${(theirs[i] ?? '').padEnd(12)} berth: ${ours[i] ?? ''}`);
    t.diagnostic(`syscall matrix (${specs.length} calls)\n${matrix.join('\n')}`);
    assert.deepEqual(ours, theirs, matrix.join('\n'));
  });
});
