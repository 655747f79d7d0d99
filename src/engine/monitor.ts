// The Node side of the per-container monitor (native/monitor.c, contract native/MONITOR.md):
// starting the stage under a new monitor, attaching to a running one, and reading the exit
// record it leaves behind.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StageLauncher } from '../runtime/stage.ts';

export interface MonitorOptions {
  /** The monitor's directory (attach.sock, console.sock, exit); created 0700 if missing. Keep it
   * short: socket paths must fit in 107 bytes. */
  dir: string;
  /** The json-file log; none when unset. Its directory is created (0700) if missing. */
  logPath?: string;
  /** Bytes; 0 or unset: unlimited. */
  logMaxSize?: number;
  /** Files kept, the current one included (docker's max-file); default 1. */
  logMaxFile?: number;
  /** The process has a terminal: the stage sends the pty master to DIR/console.sock (give the
   * runtime `consoleSocket: join(dir, 'console.sock')`). */
  tty?: boolean;
  /** Attach clients may write to the process's stdin (docker's OpenStdin). */
  stdin?: boolean;
  /** stdin closes when the first client that wrote to it disconnects (docker's StdinOnce). */
  stdinOnce?: boolean;
  /** Start the stage only once the first attach client has connected (exec: no output lost). */
  hold?: boolean;
}

export class MonitorError extends Error {
  override name = 'MonitorError';
}

let monitorPathCache: string | undefined;

/** The monitor binary sits next to the bundled CLI (dist/) or, from sources, in ../../dist. */
export function monitorPath(): string {
  if (monitorPathCache) return monitorPathCache;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.BERTH_MONITOR, join(here, 'berth-monitor'), join(here, '..', '..', 'dist', 'berth-monitor')];
  for (const c of candidates) {
    if (c && existsSync(c)) return (monitorPathCache = c);
  }
  throw new MonitorError(`the container monitor (berth-monitor) is missing; run "npm install" or "npm run build" (looked in ${candidates.filter(Boolean).join(', ')})`);
}

/** The monitor's command line (without the `-- STAGE SYNCFD` tail). */
export function monitorArgs(opts: MonitorOptions): string[] {
  const args = ['--dir', opts.dir];
  if (opts.logPath) {
    args.push('--log', opts.logPath);
    if (opts.logMaxSize) args.push('--log-max-size', String(Math.floor(opts.logMaxSize)));
    if (opts.logMaxFile && opts.logMaxFile > 1) args.push('--log-max-file', String(Math.floor(opts.logMaxFile)));
  }
  if (opts.tty) args.push('--tty');
  if (opts.stdin) args.push('--stdin');
  if (opts.stdinOnce) args.push('--stdin-once');
  if (opts.hold) args.push('--hold');
  return args;
}

/**
 * A StageLauncher that starts the stage under a new monitor. `ready` resolves with the monitor's
 * pid once it printed READY (its sockets are listening), and rejects with its ERROR line, or if
 * it could not be started. After READY the monitor is unref'd: it outlives this process.
 */
export function monitorLauncher(opts: MonitorOptions): { launch: StageLauncher; ready: Promise<number> } {
  let resolveReady!: (pid: number) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<number>((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => { /* the caller may only await the runtime */ });

  const launch: StageLauncher = (stage, syncFd) => {
    // 0: /dev/null; 1: READY/ERROR; 2: nothing; 3..syncFd-1: the preserved fds, passed through;
    // syncFd: the stage's sync socket, handed to the stage at the same number.
    const stdio: StdioOptions = ['ignore', 'pipe', 'ignore'];
    for (let fd = 3; fd < syncFd; fd++) stdio.push(fd);
    stdio.push('pipe');
    let child: ChildProcess;
    try {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
      if (opts.logPath) mkdirSync(dirname(opts.logPath), { recursive: true, mode: 0o700 });
      child = spawn(monitorPath(), [...monitorArgs(opts), '--', stage, String(syncFd)], { stdio, detached: true, env: {} });
    } catch (err) {
      rejectReady(err as Error);
      throw err;
    }
    let settled = false;
    let out = '';
    const settle = (err: Error | undefined, pid?: number): void => {
      if (settled) return;
      settled = true;
      child.stdout?.removeAllListeners('data');
      child.stdout?.destroy();
      if (err) {
        rejectReady(err);
      } else {
        // Our handle must not keep this process alive, nor reap the monitor's exit status for it.
        child.unref();
        resolveReady(pid!);
      }
    };
    child.on('error', (err) => settle(new MonitorError(`cannot run ${monitorPath()}: ${err.message}`)));
    child.on('exit', (code, signal) => settle(new MonitorError(`the container monitor exited before it was ready (${signal ? `signal ${signal}` : `status ${code}`})`)));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) {
        if (out.length > 4096) settle(new MonitorError(`unexpected output from the container monitor: ${JSON.stringify(out.slice(0, 200))}`));
        return;
      }
      const line = out.slice(0, nl);
      if (line.startsWith('READY ')) settle(undefined, Number(line.slice(6)));
      else if (line.startsWith('ERROR ')) settle(new MonitorError(`container monitor: ${line.slice(6)}`));
      else settle(new MonitorError(`unexpected output from the container monitor: ${JSON.stringify(line)}`));
    });
    child.stdout!.on('end', () => settle(new MonitorError('the container monitor closed its output before it was ready')));
    return child;
  };
  return { launch, ready };
}

