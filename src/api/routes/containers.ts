// The containers area of the Engine API: create, list, inspect, start/stop/kill/restart, wait,
// attach, logs, remove, rename, pause, resize, update, prune, and exec. The engine's container
// service does the work; this module speaks docker's HTTP: statuses (304 for a no-op start/stop,
// 409 conflicts), hijacked streams with stdcopy framing when there is no TTY, and JSON shapes.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiModule, DaemonContext } from '../context.ts';
import { ApiError, ConflictError, InvalidParameterError, registerErrorStatus } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import { MEDIA_TYPE_MULTIPLEXED_STREAM, MEDIA_TYPE_RAW_STREAM, muxFrame, type HijackedConnection, type StdStreamId } from '../hijack.ts';
import { ContainerError, ContainerService } from '../../engine/containers/service.ts';
import { ContainerConfigError } from '../../engine/containers/create-config.ts';
import { ExecService, type ExecConfig } from '../../engine/containers/exec.ts';
import { lookPath } from '../../engine/containers/oci-driver.ts';
import type { ContainerRecord, DockerContainerConfig, DockerHostConfig, EndpointSettings } from '../../engine/containers/types.ts';
import { RunOptionsError } from '../../engine/oci-spec.ts';
import type { MonitorConnection } from '../../engine/monitor.ts';
import { readLogs } from '../../engine/json-log.ts';
import type { FilterArgs } from '../../engine/filters.ts';
import { setImagesInUse } from './image-archive.ts';
import { dockerStats, emptyDockerStats, type DockerStats } from '../../engine/containers/stats.ts';
import { containerTop, ContainerTopError } from '../../engine/containers/top.ts';
import { cpus } from 'node:os';

declare module '../context.ts' {
  interface Services {
    containers: ContainerService;
    execs: ExecService;
  }
}

registerErrorStatus((e) => {
  if (e instanceof ContainerError) return { 'not-found': 404, conflict: 409, invalid: 400, 'not-modified': 304, unavailable: 500 }[e.code];
  if (e instanceof ContainerConfigError || e instanceof RunOptionsError) return 400;
  if (e instanceof ContainerTopError) return 500;
  return undefined;
});

function svc(ctx: RequestContext): ContainerService {
  const s = ctx.daemon.services.containers;
  if (!s) throw new ApiError(503, 'the container service is not available');
  return s;
}

// ---- docker's human strings ----------------------------------------------------------------------

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** The Status column (dockerd State.String()). */
export function statusString(rec: ContainerRecord, now = Date.now()): string {
  const s = rec.State;
  if (s.Running) {
    if (s.Paused) return `Up ${humanDuration(now - Date.parse(s.StartedAt))} (Paused)`;
    return `Up ${humanDuration(now - Date.parse(s.StartedAt))}`;
  }
  if (s.Restarting) return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
  if (s.Status === 'removing') return 'Removal In Progress';
  if (s.Dead) return 'Dead';
  if (s.StartedAt === '0001-01-01T00:00:00Z' || s.Status === 'created') return 'Created';
  if (s.FinishedAt === '0001-01-01T00:00:00Z') return '';
  return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
}

function command(rec: ContainerRecord): string {
  return rec.Args.length ? `${rec.Path} ${rec.Args.join(' ')}` : rec.Path;
}

function portsOf(rec: ContainerRecord): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const seen = new Set<string>();
  const ports = rec.State.Running ? rec.NetworkSettings.Ports ?? {} : {};
  for (const [key, bindings] of Object.entries(ports)) {
    const [port, proto] = key.split('/');
    if (!bindings || bindings.length === 0) continue;
    seen.add(key);
    for (const b of bindings) out.push({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: proto ?? 'tcp' });
  }
  for (const key of Object.keys(rec.Config.ExposedPorts ?? {})) {
    if (seen.has(key)) continue;
    const [port, proto] = key.split('/');
    out.push({ PrivatePort: Number(port), Type: proto ?? 'tcp' });
  }
  return out;
}

