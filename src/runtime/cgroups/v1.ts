// cgroup v1 (legacy and hybrid): one directory per mounted hierarchy. On a hybrid host, controllers
// that only the cgroup2 mount has (e.g. hugetlb here) are set through that mount with the v2 files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, RuntimeError, StateError } from '../errors.ts';
import type {
  DeviceCgroupRule, LinuxBlockIO, LinuxCPU, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
} from '../spec-types.ts';
import type { CgroupManager, CgroupMountInfo, CgroupStats, SavedCgroup } from './index.ts';
import {
  type DirEntry, UNLIMITED, checkAccess, checkPageSize, collectPids, devKey, exists, fmtInt, hugePageSizes, mkdirChain,
  parseFlatKeyed, parseNum, pathChain, readCgOpt, removeCgroupTree, removeEmptyParent, rmdirQuiet, sleepSync, writeCg,
} from './common.ts';
import {
  enableV2Controllers, freezeV2, frozenV2, hugetlbStatsV2, pidsValue, rdmaLines, setCpuV2, setCpusetV2, setHugetlbV2, setIoV2, setMemoryV2,
  setPidsV2, setRdmaV2,
} from './v2.ts';

/** runc's default device allow-list, appended after the spec's rules (see specconv.AllowedDevices). */
export const DEFAULT_DEVICE_RULES: readonly DeviceCgroupRule[] = Object.freeze([
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
]);

// ---- memory -----------------------------------------------------------------------------------

const PAGE = 4096n;
function pageRounded(v: number): bigint {
  if (v === -1) return BigInt(UNLIMITED);
  return (BigInt(v) / PAGE) * PAGE;
}

function writeMemLimit(dir: string, v: number): void {
  try {
    writeCg(dir, 'memory.limit_in_bytes', fmtInt(v, 'linux.resources.memory.limit'), 'linux.resources.memory.limit');
  } catch (e) {
    if (e instanceof ConfigError && /EBUSY/.test(e.message)) {
      const usage = readCgOpt(dir, 'memory.usage_in_bytes');
      const peak = readCgOpt(dir, 'memory.max_usage_in_bytes');
      throw new ConfigError(`cannot set linux.resources.memory.limit to ${v}: the cgroup ${dir} already uses ${usage} bytes (peak ${peak}); ${path.join(dir, 'memory.limit_in_bytes')} refused it`);
    }
    throw e;
  }
}

function writeMemsw(dir: string, v: number): void {
  if (!exists(path.join(dir, 'memory.memsw.limit_in_bytes'))) {
    throw new ConfigError(`cannot set linux.resources.memory.swap: ${path.join(dir, 'memory.memsw.limit_in_bytes')} does not exist (swap accounting is off: boot with swapaccount=1)`);
  }
  writeCg(dir, 'memory.memsw.limit_in_bytes', fmtInt(v, 'linux.resources.memory.swap'), 'linux.resources.memory.swap');
}

export function setMemoryV1(dir: string, m: LinuxMemory, update: boolean): void {
  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  if (update && m.checkBeforeUpdate && limit > 0) {
    const cur = parseNum(readCgOpt(dir, 'memory.usage_in_bytes'));
    if (cur >= limit) {
      throw new ConfigError(`linux.resources.memory.limit ${limit} is not above the current usage ${cur} (${path.join(dir, 'memory.usage_in_bytes')}); checkBeforeUpdate refuses it`);
    }
  }
  if (limit > 0 && swap > 0 && swap < limit) {
    throw new ConfigError(`linux.resources.memory.swap (${swap}, memory+swap) must be >= linux.resources.memory.limit (${limit})`);
  }
  // Unlimited memory with swap left out means unlimited swap as well (runc).
  if (limit === -1 && swap === 0 && exists(path.join(dir, 'memory.memsw.limit_in_bytes'))) swap = -1;
  let done = false;
  if (limit !== 0 && swap !== 0) {
    const curLimit = BigInt(readCgOpt(dir, 'memory.limit_in_bytes') ?? '0');
    // memsw must stay >= memory at every step: raise memsw first when it grows.
    if (swap === -1 || curLimit < BigInt(swap)) {
      writeMemsw(dir, swap);
      writeMemLimit(dir, limit);
      done = true;
    }
  }
  if (!done) {
    if (limit !== 0) writeMemLimit(dir, limit);
    if (swap !== 0) writeMemsw(dir, swap);
  }
  if (m.reservation) {
    writeCg(dir, 'memory.soft_limit_in_bytes', fmtInt(m.reservation, 'linux.resources.memory.reservation'), 'linux.resources.memory.reservation');
  }
  if (m.kernel != null && m.kernel !== 0) {
    writeCg(dir, 'memory.kmem.limit_in_bytes', fmtInt(m.kernel, 'linux.resources.memory.kernel'), 'linux.resources.memory.kernel');
    const back = readCgOpt(dir, 'memory.kmem.limit_in_bytes');
    if (back === undefined || BigInt(back) !== pageRounded(m.kernel)) {
      throw new ConfigError(
        `linux.resources.memory.kernel ${m.kernel} cannot be honoured: this kernel ignores ${path.join(dir, 'memory.kmem.limit_in_bytes')} ` +
          `(it still reads ${back}); kernel memory limits are gone since Linux 6.0, remove the setting`,
      );
    }
  }
  if (m.kernelTCP != null && m.kernelTCP !== 0) {
    writeCg(dir, 'memory.kmem.tcp.limit_in_bytes', fmtInt(m.kernelTCP, 'linux.resources.memory.kernelTCP'), 'linux.resources.memory.kernelTCP');
  }
  if (m.swappiness != null && m.swappiness !== -1) {
    if (!Number.isInteger(m.swappiness) || m.swappiness < 0 || m.swappiness > 100) {
      throw new ConfigError(`linux.resources.memory.swappiness ${m.swappiness} is invalid: the range is 0-100`);
    }
    writeCg(dir, 'memory.swappiness', String(m.swappiness), 'linux.resources.memory.swappiness');
  }
  if (m.disableOOMKiller) writeCg(dir, 'memory.oom_control', '1', 'linux.resources.memory.disableOOMKiller');
  if (m.useHierarchy != null) {
    const want = m.useHierarchy ? '1' : '0';
    if (readCgOpt(dir, 'memory.use_hierarchy') !== want) writeCg(dir, 'memory.use_hierarchy', want, 'linux.resources.memory.useHierarchy');
  }
}

