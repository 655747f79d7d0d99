// Host facts for /info and /version: read from the kernel and /etc at the time of the request
// (cheap), except the cgroup capabilities, which cannot change while the daemon runs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, hostname, machine, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectLayout } from '../runtime/cgroups/layout.ts';

/** GOARCH names, as docker reports Arch. */
export function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  return map[arch()] ?? arch();
}

export interface OsRelease { prettyName: string; versionId: string }

/** /etc/os-release (or /usr/lib/os-release), as dockerd reads OperatingSystem and OSVersion. */
export function osRelease(): OsRelease {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    const vars: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
      if (!m) continue;
      let v = m[2];
      if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
      vars[m[1]] = v.replace(/\\(.)/g, '$1');
    }
    return { prettyName: vars.PRETTY_NAME ?? vars.NAME ?? 'Linux', versionId: vars.VERSION_ID ?? '' };
  }
  return { prettyName: '<unknown>', versionId: '' };
}

export interface CgroupCapabilities {
  version: '1' | '2';
  memoryLimit: boolean;
  swapLimit: boolean;
  kernelMemoryTCP: boolean;
  oomKillDisable: boolean;
  cpuCfsPeriod: boolean;
  cpuCfsQuota: boolean;
  cpuShares: boolean;
  cpuSet: boolean;
  pidsLimit: boolean;
}

let cachedCaps: CgroupCapabilities | undefined;

/** What the cgroup hierarchies on this host can limit, as dockerd's sysinfo reports it. */
export function cgroupCapabilities(): CgroupCapabilities {
  if (cachedCaps) return cachedCaps;
  const none: CgroupCapabilities = {
    version: '1', memoryLimit: false, swapLimit: false, kernelMemoryTCP: false, oomKillDisable: false,
    cpuCfsPeriod: false, cpuCfsQuota: false, cpuShares: false, cpuSet: false, pidsLimit: false,
  };
  let layout;
  try {
    layout = detectLayout();
  } catch {
    return (cachedCaps = none);
  }
  if (layout.version === 2) {
    const root = layout.hierarchies.find((h) => h.version === 2)?.mountpoint ?? '/sys/fs/cgroup';
    let controllers: string[] = [];
    try { controllers = readFileSync(join(root, 'cgroup.controllers'), 'utf8').trim().split(/\s+/); } catch { /* none */ }
    const has = (c: string): boolean => controllers.includes(c);
    return (cachedCaps = {
      version: '2',
      memoryLimit: has('memory'),
      // memory.swap.max exists in non-root cgroups when the kernel accounts swap.
      swapLimit: has('memory') && hasSwapAccounting(root),
      kernelMemoryTCP: false,
      oomKillDisable: false,
      cpuCfsPeriod: has('cpu'),
      cpuCfsQuota: has('cpu'),
      cpuShares: has('cpu'),
      cpuSet: has('cpuset'),
      pidsLimit: has('pids'),
    });
  }
  const mountOf = (controller: string): string | undefined =>
    layout.hierarchies.find((h) => h.version === 1 && h.controllers.includes(controller))?.mountpoint;
  const file = (controller: string, name: string): boolean => {
    const m = mountOf(controller);
    return m !== undefined && existsSync(join(m, name));
  };
  return (cachedCaps = {
    version: '1',
    memoryLimit: file('memory', 'memory.limit_in_bytes'),
    swapLimit: file('memory', 'memory.memsw.limit_in_bytes'),
    kernelMemoryTCP: file('memory', 'memory.kmem.tcp.limit_in_bytes'),
    oomKillDisable: file('memory', 'memory.oom_control'),
    cpuCfsPeriod: file('cpu', 'cpu.cfs_period_us'),
    cpuCfsQuota: file('cpu', 'cpu.cfs_quota_us'),
    cpuShares: file('cpu', 'cpu.shares'),
    cpuSet: file('cpuset', 'cpuset.cpus') || file('cpuset', 'cpus'),
    pidsLimit: mountOf('pids') !== undefined,
  });
}

function hasSwapAccounting(root: string): boolean {
  try {
    for (const e of readdirSync(root, { withFileTypes: true })) {
      if (e.isDirectory() && existsSync(join(root, e.name, 'memory.swap.max'))) return true;
    }
  } catch { /* unreadable: assume not */ }
  return false;
}

function readFlag(path: string): boolean {
  try { return readFileSync(path, 'utf8').trim() === '1'; } catch { return false; }
}

export function networkFacts(): { ipv4Forwarding: boolean; bridgeNfIptables: boolean; bridgeNfIp6tables: boolean } {
  return {
    ipv4Forwarding: readFlag('/proc/sys/net/ipv4/ip_forward'),
    bridgeNfIptables: readFlag('/proc/sys/net/bridge/bridge-nf-call-iptables'),
    bridgeNfIp6tables: readFlag('/proc/sys/net/bridge/bridge-nf-call-ip6tables'),
  };
}

export function seccompAvailable(): boolean {
  try { return /^Seccomp:\s/m.test(readFileSync('/proc/self/status', 'utf8')); } catch { return false; }
}

/** overlay2 where the kernel has overlayfs, else vfs; the snapshotter overrides this with what it really uses. */
export function guessStorageDriver(): string {
  try {
    return /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8')) ? 'overlay2' : 'vfs';
  } catch {
    return 'vfs';
  }
}

export function openFileDescriptors(): number {
  try { return readdirSync('/proc/self/fd').length; } catch { return -1; }
}

/** The berth-runtime binary next to this program (dist/), for /info's Runtimes. */
export function builtinRuntimePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'berth-runtime.cjs'), join(here, '..', '..', 'dist', 'berth-runtime.cjs')]) {
    if (existsSync(candidate)) return candidate;
  }
  return 'berth-runtime';
}

export const hostFacts = {
  kernelVersion: (): string => release(),
  architecture: (): string => machine(),
  ncpu: (): number => availableParallelism(),
  memTotal: (): number => totalmem(),
  hostname: (): string => hostname(),
};