function summary(rec: ContainerRecord, size: boolean, sizes?: { rw: number; root: number }): Record<string, unknown> {
  return {
    Id: rec.Id,
    Names: [rec.Name],
    Image: rec.ImageRef,
    ImageID: rec.Image,
    Command: command(rec),
    Created: Math.floor(Date.parse(rec.Created) / 1000),
    Ports: portsOf(rec),
    ...(size ? { SizeRw: sizes?.rw ?? 0, SizeRootFs: sizes?.root ?? 0 } : {}),
    Labels: rec.Config.Labels ?? {},
    State: rec.State.Status,
    Status: statusString(rec),
    HostConfig: { NetworkMode: rec.HostConfig.NetworkMode ?? 'bridge' },
    NetworkSettings: { Networks: rec.NetworkSettings.Networks ?? {} },
    Mounts: rec.Mounts,
  };
}

function inspect(daemon: DaemonContext, rec: ContainerRecord, sizes?: { rw: number; root: number }): Record<string, unknown> {
  const graph: Record<string, string> = {};
  try {
    const m = daemon.services.images!.snapshots.mounts(rec.Id);
    if (m.type === 'overlay') {
      graph.LowerDir = m.lowerdirs.join(':');
      graph.MergedDir = svc({ daemon } as RequestContext).rootfsDir(rec.Id);
      graph.UpperDir = m.upperdir;
      graph.WorkDir = m.workdir;
    }
  } catch { /* removed meanwhile */ }
  const { ImageRef: _ref, ManuallyStopped: _ms, Runtime: _rt, ...rest } = rec;
  void _ref; void _ms; void _rt;
  delete (rest as Record<string, unknown>).EndpointsConfig;
  return {
    Id: rec.Id,
    Created: rec.Created,
    Path: rec.Path,
    Args: rec.Args,
    State: rec.State,
    Image: rec.Image,
    ResolvConfPath: rec.ResolvConfPath,
    HostnamePath: rec.HostnamePath,
    HostsPath: rec.HostsPath,
    LogPath: rec.LogPath,
    Name: rec.Name,
    RestartCount: rec.RestartCount,
    Driver: daemon.storageDriver,
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: rec.ExecIDs.length ? rec.ExecIDs : null,
    HostConfig: { ...rec.HostConfig, Runtime: rec.Runtime },
    GraphDriver: { Data: graph, Name: daemon.storageDriver },
    ...(sizes ? { SizeRw: sizes.rw, SizeRootFs: sizes.root } : {}),
    Mounts: rec.Mounts,
    Config: rec.Config,
    NetworkSettings: rec.NetworkSettings,
  };
}

async function sizesOf(daemon: DaemonContext, rec: ContainerRecord): Promise<{ rw: number; root: number }> {
  const images = daemon.services.images!;
  let rw = 0;
  try { rw = (await images.snapshots.usage(rec.Id)).size; } catch { /* gone */ }
  const image = images.store.get(rec.Image);
  return { rw, root: rw + (image?.size ?? 0) };
}

// ---- list and inspect ---------------------------------------------------------------------------

const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);

