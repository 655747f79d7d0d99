// GET /containers/{id}/stats: one sample in docker's JSON (API 1.47 field names), from the
// container's cgroup (the runtime's CgroupManager), /proc/stat and the container's
// /proc/<pid>/net/dev.
//
// Field mapping as moby does it (daemon/stats_unix.go, facts only):
// - cgroup v1: cpu usage and per-CPU usage from cpuacct, throttling from cpu.stat; memory usage,
//   max_usage, failcnt and limit from memory.*, and `stats` = memory.stat's counters under their
//   own names (cache, rss, …, total_*); blkio from the blkio.throttle recursive files.
// - cgroup v2: cpu.stat's microseconds as nanoseconds, no per-CPU usage, no max_usage; `stats` =
//   memory.stat's counters (anon, file, inactive_file, …); failcnt = memory.events' "oom";
//   io.stat's rbytes/wbytes as "read"/"write" entries of io_service_bytes_recursive only.
// - limit: the memory limit, or the host's memory when unlimited (or larger).
// - system_cpu_usage: the first seven "cpu " fields of /proc/stat in clock ticks (USER_HZ, 100/s)
//   converted to nanoseconds; online_cpus: the cpuN lines there.
// - networks: every interface in the container's network namespace but lo.
// - precpu_stats and preread come from the previous sample of a stream (zero values for the first).
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { CgroupManager, CgroupStats } from '../../runtime/cgroups/index.ts';

export interface ThrottlingData { periods: number; throttled_periods: number; throttled_time: number }

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: ThrottlingData;
}

export interface BlkioStatEntry { major: number; minor: number; op: string; value: number }

export interface BlkioStats {
  io_service_bytes_recursive: BlkioStatEntry[] | null;
  io_serviced_recursive: BlkioStatEntry[] | null;
  io_queue_recursive: BlkioStatEntry[] | null;
  io_service_time_recursive: BlkioStatEntry[] | null;
  io_wait_time_recursive: BlkioStatEntry[] | null;
  io_merged_recursive: BlkioStatEntry[] | null;
  io_time_recursive: BlkioStatEntry[] | null;
  sectors_recursive: BlkioStatEntry[] | null;
}

export interface MemoryStats {
  usage?: number;
  max_usage?: number;
  stats?: Record<string, number>;
  failcnt?: number;
  limit?: number;
}

export interface NetworkStats {
  rx_bytes: number; rx_packets: number; rx_errors: number; rx_dropped: number;
  tx_bytes: number; tx_packets: number; tx_errors: number; tx_dropped: number;
}

/** docker's stats JSON (types.StatsJSON). Zero-valued fields docker omits are left out. */
export interface DockerStats {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: BlkioStats;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: MemoryStats;
  name?: string;
  id?: string;
  networks?: Record<string, NetworkStats>;
}

export interface DockerStatsOptions {
  id: string;
  /** With docker's leading slash ("/web"). */
  name: string;
  /** The container's processes (unused by the numbers; kept for callers that count them). */
  pids: number[];
  /** A process in the container's network namespace (usually its init) for /proc/<pid>/net/dev. */
  netnsPid?: number;
  /** The previous sample of a stream: its cpu_stats and read become precpu_stats and preread. */
  previous?: DockerStats;
  /** The host's CPU count, used when /proc/stat lists none. */
  numCpus: number;
  /** For tests: the time of the sample (default now). */
  now?: Date;
  /** For tests: /proc (default "/proc"). */
  procRoot?: string;
  /** For tests: the host memory that caps `limit` (default os.totalmem()). */
  hostMemory?: number;
}

/** Go's zero time, which docker prints for a preread without a previous sample. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

const USER_HZ = 100;

/** memory.stat keys docker reports on cgroup v1, in its order. */
const V1_MEMORY_KEYS = [
  'cache', 'rss', 'rss_huge', 'mapped_file', 'dirty', 'writeback', 'pgpgin', 'pgpgout', 'pgfault', 'pgmajfault',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'hierarchical_memory_limit',
  'hierarchical_memsw_limit', 'total_cache', 'total_rss', 'total_rss_huge', 'total_mapped_file', 'total_dirty',
  'total_writeback', 'total_pgpgin', 'total_pgpgout', 'total_pgfault', 'total_pgmajfault', 'total_inactive_anon',
  'total_active_anon', 'total_inactive_file', 'total_active_file', 'total_unevictable',
];