/**
 * Starts a monitor that runs a whole command (an external OCI runtime's `create` or `exec
 * --detach`) instead of the stage. Resolves with the monitor's pid once it listens; connect and
 * await `setupDone` to learn whether the command succeeded.
 */
export function monitorCommand(opts: MonitorOptions, argv: string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let child: ChildProcess;
    try {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
      if (opts.logPath) mkdirSync(dirname(opts.logPath), { recursive: true, mode: 0o700 });
      child = spawn(monitorPath(), [...monitorArgs(opts), '--command', '--', ...argv], { stdio: ['ignore', 'pipe', 'ignore'], detached: true, env: {} });
    } catch (err) {
      reject(err as Error);
      return;
    }
    let out = '';
    let settled = false;
    const settle = (err: Error | undefined, pid?: number): void => {
      if (settled) return;
      settled = true;
      child.stdout?.removeAllListeners('data');
      child.stdout?.destroy();
      if (err) reject(err);
      else { child.unref(); resolve(pid!); }
    };
    child.on('error', (err) => settle(new MonitorError(`cannot run ${monitorPath()}: ${err.message}`)));
    child.on('exit', (code, signal) => settle(new MonitorError(`the container monitor exited before it was ready (${signal ? `signal ${signal}` : `status ${code}`})`)));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      if (line.startsWith('READY ')) settle(undefined, Number(line.slice(6)));
      else if (line.startsWith('ERROR ')) settle(new MonitorError(`container monitor: ${line.slice(6)}`));
      else settle(new MonitorError(`unexpected output from the container monitor: ${JSON.stringify(line)}`));
    });
  });
}

const FRAME_STDIN = 0;
const FRAME_STDOUT = 1;
const FRAME_STDERR = 2;
const FRAME_EXIT = 3;
const FRAME_CLOSE_STDIN = 4;
const FRAME_RESIZE = 5;
const FRAME_SETUP = 6;
/** The monitor refuses larger frames; stdin is cut into pieces of this size. */
const STDIN_PIECE = 256 * 1024;

function frame(kind: number, payload: Buffer): Buffer {
  const hdr = Buffer.alloc(5);
  hdr[0] = kind;
  hdr.writeUInt32BE(payload.length, 1);
  return Buffer.concat([hdr, payload]);
}

const EARLY_LIMIT = 4 << 20;

/** One attach client of a container's monitor (DIR/attach.sock). */
export class MonitorConnection {
  /** The exit status: from the monitor's last frame, or, when the connection ends without one,
   * from DIR/exit. Rejects when neither exists (the monitor was killed, or this client was
   * dropped for falling behind, or close() was called before the end). */
  readonly exited: Promise<number>;
  /** The stage's (or --command's) exit status once it has ended: 0 when the container (or exec'd
   * process) was set up. Settles with -1 if the connection ends first. */
  readonly setupDone: Promise<number>;
  private resolveSetup!: (code: number) => void;
  private readonly listeners: ((stream: 'stdout' | 'stderr', data: Buffer) => void)[] = [];
  private pending: Buffer = Buffer.alloc(0);
  /** Output received before the first onOutput() (kept up to EARLY_LIMIT bytes). */
  private early: Array<['stdout' | 'stderr', Buffer]> | undefined = [];
  private earlySize = 0;
  private resolveExit!: (code: number) => void;
  private rejectExit!: (err: Error) => void;
  private done = false;