function matches(ctx: RequestContext, f: FilterArgs, rec: ContainerRecord, all: ContainerRecord[]): boolean {
  if (f.contains('id') && !f.get('id').some((v) => rec.Id.startsWith(v))) return false;
  if (f.contains('name') && !f.get('name').some((v) => new RegExp(v).test(rec.Name) || new RegExp(v).test(rec.Name.slice(1)))) return false;
  if (f.contains('label') && !f.matchKVList('label', rec.Config.Labels ?? {})) return false;
  if (f.contains('status')) {
    for (const v of f.get('status')) if (!STATUSES.has(v)) throw new InvalidParameterError(`invalid filter 'status=${v}'`);
    if (!f.get('status').includes(rec.State.Status)) return false;
  }
  if (f.contains('exited')) {
    if (rec.State.Running || rec.State.Status === 'created') return false;
    if (!f.get('exited').some((v) => Number(v) === rec.State.ExitCode)) return false;
  }
  if (f.contains('ancestor')) {
    const images = ctx.daemon.services.images!;
    const ok = f.get('ancestor').some((a) => {
      const img = images.store.resolve(a);
      return rec.ImageRef === a || (img !== undefined && (img.id === rec.Image));
    });
    if (!ok) return false;
  }
  for (const key of ['before', 'since'] as const) {
    if (!f.contains(key)) continue;
    const ref = all.find((r) => r.Id.startsWith(f.get(key)[0]!) || r.Name === `/${f.get(key)[0]}` || r.Name === f.get(key)[0]);
    if (!ref) throw new ContainerError('not-found', `No such container: ${f.get(key)[0]}`);
    const a = Date.parse(rec.Created);
    const b = Date.parse(ref.Created);
    if (key === 'before' ? a >= b : a <= b) return false;
  }
  if (f.contains('network') && !f.get('network').some((n) => Object.keys(rec.NetworkSettings.Networks ?? {}).includes(n) || Object.values(rec.NetworkSettings.Networks ?? {}).some((e) => e.NetworkID?.startsWith(n)))) return false;
  if (f.contains('volume') && !f.get('volume').some((v) => rec.Mounts.some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
  if (f.contains('is-task') && f.boolValue('is-task') === true) return false;
  return true;
}

async function listContainers(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const all = ctx.bool('all');
  const limit = ctx.int('limit', -1);
  const size = ctx.bool('size');
  const f = ctx.filters(['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since', 'network', 'volume', 'health', 'is-task', 'publish', 'expose', 'isolation']);
  const everything = s.list();
  let list = everything.filter((r) => (all || limit > 0 || f.contains('status') || f.contains('exited') ? true : r.State.Running || r.State.Restarting) && matches(ctx, f, r, everything));
  list.sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (a.Id < b.Id ? 1 : -1));
  if (limit > 0) list = list.slice(0, limit);
  const out = [];
  for (const r of list) out.push(summary(r, size, size ? await sizesOf(ctx.daemon, r) : undefined));
  ctx.json(out);
}

async function inspectContainer(ctx: RequestContext): Promise<void> {
  const rec = svc(ctx).get(ctx.params.id!);
  ctx.json(inspect(ctx.daemon, rec, ctx.bool('size') ? await sizesOf(ctx.daemon, rec) : undefined));
}

// ---- create ---------------------------------------------------------------------------------------

async function createContainer(ctx: RequestContext): Promise<void> {
  const body = (await ctx.readJSON<Record<string, unknown>>({ optional: true } as never)) as Record<string, unknown> | undefined;
  if (!body) throw new InvalidParameterError('config cannot be empty in order to create a container');
  const { HostConfig, NetworkingConfig, ...config } = body as { HostConfig?: DockerHostConfig; NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings> } } & DockerContainerConfig;
  const name = ctx.query.get('name') ?? undefined;
  const platform = ctx.query.get('platform');
  if (platform && !/^linux(\/|$)/.test(platform)) throw new InvalidParameterError(`"${platform}": unsupported platform`);
  const r = await svc(ctx).create({ name, config: config as DockerContainerConfig, hostConfig: HostConfig ?? {}, endpointsConfig: NetworkingConfig?.EndpointsConfig ?? {} });
  ctx.json(r, 201);
}

// ---- lifecycle ----------------------------------------------------------------------------------

async function orNotModified(ctx: RequestContext, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    ctx.noContent(204);
  } catch (err) {
    if (err instanceof ContainerError && err.code === 'not-modified') {
      ctx.noContent(304);
      return;
    }
    throw err;
  }
}

function stopOptions(ctx: RequestContext): { timeout?: number; signal?: string } {
  const t = ctx.query.get('t') ?? ctx.query.get('timeout');
  if (t !== null && t !== '' && !/^-?\d+$/.test(t)) throw new InvalidParameterError(`invalid value for t: ${t}`);
  return { timeout: t !== null && t !== '' ? Number(t) : undefined, signal: ctx.query.get('signal') || undefined };
}

async function startContainer(ctx: RequestContext): Promise<void> {
  if (ctx.query.get('checkpoint')) throw new InvalidParameterError('checkpoints are not supported');
  await orNotModified(ctx, () => svc(ctx).start(ctx.params.id!));
}

async function stopContainer(ctx: RequestContext): Promise<void> {
  await orNotModified(ctx, () => svc(ctx).stop(ctx.params.id!, stopOptions(ctx)));
}

