// System endpoints: /_ping, /version, /info, /events, /system/df.
import { platform } from 'node:os';
import type { ApiModule, DaemonContext, DiskUsageOptions } from '../context.ts';
import { InvalidParameterError } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import {
  builtinRuntimePath, cgroupCapabilities, goArch, hostFacts, networkFacts, openFileDescriptors, osRelease,
  seccompAvailable,
} from '../sysinfo.ts';
import type { DiskUsage, RuntimeInfo, SystemInfo, SystemVersion } from '../types.ts';
import { API_VERSION, BERTH_VERSION, BUILD_TIME, GIT_COMMIT, MIN_API_VERSION } from '../version.ts';
import { BUILTIN_RUNTIME, registryServiceConfig } from '../../engine/config.ts';
import { encodeEvent, eventFilter, nowNano } from '../../engine/events.ts';

export const GO_VERSION_STANDIN = `node${process.versions.node}`;

/**
 * docker's ParseTimestamps for since/until: "<seconds>[.<fraction>]" → ns; '' → undefined.
 * (The CLI turns "10m" or RFC 3339 times into this form before sending.)
 */
export function parseEventTime(value: string | null, name: string): bigint | undefined {
  if (value === null || value === '') return undefined;
  const m = /^(-?\d+)(?:\.(\d*))?$/.exec(value);
  if (!m) throw new InvalidParameterError(`invalid value for ${name}: "${value}" (expected Unix seconds, optionally with a fraction)`);
  const frac = (m[2] ?? '').slice(0, 9).padEnd(9, '0');
  return BigInt(m[1]) * 1_000_000_000n + BigInt(frac || '0');
}

function ping(ctx: RequestContext): void {
  const res = ctx.res;
  res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('Builder-Version', '1');
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Swarm', 'inactive');
  if (ctx.method === 'HEAD') {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', '0');
    res.end();
    return;
  }
  ctx.text('OK');
}

export function systemVersion(): SystemVersion {
  const kernel = hostFacts.kernelVersion();
  return {
    Platform: { Name: 'Berth' },
    Components: [
      {
        Name: 'Engine',
        Version: BERTH_VERSION,
        Details: {
          ApiVersion: API_VERSION,
          Arch: goArch(),
          BuildTime: BUILD_TIME,
          Experimental: 'false',
          GitCommit: GIT_COMMIT,
          GoVersion: GO_VERSION_STANDIN,
          KernelVersion: kernel,
          MinAPIVersion: MIN_API_VERSION,
          Os: platform(),
        },
      },
      { Name: 'berth-runtime', Version: BERTH_VERSION, Details: { GitCommit: GIT_COMMIT } },
    ],
    Version: BERTH_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: GIT_COMMIT,
    GoVersion: GO_VERSION_STANDIN,
    Os: platform(),
    Arch: goArch(),
    KernelVersion: kernel,
    BuildTime: BUILD_TIME,
  };
}

/** RFC 3339 with nanoseconds trimmed of trailing zeros, as Go's time.RFC3339Nano. */
function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

export async function systemInfo(daemon: DaemonContext, apiVersion: string): Promise<SystemInfo> {
  const cfg = daemon.config;
  const caps = cgroupCapabilities();
  const net = networkFacts();
  const os = osRelease();
  const runtimes: Record<string, RuntimeInfo> = { [BUILTIN_RUNTIME]: { path: builtinRuntimePath() } };
  for (const [name, rt] of Object.entries(cfg.runtimes)) {
    runtimes[name] = rt.runtimeArgs?.length ? { path: rt.path, runtimeArgs: rt.runtimeArgs } : { path: rt.path };
  }
  const security: string[] = [];
  if (seccompAvailable()) security.push('name=seccomp,profile=builtin');
  if (caps.version === '2') security.push('name=cgroupns');
  const warnings: string[] = [];
  if (!caps.memoryLimit) warnings.push('WARNING: No memory limit support');
  if (caps.memoryLimit && !caps.swapLimit) warnings.push('WARNING: No swap limit support');
  if (!caps.cpuCfsQuota) warnings.push('WARNING: No cpu cfs quota support');
  if (!caps.cpuShares) warnings.push('WARNING: No cpu shares support');

  const info: SystemInfo = {
    ID: daemon.id,
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: daemon.storageDriver,
    DriverStatus: daemon.storageDriverStatus.length ? daemon.storageDriverStatus : null,
    // Modules add what they provide (volume and network drivers with the containers work).
    Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
    MemoryLimit: caps.memoryLimit,
    SwapLimit: caps.swapLimit,
    CpuCfsPeriod: caps.cpuCfsPeriod,
    CpuCfsQuota: caps.cpuCfsQuota,
    CPUShares: caps.cpuShares,
    CPUSet: caps.cpuSet,
    PidsLimit: caps.pidsLimit,
    IPv4Forwarding: net.ipv4Forwarding,
    BridgeNfIptables: net.bridgeNfIptables,
    BridgeNfIp6tables: net.bridgeNfIp6tables,
    Debug: daemon.log.enabled('debug'),
    NFd: openFileDescriptors(),
    OomKillDisable: caps.oomKillDisable,
    // No goroutines in Node: the live handles and requests the event loop is serving.
    NGoroutines: process.getActiveResourcesInfo().length,
    SystemTime: rfc3339Nano(nowNano()),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: caps.version,
    NEventsListener: daemon.events.listenerCount,
    KernelVersion: hostFacts.kernelVersion(),
    OperatingSystem: os.prettyName,
    OSVersion: os.versionId,
    OSType: 'linux',
    Architecture: hostFacts.architecture(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: registryServiceConfig(cfg),
    NCPU: hostFacts.ncpu(),
    MemTotal: hostFacts.memTotal(),
    GenericResources: null,
    DockerRootDir: cfg.dataRoot,
    HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
    NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
    Name: hostFacts.hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: BERTH_VERSION,
    Runtimes: runtimes,
    DefaultRuntime: cfg.defaultRuntime,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    // Containers outlive the daemon by design (their monitors hold them).
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '', Expected: '' },
    RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' },
    SecurityOptions: security,
    CDISpecDirs: [],
    Warnings: warnings,
  };
  if (caps.kernelMemoryTCP) info.KernelMemoryTCP = true;
  for (const fn of daemon.infoContributors) await fn(info, apiVersion);
  if (info.Warnings && info.Warnings.length === 0) info.Warnings = null;
  return info;
}

