// Container logs for the log viewer: lines from a multiplexed (non-TTY) or raw (TTY) stream,
// with docker's timestamps split off, in a buffer of bounded size (a container that logs for a
// week must not fill the tab's memory). Pure; unit-tested.
import { LineSplitter, MuxDecoder, splitTimestamp } from './streams.ts';

export interface LogLine {
  /** Increasing; a stable key for rendering. */
  id: number;
  /** 1 stdout, 2 stderr (TTY output is all stdout). */
  stream: 1 | 2;
  /** RFC 3339, when the stream was asked for timestamps. */
  time?: string;
  text: string;
}

// CSI/OSC and other escape sequences, which a TTY's output is full of (colours, cursor moves).
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

export class LogBuffer {
  lines: LogLine[] = [];
  /** Lines dropped from the front to keep within the capacity. */
  dropped = 0;
  private nextId = 1;
  private readonly mux = new MuxDecoder();
  private readonly split: Record<1 | 2, LineSplitter> = { 1: new LineSplitter(), 2: new LineSplitter() };

  /** `tty`: the stream is raw bytes (container with a TTY), else docker's stdcopy frames. */
  constructor(readonly tty: boolean, readonly capacity = 5000) {}

  /** Feeds a chunk of the stream; returns the number of lines added. */
  push(chunk: Uint8Array): number {
    const before = this.nextId;
    if (this.tty) {
      for (const l of this.split[1].push(chunk)) this.add(1, l);
    } else {
      for (const f of this.mux.push(chunk)) {
        const s = f.stream === 2 ? 2 : 1;
        for (const l of this.split[s].push(f.data)) this.add(s, l);
      }
    }
    this.trim();
    return this.nextId - before;
  }

  /** The stream ended: unterminated last lines become lines. */
  end(): void {
    for (const s of [1, 2] as const) for (const l of this.split[s].end()) this.add(s, l);
    this.trim();
  }

  clear(): void {
    this.dropped += this.lines.length;
    this.lines = [];
  }

  private add(stream: 1 | 2, raw: string): void {
    const { time, text } = splitTimestamp(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    this.lines.push({ id: this.nextId++, stream, time, text: this.tty ? stripAnsi(text).replace(/\r/g, '') : text });
  }

  private trim(): void {
    const over = this.lines.length - this.capacity;
    if (over > 0) {
      this.lines.splice(0, over);
      this.dropped += over;
    }
  }
}

/** The lines containing `query` (case-insensitive); all lines for an empty query. */
export function filterLines(lines: LogLine[], query: string): LogLine[] {
  const q = query.toLowerCase();
  return q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines;
}

/** `text` cut around each case-insensitive occurrence of `query`: odd indexes are the matches. */
export function splitMatches(text: string, query: string): string[] {
  if (!query) return [text];
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  const out: string[] = [];
  let i = 0;
  for (let j = lower.indexOf(q); j >= 0; j = lower.indexOf(q, i)) {
    out.push(text.slice(i, j), text.slice(j, j + q.length));
    i = j + q.length;
  }
  out.push(text.slice(i));
  return out;
}

/** The lines as a text file (what `docker logs [-t]` prints). */
export function logText(lines: LogLine[], timestamps: boolean): string {
  return lines.map((l) => (timestamps && l.time ? `${l.time} ${l.text}\n` : `${l.text}\n`)).join('');
}
