// Which daemon the CLI talks to, and starting it when it is not running.
//
// Host: `-H/--host`, else $BERTH_HOST, else unix://<exec-root>/berth.sock (exec root from
// --exec-root, default /run/berth). $DOCKER_HOST is deliberately ignored: it usually points at
// a dockerd, and `berth` silently driving dockerd (or the reverse) would be worse than a
// missing-daemon error. Only unix:// hosts are supported (the daemon refuses TCP without TLS).
//
// Auto-start: when the socket does not exist (or nothing answers on it), `berth` starts
// `berth daemon` detached in its own session (setsid), with output appended to
// <exec-root>/berth-daemon.log, and waits for the socket (BERTH_DAEMON_START_TIMEOUT seconds,
// default 30). --data-root, --exec-root, --config-file and an explicit host are passed on.
// Two CLIs racing to start it are fine: the daemon's pid file lets one win, and both wait for
// the socket. BERTH_AUTOSTART=0 turns this off.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, fstatSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_EXEC_ROOT, defaultHost } from '../engine/config.ts';
import { DaemonConnectionError, EngineClient } from './client.ts';

export interface GlobalOptions {
  host?: string;
  dataRoot?: string;
  execRoot?: string;
  configFile?: string;
  debug?: boolean;
}

export interface ResolvedHost {
  address: string;
  socketPath: string;
  /** Given by -H or BERTH_HOST (passed on to an auto-started daemon). */
  explicit: boolean;
}

export class HostError extends Error {
  override name = 'HostError';
}

export function resolveHost(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): ResolvedHost {
  const given = g.host ?? (env.BERTH_HOST || undefined);
  const address = given ?? defaultHost(g.execRoot ?? DEFAULT_EXEC_ROOT);
  if (address.startsWith('unix://')) {
    const socketPath = address.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new HostError(`invalid host "${address}": expected unix:///absolute/path`);
    return { address, socketPath, explicit: given !== undefined };
  }
  if (address.startsWith('/')) return { address: `unix://${address}`, socketPath: address, explicit: given !== undefined };
  if (address.startsWith('tcp://') || address.startsWith('ssh://') || address.startsWith('npipe://')) {
    throw new HostError(`unsupported host "${address}": berth connects to unix sockets only (unix:///path)`);
  }
  throw new HostError(`invalid host "${address}": expected unix:///absolute/path`);
}

/** 'denied': a daemon may be there, but this user may not talk to it (not a reason to start one). */
function probeSocket(path: string, timeoutMs = 1000): Promise<'answers' | 'absent' | 'denied'> {
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => { s.destroy(); resolve('absent'); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve('answers'); });
    s.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(t); resolve(e.code === 'EACCES' || e.code === 'EPERM' ? 'denied' : 'absent'); });
  });
}

function tail(file: string, fromOffset: number, lines = 20): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(fromOffset, size - 64 * 1024);
      const buf = Buffer.alloc(Math.max(0, size - start));
      readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The command line that runs `berth daemon` with this same program (bundle or tsx source). */
function daemonCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [...process.execArgv, process.argv[1], 'daemon'] };
}

export async function startDaemonInBackground(g: GlobalOptions, host: ResolvedHost, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new DaemonConnectionError(
      `Cannot connect to the Berth daemon at ${host.address}: it is not running, and starting it needs root ` +
      `(run berth as root, or start it with: sudo berth daemon)`);
  }
  const execRoot = g.execRoot ?? DEFAULT_EXEC_ROOT;
  mkdirSync(execRoot, { recursive: true, mode: 0o711 });
  const logFile = join(execRoot, 'berth-daemon.log');
  const logFd = openSync(logFile, 'a', 0o600);
  const logStart = fstatSync(logFd).size;
  const { cmd, args } = daemonCommand();
  if (host.explicit) args.push('--host', host.address);
  if (g.dataRoot) args.push('--data-root', g.dataRoot);
  if (g.execRoot) args.push('--exec-root', g.execRoot);
  if (g.configFile) args.push('--config-file', g.configFile);
  if (g.debug) args.push('--debug');
  if (process.stderr.isTTY) process.stderr.write(`Starting the Berth daemon (log: ${logFile})\n`);
  // cwd "/" so the daemon does not keep the user's directory busy; from source (node --import tsx)
  // the loader is resolved from the cwd, so keep it there.
  const cwd = process.execArgv.length ? process.cwd() : '/';
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', logFd, logFd], env, cwd });
  closeSync(logFd);
  let exited: number | null | undefined;
  child.on('exit', (code, signal) => { exited = code ?? (signal ? 128 : 1); });
  child.on('error', () => { exited = 127; });
  child.unref();

  const timeoutS = Number(env.BERTH_DAEMON_START_TIMEOUT) > 0 ? Number(env.BERTH_DAEMON_START_TIMEOUT) : 30;
  const deadline = Date.now() + timeoutS * 1000;
  let exitedAt: number | undefined;
  for (;;) {
    if (existsSync(host.socketPath) && await probeSocket(host.socketPath) === 'answers') return;
    if (exited !== undefined) {
      // Ours failed; another CLI's daemon may still be coming up (it would have won the pid file).
      exitedAt ??= Date.now();
      if (Date.now() - exitedAt > 2000) break;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const why = exited !== undefined ? `it exited with status ${exited}` : `its socket did not appear within ${timeoutS}s`;
  const logTail = tail(logFile, logStart);
  throw new DaemonConnectionError(
    `could not start the Berth daemon for ${host.address}: ${why}. ` +
    `Log (${logFile}):\n${logTail || '(empty)'}`);
}

/** A client for the selected daemon, starting the daemon first when needed and allowed. */
export async function connectClient(g: GlobalOptions, opts: { autostart?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): Promise<EngineClient> {
  const host = resolveHost(g, env);
  const client = new EngineClient(host.socketPath, host.address, env.BERTH_API_VERSION || undefined);
  const autostart = (opts.autostart ?? true) && env.BERTH_AUTOSTART !== '0';
  if (autostart) {
    let present = false;
    try { present = statSync(host.socketPath).isSocket(); } catch { /* absent */ }
    if (!present || (await probeSocket(host.socketPath)) === 'absent') {
      // A socket file nobody answers on is a crashed daemon's leftover; the new daemon replaces it.
      await startDaemonInBackground(g, host, env);
    }
  }
  return client;
}