async function restartContainer(ctx: RequestContext): Promise<void> {
  await svc(ctx).restart(ctx.params.id!, stopOptions(ctx));
  ctx.noContent(204);
}

async function killContainer(ctx: RequestContext): Promise<void> {
  await svc(ctx).kill(ctx.params.id!, ctx.query.get('signal') || 'SIGKILL');
  ctx.noContent(204);
}

async function waitContainer(ctx: RequestContext): Promise<void> {
  const condition = (ctx.query.get('condition') || 'not-running') as 'not-running' | 'next-exit' | 'removed';
  if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new InvalidParameterError(`invalid condition: "${condition}"`);
  const s = svc(ctx);
  s.get(ctx.params.id!);
  const result = s.wait(ctx.params.id!, condition);
  // dockerd sends the status line at once, so a client knows the wait is in place before it starts the container.
  const w = ctx.jsonStream();
  w.start();
  const r = await result;
  w.write(r.Error ? r : { StatusCode: r.StatusCode });
  w.end();
}

async function removeContainer(ctx: RequestContext): Promise<void> {
  if (ctx.bool('link')) throw new ConflictError('links are not supported');
  await svc(ctx).remove(ctx.params.id!, { force: ctx.bool('force'), volumes: ctx.bool('v') });
  ctx.noContent(204);
}

async function renameContainer(ctx: RequestContext): Promise<void> {
  svc(ctx).rename(ctx.params.id!, ctx.query.get('name') ?? '');
  ctx.noContent(204);
}

async function pauseContainer(ctx: RequestContext): Promise<void> {
  await svc(ctx).pause(ctx.params.id!);
  ctx.noContent(204);
}

async function unpauseContainer(ctx: RequestContext): Promise<void> {
  await svc(ctx).unpause(ctx.params.id!);
  ctx.noContent(204);
}

function size(ctx: RequestContext): [number, number] {
  const h = ctx.int('h', 0);
  const w = ctx.int('w', 0);
  return [h, w];
}

async function resizeContainer(ctx: RequestContext): Promise<void> {
  const [h, w] = size(ctx);
  svc(ctx).resize(ctx.params.id!, h, w);
  ctx.noContent(200);
}

async function updateContainer(ctx: RequestContext): Promise<void> {
  const body = (await ctx.readJSON<DockerHostConfig>()) ?? {};
  const warnings = await svc(ctx).update(ctx.params.id!, body);
  ctx.json({ Warnings: warnings });
}

async function pruneContainers(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const f = ctx.filters(['until', 'label', 'label!']);
  const until = f.get('until')[0];
  const cutoff = until ? parseUntil(until) : undefined;
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const rec of s.list()) {
    if (rec.State.Running || rec.State.Restarting || rec.State.Paused) continue;
    if (cutoff !== undefined && Date.parse(rec.Created) >= cutoff) continue;
    if (f.contains('label') && !f.matchKVList('label', rec.Config.Labels ?? {})) continue;
    if (f.contains('label!') && f.get('label!').some((l) => {
      const [k, v] = l.split('=', 2);
      const labels = rec.Config.Labels ?? {};
      return v === undefined ? k! in labels : labels[k!] === v;
    })) continue;
    try {
      const sz = (await sizesOf(ctx.daemon, rec)).rw;
      await s.remove(rec.Id, { force: false });
      deleted.push(rec.Id);
      reclaimed += sz;
    } catch (err) {
      ctx.log.warn(`prune: ${(err as Error).message}`);
    }
  }
  ctx.daemon.events.log('container', 'prune', { ID: '', Attributes: { reclaimed: String(reclaimed) } });
  ctx.json({ ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

function parseUntil(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const rel = /^(\d+)(ns|us|ms|s|m|h)$/.exec(v);
  if (rel) {
    const mult = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }[rel[2] as 'ns'];
    return Date.now() - Number(rel[1]) * mult;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidParameterError(`failed to parse value as time or duration: "${v}"`);
  return t;
}

// ---- streams: attach, logs, exec ------------------------------------------------------------------

/** docker's detach keys: "ctrl-p,ctrl-q" → bytes. */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const k = part.trim();
    if (k.length === 1) out.push(k.charCodeAt(0));
    else if (/^ctrl-[a-z@\[\\\]^_]$/i.test(k)) {
      const c = k.slice(5).toLowerCase();
      out.push(c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 }[c]!);
    } else throw new InvalidParameterError(`Unknown character: '${k}'`);
  }
  return Buffer.from(out);
}

