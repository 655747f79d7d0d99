// Reading docker's json-file logs (written by native/monitor.c) for `docker logs`: the rotated
// files oldest first, --tail read backwards so that a big log is not scanned whole, --since and
// --until on the entries' times, and --follow across rotations and truncations.
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** RFC3339Nano, as stored. */
  time: string;
  log: Buffer;
}

export interface ReadLogOptions {
  /** The last N entries across the rotated files (counted before the stream filter, as docker
   * does); undefined: all. */
  tail?: number;
  /** Unix seconds (fractional ok): entries from this time on. */
  since?: number;
  /** Unix seconds: entries up to this time; the first later one ends the read. */
  until?: number;
  /** Go on reading what is written after the end, until stopFollowing/signal. */
  follow?: boolean;
  /** Default true. */
  stdout?: boolean;
  /** Default true. */
  stderr?: boolean;
  signal?: AbortSignal;
  /** Follow ends once this resolves and the files are drained (e.g. the container's exit). */
  stopFollowing?: Promise<unknown>;
}

const CHUNK = 64 * 1024;
const POLL_MS = 100;

/** The log's files, oldest first: path.N … path.1, path (those that exist). */
export function logFiles(path: string): string[] {
  const dir = dirname(path);
  const base = basename(path);
  const rotated: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch { /* no directory: no files */ }
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const suffix = name.slice(base.length + 1);
    if (/^[1-9]\d*$/.test(suffix)) rotated.push(Number(suffix));
  }
  rotated.sort((a, b) => b - a);
  const files = rotated.map((n) => `${path}.${n}`);
  if (names.includes(base)) files.push(path);
  return files;
}

/** "2006-01-02T15:04:05.999999999Z07:00" → unix seconds (sub-microsecond digits are lost). */
export function parseLogTime(time: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return NaN;
  const whole = Date.parse(`${m[1]}${m[3]}`) / 1000;
  return whole + (m[2] ? Number(`0${m[2]}`) : 0);
}

function parseEntry(line: Buffer): LogEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined; // a damaged line (disk full, crash mid-write) is skipped, as docker does
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as { log?: unknown; stream?: unknown; time?: unknown };
  if ((o.stream !== 'stdout' && o.stream !== 'stderr') || typeof o.time !== 'string') return undefined;
  return { stream: o.stream, time: o.time, log: Buffer.from(typeof o.log === 'string' ? o.log : '', 'utf8') };
}

/** Reads complete lines from an fd from a position on; keeps an unfinished last line. */
class LineReader {
  private partial: Buffer[] = [];
  private partialLen = 0;
  constructor(readonly fd: number, public pos: number) {}

  /** Complete lines available now (up to `limit` bytes of file, if given). */
  read(limit = Infinity): Buffer[] {
    const lines: Buffer[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    while (this.pos < limit) {
      const want = Math.min(CHUNK, limit - this.pos);
      const n = readSync(this.fd, buf, 0, want, this.pos);
      if (n <= 0) break;
      this.pos += n;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0 && nl < n; nl = buf.indexOf(10, start)) {
        const piece = Buffer.from(buf.subarray(start, nl));
        if (this.partialLen) {
          lines.push(Buffer.concat([...this.partial, piece]));
          this.partial = [];
          this.partialLen = 0;
        } else {
          lines.push(piece);
        }
        start = nl + 1;
      }
      if (start < n) {
        this.partial.push(Buffer.from(buf.subarray(start, n)));
        this.partialLen += n - start;
      }
    }
    return lines;
  }

  /** Forget a half-read line (the file was truncated under us). */
  reset(pos: number): void {
    this.pos = pos;
    this.partial = [];
    this.partialLen = 0;
  }

  close(): void {
    try { closeSync(this.fd); } catch { /* already closed */ }
  }
}

