// The volumes and networks pages' pure logic: form fields → Engine API bodies (checked as the
// docker CLI and dockerd check them), and what the tables show. Unit-tested in Node.

export class FormError extends Error {
  override name = 'FormError';
}

/** "key=value" lines → a map; a key without "=" gets "" (docker's --label k). */
export function parseKeyValues(text: string | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of (text ?? '').split('\n')) {
    const item = raw.trim();
    if (!item || item.startsWith('#')) continue;
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    if (!key) throw new FormError(`${what} ${JSON.stringify(item)}: the key is empty`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

export interface VolumeFields {
  name?: string;
  driver?: string;
  labels?: string;
  opts?: string;
}

/** docker's rule for volume names (the local driver's). */
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function volumeCreateBody(f: VolumeFields): { Name?: string; Driver: string; Labels: Record<string, string>; DriverOpts: Record<string, string> } {
  const name = f.name?.trim();
  if (name && !VOLUME_NAME_RE.test(name)) {
    throw new FormError(`"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
  }
  return {
    Name: name || undefined,
    Driver: f.driver?.trim() || 'local',
    Labels: parseKeyValues(f.labels, 'label'),
    DriverOpts: parseKeyValues(f.opts, 'driver option'),
  };
}

export interface NetworkFields {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  attachable?: boolean;
  labels?: string;
}

function ipv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

/** An IPv4 CIDR → [network, prefix]; undefined for anything else (IPv6 is left to the daemon). */
function cidr4(text: string): [number, number] | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const ip = ipv4(m[1]);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32) return undefined;
  return [ip, prefix];
}

function inSubnet(ip: number, [net, prefix]: [number, number]): boolean {
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((ip & mask) >>> 0) === ((net & mask) >>> 0);
}

export function networkCreateBody(f: NetworkFields): Record<string, unknown> {
  const name = f.name.trim();
  if (!name) throw new FormError('a network needs a name');
  const subnet = f.subnet?.trim();
  const gateway = f.gateway?.trim();
  const ipRange = f.ipRange?.trim();
  if ((gateway || ipRange) && !subnet) throw new FormError('a gateway or IP range needs a subnet');
  const config: Record<string, string> = {};
  if (subnet) {
    const isV6 = subnet.includes(':');
    const net = isV6 ? undefined : cidr4(subnet);
    if (!isV6 && !net) throw new FormError(`invalid subnet ${subnet}: expected CIDR notation such as 10.20.0.0/24`);
    config.Subnet = subnet;
    if (gateway) {
      if (net) {
        const gw = ipv4(gateway);
        if (gw === undefined) throw new FormError(`invalid gateway ${gateway}: expected an IPv4 address`);
        if (!inSubnet(gw, net)) throw new FormError(`no matching subnet for gateway ${gateway}`);
      }
      config.Gateway = gateway;
    }
    if (ipRange) {
      const r = net ? cidr4(ipRange) : undefined;
      if (net && (!r || !inSubnet(r[0], net) || r[1] < net[1])) throw new FormError(`the IP range ${ipRange} is not inside the subnet ${subnet}`);
      config.IPRange = ipRange;
    }
  }
  return {
    Name: name,
    Driver: f.driver?.trim() || 'bridge',
    Internal: f.internal ?? false,
    Attachable: f.attachable ?? false,
    IPAM: { Driver: 'default', Config: subnet ? [config] : [] },
    Labels: parseKeyValues(f.labels, 'label'),
  };
}

/** The networks every daemon has and that cannot be removed. */
export const BUILTIN_NETWORKS = ['bridge', 'host', 'none'];

export function isBuiltinNetwork(name: string): boolean {
  return BUILTIN_NETWORKS.includes(name);
}

export interface NetworkSummary {
  Name: string;
  Id: string;
  Driver: string;
  Scope: string;
  Internal?: boolean;
  Created?: string;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string }> | null };
  Containers?: Record<string, { Name: string; IPv4Address?: string; IPv6Address?: string; MacAddress?: string }> | null;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
}

/** Subnets and gateways of a network's IPAM config, as "10.0.0.0/24 via 10.0.0.1" pieces. */
export function networkAddressing(n: NetworkSummary): Array<{ subnet: string; gateway: string }> {
  return (n.IPAM?.Config ?? []).filter((c) => c.Subnet).map((c) => ({ subnet: c.Subnet ?? '', gateway: c.Gateway ?? '' }));
}

/**
 * Running containers per network id, from GET /containers/json: the network list does not fill
 * in Containers (dockerd's neither), and one request beats one inspect per network.
 */
export function containersPerNetwork(containers: Array<{ NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> } }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of containers) {
    for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      const key = ep.NetworkID || name;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/** Case-insensitive match of a search text against any of the fields (labels as key=value). */
export function matches(q: string, ...fields: Array<string | undefined | null | Record<string, string>>): boolean {
  const needle = q.trim().toLowerCase();
  if (!needle) return true;
  return fields.some((f) => {
    if (!f) return false;
    if (typeof f === 'string') return f.toLowerCase().includes(needle);
    return Object.entries(f).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(needle));
  });
}

/** The container id named in dockerd's "volume is in use - [id, …]" conflict, for a link. */
export function inUseBy(message: string): string[] {
  const m = /in use - \[([^\]]*)\]/.exec(message);
  return m ? m[1].split(/[\s,]+/).filter(Boolean) : [];
}