export function memoryRequested(m: LinuxMemory | undefined): boolean {
  if (!m) return false;
  return !!(m.limit || m.swap || m.reservation || m.kernel || m.kernelTCP || (m.swappiness != null && m.swappiness !== -1) ||
    m.disableOOMKiller || m.useHierarchy != null);
}

// ---- cpu / cpuset -----------------------------------------------------------------------------

function isEinval(e: unknown): boolean {
  return e instanceof ConfigError && /EINVAL/.test(e.message);
}

export function setCpuV1(dir: string, c: LinuxCPU): void {
  const quota = c.quota ?? 0;
  if (c.idle != null && c.idle === 0) writeCg(dir, 'cpu.idle', '0', 'linux.resources.cpu.idle');
  if (c.shares) {
    const s = fmtInt(c.shares, 'linux.resources.cpu.shares');
    writeCg(dir, 'cpu.shares', s, 'linux.resources.cpu.shares');
    const back = Number(readCgOpt(dir, 'cpu.shares'));
    if (c.shares > back) throw new ConfigError(`linux.resources.cpu.shares ${c.shares} is too large: the maximum allowed cpu-shares is ${back}`);
    if (c.shares < back) throw new ConfigError(`linux.resources.cpu.shares ${c.shares} is too small: the minimum allowed cpu-shares is ${back}`);
  }
  let period = '';
  if (c.period) {
    period = fmtInt(c.period, 'linux.resources.cpu.period');
    try {
      writeCg(dir, 'cpu.cfs_period_us', period, 'linux.resources.cpu.period');
      period = '';
    } catch (e) {
      // A smaller period can be refused while the old quota applies; retry after the quota.
      if (!isEinval(e) || !quota) throw e;
    }
  }
  let burst = '';
  if (c.burst != null) {
    burst = fmtInt(c.burst, 'linux.resources.cpu.burst');
    try {
      writeCg(dir, 'cpu.cfs_burst_us', burst, 'linux.resources.cpu.burst');
      burst = '';
    } catch (e) {
      if (!isEinval(e) || !quota) throw e;
    }
  }
  if (quota) {
    writeCg(dir, 'cpu.cfs_quota_us', fmtInt(quota, 'linux.resources.cpu.quota'), 'linux.resources.cpu.quota');
    if (period) writeCg(dir, 'cpu.cfs_period_us', period, 'linux.resources.cpu.period');
    if (burst) writeCg(dir, 'cpu.cfs_burst_us', burst, 'linux.resources.cpu.burst');
  }
  if (c.realtimePeriod) {
    writeCg(dir, 'cpu.rt_period_us', fmtInt(c.realtimePeriod, 'linux.resources.cpu.realtimePeriod'), 'linux.resources.cpu.realtimePeriod');
  }
  if (c.realtimeRuntime) {
    writeCg(dir, 'cpu.rt_runtime_us', fmtInt(c.realtimeRuntime, 'linux.resources.cpu.realtimeRuntime'), 'linux.resources.cpu.realtimeRuntime (the parent cgroup needs at least as much cpu.rt_runtime_us)');
  }
  if (c.idle != null && c.idle !== 0) writeCg(dir, 'cpu.idle', fmtInt(c.idle, 'linux.resources.cpu.idle'), 'linux.resources.cpu.idle');
}

