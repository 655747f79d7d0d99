// Streaming answers: JSON lines (events, stats) and docker's progress stream (pull, push, load,
// build). Headers go out with the first line, so a handler that fails before writing anything
// still gets a normal {"message"} error with the right status; once streaming, errors become an
// {"errorDetail"} line, which is how the docker CLI expects a pull to fail halfway.
import type { ServerResponse } from 'node:http';
import type { ProgressEvent, ProgressSink } from '../image/types.ts';
import { encodeJSON } from './http.ts';
import { progressString, type JSONMessage, type JSONProgress } from './jsonmessage.ts';

/** Above this many unsent bytes the client is not reading; the stream is cut rather than buffering without bound. */
const MAX_BUFFERED = 16 * 1024 * 1024;

export class JsonLineWriter {
  private started = false;

  constructor(readonly res: ServerResponse, private readonly contentType = 'application/json') {}

  /** The client is gone or the stream was ended. */
  get closed(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** Whether any line (and so the 200 status) has been sent. */
  get headersSent(): boolean {
    return this.started;
  }

  /** Sends the 200 and headers now (e.g. before waiting for the first event, as dockerd flushes). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.statusCode = 200;
    this.res.setHeader('Content-Type', this.contentType);
    this.res.flushHeaders();
  }

  /** Writes one value as a line; false when the client is gone. */
  write(value: unknown): boolean {
    return this.writeRaw(encodeJSON(value));
  }

  /** Writes pre-encoded text (must end with a newline). */
  writeRaw(line: string): boolean {
    if (this.closed) return false;
    this.start();
    if (this.res.writableLength > MAX_BUFFERED) {
      this.res.destroy(new Error('client is not reading the stream'));
      return false;
    }
    this.res.write(line);
    return true;
  }

  end(): void {
    if (this.closed) return;
    this.start();
    this.res.end();
  }
}

interface LayerState { status: string; lastSent: number }

/**
 * Docker's progress stream. Feed it the image tier's ProgressEvents (sink()) or write messages
 * directly; per-id updates of the same status are throttled to one per `intervalMs` (the last one,
 * current === total, always goes out), so producers may report every chunk.
 */
export class ProgressStream extends JsonLineWriter {
  private readonly layers = new Map<string, LayerState>();

  constructor(res: ServerResponse, private readonly intervalMs = 100) {
    super(res);
  }

  /** {"status": text} or {"status": text, "id": id}. */
  status(text: string, id?: string): boolean {
    return this.write(id ? { status: text, id } : { status: text });
  }

  /** Build output: {"stream": text}. */
  stream(text: string): boolean {
    return this.write({ stream: text });
  }

  /** Side data (digest after push, image ID after build): {"aux": value}. */
  aux(value: unknown): boolean {
    return this.write({ aux: value });
  }

  /** Ends the operation with an error line (as dockerd does once it has started streaming). */
  error(err: unknown): boolean {
    const message = err instanceof Error ? err.message : String(err);
    return this.write({ errorDetail: { message }, error: message });
  }

  message(m: JSONMessage): boolean {
    return this.write(m);
  }

  /** One ProgressEvent as docker's message, throttled. */
  progress(ev: ProgressEvent): boolean {
    const hasNumbers = ev.current !== undefined || ev.total !== undefined;
    if (!ev.id || !hasNumbers) {
      if (ev.id) this.layers.delete(ev.id);
      return this.status(ev.status, ev.id);
    }
    const now = Date.now();
    const st = this.layers.get(ev.id);
    const done = ev.total !== undefined && (ev.current ?? 0) >= ev.total;
    if (st && st.status === ev.status && !done && now - st.lastSent < this.intervalMs) return !this.closed;
    this.layers.set(ev.id, { status: ev.status, lastSent: now });
    // dockerd's field order and content: no `start`, so no time-left estimate in `progress`.
    const progressDetail: JSONProgress = { current: ev.current ?? 0 };
    if (ev.total) progressDetail.total = ev.total;
    return this.write({ status: ev.status, progressDetail, progress: progressString(progressDetail, 200, now), id: ev.id });
  }

  /** A ProgressSink bound to this stream, for the image service's operations. */
  sink(): ProgressSink {
    return (ev) => { this.progress(ev); };
  }
}
