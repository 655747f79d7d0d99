// `berth daemon`: configuration, single-instance lock, metadata DB, API modules, sockets, signals.
//
// Start-up order and why:
//   1. config (flags + daemon.json) — errors here leave nothing behind;
//   2. exec root and the pid file, created exclusively: the lock that makes a second daemon on the
//      same exec root refuse (a pid file whose process is gone is stale and replaced);
//   3. sockets: one that answers belongs to another daemon (refuse); one that does not is a stale
//      leftover of a crash (remove);
//   4. data root and the DB with every registered migration, then the modules' init;
//   5. listen; the socket is created under umask 0177 and then set to 0660 root:<group>, so it is
//      never reachable by others, not even for an instant.
// SIGTERM/SIGINT stop gracefully (streams end, requests get a few seconds, modules' shutdown
// hooks run, the DB is checkpointed and closed, socket and pid file removed); a third signal
// exits at once. SIGHUP reloads the reloadable directives and emits a `daemon reload` event.
import { randomUUID } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync,
} from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ApiServer } from './server.ts';
import type { ApiModule, DaemonContext, DiskUsageContributor, InfoContributor, Services } from './context.ts';
import { API_MODULES } from './routes/index.ts';
import { API_VERSION, BERTH_VERSION, GIT_COMMIT } from './version.ts';
import { guessStorageDriver } from './sysinfo.ts';
import {
  DaemonConfigError, loadDaemonConfig, parseHost, reloadDaemonConfig, type DaemonConfig, type DaemonFlags,
} from '../engine/config.ts';
import { MetadataDb } from '../engine/db.ts';
import { EventBus } from '../engine/events.ts';
import { Logger } from '../engine/log.ts';
import { hostname } from 'node:os';

/** The daemon cannot start; the message says why and what to do. */
export class DaemonStartError extends Error {
  override name = 'DaemonStartError';
}

class Daemon implements DaemonContext {
  readonly events = new EventBus();
  readonly startedAt = new Date();
  readonly services: Partial<Services> = {};
  readonly infoContributors: InfoContributor[] = [];
  readonly diskUsageContributors: DiskUsageContributor[] = [];
  storageDriver = guessStorageDriver();
  storageDriverStatus: Array<[string, string]> = [];
  readonly shutdownHooks: Array<() => void | Promise<void>> = [];

  /** Set once the API server exists (before any module's init). */
  apiServer?: ApiServer;

  constructor(public config: DaemonConfig, readonly db: MetadataDb, readonly log: Logger, readonly id: string) {}

  serveApiConnection(socket: Socket): void {
    if (!this.apiServer) { socket.destroy(); return; }
    this.apiServer.http.emit('connection', socket);
  }

  onShutdown(fn: () => void | Promise<void>): void {
    this.shutdownHooks.push(fn);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is `pid` a berth daemon (not an unrelated process that got a recycled pid)? */
function looksLikeBerthDaemon(pid: number): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('daemon') && args.some((a) => a.includes('berth'));
  } catch {
    return false;
  }
}

function acquirePidFile(path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new DaemonStartError(`cannot create the pid file ${path}: ${(e as Error).message}`);
      let pid = NaN;
      try { pid = parseInt(readFileSync(path, 'utf8').trim(), 10); } catch { /* unreadable: treat as stale */ }
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) && looksLikeBerthDaemon(pid)) {
        throw new DaemonStartError(
          `another berth daemon (pid ${pid}) is running with this exec root (pid file ${path}); ` +
          `stop it first (kill ${pid}), or give this one its own --exec-root`);
      }
      try { unlinkSync(path); } catch { /* raced with another starter; retry decides */ }
      continue;
    }
    writeSync(fd, `${process.pid}`);
    closeSync(fd);
    return;
  }
  throw new DaemonStartError(`cannot take the pid file ${path}: another berth daemon is starting with the same exec root`);
}

function releasePidFile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  } catch { /* already gone */ }
}

/** Resolves true when something accepts connections on the unix socket. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => { s.destroy(); resolve(true); }, 1000); // accepted but silent: in use
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

async function prepareSocketPath(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new DaemonStartError(`${path} exists and is not a socket; remove it or choose another --host`);
  if (await socketAnswers(path)) {
    throw new DaemonStartError(`another daemon is already listening on ${path}; stop it first, or give this one another --host`);
  }
  unlinkSync(path); // a leftover of a daemon that did not shut down cleanly
}

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try { text = readFileSync('/etc/group', 'utf8'); } catch { /* fall through */ }
  for (const line of text.split('\n')) {
    const [g, , gid] = line.split(':');
    if (g === name && gid !== undefined) return Number(gid);
  }
  throw new DaemonStartError(`group "${name}" (--group) does not exist in /etc/group`);
}

function listenUnix(server: ApiServer, path: string, gid: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const old = process.umask(0o177);
    const onError = (e: Error): void => {
      process.umask(old);
      reject(new DaemonStartError(`cannot listen on ${path}: ${e.message}`));
    };
    server.http.once('error', onError);
    server.http.listen(path, () => {
      process.umask(old);
      server.http.off('error', onError);
      try {
        chmodSync(path, 0o660);
        chownSync(path, 0, gid);
      } catch (e) {
        reject(new DaemonStartError(`cannot set the permissions of ${path}: ${(e as Error).message}`));
        return;
      }
      resolve();
    });
  });
}

export interface DaemonHandle {
  readonly context: DaemonContext;
  readonly server: ApiServer;
  /** Socket paths being served. */
  readonly sockets: string[];
  /** Re-reads daemon.json (as SIGHUP). */
  reload(): void;
  /** Graceful stop; safe to call more than once. */
  stop(reason?: string): Promise<void>;
  /** Settles when the daemon has stopped. */
  readonly stopped: Promise<void>;
}

