// `berth-runtime update`: changes the cgroup limits of a created, running or paused container,
// with runc's flags and its `-r/--resources` JSON (a LinuxResources).
//
// As runc does, the new values are merged into the container's stored resources, so that
// `update --memory 50M` after `update --memory 100M --memory-swap 100M` still knows the swap limit.
// The stored resources live in <state dir>/resources.json (the merged result of every update);
// before the first update they are the bundle's linux.resources.
//
// What is written: for each part of linux.resources an update names, the merged values of that
// part's interdependent fields (memory limit + swap, cpu quota + period + burst, real-time period +
// runtime) and the fields the update gives. Parts it does not name are not touched.
//
// Device rules (linux.resources.devices in -r's JSON) replace the container's list; the runtime's
// own allow-list (the default devices, linux.devices) is added after them as at create. runc's update
// ignores device rules; Berth applies them without ever denying for a moment what the old and the
// new rules both allow: on cgroup v1 by the fewest devices.allow/deny writes that lead from the
// current devices.list to the new rules, on cgroup v2 by attaching the new eBPF program next to the
// old one before detaching it (attached programs must all allow an access). A list equal to the
// stored one (what containerd sends with every update) changes nothing.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import { compileDeviceFilter } from './cgroups/devices-bpf.ts';
import { loadCgroup } from './cgroups/index.ts';
import { cgroupResources } from './compile.ts';
import type { Runtime } from './container.ts';
import { ConfigError, RuntimeError, StateError } from './errors.ts';
import { Op, Plan } from './plan.ts';
import { loadSpec } from './spec.ts';
import type { DeviceCgroupRule, LinuxBlockIO, LinuxResources, Spec } from './spec-types.ts';
import { runStage } from './stage.ts';
import { statusOf, type ContainerRecord } from './state.ts';

type Log = (level: 'debug' | 'info' | 'warning' | 'error', message: string) => void;

