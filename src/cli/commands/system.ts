// `berth version`, `berth info`, `berth events` (also as `berth system info|events`), `berth system df`.
import { arch, platform } from 'node:os';
import type { IncomingMessage } from 'node:http';
import { bytesSize, humanSize } from '../../api/units.ts';
import type { SystemInfo, SystemVersion } from '../../api/types.ts';
import { API_VERSION, BERTH_VERSION, BUILD_TIME, GIT_COMMIT } from '../../api/version.ts';
import { FilterArgs } from '../../engine/filters.ts';
import { writeStdout, writeStderr } from '../../runtime/output.ts';
import type { EngineClient } from '../client.ts';
import { parseTemplate, renderList, renderObject } from '../format/output.ts';
import { rfc3339NanoFixed } from '../format/progress.ts';
import { DOCKER_VERSION_TABLE, tabwrite } from '../format/table.ts';
import { getTimestamp } from '../format/time.ts';
import { resolveHost, type GlobalOptions } from '../connect.ts';

/** Exit status with a message already printed (or none to print). */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(readonly code: number, message = '') {
    super(message);
  }
}

function goArch(): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[arch()] ?? arch();
}

/** Go's time.ANSIC in local time: "Mon Jan  2 15:04:05 2006"; the input unchanged if unparsable. */
export function ansicDate(rfc3339: string): string {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getDay()]} ${months[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

export interface ClientVersion {
  Platform: { Name: string };
  Version: string;
  ApiVersion: string;
  DefaultAPIVersion: string;
  GitCommit: string;
  NodeVersion: string;
  Os: string;
  Arch: string;
  BuildTime: string;
  Host: string;
}

function clientVersion(client: EngineClient | undefined, host: string): ClientVersion {
  return {
    Platform: { Name: 'Berth' },
    Version: BERTH_VERSION,
    ApiVersion: client?.version ?? API_VERSION,
    DefaultAPIVersion: API_VERSION,
    GitCommit: GIT_COMMIT,
    NodeVersion: process.version,
    Os: platform(),
    Arch: goArch(),
    BuildTime: ansicDate(BUILD_TIME),
    Host: host,
  };
}

function prettyVersion(v: { Client: ClientVersion; Server: SystemVersion | null }): string {
  const c = v.Client;
  let s = `Client: ${c.Platform.Name}\n`;
  s += ` Version:\t${c.Version}\n`;
  s += ` API version:\t${c.ApiVersion}${c.ApiVersion !== c.DefaultAPIVersion ? ` (downgraded from ${c.DefaultAPIVersion})` : ''}\n`;
  s += ` Node.js version:\t${c.NodeVersion}\n`;
  s += ` Git commit:\t${c.GitCommit}\n`;
  s += ` Built:\t${c.BuildTime}\n`;
  s += ` OS/Arch:\t${c.Os}/${c.Arch}\n`;
  s += ` Host:\t${c.Host}\n`;
  if (v.Server) {
    const sv = v.Server;
    s += `\nServer:${sv.Platform?.Name ? ` ${sv.Platform.Name}` : ''}\n`;
    for (const comp of sv.Components ?? []) {
      s += ` ${comp.Name}:\n`;
      const d = comp.Details ?? {};
      if (comp.Name === 'Engine') {
        s += `  Version:\t${comp.Version}\n`;
        s += `  API version:\t${d.ApiVersion ?? ''} (minimum version ${d.MinAPIVersion ?? ''})\n`;
        // dockerd's "Go version"; Berth's engine reports its Node.js runtime there.
        s += `  ${String(d.GoVersion ?? '').startsWith('go') ? 'Go' : 'Runtime'} version:\t${d.GoVersion ?? ''}\n`;
        s += `  Git commit:\t${d.GitCommit ?? ''}\n`;
        s += `  Built:\t${ansicDate(d.BuildTime ?? '')}\n`;
        s += `  OS/Arch:\t${d.Os ?? ''}/${d.Arch ?? ''}\n`;
        s += `  Experimental:\t${d.Experimental ?? 'false'}\n`;
      } else {
        s += `  Version:\t${comp.Version}\n`;
        for (const k of Object.keys(d).sort()) s += `  ${k}:\t${d[k]}\n`;
      }
    }
  }
  return tabwrite(s, DOCKER_VERSION_TABLE);
}

export async function versionCommand(g: GlobalOptions, opts: { format?: string }, connect: () => Promise<EngineClient>): Promise<void> {
  const host = resolveHost(g).address;
  let client: EngineClient | undefined;
  let server: SystemVersion | null = null;
  let error: unknown;
  try {
    client = await connect();
    server = await client.get<SystemVersion>('/version');
  } catch (e) {
    error = e;
  }
  const data = { Client: clientVersion(client, host), Server: server };
  if (opts.format) writeStdout(renderObject(data, opts.format));
  else writeStdout(prettyVersion(data));
  if (error) throw error;
}

function ln(label: string, value: unknown): string {
  return `${label} ${value}\n`;
}
function lnNonEmpty(label: string, value: string | undefined): string {
  return value ? ln(label, value) : '';
}

function prettyServerInfo(info: SystemInfo): string {
  let s = '';
  s += ln(' Containers:', info.Containers);
  s += ln('  Running:', info.ContainersRunning);
  s += ln('  Paused:', info.ContainersPaused);
  s += ln('  Stopped:', info.ContainersStopped);
  s += ln(' Images:', info.Images);
  s += lnNonEmpty(' Server Version:', info.ServerVersion);
  s += lnNonEmpty(' Storage Driver:', info.Driver);
  for (const [k, v] of info.DriverStatus ?? []) s += `  ${k}: ${v}\n`;
  s += lnNonEmpty(' Logging Driver:', info.LoggingDriver);
  s += lnNonEmpty(' Cgroup Driver:', info.CgroupDriver);
  s += lnNonEmpty(' Cgroup Version:', info.CgroupVersion);
  s += ' Plugins:\n';
  s += ln('  Volume:', (info.Plugins?.Volume ?? []).join(' '));
  s += ln('  Network:', (info.Plugins?.Network ?? []).join(' '));
  if (info.Plugins?.Authorization?.length) s += ln('  Authorization:', info.Plugins.Authorization.join(' '));
  s += ln('  Log:', (info.Plugins?.Log ?? []).join(' '));
  s += ln(' Swarm:', info.Swarm?.LocalNodeState ?? 'inactive');
  const runtimes = Object.keys(info.Runtimes ?? {});
  if (runtimes.length) {
    s += ln(' Runtimes:', runtimes.join(' '));
    s += ln(' Default Runtime:', info.DefaultRuntime);
  }
  s += ln(' Init Binary:', info.InitBinary);
  if (info.SecurityOptions?.length) {
    s += ' Security Options:\n';
    for (const so of info.SecurityOptions) {
      const kv = Object.fromEntries(so.split(',').map((p) => { const i = p.indexOf('='); return [p.slice(0, i), p.slice(i + 1)]; }));
      s += `  ${kv.name ?? so}\n`;
      if (kv.profile) s += ln('   Profile:', kv.profile);
    }
  }
  s += lnNonEmpty(' Kernel Version:', info.KernelVersion);
  s += lnNonEmpty(' Operating System:', info.OperatingSystem);
  s += lnNonEmpty(' OSType:', info.OSType);
  s += lnNonEmpty(' Architecture:', info.Architecture);
  s += ln(' CPUs:', info.NCPU);
  s += ln(' Total Memory:', bytesSize(info.MemTotal));
  s += lnNonEmpty(' Name:', info.Name);
  s += lnNonEmpty(' ID:', info.ID);
  s += ln(' Berth Root Dir:', info.DockerRootDir);
  s += ln(' Debug Mode:', info.Debug);
  if (info.Debug) {
    s += ln('  File Descriptors:', info.NFd);
    s += ln('  Event Loop Handles:', info.NGoroutines);
    s += ln('  System Time:', info.SystemTime);
    s += ln('  EventsListeners:', info.NEventsListener);
  }
  s += lnNonEmpty(' HTTP Proxy:', info.HttpProxy);
  s += lnNonEmpty(' HTTPS Proxy:', info.HttpsProxy);
  s += lnNonEmpty(' No Proxy:', info.NoProxy);
  if (info.Labels?.length) s += ' Labels:\n' + info.Labels.map((l) => `  ${l}\n`).join('');
  s += ln(' Experimental:', info.ExperimentalBuild);
  const reg = info.RegistryConfig;
  if (reg && (reg.InsecureRegistryCIDRs?.length || Object.keys(reg.IndexConfigs ?? {}).length)) {
    s += ' Insecure Registries:\n';
    for (const ic of Object.values(reg.IndexConfigs ?? {})) if (!ic.Secure) s += `  ${ic.Name}\n`;
    for (const c of reg.InsecureRegistryCIDRs ?? []) s += `  ${c}\n`;
  }
  if (reg?.Mirrors?.length) s += ' Registry Mirrors:\n' + reg.Mirrors.map((m) => `  ${m}\n`).join('');
  s += ln(' Live Restore Enabled:', info.LiveRestoreEnabled);
  s += '\n';
  return s;
}

export async function infoCommand(g: GlobalOptions, opts: { format?: string }, connect: () => Promise<EngineClient>): Promise<void> {
  const host = resolveHost(g).address;
  const clientInfo = { Version: BERTH_VERSION, Host: host, Debug: Boolean(g.debug) };
  let info: SystemInfo | undefined;
  let error: unknown;
  try {
    const client = await connect();
    info = await client.get<SystemInfo>('/info');
  } catch (e) {
    error = e;
  }
  if (opts.format) {
    if (error) throw error;
    writeStdout(renderObject({ ...info, ClientInfo: clientInfo }, opts.format));
    return;
  }
  let s = 'Client:\n';
  s += ln(' Version:   ', clientInfo.Version);
  s += ln(' Host:      ', clientInfo.Host);
  s += ln(' Debug Mode:', clientInfo.Debug);
  s += '\n';
  s += 'Server:\n';
  writeStdout(s);
  if (error) throw error;
  writeStdout(prettyServerInfo(info as SystemInfo));
  for (const w of info?.Warnings ?? []) writeStderr(`${w}\n`);
}

/** One event, with every field dockerd may send, so a --format typo is an error (as docker's struct). */
export class EventRow {
  static goType = 'events.Message';
  status = '';
  id = '';
  from = '';
  Type = '';
  Action = '';
  Actor: { ID: string; Attributes: Record<string, string> } = { ID: '', Attributes: {} };
  scope = '';
  time = 0;
  timeNano = 0n;

  static fromJSON(line: string): EventRow {
    const raw = JSON.parse(line) as Partial<EventRow>;
    const row = new EventRow();
    Object.assign(row, raw);
    row.Actor = { ID: raw.Actor?.ID ?? '', Attributes: raw.Actor?.Attributes ?? {} };
    // timeNano does not fit a double: take the digits from the text.
    const m = /"timeNano"\s*:\s*(\d+)/.exec(line);
    row.timeNano = m ? BigInt(m[1]) : BigInt(row.time ?? 0) * 1_000_000_000n;
    return row;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (this.status) out.status = this.status;
    if (this.id) out.id = this.id;
    if (this.from) out.from = this.from;
    out.Type = this.Type;
    out.Action = this.Action;
    out.Actor = this.Actor;
    if (this.scope) out.scope = this.scope;
    if (this.time) out.time = this.time;
    if (this.timeNano) out.timeNano = this.timeNano;
    return out;
  }
}

export function prettyEvent(ev: EventRow): string {
  let s = '';
  if (ev.timeNano) s += `${rfc3339NanoFixed(ev.timeNano)} `;
  else if (ev.time) s += `${rfc3339NanoFixed(BigInt(ev.time) * 1_000_000_000n)} `;
  s += `${ev.Type} ${ev.Action} ${ev.Actor.ID}`;
  const keys = Object.keys(ev.Actor.Attributes).sort();
  if (keys.length) s += ` (${keys.map((k) => `${k}=${ev.Actor.Attributes[k]}`).join(', ')})`;
  return `${s}\n`;
}

async function forEachLine(res: IncomingMessage, fn: (line: string) => void): Promise<void> {
  let buf = '';
  for await (const chunk of res) {
    buf += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) fn(line);
    }
  }
  if (buf.trim()) fn(buf.trim());
}