/**
 * Pipes a monitor connection to a hijacked client: output (framed unless tty), stdin (watching
 * for the detach sequence). Resolves when either side ends.
 */
function hijackFor(ctx: RequestContext, tty: boolean): HijackedConnection {
  return ctx.hijack({ contentType: tty ? MEDIA_TYPE_RAW_STREAM : ctx.versionAtLeast('1.42') ? MEDIA_TYPE_MULTIPLEXED_STREAM : MEDIA_TYPE_RAW_STREAM });
}

function pipeHijacked(hj: HijackedConnection, conn: MonitorConnection, opts: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean; detachKeys: Buffer; stdinOnce: boolean; onEnd?: (code: number | undefined) => void }): Promise<void> {
  const sock = hj.socket;
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (code?: number): void => {
      if (done) return;
      done = true;
      opts.onEnd?.(code);
      conn.close();
      sock.end();
      resolve();
    };
    conn.onOutput((stream, data) => {
      if (stream === 'stdout' && !opts.stdout) return;
      if (stream === 'stderr' && !opts.stderr) return;
      sock.write(opts.tty ? data : muxFrame((stream === 'stdout' ? 1 : 2) as StdStreamId, data));
    });
    conn.exited.then((code) => finish(code), () => finish());
    sock.on('error', () => finish());
    sock.on('close', () => finish());
    if (opts.stdin && hj.canRead) {
      let matched = 0;
      sock.on('data', (chunk: Buffer) => {
        if (opts.detachKeys.length === 0) { conn.writeStdin(chunk); return; }
        // Hold back a possible detach sequence until it completes or breaks.
        const out: number[] = [];
        for (const byte of chunk) {
          if (byte === opts.detachKeys[matched]) {
            matched++;
            if (matched === opts.detachKeys.length) {
              if (out.length) conn.writeStdin(Buffer.from(out));
              finish();
              return;
            }
            continue;
          }
          if (matched > 0) { out.push(...opts.detachKeys.subarray(0, matched)); matched = 0; }
          if (byte === opts.detachKeys[0]) { matched = 1; continue; }
          out.push(byte);
        }
        if (out.length) conn.writeStdin(Buffer.from(out));
      });
      sock.on('end', () => {
        if (opts.stdinOnce || !opts.tty) conn.closeStdin();
      });
    } else if (hj.canRead) {
      sock.on('data', () => {});
      sock.on('end', () => { /* output keeps flowing until the process ends */ });
    }
    // The server paused the socket while it cut an upgrade request's body off the stream.
    sock.resume();
  });
}

async function attachContainer(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const rec = s.get(ctx.params.id!);
  if (!ctx.bool('stream') && !ctx.bool('logs')) throw new InvalidParameterError('at least one of stream or logs must be set');
  const tty = rec.Config.Tty === true;
  const want = { stdin: ctx.bool('stdin'), stdout: ctx.bool('stdout'), stderr: ctx.bool('stderr') };
  const detachKeys = parseDetachKeys(ctx.query.get('detachKeys') || (ctx.daemon.config as { detachKeys?: string }).detachKeys || 'ctrl-p,ctrl-q');
  if (ctx.bool('logs') && !ctx.bool('stream')) {
    const hj = ctx.hijack({ contentType: tty ? MEDIA_TYPE_RAW_STREAM : MEDIA_TYPE_MULTIPLEXED_STREAM });
    if (rec.LogPath && existsSync(rec.LogPath)) {
      for await (const e of readLogs(rec.LogPath, { stdout: want.stdout, stderr: want.stderr })) hj.socket.write(tty ? e.log : muxFrame(e.stream === 'stdout' ? 1 : 2, e.log));
    }
    hj.socket.end();
    return;
  }
  const connP = s.attach(rec.Id);
  connP.catch(() => {});
  // The 101 goes out at once: `docker run` starts the container only after its attach is in place.
  const hj = hijackFor(ctx, tty);
  let conn: MonitorConnection;
  try {
    conn = await connP;
  } catch (err) {
    hj.socket.end(tty ? `${(err as Error).message}\r\n` : muxFrame(3 as StdStreamId, `${(err as Error).message}\n`));
    return;
  }
  await pipeHijacked(hj, conn, { tty, ...want, detachKeys, stdinOnce: rec.Config.StdinOnce === true });
}

