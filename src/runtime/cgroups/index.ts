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

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, StateError } from '../errors.ts';
import type { DirEntry } from './common.ts';
import { detectLayout, normaliseCgroupsPath, resolveInHierarchy } from './layout.ts';
import { V1Manager } from './v1.ts';
import { V2Manager } from './v2.ts';
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
  /** Parent of the default cgroup path "<prefix>/<id>" (default "/berth"). */
  defaultPrefix?: string;
  /**
   * v1: append runc's default device allow-list (DEFAULT_DEVICE_RULES) after linux.resources.devices
   * (default false: the caller passes the complete list). Rules are written (devices.deny "a", then
   * each rule in order) only when linux.resources.devices is present.
   */
  defaultDeviceRules?: boolean;
  /**
   * v2: the caller enforces linux.resources.devices itself (eBPF). Without it, create/update refuse
   * device rules on v2 with a ConfigError rather than ignoring them.
   */
  devicesHandledExternally?: boolean;
}

export interface SavedCgroup {
  version: CgroupVersion;
  /** Absolute directories of this container, one per hierarchy (v2: exactly one). */
  dirs: {
    mountpoint: string;
    /** v1: the hierarchy's controllers; hybrid cgroup2 entry: the controllers handled through it; v2: []. */
    controllers: string[];
    dir: string;
    /** This manager made the directory (destroy removes it). */
    created: boolean;
    /** The directory is this container's by its path (the default <prefix>/<id>): destroy removes it too. */
    owned?: boolean;
    /** A cgroup2 directory (the v2 dir, or the hybrid host's unified one). */
    unified?: boolean;
  }[];
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
    /** Filesystem type for a fresh mount: "cgroup" (v1 hierarchy) or "cgroup2" (v2, or a hybrid host's unified mount). */
    fsType?: 'cgroup' | 'cgroup2';
  }[];
  /** Symlinks to add under the destination for combined controllers: cpu -> cpu,cpuacct. */
  symlinks: { name: string; target: string }[];
  /**
   * v2: bind the dir even in a new cgroup namespace (rootless: /sys bound from the host already has
   * cgroup2 at /sys/fs/cgroup, and the kernel refuses a second cgroup2 mount on its root: EBUSY).
   */
  bindOnly?: boolean;
}

export interface CgroupStats {
  cpu?: { usage: { total: number; user: number; kernel: number; percpu?: number[] }; throttling?: { periods: number; throttledPeriods: number; throttledTime: number } };
  memory?: {
    usage: { usage: number; max: number; limit: number; failcnt: number };
    swap?: { usage: number; limit: number; max?: number; failcnt?: number };
    /** v1 only: memory.kmem.* and memory.kmem.tcp.* (cgroup v2 charges kernel memory to memory.max). */
    kernel?: { usage: number; max: number; limit: number; failcnt: number };
    kernelTCP?: { usage: number; max: number; limit: number; failcnt: number };
    cache?: number;
    raw?: Record<string, number>;
  };
  pids?: { current: number; limit: number };
  blkio?: Record<string, unknown>;
  /** Per huge page size ("2MB"): usage, peak (v1 only; 0 on v2) and failcnt (v2: hugetlb.<size>.events max). */
  hugetlb?: Record<string, { usage: number; max: number; failcnt: number }>;
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

// ---- implementation -----------------------------------------------------------------------------


export { detectLayout } from './layout.ts';
export { DEFAULT_DEVICE_RULES } from './v1.ts';
export { blkioWeightToIoWeight, cpuSharesToWeight, swapToV2 } from './v2.ts';

/**
 * True when linux.resources asks for device rules. On cgroup v2 those need an eBPF device program,
 * which this layer does not load: callers must refuse such a config (or load the program and open
 * the cgroup with devicesHandledExternally).
 */
export function deviceRulesRequested(resources: LinuxResources | undefined): boolean {
  return !!resources?.devices?.length;
}

export function openCgroup(opts: OpenCgroupOptions): CgroupManager {
  // Not cached: on a shared host controllers can move between v1 hierarchies and the cgroup2 mount.
  const layout = opts.layout ?? detectLayout();
  const { path: cgPath, isDefault } = normaliseCgroupsPath(opts.cgroupsPath, opts.containerId, opts.defaultPrefix);
  if (layout.version === 2) {
    const h = layout.hierarchies.find((x) => x.version === 2);
    if (!h) throw new StateError('the cgroup layout says v2 but lists no cgroup2 hierarchy');
    const { dir } = resolveInHierarchy(h, cgPath);
    return new V2Manager(
      { mountpoint: h.mountpoint, controllers: [], dir, created: false, owned: isDefault, unified: true },
      { devicesHandledExternally: opts.devicesHandledExternally },
    );
  }
  const bound = new Set(layout.hierarchies.filter((h) => h.version === 1).flatMap((h) => h.controllers));
  const entries: DirEntry[] = [];
  for (const h of layout.hierarchies) {
    const { dir } = resolveInHierarchy(h, cgPath);
    if (h.version === 1) {
      entries.push({ mountpoint: h.mountpoint, controllers: [...h.controllers], dir, created: false, owned: isDefault });
    } else {
      // Hybrid: the cgroup2 mount handles whatever no v1 hierarchy has (e.g. hugetlb).
      let avail: string[] = [];
      try {
        avail = fs.readFileSync(path.join(h.mountpoint, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
      } catch {
        /* an old kernel's cgroup2 root may lack the file */
      }
      entries.push({ mountpoint: h.mountpoint, controllers: avail.filter((c) => !bound.has(c)), dir, created: false, owned: isDefault, unified: true });
    }
  }
  if (!entries.length) throw new ConfigError('no cgroup hierarchies are mounted on this host (nothing under /sys/fs/cgroup)');
  return new V1Manager(entries, { defaultDeviceRules: opts.defaultDeviceRules });
}

/** Rebuilds a manager from SavedCgroup (state.json) without the config. */
export function loadCgroup(saved: SavedCgroup, opts: Pick<OpenCgroupOptions, 'defaultDeviceRules' | 'devicesHandledExternally'> = {}): CgroupManager {
  const bad = (why: string): never => {
    throw new StateError(`the saved cgroup record is malformed (${why}); the container's state file may be damaged`);
  };
  if (!saved || typeof saved !== 'object') bad('not an object');
  if (saved.version !== 1 && saved.version !== 2) bad(`version ${JSON.stringify(saved.version)}`);
  if (!Array.isArray(saved.dirs) || saved.dirs.length === 0) bad('no dirs');
  const entries: DirEntry[] = saved.dirs.map((d, i) => {
    if (!d || typeof d.dir !== 'string' || !path.isAbsolute(d.dir) || typeof d.mountpoint !== 'string' || !Array.isArray(d.controllers)) {
      bad(`dirs[${i}]`);
    }
    if (path.relative(d.mountpoint, d.dir).startsWith('..') || path.relative(d.mountpoint, d.dir) === '') bad(`dirs[${i}].dir is not below its mountpoint`);
    const e: DirEntry = { mountpoint: d.mountpoint, controllers: [...d.controllers], dir: d.dir, created: !!d.created, owned: !!d.owned };
    if (saved.version === 2 || d.unified) e.unified = true;
    return e;
  });
  if (saved.version === 2) {
    if (entries.length !== 1) bad('a v2 record has exactly one dir');
    return new V2Manager(entries[0], { devicesHandledExternally: opts.devicesHandledExternally });
  }
  return new V1Manager(entries, { defaultDeviceRules: opts.defaultDeviceRules });
}
