// What docker prints about containers, computed from the Engine API's answers:
//   displayablePorts    the PORTS column ("127.0.0.1:8080->80/tcp, 9000-9002/tcp")
//   containerStatusText State → "Up 2 seconds", "Exited (0) 3 minutes ago", … (the daemon's
//                       Status field; exported so the engine's /containers/json says the same)
//   ContainerRow        one row of `ps` (docker's formatter.ContainerContext)
//   goQuote             Go's strconv.Quote (the COMMAND column)
import { displaySize, humanDuration } from '../../api/units.ts';
import { familiarName, parseNormalizedReference } from '../../image/reference.ts';
import { goTimeString } from '../commands/common.ts';
import { ellipsis, goMarshal } from '../commands/images.ts';
import { shortId } from './output.ts';

/** GET /containers/json Ports entries. */
export interface ApiPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** GET /containers/json items (the fields docker's formatter reads). */
export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image: string;
  ImageID?: string;
  Command: string;
  Created: number;
  Ports?: ApiPort[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels?: Record<string, string> | null;
  State: string;
  Status: string;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
  Mounts?: Array<{ Name?: string; Source?: string; Driver?: string }> | null;
  ImageManifestDescriptor?: { platform?: { architecture?: string; os?: string; variant?: string } } | null;
}

/** Go's net.JoinHostPort: IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: string | number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function comparePorts(a: ApiPort, b: ApiPort): number {
  if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
  const ai = a.IP ?? '';
  const bi = b.IP ?? '';
  if (ai !== bi) return ai < bi ? -1 : 1;
  const ap = a.PublicPort ?? 0;
  const bp = b.PublicPort ?? 0;
  if (ap !== bp) return ap - bp;
  return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
}

function formGroup(key: string, first: number, last: number): string {
  const slash = key.lastIndexOf('/');
  const ip = slash >= 0 ? key.slice(0, slash) : '';
  const type = slash >= 0 ? key.slice(slash + 1) : key;
  let group = first === last ? String(first) : `${first}-${last}`;
  if (ip) group = `${joinHostPort(ip, group)}->${group}`;
  return `${group}/${type}`;
}

/**
 * docker's DisplayablePorts: ports sorted by private port, IP, public port and type; runs of
 * consecutive ports with the same IP and type (and host port = container port) collapse into
 * ranges; other published ports are listed after them as "ip:public->private/type".
 */
export function displayablePorts(ports: readonly ApiPort[] | null | undefined): string {
  const sorted = [...(ports ?? [])].sort(comparePorts);
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  for (const p of sorted) {
    const current = p.PrivatePort;
    let key = p.Type;
    if (p.IP) {
      if ((p.PublicPort ?? 0) !== current) {
        hostMappings.push(`${joinHostPort(p.IP, p.PublicPort ?? 0)}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) { groups.set(key, { first: current, last: current }); continue; }
    if (current === g.last + 1) { g.last = current; continue; }
    result.push(formGroup(key, g.first, g.last));
    // Go replaces the map entry; the key keeps its first-seen position in the final flush.
    g.first = current;
    g.last = current;
  }
  for (const [key, g] of groups) result.push(formGroup(key, g.first, g.last));
  result.push(...hostMappings);
  return result.join(', ');
}

/** The daemon-side state a Status text is made from (inspect's State, times as RFC 3339). */
export interface StatusState {
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  Dead: boolean;
  ExitCode: number;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: string } | null;
  /** The container is being removed. */
  RemovalInProgress?: boolean;
}

const isZeroTime = (t: string): boolean => !t || t.startsWith('0001-01-01');

/** moby's State.String(): what `docker ps` shows in STATUS. */
export function containerStatusText(s: StatusState, now: number = Date.now()): string {
  const since = (t: string): string => humanDuration(now - Date.parse(t));
  if (s.Running) {
    if (s.Paused) return `Up ${since(s.StartedAt)} (Paused)`;
    if (s.Restarting) return `Restarting (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
    if (s.Health && s.Health.Status && s.Health.Status !== 'none') {
      const h = s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status;
      return `Up ${since(s.StartedAt)} (${h})`;
    }
    return `Up ${since(s.StartedAt)}`;
  }
  if (s.RemovalInProgress) return 'Removal In Progress';
  if (s.Dead) return 'Dead';
  if (isZeroTime(s.StartedAt)) return 'Created';
  if (isZeroTime(s.FinishedAt)) return '';
  return `Exited (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
}

/** Go's strconv.Quote: printable characters kept, others escaped as Go escapes them. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') { out += `\\${ch}`; continue; }
    if (c >= 0x20 && c < 0x7f) { out += ch; continue; }
    switch (ch) {
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    if (c < 0x20 || c === 0x7f) { out += `\\x${c.toString(16).padStart(2, '0')}`; continue; }
    // Non-ASCII: Go keeps what unicode.IsPrint accepts; control and format characters are escaped.
    if (/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u.test(ch) || (c !== 0x20 && /\p{Zs}/u.test(ch))) {
      out += c > 0xffff ? `\\U${c.toString(16).padStart(8, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
      continue;
    }
    out += ch;
  }
  return `${out}"`;
}

/** docker's header label for {{.Label "com.example.x"}} in a table: the last dotted part, '-' and '_' as spaces. */
export function headerLabel(name: unknown): string {
  const parts = String(name ?? '').split('.');
  return (parts[parts.length - 1] ?? '').replace(/[-_]/g, ' ');
}

/** One row of `docker ps` (docker's formatter.ContainerContext). */
export class ContainerRow {
  static goType = '*formatter.ContainerContext';
  /** Fields the template read (docker turns on --size when it reads .Size). */
  readonly used = new Set<string>();
  constructor(private readonly c: ContainerSummary, private readonly trunc: boolean, private readonly now: number = Date.now()) {}

  get ID(): string { return this.trunc ? shortId(this.c.Id) : this.c.Id; }
  get Names(): string {
    let names = (this.c.Names ?? []).map((n) => n.slice(1));
    if (this.trunc) {
      // Legacy link names ("/other/alias") are hidden unless --no-trunc.
      const own = names.find((n) => n.split('/').length === 1);
      if (own !== undefined) names = [own];
    }
    return names.join(',');
  }
  get Image(): string {
    const image = this.c.Image;
    if (image === '') return '<no image>';
    if (this.trunc) {
      const t = shortId(this.c.ImageID ?? '');
      if (t === shortId(image)) return t;
      try {
        const ref = parseNormalizedReference(image);
        return ref.tag !== undefined ? `${familiarName(ref)}:${ref.tag}` : familiarName(ref);
      } catch { /* not a reference: as the daemon said */ }
    }
    return image;
  }
  get Command(): string { return goQuote(this.trunc ? ellipsis(this.c.Command, 20) : this.c.Command); }
  get CreatedAt(): string { return goTimeString(this.c.Created); }
  get RunningFor(): string { return `${humanDuration(this.now - this.c.Created * 1000)} ago`; }
  get Ports(): string { return displayablePorts(this.c.Ports); }
  get State(): string { return this.c.State; }
  get Status(): string { return this.c.Status; }
  get Size(): string {
    this.used.add('Size');
    const rw = displaySize(this.c.SizeRw ?? 0);
    return (this.c.SizeRootFs ?? 0) > 0 ? `${rw} (virtual ${displaySize(this.c.SizeRootFs ?? 0)})` : rw;
  }
  get Labels(): string {
    if (!this.c.Labels) return '';
    return Object.entries(this.c.Labels).map(([k, v]) => `${k}=${v}`).sort().join(',');
  }
  Label(name: unknown): string {
    if (!this.c.Labels || typeof name !== 'string') return '';
    return this.c.Labels[name] ?? '';
  }
  get Mounts(): string {
    return (this.c.Mounts ?? []).map((m) => {
      const name = m.Name ? m.Name : (m.Source ?? '');
      return this.trunc ? ellipsis(name, 15) : name;
    }).join(',');
  }
  get LocalVolumes(): string { return String((this.c.Mounts ?? []).filter((m) => m.Driver === 'local').length); }
  get Networks(): string {
    // Go ranges over a map here: the order is random in docker; Berth keeps the daemon's order.
    return Object.keys(this.c.NetworkSettings?.Networks ?? {}).join(',');
  }
  get Platform(): string | null {
    const p = this.c.ImageManifestDescriptor?.platform;
    if (!p) return null;
    return [p.os ?? 'unknown', p.architecture ?? 'unknown', ...(p.variant ? [p.variant] : [])].join('/');
  }

  /** docker marshals every niladic method: keys sorted (Go's map encoding). */
  toJSON(): Record<string, unknown> {
    return {
      Command: this.Command, CreatedAt: this.CreatedAt, ID: this.ID, Image: this.Image, Labels: this.Labels,
      LocalVolumes: this.LocalVolumes, Mounts: this.Mounts, Names: this.Names, Networks: this.Networks,
      Platform: this.Platform, Ports: this.Ports, RunningFor: this.RunningFor, Size: this.Size, State: this.State, Status: this.Status,
    };
  }
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

export const CONTAINER_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Names: 'NAMES', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED',
  Ports: 'PORTS', State: 'STATE', Status: 'STATUS', Size: 'SIZE', Labels: 'LABELS', Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES', Networks: 'NETWORKS', Platform: 'PLATFORM',
};

export const CONTAINER_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

/** docker's NewContainerFormat. */
export function containerFormat(source: string, quiet: boolean, size: boolean): string {
  if (source === 'table' || source === '') {
    if (quiet) return '{{.ID}}';
    return size ? `${CONTAINER_TABLE}\t{{.Size}}` : CONTAINER_TABLE;
  }
  if (source === 'raw') {
    if (quiet) return 'container_id: {{.ID}}';
    let f = 'container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n' +
      'status: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n';
    if (size) f += 'size: {{.Size}}\\n';
    return f;
  }
  return quiet ? '{{.ID}}' : source;
}
