// Parsers for the Engine API's streaming answers. Pure: no DOM, unit-tested in Node.
//
//   JsonStreamDecoder  — events, stats and the progress of pull/push/build/load: a sequence of
//                        JSON objects, newline-separated in practice but not always (docker's
//                        jsonmessage reader accepts back-to-back objects), split across chunks
//                        anywhere, even inside a UTF-8 character.
//   MuxDecoder         — logs and attach of containers without a TTY: docker's stdcopy frames,
//                        an 8-byte header (stream, 0, 0, 0, big-endian length) then the payload.
//   PullProgress       — per-layer state of a pull or push from its JSON messages.

export class StreamParseError extends Error {
  override name = 'StreamParseError';
}

/** Splits a byte stream into JSON values. */
export class JsonStreamDecoder<T = unknown> {
  private readonly text = new TextDecoder('utf-8');
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Where the current value starts in `buf` (-1: between values). */
  private start = -1;
  private scanned = 0;

  /** The complete values in `chunk` (and before it); a partial one waits for the next chunk. */
  push(chunk: Uint8Array | string): T[] {
    this.buf += typeof chunk === 'string' ? chunk : this.text.decode(chunk, { stream: true });
    const out: T[] = [];
    let i = this.scanned;
    const s = this.buf;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (this.start < 0) {
        if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
          this.start = i;
          this.depth = 1;
        } else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
          throw new StreamParseError(`unexpected ${JSON.stringify(s[i])} between JSON messages`);
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          const raw = s.slice(this.start, i + 1);
          try {
            out.push(JSON.parse(raw) as T);
          } catch (e) {
            throw new StreamParseError(`malformed JSON message: ${(e as Error).message}`);
          }
          this.start = -1;
        }
      }
    }
    // Keep only the unfinished value, so memory stays bounded on endless streams.
    if (this.start < 0) {
      this.buf = '';
      this.scanned = 0;
    } else {
      this.buf = s.slice(this.start);
      this.scanned = i - this.start;
      this.start = 0;
    }
    return out;
  }

  /** Call at the end of the stream: a value left unfinished is an error. */
  end(): T[] {
    const out = this.push(this.text.decode());
    if (this.start >= 0) throw new StreamParseError('the stream ended inside a JSON message');
    return out;
  }
}

export type StdStream = 0 | 1 | 2;

export interface MuxFrame {
  stream: StdStream;
  data: Uint8Array;
}

/** Docker's multiplexed stdout/stderr framing. */
export class MuxDecoder {
  private pending: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): MuxFrame[] {
    const buf = this.pending.length ? concat(this.pending, chunk) : chunk;
    const out: MuxFrame[] = [];
    let off = 0;
    while (buf.length - off >= 8) {
      const stream = buf[off];
      if (stream > 2 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) {
        throw new StreamParseError(`not a multiplexed stream (header byte ${stream}); is the container using a TTY?`);
      }
      const size = ((buf[off + 4] << 24) >>> 0) + (buf[off + 5] << 16) + (buf[off + 6] << 8) + buf[off + 7];
      if (buf.length - off - 8 < size) break;
      out.push({ stream: stream as StdStream, data: buf.slice(off + 8, off + 8 + size) });
      off += 8 + size;
    }
    this.pending = buf.slice(off);
    return out;
  }

  /** Bytes of an unfinished frame (non-zero at the end of a stream means it was cut short). */
  get buffered(): number {
    return this.pending.length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Splits decoded text into complete lines, keeping a trailing partial line for later. */
export class LineSplitter {
  private rest = '';
  private readonly text = new TextDecoder('utf-8');

  push(chunk: Uint8Array | string): string[] {
    this.rest += typeof chunk === 'string' ? chunk : this.text.decode(chunk, { stream: true });
    const lines = this.rest.split('\n');
    this.rest = lines.pop() ?? '';
    return lines;
  }

  /** The last line when the stream ended without a newline. */
  end(): string[] {
    const last = this.rest + this.text.decode();
    this.rest = '';
    return last ? [last] : [];
  }
}

/** `docker logs -t` lines start with an RFC 3339 timestamp and a space. */
export function splitTimestamp(line: string): { time?: string; text: string } {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (.*)$/s.exec(line);
  return m ? { time: m[1], text: m[2] } : { text: line };
}

/** One message of docker's JSON progress stream (jsonmessage.JSONMessage). */
export interface JsonMessage {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: Record<string, unknown>;
}

export interface LayerProgress {
  id: string;
  status: string;
  current: number;
  total: number;
  /** Done: "Pull complete", "Already exists", "Pushed", "Layer already exists", "Mounted from …". */
  done: boolean;
}

const LAYER_DONE = /^(Pull complete|Already exists|Pushed|Layer already exists|Mounted from|Download complete$|Verifying Checksum$)/;
const LAYER_FINAL = /^(Pull complete|Already exists|Pushed|Layer already exists|Mounted from)/;

/** The state of a pull or push, fed its JSON messages in order. */
export class PullProgress {
  /** Layers in the order they were first mentioned. */
  readonly layers = new Map<string, LayerProgress>();
  /** Messages without a layer id ("Pulling from library/busybox", "Digest: …", "Status: …"). */
  readonly lines: string[] = [];
  error?: string;
  digest?: string;

  apply(msg: JsonMessage): void {
    if (msg.error || msg.errorDetail?.message) {
      this.error = msg.errorDetail?.message ?? msg.error;
      return;
    }
    if (msg.aux && typeof msg.aux.Digest === 'string') this.digest = msg.aux.Digest;
    const status = msg.status ?? msg.stream ?? '';
    if (!msg.id || /^(Pulling from|Digest:|Status:)/.test(status) || msg.id === 'latest' && /Pulling from/.test(status)) {
      if (status) {
        const d = /^Digest: (sha256:[0-9a-f]{64})/.exec(status);
        if (d) this.digest = d[1];
        this.lines.push(msg.id && !/^(Digest|Status)/.test(status) ? `${msg.id}: ${status}` : status);
      }
      return;
    }
    const prev = this.layers.get(msg.id);
    const layer: LayerProgress = prev ?? { id: msg.id, status: '', current: 0, total: 0, done: false };
    layer.status = status;
    if (msg.progressDetail && typeof msg.progressDetail.current === 'number') {
      layer.current = msg.progressDetail.current;
      if (typeof msg.progressDetail.total === 'number' && msg.progressDetail.total > 0) layer.total = msg.progressDetail.total;
    }
    if (LAYER_FINAL.test(status)) {
      layer.done = true;
      if (layer.total) layer.current = layer.total;
    } else if (LAYER_DONE.test(status) && layer.total) {
      layer.current = layer.total;
    }
    if (!prev) this.layers.set(msg.id, layer);
  }

  /** 0..1 over the layers whose size is known; layers already done count in full. */
  get fraction(): number {
    let cur = 0;
    let tot = 0;
    for (const l of this.layers.values()) {
      if (l.done && !l.total) continue;
      cur += l.done ? l.total : Math.min(l.current, l.total);
      tot += l.total;
    }
    if (this.layers.size && [...this.layers.values()].every((l) => l.done)) return 1;
    return tot ? cur / tot : 0;
  }
}
