// The client side of docker's hijacked streams (attach, exec start), as the docker CLI does it:
//
//   - the request carries "Connection: Upgrade" / "Upgrade: tcp"; the daemon answers
//     101 Switching Protocols (old daemons: 200) and the connection becomes a raw byte pipe;
//   - without a tty, output is multiplexed: 8-byte frames [stream, 0, 0, 0, size (big-endian u32)]
//     then the payload; stream 1 → stdout, 2 → stderr, 3 → an error from the daemon;
//     with a tty, it is the terminal's raw bytes (stderr is merged into them);
//   - stdin is copied to the connection; its end half-closes the connection (the container's
//     stdin sees EOF) while output keeps flowing;
//   - with a tty on a terminal, stdin is put in raw mode, and the detach sequence (default
//     ctrl-p,ctrl-q; --detach-keys) is watched for in what the user types: bytes that start the
//     sequence are held back until it either completes (detach) or breaks (they are sent on);
//   - window size: on start and on SIGWINCH, POST /containers/{id}/resize or /exec/{id}/resize;
//   - `run`/`attach`/`start -a` without a tty forward the signals the CLI receives to the
//     container (POST /containers/{id}/kill?signal=NAME), as docker's --sig-proxy.
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiResponseError, encodeQuery, readAll, type EngineClient, type QueryValue } from './client.ts';

/** The user typed the detach sequence. */
export class EscapeError extends Error {
  override name = 'EscapeError';
  constructor() {
    super('read escape sequence');
  }
}

// ---------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------

/** Writes all of buf to fd, waiting out EAGAIN (terminals and inherited pipes may be non-blocking). */
export function writeFd(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      return; // the reader went away (EPIPE): nothing useful to do with the output
    }
  }
}

export interface OutputSinks {
  stdout?: (b: Buffer) => void;
  stderr?: (b: Buffer) => void;
}

/**
 * Splits docker's multiplexed stream into stdout and stderr (stdcopy). Feed it chunks as they
 * arrive; `end()` reports a frame cut short. Stream 3 carries a daemon error, thrown as Error.
 */
export class Demuxer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly sinks: OutputSinks) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const kind = this.buf[0];
      const payload = this.buf.subarray(8, 8 + size);
      this.buf = this.buf.subarray(8 + size);
      switch (kind) {
        case 0:
        case 1:
          this.sinks.stdout?.(payload);
          break;
        case 2:
          this.sinks.stderr?.(payload);
          break;
        case 3:
          throw new Error(`error from daemon in stream: ${payload.toString('utf8')}`);
        default:
          throw new Error(`Unrecognized input header: ${kind}`);
      }
    }
  }

  get pending(): number {
    return this.buf.length;
  }
}

// ---------------------------------------------------------------------------------------------
// detach keys
// ---------------------------------------------------------------------------------------------

const CTRL_NAMES: Record<string, number> = {
  'ctrl-@': 0, 'ctrl-[': 27, 'ctrl-\\': 28, 'ctrl-]': 29, 'ctrl-^': 30, 'ctrl-_': 31,
};
for (let i = 0; i < 26; i++) CTRL_NAMES[`ctrl-${String.fromCharCode(97 + i)}`] = i + 1;

/** "ctrl-p,ctrl-q" → bytes (moby/term's ToBytes: single characters, ctrl-<x>, DEL). */
export function detachKeyBytes(keys: string): Buffer {
  const out: number[] = [];
  for (const key of keys.split(',')) {
    if (key.length === 1) { out.push(key.charCodeAt(0)); continue; }
    const code = CTRL_NAMES[key];
    if (code !== undefined) out.push(code);
    else if (key === 'DEL') out.push(127);
    else throw new Error(`Unknown character: '${key}'`);
  }
  return Buffer.from(out);
}

export const DEFAULT_DETACH_KEYS = Buffer.from([16, 17]); // ctrl-p ctrl-q

/**
 * Watches typed input for the detach sequence: returns what may be sent now, holding back a
 * partial match; `detached` turns true once the whole sequence was typed (what preceded it in
 * the same read is still returned, the sequence itself never is).
 */
export class EscapeProxy {
  private held: number[] = [];
  detached = false;
  constructor(private readonly keys: Buffer) {}

  filter(chunk: Buffer): Buffer {
    if (this.keys.length === 0 || this.detached) return this.detached ? Buffer.alloc(0) : chunk;
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held.length]) {
        this.held.push(b);
        if (this.held.length === this.keys.length) {
          this.detached = true;
          return Buffer.from(out);
        }
        continue;
      }
      // A broken prefix is sent as typed; the byte that broke it may start a new match.
      if (this.held.length) {
        out.push(...this.held);
        this.held = [];
        if (b === this.keys[0]) { this.held.push(b); continue; }
      }
      out.push(b);
    }
    return Buffer.from(out);
  }
}

