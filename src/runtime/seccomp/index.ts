// Seccomp: OCI `linux.seccomp` → classic BPF for seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog).
export {
  AUDIT_ARCH, BAD_ARCH_ACTION, compileSeccomp, nativeSeccompArch, SECCOMP_ACTIONS, SECCOMP_FILTER_FLAGS,
  SECCOMP_OPERATORS, SECCOMP_RET, SECCOMP_SPEC_ARCHES, SECCOMP_SUPPORTED_ARCHES, syscallNumber,
  type CompiledSeccomp, type CompileSeccompOptions,
} from './compile.ts';
export { BPF, BPF_MAXINSNS, decode, type SockFilter } from './bpf.ts';
export { SYSCALL_TABLES, type SyscallArch } from './syscalls.ts';