export function cpuRequested(c: LinuxCPU | undefined): boolean {
  return !!c && !!(c.shares || c.quota || c.period || c.burst != null || c.realtimePeriod || c.realtimeRuntime || c.idle != null);
}

/** A new v1 cpuset cgroup has empty cpus/mems and cannot take tasks: copy them down from the parent. */
export function initCpusetV1(mountpoint: string, dir: string): void {
  for (const d of pathChain(mountpoint, dir)) {
    const parent = path.dirname(d);
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const v = readCgOpt(d, f);
      if (v === undefined) throw new ConfigError(`${path.join(d, f)} does not exist (cpuset hierarchy mounted with noprefix?)`);
      if (v !== '') continue;
      const pv = readCgOpt(parent, f) ?? '';
      writeCg(d, f, pv, `the initial ${f} of ${d} (copied from ${parent})`);
    }
  }
}

export function setCpusetV1(dir: string, c: LinuxCPU): void {
  if (c.cpus) writeCg(dir, 'cpuset.cpus', c.cpus, 'linux.resources.cpu.cpus');
  if (c.mems) writeCg(dir, 'cpuset.mems', c.mems, 'linux.resources.cpu.mems');
}

// ---- blkio / hugetlb / network / rdma -----------------------------------------------------------

export function blkioRequested(b: LinuxBlockIO | undefined): boolean {
  return !!b && !!(b.weight || b.leafWeight || b.weightDevice?.length || b.throttleReadBpsDevice?.length ||
    b.throttleWriteBpsDevice?.length || b.throttleReadIOPSDevice?.length || b.throttleWriteIOPSDevice?.length);
}

export function setBlkioV1(dir: string, b: LinuxBlockIO): void {
  const bfq = exists(path.join(dir, 'blkio.bfq.weight'));
  const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
  const weightDevFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
  const needWeight = (what: string, file: string): void => {
    if (!exists(path.join(dir, file))) {
      throw new ConfigError(
        `cannot set ${what}: ${path.join(dir, file)} does not exist` +
          (bfq ? '' : ` (nor ${path.join(dir, file.replace('blkio.', 'blkio.bfq.'))}): no proportional-weight I/O scheduler (BFQ/CFQ) on this host`),
      );
    }
  };
  if (b.weight) {
    needWeight('linux.resources.blockIO.weight', weightFile);
    writeCg(dir, weightFile, fmtInt(b.weight, 'linux.resources.blockIO.weight'), 'linux.resources.blockIO.weight');
  }
  if (b.leafWeight) {
    needWeight('linux.resources.blockIO.leafWeight', 'blkio.leaf_weight');
    writeCg(dir, 'blkio.leaf_weight', fmtInt(b.leafWeight, 'linux.resources.blockIO.leafWeight'), 'linux.resources.blockIO.leafWeight');
  }
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    const what = `linux.resources.blockIO.weightDevice[${i}]`;
    const key = devKey(d.major, d.minor, what);
    if (d.weight) {
      needWeight(what, weightDevFile);
      writeCg(dir, weightDevFile, `${key} ${fmtInt(d.weight, `${what}.weight`)}`, what);
    }
    if (d.leafWeight) {
      needWeight(`${what}.leafWeight`, 'blkio.leaf_weight_device');
      writeCg(dir, 'blkio.leaf_weight_device', `${key} ${fmtInt(d.leafWeight, `${what}.leafWeight`)}`, what);
    }
  }
  const throttles: [keyof LinuxBlockIO, string][] = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'], ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'], ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
  ];
  for (const [field, file] of throttles) {
    for (const [i, d] of ((b[field] as { major: number; minor: number; rate: number }[] | undefined) ?? []).entries()) {
      const what = `linux.resources.blockIO.${field}[${i}]`;
      writeCg(dir, file, `${devKey(d.major, d.minor, what)} ${fmtInt(d.rate, `${what}.rate`)}`, what);
    }
  }
}

export function setHugetlbV1(dir: string, limits: LinuxHugepageLimit[]): void {
  for (const [i, l] of limits.entries()) {
    const file = `hugetlb.${l.pageSize}.limit_in_bytes`;
    checkPageSize(l.pageSize, file, dir);
    const v = fmtInt(l.limit, `linux.resources.hugepageLimits[${i}].limit`);
    writeCg(dir, file, v, `linux.resources.hugepageLimits[${i}]`);
    const rsvd = `hugetlb.${l.pageSize}.rsvd.limit_in_bytes`;
    if (exists(path.join(dir, rsvd))) writeCg(dir, rsvd, v, `linux.resources.hugepageLimits[${i}]`);
  }
}

export function setNetClsV1(dir: string, n: LinuxNetwork): void {
  if (n.classID != null) writeCg(dir, 'net_cls.classid', fmtInt(n.classID, 'linux.resources.network.classID'), 'linux.resources.network.classID');
}

