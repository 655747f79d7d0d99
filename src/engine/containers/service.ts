// The container service: docker's container lifecycle on top of the image service (snapshots),
// the runtime library (in-process, no Node start-up per container), the per-container monitor
// (native/monitor.c: stdio, logs, exit status; outlives the daemon), networks and volumes.
//
// The daemon is the only writer of container records. Every state change of one container runs
// under that container's lock (start, stop, exit handling, remove), so an exit that arrives while
// a stop is in progress is handled once, in order. Running containers are not stopped when the
// daemon stops (live restore): at start the daemon reconnects to each monitor, or reads the exit
// record a monitor left while the daemon was away, and applies the restart policy.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageService } from '../../image/service.ts';
import type { MountSpec } from '../../image/snapshots.ts';
import type { ContainerConfig, Digest } from '../../image/types.ts';
import { Runtime } from '../../runtime/container.ts';
import type { CgroupManager } from '../../runtime/cgroups/index.ts';
import { detectLayout } from '../../runtime/cgroups/layout.ts';
import type { Mount, Spec } from '../../runtime/spec-types.ts';
import { parseSignal as signalNumber } from '../../runtime/signals.ts';
import type { EventBus } from '../events.ts';
import type { Logger } from '../log.ts';
import { buildSpec, resolveUser, RunOptionsError } from '../oci-spec.ts';
import { MonitorConnection, monitorRunning, readExitRecord } from '../monitor.ts';
import { BuiltinDriver, ExternalDriver, lookPath, type OciDriver } from './oci-driver.ts';
import { BUILTIN_RUNTIME } from '../config.ts';
import { ContainerStore } from './store.ts';
import { mark } from '../../runtime/timing.ts';
import { rootfsPropagation } from '../volumes.ts';
import { ContainerConfigError, entrypointAndArgs, mergeImageConfig, runOptionsFrom, validateHostConfig } from './create-config.ts';
import type { MetadataDb } from '../db.ts';
import type { Sandbox, SandboxRequest } from '../network/index.ts';
import type {
  ContainerAccess, ContainerRecord, ContainerState, DockerContainerConfig, DockerHostConfig, EndpointSettings, MountPoint, NetworkSettings,
} from './types.ts';

export type ContainerErrorCode = 'not-found' | 'conflict' | 'invalid' | 'not-modified' | 'unavailable';

export class ContainerError extends Error {
  override name = 'ContainerError';
  constructor(readonly code: ContainerErrorCode, message: string) {
    super(message);
  }
}

/** What the service needs from networks and volumes (their modules implement these). */
export type SandboxLike = Sandbox;
export type SandboxRequestLike = SandboxRequest;
export interface NetworkProvider {
  validate(req: SandboxRequestLike): void;
  prepare(req: SandboxRequestLike): Promise<SandboxLike>;
  release(containerId: string): Promise<void>;
  containerRemoved(containerId: string): Promise<void>;
  reconcile(running: Set<string>): Promise<void>;
}
export interface VolumeProvider {
  planMounts(req: { containerId: string; hostConfig: DockerHostConfig; imageVolumes: Record<string, object>; volumesFrom?: (idOrName: string) => MountPoint[] }): MountPoint[];
  ociMounts(containerId: string, mounts: MountPoint[], rootfs: string): Promise<Mount[]>;
  release(containerId: string, removeAnonymous: boolean): Promise<void>;
}

export interface ContainerServiceOptions {
  dataRoot: string;
  execRoot: string;
  db: MetadataDb;
  images: ImageService;
  events: EventBus;
  log: Logger;
  networks: () => NetworkProvider | undefined;
  volumes: () => VolumeProvider | undefined;
  /** daemon.json log-driver / log-opts defaults. */
  logDefaults: () => { type: string; config: Record<string, string> };
  /** daemon.json "runtimes" (read per use: SIGHUP may change them). */
  runtimes: () => Record<string, { path: string; runtimeArgs?: string[] }>;
  /** daemon.json "default-runtime". */
  defaultRuntime: () => string;
  /** daemon.json "cgroup-parent": where containers' cgroups go unless --cgroup-parent says otherwise. */
  cgroupParent: () => string;
  /** Host path of dist/berth-init for --init, when built. */
  initPath?: () => string | undefined;
}

export interface CreateRequest {
  name?: string;
  config: DockerContainerConfig;
  hostConfig: DockerHostConfig;
  endpointsConfig: Record<string, EndpointSettings>;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

interface Live {
  conn: MonitorConnection;
  dir: string;
  exited: Promise<number>;
}

interface Waiter { condition: WaitCondition; resolve: (r: { StatusCode: number; Error?: { Message: string } }) => void }

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ADJECTIVES = ['admiring', 'agitated', 'brave', 'busy', 'calm', 'clever', 'dazzling', 'eager', 'focused', 'gallant', 'happy', 'jolly', 'keen', 'loving', 'nifty', 'quirky', 'serene', 'sharp', 'stoic', 'vibrant', 'wizardly', 'zealous'];
const NOUNS = ['archimedes', 'babbage', 'curie', 'darwin', 'euclid', 'fermi', 'galileo', 'hopper', 'johnson', 'kepler', 'lovelace', 'meitner', 'newton', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'turing', 'wozniak'];

function emptyState(): ContainerState {
  return {
    Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false,
    Pid: 0, ExitCode: 0, Error: '', StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z',
  };
}

function emptyNetworkSettings(): NetworkSettings {
  return { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} };
}