/** The flags as commander hands them over (all strings: they are parsed here, as runc does). */
export interface UpdateFlags {
  resources?: string;
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuBurst?: string;
  cpuShare?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuIdle?: string;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

// ---- parsing ----------------------------------------------------------------------------------

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A memory size as runc (docker/go-units RAMInBytes) reads it: "-1" (unlimited), a number with an
 * optional fraction, an optional space, and an optional binary suffix k/m/g/t/p (any case),
 * optionally followed by "i" and/or "b": 512, 64k, 100M, 1.5g, 2GiB, 10 MB.
 */
export function parseMemorySize(value: string, flag: string): number {
  if (value.trim() === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(value.trim());
  if (!m) throw new RuntimeError(`invalid value for ${flag}: "${value}" (expected a size like 512, 64k, 100m, 1.5g, or -1 for unlimited)`);
  const n = Math.trunc(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]);
  if (!Number.isSafeInteger(n)) throw new RuntimeError(`invalid value for ${flag}: "${value}" is too large`);
  return n;
}

function parseInteger(value: string, flag: string, signed: boolean): number {
  const re = signed ? /^[+-]?\d+$/ : /^\+?\d+$/;
  if (!re.test(value.trim())) {
    throw new RuntimeError(`invalid value for ${flag}: "${value}" (expected ${signed ? 'an' : 'a non-negative'} integer)`);
  }
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw new RuntimeError(`invalid value for ${flag}: "${value}" is too large`);
  return n;
}

/** Reads all of stdin (a pipe, a file or a terminal). */
function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    // A non-blocking pipe (EAGAIN): reopen it through /dev/stdin, which blocks.
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return readFileSync('/dev/stdin', 'utf8');
    throw err;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the JSON types of the fields update uses; unknown fields are ignored (as Go's decoder does). */
export function checkResourcesJson(r: unknown, source: string): LinuxResources {
  if (!isObj(r)) throw new ConfigError(`${source}: expected a JSON object (a LinuxResources), got ${Array.isArray(r) ? 'an array' : JSON.stringify(r)}`);
  const fail = (field: string, want: string, v: unknown): never => {
    throw new ConfigError(`${source}: ${field} must be ${want}, got ${JSON.stringify(v)}`);
  };
  const fields = (section: string, spec: Record<string, 'number' | 'string' | 'boolean'>): void => {
    const o = r[section];
    if (o == null) return;
    if (!isObj(o)) fail(section, 'an object', o);
    for (const [k, want] of Object.entries(spec)) {
      const v = (o as Record<string, unknown>)[k];
      if (v == null) continue;
      if (want === 'number' ? typeof v !== 'number' || !Number.isInteger(v) : typeof v !== want) {
        fail(`${section}.${k}`, want === 'number' ? 'an integer' : `a ${want}`, v);
      }
    }
  };
  fields('memory', { limit: 'number', reservation: 'number', swap: 'number', kernel: 'number', kernelTCP: 'number', swappiness: 'number', disableOOMKiller: 'boolean', useHierarchy: 'boolean', checkBeforeUpdate: 'boolean' });
  fields('cpu', { shares: 'number', quota: 'number', burst: 'number', period: 'number', realtimeRuntime: 'number', realtimePeriod: 'number', cpus: 'string', mems: 'string', idle: 'number' });
  fields('pids', { limit: 'number' });
  fields('blockIO', { weight: 'number', leafWeight: 'number' });
  fields('network', { classID: 'number' });
  for (const k of ['devices', 'hugepageLimits'] as const) if (r[k] != null && !Array.isArray(r[k])) fail(k, 'an array', r[k]);
  if (isObj(r.blockIO)) {
    for (const k of ['weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
      const list = r.blockIO[k];
      if (list == null) continue;
      if (!Array.isArray(list)) fail(`blockIO.${k}`, 'an array', list);
      for (const [i, d] of (list as unknown[]).entries()) {
        if (!isObj(d) || typeof d.major !== 'number' || typeof d.minor !== 'number') fail(`blockIO.${k}[${i}]`, 'an object with numeric major and minor', d);
      }
    }
  }
  if (Array.isArray(r.hugepageLimits)) {
    for (const [i, h] of (r.hugepageLimits as unknown[]).entries()) {
      if (!isObj(h) || typeof h.pageSize !== 'string' || typeof h.limit !== 'number') fail(`hugepageLimits[${i}]`, 'an object with a string pageSize and a numeric limit', h);
    }
  }
  if (r.unified != null) {
    if (!isObj(r.unified)) fail('unified', 'an object of strings', r.unified);
    for (const [k, v] of Object.entries(r.unified as Record<string, unknown>)) if (typeof v !== 'string') fail(`unified[${JSON.stringify(k)}]`, 'a string', v);
  }
  if (r.rdma != null && !isObj(r.rdma)) fail('rdma', 'an object', r.rdma);
  return r as LinuxResources;
}

/** The update the flags (or the -r JSON) ask for. Like runc, -r makes every other flag ignored. */
export function resourcesFromFlags(f: UpdateFlags, stdin: () => string = readStdin, log?: Log): LinuxResources {
  if (f.kernelMemory !== undefined || f.kernelMemoryTcp !== undefined) {
    throw new ConfigError(`--kernel-memory${f.kernelMemory === undefined ? '-tcp' : ''}: kernel memory limits are not supported (Linux removed them in 6.0, and cgroup v2 has none)`);
  }
  if (f.l3CacheSchema !== undefined || f.memBwSchema !== undefined) {
    throw new ConfigError(`--${f.l3CacheSchema !== undefined ? 'l3-cache-schema' : 'mem-bw-schema'}: Intel RDT (resctrl) is not supported by berth-runtime`);
  }
  if (f.resources !== undefined && f.resources !== '') {
    const source = f.resources === '-' ? 'the resources on stdin' : f.resources;
    let text: string;
    try {
      text = f.resources === '-' ? stdin() : readFileSync(f.resources, 'utf8');
    } catch (err) {
      throw new RuntimeError(`cannot read ${source}: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${source} is not valid JSON: ${(err as Error).message}`);
    }
    const others = Object.entries(f).filter(([k, v]) => k !== 'resources' && v !== undefined).map(([k]) => k);
    if (others.length && log) log('warning', `--resources is given: ignoring the other flags (${others.join(', ')}), as runc does`);
    const r = checkResourcesJson(json, source);
    if (r.memory && (r.memory.kernel || r.memory.kernelTCP)) {
      throw new ConfigError(`${source}: memory.kernel/kernelTCP: kernel memory limits are not supported (Linux removed them in 6.0, and cgroup v2 has none)`);
    }
    return r;
  }
  const r: LinuxResources = {};
  const memory: NonNullable<LinuxResources['memory']> = {};
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  if (f.blkioWeight !== undefined) {
    const w = parseInteger(f.blkioWeight, '--blkio-weight', false);
    if (w !== 0) r.blockIO = { weight: w }; // runc: 0 means "not given"
  }
  if (f.cpusetCpus) cpu.cpus = f.cpusetCpus;
  if (f.cpusetMems) cpu.mems = f.cpusetMems;
  if (f.cpuIdle !== undefined && f.cpuIdle !== '') cpu.idle = parseInteger(f.cpuIdle, '--cpu-idle', true);
  const uints: [keyof UpdateFlags, 'burst' | 'period' | 'realtimePeriod' | 'shares', string][] = [
    ['cpuBurst', 'burst', '--cpu-burst'], ['cpuPeriod', 'period', '--cpu-period'], ['cpuRtPeriod', 'realtimePeriod', '--cpu-rt-period'], ['cpuShare', 'shares', '--cpu-share'],
  ];
  for (const [opt, field, flag] of uints) if (f[opt] !== undefined && f[opt] !== '') cpu[field] = parseInteger(f[opt]!, flag, false);
  if (f.cpuQuota !== undefined && f.cpuQuota !== '') cpu.quota = parseInteger(f.cpuQuota, '--cpu-quota', true);
  if (f.cpuRtRuntime !== undefined && f.cpuRtRuntime !== '') cpu.realtimeRuntime = parseInteger(f.cpuRtRuntime, '--cpu-rt-runtime', true);
  const sizes: [keyof UpdateFlags, 'limit' | 'swap' | 'reservation', string][] = [
    ['memory', 'limit', '--memory'], ['memorySwap', 'swap', '--memory-swap'], ['memoryReservation', 'reservation', '--memory-reservation'],
  ];
  for (const [opt, field, flag] of sizes) if (f[opt] !== undefined && f[opt] !== '') memory[field] = parseMemorySize(f[opt]!, flag);
  if (f.pidsLimit !== undefined) r.pids = { limit: parseInteger(f.pidsLimit, '--pids-limit', true) };
  if (Object.keys(memory).length) r.memory = memory;
  if (Object.keys(cpu).length) r.cpu = cpu;
  return r;
}

// ---- merging ----------------------------------------------------------------------------------

const given = (v: unknown): boolean => v !== undefined && v !== null;

/** Copies the given (non-null) fields of `over` onto `base`. */
function assignGiven<T extends object>(base: T | undefined, over: T | undefined): T {
  const out = { ...(base ?? {}) } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over ?? {})) if (given(v) && v !== '') out[k] = v;
  return out as T;
}

function upsert<T extends object>(list: T[] | undefined, items: T[] | undefined, key: (t: T) => string, merge = false): T[] | undefined {
  if (!items?.length) return list;
  const out = [...(list ?? [])];
  for (const item of items) {
    const i = out.findIndex((x) => key(x) === key(item));
    if (i < 0) out.push(item);
    else out[i] = merge ? assignGiven(out[i], item) : item;
  }
  return out;
}

const dev = (d: { major: number; minor: number }): string => `${d.major}:${d.minor}`;

export interface UpdatePlan {
  /** The container's resources after the update (what is stored). */
  merged: LinuxResources;
  /** What is written to the cgroup now. */
  apply: LinuxResources;
}

/** Merges `delta` into the stored resources as runc does, and works out what to write. */
export function planUpdate(stored: LinuxResources, delta: LinuxResources): UpdatePlan {
  const merged: LinuxResources = structuredClone(stored);
  const apply: LinuxResources = {};
  const dm = delta.memory;
  if (dm) {
    const m = { ...dm };
    // runc: "-1" for memory alone means unlimited memory and swap (no stale swap limit kept).
    if (m.limit === -1 && !given(m.swap)) m.swap = 0;
    const { checkBeforeUpdate, ...persist } = m;
    merged.memory = assignGiven(merged.memory, persist);
    if (m.swap === 0) delete merged.memory.swap;
    const a: NonNullable<LinuxResources['memory']> = {};
    for (const [k, v] of Object.entries(persist)) if (given(v)) (a as Record<string, unknown>)[k] = v;
    if (given(m.limit) || given(m.swap)) {
      // The limit and memory+swap are checked and written together.
      if (given(merged.memory.limit)) a.limit = merged.memory.limit;
      if (given(merged.memory.swap)) a.swap = merged.memory.swap;
      else if (m.swap === 0) a.swap = 0;
    }
    if (checkBeforeUpdate) a.checkBeforeUpdate = true;
    if (Object.keys(a).length) apply.memory = a;
    if (!Object.keys(merged.memory).length) delete merged.memory;
  }
  const dc = delta.cpu;
  if (dc) {
    merged.cpu = assignGiven(merged.cpu, dc);
    const a: NonNullable<LinuxResources['cpu']> = {};
    for (const [k, v] of Object.entries(dc)) if (given(v) && v !== '') (a as Record<string, unknown>)[k] = v;
    if (given(dc.quota) || given(dc.period) || given(dc.burst)) {
      for (const k of ['quota', 'period', 'burst'] as const) if (given(merged.cpu[k])) a[k] = merged.cpu[k];
    }
    if (given(dc.realtimePeriod) || given(dc.realtimeRuntime)) {
      for (const k of ['realtimePeriod', 'realtimeRuntime'] as const) if (given(merged.cpu[k])) a[k] = merged.cpu[k];
    }
    if (Object.keys(a).length) apply.cpu = a;
  }
  if (delta.pids && given(delta.pids.limit)) {
    merged.pids = { limit: delta.pids.limit };
    apply.pids = { limit: delta.pids.limit };
  }
  const db = delta.blockIO;
  if (db) {
    const b: LinuxBlockIO = { ...(merged.blockIO ?? {}) };
    const a: LinuxBlockIO = {};
    if (given(db.weight) && db.weight !== 0) b.weight = a.weight = db.weight;
    if (given(db.leafWeight) && db.leafWeight !== 0) b.leafWeight = a.leafWeight = db.leafWeight;
    if (db.weightDevice?.length) {
      b.weightDevice = upsert(b.weightDevice, db.weightDevice, dev, true);
      a.weightDevice = db.weightDevice;
    }
    for (const k of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
      if (!db[k]?.length) continue;
      b[k] = upsert(b[k], db[k], dev);
      a[k] = db[k];
    }
    merged.blockIO = b;
    if (Object.keys(a).length) apply.blockIO = a;
  }
  if (delta.hugepageLimits?.length) {
    merged.hugepageLimits = upsert(merged.hugepageLimits, delta.hugepageLimits, (h) => h.pageSize);
    apply.hugepageLimits = delta.hugepageLimits;
  }
  if (delta.rdma && Object.keys(delta.rdma).length) {
    merged.rdma = { ...(merged.rdma ?? {}), ...delta.rdma };
    apply.rdma = delta.rdma;
  }
  if (delta.unified && Object.keys(delta.unified).length) {
    merged.unified = { ...(merged.unified ?? {}), ...delta.unified };
    apply.unified = delta.unified;
  }
  if (delta.network && (given(delta.network.classID) || delta.network.priorities?.length)) {
    const n = { ...(merged.network ?? {}) };
    if (given(delta.network.classID)) n.classID = delta.network.classID;
    if (delta.network.priorities?.length) n.priorities = upsert(n.priorities, delta.network.priorities, (p) => p.name);
    merged.network = n;
    apply.network = delta.network;
  }
  return { merged, apply };
}

// ---- the stored resources ------------------------------------------------------------------------

const RESOURCES_FILE = 'resources.json';

/** The container's resources: its last update's result, or else linux.resources as created. */
export function storedResources(runtime: Runtime, id: string, bundle: string, log?: Log): LinuxResources {
  try {
    return JSON.parse(readFileSync(join(runtime.store.dir(id), RESOURCES_FILE), 'utf8')) as LinuxResources;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log?.('warning', `ignoring the unreadable ${join(runtime.store.dir(id), RESOURCES_FILE)}: ${(err as Error).message}`);
    }
  }
  try {
    const dir = runtime.store.configDir({ id, bundle });
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { linux?: { resources?: LinuxResources } };
    return isObj(spec.linux?.resources) ? spec.linux!.resources! : {};
  } catch {
    return {}; // the bundle is gone or changed shape: nothing to merge with
  }
}

