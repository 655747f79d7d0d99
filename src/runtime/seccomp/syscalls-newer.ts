// Syscalls newer than the kernel headers syscalls.ts is generated from (Debian 12's Linux 6.1),
// which docker's default profile allows. Without them a profile naming e.g. fchmodat2 could not
// allow it, and newer C libraries that try it first would see EPERM instead of the call (or the
// ENOSYS they fall back on). Since Linux 5.1 new syscalls get one number on every architecture
// (x32 with its 0x40000000 bit), so one list serves all tables; the numbers are the kernel's
// (arch/*/entry/syscalls/*.tbl, include/uapi/asm-generic/unistd.h).
import type { SyscallArch } from './syscalls.ts';

const GENERIC: Readonly<Record<string, number>> = {
  cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455,
  futex_requeue: 456, statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460,
  lsm_list_modules: 461, mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465,
  removexattrat: 466,
};

/** x86_64 only (arch/x86/entry/syscalls/syscall_64.tbl). */
const X86_64_ONLY: Readonly<Record<string, number>> = { uretprobe: 335 };

export function newerSyscallNumber(arch: SyscallArch, name: string): number | undefined {
  if (arch === 'x86_64' && Object.hasOwn(X86_64_ONLY, name)) return X86_64_ONLY[name];
  if (!Object.hasOwn(GENERIC, name)) return undefined;
  if (name === 'map_shadow_stack' && arch !== 'x86_64' && arch !== 'x32') return undefined;
  return arch === 'x32' ? 0x4000_0000 + GENERIC[name]! : GENERIC[name];
}