/** docker's units for log-opt max-size: "10m", "1g", "512k", plain bytes (powers of 1024). */
export function parseLogSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(v.trim());
  if (!m) throw new ContainerConfigError(`invalid size: '${v}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't' | 'p'];
  return Math.floor(Number(m[1]) * mult);
}

export class ContainerService implements ContainerAccess {
  readonly store: ContainerStore;
  readonly runtime: Runtime;
  private readonly builtin: BuiltinDriver;
  private readonly live = new Map<string, Live>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly waiters = new Map<string, Waiter[]>();
  /** attach requests for a container that has not started yet: connected at its next start. */
  private readonly pendingAttach = new Map<string, Array<(conn: MonitorConnection | Error) => void>>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly cgroupV2: boolean;
  private closed = false;

  constructor(private readonly opts: ContainerServiceOptions) {
    this.store = new ContainerStore(opts.db);
    this.runtime = new Runtime({
      root: join(opts.execRoot, 'runtime'),
      log: (level, message) => { if (level !== 'debug') opts.log[level === 'warning' ? 'warn' : level === 'error' ? 'error' : 'info']?.(message); },
    });
    this.builtin = new BuiltinDriver(this.runtime);
    let v2 = false;
    try { v2 = detectLayout().version === 2; } catch { /* no cgroups mounted: v1 paths fail later with a clear error */ }
    this.cgroupV2 = v2;
    mkdirSync(join(opts.dataRoot, 'containers'), { recursive: true, mode: 0o700 });
    mkdirSync(join(opts.execRoot, 'containers'), { recursive: true, mode: 0o700 });
    mkdirSync(join(opts.execRoot, 'm'), { recursive: true, mode: 0o700 });
  }

  // ---- lookup ---------------------------------------------------------------------------------

  get(idOrName: string): ContainerRecord {
    const found = this.find(idOrName);
    if (!found) throw new ContainerError('not-found', `No such container: ${idOrName}`);
    return found;
  }

  find(idOrName: string): ContainerRecord | undefined {
    if (!idOrName) return undefined;
    const exact = this.store.byId(idOrName) ?? this.store.byName(idOrName);
    if (exact) return exact;
    if (!/^[0-9a-f]+$/.test(idOrName)) return undefined;
    const matches = this.store.all().filter((r) => r.Id.startsWith(idOrName));
    if (matches.length > 1) throw new ContainerError('invalid', `multiple IDs found with provided prefix: ${idOrName}`);
    return matches[0];
  }

  list(): ContainerRecord[] {
    return this.store.all();
  }

  dataDir(id: string): string {
    return join(this.opts.dataRoot, 'containers', id);
  }

  bundleDir(id: string): string {
    return join(this.opts.execRoot, 'containers', id);
  }

  rootfsDir(id: string): string {
    return join(this.bundleDir(id), 'rootfs');
  }

  /** Kept short: the monitor's sockets must fit sun_path (108 bytes). */
  monitorDir(id: string): string {
    return join(this.opts.execRoot, 'm', id.slice(0, 16));
  }

  snapshotMounts(id: string): MountSpec {
    return this.opts.images.snapshots.mounts(this.get(id).Id);
  }

  isRunning(rec: ContainerRecord): boolean {
    return rec.State.Running;
  }

  async withRootfs<T>(idOrName: string, fn: (rootfs: string) => T | Promise<T>): Promise<T> {
    const rec = this.get(idOrName);
    const target = this.rootfsDir(rec.Id);
    if (rec.State.Running && isMountPoint(target)) return fn(target);
    return this.lock(rec.Id, async () => {
      if (isMountPoint(target)) return fn(target);
      mkdirSync(target, { recursive: true });
      await this.opts.images.snapshots.mount(rec.Id, target);
      try {
        return await fn(target);
      } finally {
        if (!this.live.has(rec.Id)) await this.opts.images.snapshots.unmount(target).catch(() => {});
      }
    });
  }

  private readonly drivers = new Map<string, OciDriver>();

  /** The OCI runtimes a container may name: berth (built in), daemon.json "runtimes", and runc/crun when installed. */
  runtimeNames(): string[] {
    const names = new Set([BUILTIN_RUNTIME, ...Object.keys(this.opts.runtimes())]);
    for (const n of ['runc', 'crun']) if (lookPath(n)) names.add(n);
    return [...names];
  }

  driver(name: string): OciDriver {
    const known = this.drivers.get(name);
    if (known) return known;
    let d: OciDriver;
    if (name === BUILTIN_RUNTIME || name === '') d = this.builtin;
    else {
      const cfg = this.opts.runtimes()[name] ?? (['runc', 'crun'].includes(name) && lookPath(name) ? { path: name } : undefined);
      if (!cfg) throw new ContainerError('invalid', `unknown or invalid runtime name: ${name}`);
      d = new ExternalDriver(name, cfg.path, cfg.runtimeArgs ?? [], join(this.opts.execRoot, 'runtimes', name), (id) => this.bundleDir(id),
        (id) => join(this.find(id)?.HostConfig.CgroupParent || this.opts.cgroupParent(), id));
    }
    this.drivers.set(name, d);
    return d;
  }

  private driverOf(rec: ContainerRecord): OciDriver {
    return this.driver(rec.Runtime || BUILTIN_RUNTIME);
  }

  /** Runs fn after every earlier operation on this container has finished. */
  private lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.locks.set(id, tail);
    void tail.then(() => { if (this.locks.get(id) === tail) this.locks.delete(id); });
    return next;
  }

  private save(rec: ContainerRecord): void {
    this.store.save(rec);
  }

  private event(action: string, rec: ContainerRecord, extra: Record<string, string> = {}): void {
    this.opts.events.log('container', action, {
      ID: rec.Id,
      Attributes: { ...(rec.Config.Labels ?? {}), image: rec.ImageRef, name: rec.Name.slice(1), ...extra },
    });
  }

  /** Which container uses an image (rmi refuses), or undefined. */
  imageUser(imageId: Digest): string | undefined {
    return this.store.all().find((r) => r.Image === imageId)?.Id;
  }

  // ---- create ---------------------------------------------------------------------------------

  private generateName(): string {
    for (let i = 0; i < 100; i++) {
      const name = `${ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)]}_${NOUNS[Math.floor(Math.random() * NOUNS.length)]}${i > 5 ? i : ''}`;
      if (!this.store.byName(name)) return name;
    }
    return `berth_${randomBytes(4).toString('hex')}`;
  }

  private logConfig(hc: DockerHostConfig): { type: string; config: Record<string, string> } {
    const d = this.opts.logDefaults();
    const type = hc.LogConfig?.Type || d.type || 'json-file';
    const config = hc.LogConfig?.Type ? (hc.LogConfig.Config ?? {}) : { ...d.config, ...(hc.LogConfig?.Config ?? {}) };
    if (type !== 'json-file' && type !== 'none') throw new ContainerConfigError(`failed to create task for container: logger: no log driver named '${type}' is registered`);
    for (const key of Object.keys(config)) {
      if (type === 'none') throw new ContainerConfigError(`unknown log opt '${key}' for none log driver`);
      if (!['max-size', 'max-file', 'labels', 'env', 'env-regex', 'compress', 'tag', 'labels-regex'].includes(key)) {
        throw new ContainerConfigError(`unknown log opt '${key}' for json-file log driver`);
      }
    }
    if (config['max-size'] !== undefined) parseLogSize(config['max-size']);
    if (config['max-file'] !== undefined) {
      const n = Number(config['max-file']);
      if (!Number.isInteger(n) || n < 1) throw new ContainerConfigError('max-file cannot be less than 1');
      if (n > 1 && config['max-size'] === undefined) throw new ContainerConfigError('max-file can only be used with max-size');
    }
    return { type, config };
  }

  async create(req: CreateRequest): Promise<{ Id: string; Warnings: string[] }> {
    const config = { ...req.config };
    const hc: DockerHostConfig = { ...req.hostConfig };
    if (!config.Image) throw new ContainerConfigError('No image specified'); // dockerd: "config.Image required"
    let name = req.name;
    if (name !== undefined && name !== '') {
      if (!NAME_RE.test(name)) throw new ContainerConfigError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if (!name.startsWith('/')) name = `/${name}`;
      const other = this.store.byName(name);
      if (other) throw nameConflict(name, other.Id);
    } else {
      name = `/${this.generateName()}`;
    }
    const image = this.opts.images.get(config.Image);
    const imageConfig = await this.opts.images.config(image.id);
    const merged = mergeImageConfig(config, imageConfig.config ?? {});
    const { path, args } = entrypointAndArgs(merged);
    validateHostConfig(hc, merged);
    const log = this.logConfig(hc);
    hc.LogConfig = { Type: log.type, Config: log.config };
    hc.NetworkMode ||= 'bridge';
    hc.RestartPolicy ??= { Name: 'no', MaximumRetryCount: 0 };
    if (!hc.RestartPolicy.Name) hc.RestartPolicy.Name = 'no';
    if (hc.Init && !this.opts.initPath?.()) throw new ContainerConfigError('--init: the init binary (dist/berth-init) is missing; run "npm run build"');
    if (hc.PidMode?.startsWith('container:')) this.get(hc.PidMode.slice(10));
    if (hc.IpcMode?.startsWith('container:')) this.get(hc.IpcMode.slice(10));

    const id = randomBytes(32).toString('hex');
    const dataDir = this.dataDir(id);
    const created = new Date().toISOString();
    const hostname = merged.Hostname || (hc.NetworkMode === 'host' ? '' : id.slice(0, 12));
    const rec: ContainerRecord = {
      Id: id,
      Name: name,
      Created: created,
      Path: path,
      Args: args,
      ImageRef: config.Image,
      Image: image.id,
      Config: { ...merged, Hostname: hostname, Image: config.Image },
      HostConfig: hc,
      State: emptyState(),
      RestartCount: 0,
      NetworkSettings: emptyNetworkSettings(),
      Mounts: [],
      LogPath: log.type === 'json-file' ? join(dataDir, `${id}-json.log`) : '',
      ResolvConfPath: join(dataDir, 'resolv.conf'),
      HostnamePath: join(dataDir, 'hostname'),
      HostsPath: join(dataDir, 'hosts'),
      Runtime: (hc.Runtime as string | undefined) || this.opts.defaultRuntime() || BUILTIN_RUNTIME,
      ExecIDs: [],
    };
    if (!this.runtimeNames().includes(rec.Runtime)) throw new ContainerError('invalid', `unknown or invalid runtime name: ${rec.Runtime}`);
    // Network checks before anything is made, so a bad --network leaves nothing behind.
    const networks = this.opts.networks();
    networks?.validate(this.sandboxRequest(rec, req.endpointsConfig));
    (rec as ContainerRecord & { EndpointsConfig?: Record<string, EndpointSettings> }).EndpointsConfig = req.endpointsConfig;

    let snapshotMade = false;
    let volumesPlanned = false;
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o710 });
      const top = image.chainIds.at(-1) ?? null;
      await this.opts.images.snapshots.prepareActive(id, top, { labels: { 'berth.container': id } });
      snapshotMade = true;
      const volumes = this.opts.volumes();
      if (volumes) {
        volumesPlanned = true;
        rec.Mounts = volumes.planMounts({
          containerId: id, hostConfig: hc, imageVolumes: merged.Volumes ?? {},
          volumesFrom: (x) => this.get(x).Mounts,
        });
      }
      let inserted = this.store.insert(rec);
      // A generated name taken meanwhile by a concurrent create: draw another.
      for (let i = 0; !inserted && !req.name && i < 20; i++) {
        rec.Name = `/${this.generateName()}`;
        inserted = this.store.insert(rec);
      }
      if (!inserted) {
        const other = this.store.byName(rec.Name);
        throw nameConflict(rec.Name, other?.Id ?? '');
      }
    } catch (err) {
      if (volumesPlanned) await this.opts.volumes()?.release(id, true).catch(() => {});
      if (snapshotMade) await this.opts.images.snapshots.remove(id).catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
    this.event('create', rec);
    return { Id: id, Warnings: [] };
  }

  private sandboxRequest(rec: ContainerRecord, endpointsConfig?: Record<string, EndpointSettings>): SandboxRequestLike {
    return {
      containerId: rec.Id,
      containerName: rec.Name.slice(1),
      hostname: rec.Config.Hostname || rec.Id.slice(0, 12),
      domainname: rec.Config.Domainname || undefined,
      hostConfig: rec.HostConfig,
      exposedPorts: (rec.Config.ExposedPorts ?? {}) as Record<string, object>,
      endpointsConfig: endpointsConfig ?? (rec as ContainerRecord & { EndpointsConfig?: Record<string, EndpointSettings> }).EndpointsConfig ?? {},
      dataDir: this.dataDir(rec.Id),
    };
  }

  // ---- start ----------------------------------------------------------------------------------

  async start(idOrName: string): Promise<void> {
    const rec = this.get(idOrName);
    await this.lock(rec.Id, async () => {
      const cur = this.get(rec.Id);
      if (cur.State.Running) throw new ContainerError('not-modified', 'container already started');
      if (cur.State.Status === 'removing' || cur.State.Dead) throw new ContainerError('conflict', `cannot start container ${cur.Id}: container is marked for removal and cannot be started`);
      this.cancelRestart(cur.Id);
      cur.ManuallyStopped = false;
      try {
        await this.startLocked(cur);
      } catch (err) {
        // As dockerd: a --rm container whose start failed is removed (`docker run --rm` waits for that).
        if (cur.HostConfig.AutoRemove) {
          await this.removeNow(cur, { force: true, volumes: true }).catch((e) => this.opts.log.warn(`removing ${cur.Id}: ${(e as Error).message}`));
        }
        throw err;
      }
    });
  }

  private async startLocked(rec: ContainerRecord): Promise<void> {
    const id = rec.Id;
    const images = this.opts.images;
    const rootfs = this.rootfsDir(id);
    const bundle = this.bundleDir(id);
    const dir = this.monitorDir(id);
    const networks = this.opts.networks();
    mark('start: begin');
    let mounted = false;
    let sandboxMade = false;
    let created = false;
    try {
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      if (!isMountPoint(rootfs)) {
        await images.snapshots.mount(id, rootfs);
        mounted = true;
      }
      mark('start: rootfs mounted');
      const sandbox = networks ? await networks.prepare(this.sandboxRequest(rec)) : this.isolatedSandbox(rec);
      sandboxMade = networks !== undefined;
      mark('start: network sandbox');
      rec.NetworkSettings = sandbox.networkSettings;
      rec.HostsPath = sandbox.hostsPath;
      rec.ResolvConfPath = sandbox.resolvConfPath;
      rec.HostnamePath = sandbox.hostnamePath;
      const volumeMounts = this.opts.volumes() ? await this.opts.volumes()!.ociMounts(id, rec.Mounts, rootfs) : [];
      const spec = this.buildContainerSpec(rec, rootfs, sandbox, volumeMounts);
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
      mark('start: spec written');

      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const log = rec.HostConfig.LogConfig?.Config ?? {};
      const tty = rec.Config.Tty === true;
      const driver = this.driverOf(rec);
      // Whatever a previous run left in the runtime's state (a daemon killed mid-start).
      try { driver.delete(id); } catch { /* none */ }
      created = true;
      await driver.create(id, bundle, {
        dir,
        logPath: rec.LogPath || undefined,
        logMaxSize: log['max-size'] ? parseLogSize(log['max-size']) : undefined,
        logMaxFile: log['max-file'] ? Number(log['max-file']) : undefined,
        tty,
        stdin: rec.Config.OpenStdin === true,
        stdinOnce: rec.Config.StdinOnce === true,
      });
      mark('start: created under the monitor');
      const conn = await MonitorConnection.connect(dir);
      conn.onOutput(() => { /* the daemon's own connection watches the exit only */ });
      const exited = conn.exited;
      this.live.set(id, { conn, dir, exited });
      for (const attach of this.pendingAttach.get(id) ?? []) {
        try { attach(await MonitorConnection.connect(dir)); } catch (err) { attach(err as Error); }
      }
      this.pendingAttach.delete(id);
      const size = rec.HostConfig.ConsoleSize;
      if (tty && size && size[0] > 0 && size[1] > 0) conn.resize(size[0], size[1]);
      driver.start(id);
      mark('start: started');
      rec.State = { ...emptyState(), Status: 'running', Running: true, Pid: driver.pid(id), StartedAt: new Date().toISOString(), FinishedAt: rec.State.FinishedAt };
      this.save(rec);
      this.event('start', rec);
      this.watch(id, dir, exited);
    } catch (err) {
      const live = this.live.get(id);
      if (live) { live.conn.close(); this.live.delete(id); }
      if (created) try { this.driverOf(rec).delete(id); } catch { /* gone */ }
      if (sandboxMade) await networks?.release(id).catch(() => {});
      if (mounted) await images.snapshots.unmount(rootfs).catch(() => {});
      const message = (err as Error).message;
      rec.State = { ...rec.State, Status: rec.State.Status === 'created' ? 'created' : 'exited', Running: false, Restarting: false, Pid: 0, Error: message, ExitCode: exitCodeForStartError(message) };
      this.save(rec);
      for (const attach of this.pendingAttach.get(id) ?? []) attach(err as Error);
      this.pendingAttach.delete(id);
      if (created || /^exec|executable|StageError/.test(message) || (err as Error).name === 'StageError') {
        // dockerd's wording (the docker CLI derives exit statuses 126/127 from it): errno texts in
        // Go's lower case, under "OCI runtime create failed".
        const text = goErrnoText(message);
        const code = /executable file not found|no such file or directory|permission denied/.test(text) ? 'invalid' : 'unavailable';
        throw new ContainerError(code, `failed to create task for container: OCI runtime create failed: ${text}: unknown`);
      }
      throw err;
    }
  }

  /** --network none without the network module: a private namespace with loopback only. */
  private isolatedSandbox(rec: ContainerRecord): SandboxLike {
    const d = this.dataDir(rec.Id);
    const hostname = rec.Config.Hostname || rec.Id.slice(0, 12);
    writeFileSync(join(d, 'hostname'), `${hostname}\n`);
    writeFileSync(join(d, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
    let resolv = '';
    try { resolv = readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* none */ }
    writeFileSync(join(d, 'resolv.conf'), resolv);
    return { hostsPath: join(d, 'hosts'), resolvConfPath: join(d, 'resolv.conf'), hostnamePath: join(d, 'hostname'), networkSettings: emptyNetworkSettings() };
  }

  private buildContainerSpec(rec: ContainerRecord, rootfs: string, sandbox: SandboxLike, volumeMounts: Mount[]): Spec {
    const hc = rec.HostConfig;
    const opts = runOptionsFrom(rec.Id, rootfs, rec.Config, hc, this.cgroupV2);
    const init = hc.Init ? this.opts.initPath?.() : undefined;
    if (init) (opts as typeof opts & { init?: string }).init = init;
    const imageLike = { config: rec.Config as ContainerConfig } as Parameters<typeof buildSpec>[0];
    const spec = buildSpec(imageLike, opts);
    spec.root = { path: rootfs, readonly: hc.ReadonlyRootfs === true };
    const taken = new Set(volumeMounts.map((m) => m.destination));
    const etc: Mount[] = [];
    const bindFile = (destination: string, source: string): void => {
      if (taken.has(destination) || !existsSync(source)) return;
      etc.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', ...(hc.ReadonlyRootfs ? ['ro'] : [])] });
    };
    bindFile('/etc/resolv.conf', sandbox.resolvConfPath);
    bindFile('/etc/hostname', sandbox.hostnamePath);
    bindFile('/etc/hosts', sandbox.hostsPath);
    // dockerd's order: its defaults (minus those a user mount replaces, and anything under a
    // user-mounted /dev), the user's mounts, then the network files unless the user mounted one.
    const users = new Set(volumeMounts.map((m) => m.destination));
    const defaults = (spec.mounts ?? []).filter((m) => !users.has(m.destination) && !(users.has('/dev') && m.destination.startsWith('/dev/')));
    spec.mounts = [...defaults, ...volumeMounts, ...etc];
    const propagation = rootfsPropagation(volumeMounts);
    if (propagation && spec.linux) spec.linux.rootfsPropagation = propagation;
    const ns = spec.linux?.namespaces ?? [];
    const setPath = (type: string, path: string | undefined): void => {
      const entry = ns.find((n) => n.type === type);
      if (entry && path) entry.path = path;
      else if (!entry && path) ns.push({ type: type as 'network', path });
    };
    if (sandbox.netnsPath) setPath('network', sandbox.netnsPath);
    else if (hc.NetworkMode !== 'none' && this.opts.networks()) {
      // The network module answered "the host's namespace" (--network host).
      if (spec.linux) spec.linux.namespaces = ns.filter((n) => n.type !== 'network');
    }
    for (const [mode, type] of [[hc.PidMode, 'pid'], [hc.IpcMode, 'ipc']] as const) {
      if (!mode?.startsWith('container:')) continue;
      const other = this.get(mode.slice(10));
      if (!other.State.Running) throw new ContainerError('conflict', `cannot join ${type} namespace of a non running container: ${other.Id}`);
      setPath(type, `/proc/${other.State.Pid}/ns/${type}`);
    }
    if (spec.linux) {
      spec.linux.cgroupsPath = join(hc.CgroupParent || this.opts.cgroupParent(), rec.Id);
      if (hc.OomScoreAdj) spec.process!.oomScoreAdj = hc.OomScoreAdj;
    }
    return spec;
  }

  // ---- exit, restart --------------------------------------------------------------------------

  /**
   * Handles the end of the daemon's connection to a monitor: the exit status, or, when the
   * connection dropped without one while the monitor still runs, a new connection. Nothing at
   * daemon shutdown: the containers keep running (live restore).
   */
  private watch(id: string, dir: string, exited: Promise<number>): void {
    exited.then((code) => {
      if (!this.closed) void this.onExit(id, code);
    }, async () => {
      if (this.closed) return;
      if (await monitorRunning(dir)) {
        try {
          const conn = await MonitorConnection.connect(dir);
          conn.onOutput(() => {});
          this.live.set(id, { conn, dir, exited: conn.exited });
          this.watch(id, dir, conn.exited);
          return;
        } catch { /* it ended meanwhile */ }
      }
      if (!this.closed) void this.onExit(id, readExitRecord(dir)?.exitCode ?? 255);
    });
  }

  private async onExit(id: string, code: number, finishedAt?: Date): Promise<void> {
    await this.lock(id, async () => {
      const rec = this.store.byId(id);
      const live = this.live.get(id);
      if (live) { live.conn.close(); this.live.delete(id); }
      if (!rec) return;
      if (!rec.State.Running && !rec.State.Restarting && !rec.State.Paused) return;
      const exit = readExitRecord(this.monitorDir(id));
      await this.cleanupAfterExit(rec);
      rec.State = {
        ...rec.State, Status: 'exited', Running: false, Paused: false, Restarting: false, Pid: 0,
        ExitCode: code, FinishedAt: (finishedAt ?? exit?.finishedAt ?? new Date()).toISOString(),
      };
      this.save(rec);
      this.event('die', rec, { exitCode: String(code) });
      this.notify(id, ['not-running', 'next-exit'], code);
      if (this.closed) return;
      if (this.shouldRestart(rec, code)) this.scheduleRestart(rec);
      else if (rec.HostConfig.AutoRemove) await this.removeNow(rec, { force: true, volumes: true }).catch((err) => this.opts.log.warn(`removing ${id}: ${(err as Error).message}`));
    });
  }

  private async cleanupAfterExit(rec: ContainerRecord): Promise<void> {
    try {
      const cg = this.driverOf(rec).cgroup(rec.Id);
      if (cg && oomKilled(cg.toJSON())) rec.State.OOMKilled = true;
    } catch { /* no runtime state */ }
    try { this.driverOf(rec).delete(rec.Id); } catch (err) { this.opts.log.warn(`deleting the runtime state of ${rec.Id}: ${(err as Error).message}`); }
    await this.opts.networks()?.release(rec.Id).catch((err) => this.opts.log.warn(`releasing the network of ${rec.Id}: ${(err as Error).message}`));
    const rootfs = this.rootfsDir(rec.Id);
    if (isMountPoint(rootfs)) await this.opts.images.snapshots.unmount(rootfs).catch((err) => this.opts.log.warn(`unmounting ${rootfs}: ${(err as Error).message}`));
  }

  private shouldRestart(rec: ContainerRecord, code: number): boolean {
    if (rec.ManuallyStopped || rec.State.Status === 'removing') return false;
    const policy = rec.HostConfig.RestartPolicy ?? {};
    switch (policy.Name) {
      case 'always': case 'unless-stopped': return true;
      case 'on-failure': return code !== 0 && (!policy.MaximumRetryCount || rec.RestartCount < policy.MaximumRetryCount);
      default: return false;
    }
  }

  private scheduleRestart(rec: ContainerRecord): void {
    // docker's back-off: 100 ms doubling per restart, reset when a run lasted 10 s or more.
    const ranFor = Date.parse(rec.State.FinishedAt) - Date.parse(rec.State.StartedAt);
    const delay = ranFor >= 10_000 ? 100 : Math.min(100 * 2 ** Math.min(rec.RestartCount, 10), 60_000);
    rec.State.Restarting = true;
    rec.State.Status = 'restarting';
    this.save(rec);
    const timer = setTimeout(() => {
      this.restartTimers.delete(rec.Id);
      void this.lock(rec.Id, async () => {
        const cur = this.store.byId(rec.Id);
        if (!cur || !cur.State.Restarting || this.closed) return;
        cur.RestartCount++;
        try {
          await this.startLocked(cur);
          this.event('restart', cur);
        } catch (err) {
          this.opts.log.warn(`restarting ${cur.Id}: ${(err as Error).message}`);
          cur.State.Restarting = false;
          cur.State.Status = 'exited';
          this.save(cur);
          if (this.shouldRestart(cur, 1)) this.scheduleRestart(cur);
        }
      });
    }, delay);
    timer.unref();
    this.restartTimers.set(rec.Id, timer);
  }

  private cancelRestart(id: string): void {
    const t = this.restartTimers.get(id);
    if (t) clearTimeout(t);
    this.restartTimers.delete(id);
    const rec = this.store.byId(id);
    if (rec?.State.Restarting) {
      rec.State.Restarting = false;
      rec.State.Status = 'exited';
      this.save(rec);
    }
  }

  private notify(id: string, conditions: WaitCondition[], code: number): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const keep: Waiter[] = [];
    for (const w of list) {
      if (conditions.includes(w.condition)) w.resolve({ StatusCode: code });
      else keep.push(w);
    }
    if (keep.length) this.waiters.set(id, keep); else this.waiters.delete(id);
  }

  /** POST /containers/{id}/wait. Resolves when the condition holds. */
  wait(idOrName: string, condition: WaitCondition = 'not-running'): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    const rec = this.get(idOrName);
    if (condition === 'not-running' && !rec.State.Running && !rec.State.Restarting) return Promise.resolve({ StatusCode: rec.State.ExitCode });
    return new Promise((resolve) => {
      const list = this.waiters.get(rec.Id) ?? [];
      list.push({ condition, resolve });
      this.waiters.set(rec.Id, list);
    });
  }

  // ---- stop, kill, restart, pause --------------------------------------------------------------

  async stop(idOrName: string, opts: { timeout?: number; signal?: string } = {}): Promise<void> {
    const rec = this.get(idOrName);
    await this.stopInternal(rec, opts, true);
  }

  private async stopInternal(rec: ContainerRecord, opts: { timeout?: number; signal?: string }, notModified: boolean): Promise<void> {
    const id = rec.Id;
    if (rec.State.Restarting) {
      rec.ManuallyStopped = true;
      this.cancelRestart(id);
      return;
    }
    if (!rec.State.Running) {
      if (notModified) throw new ContainerError('not-modified', 'container already stopped');
      return;
    }
    rec.ManuallyStopped = true;
    this.save(rec);
    const live = this.live.get(id);
    const sig = signalOrThrow(opts.signal || rec.Config.StopSignal || 'SIGTERM');
    const timeout = opts.timeout ?? rec.Config.StopTimeout ?? 10;
    this.thawQuietly(id);
    this.signal(id, sig);
    if (live) {
      const done = await raceTimeout(live.exited, timeout < 0 ? undefined : timeout * 1000);
      if (!done) {
        this.killAll(id);
        await raceTimeout(live.exited, 10_000);
      }
    }
    // Let the exit handler (queued under the lock) finish before answering.
    await this.lock(id, async () => {});
    if (this.store.byId(id)?.State.Running) throw new ContainerError('unavailable', `cannot stop container: ${id}: the container did not exit`);
  }

  private signal(id: string, sig: number): void {
    try { this.driver(this.get(id).Runtime).kill(id, sig); } catch { /* exited meanwhile */ }
  }

  private killAll(id: string): void {
    this.thawQuietly(id);
    const d = this.driver(this.get(id).Runtime);
    try { d.kill(id, 9, true); } catch { /* gone */ }
    try { d.kill(id, 9); } catch { /* gone */ }
  }

  private thawQuietly(id: string): void {
    try {
      const cg = this.cgroupOf(id);
      if (cg.frozen()) cg.thaw();
    } catch { /* no cgroup */ }
    const rec = this.store.byId(id);
    if (rec?.State.Paused) {
      rec.State.Paused = false;
      rec.State.Status = 'running';
      this.save(rec);
    }
  }

  async kill(idOrName: string, signal = 'SIGKILL'): Promise<void> {
    const rec = this.get(idOrName);
    const sig = signalOrThrow(signal);
    if (!rec.State.Running) throw new ContainerError('conflict', `cannot kill container: ${idOrName}: container ${rec.Id} is not running`);
    if (sig === 9) {
      rec.ManuallyStopped = true;
      this.save(rec);
      this.killAll(rec.Id);
      const live = this.live.get(rec.Id);
      if (live) await raceTimeout(live.exited, 10_000);
      await this.lock(rec.Id, async () => {});
    } else {
      this.signal(rec.Id, sig);
    }
    this.event('kill', rec, { signal: String(sig) });
  }

  async restart(idOrName: string, opts: { timeout?: number; signal?: string } = {}): Promise<void> {
    const rec = this.get(idOrName);
    await this.stopInternal(rec, opts, false);
    await this.start(rec.Id);
    this.event('restart', rec);
  }

  async pause(idOrName: string): Promise<void> {
    const rec = this.get(idOrName);
    await this.lock(rec.Id, async () => {
      if (!rec.State.Running) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
      if (rec.State.Paused) throw new ContainerError('conflict', `Container ${rec.Id} is already paused`);
      this.driverOf(rec).pause(rec.Id);
      rec.State.Paused = true;
      rec.State.Status = 'paused';
      this.save(rec);
      this.event('pause', rec);
    });
  }

  async unpause(idOrName: string): Promise<void> {
    const rec = this.get(idOrName);
    await this.lock(rec.Id, async () => {
      if (!rec.State.Paused) throw new ContainerError('conflict', `Container ${rec.Id} is not paused`);
      this.driverOf(rec).resume(rec.Id);
      rec.State.Paused = false;
      rec.State.Status = 'running';
      this.save(rec);
      this.event('unpause', rec);
    });
  }

  cgroupOf(id: string): CgroupManager {
    const cg = this.driver(this.get(id).Runtime).cgroup(id);
    if (!cg) throw new ContainerError('conflict', `container ${id} has no cgroup`);
    return cg;
  }

  /** Host pids of the container's processes (top, stats). */
  pids(idOrName: string): number[] {
    const rec = this.get(idOrName);
    if (!rec.State.Running) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
    return this.driverOf(rec).pids(rec.Id);
  }

  // ---- remove, rename ---------------------------------------------------------------------------

  async remove(idOrName: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = this.get(idOrName);
    if (rec.State.Running && !opts.force) {
      throw new ContainerError('conflict', `cannot remove container "${rec.Name}": container is ${rec.State.Paused ? 'paused' : 'running'}: ${rec.State.Paused ? 'unpause and then stop' : 'stop'} the container before removing or force remove`);
    }
    if (rec.State.Status === 'removing') throw new ContainerError('conflict', `removal of container ${rec.Id} is already in progress`);
    await this.removeLocked(rec, opts);
  }

  private async removeLocked(rec: ContainerRecord, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    const id = rec.Id;
    rec.ManuallyStopped = true;
    this.cancelRestart(id);
    if (rec.State.Running) {
      this.killAll(id);
      const live = this.live.get(id);
      if (live) await raceTimeout(live.exited, 10_000);
      await this.lock(id, async () => {});
    }
    await this.lock(id, () => this.removeNow(rec, opts));
  }

  /** Removes a container that is not running; the caller holds its lock. */
  private async removeNow(rec: ContainerRecord, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
    const id = rec.Id;
    {
      const cur = this.store.byId(id);
      if (!cur) return;
      cur.State.Status = 'removing';
      this.save(cur);
      if (cur.State.Running) await this.cleanupAfterExit(cur);
      const rootfs = this.rootfsDir(id);
      if (isMountPoint(rootfs)) await this.opts.images.snapshots.unmount(rootfs).catch(() => {});
      try {
        await this.opts.images.snapshots.remove(id);
      } catch (err) {
        if ((err as { code?: string }).code !== 'not-found') {
          cur.State.Status = 'dead';
          cur.State.Dead = true;
          this.save(cur);
          throw new ContainerError('unavailable', `Could not remove the writable layer of container ${id}: ${(err as Error).message}`);
        }
      }
      await this.opts.volumes()?.release(id, opts.volumes === true).catch((err) => this.opts.log.warn(`releasing volumes of ${id}: ${(err as Error).message}`));
      await this.opts.networks()?.containerRemoved(id).catch((err) => this.opts.log.warn(`network clean-up of ${id}: ${(err as Error).message}`));
      rmSync(this.dataDir(id), { recursive: true, force: true });
      rmSync(this.bundleDir(id), { recursive: true, force: true });
      rmSync(this.monitorDir(id), { recursive: true, force: true });
      this.store.remove(id);
      this.event('destroy', cur);
      this.notify(id, ['not-running', 'next-exit', 'removed'], cur.State.ExitCode);
    }
  }

  rename(idOrName: string, newName: string): void {
    const rec = this.get(idOrName);
    if (!newName) throw new ContainerConfigError('Neither old nor new names may be empty');
    if (!NAME_RE.test(newName)) throw new ContainerConfigError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const name = newName.startsWith('/') ? newName : `/${newName}`;
    if (name === rec.Name) throw new ContainerError('invalid', `Renaming a container with the same name as its current name`);
    const other = this.store.byName(name);
    if (other) throw nameConflict(name, other.Id);
    const old = rec.Name;
    rec.Name = name;
    this.save(rec);
    this.event('rename', rec, { oldName: old });
  }

  /** POST /containers/{id}/update: resources now (running) and for later starts; the restart policy. */
  async update(idOrName: string, hc: DockerHostConfig): Promise<string[]> {
    const rec = this.get(idOrName);
    const warnings: string[] = [];
    if (hc.RestartPolicy && hc.RestartPolicy.Name !== undefined) {
      if (rec.HostConfig.AutoRemove && hc.RestartPolicy.Name !== 'no' && hc.RestartPolicy.Name !== '') {
        throw new ContainerConfigError('Restart policy cannot be updated because AutoRemove is enabled for the container');
      }
    }
    const next: DockerHostConfig = { ...rec.HostConfig };
    for (const key of ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'PidsLimit', 'BlkioWeight', 'RestartPolicy'] as const) {
      if (hc[key] !== undefined && hc[key] !== null && !(typeof hc[key] === 'number' && hc[key] === 0 && key !== 'PidsLimit') && !(key === 'CpusetCpus' && hc[key] === '') && !(key === 'CpusetMems' && hc[key] === '')) {
        (next as Record<string, unknown>)[key] = hc[key];
      }
    }
    validateHostConfig(next, rec.Config);
    if (rec.State.Running) {
      const delta: Record<string, unknown> = {};
      const mem: Record<string, number> = {};
      if (hc.Memory) mem.limit = hc.Memory;
      if (hc.MemorySwap) mem.swap = hc.MemorySwap;
      else if (hc.Memory && !rec.HostConfig.MemorySwap) mem.swap = hc.Memory * 2;
      if (hc.MemoryReservation) mem.reservation = hc.MemoryReservation;
      if (Object.keys(mem).length) delta.memory = mem;
      const cpu: Record<string, unknown> = {};
      if (hc.CpuShares) cpu.shares = hc.CpuShares;
      if (hc.NanoCpus) { cpu.period = 100000; cpu.quota = Math.round(hc.NanoCpus / 1e9 * 100000); }
      if (hc.CpuQuota) cpu.quota = hc.CpuQuota;
      if (hc.CpuPeriod) cpu.period = hc.CpuPeriod;
      if (hc.CpusetCpus) cpu.cpus = hc.CpusetCpus;
      if (hc.CpusetMems) cpu.mems = hc.CpusetMems;
      if (Object.keys(cpu).length) delta.cpu = cpu;
      if (hc.PidsLimit !== undefined && hc.PidsLimit !== null) delta.pids = { limit: hc.PidsLimit > 0 ? hc.PidsLimit : -1 };
      if (Object.keys(delta).length) {
        try {
          await this.driverOf(rec).update(rec.Id, delta as never);
        } catch (err) {
          throw new ContainerError('invalid', `Cannot update container ${rec.Id}: ${(err as Error).message}`);
        }
      }
    }
    rec.HostConfig = next;
    this.save(rec);
    this.event('update', rec);
    return warnings;
  }

  // ---- attach, resize ----------------------------------------------------------------------------

  /** A connection to the container's stdio: now when it runs, else at its next start (docker run attaches before start). */
  attach(idOrName: string): Promise<MonitorConnection> {
    const rec = this.get(idOrName);
    const live = this.live.get(rec.Id);
    if (live) return MonitorConnection.connect(live.dir);
    if (rec.State.Status === 'created' || rec.State.Restarting || rec.State.Status === 'exited') {
      if (rec.State.Status === 'exited' && !rec.State.Restarting && rec.HostConfig.AutoRemove) {
        return Promise.reject(new ContainerError('conflict', 'You cannot attach to a stopped container, start it first'));
      }
      return new Promise((resolve, reject) => {
        const list = this.pendingAttach.get(rec.Id) ?? [];
        list.push((c) => (c instanceof Error ? reject(c) : resolve(c)));
        this.pendingAttach.set(rec.Id, list);
      });
    }
    return Promise.reject(new ContainerError('conflict', 'You cannot attach to a stopped container, start it first'));
  }

  /** Drops a pending attach (the client went away before the start). */
  cancelAttach(idOrName: string, fn: unknown): void {
    void idOrName; void fn;
  }

  resize(idOrName: string, rows: number, cols: number): void {
    const rec = this.get(idOrName);
    const live = this.live.get(rec.Id);
    if (!live) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
    live.conn.resize(rows, cols);
  }

  /** The exit promise of a running container (logs --follow ends with it). */
  running(id: string): Promise<number> | undefined {
    return this.live.get(id)?.exited;
  }

  // ---- exec support ------------------------------------------------------------------------------

  /**
   * Runs a process in a running container under its own monitor. `onMonitorReady` runs once the
   * monitor listens (with `hold`, the process waits for that first connection, so none of its
   * output is lost); resolves once the process runs, rejects when it could not be started.
   */
  async execProcess(rec: ContainerRecord, p: { execId: string; cmd: string[]; tty: boolean; stdin: boolean; env?: string[]; user?: string; workingDir?: string; privileged?: boolean; hold: boolean }, onMonitorReady: (dir: string) => Promise<void>): Promise<void> {
    if (!rec.State.Running) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
    if (rec.State.Paused) throw new ContainerError('conflict', `Container ${rec.Id} is paused, unpause the container before exec`);
    const dir = this.monitorDir(p.execId);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let user: string | undefined;
    let additionalGids: number[] | undefined;
    if (p.user) {
      const u = resolveUser(this.rootfsDir(rec.Id), p.user);
      user = `${u.uid}:${u.gid}`;
      additionalGids = u.additionalGids;
    }
    await this.driverOf(rec).exec(rec.Id, {
      args: p.cmd, tty: p.tty, env: p.env, user, additionalGids, cwd: p.workingDir || undefined,
      caps: p.privileged ? ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_MKNOD', 'CAP_SYS_TIME'] : undefined,
    }, { dir, tty: p.tty, stdin: p.stdin, stdinOnce: true, hold: p.hold }, () => onMonitorReady(dir));
  }

  // ---- daemon start and stop -------------------------------------------------------------------

  /** network connect/disconnect changed a container's endpoints (the network module calls this). */
  networkSettingsChanged(id: string, settings: NetworkSettings): void {
    const rec = this.store.byId(id);
    if (!rec) return;
    rec.NetworkSettings = settings;
    this.save(rec);
  }

  /** Live restore: reconnect to running containers, record exits that happened meanwhile, restart per policy. */
  async restore(): Promise<void> {
    const running = new Set<string>();
    for (const rec of this.store.all()) {
      const dir = this.monitorDir(rec.Id);
      if (rec.State.Running || rec.State.Paused) {
        if (await monitorRunning(dir)) {
          try {
            const conn = await MonitorConnection.connect(dir);
            conn.onOutput(() => { /* watches the exit only */ });
            this.live.set(rec.Id, { conn, dir, exited: conn.exited });
            running.add(rec.Id);
            this.watch(rec.Id, dir, conn.exited);
            continue;
          } catch { /* gone meanwhile: below */ }
        }
        const exit = readExitRecord(dir);
        await this.onExit(rec.Id, exit?.exitCode ?? 255, exit?.finishedAt);
      } else if (rec.State.Restarting) {
        rec.State.Restarting = false;
        rec.State.Status = 'exited';
        this.save(rec);
        if (this.shouldRestart(rec, rec.State.ExitCode || 1)) this.scheduleRestart(rec);
      } else if (rec.State.Status === 'removing') {
        await this.removeLocked(rec, { force: true }).catch(() => {});
      } else if (!rec.ManuallyStopped && ['always', 'unless-stopped'].includes(rec.HostConfig.RestartPolicy?.Name ?? '') && rec.State.Status === 'exited') {
        // docker starts `always` containers when the daemon starts (and unless-stopped ones it did not stop by request).
        this.scheduleRestart(rec);
      }
    }
    await this.opts.networks()?.reconcile(running).catch((err) => this.opts.log.warn(`network reconcile: ${(err as Error).message}`));
  }

  /** Daemon shutdown: containers keep running (live restore); only our connections go. */
  close(): void {
    this.closed = true;
    for (const t of this.restartTimers.values()) clearTimeout(t);
    for (const live of this.live.values()) live.conn.close();
    this.live.clear();
  }
}

function nameConflict(name: string, id: string): ContainerError {
  return new ContainerError('conflict', `Conflict. The container name "${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);
}

