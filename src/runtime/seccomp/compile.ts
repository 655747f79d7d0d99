// Compiles the OCI `linux.seccomp` object to a classic BPF program for seccomp(2), with the
// semantics of libseccomp as runc and crun drive it:
//
// - The filter first checks seccomp_data.arch. The native architecture is always allowed; the
//   listed `architectures` that this kernel can run (x86_64: x86, x32; aarch64: arm) get their own
//   syscall numbers; any other architecture hits the "bad arch" action, SECCOMP_RET_KILL_PROCESS
//   (libseccomp's default is SCMP_ACT_KILL, i.e. KILL_THREAD; killing the process is safer).
//   Listed architectures this kernel can never run (e.g. SCMP_ARCH_S390X on x86_64) need no code.
// - x86_64 and x32 share AUDIT_ARCH_X86_64 and differ by the x32 bit (0x40000000) in the syscall
//   number: without SCMP_ARCH_X32, an x32 syscall is a bad-arch kill (as libseccomp does), except
//   nr -1, which tracers use to skip a syscall and which gets the default action.
// - Names are resolved per architecture; a name the architecture does not have is skipped there,
//   and a name no architecture has is ignored (reported in `ignoredSyscalls`). On x86 (i386), the
//   socket and SysV IPC calls also match their multiplexed form, socketcall(2)/ipc(2) with
//   arg0 = the call number, as libseccomp adds it.
// - A rule whose action (with its errno) equals the default action is a no-op. For one syscall,
//   an unconditional rule wins over the conditional ones (libseccomp keeps the "shorter" rule),
//   the first one if several; otherwise the conditional rules are tried in order (OR), the first
//   whose conditions all hold (AND) decides, and none → the default action. (Where conditional
//   rules with different actions overlap, libseccomp's merged rule tree may decide otherwise.)
//   A rule with several conditions on the same argument is split into one rule per condition,
//   as runc and crun do.
// - Arguments compare as 64-bit unsigned values (high and low 32-bit halves) on 64-bit
//   architectures and as their low 32 bits on 32-bit ones (x86, x32, arm); SCMP_CMP_MASKED_EQ is
//   (arg & value) == (valueTwo & value), and one whose mask is 0 is always true.
// - errnoRet defaults to EPERM for each rule and defaultErrnoRet to EPERM for the default action
//   (runtime-spec; runc and crun agree); SCMP_ACT_TRACE carries it as its message.
// - The syscall dispatch is a binary search over ranges of syscall numbers with the same outcome.
import { ConfigError } from '../errors.ts';
import type { Seccomp } from '../spec-types.ts';
import { assemble, BPF_MAXINSNS, type Cond, type Insn, type Target } from './bpf.ts';
import { SYSCALL_TABLES, type SyscallArch } from './syscalls.ts';
import { newerSyscallNumber } from './syscalls-newer.ts';

/** SECCOMP_RET_* values (linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** The action for syscalls from an architecture the filter does not allow. */
export const BAD_ARCH_ACTION = SECCOMP_RET.KILL_PROCESS;

/** OCI action name → SECCOMP_RET_* base, and whether it carries errnoRet in its data bits. */
const ACTIONS: Record<string, { ret: number; errno: boolean }> = {
  SCMP_ACT_KILL: { ret: SECCOMP_RET.KILL_THREAD, errno: false },
  SCMP_ACT_KILL_THREAD: { ret: SECCOMP_RET.KILL_THREAD, errno: false },
  SCMP_ACT_KILL_PROCESS: { ret: SECCOMP_RET.KILL_PROCESS, errno: false },
  SCMP_ACT_TRAP: { ret: SECCOMP_RET.TRAP, errno: false },
  SCMP_ACT_ERRNO: { ret: SECCOMP_RET.ERRNO, errno: true },
  SCMP_ACT_TRACE: { ret: SECCOMP_RET.TRACE, errno: true },
  SCMP_ACT_ALLOW: { ret: SECCOMP_RET.ALLOW, errno: false },
  SCMP_ACT_LOG: { ret: SECCOMP_RET.LOG, errno: false },
  SCMP_ACT_NOTIFY: { ret: SECCOMP_RET.USER_NOTIF, errno: false },
};
export const SECCOMP_ACTIONS: readonly string[] = Object.keys(ACTIONS);