export function setNetPrioV1(dir: string, n: LinuxNetwork): void {
  for (const [i, p] of (n.priorities ?? []).entries()) {
    const what = `linux.resources.network.priorities[${i}]`;
    if (typeof p.name !== 'string' || !/^[^\s/]+$/.test(p.name)) throw new ConfigError(`${what}.name ${JSON.stringify(p.name)} is not an interface name`);
    writeCg(dir, 'net_prio.ifpriomap', `${p.name} ${fmtInt(p.priority, `${what}.priority`)}`, what);
  }
}

// ---- devices ----------------------------------------------------------------------------------

/** The lines one rule becomes in devices.allow / devices.deny. */
export function deviceRuleLines(r: DeviceCgroupRule, i: number): string[] {
  const t = r.type ?? 'a';
  if (t !== 'a' && t !== 'b' && t !== 'c') {
    throw new ConfigError(`linux.resources.devices[${i}].type ${JSON.stringify(r.type)} must be "a", "b" or "c"`);
  }
  const major = r.major == null ? '*' : fmtInt(r.major, `linux.resources.devices[${i}].major`);
  const minor = r.minor == null ? '*' : fmtInt(r.minor, `linux.resources.devices[${i}].minor`);
  if (major.startsWith('-') || minor.startsWith('-')) {
    // runc spells "any" as -1
    return deviceRuleLines({ ...r, major: major.startsWith('-') ? null : r.major, minor: minor.startsWith('-') ? null : r.minor }, i);
  }
  const access = checkAccess(r.access, i);
  if (t !== 'a') return [`${t} ${major}:${minor} ${access}`];
  // The kernel reads "a" as "everything, rwm" whatever follows it, so only say "a" when that is meant.
  const full = new Set(access).size === 3;
  if (full && major === '*' && minor === '*') return ['a'];
  return [`c ${major}:${minor} ${access}`, `b ${major}:${minor} ${access}`];
}

export function setDevicesV1(dir: string, rules: readonly DeviceCgroupRule[], defaults: readonly DeviceCgroupRule[]): void {
  const lines: [boolean, string, string][] = [];
  for (const [i, r] of rules.entries()) {
    for (const l of deviceRuleLines(r, i)) lines.push([!!r.allow, l, `linux.resources.devices[${i}]`]);
  }
  for (const r of defaults) for (const l of deviceRuleLines(r, -1)) lines.push([true, l, 'the default device rules']);
  try {
    writeCg(dir, 'devices.deny', 'a', 'the device cgroup (deny all first)');
  } catch (e) {
    const kids = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    if (kids.length) {
      throw new ConfigError(`cannot reset the device rules of ${dir}: it has child cgroups (${kids.join(', ')}), and the kernel refuses "a" in devices.deny then`);
    }
    throw e;
  }
  for (const [allow, line, what] of lines) writeCg(dir, allow ? 'devices.allow' : 'devices.deny', line, what);
}

/**
 * The devices controller as the kernel keeps it: a default (allow all or deny all) and exceptions
 * keyed by exact "type major:minor" (the kernel only ever merges or removes exact matches), each
 * with r/w/m bits. In allow-all mode devices.list cannot show the exceptions (it prints "a *:* rwm").
 */
export interface DeviceState { allowAll: boolean; rules: Map<string, number> }

const ACCESS_BITS: Record<string, number> = { r: 1, w: 2, m: 4 };
const accessBitsOf = (a: string): number => [...a].reduce((n, c) => n | (ACCESS_BITS[c] ?? 0), 0);
const accessText = (bits: number): string => ['r', 'w', 'm'].filter((c) => bits & ACCESS_BITS[c]).join('');

/** One devices.allow (allow) or devices.deny line, applied as the kernel applies it. */
function applyDeviceLine(s: DeviceState, allow: boolean, line: string): void {
  if (line === 'a') {
    s.allowAll = allow;
    s.rules.clear();
    return;
  }
  const m = /^([abc]) (\S+:\S+) ([rwm]+)$/.exec(line);
  if (!m) throw new RuntimeError(`unexpected device rule line ${JSON.stringify(line)}`);
  const key = `${m[1]} ${m[2]}`;
  const bits = accessBitsOf(m[3]);
  // Allow in deny-all mode (and deny in allow-all mode) adds an exception; the other way removes one.
  if (allow !== s.allowAll) s.rules.set(key, (s.rules.get(key) ?? 0) | bits);
  else {
    const left = (s.rules.get(key) ?? 0) & ~bits;
    if (left) s.rules.set(key, left);
    else s.rules.delete(key);
  }
}

function readDeviceState(dir: string): DeviceState {
  const s: DeviceState = { allowAll: false, rules: new Map() };
  for (const line of (readCgOpt(dir, 'devices.list') ?? '').split('\n').filter(Boolean)) {
    if (/^a \*:\* rwm$/.test(line)) s.allowAll = true;   // allow-all: the exceptions are not listed
    else applyDeviceLine(s, true, line);
  }
  if (s.allowAll) s.rules.clear();
  return s;
}

