// cgroup v2 ("unified"): the resource files of one cgroup2 directory, and the manager for pure v2 hosts.
// The setters are also used by the v1 manager on hybrid hosts for controllers that only the cgroup2
// mount has (e.g. hugetlb).

import * as path from 'node:path';
import { ConfigError, RuntimeError, StateError } from '../errors.ts';
import type {
  LinuxBlockIO, LinuxCPU, LinuxHugepageLimit, LinuxMemory, LinuxResources,
} from '../spec-types.ts';
import type { CgroupManager, CgroupMountInfo, CgroupStats, SavedCgroup } from './index.ts';
import {
  type DirEntry, UNLIMITED, checkPageSize, collectPids, devKey, exists, fmtInt, hugePageSizes, mkdirChain, parseFlatKeyed,
  parseNum, pathChain, readCgOpt, removeCgroupTree, removeEmptyParent, rmdirQuiet, sleepSync, writeCg,
} from './common.ts';

// ---- conversions (runc's) -------------------------------------------------------------------

/** cpu.shares (2..262144) → cpu.weight (1..10000): 1 + ((shares-2)*9999)/262142, integer division. */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** blkio.weight (10..1000) → io.weight (1..10000). */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * linux.resources.memory.swap is memory+swap (v1 semantics); memory.swap.max is swap alone.
 * Returns -1 for "max", 0 for "leave alone", otherwise the swap-only value.
 */
export function swapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) {
    throw new ConfigError(`linux.resources.memory.swap ${swap} needs a memory limit too (memory.swap.max is swap beyond the limit)`);
  }
  if (limit < 0) throw new ConfigError(`linux.resources.memory.limit ${limit} is invalid`);
  if (swap < limit) {
    throw new ConfigError(`linux.resources.memory.swap (${swap}, memory+swap) must be >= linux.resources.memory.limit (${limit})`);
  }
  return swap - limit;
}

function numOrMax(v: number, what: string): string {
  return v === -1 ? 'max' : fmtInt(v, what);
}

/** Names the controller behind a v2 file key, e.g. "memory" for "memory.max". */
function controllerOf(file: string): string {
  return file.split('.', 1)[0];
}

export function v2Controllers(dir: string): Set<string> {
  return new Set((readCgOpt(dir, 'cgroup.controllers') ?? '').split(/\s+/).filter(Boolean));
}

/** Throws a ConfigError naming the file when the cgroup lacks the controller behind it. */
export function requireV2(dir: string, controller: string, what: string, file: string): void {
  const have = v2Controllers(dir);
  if (have.has(controller)) return;
  throw new ConfigError(
    `cannot set ${what}: ${path.join(dir, file)} does not exist because the ${controller} controller is not enabled for ${dir} ` +
      `(its cgroup.controllers: ${[...have].join(' ') || 'none'}; the parent's cgroup.subtree_control must list it, ` +
      'which fails if the parent holds processes)',
  );
}

// ---- setters ----------------------------------------------------------------------------------

export function setMemoryV2(dir: string, m: LinuxMemory, update: boolean): void {
  const limit = m.limit ?? 0;
  const swap = m.swap ?? 0;
  const reservation = m.reservation ?? 0;
  const any = limit !== 0 || swap !== 0 || reservation !== 0 || m.swappiness != null || m.disableOOMKiller ||
    m.kernel != null || m.kernelTCP != null || m.useHierarchy === false;
  if (!any) return;
  requireV2(dir, 'memory', 'linux.resources.memory', 'memory.max');
  if (m.kernel != null || m.kernelTCP != null) {
    throw new ConfigError('linux.resources.memory.kernel/kernelTCP: cgroup v2 has no kernel memory limits (kernel memory is charged to memory.max); remove them');
  }
  if (m.swappiness != null) {
    throw new ConfigError(`linux.resources.memory.swappiness (${m.swappiness}): cgroup v2 has no memory.swappiness; remove it`);
  }
  if (m.disableOOMKiller) {
    throw new ConfigError('linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer (no memory.oom_control); remove it');
  }
  if (m.useHierarchy === false) {
    throw new ConfigError('linux.resources.memory.useHierarchy=false: cgroup v2 is always hierarchical');
  }
  if (update && m.checkBeforeUpdate && limit > 0) {
    const cur = parseNum(readCgOpt(dir, 'memory.current'));
    if (cur >= limit) {
      throw new ConfigError(`linux.resources.memory.limit ${limit} is not above the current usage ${cur} (${path.join(dir, 'memory.current')}); checkBeforeUpdate refuses it`);
    }
  }
  const sw = swapToV2(swap, limit);
  let swapStr = sw === 0 ? '' : numOrMax(sw, 'linux.resources.memory.swap');
  if (sw === 0 && swap > 0) swapStr = '0'; // swap == limit: no swap at all
  if (swapStr !== '') {
    if (exists(path.join(dir, 'memory.swap.max'))) writeCg(dir, 'memory.swap.max', swapStr, 'linux.resources.memory.swap');
    else if (swapStr !== 'max' && swapStr !== '0') {
      throw new ConfigError(`cannot set linux.resources.memory.swap: ${path.join(dir, 'memory.swap.max')} does not exist (swap accounting is off on this host)`);
    }
  }
  if (limit !== 0) writeCg(dir, 'memory.max', numOrMax(limit, 'linux.resources.memory.limit'), 'linux.resources.memory.limit');
  if (reservation !== 0) writeCg(dir, 'memory.low', numOrMax(reservation, 'linux.resources.memory.reservation'), 'linux.resources.memory.reservation');
}

