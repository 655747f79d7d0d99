// Container stats arithmetic, as the docker CLI does it, and fixed-size series for live charts.
// Pure; unit-tested.

/** The parts of /containers/{id}/stats the UI reads (cgroup v1 and v2 alike). */
export interface StatsSample {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null };
  pids_stats?: { current?: number };
}

/** CPU % between two readings (docker: delta of container time over delta of system time × CPUs). */
export function cpuPercent(cur: StatsSample, prev?: StatsSample): number {
  const c = cur.cpu_stats;
  const p = prev ? prev.cpu_stats : cur.precpu_stats;
  const cpuDelta = (c?.cpu_usage?.total_usage ?? 0) - (p?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (c?.system_cpu_usage ?? 0) - (p?.system_cpu_usage ?? 0);
  const cpus = c?.online_cpus || c?.cpu_usage?.percpu_usage?.length || 1;
  if (!p || !(p.system_cpu_usage ?? 0) || sysDelta <= 0 || cpuDelta < 0) return 0;
  return (cpuDelta / sysDelta) * cpus * 100;
}

/** Memory in use without the page cache (docker CLI: usage − inactive_file, v1 total_inactive_file). */
export function memoryUsage(s: StatsSample): number {
  const m = s.memory_stats;
  if (!m?.usage) return 0;
  const st = m.stats ?? {};
  const cache = st.total_inactive_file ?? st.inactive_file ?? 0;
  return cache < m.usage ? m.usage - cache : m.usage;
}

export function memoryLimit(s: StatsSample): number {
  return s.memory_stats?.limit ?? 0;
}

export function networkBytes(s: StatsSample): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  return { rx, tx };
}

export function blockBytes(s: StatsSample): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op.toLowerCase();
    if (op === 'read') read += e.value;
    else if (op === 'write') write += e.value;
  }
  return { read, write };
}

/**
 * A fixed-capacity series of numbers: a live chart keeps the last `capacity` points in one
 * preallocated array, so an hour of 1 Hz samples costs no more memory than a minute.
 */
export class Series {
  private readonly values: Float64Array;
  private start = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.values = new Float64Array(capacity);
  }

  push(v: number): void {
    if (this.length < this.capacity) {
      this.values[(this.start + this.length) % this.capacity] = v;
      this.length++;
    } else {
      this.values[this.start] = v;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  at(i: number): number {
    return this.values[(this.start + i) % this.capacity];
  }

  last(): number | undefined {
    return this.length ? this.at(this.length - 1) : undefined;
  }

  max(): number {
    let m = 0;
    for (let i = 0; i < this.length; i++) m = Math.max(m, this.at(i));
    return m;
  }
}

/** Per-second rate from two cumulative counters `dtMs` apart (never negative: counters reset on restart). */
export function rate(cur: number, prev: number | undefined, dtMs: number): number {
  if (prev === undefined || dtMs <= 0 || cur < prev) return 0;
  return ((cur - prev) * 1000) / dtMs;
}
