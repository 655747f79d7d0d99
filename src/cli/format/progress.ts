// Renders docker's JSON-lines progress stream (pull, push, load, build) as the docker CLI does
// (jsonmessage.DisplayJSONMessagesStream):
//   - on a terminal, each id (layer) keeps its own line, rewritten in place with ANSI cursor
//     moves; the bar is drawn from progressDetail at the terminal's width;
//   - otherwise plain lines, and progress updates with numbers are dropped entirely, so a log
//     file gets "Pulling fs layer", "Download complete", "Pull complete" and no bar noise;
//   - an {"error"} line stops rendering and is returned as an error.
// A line that is not progress (no id) forgets the per-id positions, so a later operation's lines
// (pull -a, several tags) are not rewritten into an earlier block.
import { messageError, progressString, type JSONMessage } from '../../api/jsonmessage.ts';
import { writeStdout } from '../../runtime/output.ts';

export class StreamError extends Error {
  override name = 'StreamError';
  constructor(message: string, readonly code?: number) {
    super(message);
  }
}

export interface RenderOptions {
  /** Where text goes (default: process.stdout.write). */
  write: (text: string) => void;
  isTerminal: boolean;
  /** Terminal columns (for the bar); default 80 when unknown. */
  columns?: () => number;
  /** Messages carrying `aux` (image ID after build, digest after push). */
  onAux?: (m: JSONMessage) => void;
  now?: () => number;
}

const ESC = '\x1b[';
const clearLine = `${ESC}2K`;
const up = (n: number): string => (n > 0 ? `${ESC}${n}A` : '');
const down = (n: number): string => (n > 0 ? `${ESC}${n}B` : '');

/** RFC 3339 with nine fraction digits, in the local zone ("Z" when it is UTC), as docker prints times. */
export function rfc3339NanoFixed(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  const offMin = -d.getTimezoneOffset();
  const local = new Date(ms + offMin * 60_000);
  const base = local.toISOString().slice(0, 19);
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  let zone = 'Z';
  if (offMin !== 0) {
    const sign = offMin > 0 ? '+' : '-';
    const a = Math.abs(offMin);
    zone = `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
  }
  return `${base}.${frac}${zone}`;
}

export class ProgressRenderer {
  private ids = new Map<string, number>();
  private readonly opts: Required<Omit<RenderOptions, 'onAux'>> & Pick<RenderOptions, 'onAux'>;

  constructor(opts: RenderOptions) {
    this.opts = { columns: () => 80, now: () => Date.now(), ...opts };
  }

  /** Renders one message; throws StreamError for an error message. */
  render(m: JSONMessage): void {
    if (m.aux !== undefined) {
      this.opts.onAux?.(m);
      return;
    }
    const tty = this.opts.isTerminal;
    let diff = 0;
    if (m.id && (m.progressDetail !== undefined || m.progress)) {
      let line = this.ids.get(m.id);
      if (line === undefined) {
        line = this.ids.size;
        this.ids.set(m.id, line);
        if (tty) this.opts.write('\n');
      }
      diff = this.ids.size - line;
      if (tty) this.opts.write(up(diff));
    } else {
      this.ids = new Map();
    }
    const err = messageError(m);
    if (err !== undefined) {
      if (m.id && tty) this.opts.write(down(diff));
      throw new StreamError(err, m.errorDetail?.code);
    }
    this.display(m, tty);
    if (m.id && tty) this.opts.write(down(diff));
  }

  private display(m: JSONMessage, tty: boolean): void {
    const w = this.opts.write;
    let endl = '';
    const bar = m.progressDetail ? progressString(m.progressDetail, this.opts.columns(), this.opts.now()) : '';
    if (tty && !m.stream && m.progressDetail) {
      w(`${clearLine}\r`);
      endl = '\r';
    } else if (m.progressDetail && bar !== '') {
      return; // no bars without a terminal
    }
    let s = '';
    if (m.timeNano) s += `${rfc3339NanoFixed(BigInt(m.timeNano))} `;
    else if (m.time) s += `${rfc3339NanoFixed(BigInt(m.time) * 1_000_000_000n)} `;
    if (m.id) s += `${m.id}: `;
    if (m.from) s += `(from ${m.from}) `;
    if (m.progressDetail && tty) s += `${m.status ?? ''} ${bar}${endl}`;
    else if (m.progress) s += `${m.status ?? ''} ${m.progress}${endl}`;
    else if (m.stream) s += `${m.stream}${endl}`;
    else s += `${m.status ?? ''}${endl}\n`;
    w(s);
  }
}

/** Splits a byte stream into JSON values, one per line (docker's decoder also accepts concatenated values; lines suffice for every daemon). */
export async function* jsonLines(stream: AsyncIterable<Buffer | string>): AsyncGenerator<unknown> {
  let buf = '';
  for await (const chunk of stream) {
    buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield parseJSONLine(line);
    }
  }
  if (buf.trim()) yield parseJSONLine(buf.trim());
}

function parseJSONLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new StreamError(`invalid JSON from the daemon: ${line.slice(0, 200)}`);
  }
}

/** Renders a whole progress stream; resolves when it ends, rejects with StreamError on an error line. */
export async function displayJSONMessages(stream: AsyncIterable<Buffer | string>, opts: RenderOptions): Promise<void> {
  const r = new ProgressRenderer(opts);
  for await (const m of jsonLines(stream)) r.render(m as JSONMessage);
}

/**
 * A daemon's progress answer (pull, push, load, build) rendered on this process's stdout as the
 * docker CLI does: in place on a terminal, plain lines otherwise. Rejects with StreamError when
 * the stream carries an error.
 */
export function printProgress(stream: AsyncIterable<Buffer | string>, onAux?: (m: JSONMessage) => void): Promise<void> {
  const out = process.stdout;
  return displayJSONMessages(stream, {
    // Synchronous, as every other CLI output, so lines never reorder around it.
    write: writeStdout,
    isTerminal: Boolean(out.isTTY),
    columns: () => out.columns || 80,
    onAux,
  });
}