/** The state create's writes (devices.deny "a", then each rule in order) would leave. */
function targetDeviceState(rules: readonly DeviceCgroupRule[], defaults: readonly DeviceCgroupRule[]): DeviceState {
  const s: DeviceState = { allowAll: false, rules: new Map() };
  for (const [i, r] of rules.entries()) for (const l of deviceRuleLines(r, i)) applyDeviceLine(s, !!r.allow, l);
  for (const r of defaults) for (const l of deviceRuleLines(r, -1)) applyDeviceLine(s, true, l);
  return s;
}

/**
 * The fewest writes that take `from` to `to`, none of which denies for a moment what both allow:
 * only a change of default (or leaving allow-all mode, whose exceptions cannot be read) resets the
 * exceptions with "a"; otherwise lost access is taken away and new access added, per exception.
 */
export function deviceTransition(from: DeviceState, to: DeviceState): [file: string, line: string][] {
  const out: [string, string][] = [];
  let old = from.rules;
  if (from.allowAll || from.allowAll !== to.allowAll) {
    out.push([to.allowAll ? 'devices.allow' : 'devices.deny', 'a']);
    old = new Map();
  }
  const addFile = to.allowAll ? 'devices.deny' : 'devices.allow';
  const removeFile = to.allowAll ? 'devices.allow' : 'devices.deny';
  for (const [key, bits] of [...old].sort()) {
    const dropped = bits & ~(to.rules.get(key) ?? 0);
    if (dropped) out.push([removeFile, `${key} ${accessText(dropped)}`]);
  }
  for (const [key, bits] of [...to.rules].sort()) {
    const gained = bits & ~(old.get(key) ?? 0);
    if (gained) out.push([addFile, `${key} ${accessText(gained)}`]);
  }
  return out;
}

/** Changes the device rules of a live cgroup to `rules` (+ defaults) with minimal transitions. */
export function updateDevicesV1(dir: string, rules: readonly DeviceCgroupRule[], defaults: readonly DeviceCgroupRule[]): void {
  const target = targetDeviceState(rules, defaults);
  for (const [file, line] of deviceTransition(readDeviceState(dir), target)) {
    writeCg(dir, file, line, 'linux.resources.devices');
  }
  const now = readDeviceState(dir);
  const same = now.allowAll === target.allowAll &&
    (target.allowAll || (now.rules.size === target.rules.size && [...target.rules].every(([k, v]) => now.rules.get(k) === v)));
  if (!same) {
    throw new RuntimeError(`the device rules of ${dir} did not take effect as computed (devices.list: ${JSON.stringify(readCgOpt(dir, 'devices.list'))})`);
  }
}

// ---- freezer ----------------------------------------------------------------------------------

function freezerState(dir: string): string {
  const s = readCgOpt(dir, 'freezer.state');
  if (s === undefined) throw new StateError(`cgroup ${dir} has no freezer.state (does the cgroup exist?)`);
  return s;
}

export function freezeV1(dir: string): void {
  const deadline = Date.now() + 5000;
  for (let i = 0; ; i++) {
    if (i % 50 === 49) {
      // Stuck in FREEZING (a task in an uninterruptible sleep): thaw and try again, as runc does.
      writeCg(dir, 'freezer.state', 'THAWED', 'the freezer (retry)');
      sleepSync(10);
    }
    writeCg(dir, 'freezer.state', 'FROZEN', 'the freezer (pause)');
    if (i % 25 === 24) sleepSync(10);
    const s = freezerState(dir);
    if (s === 'FROZEN') return;
    if (Date.now() > deadline) {
      writeCg(dir, 'freezer.state', 'THAWED', 'the freezer (undo pause)');
      throw new RuntimeError(`cgroup ${dir} did not freeze within 5 s (freezer.state stayed ${s}); it was thawed again`);
    }
    sleepSync(1);
  }
}

export function thawV1(dir: string): void {
  writeCg(dir, 'freezer.state', 'THAWED', 'the freezer (resume)');
  const deadline = Date.now() + 5000;
  while (freezerState(dir) !== 'THAWED') {
    if (Date.now() > deadline) throw new RuntimeError(`cgroup ${dir} did not thaw within 5 s`);
    sleepSync(1);
  }
}

/** Frozen by its own freezer.state (not merely through a frozen ancestor), as runc reports it. */
export function frozenV1(dir: string): boolean {
  for (let i = 0; i < 1000; i++) {
    const s = readCgOpt(dir, 'freezer.state');
    if (s === undefined || s === 'THAWED') return false;
    if (s === 'FROZEN') return readCgOpt(dir, 'freezer.self_freezing') !== '0';
    sleepSync(1); // FREEZING: wait for a stable state
  }
  return true;
}