/** memory.stat keys docker reports on cgroup v2, in its order. */
const V2_MEMORY_KEYS = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback', 'anon_thp',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable',
  'slab_unreclaimable', 'pgfault', 'pgmajfault', 'workingset_refault', 'workingset_activate',
  'workingset_nodereclaim', 'pgrefill', 'pgscan', 'pgsteal', 'pgactivate', 'pgdeactivate', 'pglazyfree',
  'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
];

const zeroCpu = (): CpuStats => ({
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
});

const emptyBlkio = (): BlkioStats => ({
  io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null,
  io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
});

/** What docker sends for a container that is not running: zero times and empty sections. */
export function emptyDockerStats(id: string, name: string): DockerStats {
  return {
    read: ZERO_TIME, preread: ZERO_TIME, pids_stats: {}, blkio_stats: emptyBlkio(), num_procs: 0, storage_stats: {},
    cpu_stats: zeroCpu(), precpu_stats: zeroCpu(), memory_stats: {}, name, id,
  };
}

/** The host's CPU time in nanoseconds and its online CPUs, from /proc/stat as docker reads it. */
export function systemCpuUsage(procStat: string): { usage: number; cpus: number } {
  let usage = 0;
  let cpus = 0;
  for (const line of procStat.split('\n')) {
    if (!line.startsWith('cpu')) break;
    if (line[3] === ' ') {
      const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((sum, v) => sum + Number(v), 0);
      usage = (ticks * 1e9) / USER_HZ;
    } else if (line[3] >= '0' && line[3] <= '9') cpus++;
  }
  return { usage, cpus };
}

/** Interfaces of a /proc/<pid>/net/dev text but lo, with docker's counters. */
export function parseNetDev(text: string): Record<string, NetworkStats> {
  const out: Record<string, NetworkStats> = {};
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!name || name === 'lo') continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16) continue;
    out[name] = {
      rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3],
      tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11],
    };
  }
  return out;
}

type BlkioRaw = { major: number; minor: number; op: string; value: number }[] | undefined;

/**
 * docker's stats from a CgroupStats sample. `version` picks the v1 or v2 mapping; `oomEvents`
 * is memory.events' "oom" (v2's failcnt). Pure: the file reading is in dockerStats.
 */