export async function eventsCommand(opts: { filter?: string[]; since?: string; until?: string; format?: string }, connect: () => Promise<EngineClient>): Promise<void> {
  let tmpl: ReturnType<typeof parseTemplate> | undefined;
  if (opts.format) {
    const f = opts.format === 'json' ? '{{json .}}' : opts.format;
    try {
      tmpl = parseTemplate(f);
      tmpl.execute(new EventRow()); // docker validates the template on an empty event first
    } catch (e) {
      throw new ExitError(64, `Error parsing format: ${(e as Error).message}`);
    }
  }
  const filters = FilterArgs.fromPairs(opts.filter ?? []);
  const client = await connect();
  const res = await client.request('GET', '/events', {
    query: {
      since: opts.since ? getTimestamp(opts.since) : undefined,
      until: opts.until ? getTimestamp(opts.until) : undefined,
      filters: filters.encode() || undefined,
    },
  });
  await forEachLine(res, (line) => {
    const ev = EventRow.fromJSON(line);
    writeStdout(tmpl ? `${tmpl.execute(ev)}\n` : prettyEvent(ev));
  });
}

interface DiskUsageReply {
  LayersSize?: number;
  Images?: Array<{ Size: number; SharedSize: number; Containers: number }> | null;
  Containers?: Array<{ State?: string; SizeRw?: number }> | null;
  Volumes?: Array<{ UsageData?: { Size: number; RefCount: number } | null }> | null;
  BuildCache?: Array<{ Size: number; InUse: boolean; Shared: boolean }> | null;
  BuilderSize?: number;
}

