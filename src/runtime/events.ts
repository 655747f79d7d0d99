// `berth-runtime events`: a container's cgroup statistics and OOM notifications as runc prints
// them, one JSON object per line: {"type":"stats","id":…,"data":{…}} and {"type":"oom","id":…}.
//
//   events --stats ID        one stats event, then exit
//   events [--interval 5s] ID
//                            a stats event every interval, and an oom event each time the kernel's
//                            OOM killer kills a process of the container, until the container stops
//                            (then exit 0)
//
// OOM detection: runc registers an eventfd on memory.oom_control (v1) or inotify on memory.events
// (v2). Node has no eventfd, so the counters are polled instead: v1 memory.oom_control `oom_kill`
// (and `under_oom` turning on, for a container whose OOM killer is disabled), v2 memory.events
// `oom_kill`, every 100 ms (or the interval, if shorter); on v2 an fs.watch on memory.events (inotify,
// which cgroupfs supports) triggers a check at once. Only OOM kills after `events` started count.
//
// The stats data follows runc's types/events.go (runc 1.1) field for field, zero values left out
// where runc's JSON tags say omitempty: cpu, memory, pids, blkio, hugetlb. cpuset, intel_rdt and
// network_interfaces, which runc also prints, are not collected and are left out.
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadCgroup, type CgroupStats, type SavedCgroup } from './cgroups/index.ts';
import { parseFlatKeyed } from './cgroups/common.ts';
import type { Runtime } from './container.ts';
import { RuntimeError, StateError } from './errors.ts';
import { writeStdout } from './output.ts';
import { statusOf } from './state.ts';

type Log = (level: 'debug' | 'info' | 'warning' | 'error', message: string) => void;

// ---- durations ------------------------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("5s", "250ms", "1m30s", "1.5h") in milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let ms = 0;
  let at = 0;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    at = 1;
  }
  if (at >= s.length) throw new RuntimeError(`invalid duration "${text}" (expected e.g. 5s, 250ms, 1m30s)`);
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw new RuntimeError(`invalid duration "${text}" (expected e.g. 5s, 250ms, 1m30s)`);
    ms += Number(m[1]) * DURATION_UNITS[m[2]];
    at = re.lastIndex;
  }
  return neg ? -ms : ms;
}

// ---- runc's stats JSON ------------------------------------------------------------------------------

/** Drops the keys whose value is 0, "", undefined or an empty array (Go's omitempty). */
function omitEmpty<T extends Record<string, unknown>>(o: T, keep: string[] = []): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!keep.includes(k) && (v === 0 || v === '' || v === undefined || (Array.isArray(v) && v.length === 0))) continue;
    out[k] = v;
  }
  return out as Partial<T>;
}

type MemEntry = { usage?: number; max?: number; limit?: number; failcnt?: number };
const memoryEntry = (e: MemEntry | undefined) => omitEmpty({ limit: e?.limit ?? 0, usage: e?.usage ?? 0, max: e?.max ?? 0, failcnt: e?.failcnt ?? 0 }, ['limit', 'failcnt']);

type BlkioEntry = { major: number; minor: number; op: string; value: number };
const BLKIO_KEYS: [string, string][] = [
  // CgroupStats key → runc's JSON key (runc spells the queued one "ioQueueRecursive").
  ['ioServiceBytesRecursive', 'ioServiceBytesRecursive'], ['ioServicedRecursive', 'ioServicedRecursive'],
  ['ioQueuedRecursive', 'ioQueueRecursive'], ['ioServiceTimeRecursive', 'ioServiceTimeRecursive'],
  ['ioWaitTimeRecursive', 'ioWaitTimeRecursive'], ['ioMergedRecursive', 'ioMergedRecursive'],
  ['ioTimeRecursive', 'ioTimeRecursive'], ['sectorsRecursive', 'sectorsRecursive'],
];

/** The cgroup layer's statistics in runc's `types.Stats` shape. */
export function toRuncStats(s: CgroupStats): Record<string, unknown> {
  const cpu = {
    usage: omitEmpty({ total: s.cpu?.usage.total ?? 0, percpu: s.cpu?.usage.percpu ?? [], kernel: s.cpu?.usage.kernel ?? 0, user: s.cpu?.usage.user ?? 0 }, ['kernel', 'user']),
    throttling: omitEmpty({ periods: s.cpu?.throttling?.periods ?? 0, throttledPeriods: s.cpu?.throttling?.throttledPeriods ?? 0, throttledTime: s.cpu?.throttling?.throttledTime ?? 0 }),
  };
  const m = s.memory;
  const memory = omitEmpty({
    cache: m?.cache ?? 0,
    usage: memoryEntry(m?.usage),
    swap: memoryEntry(m?.swap),
    kernel: memoryEntry(m?.kernel),
    kernelTCP: memoryEntry(m?.kernelTCP),
    raw: m?.raw && Object.keys(m.raw).length ? m.raw : undefined,
  });
  const pids = omitEmpty({ current: s.pids?.current ?? 0, limit: s.pids?.limit ?? 0 });
  const blkio: Record<string, unknown> = {};
  for (const [from, to] of BLKIO_KEYS) {
    const list = (s.blkio?.[from] as BlkioEntry[] | undefined) ?? [];
    if (list.length) blkio[to] = list.map((e) => omitEmpty({ major: e.major, minor: e.minor, op: e.op, value: e.value }));
  }
  const hugetlb: Record<string, unknown> = {};
  for (const [size, h] of Object.entries(s.hugetlb ?? {})) hugetlb[size] = omitEmpty({ usage: h.usage, max: h.max, failcnt: h.failcnt }, ['failcnt']);
  return { cpu, memory, pids, blkio, hugetlb };
}