async function containerLogs(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const rec = s.get(ctx.params.id!);
  const stdout = ctx.bool('stdout');
  const stderr = ctx.bool('stderr');
  if (!stdout && !stderr) throw new InvalidParameterError('Bad parameters: you must choose at least one stream');
  if (rec.HostConfig.LogConfig?.Type === 'none' || !rec.LogPath) {
    throw new InvalidParameterError(`configured logging driver does not support reading`);
  }
  const follow = ctx.bool('follow');
  const timestamps = ctx.bool('timestamps');
  const tailText = ctx.query.get('tail') ?? 'all';
  const tail = tailText === 'all' || tailText === '' ? undefined : Number(tailText);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new InvalidParameterError(`invalid value for "tail": ${tailText}`);
  const since = parseTime(ctx.query.get('since'));
  const until = parseTime(ctx.query.get('until'));
  const tty = rec.Config.Tty === true;
  const res = ctx.res;
  res.statusCode = 200;
  res.setHeader('Content-Type', tty ? MEDIA_TYPE_RAW_STREAM : ctx.versionAtLeast('1.42') ? MEDIA_TYPE_MULTIPLEXED_STREAM : MEDIA_TYPE_RAW_STREAM);
  res.flushHeaders();
  const running = s.running(rec.Id);
  const stopFollowing = running ? running.then(() => undefined, () => undefined) : Promise.resolve(undefined);
  for await (const e of readLogs(rec.LogPath, { tail, since, until, follow: follow && running !== undefined, stdout, stderr, signal: ctx.signal, stopFollowing })) {
    const payload = timestamps ? Buffer.concat([Buffer.from(`${e.time} `), e.log]) : e.log;
    const ok = res.write(tty ? payload : muxFrame(e.stream === 'stdout' ? 1 : 2, payload));
    if (!ok) await new Promise<void>((r) => res.once('drain', () => r()));
    if (res.destroyed) break;
  }
  res.end();
}

function parseTime(v: string | null): number | undefined {
  if (v === null || v === '' || v === '0') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidParameterError(`invalid value for time: ${v}`);
  return t / 1000;
}

function execs(ctx: RequestContext): ExecService {
  const e = ctx.daemon.services.execs;
  if (!e) throw new ApiError(503, 'the exec service is not available');
  return e;
}

async function execCreate(ctx: RequestContext): Promise<void> {
  const body = await ctx.readJSON<ExecConfig>();
  const id = execs(ctx).create(ctx.params.id!, body ?? {});
  const rec = svc(ctx).get(ctx.params.id!);
  ctx.daemon.events.log('container', `exec_create: ${(body?.Cmd ?? []).join(' ')}`, { ID: rec.Id, Attributes: { execID: id, image: rec.ImageRef, name: rec.Name.slice(1) } });
  ctx.json({ Id: id }, 201);
}

