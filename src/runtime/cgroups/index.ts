// The one place where cgroup v1 and v2 differ is behind this interface.
// Everything else in the runtime talks to a CgroupManager.
//
// CONTRACT (implemented in ./v1.ts, ./v2.ts, ./layout.ts):
//
//   detectLayout(): CgroupLayout
//     Reads /proc/self/mountinfo and /proc/self/cgroup once. v2 when /sys/fs/cgroup is cgroup2
//     ("unified"); otherwise v1 ("legacy"/"hybrid": per-controller hierarchies, maybe a cgroup2
//     mount beside them, whose controllers (e.g. hugetlb) must then be handled through it).
//
//   openCgroup(opts): CgroupManager
//     Resolves linux.cgroupsPath like runc: absolute paths are relative to each hierarchy's root
//     (the mountpoint), relative paths are relative to the calling process's own cgroup in that
//     hierarchy, absent → "/berth/<id>" (default prefix configurable).
//     "slice:prefix:name" (systemd form) → ConfigError saying the systemd driver is not supported.
//
//   manager.create(resources) — mkdir -p in every hierarchy (v1: each mounted controller incl.
//     name=systemd; v2: the unified dir, enabling needed controllers in every ancestor's
//     cgroup.subtree_control), refuse (StateError) if the cgroup exists and is frozen, then apply
//     resources. Throws ConfigError for resources the host cannot honour (with the file name).
//   manager.procsFiles() — the cgroup.procs files a new process must join (for CGROUP_JOIN).
//   manager.pids() — every pid in the container's cgroup (recursively), for kill --all and ps.
//   manager.destroy() — remove the cgroup dirs (deepest first), retrying EBUSY briefly; missing
//     dirs are fine. Only dirs this manager created (or that it owns by path) are removed.
//   manager.freeze()/thaw()/frozen() — v1 freezer.state, v2 cgroup.freeze.
//   manager.update(resources) — apply resources again (for `update`).
//   manager.stats() — cpu, memory, pids, blkio numbers for `events`.
//   manager.mounts() — what a "cgroup" mount inside the container should show (see CgroupMountInfo).
//   manager.toJSON() / loadCgroup(saved) — persisted in the container's state so that later
//     commands (kill --all, delete, ps, pause) find the same dirs without the config.

import type { LinuxResources } from '../spec-types.ts';

export type CgroupVersion = 1 | 2;

export interface CgroupHierarchy {
  /** Controllers bound to this hierarchy, e.g. ["cpu","cpuacct"], ["name=systemd"], or [] for v2. */
  controllers: string[];
  /** Where it is mounted on the host, e.g. /sys/fs/cgroup/cpu,cpuacct */
  mountpoint: string;
  /** The hierarchy's root as seen through that mount (mountinfo "root" field, normally "/"). */
  root: string;
  /** This process's own cgroup in the hierarchy (from /proc/self/cgroup). */
  current: string;
  version: CgroupVersion;
}

export interface CgroupLayout {
  /** 2 when /sys/fs/cgroup itself is cgroup2; 1 otherwise (legacy or hybrid). */
  version: CgroupVersion;
  hierarchies: CgroupHierarchy[];
}

export interface OpenCgroupOptions {
  containerId: string;
  cgroupsPath?: string;
  layout?: CgroupLayout;
}

export interface SavedCgroup {
  version: CgroupVersion;
  /** Absolute directories of this container, one per hierarchy (v2: exactly one). */
  dirs: { mountpoint: string; controllers: string[]; dir: string; created: boolean }[];
}

export interface CgroupMountInfo {
  /** v2: mount cgroup2 (in a cgroup ns) or bind this dir; v1: one bind per hierarchy. */
  version: CgroupVersion;
  entries: {
    /** Name of the subdirectory under the mount destination ("" for v2: the destination itself). */
    name: string;
    /** Host directory to bind (the container's cgroup dir in that hierarchy). */
    hostDir: string;
    /** Options for mounting the hierarchy fresh inside a cgroup namespace, e.g. "cpu,cpuacct". */
    fsOptions: string;
  }[];
  /** Symlinks to add under the destination for combined controllers: cpu -> cpu,cpuacct. */
  symlinks: { name: string; target: string }[];
}

export interface CgroupStats {
  cpu?: { usage: { total: number; user: number; kernel: number; percpu?: number[] }; throttling?: { periods: number; throttledPeriods: number; throttledTime: number } };
  memory?: { usage: { usage: number; max: number; limit: number; failcnt: number }; swap?: { usage: number; limit: number }; cache?: number; raw?: Record<string, number> };
  pids?: { current: number; limit: number };
  blkio?: Record<string, unknown>;
}

export interface CgroupManager {
  readonly version: CgroupVersion;
  create(resources: LinuxResources | undefined): void;
  procsFiles(): string[];
  pids(): number[];
  destroy(): void;
  freeze(): void;
  thaw(): void;
  frozen(): boolean;
  update(resources: LinuxResources): void;
  stats(): CgroupStats;
  mounts(): CgroupMountInfo;
  toJSON(): SavedCgroup;
}