export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
] as const;
type Op = (typeof SECCOMP_OPERATORS)[number];

/** seccomp(2) SECCOMP_FILTER_FLAG_* values. */
export const SECCOMP_FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 8,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 16,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

/** The architecture names of the runtime-spec (libseccomp's), and the ones Berth has tables for. */
export const SECCOMP_SPEC_ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64',
  'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
] as const;
const TABLED_ARCHES: Readonly<Record<string, SyscallArch>> = {
  SCMP_ARCH_X86_64: 'x86_64', SCMP_ARCH_X86: 'x86', SCMP_ARCH_X32: 'x32', SCMP_ARCH_AARCH64: 'aarch64', SCMP_ARCH_ARM: 'arm',
};
export const SECCOMP_SUPPORTED_ARCHES: readonly string[] = Object.keys(TABLED_ARCHES);

/** AUDIT_ARCH_* (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000). */
export const AUDIT_ARCH: Readonly<Record<SyscallArch, number>> = {
  x86_64: 0xc000003e, x32: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7, arm: 0x40000028,
};
/** Width of a syscall argument, as libseccomp treats it. */
const ARG_BITS: Readonly<Record<SyscallArch, 32 | 64>> = { x86_64: 64, x32: 32, x86: 32, aarch64: 64, arm: 32 };
/** The architectures whose syscalls a kernel of the native architecture can see. */
const KERNEL_ABIS: Readonly<Record<SyscallArch, readonly SyscallArch[]>> = {
  x86_64: ['x86_64', 'x86', 'x32'], x86: ['x86'], x32: ['x86_64', 'x86', 'x32'], aarch64: ['aarch64', 'arm'], arm: ['arm'],
};
const X32_SYSCALL_BIT = 0x40000000;

/** i386's multiplexed calls (libseccomp's __PNR_* for socketcall(2) and ipc(2)): name → arg0. */
const X86_SOCKETCALL: Readonly<Record<string, number>> = {
  socket: 1, bind: 2, connect: 3, listen: 4, accept: 5, getsockname: 6, getpeername: 7, socketpair: 8, send: 9,
  recv: 10, sendto: 11, recvfrom: 12, shutdown: 13, setsockopt: 14, getsockopt: 15, sendmsg: 16, recvmsg: 17,
  accept4: 18, recvmmsg: 19, sendmmsg: 20,
};
const X86_IPC: Readonly<Record<string, number>> = {
  semop: 1, semget: 2, semctl: 3, semtimedop: 4, msgsnd: 11, msgrcv: 12, msgget: 13, msgctl: 14,
  shmat: 21, shmdt: 22, shmget: 23, shmctl: 24,
};

const EPERM = 1;
const U64_MAX = (1n << 64n) - 1n;
const U32 = 0xffffffffn;

export interface CompileSeccompOptions {
  /** The architecture the filter runs on (default: this process's). */
  nativeArch?: SyscallArch;
}

export interface CompiledSeccomp {
  /** SECCOMP_FILTER_FLAG_* for seccomp(SECCOMP_SET_MODE_FILTER, flags, …), from `flags`. */
  flags: number;
  /** `struct sock_filter[]`, 8 little-endian bytes each. */
  filter: Buffer;
  /** The filter can return SECCOMP_RET_USER_NOTIF: load it with SECCOMP_FILTER_FLAG_NEW_LISTENER. */
  needsListener: boolean;
  /** Syscall names that no architecture has (ignored, as runc and crun do; worth a warning). */
  ignoredSyscalls: string[];
}

interface Condition { index: number; op: Op; value: bigint; valueTwo: bigint }
interface Rule { action: number; conds: Condition[] }