export function setCpuV2(dir: string, c: LinuxCPU): void {
  const rt = c.realtimeRuntime != null && c.realtimeRuntime !== 0 || c.realtimePeriod != null && c.realtimePeriod !== 0;
  if (rt) {
    throw new ConfigError('linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no real-time CPU bandwidth files (cpu.rt_*); remove them');
  }
  const shares = c.shares ?? 0;
  const quota = c.quota ?? 0;
  const period = c.period ?? 0;
  if (!shares && !quota && !period && c.burst == null && c.idle == null) return;
  requireV2(dir, 'cpu', 'linux.resources.cpu', 'cpu.max');
  if (c.idle != null && c.idle === 0) writeCg(dir, 'cpu.idle', '0', 'linux.resources.cpu.idle');
  if (shares) {
    if (!Number.isInteger(shares) || shares < 2 || shares > 262144) {
      throw new ConfigError(`linux.resources.cpu.shares ${shares} is out of range: cpu.weight can express shares 2..262144`);
    }
    writeCg(dir, 'cpu.weight', String(cpuSharesToWeight(shares)), `linux.resources.cpu.shares (${shares} → cpu.weight)`);
  }
  let burst = '';
  if (c.burst != null) {
    burst = fmtInt(c.burst, 'linux.resources.cpu.burst');
    try {
      writeCg(dir, 'cpu.max.burst', burst, 'linux.resources.cpu.burst');
      burst = '';
    } catch (e) {
      // A burst above the old quota is refused (EINVAL); retry once the quota is written.
      if (!(e instanceof ConfigError) || !/EINVAL/.test(e.message) || !quota) throw e;
    }
  }
  if (quota || period) {
    let q: string;
    if (quota > 0) q = fmtInt(quota, 'linux.resources.cpu.quota');
    else if (quota < 0) q = 'max';
    else q = (readCgOpt(dir, 'cpu.max') ?? 'max').split(/\s+/)[0]; // only the period changes
    const v = period ? `${q} ${fmtInt(period, 'linux.resources.cpu.period')}` : q;
    writeCg(dir, 'cpu.max', v, 'linux.resources.cpu.quota/period');
    if (burst) writeCg(dir, 'cpu.max.burst', burst, 'linux.resources.cpu.burst');
  }
  if (c.idle != null && c.idle !== 0) writeCg(dir, 'cpu.idle', fmtInt(c.idle, 'linux.resources.cpu.idle'), 'linux.resources.cpu.idle');
}

export function setCpusetV2(dir: string, c: LinuxCPU): void {
  if (!c.cpus && !c.mems) return;
  requireV2(dir, 'cpuset', 'linux.resources.cpu.cpus/mems', 'cpuset.cpus');
  if (c.cpus) writeCg(dir, 'cpuset.cpus', c.cpus, 'linux.resources.cpu.cpus');
  if (c.mems) writeCg(dir, 'cpuset.mems', c.mems, 'linux.resources.cpu.mems');
}