const DF_TYPES = ['container', 'image', 'volume', 'build-cache'];

async function diskUsage(ctx: RequestContext): Promise<void> {
  const types = ctx.query.getAll('type');
  const all = types.length === 0 || !ctx.versionAtLeast('1.42');
  for (const t of types) {
    if (!DF_TYPES.includes(t)) throw new InvalidParameterError(`unknown object type: ${t}`);
  }
  const opts: DiskUsageOptions = {
    containers: all || types.includes('container'),
    images: all || types.includes('image'),
    volumes: all || types.includes('volume'),
    buildCache: all || types.includes('build-cache'),
    apiVersion: ctx.apiVersion,
  };
  const du: DiskUsage = { LayersSize: 0, Images: [], Containers: [], Volumes: [], BuildCache: [] };
  for (const fn of ctx.daemon.diskUsageContributors) await fn(du, opts);
  if (!ctx.versionAtLeast('1.42')) du.BuilderSize = du.BuildCache.reduce((n, b) => n + (Number(b.Size) || 0), 0);
  const out: Record<string, unknown> = { LayersSize: du.LayersSize };
  if (opts.images) out.Images = du.Images;
  if (opts.containers) out.Containers = du.Containers;
  if (opts.volumes) out.Volumes = du.Volumes;
  if (opts.buildCache) out.BuildCache = du.BuildCache;
  if (du.BuilderSize !== undefined) out.BuilderSize = du.BuilderSize;
  ctx.json(out);
}

async function events(ctx: RequestContext): Promise<void> {
  const sinceRaw = ctx.query.get('since');
  const untilRaw = ctx.query.get('until');
  const since = parseEventTime(sinceRaw, 'since');
  const until = parseEventTime(untilRaw, 'until');
  if (until !== undefined && since !== undefined && until < since) {
    throw new InvalidParameterError(`\`since\` time (${sinceRaw}) cannot be after \`until\` time (${untilRaw})`);
  }
  const matches = eventFilter(ctx.filters());
  // Image "create" events are new in API 1.46; older clients do not know them.
  const skipImageCreate = !ctx.versionAtLeast('1.46');
  const filter = skipImageCreate ? (ev: Parameters<typeof matches>[0]) => !(ev.Type === 'image' && ev.Action === 'create') && matches(ev) : matches;

  const out = ctx.jsonStream();
  out.start();
  await new Promise<void>((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      if (timer) clearTimeout(timer);
      ctx.signal.removeEventListener('abort', finish);
      out.end();
      resolve();
    };
    const sub = ctx.daemon.events.subscribe({ since, until, filter }, (ev) => {
      if (!out.writeRaw(`${encodeEvent(ev)}\n`)) finish();
    }, finish);
    for (const ev of sub.buffered) out.writeRaw(`${encodeEvent(ev)}\n`);
    if (until !== undefined) {
      const leftMs = Number((until - nowNano()) / 1_000_000n);
      if (leftMs <= 0) { finish(); return; }
      timer = setTimeout(finish, leftMs);
    }
    if (ctx.signal.aborted) finish();
    else ctx.signal.addEventListener('abort', finish);
  });
}

export const systemModule: ApiModule = {
  name: 'system',
  routes(router) {
    router.get('/_ping', ping);
    router.head('/_ping', ping);
    router.get('/version', (ctx) => ctx.json(systemVersion()));
    router.get('/info', async (ctx) => ctx.json(await systemInfo(ctx.daemon, ctx.apiVersion)));
    router.get('/events', events);
    router.get('/system/df', diskUsage);
  },
};