function signalOrThrow(sig: string): number {
  try {
    const n = signalNumber(sig);
    if (n === undefined || n <= 0) throw new Error('bad');
    return n;
  } catch {
    throw new ContainerError('invalid', `Invalid signal: ${sig}`);
  }
}

/** dockerd's exit codes for a start that failed before the process ran. */
function exitCodeForStartError(message: string): number {
  if (/executable file not found|no such file or directory/i.test(message)) return 127;
  if (/permission denied/i.test(message)) return 126;
  return 128;
}

/** strerror texts as Go prints them (lower case), e.g. "No such file or directory" → "no such file or directory". */
function goErrnoText(message: string): string {
  return message.replace(/: ([A-Z][a-z]+(?: [a-z]+)*)$/, (_m, text: string) => `: ${text.toLowerCase()}`)
    .replace(/No such file or directory/g, 'no such file or directory').replace(/Permission denied/g, 'permission denied');
}

function raceTimeout<T>(p: Promise<T>, ms: number | undefined): Promise<boolean> {
  const done = p.then(() => true, () => true);
  if (ms === undefined) return done;
  return Promise.race([done, new Promise<boolean>((r) => { const t = setTimeout(() => r(false), ms); t.unref(); })]);
}

export function isMountPoint(path: string): boolean {
  let mountinfo: string;
  try { mountinfo = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return false; }
  const escaped = path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] === escaped) return true;
  }
  return false;
}

function oomKilled(saved: NonNullable<ReturnType<Runtime['store']['load']>['cgroup']>): boolean {
  for (const h of saved.dirs ?? []) {
    const dir = h.dir;
    for (const [file, key] of [['memory.events', 'oom_kill'], ['memory.oom_control', 'oom_kill']] as const) {
      try {
        const text = readFileSync(join(dir, file), 'utf8');
        const m = new RegExp(`^${key} (\\d+)`, 'm').exec(text);
        if (m && Number(m[1]) > 0) return true;
      } catch { /* not this controller */ }
    }
  }
  return false;
}

export { RunOptionsError };