export function pidsValue(limit: number): string {
  return limit > 0 ? fmtInt(limit, 'linux.resources.pids.limit') : 'max';
}

export function setPidsV2(dir: string, pids: { limit: number }): void {
  requireV2(dir, 'pids', 'linux.resources.pids.limit', 'pids.max');
  writeCg(dir, 'pids.max', pidsValue(pids.limit), 'linux.resources.pids.limit');
}

export function setIoV2(dir: string, b: LinuxBlockIO): void {
  const any = b.weight || b.leafWeight || b.weightDevice?.length || b.throttleReadBpsDevice?.length ||
    b.throttleWriteBpsDevice?.length || b.throttleReadIOPSDevice?.length || b.throttleWriteIOPSDevice?.length;
  if (!any) return;
  requireV2(dir, 'io', 'linux.resources.blockIO', 'io.max');
  if (b.leafWeight || b.weightDevice?.some((d) => d.leafWeight)) {
    throw new ConfigError('linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights (no io.leaf_weight); remove it');
  }
  const bfq = exists(path.join(dir, 'io.bfq.weight'));
  if (b.weight) {
    if (bfq) writeCg(dir, 'io.bfq.weight', fmtInt(b.weight, 'linux.resources.blockIO.weight'), 'linux.resources.blockIO.weight');
    else {
      if (!exists(path.join(dir, 'io.weight'))) {
        throw new ConfigError(`cannot set linux.resources.blockIO.weight: neither ${path.join(dir, 'io.bfq.weight')} nor ${path.join(dir, 'io.weight')} exists (no BFQ or io.cost here)`);
      }
      writeCg(dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), `linux.resources.blockIO.weight (${b.weight} → io.weight)`);
    }
  }
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    if (!d.weight) continue;
    const key = devKey(d.major, d.minor, `linux.resources.blockIO.weightDevice[${i}]`);
    if (bfq) writeCg(dir, 'io.bfq.weight', `${key} ${fmtInt(d.weight, 'weight')}`, `linux.resources.blockIO.weightDevice[${i}]`);
    else {
      if (!exists(path.join(dir, 'io.weight'))) {
        throw new ConfigError(`cannot set linux.resources.blockIO.weightDevice[${i}]: neither ${path.join(dir, 'io.bfq.weight')} nor ${path.join(dir, 'io.weight')} exists`);
      }
      writeCg(dir, 'io.weight', `${key} ${blkioWeightToIoWeight(d.weight)}`, `linux.resources.blockIO.weightDevice[${i}]`);
    }
  }
  const throttles: [keyof LinuxBlockIO, string][] = [
    ['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'],
    ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops'],
  ];
  for (const [field, key] of throttles) {
    for (const [i, d] of ((b[field] as { major: number; minor: number; rate: number }[] | undefined) ?? []).entries()) {
      const what = `linux.resources.blockIO.${field}[${i}]`;
      const rate = d.rate === 0 ? 'max' : fmtInt(d.rate, `${what}.rate`);
      writeCg(dir, 'io.max', `${devKey(d.major, d.minor, what)} ${key}=${rate}`, what);
    }
  }
}

export function setHugetlbV2(dir: string, limits: LinuxHugepageLimit[]): void {
  if (!limits.length) return;
  requireV2(dir, 'hugetlb', 'linux.resources.hugepageLimits', `hugetlb.${limits[0].pageSize}.max`);
  for (const [i, l] of limits.entries()) {
    const file = `hugetlb.${l.pageSize}.max`;
    checkPageSize(l.pageSize, file, dir);
    const v = l.limit === -1 ? 'max' : fmtInt(l.limit, `linux.resources.hugepageLimits[${i}].limit`);
    writeCg(dir, file, v, `linux.resources.hugepageLimits[${i}]`);
    const rsvd = `hugetlb.${l.pageSize}.rsvd.max`;
    if (exists(path.join(dir, rsvd))) writeCg(dir, rsvd, v, `linux.resources.hugepageLimits[${i}]`);
  }
}