// ---- stats ------------------------------------------------------------------------------------

function blkioEntries(text: string | undefined): { major: number; minor: number; op: string; value: number }[] {
  const out: { major: number; minor: number; op: string; value: number }[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, op, v] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m || op === undefined || v === undefined) continue;
    out.push({ major: Number(m[1]), minor: Number(m[2]), op, value: parseNum(v) });
  }
  return out;
}

function hugetlbStatsV1(dir: string): NonNullable<CgroupStats['hugetlb']> {
  const out: NonNullable<CgroupStats['hugetlb']> = {};
  for (const size of hugePageSizes()) {
    const usage = readCgOpt(dir, `hugetlb.${size}.usage_in_bytes`);
    if (usage === undefined) continue;
    out[size] = {
      usage: parseNum(usage),
      max: parseNum(readCgOpt(dir, `hugetlb.${size}.max_usage_in_bytes`)),
      failcnt: parseNum(readCgOpt(dir, `hugetlb.${size}.failcnt`)),
    };
  }
  return out;
}

// ---- manager ----------------------------------------------------------------------------------

export interface V1Options {
  /** Append runc's default device allow-list after the given device rules (default false). */
  defaultDeviceRules?: boolean;
}

interface Target {
  entry: DirEntry;
  v2: boolean;
}

export class V1Manager implements CgroupManager {
  readonly version = 1 as const;
  constructor(private entries: DirEntry[], private opts: V1Options = {}) {}

  /** The entry whose hierarchy carries `controller`, if any. */
  private target(controller: string): Target | undefined {
    const e = this.entries.find((x) => x.controllers.includes(controller));
    return e ? { entry: e, v2: !!e.unified } : undefined;
  }

  private need(controller: string, what: string, v1Only = false): Target {
    const t = this.target(controller);
    if (!t || (v1Only && t.v2)) {
      throw new ConfigError(`cannot set ${what}: the ${controller} cgroup controller is not mounted on this host (no ${controller} hierarchy in /proc/self/mountinfo)`);
    }
    if (t.v2) enableV2Controllers(t.entry.mountpoint, t.entry.dir, [controller], true);
    return t;
  }

  dirOf(controller: string): string | undefined {
    return this.target(controller)?.entry.dir;
  }

  create(resources: LinuxResources | undefined): void {
    const fz = this.freezer();
    if (fz && exists(fz.entry.dir) && (fz.v2 ? frozenV2(fz.entry.dir) : frozenV1(fz.entry.dir))) {
      const how = fz.v2 ? `echo 0 > ${path.join(fz.entry.dir, 'cgroup.freeze')}` : `echo THAWED > ${path.join(fz.entry.dir, 'freezer.state')}`;
      throw new StateError(`cgroup ${fz.entry.dir} already exists and is frozen; thaw it (${how}) or use another cgroupsPath`);
    }
    this.preflight(resources);
    const made: string[] = [];
    const createdNow: DirEntry[] = [];
    try {
      for (const e of this.entries) {
        const existed = exists(e.dir);
        made.push(...mkdirChain(e.mountpoint, e.dir));
        if (!existed) {
          e.created = true;
          createdNow.push(e);
        }
      }
      const cs = this.target('cpuset');
      if (cs && !cs.v2) initCpusetV1(cs.entry.mountpoint, cs.entry.dir);
      this.apply(resources ?? {}, false);
    } catch (e) {
      rmdirQuiet(made);
      for (const c of createdNow) c.created = false;
      throw e;
    }
  }

  /** Refuse what this layout can never do before touching anything. */
  private preflight(r: LinuxResources | undefined): void {
    if (!r) return;
    if (r.unified && Object.keys(r.unified).length) {
      throw new ConfigError(`linux.resources.unified (${Object.keys(r.unified).join(', ')}) needs a cgroup v2 host; this host uses cgroup v1 (/sys/fs/cgroup is not cgroup2)`);
    }
    if (r.network?.classID != null && !this.target('net_cls')) {
      throw new ConfigError('cannot set linux.resources.network.classID: the net_cls cgroup controller is not mounted on this host (no net_cls hierarchy in /proc/self/mountinfo)');
    }
    if (r.network?.priorities?.length && !this.target('net_prio')) {
      throw new ConfigError('cannot set linux.resources.network.priorities: the net_prio cgroup controller is not mounted on this host (no net_prio hierarchy in /proc/self/mountinfo)');
    }
    if (r.devices?.length && !this.target('devices')) {
      throw new ConfigError('cannot apply linux.resources.devices: the devices cgroup controller is not mounted on this host');
    }
    if (r.hugepageLimits?.length && !this.target('hugetlb')) {
      throw new ConfigError('cannot set linux.resources.hugepageLimits: no hugetlb controller, neither as a v1 hierarchy nor in the cgroup2 mount');
    }
  }

