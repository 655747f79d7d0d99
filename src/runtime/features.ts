// `berth-runtime features`: what this runtime implements, in the runtime-spec "features" format.
import { CAPABILITIES } from './capabilities.ts';
import { RECURSIVE_MOUNT_OPTIONS } from './mount-options.ts';
import { SECCOMP_ACTIONS, SECCOMP_FILTER_FLAGS, SECCOMP_OPERATORS, SECCOMP_SUPPORTED_ARCHES } from './seccomp/index.ts';
import { OCI_VERSION } from './state.ts';

export function features(): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [
      'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'lazytime', 'mand', 'noatime', 'nodev',
      'nodiratime', 'noexec', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'nosymfollow', 'private',
      'rbind', 'relatime', 'ro', 'rprivate', 'rshared', 'rslave', 'runbindable', 'rw', 'shared', 'slave', 'strictatime',
      'suid', 'symfollow', 'sync', 'unbindable', ...RECURSIVE_MOUNT_OPTIONS,
    ].sort(),
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts'],
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: [...SECCOMP_ACTIONS],
        operators: [...SECCOMP_OPERATORS],
        archs: [...SECCOMP_SUPPORTED_ARCHES],
        knownFlags: Object.keys(SECCOMP_FILTER_FLAGS),
        supportedFlags: Object.keys(SECCOMP_FILTER_FLAGS),
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { 'org.opencontainers.runtime-spec.features.berth.version': '0.1.0' },
  };
}