// ---------------------------------------------------------------------------------------------
// the hijacked connection
// ---------------------------------------------------------------------------------------------

export interface Hijacked {
  socket: Duplex;
  /** Bytes that came with the 101 response, before any read. */
  head: Buffer;
  /** The daemon said the stream is multiplexed/raw (API ≥ 1.42), undefined when it did not say. */
  multiplexed?: boolean;
}


/** POSTs with an upgrade to a raw stream (attach, exec start); daemon errors become ApiResponseError. */
export async function hijack(client: EngineClient, path: string, opts: { query?: Record<string, QueryValue>; body?: unknown } = {}): Promise<Hijacked> {
  await client.negotiate();
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = { Host: 'api.moby.localhost', Connection: 'Upgrade', Upgrade: 'tcp' };
  if (payload) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(payload.length);
  } else {
    headers['Content-Length'] = '0';
  }
  const url = `/v${client.version}${path}${encodeQuery(opts.query)}`;
  return new Promise<Hijacked>((resolve, reject) => {
    const req = httpRequest({ socketPath: client.socketPath, path: url, method: 'POST', headers });
    const mediaType = (res: IncomingMessage): boolean | undefined => {
      const ct = String(res.headers['content-type'] ?? '');
      if (ct === 'application/vnd.docker.multiplexed-stream') return true;
      if (ct === 'application/vnd.docker.raw-stream') return false;
      return undefined;
    };
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      socket.setNoDelay(true);
      resolve({ socket, head, multiplexed: mediaType(res) });
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 500;
      if (status >= 400) {
        void readAll(res).then((b) => {
          const text = b.toString('utf8');
          let message = text.trim();
          try {
            const m = (JSON.parse(text) as { message?: unknown }).message;
            if (typeof m === 'string') message = m;
          } catch { /* plain text */ }
          reject(new ApiResponseError(status, message || `HTTP ${status}`));
        }, reject);
        return;
      }
      // An old daemon that answers 200 and streams on the same connection: read-only from here.
      resolve({ socket: res as unknown as Duplex, head: Buffer.alloc(0), multiplexed: mediaType(res) });
    });
    req.on('error', (e) => reject(new Error(`cannot connect to the daemon at ${client.host}: ${e.message}`)));
    req.end(payload);
  });
}

export interface StreamOptions {
  tty: boolean;
  /** Copy this process's stdin to the container. */
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** --detach-keys; default ctrl-p,ctrl-q. */
  detachKeys?: string;
  /** Resolves to stop streaming early (the container exited and no output is attached). */
  cancel?: Promise<void>;
}

/** How a stream ended: 'eof' (output ended), 'detached' (escape keys), 'cancelled'. */
export type StreamEnd = 'eof' | 'detached' | 'cancelled';

/**
 * Streams a hijacked connection against this process's stdio until its output ends, the user
 * detaches, or `cancel` resolves; the terminal is restored in every case.
 */