export function statsFromCgroup(
  version: 1 | 2,
  cg: CgroupStats,
  ctx: { id: string; name: string; read: string; previous?: DockerStats; system: { usage: number; cpus: number }; numCpus: number; hostMemory: number; oomEvents?: number; networks?: Record<string, NetworkStats> },
): DockerStats {
  const cpu = zeroCpu();
  if (cg.cpu) {
    cpu.cpu_usage.total_usage = cg.cpu.usage.total;
    if (version === 1 && cg.cpu.usage.percpu?.length) cpu.cpu_usage.percpu_usage = [...cg.cpu.usage.percpu];
    cpu.cpu_usage.usage_in_kernelmode = cg.cpu.usage.kernel;
    cpu.cpu_usage.usage_in_usermode = cg.cpu.usage.user;
    if (cg.cpu.throttling) {
      cpu.throttling_data = {
        periods: cg.cpu.throttling.periods, throttled_periods: cg.cpu.throttling.throttledPeriods, throttled_time: cg.cpu.throttling.throttledTime,
      };
    }
  }
  if (ctx.system.usage > 0) cpu.system_cpu_usage = ctx.system.usage;
  const cpus = ctx.system.cpus || ctx.numCpus;
  if (cpus > 0) cpu.online_cpus = cpus;

  const memory: MemoryStats = {};
  if (cg.memory) {
    const raw = cg.memory.raw ?? {};
    const keys = version === 1 ? V1_MEMORY_KEYS : V2_MEMORY_KEYS;
    const stats: Record<string, number> = {};
    for (const k of keys) stats[k] = raw[k] ?? 0;
    const u = cg.memory.usage;
    if (u.usage) memory.usage = u.usage;
    if (version === 1 && u.max) memory.max_usage = u.max;
    memory.stats = stats;
    const failcnt = version === 1 ? u.failcnt : (ctx.oomEvents ?? 0);
    if (failcnt) memory.failcnt = failcnt;
    const limit = ctx.hostMemory > 0 && (u.limit <= 0 || u.limit > ctx.hostMemory) ? ctx.hostMemory : u.limit;
    if (limit) memory.limit = limit;
  }

  const blkio = emptyBlkio();
  if (cg.blkio) {
    const b = cg.blkio as { ioServiceBytesRecursive?: BlkioRaw; ioServicedRecursive?: BlkioRaw };
    const copy = (e: BlkioRaw): BlkioStatEntry[] => (e ?? []).map((x) => ({ major: x.major, minor: x.minor, op: x.op, value: x.value }));
    if (version === 1) {
      // Go's nil slice is null: an empty file gives null, as in docker.
      const bytes = copy(b.ioServiceBytesRecursive);
      const ios = copy(b.ioServicedRecursive);
      blkio.io_service_bytes_recursive = bytes.length ? bytes : null;
      blkio.io_serviced_recursive = ios.length ? ios : null;
    } else {
      // docker: a read and a write entry per device, lower-case ops, bytes only.
      const perDev = new Map<string, { major: number; minor: number; read: number; write: number }>();
      for (const e of b.ioServiceBytesRecursive ?? []) {
        const key = `${e.major}:${e.minor}`;
        const d = perDev.get(key) ?? { major: e.major, minor: e.minor, read: 0, write: 0 };
        if (e.op.toLowerCase() === 'read') d.read = e.value;
        else if (e.op.toLowerCase() === 'write') d.write = e.value;
        perDev.set(key, d);
      }
      const entries = [...perDev.values()].flatMap((d) => [
        { major: d.major, minor: d.minor, op: 'read', value: d.read },
        { major: d.major, minor: d.minor, op: 'write', value: d.write },
      ]);
      blkio.io_service_bytes_recursive = entries.length ? entries : null;
    }
  }

  const pids: DockerStats['pids_stats'] = {};
  if (cg.pids) {
    if (cg.pids.current) pids.current = cg.pids.current;
    if (cg.pids.limit) pids.limit = cg.pids.limit;
  }

  const out: DockerStats = {
    read: ctx.read,
    preread: ctx.previous?.read ?? ZERO_TIME,
    pids_stats: pids,
    blkio_stats: blkio,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: ctx.previous ? structuredClone(ctx.previous.cpu_stats) : zeroCpu(),
    memory_stats: memory,
    name: ctx.name,
    id: ctx.id,
  };
  if (ctx.networks && Object.keys(ctx.networks).length) out.networks = ctx.networks;
  return out;
}

function readOpt(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** One stats sample of a running container, as GET /containers/{id}/stats sends it. */
export function dockerStats(cg: CgroupManager, opts: DockerStatsOptions): DockerStats {
  const proc = opts.procRoot ?? '/proc';
  const read = (opts.now ?? new Date()).toISOString();
  const sample = cg.stats();
  const system = systemCpuUsage(readOpt(join(proc, 'stat')) ?? '');
  let oomEvents: number | undefined;
  if (cg.version === 2) {
    const dir = cg.toJSON().dirs[0]?.dir;
    const events = dir ? readOpt(join(dir, 'memory.events')) : undefined;
    const m = events ? /^oom (\d+)$/m.exec(events) : null;
    if (m) oomEvents = Number(m[1]);
  }
  let networks: Record<string, NetworkStats> | undefined;
  if (opts.netnsPid) {
    const text = readOpt(join(proc, String(opts.netnsPid), 'net', 'dev'));
    if (text) networks = parseNetDev(text);
  }
  return statsFromCgroup(cg.version, sample, {
    id: opts.id, name: opts.name, read, previous: opts.previous, system, numCpus: opts.numCpus,
    hostMemory: opts.hostMemory ?? totalmem(), oomEvents, networks,
  });
}
