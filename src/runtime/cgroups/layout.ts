// Which cgroup hierarchies this host has and where this process sits in them.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, RuntimeError } from '../errors.ts';
import type { CgroupHierarchy, CgroupLayout } from './index.ts';

/** Controllers a v1 hierarchy can carry (anything else in a cgroup mount's options is an option). */
const V1_CONTROLLERS = new Set([
  'cpuset', 'cpu', 'cpuacct', 'blkio', 'memory', 'devices', 'freezer', 'net_cls', 'perf_event',
  'net_prio', 'hugetlb', 'pids', 'rdma', 'misc', 'debug',
]);

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

interface MountLine {
  root: string;
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

export function parseMountinfo(text: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    if (pre.length < 6 || post.length < 3) continue;
    out.push({
      root: unescapeMountinfo(pre[3]),
      mountpoint: unescapeMountinfo(pre[4]),
      fstype: post[0],
      superOptions: post[2].split(','),
    });
  }
  return out;
}

/** /proc/self/cgroup: key is the sorted controller list ("" for the v2 line), value the path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const ctrls = line.slice(a + 1, b);
    const p = line.slice(b + 1);
    out.set(ctrls.split(',').filter(Boolean).sort().join(','), p);
  }
  return out;
}

/**
 * Builds the layout from the texts of /proc/self/mountinfo and /proc/self/cgroup (read from the
 * running process when not given).
 */
export function detectLayout(mountinfo?: string, procCgroup?: string): CgroupLayout {
  let mi = mountinfo;
  let pc = procCgroup;
  try {
    mi ??= fs.readFileSync('/proc/self/mountinfo', 'utf8');
    pc ??= fs.readFileSync('/proc/self/cgroup', 'utf8');
  } catch (e) {
    throw new RuntimeError(`cannot read the cgroup layout from /proc/self: ${(e as Error).message}`);
  }
  const mounts = parseMountinfo(mi);
  const own = parseProcCgroup(pc);

  // A later mount on the same mountpoint hides an earlier one.
  const byMountpoint = new Map<string, MountLine>();
  for (const m of mounts) byMountpoint.set(m.mountpoint, m);
  const top = byMountpoint.get('/sys/fs/cgroup');
  const version = top?.fstype === 'cgroup2' ? 2 : 1;

  const hierarchies: CgroupHierarchy[] = [];
  const seen = new Set<string>();
  for (const m of byMountpoint.values()) {
    if (m.fstype === 'cgroup2') {
      // Pure v2: only /sys/fs/cgroup. Hybrid: the one cgroup2 mount beside the v1 hierarchies.
      if (version === 2 && m.mountpoint !== '/sys/fs/cgroup') continue;
      if (seen.has('')) continue;
      seen.add('');
      hierarchies.push({ controllers: [], mountpoint: m.mountpoint, root: m.root, current: own.get('') ?? '/', version: 2 });
    } else if (m.fstype === 'cgroup' && version === 1) {
      const controllers = m.superOptions.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
      if (controllers.length === 0) continue;
      const key = [...controllers].sort().join(',');
      if (seen.has(key)) continue; // the same hierarchy mounted twice
      seen.add(key);
      hierarchies.push({ controllers, mountpoint: m.mountpoint, root: m.root, current: own.get(key) ?? '/', version: 1 });
    }
  }
  if (version === 2) {
    return { version, hierarchies: hierarchies.filter((h) => h.mountpoint === '/sys/fs/cgroup') };
  }
  // Prefer the hierarchies under /sys/fs/cgroup when a hybrid has extra cgroup2 mounts elsewhere.
  hierarchies.sort((a, b) => Number(b.mountpoint.startsWith('/sys/fs/cgroup/')) - Number(a.mountpoint.startsWith('/sys/fs/cgroup/')));
  const firstV2 = hierarchies.findIndex((h) => h.version === 2);
  const filtered = hierarchies.filter((h, i) => h.version === 1 || i === firstV2);
  if (filtered.length === 0) {
    throw new RuntimeError('no cgroup hierarchies are mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)');
  }
  return { version, hierarchies: filtered };
}

/**
 * Where `cgroupsPath` puts the container in one hierarchy: absolute paths hang below the
 * hierarchy's mountpoint, relative ones below this process's own cgroup there.
 * Returns the cgroup path (as seen in the hierarchy) and the host directory.
 */
export function resolveInHierarchy(h: CgroupHierarchy, cgPath: string): { cgroup: string; dir: string } {
  let cgroup: string;
  if (cgPath.startsWith('/')) {
    cgroup = path.posix.normalize(cgPath);
    // Relative to the mount's root: the hierarchy's root as we can reach it is the mountpoint.
    return { cgroup, dir: path.posix.join(h.mountpoint, cgroup) };
  }
  const cur = h.current.replace(/ \(deleted\)$/, '');
  let rel: string;
  if (h.root === '/') rel = cur;
  else if (cur === h.root) rel = '/';
  else if (cur.startsWith(h.root + '/')) rel = cur.slice(h.root.length);
  else {
    throw new RuntimeError(
      `cannot place relative cgroupsPath ${JSON.stringify(cgPath)}: this process's cgroup ${cur} is outside the part of the ` +
        `${h.controllers.join(',') || 'cgroup2'} hierarchy mounted at ${h.mountpoint} (root ${h.root})`,
    );
  }
  cgroup = path.posix.join(cur, cgPath);
  return { cgroup, dir: path.posix.join(h.mountpoint, rel, cgPath) };
}

/** Validates linux.cgroupsPath (or builds the default) and returns it in a normal form. */
export function normaliseCgroupsPath(cgroupsPath: string | undefined, containerId: string, defaultPrefix = '/berth'): { path: string; isDefault: boolean } {
  if (cgroupsPath === undefined || cgroupsPath === '') {
    if (!containerId || containerId.includes('/') || containerId === '.' || containerId === '..') {
      throw new ConfigError(`container id ${JSON.stringify(containerId)} cannot name a cgroup`);
    }
    const prefix = defaultPrefix.startsWith('/') ? defaultPrefix : `/${defaultPrefix}`;
    return { path: path.posix.join(prefix, containerId), isDefault: true };
  }
  if (typeof cgroupsPath !== 'string') {
    throw new ConfigError(`linux.cgroupsPath must be a string, not ${JSON.stringify(cgroupsPath)}`);
  }
  if (/^[^/:]*:[^/:]*:[^/:]*$/.test(cgroupsPath)) {
    throw new ConfigError(
      `linux.cgroupsPath ${JSON.stringify(cgroupsPath)} is in the systemd form "slice:prefix:name", but Berth has no ` +
        'systemd cgroup driver; use a path such as "/mygroup/name" or leave cgroupsPath out',
    );
  }
  if (cgroupsPath.split('/').some((p) => p === '..')) {
    throw new ConfigError(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)} must not contain ".." components`);
  }
  if (cgroupsPath.includes('\0')) throw new ConfigError('linux.cgroupsPath contains a NUL byte');
  const norm = path.posix.normalize(cgroupsPath).replace(/\/+$/, '');
  if (norm === '' || norm === '/' || norm === '.') {
    throw new ConfigError(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)} names the root cgroup; give the container a cgroup of its own`);
  }
  return { path: norm, isDefault: false };
}