  private constructor(private readonly sock: Socket, readonly dir: string) {
    this.exited = new Promise<number>((res, rej) => { this.resolveExit = res; this.rejectExit = rej; });
    this.setupDone = new Promise<number>((res) => { this.resolveSetup = res; });
    this.exited.catch(() => { /* observed by whoever awaits it */ });
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => { /* 'close' follows */ });
    sock.on('close', () => this.onClose());
  }

  /** Connects to the monitor in `dir`; rejects if none is listening there. */
  static connect(dir: string): Promise<MonitorConnection> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(join(dir, 'attach.sock'));
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new MonitorError(`cannot attach to the container's monitor (${join(dir, 'attach.sock')}): ${err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'it is not running' : err.message}`));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        resolve(new MonitorConnection(sock, dir));
      });
    });
  }

  /** Output from now on (earlier output is in the log). */
  onOutput(fn: (stream: 'stdout' | 'stderr', data: Buffer) => void): void {
    this.listeners.push(fn);
    // What arrived before anyone listened (an exec's first output races its caller's set-up).
    const early = this.early;
    this.early = undefined;
    for (const [stream, data] of early ?? []) fn(stream, data);
  }

  writeStdin(data: Buffer): void {
    for (let off = 0; off < data.length; off += STDIN_PIECE) this.send(FRAME_STDIN, data.subarray(off, off + STDIN_PIECE));
  }

  closeStdin(): void {
    this.send(FRAME_CLOSE_STDIN, Buffer.alloc(0));
  }

  resize(rows: number, cols: number): void {
    this.send(FRAME_RESIZE, Buffer.from(`${Math.max(0, Math.floor(rows))} ${Math.max(0, Math.floor(cols))}`));
  }

  /** Detaches: the process goes on; with --stdin-once, a client that wrote stdin closes it. */
  close(): void {
    this.sock.end();
    this.sock.destroySoon();
  }

  /** Like close(), at once, dropping whatever was not sent yet. */
  destroy(): void {
    this.sock.destroy();
  }

  /** The socket, for backpressure (`write` returning false / 'drain') and for piping. */
  get socket(): Socket {
    return this.sock;
  }

  private send(kind: number, payload: Buffer): void {
    if (this.sock.destroyed || !this.sock.writable) return;
    this.sock.write(frame(kind, payload));
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= 5) {
      const kind = this.pending[off];
      const len = this.pending.readUInt32BE(off + 1);
      if (this.pending.length - off - 5 < len) break;
      const payload = this.pending.subarray(off + 5, off + 5 + len);
      off += 5 + len;
      if (kind === FRAME_STDOUT || kind === FRAME_STDERR) {
        const stream = kind === FRAME_STDOUT ? 'stdout' : 'stderr';
        if (this.listeners.length === 0) {
          if (this.early) {
            this.earlySize += payload.length;
            if (this.earlySize <= EARLY_LIMIT) this.early.push([stream, Buffer.from(payload)]);
          }
        } else {
          for (const fn of this.listeners) fn(stream, payload);
        }
      } else if (kind === FRAME_SETUP) {
        const code = Number(payload.toString('ascii'));
        this.resolveSetup(Number.isInteger(code) ? code : -1);
      } else if (kind === FRAME_EXIT) {
        this.resolveSetup(-1);
        const code = Number(payload.toString('ascii'));
        if (!this.done && Number.isInteger(code)) {
          this.done = true;
          this.resolveExit(code);
        }
      }
    }
    this.pending = off === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(off);
  }

  private onClose(): void {
    this.resolveSetup(-1);
    if (this.done) return;
    this.done = true;
    // The monitor writes the record before its last frame: a client that connected late, or
    // missed the frame, finds it there.
    const record = readExitRecord(this.dir);
    if (record) this.resolveExit(record.exitCode);
    else this.rejectExit(new MonitorError('the connection to the container\'s monitor ended without an exit status'));
  }
}

/** DIR/exit: "<code> <unix ns>\n", written atomically by the monitor at the end. */
export function readExitRecord(dir: string): { exitCode: number; finishedAt: Date } | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, 'exit'), 'utf8');
  } catch {
    return undefined;
  }
  const m = /^(-?\d+) (\d+)\n?$/.exec(text);
  if (!m) return undefined;
  const ns = BigInt(m[2]);
  return { exitCode: Number(m[1]), finishedAt: new Date(Number(ns / 1000000n)) };
}

/** Whether a monitor listens in `dir` (its attach socket accepts a connection). */
export function monitorRunning(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(join(dir, 'attach.sock'));
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