export function rdmaLines(rdma: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [devName, v] of Object.entries(rdma)) {
    const o = (v ?? {}) as { hcaHandles?: number; hcaObjects?: number };
    const parts: string[] = [];
    if (o.hcaHandles != null) parts.push(`hca_handle=${fmtInt(o.hcaHandles, `linux.resources.rdma.${devName}.hcaHandles`)}`);
    if (o.hcaObjects != null) parts.push(`hca_object=${fmtInt(o.hcaObjects, `linux.resources.rdma.${devName}.hcaObjects`)}`);
    if (!parts.length) continue;
    if (!/^[^\s]+$/.test(devName)) throw new ConfigError(`linux.resources.rdma: invalid device name ${JSON.stringify(devName)}`);
    out.push(`${devName} ${parts.join(' ')}`);
  }
  return out;
}

export function setRdmaV2(dir: string, rdma: Record<string, unknown>): void {
  const lines = rdmaLines(rdma);
  if (!lines.length) return;
  requireV2(dir, 'rdma', 'linux.resources.rdma', 'rdma.max');
  for (const l of lines) writeCg(dir, 'rdma.max', l, 'linux.resources.rdma');
}

export function setUnifiedV2(dir: string, unified: Record<string, string>): void {
  const have = v2Controllers(dir);
  for (const [k, v] of Object.entries(unified)) {
    const what = `linux.resources.unified[${JSON.stringify(k)}]`;
    if (!/^[a-z_]+\.[A-Za-z0-9_.-]+$/.test(k)) {
      throw new ConfigError(`${what}: a key must be a file name of the form CONTROLLER.PARAMETER`);
    }
    if (typeof v !== 'string') throw new ConfigError(`${what}: the value must be a string`);
    const ctrl = controllerOf(k);
    if (!exists(path.join(dir, k))) {
      if (ctrl !== 'cgroup' && !have.has(ctrl)) {
        throw new ConfigError(`${what}: ${path.join(dir, k)} does not exist because controller ${JSON.stringify(ctrl)} is not available in ${dir} (cgroup.controllers: ${[...have].join(' ') || 'none'})`);
      }
      throw new ConfigError(`${what}: ${path.join(dir, k)} does not exist on this kernel`);
    }
    writeCg(dir, k, v, what);
  }
}

/** All of linux.resources that a cgroup2 directory can take (no devices: that is an eBPF program). */
export function applyV2(dir: string, r: LinuxResources, update: boolean): void {
  if (r.network && (r.network.classID != null || r.network.priorities?.length)) {
    throw new ConfigError('linux.resources.network (classID/priorities) needs the v1 net_cls/net_prio controllers, which cgroup v2 does not have; remove it');
  }
  if (r.memory) setMemoryV2(dir, r.memory, update);
  if (r.cpu) {
    setCpusetV2(dir, r.cpu);
    setCpuV2(dir, r.cpu);
  }
  if (r.pids) setPidsV2(dir, r.pids);
  if (r.blockIO) setIoV2(dir, r.blockIO);
  if (r.hugepageLimits) setHugetlbV2(dir, r.hugepageLimits);
  if (r.rdma) setRdmaV2(dir, r.rdma);
  if (r.unified) setUnifiedV2(dir, r.unified);
}

// ---- freezer ----------------------------------------------------------------------------------

function eventsFrozen(dir: string): boolean | undefined {
  const ev = readCgOpt(dir, 'cgroup.events');
  if (ev === undefined) return undefined;
  return parseFlatKeyed(ev).frozen === 1;
}

export function freezeV2(dir: string, freeze: boolean): void {
  if (!exists(path.join(dir, 'cgroup.freeze'))) {
    if (!exists(dir)) throw new StateError(`cannot ${freeze ? 'freeze' : 'thaw'}: cgroup ${dir} does not exist`);
    throw new ConfigError(`cannot ${freeze ? 'freeze' : 'thaw'} ${dir}: ${path.join(dir, 'cgroup.freeze')} does not exist (kernel older than 5.2?)`);
  }
  writeCg(dir, 'cgroup.freeze', freeze ? '1' : '0', freeze ? 'the freezer (pause)' : 'the freezer (resume)');
  const deadline = Date.now() + 5000;
  let delay = 1;
  for (;;) {
    const f = eventsFrozen(dir);
    if (f === undefined || f === freeze) return;
    if (Date.now() > deadline) {
      if (freeze) writeCg(dir, 'cgroup.freeze', '0', 'the freezer (undo pause)');
      throw new RuntimeError(`cgroup ${dir} did not become ${freeze ? 'frozen' : 'thawed'} within 5 s (cgroup.events says frozen ${f ? 1 : 0})`);
    }
    sleepSync(delay);
    delay = Math.min(delay * 2, 20);
  }
}