/** The architecture of this process, as a syscall table name (undefined where Berth has none). */
export function nativeSeccompArch(arch: string = process.arch): SyscallArch | undefined {
  return ({ x64: 'x86_64', ia32: 'x86', arm64: 'aarch64', arm: 'arm' } as Record<string, SyscallArch>)[arch];
}

/** Resolves a syscall name for one architecture (undefined where it has no such syscall). */
export function syscallNumber(arch: SyscallArch, name: string): number | undefined {
  return Object.hasOwn(SYSCALL_TABLES[arch], name) ? SYSCALL_TABLES[arch][name] : newerSyscallNumber(arch, name);
}

const F = 'linux.seccomp';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errnoValue(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new ConfigError(`${field}: must be an errno number from 0 to 65535, got ${JSON.stringify(v)}`);
  }
  return v;
}

function actionValue(name: unknown, errnoRet: unknown, field: string, errnoField: string): number {
  if (typeof name !== 'string') throw new ConfigError(`${field}: must be a string`);
  const a = Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined;
  if (!a) throw new ConfigError(`${field}: unknown seccomp action ${JSON.stringify(name)} (known: ${SECCOMP_ACTIONS.join(', ')})`);
  if (errnoRet !== undefined && !a.errno) {
    throw new ConfigError(`${errnoField}: ${name} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)`);
  }
  if (!a.errno) return a.ret;
  const errno = errnoRet === undefined ? EPERM : errnoValue(errnoRet, errnoField);
  return (a.ret | errno) >>> 0;
}

/** A uint64 argument value. JSON numbers above 2^53 arrive rounded; 2^64 is read as 2^64 − 1. */
function u64(v: unknown, field: string): bigint {
  let b: bigint | undefined;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
  else if (typeof v === 'string' && /^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(v)) b = BigInt(v);
  if (b === 1n << 64n && typeof v === 'number') b = U64_MAX;
  if (b === undefined || b < 0n || b > U64_MAX) {
    throw new ConfigError(`${field}: must be an unsigned 64-bit integer, got ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}`);
  }
  return b;
}

function parseRules(entry: Record<string, unknown>, action: number, field: string): Rule[] {
  const args = entry.args;
  if (args === undefined || args === null) return [{ action, conds: [] }];
  if (!Array.isArray(args)) throw new ConfigError(`${field}.args: must be an array`);
  const conds: Condition[] = args.map((arg: unknown, j) => {
    const af = `${field}.args[${j}]`;
    if (!isObject(arg)) throw new ConfigError(`${af}: must be an object`);
    const { index, op, value, valueTwo } = arg;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
      throw new ConfigError(`${af}.index: must be a syscall argument index from 0 to 5, got ${JSON.stringify(index)}`);
    }
    if (typeof op !== 'string' || !(SECCOMP_OPERATORS as readonly string[]).includes(op)) {
      throw new ConfigError(`${af}.op: unknown seccomp operator ${JSON.stringify(op)} (known: ${SECCOMP_OPERATORS.join(', ')})`);
    }
    return {
      index, op: op as Op,
      value: u64(value, `${af}.value`),
      valueTwo: valueTwo === undefined ? 0n : u64(valueTwo, `${af}.valueTwo`),
    };
  });
  const indexes = conds.map((c) => c.index);
  if (new Set(indexes).size !== indexes.length) return conds.map((c) => ({ action, conds: [c] }));
  return [{ action, conds }];
}

/** Drops conditions that always hold on this architecture (a MASKED_EQ whose mask is 0 there). */
function forArch(rule: Rule, bits: 32 | 64): Rule {
  const live = rule.conds.filter((c) => !(c.op === 'SCMP_CMP_MASKED_EQ' && (bits === 64 ? c.value : c.value & U32) === 0n));
  return live.length === rule.conds.length ? rule : { action: rule.action, conds: live };
}

type Decision = { ret: number } | { rules: Rule[]; bits: 32 | 64 };

/**
 * Compiles `linux.seccomp` to a seccomp BPF program. Throws ConfigError (naming the field) for
 * anything it cannot honour: an unknown action, operator, architecture or flag, an argument
 * index over 5, an errnoRet on an action without one, a program over the kernel's 4096 limit.
 */