async function execStart(ctx: RequestContext): Promise<void> {
  const body = (await ctx.readJSON<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }>({ optional: true } as never)) as { Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null } | undefined ?? {};
  const e = execs(ctx);
  const inst = e.get(ctx.params.id!);
  const rec = svc(ctx).get(inst.containerId);
  const tty = body.Tty ?? inst.config.Tty === true;
  ctx.daemon.events.log('container', `exec_start: ${(inst.config.Cmd ?? []).join(' ')}`, { ID: rec.Id, Attributes: { execID: inst.id, image: rec.ImageRef, name: rec.Name.slice(1) } });
  if (body.Detach) {
    await e.start(inst.id, { detach: true, tty, consoleSize: body.ConsoleSize });
    ctx.noContent(200);
    return;
  }
  // The 101 goes out before the process starts: a client that reads the response headers through
  // a buffered reader (docker-py) would otherwise swallow the first output with them.
  const hj = hijackFor(ctx, tty);
  let conn: MonitorConnection | undefined;
  try {
    conn = await e.start(inst.id, { detach: false, tty, consoleSize: body.ConsoleSize });
  } catch (err) {
    // The process did not start: docker reports this inside the stream.
    const msg = `OCI runtime exec failed: ${(err as Error).message}: unknown\r\n`;
    hj.socket.end(tty ? msg : muxFrame(1, msg));
    ctx.daemon.events.log('container', 'exec_die', { ID: rec.Id, Attributes: { execID: inst.id, exitCode: String(inst.exitCode ?? 126), image: rec.ImageRef, name: rec.Name.slice(1) } });
    return;
  }
  const detachKeys = parseDetachKeys(inst.config.DetachKeys || (ctx.daemon.config as { detachKeys?: string }).detachKeys || 'ctrl-p,ctrl-q');
  await pipeHijacked(hj, conn!, {
    tty, stdin: inst.config.AttachStdin === true, stdout: inst.config.AttachStdout !== false, stderr: inst.config.AttachStderr !== false,
    detachKeys, stdinOnce: true,
    onEnd: (code) => { if (code !== undefined) inst.exitCode = code; },
  });
  ctx.daemon.events.log('container', 'exec_die', { ID: rec.Id, Attributes: { execID: inst.id, exitCode: String(inst.exitCode ?? 0), image: rec.ImageRef, name: rec.Name.slice(1) } });
}

async function execResize(ctx: RequestContext): Promise<void> {
  const [h, w] = size(ctx);
  execs(ctx).resize(ctx.params.id!, h, w);
  ctx.noContent(200);
}

async function execInspect(ctx: RequestContext): Promise<void> {
  ctx.json(execs(ctx).inspect(ctx.params.id!));
}

async function containerTopRoute(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const rec = s.get(ctx.params.id!);
  if (!rec.State.Running) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
  if (rec.State.Restarting) throw new ContainerError('conflict', `Container ${rec.Id} is restarting, wait until the container is running`);
  ctx.json(containerTop(s.pids(rec.Id), ctx.query.get('ps_args') || '-ef'));
}

async function containerStats(ctx: RequestContext): Promise<void> {
  const s = svc(ctx);
  const rec = s.get(ctx.params.id!);
  const stream = ctx.bool('stream', true) && !ctx.bool('one-shot');
  const numCpus = cpus().length || 1;
  const sample = (previous?: DockerStats): DockerStats => {
    const cur = s.find(rec.Id);
    if (!cur || !cur.State.Running) return emptyDockerStats(rec.Id, rec.Name);
    try {
      return dockerStats(s.cgroupOf(rec.Id), { id: rec.Id, name: cur.Name, pids: [], netnsPid: cur.State.Pid || undefined, previous, numCpus });
    } catch {
      return emptyDockerStats(rec.Id, rec.Name);
    }
  };
  if (!stream) {
    // --no-stream: docker takes two samples a second apart so the CPU percentage has a base,
    // unless one-shot asks for one sample only.
    let first: DockerStats | undefined;
    if (!ctx.bool('one-shot') && rec.State.Running) {
      first = sample();
      await new Promise((r) => setTimeout(r, 1000));
    }
    ctx.json(sample(first));
    return;
  }
  const w = ctx.jsonStream();
  let previous: DockerStats | undefined;
  while (!w.closed && !ctx.signal.aborted) {
    const cur = sample(previous);
    if (!w.write(cur)) break;
    previous = cur;
    const running = s.find(rec.Id)?.State.Running;
    if (!running) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  w.end();
}

/** dist/berth-init beside the bundle, or from sources ../../dist. */
function initPath(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [process.env.BERTH_INIT, join(here, 'berth-init'), join(here, '..', '..', '..', 'dist', 'berth-init')]) {
    if (c && existsSync(c)) return c;
  }
  return undefined;
}

