// Runs the C stage (dist/berth-stage) with a plan and speaks its line protocol (native/PLAN.md).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RuntimeError } from './errors.ts';
import type { Plan } from './plan.ts';

let stagePathCache: string | undefined;

/** The stage binary sits next to the bundled CLI (dist/) or, from sources, in ../../dist. */
export function stagePath(): string {
  if (stagePathCache) return stagePathCache;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.BERTH_STAGE, join(here, 'berth-stage'), join(here, '..', '..', 'dist', 'berth-stage')];
  for (const c of candidates) {
    if (c && existsSync(c)) return (stagePathCache = c);
  }
  throw new RuntimeError(`the C stage (berth-stage) is missing; run "npm install" or "npm run build" (looked in ${candidates.filter(Boolean).join(', ')})`);
}

export class StageError extends RuntimeError {
  override name = 'StageError';
}

export interface StageOptions {
  preserveFds?: number;
  /** Called at each SYNC point; returns the sync data for the child. Throwing aborts the child. */
  onSync?: (name: string, pid: number) => Buffer | Promise<Buffer>;
  /** Called when the PID line arrives (the child's host pid). */
  onPid?: (pid: number) => void;
  /** ID_MAPS with external=1: the child (host pid) waits for its id maps, e.g. newuidmap/newgidmap. Throwing aborts it. */
  onIdMaps?: (pid: number) => void | Promise<void>;
  debug?: (message: string) => void;
  /** Starts the stage instead of spawning it here: the engine runs it under its per-container
   * monitor (native/monitor.c), which becomes the container's parent. The returned child's
   * stdio[syncFd] must be the sync socket. Default: spawn(stagePath(), [syncFd], { stdio }). */
  launch?: StageLauncher;
}

/** Starts `stage` with argv [String(syncFd)]; fds 3..syncFd-1 are preserved fds, fd syncFd a pipe. */
export type StageLauncher = (stage: string, syncFd: number) => ChildProcess;

export interface StageRun {
  /** Resolves with the init's host pid once it is created and waiting for start. */
  ready: Promise<number>;
  /** With CLONE stay=1: resolves with the init's exit status (128+signal if killed). */
  exited: Promise<number>;
  /** Resolves once the sync socket has closed (every stage process exited or exec'd) with the
   * failure the stage reported, if any (plans without WAIT_START, e.g. exec's, end this way). */
  closed: Promise<Error | undefined>;
  /** The init's pid as soon as it is known (0 before). */
  pid(): number;
  /** Drops the connection (after `ready`, in create mode). */
  detach(): void;
}

export function runStage(plan: Plan, opts: StageOptions = {}): StageRun {
  const preserve = opts.preserveFds ?? 0;
  const syncFd = 3 + preserve;
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  for (let fd = 3; fd < syncFd; fd++) stdio.push(fd);
  stdio.push('pipe');
  const child = opts.launch ? opts.launch(stagePath(), syncFd) : spawn(stagePath(), [String(syncFd)], { stdio, env: {} });
  const sock = child.stdio[syncFd] as Socket;

  let pid = 0;
  let ready = false;
  let exitCode: number | undefined;
  let resolveReady!: (pid: number) => void;
  let rejectReady!: (err: Error) => void;
  let resolveExit!: (code: number) => void;
  let rejectExit!: (err: Error) => void;
  const readyPromise = new Promise<number>((res, rej) => { resolveReady = res; rejectReady = rej; });
  const exitPromise = new Promise<number>((res, rej) => { resolveExit = res; rejectExit = rej; });
  let resolveClosed!: (err: Error | undefined) => void;
  const closedPromise = new Promise<Error | undefined>((res) => { resolveClosed = res; });
  // Nobody may be waiting on one of them; an unhandled rejection must not crash the CLI.
  readyPromise.catch(() => {});
  exitPromise.catch(() => {});

  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    if (!ready) rejectReady(failure);
    rejectExit(failure);
  };

  child.on('error', (err) => fail(new StageError(`cannot run ${stagePath()}: ${err.message}`)));
  sock.on('error', () => { /* EPIPE after the child died: the close/exit handlers report it */ });

  let buffered = '';
  let queue = Promise.resolve();
  sock.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      // Messages are handled strictly in order, SYNC answers included.
      queue = queue.then(() => handle(line));
    }
  });

  const handle = async (line: string): Promise<void> => {
    opts.debug?.(`stage: ${line}`);
    const space = line.indexOf(' ');
    const kind = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    switch (kind) {
      case 'MAPS': {
        try {
          if (!opts.onIdMaps) throw new StageError('the stage waits for id maps, but nobody writes them');
          await opts.onIdMaps(Number(rest));
        } catch (err) {
          sock.write('X');
          fail(err as Error);
          return;
        }
        sock.write('G');
        break;
      }
      case 'PID':
        pid = Number(rest);
        opts.onPid?.(pid);
        break;
      case 'SYNC': {
        let data: Buffer;
        try {
          data = opts.onSync ? await opts.onSync(rest, pid) : Buffer.alloc(0);
        } catch (err) {
          sock.write('X');
          fail(err as Error);
          return;
        }
        const len = Buffer.alloc(4);
        len.writeUInt32LE(data.length, 0);
        sock.write(Buffer.concat([Buffer.from('G'), len, data]));
        break;
      }
      case 'READY':
        ready = true;
        resolveReady(pid);
        break;
      case 'EXIT':
        exitCode = Number(rest);
        resolveExit(exitCode);
        break;
      case 'ERROR':
        fail(new StageError(rest));
        break;
      default:
        fail(new StageError(`unexpected message from the stage: ${JSON.stringify(line)}`));
    }
  };

  sock.on('close', () => {
    void queue.then(() => {
      resolveClosed(failure);
      if (!ready) fail(new StageError('the container init exited during setup without reporting an error'));
      else if (exitCode === undefined) rejectExit(failure ?? new StageError('the stage closed before reporting the exit status'));
    });
  });

  const header = plan.encode();
  sock.write(header);

  return {
    ready: readyPromise,
    exited: exitPromise,
    closed: closedPromise,
    pid: () => pid,
    detach: () => {
      sock.destroy();
      child.unref();
    },
  };
}