export function compileSeccomp(seccomp: Seccomp, options: CompileSeccompOptions = {}): CompiledSeccomp {
  if (!isObject(seccomp)) throw new ConfigError(`${F}: must be an object`);
  const native = options.nativeArch ?? nativeSeccompArch();
  if (!native) throw new ConfigError(`${F}: Berth has no seccomp support for the ${process.arch} architecture`);

  const defaultAction = actionValue(seccomp.defaultAction, seccomp.defaultErrnoRet, `${F}.defaultAction`, `${F}.defaultErrnoRet`);

  // Flags.
  let flags = 0;
  if (seccomp.flags !== undefined && seccomp.flags !== null) {
    if (!Array.isArray(seccomp.flags)) throw new ConfigError(`${F}.flags: must be an array`);
    seccomp.flags.forEach((f: unknown, i) => {
      const v = typeof f === 'string' && Object.hasOwn(SECCOMP_FILTER_FLAGS, f) ? SECCOMP_FILTER_FLAGS[f] : undefined;
      if (v === undefined) {
        throw new ConfigError(`${F}.flags[${i}]: unknown seccomp flag ${JSON.stringify(f)} (known: ${Object.keys(SECCOMP_FILTER_FLAGS).join(', ')})`);
      }
      flags |= v;
    });
  }
  if (seccomp.listenerMetadata !== undefined && seccomp.listenerPath === undefined) {
    throw new ConfigError(`${F}.listenerMetadata: must not be set without listenerPath`);
  }

  // Architectures: the native one, plus the listed ones that this kernel can run.
  const abis: SyscallArch[] = [native];
  if (seccomp.architectures !== undefined && seccomp.architectures !== null) {
    if (!Array.isArray(seccomp.architectures)) throw new ConfigError(`${F}.architectures: must be an array`);
    seccomp.architectures.forEach((a: unknown, i) => {
      if (typeof a !== 'string' || !(SECCOMP_SPEC_ARCHES as readonly string[]).includes(a)) {
        throw new ConfigError(`${F}.architectures[${i}]: unknown seccomp architecture ${JSON.stringify(a)}`);
      }
      const arch = Object.hasOwn(TABLED_ARCHES, a) ? TABLED_ARCHES[a] : undefined;
      if (arch && KERNEL_ABIS[native].includes(arch) && !abis.includes(arch)) abis.push(arch);
    });
  }

  // Rules, in order.
  const entries: { names: string[]; rules: Rule[] }[] = [];
  if (seccomp.syscalls !== undefined && seccomp.syscalls !== null) {
    if (!Array.isArray(seccomp.syscalls)) throw new ConfigError(`${F}.syscalls: must be an array`);
    seccomp.syscalls.forEach((entry: unknown, i) => {
      const field = `${F}.syscalls[${i}]`;
      if (!isObject(entry)) throw new ConfigError(`${field}: must be an object`);
      const names = entry.names;
      if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
        throw new ConfigError(`${field}.names: must be a non-empty array of syscall names`);
      }
      const action = actionValue(entry.action, entry.errnoRet, `${field}.action`, `${field}.errnoRet`);
      const rules = parseRules(entry, action, field); // validates args even when the rule is a no-op
      if (action === defaultAction) return;
      entries.push({ names: names as string[], rules });
    });
  }

  const ignored = new Set<string>();
  for (const { names } of entries) {
    for (const n of names) {
      const known = (Object.keys(SYSCALL_TABLES) as SyscallArch[]).some((a) => syscallNumber(a, n) !== undefined)
        || Object.hasOwn(X86_SOCKETCALL, n) || Object.hasOwn(X86_IPC, n);
      if (!known) ignored.add(n);
    }
  }

  // Per architecture: syscall number → decision.
  const decisions = new Map<SyscallArch, Map<number, Decision>>();
  const usedActions = new Set<number>([defaultAction]);
  for (const arch of abis) {
    const bits = ARG_BITS[arch];
    const perNr = new Map<number, Rule[]>();
    const add = (nr: number, rule: Rule) => {
      let list = perNr.get(nr);
      if (!list) perNr.set(nr, (list = []));
      list.push(forArch(rule, bits));
    };
    for (const { names, rules } of entries) {
      for (const name of names) {
        const nr = syscallNumber(arch, name);
        const mux = arch !== 'x86' ? undefined
          : Object.hasOwn(X86_SOCKETCALL, name) ? { nr: SYSCALL_TABLES.x86.socketcall!, call: X86_SOCKETCALL[name]! }
          : Object.hasOwn(X86_IPC, name) ? { nr: SYSCALL_TABLES.x86.ipc!, call: X86_IPC[name]! }
          : undefined;
        for (const rule of rules) {
          if (mux) {
            const arg0: Condition = { index: 0, op: 'SCMP_CMP_EQ', value: BigInt(mux.call), valueTwo: 0n };
            add(mux.nr, { action: rule.action, conds: [arg0, ...rule.conds.filter((c) => c.index !== 0)] });
          }
          if (nr !== undefined) add(nr, rule);
        }
      }
    }
    const out = new Map<number, Decision>();
    for (const [nr, rules] of perNr) {
      const unconditional = rules.find((r) => r.conds.length === 0);
      const d: Decision = unconditional ? { ret: unconditional.action } : { rules, bits };
      out.set(nr, d);
      if ('ret' in d) usedActions.add(d.ret);
      else for (const r of d.rules) usedActions.add(r.action);
    }
    decisions.set(arch, out);
  }
  const needsListener = usedActions.has(SECCOMP_RET.USER_NOTIF);
  if (needsListener) {
    // The stage itself still writes once the filter is loaded (READY on the sync socket, errors
    // on stderr): a notified write would make container creation wait on the container's own
    // agent, or fail where the agent refuses it. runc refuses this too, with the same words.
    for (const arch of abis) {
      const nr = syscallNumber(arch, 'write');
      if (nr === undefined) continue;
      const d = decisions.get(arch)!.get(nr);
      const notifies = d === undefined ? defaultAction === SECCOMP_RET.USER_NOTIF
        : 'ret' in d ? d.ret === SECCOMP_RET.USER_NOTIF
        : d.rules.some((r) => r.action === SECCOMP_RET.USER_NOTIF) || defaultAction === SECCOMP_RET.USER_NOTIF;
      if (notifies) {
        throw new ConfigError(`${F}: SCMP_ACT_NOTIFY cannot be used for the write syscall (the runtime writes to its sync socket after loading the filter, so the container would wait on its own seccomp agent)`);
      }
    }
  }
  if (needsListener && (flags & SECCOMP_FILTER_FLAGS.SECCOMP_FILTER_FLAG_TSYNC!) && !(flags & SECCOMP_FILTER_FLAGS.SECCOMP_FILTER_FLAG_TSYNC_ESRCH!)) {
    throw new ConfigError(`${F}.flags: SECCOMP_FILTER_FLAG_TSYNC cannot be used with SCMP_ACT_NOTIFY unless SECCOMP_FILTER_FLAG_TSYNC_ESRCH is set too`);
  }

  const program = generate(abis, decisions, defaultAction);
  const filter = assemble(program);
  const count = filter.length / 8;
  if (count > BPF_MAXINSNS) {
    throw new ConfigError(`${F}: the filter needs ${count} BPF instructions, more than the kernel's limit of ${BPF_MAXINSNS}`);
  }
  return { flags, filter, needsListener, ignoredSyscalls: [...ignored] };
}