function saveResources(runtime: Runtime, id: string, r: LinuxResources): void {
  const dir = runtime.store.dir(id);
  const tmp = join(dir, `${RESOURCES_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(r), { mode: 0o600 });
  renameSync(tmp, join(dir, RESOURCES_FILE));
}

// ---- the operation ------------------------------------------------------------------------------

/** The full rule list the cgroup gets for `devices`: create's, with the spec's own rules replaced. */
function deviceRulesFor(runtime: Runtime, record: ContainerRecord, devices: DeviceCgroupRule[]): DeviceCgroupRule[] {
  let spec: Spec;
  try {
    spec = loadSpec(runtime.store.configDir(record));
  } catch (err) {
    throw new StateError(`cannot update the device rules of "${record.id}": its config as created is unreadable (${(err as Error).message})`);
  }
  const linux = spec.linux ?? {};
  return cgroupResources({ ...spec, linux: { ...linux, resources: { ...(linux.resources ?? {}), devices } } }).devices ?? [];
}

/** cgroup v2: attach the new device program (the stage loads it and replaces the old one). */
async function attachDeviceProgram(dir: string, rules: DeviceCgroupRule[]): Promise<void> {
  const plan = new Plan().add(Op.CGROUP_DEVICES, dir, compileDeviceFilter(rules));
  const failure = await runStage(plan).closed;
  if (failure) throw new RuntimeError(`updating the device rules of ${dir}: ${failure.message}`);
}

/** Applies `delta` to a created, running or paused container and stores the merged resources. */
export async function updateContainer(runtime: Runtime, id: string, delta: LinuxResources, log?: Log): Promise<LinuxResources> {
  const record = runtime.store.load(id);
  const status = statusOf(runtime.store, record);
  if (status === 'stopped') throw new StateError(`cannot update container "${id}": it is not running (stopped)`);
  if (status === 'creating') throw new StateError(`cannot update container "${id}": it is still being created`);
  if (!record.cgroup) throw new StateError(`cannot update container "${id}": it has no cgroup`);
  const stored = storedResources(runtime, id, record.bundle, log);
  const { merged, apply } = planUpdate(stored, { ...delta, devices: undefined });
  const newDevices = delta.devices?.length && !isDeepStrictEqual(delta.devices, stored.devices) ? delta.devices : undefined;
  let deviceRules: DeviceCgroupRule[] | undefined;
  if (newDevices) {
    deviceRules = deviceRulesFor(runtime, record, newDevices);
    compileDeviceFilter(deviceRules); // checks every rule before anything is written
    merged.devices = newDevices;
  }
  const cgroup = loadCgroup(record.cgroup, { devicesHandledExternally: true });
  if (Object.keys(apply).length) cgroup.update(apply);
  if (deviceRules) {
    if (record.cgroup.version === 2) await attachDeviceProgram(record.cgroup.dirs[0].dir, deviceRules);
    else cgroup.update({ devices: deviceRules });
  }
  saveResources(runtime, id, merged);
  return merged;
}

// ---- the command --------------------------------------------------------------------------------

/** Adds `update` to the CLI; `ctx` gives the runtime and logger that the global options set up. */
export function registerUpdate(program: Command, ctx: () => { runtime: Runtime; log: Log }): void {
  program.command('update')
    .description('update the resource limits of a container')
    .option('-r, --resources <file>', 'a LinuxResources JSON file to apply, or "-" for stdin (every other flag is then ignored)')
    .option('--blkio-weight <n>', 'block IO weight (10-1000)')
    .option('--cpu-period <us>', 'CPU CFS period in microseconds (0: the default)')
    .option('--cpu-quota <us>', 'CPU CFS quota in microseconds per period (-1: unlimited)')
    .option('--cpu-burst <us>', 'CPU CFS burst in microseconds')
    .option('--cpu-share <n>', 'CPU shares (relative weight)')
    .option('--cpu-rt-period <us>', 'real-time period in microseconds (cgroup v1)')
    .option('--cpu-rt-runtime <us>', 'real-time runtime in microseconds per period (cgroup v1)')
    .option('--cpuset-cpus <list>', 'CPUs the container may use (e.g. 0-2,4)')
    .option('--cpuset-mems <list>', 'memory nodes the container may use')
    .option('--cpu-idle <0|1>', 'SCHED_IDLE for the cgroup (1) or not (0)')
    .option('--kernel-memory <size>', 'not supported (kernel memory limits are gone from Linux)')
    .option('--kernel-memory-tcp <size>', 'not supported (kernel memory limits are gone from Linux)')
    .option('--memory <size>', 'memory limit, e.g. 512m, 1g (-1: unlimited)')
    .option('--memory-reservation <size>', 'memory soft limit')
    .option('--memory-swap <size>', 'memory+swap limit (-1: unlimited swap)')
    .option('--pids-limit <n>', 'maximum number of processes (-1 or 0: unlimited)')
    .option('--l3-cache-schema <schema>', 'not supported (Intel RDT)')
    .option('--mem-bw-schema <schema>', 'not supported (Intel RDT)')
    .argument('<id>', 'container id')
    .action(async (id: string, flags: UpdateFlags) => {
      const { runtime, log } = ctx();
      await updateContainer(runtime, id, resourcesFromFlags(flags, undefined, log), log);
    });
}