/** One row of `system df`, with docker's column values (formatter.diskUsage*Context). */
export class DiskUsageRow {
  static goType = 'formatter.diskUsageContext';
  constructor(readonly Type: string, readonly TotalCount: string, readonly Active: string, readonly Size: string, readonly Reclaimable: string) {}
  /** docker marshals formatter contexts as a map: keys sorted. */
  toJSON(): Record<string, string> {
    return { Active: this.Active, Reclaimable: this.Reclaimable, Size: this.Size, TotalCount: this.TotalCount, Type: this.Type };
  }
}

function withPercent(reclaimable: number, total: number): string {
  return total > 0 ? `${humanSize(reclaimable)} (${Math.trunc((reclaimable * 100) / total)}%)` : humanSize(reclaimable);
}

export function diskUsageRows(du: DiskUsageReply): DiskUsageRow[] {
  const images = du.Images ?? [];
  const layers = du.LayersSize ?? 0;
  let usedByContainers = 0;
  for (const i of images) if (i.Containers !== 0 && i.Size !== -1 && i.SharedSize !== -1) usedByContainers += i.Size - i.SharedSize;
  const containers = du.Containers ?? [];
  const active = (s?: string): boolean => s === 'running' || s === 'paused' || s === 'restarting';
  const ctrSize = containers.reduce((n, c) => n + (c.SizeRw ?? 0), 0);
  const ctrFree = containers.reduce((n, c) => n + (active(c.State) ? 0 : (c.SizeRw ?? 0)), 0);
  const volumes = (du.Volumes ?? []).map((v) => v.UsageData ?? { Size: -1, RefCount: 0 });
  const volSized = volumes.filter((v) => v.Size !== -1);
  const volSize = volSized.reduce((n, v) => n + v.Size, 0);
  const volFree = volSized.reduce((n, v) => n + (v.RefCount === 0 ? v.Size : 0), 0);
  const cache = du.BuildCache ?? [];
  const builderSize = du.BuilderSize || cache.reduce((n, b) => n + (b.Shared ? 0 : b.Size), 0);
  const cacheInUse = cache.reduce((n, b) => n + (b.InUse && !b.Shared ? b.Size : 0), 0);
  return [
    new DiskUsageRow('Images', String(images.length), String(images.filter((i) => i.Containers > 0).length), humanSize(layers), withPercent(layers - usedByContainers, layers)),
    new DiskUsageRow('Containers', String(containers.length), String(containers.filter((c) => active(c.State)).length), humanSize(ctrSize), withPercent(ctrFree, ctrSize)),
    new DiskUsageRow('Local Volumes', String(volumes.length), String(volumes.filter((v) => v.RefCount > 0).length), humanSize(volSize), withPercent(volFree, volSize)),
    new DiskUsageRow('Build Cache', String(cache.length), String(cache.filter((b) => b.InUse).length), humanSize(builderSize), humanSize(builderSize - cacheInUse)),
  ];
}

export async function diskUsageCommand(opts: { format?: string }, connect: () => Promise<EngineClient>): Promise<void> {
  const client = await connect();
  const du = await client.get<DiskUsageReply>('/system/df');
  writeStdout(renderList(diskUsageRows(du), {
    format: opts.format,
    defaultTable: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
    headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
  }));
}