export const containersModule: ApiModule = {
  name: 'containers',
  async init(daemon) {
    const images = daemon.services.images;
    if (!images) throw new Error('the containers module needs the images module');
    const s = new ContainerService({
      dataRoot: daemon.config.dataRoot,
      execRoot: daemon.config.execRoot,
      db: daemon.db,
      images,
      events: daemon.events,
      log: daemon.log,
      networks: () => (daemon.services as Record<string, unknown>).networks as never,
      volumes: () => (daemon.services as Record<string, unknown>).volumes as never,
      logDefaults: () => ({ type: (daemon.config as { logDriver?: string }).logDriver ?? 'json-file', config: (daemon.config as { logOpts?: Record<string, string> }).logOpts ?? {} }),
      initPath,
      runtimes: () => daemon.config.runtimes,
      defaultRuntime: () => daemon.config.defaultRuntime,
      cgroupParent: () => daemon.config.cgroupParent,
    });
    daemon.services.containers = s;
    const networks = (daemon.services as { networks?: { onSettingsChanged?: (id: string, settings: never) => void } }).networks;
    if (networks) networks.onSettingsChanged = (id, settings) => s.networkSettingsChanged(id, settings);
    daemon.services.execs = new ExecService(s);
    setImagesInUse(() => {
      const counts = new Map<string, number>();
      for (const r of s.list()) counts.set(r.Image, (counts.get(r.Image) ?? 0) + 1);
      return counts;
    });
    (images as unknown as { opts: { imageInUse?: (id: string) => string | undefined } }).opts.imageInUse = (id) => s.imageUser(id as never);
    daemon.infoContributors.push((info) => {
      // runc and crun are usable by name when installed (as podman does), beside daemon.json's.
      const runtimes = (info as unknown as { Runtimes?: Record<string, { path: string }> }).Runtimes;
      if (runtimes) for (const n of s.runtimeNames()) if (!runtimes[n]) runtimes[n] = { path: lookPath(n) ?? n };
      const all = s.list();
      const i = info as unknown as Record<string, number>;
      i.Containers = all.length;
      i.ContainersRunning = all.filter((r) => r.State.Running && !r.State.Paused).length;
      i.ContainersPaused = all.filter((r) => r.State.Paused).length;
      i.ContainersStopped = all.filter((r) => !r.State.Running).length;
    });
    daemon.diskUsageContributors.push(async (du, opts) => {
      if (!opts.containers) return;
      const list = [];
      for (const r of s.list()) list.push(summary(r, true, await sizesOf(daemon, r)));
      (du as unknown as Record<string, unknown>).Containers = list;
    });
    daemon.onShutdown(() => s.close());
    // This module is initialised last (networks and volumes are ready): reconnect to running
    // containers and record the exits that happened meanwhile before the API answers anyone.
    try {
      await s.restore();
    } catch (err) {
      daemon.log.error(`restoring containers: ${(err as Error).message}`);
    }
  },
  routes(router) {
    router.post('/containers/create', createContainer);
    router.get('/containers/json', listContainers);
    router.post('/containers/prune', pruneContainers);
    router.get('/containers/{id}/json', inspectContainer);
    router.post('/containers/{id}/start', startContainer);
    router.post('/containers/{id}/stop', stopContainer);
    router.post('/containers/{id}/restart', restartContainer);
    router.post('/containers/{id}/kill', killContainer);
    router.post('/containers/{id}/wait', waitContainer);
    router.post('/containers/{id}/attach', attachContainer);
    router.get('/containers/{id}/logs', containerLogs);
    router.delete('/containers/{id}', removeContainer);
    router.post('/containers/{id}/rename', renameContainer);
    router.post('/containers/{id}/pause', pauseContainer);
    router.post('/containers/{id}/unpause', unpauseContainer);
    router.post('/containers/{id}/resize', resizeContainer);
    router.post('/containers/{id}/update', updateContainer);
    router.post('/containers/{id}/exec', execCreate);
    router.get('/containers/{id}/top', containerTopRoute);
    router.get('/containers/{id}/stats', containerStats);
    router.post('/exec/{id}/start', execStart);
    router.post('/exec/{id}/resize', execResize);
    router.get('/exec/{id}/json', execInspect);
  },
};