  private apply(r: LinuxResources, update: boolean): void {
    if (memoryRequested(r.memory)) {
      const t = this.need('memory', 'linux.resources.memory');
      if (t.v2) setMemoryV2(t.entry.dir, r.memory!, update);
      else setMemoryV1(t.entry.dir, r.memory!, update);
    }
    if (r.cpu && (r.cpu.cpus || r.cpu.mems)) {
      const t = this.need('cpuset', 'linux.resources.cpu.cpus/mems');
      if (t.v2) setCpusetV2(t.entry.dir, r.cpu);
      else setCpusetV1(t.entry.dir, r.cpu);
    }
    if (cpuRequested(r.cpu)) {
      const t = this.need('cpu', 'linux.resources.cpu');
      if (t.v2) setCpuV2(t.entry.dir, r.cpu!);
      else setCpuV1(t.entry.dir, r.cpu!);
    }
    if (r.pids) {
      const t = this.need('pids', 'linux.resources.pids.limit');
      if (t.v2) setPidsV2(t.entry.dir, r.pids);
      else writeCg(t.entry.dir, 'pids.max', pidsValue(r.pids.limit), 'linux.resources.pids.limit');
    }
    if (blkioRequested(r.blockIO)) {
      const v1 = this.target('blkio');
      if (v1) setBlkioV1(v1.entry.dir, r.blockIO!);
      else setIoV2(this.need('io', 'linux.resources.blockIO').entry.dir, r.blockIO!);
    }
    if (r.hugepageLimits?.length) {
      const t = this.need('hugetlb', 'linux.resources.hugepageLimits');
      if (t.v2) setHugetlbV2(t.entry.dir, r.hugepageLimits);
      else setHugetlbV1(t.entry.dir, r.hugepageLimits);
    }
    if (r.rdma && rdmaLines(r.rdma).length) {
      const t = this.need('rdma', 'linux.resources.rdma');
      if (t.v2) setRdmaV2(t.entry.dir, r.rdma);
      else for (const l of rdmaLines(r.rdma)) writeCg(t.entry.dir, 'rdma.max', l, 'linux.resources.rdma');
    }
    if (r.network?.classID != null) setNetClsV1(this.need('net_cls', 'linux.resources.network.classID', true).entry.dir, r.network);
    if (r.network?.priorities?.length) setNetPrioV1(this.need('net_prio', 'linux.resources.network.priorities', true).entry.dir, r.network);
    // Device rules are written only when given (the caller builds the full list, runc's defaults
    // included, or asks for them with defaultDeviceRules); without a list the dir is left as made.
    if (r.devices) {
      const t = this.target('devices');
      const defaults = this.opts.defaultDeviceRules ? DEFAULT_DEVICE_RULES : [];
      // A running container's devices must never be denied for a moment: update transitions.
      if (t && !t.v2) (update ? updateDevicesV1 : setDevicesV1)(t.entry.dir, r.devices, defaults);
    }
  }

  update(resources: LinuxResources): void {
    this.preflight(resources);
    this.apply(resources, true);
  }

  procsFiles(): string[] {
    return this.entries.map((e) => path.join(e.dir, 'cgroup.procs'));
  }

  pids(): number[] {
    const s = new Set<number>();
    for (const e of this.entries) collectPids(e.dir, s);
    return [...s].sort((a, b) => a - b);
  }