export function frozenV2(dir: string): boolean {
  return readCgOpt(dir, 'cgroup.freeze') === '1';
}

// ---- stats ------------------------------------------------------------------------------------

/** hugetlb.<size>.current / .events (max) of a cgroup2 dir, for each size the kernel offers; {} without the controller. */
export function hugetlbStatsV2(dir: string): NonNullable<CgroupStats['hugetlb']> {
  const out: NonNullable<CgroupStats['hugetlb']> = {};
  for (const size of hugePageSizes()) {
    const cur = readCgOpt(dir, `hugetlb.${size}.current`);
    if (cur === undefined) continue;
    out[size] = { usage: parseNum(cur), max: 0, failcnt: parseFlatKeyed(readCgOpt(dir, `hugetlb.${size}.events`)).max ?? 0 };
  }
  return out;
}

export function statsV2(dir: string): CgroupStats {
  const out: CgroupStats = {};
  const cpu = readCgOpt(dir, 'cpu.stat');
  if (cpu !== undefined) {
    const s = parseFlatKeyed(cpu);
    out.cpu = {
      usage: { total: (s.usage_usec ?? 0) * 1000, user: (s.user_usec ?? 0) * 1000, kernel: (s.system_usec ?? 0) * 1000 },
    };
    if ('nr_periods' in s) {
      out.cpu.throttling = { periods: s.nr_periods ?? 0, throttledPeriods: s.nr_throttled ?? 0, throttledTime: (s.throttled_usec ?? 0) * 1000 };
    }
  }
  const cur = readCgOpt(dir, 'memory.current');
  if (cur !== undefined) {
    const usage = parseNum(cur);
    const raw = parseFlatKeyed(readCgOpt(dir, 'memory.stat'));
    const events = parseFlatKeyed(readCgOpt(dir, 'memory.events'));
    out.memory = {
      usage: { usage, max: parseNum(readCgOpt(dir, 'memory.peak')), limit: parseNum(readCgOpt(dir, 'memory.max') ?? 'max'), failcnt: events.max ?? 0 },
      cache: raw.file ?? 0,
      raw,
    };
    const swapCur = readCgOpt(dir, 'memory.swap.current');
    if (swapCur !== undefined) {
      // Like runc: report memory+swap, as v1's memsw files do.
      const swapMax = readCgOpt(dir, 'memory.swap.max') ?? 'max';
      const limit = out.memory.usage.limit;
      out.memory.swap = {
        usage: parseNum(swapCur) + usage,
        limit: swapMax === 'max' || limit === UNLIMITED ? UNLIMITED : parseNum(swapMax) + limit,
      };
    }
  }
  const pc = readCgOpt(dir, 'pids.current');
  if (pc !== undefined) {
    const max = readCgOpt(dir, 'pids.max');
    out.pids = { current: parseNum(pc), limit: max === undefined || max === 'max' ? 0 : parseNum(max) };
  }
  const io = readCgOpt(dir, 'io.stat');
  if (io !== undefined) {
    const bytes: { major: number; minor: number; op: string; value: number }[] = [];
    const ios: { major: number; minor: number; op: string; value: number }[] = [];
    for (const line of io.split('\n')) {
      const [dev, ...kvs] = line.trim().split(/\s+/);
      const m = /^(\d+):(\d+)$/.exec(dev ?? '');
      if (!m) continue;
      const major = Number(m[1]);
      const minor = Number(m[2]);
      for (const kv of kvs) {
        const [k, v] = kv.split('=');
        const value = parseNum(v);
        if (k === 'rbytes') bytes.push({ major, minor, op: 'Read', value });
        else if (k === 'wbytes') bytes.push({ major, minor, op: 'Write', value });
        else if (k === 'rios') ios.push({ major, minor, op: 'Read', value });
        else if (k === 'wios') ios.push({ major, minor, op: 'Write', value });
      }
    }
    out.blkio = { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
  }
  const huge = hugetlbStatsV2(dir);
  if (Object.keys(huge).length) out.hugetlb = huge;
  return out;
}

// ---- manager ----------------------------------------------------------------------------------

export interface V2Options {
  /** The caller installs a device eBPF program itself; don't refuse linux.resources.devices. */
  devicesHandledExternally?: boolean;
}

/** Enables `controllers` (or all the parent offers) in the subtree_control of every ancestor of `dir`. */
export function enableV2Controllers(mountpoint: string, dir: string, controllers: string[] | 'all', strict: boolean): void {
  const chain = [mountpoint, ...pathChain(mountpoint, dir)];
  chain.pop(); // not the leaf: it will hold processes
  for (const d of chain) {
    const avail = v2Controllers(d);
    const enabled = new Set((readCgOpt(d, 'cgroup.subtree_control') ?? '').split(/\s+/).filter(Boolean));
    const want = (controllers === 'all' ? [...avail] : controllers).filter((c) => !enabled.has(c));
    if (!want.length) continue;
    try {
      writeCg(d, 'cgroup.subtree_control', want.map((c) => `+${c}`).join(' '), 'cgroup.subtree_control');
    } catch {
      // One by one, so that one refused controller does not keep the others off.
      for (const c of want) {
        try {
          writeCg(d, 'cgroup.subtree_control', `+${c}`, 'cgroup.subtree_control');
        } catch (e) {
          if (strict) {
            throw new ConfigError(
              `cannot enable the ${c} controller for ${dir}: writing "+${c}" to ${path.join(d, 'cgroup.subtree_control')} failed ` +
                `(${(e as Error).message.replace(/^cannot set [^:]*: /, '')}); a cgroup that holds processes cannot delegate controllers`,
            );
          }
        }
      }
    }
  }
}

export class V2Manager implements CgroupManager {
  readonly version = 2 as const;
  constructor(private entry: DirEntry, private opts: V2Options = {}) {}

  get dir(): string {
    return this.entry.dir;
  }

  create(resources: LinuxResources | undefined): void {
    const { dir, mountpoint } = this.entry;
    if (exists(dir) && frozenV2(dir)) {
      throw new StateError(`cgroup ${dir} already exists and is frozen; thaw it (echo 0 > ${path.join(dir, 'cgroup.freeze')}) or use another cgroupsPath`);
    }
    this.preflight(resources);
    const existed = exists(dir);
    const made = mkdirChain(mountpoint, dir);
    if (!existed) this.entry.created = true;
    try {
      enableV2Controllers(mountpoint, dir, 'all', false);
      if (resources) applyV2(dir, resources, false);
    } catch (e) {
      rmdirQuiet(made);
      if (!existed) this.entry.created = false;
      throw e;
    }
  }

  private preflight(r: LinuxResources | undefined): void {
    if (r?.devices?.length && !this.opts.devicesHandledExternally) {
      throw new ConfigError(
        `linux.resources.devices has ${r.devices.length} rule(s), but on cgroup v2 device rules need an eBPF device program, ` +
          'which Berth does not load yet; remove the rules or run on a cgroup v1 host',
      );
    }
  }

  update(resources: LinuxResources): void {
    this.preflight(resources);
    applyV2(this.entry.dir, resources, true);
  }

  procsFiles(): string[] {
    return [path.join(this.entry.dir, 'cgroup.procs')];
  }

  pids(): number[] {
    const s = new Set<number>();
    collectPids(this.entry.dir, s);
    return [...s].sort((a, b) => a - b);
  }

  destroy(): void {
    if (this.entry.created || this.entry.owned) removeCgroupTree(this.entry.dir);
    if (this.entry.owned) removeEmptyParent(this.entry.dir);
  }

  freeze(): void {
    freezeV2(this.entry.dir, true);
  }

  thaw(): void {
    freezeV2(this.entry.dir, false);
  }

  frozen(): boolean {
    return frozenV2(this.entry.dir);
  }

  stats(): CgroupStats {
    if (!exists(this.entry.dir)) throw new StateError(`cgroup ${this.entry.dir} does not exist`);
    return statsV2(this.entry.dir);
  }

  mounts(): CgroupMountInfo {
    return { version: 2, entries: [{ name: '', hostDir: this.entry.dir, fsOptions: '', fsType: 'cgroup2' }], symlinks: [] };
  }

  toJSON(): SavedCgroup {
    return { version: 2, dirs: [{ ...this.entry, controllers: [...this.entry.controllers] }] };
  }
}