export function streamHijacked(h: Hijacked, opts: StreamOptions): Promise<StreamEnd> {
  return new Promise<StreamEnd>((resolve, reject) => {
    const stdin = process.stdin;
    let rawSet = false;
    let settled = false;
    const restore = (): void => {
      if (rawSet && stdin.isTTY) {
        try { stdin.setRawMode(false); } catch { /* terminal gone */ }
        rawSet = false;
      }
    };
    const finish = (how: StreamEnd, err?: Error): void => {
      if (settled) return;
      settled = true;
      restore();
      if (opts.stdin) {
        stdin.removeListener('data', onData);
        stdin.removeListener('end', onEnd);
        stdin.pause();
      }
      if (err) reject(err);
      else resolve(how);
    };

    let escape: EscapeProxy | undefined;
    if (opts.stdin && opts.tty) {
      let keys: Buffer = DEFAULT_DETACH_KEYS;
      if (opts.detachKeys) {
        try { keys = detachKeyBytes(opts.detachKeys); } catch (e) {
          process.stderr.write(`WARN: invalid detach escape keys, using default: ${(e as Error).message}\n`);
        }
      }
      escape = new EscapeProxy(keys);
      if (stdin.isTTY) {
        stdin.setRawMode(true);
        // libuv's raw mode keeps output processing (ONLCR) and a few input translations that
        // docker's (cfmakeraw-like) raw mode turns off: "\n" from the container must reach the
        // terminal unchanged. setRawMode(false) later restores the terminal as it was found.
        spawnSync('stty', ['-opost', '-inlcr', '-igncr', '-parmrk', '-ignbrk', '-echonl'], { stdio: ['inherit', 'ignore', 'ignore'] });
        rawSet = true;
      }
    }

    // output
    const hasOutput = opts.stdout || opts.stderr;
    const out = (b: Buffer): void => { if (opts.stdout) writeFd(1, b); };
    const err = (b: Buffer): void => { if (opts.stderr) writeFd(opts.tty ? 1 : 2, b); };
    const demux = opts.tty ? undefined : new Demuxer({ stdout: out, stderr: err });
    const onChunk = (c: Buffer): void => {
      try {
        if (demux) demux.push(c);
        else out(c);
      } catch (e) {
        finish('eof', e as Error);
        h.socket.destroy();
      }
    };
    if (h.head.length) onChunk(h.head);
    h.socket.on('data', onChunk);
    let outputEnded = false;
    let inputEnded = !opts.stdin;
    const outputDone = (): void => {
      if (outputEnded) return;
      outputEnded = true;
      if (opts.tty) restore();
      finish('eof');
    };
    h.socket.on('end', outputDone);
    h.socket.on('close', outputDone);
    h.socket.on('error', (e) => {
      // A reset after we half-closed is the daemon hanging up: the end of output.
      if ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as NodeJS.ErrnoException).code === 'EPIPE') outputDone();
      else finish('eof', e);
    });

    // input
    const closeWrite = (): void => {
      inputEnded = true;
      const s = h.socket as Duplex & { writable?: boolean };
      if (s.writable) s.end();
      // Nothing attached to wait for: done once stdin is.
      if (!hasOutput) finish('eof');
    };
    const onData = (c: Buffer): void => {
      let data: Buffer = c;
      if (escape) {
        data = escape.filter(c);
        if (data.length) h.socket.write(data);
        if (escape.detached) {
          finish('detached');
          h.socket.destroy();
        }
        return;
      }
      h.socket.write(data);
    };
    const onEnd = (): void => {
      if (!inputEnded) closeWrite();
    };
    if (opts.stdin) {
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.resume();
    } else if (!hasOutput) {
      // neither: docker half-closes at once and returns
      closeWrite();
    } else {
      // no stdin attached: tell the daemon there is nothing to read (docker's CloseWrite)
      const s = h.socket as Duplex & { writable?: boolean };
      if (s.writable) s.end();
    }
    void opts.cancel?.then(() => {
      finish('cancelled');
      h.socket.destroy();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// tty size and signals
// ---------------------------------------------------------------------------------------------

/** Sends the terminal's size now and on every SIGWINCH; returns the function that stops it. */
export function monitorTtySize(client: EngineClient, id: string, isExec: boolean): () => void {
  const path = isExec ? `/exec/${encodeURIComponent(id)}/resize` : `/containers/${encodeURIComponent(id)}/resize`;
  const resize = async (): Promise<boolean> => {
    const rows = process.stdout.rows ?? 0;
    const cols = process.stdout.columns ?? 0;
    if (rows === 0 && cols === 0) return true;
    try {
      const res = await client.request('POST', path, { query: { h: rows, w: cols } });
      res.resume();
      return true;
    } catch {
      return false;
    }
  };
  // The process may not have started yet (exec): retry a few times as docker does.
  void (async () => {
    for (let i = 0; i < 10; i++) {
      if (await resize()) return;
      await new Promise((r) => setTimeout(r, (i + 1) * 10));
    }
    process.stderr.write('failed to resize tty, using default size\n');
  })();
  const onWinch = (): void => { void resize(); };
  process.on('SIGWINCH', onWinch);
  return () => process.removeListener('SIGWINCH', onWinch);
}

/** The signals a Node process can catch and docker's CLI forwards (it skips SIGCHLD, SIGPIPE, SIGURG). */
const PROXIED_SIGNALS: NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGWINCH', 'SIGCONT',
  'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGVTALRM', 'SIGPROF', 'SIGXCPU', 'SIGXFSZ', 'SIGTRAP', 'SIGABRT', 'SIGSYS', 'SIGPWR',
];

/** Forwards received signals to the container; returns the function that stops forwarding. */
export function proxySignals(client: EngineClient, id: string): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of PROXIED_SIGNALS) {
    const h = (): void => {
      void client.request('POST', `/containers/${encodeURIComponent(id)}/kill`, { query: { signal: sig.slice(3) } })
        .then((r) => r.resume(), () => { /* docker only logs this */ });
    };
    try {
      process.on(sig, h);
      handlers.set(sig, h);
    } catch { /* not catchable on this platform */ }
  }
  return () => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
  };
}