/**
 * JSON with integers printed exactly: cgroup files hold 64-bit values (v1's "unlimited" is
 * 9223372036854771712), which JSON.stringify would print rounded (9223372036854772000).
 */
export function encodeJson(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v) ? BigInt(v).toString() : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : encodeJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}:${encodeJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

// ---- OOM counters -------------------------------------------------------------------------------------

interface OomSource {
  file: string;
  /** memory.oom_control (v1) or memory.events (v2) */
  v2: boolean;
}

/** Where the container's OOM counter is: the v1 memory hierarchy, else the cgroup2 dir with memory. */
export function oomSource(saved: SavedCgroup): OomSource | undefined {
  if (saved.version === 2) return { file: join(saved.dirs[0].dir, 'memory.events'), v2: true };
  const v1 = saved.dirs.find((d) => !d.unified && d.controllers.includes('memory'));
  if (v1) return { file: join(v1.dir, 'memory.oom_control'), v2: false };
  const u = saved.dirs.find((d) => d.unified && d.controllers.includes('memory'));
  return u ? { file: join(u.dir, 'memory.events'), v2: true } : undefined;
}

/** oom_kill (and v1's under_oom), or undefined once the file is gone (the cgroup was removed). */
function readOom(src: OomSource): { kills: number; underOom: boolean } | undefined {
  try {
    const kv = parseFlatKeyed(readFileSync(src.file, 'utf8'));
    return { kills: kv.oom_kill ?? 0, underOom: kv.under_oom === 1 };
  } catch {
    return undefined;
  }
}

// ---- the command ----------------------------------------------------------------------------------------

function emit(event: { type: string; id: string; data?: unknown }): void {
  writeStdout(`${encodeJson(event)}\n`);
}

function loadRunning(runtime: Runtime, id: string) {
  const record = runtime.store.load(id);
  if (statusOf(runtime.store, record) === 'stopped') throw new StateError(`container "${id}" is not running`);
  if (!record.cgroup) throw new StateError(`container "${id}" has no cgroup to read statistics from`);
  return { record, cgroup: record.cgroup };
}

/** One stats event (`events --stats`). */
export function printStats(runtime: Runtime, id: string): void {
  const { cgroup } = loadRunning(runtime, id);
  emit({ type: 'stats', id, data: toRuncStats(loadCgroup(cgroup).stats()) });
}

/** Streams stats every `intervalMs` and oom events until the container stops. */
export function streamEvents(runtime: Runtime, id: string, intervalMs: number, log: Log): Promise<void> {
  const { record, cgroup } = loadRunning(runtime, id);
  const manager = loadCgroup(cgroup);
  const src = oomSource(cgroup);
  let last = src ? readOom(src) : undefined;
  const stopped = (): boolean => {
    try {
      const now = runtime.store.load(id);
      return now.pid !== record.pid || now.startTime !== record.startTime || statusOf(runtime.store, now) === 'stopped';
    } catch {
      return true; // deleted
    }
  };
  const checkOom = (): void => {
    if (!src) return;
    const now = readOom(src);
    if (!now) return;
    let n = last ? Math.max(0, now.kills - last.kills) : 0;
    // OOM killer disabled (v1): tasks wait under OOM instead of being killed.
    if (now.underOom && !last?.underOom) n = Math.max(n, 1);
    last = now;
    for (let i = 0; i < Math.min(n, 1000); i++) emit({ type: 'oom', id });
  };
  return new Promise((resolve) => {
    let done = false;
    let watcher: FSWatcher | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearInterval(statsTimer);
      clearInterval(pollTimer);
      watcher?.close();
      checkOom(); // an OOM kill of the init is seen after the init is gone
      resolve();
    };
    const poll = (): void => {
      if (done) return;
      checkOom();
      if (stopped()) finish();
    };
    const statsTimer = setInterval(() => {
      if (done) return;
      if (stopped()) {
        finish();
        return;
      }
      try {
        emit({ type: 'stats', id, data: toRuncStats(manager.stats()) });
      } catch (err) {
        log('error', `reading the statistics of "${id}": ${(err as Error).message}`);
      }
    }, intervalMs);
    const pollTimer = setInterval(poll, Math.max(1, Math.min(intervalMs, 100)));
    if (src?.v2) {
      try {
        watcher = watch(src.file, { persistent: false }, () => poll());
        watcher.on('error', () => { /* polling goes on */ });
      } catch { /* polling is enough */ }
    }
  });
}

/** Adds `events` to the CLI; `ctx` gives the runtime and logger that the global options set up. */
export function registerEvents(program: Command, ctx: () => { runtime: Runtime; log: Log }): void {
  program.command('events')
    .description('print container statistics and OOM notifications as JSON, one event per line')
    .option('--stats', 'print the statistics once, then exit')
    .option('--interval <duration>', 'time between two stats events (e.g. 5s, 500ms)', '5s')
    .argument('<id>', 'container id')
    .action(async (id: string, o: { stats?: boolean; interval: string }) => {
      const { runtime, log } = ctx();
      const interval = parseDuration(o.interval);
      if (!(interval > 0)) throw new RuntimeError(`--interval: the duration must be greater than 0, got "${o.interval}"`);
      if (interval > 2 ** 31 - 1) throw new RuntimeError(`--interval: "${o.interval}" is too long (at most about 24 days)`);
      if (o.stats) printStats(runtime, id);
      else await streamEvents(runtime, id, interval, log);
    });
}