function openOrUndefined(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

/** Where the last `n` complete lines of the files begin: [file index, byte offset]. */
function tailStart(files: string[], n: number): [number, number] {
  const buf = Buffer.allocUnsafe(CHUNK);
  let need = n;
  for (let i = files.length - 1; i >= 0; i--) {
    const fd = openOrUndefined(files[i]);
    if (fd === undefined) continue;
    try {
      const size = fstatSync(fd).size;
      // Lines end at '\n'; an unfinished last line is not an entry yet.
      let end = size;
      let seenLastNewline = false;
      let count = 0;
      for (let chunkEnd = size; chunkEnd > 0;) {
        const chunkStart = Math.max(0, chunkEnd - CHUNK);
        const len = readSync(fd, buf, 0, chunkEnd - chunkStart, chunkStart);
        for (let k = len - 1; k >= 0; k--) {
          if (buf[k] !== 10) continue;
          const at = chunkStart + k;
          if (!seenLastNewline) {
            seenLastNewline = true;
            end = at + 1;
            continue;
          }
          count++;
          if (count === need) return [i, at + 1];
        }
        chunkEnd = chunkStart;
      }
      if (need === 0) return [i, end];
      if (seenLastNewline) count++; // the file's first line
      if (count >= need) return [i, 0];
      need -= count;
    } finally {
      closeSync(fd);
    }
  }
  return [0, 0];
}

function sleepUnless(ms: number, signal: AbortSignal | undefined, stop: Promise<unknown> | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    stop?.then(done, done);
  });
}

/** The entries of a json-file log (and its rotated files), oldest first. */
export async function* readLogs(path: string, opts: ReadLogOptions = {}): AsyncGenerator<LogEntry> {
  const wantStdout = opts.stdout !== false;
  const wantStderr = opts.stderr !== false;
  let stopped = false;
  opts.stopFollowing?.then(() => { stopped = true; }, () => { stopped = true; });

  // Returns false once the first entry after `until` is seen: the read ends there.
  const accept = (e: LogEntry): 'yield' | 'skip' | 'end' => {
    if (opts.since !== undefined || opts.until !== undefined) {
      const t = parseLogTime(e.time);
      if (opts.since !== undefined && t < opts.since) return 'skip';
      if (opts.until !== undefined && t > opts.until) return 'end';
    }
    if (e.stream === 'stdout' ? !wantStdout : !wantStderr) return 'skip';
    return 'yield';
  };

  const files = logFiles(path);
  const [startFile, startPos] = opts.tail === undefined ? [0, 0] : tailStart(files, Math.max(0, Math.floor(opts.tail)));
  // Older files first; the current file (path) is read last and then followed.
  const current = files.length > 0 && files[files.length - 1] === path ? files.length - 1 : -1;
  for (let i = startFile; i < files.length; i++) {
    if (i === current) break;
    if (opts.signal?.aborted) return;
    const fd = openOrUndefined(files[i]);
    if (fd === undefined) continue; // rotated away meanwhile
    const reader = new LineReader(fd, i === startFile ? startPos : 0);
    try {
      for (const line of reader.read()) {
        const e = parseEntry(line);
        if (!e) continue;
        const verdict = accept(e);
        if (verdict === 'end') return;
        if (verdict === 'yield') yield e;
        if (opts.signal?.aborted) return;
      }
    } finally {
      reader.close();
    }
  }
  if (current < 0 && !opts.follow) return;

  let reader: LineReader | undefined;
  let ino = -1;
  const open = (pos: number): boolean => {
    const fd = openOrUndefined(path);
    if (fd === undefined) return false;
    reader = new LineReader(fd, pos);
    ino = fstatSync(fd).ino;
    return true;
  };
  if (current >= 0) open(startFile === current ? startPos : 0);
  // Without follow, the current file is read up to where it ended when we started.
  const limit = opts.follow || !reader ? Infinity : fstatSync(reader.fd).size;
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      // Stop is checked before reading, so that the last read after it drains the files.
      const last = stopped;
      if (reader) {
        for (const line of reader.read(limit)) {
          const e = parseEntry(line);
          if (!e) continue;
          const verdict = accept(e);
          if (verdict === 'end') return;
          if (verdict === 'yield') yield e;
          if (opts.signal?.aborted) return;
        }
      }
      if (!opts.follow) return;
      // Rotated (path is a new file: ours became path.1, read to its end above) or truncated.
      let st: { ino: number; size: number } | undefined;
      try {
        st = statSync(path);
      } catch { /* rotated, the new one not there yet */ }
      if (st && reader && st.ino !== ino) {
        for (const line of reader.read()) {
          const e = parseEntry(line);
          if (!e) continue;
          const verdict = accept(e);
          if (verdict === 'end') return;
          if (verdict === 'yield') yield e;
        }
        reader.close();
        reader = undefined;
        open(0);
        continue;
      }
      if (st && reader && st.size < reader.pos) {
        reader.reset(0);
        continue;
      }
      if (st && !reader) {
        open(0);
        continue;
      }
      if (st && reader && st.size > reader.pos) continue;
      if (last) return;
      await sleepUnless(POLL_MS, opts.signal, opts.stopFollowing);
    }
  } finally {
    reader?.close();
  }
}