// ---------------------------------------------------------------------------------------------
// Code generation
// ---------------------------------------------------------------------------------------------

const OFF_NR = 0;
const OFF_ARCH = 4;
const argLo = (i: number) => 16 + 8 * i; // little-endian seccomp_data.args[i]
const argHi = (i: number) => 20 + 8 * i;

function generate(abis: SyscallArch[], decisions: Map<SyscallArch, Map<number, Decision>>, defaultAction: number): Insn[] {
  const prog: Insn[] = [];
  let labels = 0;
  const fresh = (what: string) => `${what}${labels++}`;
  const ret = (k: number): Target => ({ ret: k });

  // One section per AUDIT_ARCH value, the native one first.
  const sections: { audit: number; members: SyscallArch[]; label: string }[] = [];
  for (const arch of abis) {
    const s = sections.find((x) => x.audit === AUDIT_ARCH[arch]);
    if (s) s.members.push(arch);
    else sections.push({ audit: AUDIT_ARCH[arch], members: [arch], label: fresh('arch') });
  }

  prog.push({ op: 'ld', k: OFF_ARCH });
  sections.forEach((s, i) => {
    const next = i + 1 < sections.length ? fresh('check') : undefined;
    prog.push({ op: 'jmp', cond: 'jeq', k: s.audit, jt: s.label, jf: next ?? ret(BAD_ARCH_ACTION) });
    if (next) prog.push({ op: 'label', name: next });
  });

  // Conditional blocks are shared by identical rule lists (placed after all sections).
  const blocks = new Map<string, { label: string; rules: Rule[]; bits: 32 | 64 }>();
  const blockTarget = (rules: Rule[], bits: 32 | 64): Target => {
    const key = JSON.stringify([bits, rules], (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    let b = blocks.get(key);
    if (!b) blocks.set(key, (b = { label: fresh('rules'), rules, bits }));
    return b.label;
  };

  for (const s of sections) {
    // Ranges [start, next start) of syscall numbers with one outcome, covering 0 … 2^32−1.
    const gaps: { start: number; target: Target }[] = [{ start: 0, target: ret(defaultAction) }];
    if (s.audit === AUDIT_ARCH.x86_64) {
      gaps.length = 0;
      gaps.push({ start: 0, target: ret(s.members.includes('x86_64') ? defaultAction : BAD_ARCH_ACTION) });
      gaps.push({ start: X32_SYSCALL_BIT, target: ret(s.members.includes('x32') ? defaultAction : BAD_ARCH_ACTION) });
      gaps.push({ start: 0xffffffff, target: ret(defaultAction) }); // nr -1: a tracer skipping the syscall
    }
    const known = new Map<number, Target>();
    for (const arch of s.members) {
      for (const [nr, d] of decisions.get(arch)!) known.set(nr, 'ret' in d ? ret(d.ret) : blockTarget(d.rules, d.bits));
    }
    const points = new Set<number>(gaps.map((g) => g.start));
    for (const nr of known.keys()) { points.add(nr); if (nr < 0xffffffff) points.add(nr + 1); }
    const gapAt = (n: number) => { let t = gaps[0]!.target; for (const g of gaps) if (g.start <= n) t = g.target; return t; };
    const same = (a: Target, b: Target) => (typeof a === 'string' ? a === b : typeof b !== 'string' && a.ret === b.ret);
    const ranges: { start: number; target: Target }[] = [];
    for (const start of [...points].sort((a, b) => a - b)) {
      const target = known.get(start) ?? gapAt(start);
      const last = ranges[ranges.length - 1];
      if (last && same(last.target, target)) continue;
      ranges.push({ start, target });
    }

    prog.push({ op: 'label', name: s.label }, { op: 'ld', k: OFF_NR });
    const tree = (lo: number, hi: number): Target => {
      if (hi - lo === 1) return ranges[lo]!.target;
      const mid = (lo + hi) >> 1;
      const node: Extract<Insn, { op: 'jmp' }> = { op: 'jmp', cond: 'jge', k: ranges[mid]!.start, jt: '', jf: '' };
      const name = fresh('node');
      prog.push({ op: 'label', name }, node);
      node.jf = tree(lo, mid);
      node.jt = tree(mid, hi);
      return name;
    };
    if (ranges.length === 1) {
      // Every syscall of this architecture has one outcome.
      const only = ranges[0]!.target;
      prog.push(typeof only === 'string' ? { op: 'ja', to: only } : { op: 'ret', k: only.ret });
    } else {
      tree(0, ranges.length);
    }
  }

  for (const b of blocks.values()) {
    prog.push({ op: 'label', name: b.label });
    b.rules.forEach((rule, i) => {
      const fail: Target = i + 1 < b.rules.length ? fresh('rule') : ret(defaultAction);
      rule.conds.forEach((c, j) => {
        const pass: Target = j + 1 < rule.conds.length ? fresh('cond') : ret(rule.action);
        emitCondition(prog, c, b.bits, pass, fail, fresh);
        if (typeof pass === 'string') prog.push({ op: 'label', name: pass });
      });
      if (typeof fail === 'string') prog.push({ op: 'label', name: fail });
    });
  }
  return prog;
}

/** Emits code that goes to `pass` when the condition holds and to `fail` when not. */
function emitCondition(prog: Insn[], c: Condition, bits: 32 | 64, pass: Target, fail: Target, fresh: (w: string) => string): void {
  const lo32 = (v: bigint) => Number(v & U32);
  const hi32 = (v: bigint) => Number((v >> 32n) & U32);
  const jmp = (cond: Cond, k: number, jt: Target, jf: Target) => prog.push({ op: 'jmp', cond, k, jt, jf });
  const label = () => fresh('c');
  const at = (name: string) => prog.push({ op: 'label', name });
  const i = c.index;

  if (c.op === 'SCMP_CMP_MASKED_EQ') {
    const parts: { off: number; mask: number; datum: number }[] = [];
    if (bits === 64 && hi32(c.value) !== 0) {
      parts.push({ off: argHi(i), mask: hi32(c.value), datum: (hi32(c.valueTwo) & hi32(c.value)) >>> 0 });
    }
    if (lo32(c.value) !== 0) parts.push({ off: argLo(i), mask: lo32(c.value), datum: (lo32(c.valueTwo) & lo32(c.value)) >>> 0 });
    parts.forEach((p, n) => {
      const next = n + 1 < parts.length ? label() : pass;
      prog.push({ op: 'ld', k: p.off });
      if (p.mask !== 0xffffffff) prog.push({ op: 'and', k: p.mask });
      jmp('jeq', p.datum, next, fail);
      if (typeof next === 'string' && next !== pass) at(next);
    });
    return;
  }

  const vl = lo32(c.value);
  const vh = hi32(c.value);
  // The low-half comparison, as (cond, target when true, target when false).
  const low: Record<Exclude<Op, 'SCMP_CMP_MASKED_EQ'>, [Cond, Target, Target]> = {
    SCMP_CMP_EQ: ['jeq', pass, fail],
    SCMP_CMP_NE: ['jeq', fail, pass],
    SCMP_CMP_GT: ['jgt', pass, fail],
    SCMP_CMP_GE: ['jge', pass, fail],
    SCMP_CMP_LT: ['jge', fail, pass],
    SCMP_CMP_LE: ['jgt', fail, pass],
  };
  if (bits === 64) {
    prog.push({ op: 'ld', k: argHi(i) });
    const l1 = label();
    switch (c.op) {
      case 'SCMP_CMP_EQ': jmp('jeq', vh, l1, fail); break;
      case 'SCMP_CMP_NE': jmp('jeq', vh, l1, pass); break;
      // With a zero high half, "not above" already means "equal".
      case 'SCMP_CMP_GT':
      case 'SCMP_CMP_GE': {
        if (vh === 0) { jmp('jgt', 0, pass, l1); break; }
        const l0 = label();
        jmp('jgt', vh, pass, l0); at(l0);
        jmp('jeq', vh, l1, fail);
        break;
      }
      case 'SCMP_CMP_LT':
      case 'SCMP_CMP_LE': {
        if (vh === 0) { jmp('jgt', 0, fail, l1); break; }
        const l0 = label();
        jmp('jgt', vh, fail, l0); at(l0);
        jmp('jeq', vh, l1, pass);
        break;
      }
    }
    at(l1);
  }
  prog.push({ op: 'ld', k: argLo(i) });
  const [cond, t, f] = low[c.op];
  jmp(cond, vl, t, f);
}