  destroy(): void {
    let first: unknown;
    const deadline = Date.now() + 1000;
    for (const e of this.entries) {
      if (!e.created && !e.owned) continue;
      try {
        removeCgroupTree(e.dir, deadline);
        if (e.owned) removeEmptyParent(e.dir);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** The freezer to use: the v1 freezer hierarchy, else (hybrid) the cgroup2 dir's cgroup.freeze. */
  private freezer(): Target | undefined {
    const t = this.target('freezer');
    if (t && !t.v2) return t;
    const u = this.entries.find((e) => e.unified);
    return u ? { entry: u, v2: true } : undefined;
  }

  private needFreezer(op: string): Target {
    const t = this.freezer();
    if (!t) throw new ConfigError(`cannot ${op}: the freezer cgroup controller is not mounted on this host`);
    return t;
  }

  freeze(): void {
    const t = this.needFreezer('pause');
    if (t.v2) freezeV2(t.entry.dir, true);
    else freezeV1(t.entry.dir);
  }

  thaw(): void {
    const t = this.needFreezer('resume');
    if (t.v2) freezeV2(t.entry.dir, false);
    else thawV1(t.entry.dir);
  }

  frozen(): boolean {
    const t = this.freezer();
    if (!t) return false;
    return t.v2 ? frozenV2(t.entry.dir) : frozenV1(t.entry.dir);
  }

  stats(): CgroupStats {
    const out: CgroupStats = {};
    const acct = this.target('cpuacct');
    const cpu = this.target('cpu');
    if (acct && !acct.v2 && exists(acct.entry.dir)) {
      const d = acct.entry.dir;
      const total = parseNum(readCgOpt(d, 'cpuacct.usage'));
      let user = 0;
      let kernel = 0;
      const u = readCgOpt(d, 'cpuacct.usage_user');
      if (u !== undefined) {
        user = parseNum(u);
        kernel = parseNum(readCgOpt(d, 'cpuacct.usage_sys'));
      } else {
        const st = parseFlatKeyed(readCgOpt(d, 'cpuacct.stat'));
        user = (st.user ?? 0) * 1e7; // USER_HZ 100 → ns
        kernel = (st.system ?? 0) * 1e7;
      }
      const percpu = (readCgOpt(d, 'cpuacct.usage_percpu') ?? '').split(/\s+/).filter(Boolean).map(Number);
      out.cpu = { usage: { total, user, kernel, percpu } };
    }
    if (cpu && !cpu.v2 && exists(cpu.entry.dir)) {
      const s = parseFlatKeyed(readCgOpt(cpu.entry.dir, 'cpu.stat'));
      out.cpu ??= { usage: { total: 0, user: 0, kernel: 0 } };
      out.cpu.throttling = { periods: s.nr_periods ?? 0, throttledPeriods: s.nr_throttled ?? 0, throttledTime: s.throttled_time ?? 0 };
    }
    const mem = this.target('memory');
    if (mem && !mem.v2 && exists(mem.entry.dir)) {
      const d = mem.entry.dir;
      const raw = parseFlatKeyed(readCgOpt(d, 'memory.stat'));
      out.memory = {
        usage: {
          usage: parseNum(readCgOpt(d, 'memory.usage_in_bytes')),
          max: parseNum(readCgOpt(d, 'memory.max_usage_in_bytes')),
          limit: parseNum(readCgOpt(d, 'memory.limit_in_bytes')),
          failcnt: parseNum(readCgOpt(d, 'memory.failcnt')),
        },
        cache: raw.cache ?? 0,
        raw,
      };
      const entry = (prefix: string) => ({
        usage: parseNum(readCgOpt(d, `${prefix}.usage_in_bytes`)),
        max: parseNum(readCgOpt(d, `${prefix}.max_usage_in_bytes`)),
        limit: parseNum(readCgOpt(d, `${prefix}.limit_in_bytes`)),
        failcnt: parseNum(readCgOpt(d, `${prefix}.failcnt`)),
      });
      if (exists(path.join(d, 'memory.memsw.usage_in_bytes'))) out.memory.swap = entry('memory.memsw');
      if (exists(path.join(d, 'memory.kmem.usage_in_bytes'))) out.memory.kernel = entry('memory.kmem');
      if (exists(path.join(d, 'memory.kmem.tcp.usage_in_bytes'))) out.memory.kernelTCP = entry('memory.kmem.tcp');
    }
    const pids = this.target('pids');
    if (pids && !pids.v2 && exists(pids.entry.dir)) {
      const max = readCgOpt(pids.entry.dir, 'pids.max');
      out.pids = { current: parseNum(readCgOpt(pids.entry.dir, 'pids.current')), limit: max === undefined || max === 'max' ? 0 : parseNum(max) };
    }
    const blk = this.target('blkio');
    if (blk && !blk.v2 && exists(blk.entry.dir)) {
      const d = blk.entry.dir;
      out.blkio = {
        ioServiceBytesRecursive: blkioEntries(readCgOpt(d, 'blkio.throttle.io_service_bytes_recursive')),
        ioServicedRecursive: blkioEntries(readCgOpt(d, 'blkio.throttle.io_serviced_recursive')),
      };
    }
    const huge = this.target('hugetlb');
    if (huge && exists(huge.entry.dir)) {
      const h = huge.v2 ? hugetlbStatsV2(huge.entry.dir) : hugetlbStatsV1(huge.entry.dir);
      if (Object.keys(h).length) out.hugetlb = h;
    }
    return out;
  }

  mounts(): CgroupMountInfo {
    const entries: CgroupMountInfo['entries'] = [];
    const symlinks: CgroupMountInfo['symlinks'] = [];
    for (const e of this.entries) {
      const name = path.basename(e.mountpoint);
      if (e.unified) {
        entries.push({ name, hostDir: e.dir, fsOptions: '', fsType: 'cgroup2' });
        continue;
      }
      entries.push({ name, hostDir: e.dir, fsOptions: e.controllers.join(','), fsType: 'cgroup' });
      if (name.includes(',')) {
        for (const part of name.split(',')) if (part && part !== name) symlinks.push({ name: part, target: name });
      }
    }
    return { version: 1, entries, symlinks };
  }

  toJSON(): SavedCgroup {
    return { version: 1, dirs: this.entries.map((e) => ({ ...e, controllers: [...e.controllers] })) };
  }
}