export interface StartOptions {
  modules?: ApiModule[];
  logger?: Logger;
  /** Grace period for open requests at shutdown (ms). */
  shutdownGraceMs?: number;
}

export async function startDaemon(flags: DaemonFlags, opts: StartOptions = {}): Promise<DaemonHandle> {
  if (process.getuid?.() !== 0) {
    throw new DaemonStartError('berth daemon needs root privileges (it manages mounts, namespaces and cgroups); run it as root');
  }
  const log = opts.logger ?? new Logger('info');
  const config = loadDaemonConfig(flags, (m) => log.warn(m));
  log.setLevel(config.logLevel);
  if (config.configFile) log.info('loaded configuration', { file: config.configFile });

  const cleanups: Array<() => void> = [];
  const cleanupAll = (): void => { for (const c of cleanups.reverse()) { try { c(); } catch { /* best effort */ } } };
  try {
    mkdirSync(config.execRoot, { recursive: true, mode: 0o711 });
    acquirePidFile(config.pidFile);
    cleanups.push(() => releasePidFile(config.pidFile));

    const sockets = config.hosts.map((h) => parseHost(h).path);
    for (const s of sockets) await prepareSocketPath(s);
    const gid = config.group ? groupId(config.group) : 0;

    mkdirSync(config.dataRoot, { recursive: true, mode: 0o700 });
    const db = MetadataDb.open(join(config.dataRoot, 'berth.db'));
    cleanups.push(() => db.close());
    for (const m of db.migrate()) log.info('applied DB migration', { component: m.component, version: m.version, name: m.name });
    let id = db.getMeta('daemon-id');
    if (!id) {
      id = randomUUID();
      db.setMeta('daemon-id', id);
    }

    const daemon = new Daemon(config, db, log, id);
    const server = new ApiServer(daemon);
    daemon.apiServer = server;
    const modules = opts.modules ?? API_MODULES;
    for (const m of modules) {
      try {
        await m.init?.(daemon);
        m.routes?.(server.routes, daemon);
      } catch (e) {
        throw new DaemonStartError(`cannot start the ${m.name} module: ${(e as Error).message}`);
      }
    }

    for (const s of sockets) {
      await listenUnix(server, s, gid);
      cleanups.push(() => { try { unlinkSync(s); } catch { /* gone */ } });
      log.info(`API listen on ${s}`);
    }
    log.info('Berth daemon', { version: BERTH_VERSION, commit: GIT_COMMIT, 'api-version': API_VERSION, 'storage-driver': daemon.storageDriver, 'data-root': config.dataRoot, 'exec-root': config.execRoot });
    log.info('Daemon has completed initialization');

    let stopping: Promise<void> | undefined;
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((r) => { resolveStopped = r; });

    const stop = (reason?: string): Promise<void> => {
      if (stopping) return stopping;
      stopping = (async () => {
        if (reason) log.info(`Processing signal '${reason}'`);
        daemon.events.close();
        await server.close(opts.shutdownGraceMs ?? 5000);
        for (const hook of [...daemon.shutdownHooks].reverse()) {
          try { await hook(); } catch (e) { log.error(`shutdown hook failed: ${(e as Error).message}`); }
        }
        cleanupAll();
        log.info('Daemon shutdown complete');
        resolveStopped();
      })();
      return stopping;
    };

    const reload = (): void => {
      try {
        const next = reloadDaemonConfig(daemon.config, flags, (m) => log.warn(m));
        daemon.config = next;
        log.setLevel(next.logLevel);
        log.info('Reloaded configuration', { file: next.configFile || '(none)' });
        daemon.events.log('daemon', 'reload', {
          ID: daemon.id,
          Attributes: {
            'debug': String(next.debug),
            'default-runtime': next.defaultRuntime,
            'insecure-registries': JSON.stringify(next.insecureRegistries),
            'labels': '[]',
            'live-restore': 'true',
            'name': hostname(),
            'registry-mirrors': JSON.stringify(next.registryMirrors),
            'runtimes': Object.keys(next.runtimes).sort().join(' '),
          },
        });
      } catch (e) {
        log.error(`Error reconfiguring the daemon: ${(e as Error).message}`);
      }
    };

    return { context: daemon, server, sockets, reload, stop, stopped };
  } catch (e) {
    cleanupAll();
    if (e instanceof DaemonConfigError || e instanceof DaemonStartError) throw e;
    throw new DaemonStartError((e as Error).message);
  }
}

/** The `berth daemon` command: runs until a signal stops it. Returns the exit code. */
export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const log = new Logger(flags.debug ? 'debug' : 'info');
  let handle: DaemonHandle;
  try {
    handle = await startDaemon(flags, { logger: log });
  } catch (e) {
    // Plain text, not a log line: this is what the person starting the daemon reads.
    process.stderr.write(`berth daemon: failed to start: ${(e as Error).message}\n`);
    return 1;
  }
  let signals = 0;
  const onStop = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals >= 3) {
      log.error('Forcing daemon shutdown without cleanup; 3 interrupts received');
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    }
    void handle.stop(sig === 'SIGINT' ? 'interrupt' : 'terminated');
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => handle.reload());
  // A closed terminal or log pipe must not kill the daemon.
  process.on('SIGPIPE', () => {});
  process.on('uncaughtException', (err) => {
    log.error(`uncaught exception: ${err.stack ?? err.message}`);
    void handle.stop().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (reason) => {
    log.error(`unhandled promise rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  });
  await handle.stopped;
  return 0;
}

