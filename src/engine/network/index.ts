// Container networking: docker's bridge, host, none and container:<x> modes, user-defined bridge
// networks, IPAM, published ports, and the hosts/resolv.conf/hostname files.
//
// Own code over iproute2 and iptables, not Debian's CNI plugins. What a start costs here
// (measured with the service on the shared 2-core development host, medians of 20):
//   - one `unshare --net=<file> ip -batch -` makes the namespace, the veth pair (its peer created
//     straight in the daemon's namespace with `netns <pid>`), addresses and routes: ~6 ms;
//   - one host `ip -batch -` (enslave to the bridge, hairpin, up): ~5 ms, beside
//   - published ports only: one `iptables-restore --noflush` appending this sandbox's rules, ~5 ms;
//   total prepare() ~9 ms median without ports (bench/network.mjs). A stop: unmount the namespace (~4 ms); the kernel frees it and its
//   veths in the background (an explicit `ip link del` of a veth is ~25 ms of RCU waiting).
//   Deleting port rules (~25 ms: iptables-nft reads the whole ruleset for a delete or a flush)
//   runs after the stop has returned.
// The CNI path execs bridge + host-local + portmap + loopback per container (Go binaries: each
// takes ~3 ms here just to start and answer CNI_COMMAND=VERSION, ~12 ms for the four before any
// work; then their netlink work, host-local's file-locked IPAM, portmap's own iptables runs),
// plus a helper to make the namespace: more than our whole prepare() (~9 ms without ports, see
// bench/network.mjs), and it still gives no name resolution between containers, no docker
// port-in-use errors and no hot-plugged `network connect`, which we would write anyway. Netlink in C would save the two iproute2 execs (a few
// ms) for a second C helper to maintain; not worth it yet. All decisions are TypeScript here;
// the commands only execute them.
//
// Sandboxes: each container (bridge and none modes) gets a network namespace made before the
// runtime creates it, bind-mounted at <exec-root>/netns/<container id>; the OCI spec names that
// path, and the mount keeps the namespace alive across daemon restarts. Its state (endpoints,
// addresses, ports) is in berth.db (store.ts), so IPAM survives restarts; reconcile() frees what
// belongs to containers that stopped while the daemon was away.
//
// Published ports are DNAT rules (PREROUTING for traffic from outside, OUTPUT for the host's own
// connections, both to local addresses only), with route_localnet on the bridge and MASQUERADE of
// local sources so 127.0.0.1:<port> works — docker's "userland-proxy": false design. No proxy
// process per port: nothing to supervise, no extra copies, the container sees real client
// addresses from outside. A port is checked free by binding it before the rules go in.
//
// Name resolution between containers on a user-defined network is /etc/hosts, rewritten in
// place (the bind mount pins the inode) whenever an endpoint joins or leaves; no DNS server.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, isIPv4, isIP } from 'node:net';
import { basename, join } from 'node:path';
import type { DaemonContext } from '../../api/context.ts';
import type { ContainerAccess, ContainerRecord, DockerHostConfig, EndpointSettings, NetworkSettings, PortBinding, PortMap } from '../containers/types.ts';
import { nowNano } from '../events.ts';
import { FilterArgs } from '../filters.ts';
import { checkDnsServer, renderHosts, renderResolvConf, writeInPlace, type HostsEntry } from './files.ts';
import {
  applyFirewall, createNetns, firewallPresent, HostNames, ipBatchIn, linkExists, removeNetns, renderFirewall,
  renderFirewallRemoval, renderPortRules, writeSysctl, type FirewallPort,
} from './host.ts';
import { contains, conflictingRoute, intToIp, ipToInt, macForIp, maskOf, overlaps, parseSubnet, pickSubnet, subnetString, type Subnet } from './ipv4.ts';
import { NetworkStore, type Attachment, type EndpointState, type IpamConfig, type NetworkRecord, type PortState, type SandboxState, type StoredNetwork } from './store.ts';

export type { NetworkRecord } from './store.ts';

declare module '../../api/context.ts' {
  interface Services { networks: NetworkService }
}

export interface SandboxRequest {
  containerId: string;
  /** Without the leading slash. */
  containerName: string;
  hostname: string;
  domainname?: string;
  hostConfig: DockerHostConfig;
  /** Config.ExposedPorts, already merged with the image's. */
  exposedPorts: Record<string, object>;
  /** NetworkingConfig.EndpointsConfig from create. */
  endpointsConfig: Record<string, EndpointSettings>;
  /** The container's data dir: hosts, resolv.conf and hostname are written here. */
  dataDir: string;
}

export interface Sandbox {
  /** undefined = the host's network namespace (--network host). */
  netnsPath?: string;
  hostsPath: string;
  resolvConfPath: string;
  hostnamePath: string;
  /** docker's, for inspect (Ports with the actual host ports). */
  networkSettings: NetworkSettings;
}

export type NetworkErrorCode = 'not-found' | 'conflict' | 'invalid' | 'forbidden' | 'failed';

/** A networking error with docker's wording; the API maps `code` to the status dockerd uses. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  constructor(readonly code: NetworkErrorCode, message: string) { super(message); }
}

export interface CreateNetworkOptions {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: IpamConfig[] | null; Options?: Record<string, string> | null } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  CheckDuplicate?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network?: string } | null;
  Scope?: string;
}

/** GET /networks/{id}'s Containers entries. */
export interface NetworkContainer { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }
export type NetworkResource = NetworkRecord & { Containers: Record<string, NetworkContainer> };

const PROTOS = new Set(['tcp', 'udp', 'sctp']);
/** How long after a release leftover veths are deleted by hand (see releaseNamespace). */
export const VETH_REAP_MS = 2000;

function ifindexOf(link: string): number | undefined {
  try { return Number(readFileSync(`/sys/class/net/${link}/ifindex`, 'utf8')); } catch { return undefined; }
}
const randomId = (): string => randomBytes(32).toString('hex');
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

type Mode = { kind: 'bridge'; network: string } | { kind: 'host' } | { kind: 'none' } | { kind: 'container'; ref: string };

function parseMode(networkMode: string | undefined): Mode {
  const m = networkMode ?? '';
  if (m === '' || m === 'default' || m === 'bridge') return { kind: 'bridge', network: 'bridge' };
  if (m === 'host') return { kind: 'host' };
  if (m === 'none') return { kind: 'none' };
  if (m.startsWith('container:')) return { kind: 'container', ref: m.slice('container:'.length) };
  return { kind: 'bridge', network: m };
}

interface PortRequest { proto: string; containerPort: number; key: string; bindings: Array<{ hostIp: string; from: number; to: number }> }

/** PortBindings + PublishAllPorts → what to publish; throws docker's messages for bad specs. */
function portRequests(hc: DockerHostConfig, exposed: Record<string, object>): { requests: PortRequest[]; keys: string[] } {
  const keys = new Set<string>(Object.keys(exposed ?? {}));
  const requests: PortRequest[] = [];
  const parseKey = (key: string): { port: number; proto: string } => {
    const m = /^(\d+)(?:\/(\w+))?$/.exec(key);
    if (!m) throw new NetworkError('invalid', `invalid containerPort: ${key.split('/')[0]}`);
    const port = Number(m[1]);
    const proto = (m[2] ?? 'tcp').toLowerCase();
    if (port < 1 || port > 65535) throw new NetworkError('invalid', `invalid containerPort: ${m[1]}`);
    if (!PROTOS.has(proto)) throw new NetworkError('invalid', `invalid proto: ${proto}`);
    return { port, proto };
  };
  const bound = new Set<string>();
  for (const [key, list] of Object.entries(hc.PortBindings ?? {})) {
    const { port, proto } = parseKey(key);
    const norm = `${port}/${proto}`;
    keys.add(norm);
    bound.add(norm);
    const bindings = (list?.length ? list : [{}]).map((b: PortBinding) => {
      const hostIp = b.HostIp ?? '';
      if (hostIp !== '' && !isIP(hostIp)) throw new NetworkError('invalid', `invalid IP address: ${hostIp}`);
      const hp = b.HostPort ?? '';
      const m = /^(\d+)(?:-(\d+))?$/.exec(hp);
      if (hp !== '' && !m) throw new NetworkError('invalid', `invalid hostPort: ${hp}`);
      const from = m ? Number(m[1]) : 0;
      const to = m ? Number(m[2] ?? m[1]) : 0;
      if (m && (from < 1 || to > 65535 || to < from)) throw new NetworkError('invalid', `invalid hostPort: ${hp}`);
      return { hostIp, from, to };
    });
    requests.push({ proto, containerPort: port, key: norm, bindings });
  }
  if (hc.PublishAllPorts) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parseKey(key);
      if (bound.has(`${port}/${proto}`)) continue;
      requests.push({ proto, containerPort: port, key: `${port}/${proto}`, bindings: [{ hostIp: '', from: 0, to: 0 }] });
    }
  }
  return { requests, keys: [...keys].map((k) => { const p = parseKey(k); return `${p.port}/${p.proto}`; }) };
}

/** Whether something on the host holds the port: try to bind it (and let go at once). */
function bindProbe(proto: string, ip: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (e: NodeJS.ErrnoException) => { s.close(); resolve(e.code); });
      s.bind({ address: ip, port, exclusive: true }, () => s.close(() => resolve(undefined)));
      return;
    }
    if (proto !== 'tcp') { resolve(undefined); return; }
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    srv.listen({ host: ip, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a > 0 && b >= a) return [a, b];
  } catch { /* default below */ }
  return [32768, 60999];
}

export class NetworkService {
  readonly names: HostNames;
  private readonly store: NetworkStore;
  private readonly networks = new Map<string, StoredNetwork>();
  private readonly sandboxes = new Map<string, SandboxState>();
  private queue: Promise<unknown> = Promise.resolve();
  /** undefined until read from the kernel once. */
  private fwPresent?: Set<string>;
  private fwInstalled = false;
  /** Called after connect/disconnect changed a running container's settings (the container service stores them). */
  onSettingsChanged?: (containerId: string, settings: NetworkSettings) => void;

  private constructor(private readonly daemon: DaemonContext) {
    this.names = new HostNames(daemon.config.bridgeSuffix ?? '');
    this.store = new NetworkStore(daemon.db);
    for (const n of this.store.networks()) this.networks.set(n.rec.Id, n);
    for (const s of this.store.sandboxes()) this.sandboxes.set(s.containerId, s);
  }

  static async open(daemon: DaemonContext): Promise<NetworkService> {
    const svc = new NetworkService(daemon);
    svc.ensurePredefined();
    daemon.services.networks = svc;
    // Bridges nobody uses go with the daemon, so a stopped daemon leaves no host objects behind
    // unless containers still run on them (then they must stay).
    daemon.onShutdown(() => svc.serial(() => svc.dropIdleBridges()));
    return svc;
  }

  /** The container service's view (set by its module; absent in unit tests of this one). */
  private get containers(): ContainerAccess | undefined {
    return (this.daemon.services as { containers?: ContainerAccess }).containers;
  }

  private get execRoot(): string { return this.daemon.config.execRoot; }
  private netnsPath(id: string): string { return join(this.execRoot, 'netns', id); }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private ensurePredefined(): void {
    const byName = (n: string): StoredNetwork | undefined => [...this.networks.values()].find((x) => x.rec.Name === n);
    const base = (name: string, driver: string): NetworkRecord => ({
      Name: name, Id: randomId(), Created: createdNow(), Scope: 'local', Driver: driver,
      EnableIPv4: true, EnableIPv6: false, IPAM: { Driver: 'default', Options: null, Config: [] }, Internal: false,
      Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Options: {}, Labels: {},
    });
    if (!byName('bridge')) {
      const rec = base('bridge', 'bridge');
      const own = new Set([this.names.defaultBridge]);
      const s = pickSubnet(this.takenSubnets(), own) ?? parseSubnet('172.17.0.0/16')!;
      rec.IPAM.Config = [{ Subnet: subnetString(s), Gateway: intToIp(s.base + 1) }];
      rec.Options = {
        'com.docker.network.bridge.default_bridge': 'true',
        'com.docker.network.bridge.enable_icc': 'true',
        'com.docker.network.bridge.enable_ip_masquerade': 'true',
        'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
        'com.docker.network.bridge.name': this.names.defaultBridge,
        'com.docker.network.driver.mtu': '1500',
      };
      this.putNetwork({ rec, bridge: this.names.defaultBridge, predefined: true });
    }
    if (!byName('host')) this.putNetwork({ rec: base('host', 'host'), bridge: '', predefined: true });
    if (!byName('none')) this.putNetwork({ rec: base('none', 'null'), bridge: '', predefined: true });
  }

  private putNetwork(n: StoredNetwork): void {
    this.store.putNetwork(n);
    this.networks.set(n.rec.Id, n);
  }

  private takenSubnets(except?: string): Subnet[] {
    const out: Subnet[] = [];
    for (const n of this.networks.values()) {
      if (n.rec.Id === except) continue;
      for (const c of n.rec.IPAM.Config) { const s = parseSubnet(c.Subnet); if (s) out.push(s); }
    }
    return out;
  }

  private ownBridges(): Set<string> {
    return new Set([...this.networks.values()].map((n) => n.bridge).filter(Boolean));
  }

  // -------------------------------------------------------------------------------------------
  // lookup
  // -------------------------------------------------------------------------------------------

  /** By full id, name, or unique id prefix (docker's order); throws `network x not found`. */
  find(idOrName: string): StoredNetwork {
    const f = this.tryFind(idOrName);
    if (!f) throw new NetworkError('not-found', `network ${idOrName} not found`);
    return f;
  }

  private tryFind(idOrName: string): StoredNetwork | undefined {
    const all = [...this.networks.values()];
    const exact = this.networks.get(idOrName) ?? all.find((n) => n.rec.Name === idOrName);
    if (exact) return exact;
    if (!/^[0-9a-f]+$/.test(idOrName)) return undefined;
    const byPrefix = all.filter((n) => n.rec.Id.startsWith(idOrName));
    if (byPrefix.length > 1) throw new NetworkError('invalid', `network ${idOrName} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
    return byPrefix[0];
  }

  list(filters: FilterArgs = new FilterArgs()): NetworkResource[] {
    filters.validate(['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling']);
    for (const t of filters.get('type')) if (t !== 'custom' && t !== 'builtin') throw new NetworkError('invalid', `invalid filter: 'type'='${t}'`);
    const dangling = filters.boolValue('dangling');
    return [...this.networks.values()]
      .filter((n) => filters.exactMatch('driver', n.rec.Driver))
      .filter((n) => filters.fuzzyMatch('id', n.rec.Id))
      .filter((n) => !filters.contains('name') || filters.get('name').some((v) => n.rec.Name.includes(v)))
      .filter((n) => filters.matchKVList('label', n.rec.Labels))
      .filter((n) => filters.exactMatch('scope', 'local'))
      .filter((n) => filters.exactMatch('type', n.predefined ? 'builtin' : 'custom'))
      .filter((n) => dangling === undefined || (this.inUse(n) || n.predefined ? !dangling : dangling))
      .sort((a, b) => a.rec.Name.localeCompare(b.rec.Name))
      .map((n) => resource(n.rec, {}));
  }

  inspect(idOrName: string): NetworkResource {
    const n = this.find(idOrName);
    const containers: Record<string, NetworkContainer> = {};
    for (const s of this.sandboxes.values()) {
      const ep = s.endpoints.find((e) => e.networkId === n.rec.Id);
      if (ep) containers[s.containerId] = { Name: s.name, EndpointID: ep.endpointId, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${ep.prefixLen}`, IPv6Address: '' };
      else if ((s.mode === 'host' && n.rec.Driver === 'host') || (s.mode === 'none' && n.rec.Driver === 'null')) {
        containers[s.containerId] = { Name: s.name, EndpointID: s.sandboxId, MacAddress: '', IPv4Address: '', IPv6Address: '' };
      }
    }
    return resource(n.rec, containers);
  }

  private inUse(n: StoredNetwork): boolean {
    if (this.store.attachedContainers(n.rec.Id).length) return true;
    return [...this.sandboxes.values()].some((s) => s.endpoints.some((e) => e.networkId === n.rec.Id));
  }

  /** Resolves when the work queued so far (e.g. port rules a stop left to delete) is done. */
  settled(): Promise<void> {
    return this.serial(async () => {});
  }

  /** The settings of a running container's sandbox (undefined when it has none). */
  settings(containerId: string): NetworkSettings | undefined {
    const s = this.sandboxes.get(containerId);
    return s ? this.settingsOf(s) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // networks
  // -------------------------------------------------------------------------------------------

  create(opts: CreateNetworkOptions): Promise<{ Id: string; Warning: string }> {
    return this.serial(async () => {
      const name = opts.Name ?? '';
      if (!NAME_RE.test(name)) throw new NetworkError('invalid', `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if ([...this.networks.values()].some((n) => n.rec.Name === name)) throw new NetworkError('conflict', `network with name ${name} already exists`);
      const driver = opts.Driver || 'bridge';
      if (driver === 'host' || driver === 'null') throw new NetworkError('forbidden', `only one instance of "${driver}" network is allowed`);
      if (driver !== 'bridge') throw new NetworkError('not-found', `plugin "${driver}" not found`);
      if (opts.EnableIPv6) throw new NetworkError('invalid', 'IPv6 networks are not supported by Berth yet');
      const ipamDriver = opts.IPAM?.Driver || 'default';
      if (ipamDriver !== 'default') throw new NetworkError('not-found', `plugin "${ipamDriver}" not found`);
      const configs = opts.IPAM?.Config ?? [];
      if (configs.length > 1) throw new NetworkError('invalid', 'Berth supports one IPv4 subnet per network');
      const id = randomId();
      let ipam: IpamConfig;
      if (configs.length === 1 && configs[0].Subnet) {
        const c = configs[0];
        const s = parseSubnet(c.Subnet);
        if (!s || s.bits > 30) throw new NetworkError('invalid', `invalid CIDR address: ${c.Subnet}`);
        if (this.takenSubnets().some((t) => overlaps(t, s))) throw new NetworkError('forbidden', 'invalid pool request: Pool overlaps with other one on this address space');
        let gateway = intToIp(s.base + 1);
        if (c.Gateway) {
          if (!isIPv4(c.Gateway) || !contains(s, ipToInt(c.Gateway))) throw new NetworkError('invalid', `no matching subnet for gateway ${c.Gateway}`);
          gateway = c.Gateway;
        }
        ipam = { Subnet: subnetString(s), Gateway: gateway };
        const aux = Object.entries(c.AuxiliaryAddresses ?? {});
        for (const [host, ip] of aux) {
          if (!isIPv4(ip) || !contains(s, ipToInt(ip))) throw new NetworkError('invalid', `no matching subnet for aux-address ${host}=${ip}`);
        }
        if (aux.length) ipam.AuxiliaryAddresses = Object.fromEntries(aux);
        if (c.IPRange) {
          const r = parseSubnet(c.IPRange);
          if (!r || !contains(s, r.base) || r.bits < s.bits) throw new NetworkError('invalid', `no matching subnet for range ${c.IPRange}`);
          ipam.IPRange = subnetString(r);
        }
      } else {
        if (configs.length === 1 && (configs[0].Gateway || configs[0].IPRange)) throw new NetworkError('invalid', 'a gateway or IP range needs a subnet (--subnet)');
        const s = pickSubnet(this.takenSubnets(), this.ownBridges());
        if (!s) throw new NetworkError('forbidden', 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        ipam = { Subnet: subnetString(s), Gateway: intToIp(s.base + 1) };
      }
      const bridge = opts.Options?.['com.docker.network.bridge.name'] || this.names.bridgeFor(id);
      if (bridge.length > 15) throw new NetworkError('invalid', `bridge name ${bridge} is longer than 15 characters`);
      const rec: NetworkRecord = {
        Name: name, Id: id, Created: createdNow(), Scope: 'local', Driver: 'bridge', EnableIPv4: true, EnableIPv6: false,
        IPAM: { Driver: 'default', Options: opts.IPAM?.Options ?? {}, Config: [ipam] },
        Internal: Boolean(opts.Internal), Attachable: Boolean(opts.Attachable), Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
        Options: opts.Options ?? {}, Labels: opts.Labels ?? {},
      };
      const n: StoredNetwork = { rec, bridge, predefined: false };
      // The bridge exists from now on (as docker's): its route keeps other daemons off the subnet.
      await this.bridgeUp(n);
      this.putNetwork(n);
      await this.syncFirewall();
      this.daemon.events.log('network', 'create', { ID: id, Attributes: { name, type: 'bridge' } });
      return { Id: id, Warning: '' };
    });
  }

  remove(idOrName: string): Promise<void> {
    return this.serial(async () => {
      const n = this.find(idOrName);
      if (n.predefined) throw new NetworkError('forbidden', `${n.rec.Name} is a pre-defined network and cannot be removed`);
      if ([...this.sandboxes.values()].some((s) => s.endpoints.some((e) => e.networkId === n.rec.Id))) {
        throw new NetworkError('forbidden', `error while removing network: network ${n.rec.Name} id ${n.rec.Id} has active endpoints`);
      }
      await this.removeNetwork(n);
    });
  }

  private async removeNetwork(n: StoredNetwork): Promise<void> {
    if (n.bridge && linkExists(n.bridge)) await ipBatchIn(undefined, [`link del ${n.bridge}`], true);
    this.store.deleteNetwork(n.rec.Id);
    this.networks.delete(n.rec.Id);
    await this.syncFirewall();
    this.daemon.events.log('network', 'destroy', { ID: n.rec.Id, Attributes: { name: n.rec.Name, type: n.rec.Driver } });
  }

  /** POST /networks/prune: user networks no container is configured for. */
  prune(filters: FilterArgs = new FilterArgs()): Promise<string[]> {
    return this.serial(async () => {
      filters.validate(['until', 'label', 'label!']);
      const untilValues = filters.get('until');
      const until = untilValues.length ? parseUntilFilter(untilValues[0]) : undefined;
      const removed: string[] = [];
      for (const n of [...this.networks.values()]) {
        if (n.predefined || this.inUse(n)) continue;
        if (!filters.matchKVList('label', n.rec.Labels)) continue;
        if (filters.contains('label!') && filters.get('label!').some((l) => labelMatches(n.rec.Labels, l))) continue;
        if (until !== undefined && Date.parse(n.rec.Created) >= until) continue;
        await this.removeNetwork(n);
        removed.push(n.rec.Name);
      }
      return removed;
    });
  }

  private async bridgeUp(n: StoredNetwork): Promise<boolean> {
    if (!n.bridge || linkExists(n.bridge)) return false;
    const c = n.rec.IPAM.Config[0];
    let s = parseSubnet(c.Subnet)!;
    const conflict = conflictingRoute(s, this.ownBridges());
    if (conflict) {
      // The default bridge follows the host (its subnet is ours to choose while nothing uses it).
      const used = [...this.sandboxes.values()].some((x) => x.endpoints.some((e) => e.networkId === n.rec.Id));
      if (n.rec.Name !== 'bridge' || !n.predefined || used) {
        throw new NetworkError('failed', `network ${n.rec.Name}: subnet ${c.Subnet} overlaps the host route ${conflict}`);
      }
      const next = pickSubnet(this.takenSubnets(n.rec.Id), this.ownBridges());
      if (!next) throw new NetworkError('failed', 'could not find an available, non-overlapping IPv4 address pool for the default bridge');
      s = next;
      n.rec.IPAM.Config = [{ Subnet: subnetString(s), Gateway: intToIp(s.base + 1) }];
      this.putNetwork(n);
    }
    const gw = n.rec.IPAM.Config[0].Gateway ?? intToIp(s.base + 1);
    await ipBatchIn(undefined, [`link add name ${n.bridge} type bridge`, `addr add ${gw}/${s.bits} dev ${n.bridge}`, `link set ${n.bridge} up`]);
    writeSysctl(`/proc/sys/net/ipv4/conf/${n.bridge}/route_localnet`, '1');
    if (!n.rec.Internal) writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
    return true;
  }

  private async dropIdleBridges(): Promise<void> {
    const lines: string[] = [];
    for (const n of this.networks.values()) {
      if (!n.bridge || !linkExists(n.bridge)) continue;
      if ([...this.sandboxes.values()].some((s) => s.endpoints.some((e) => e.networkId === n.rec.Id))) continue;
      lines.push(`link del ${n.bridge}`);
    }
    if (lines.length) await ipBatchIn(undefined, lines, true).catch(() => {});
    await this.syncFirewall().catch((e) => this.daemon.log.warn('firewall clean-up failed', { error: (e as Error).message }));
  }

  /** Makes the kernel's berth chains equal the current bridges and ports (one restore). */
  private async syncFirewall(): Promise<void> {
    const bridges = [...this.networks.values()]
      .filter((n) => n.bridge && linkExists(n.bridge))
      .map((n) => ({ name: n.bridge, subnet: n.rec.IPAM.Config[0].Subnet, internal: n.rec.Internal }));
    if (!this.fwPresent) this.fwPresent = await firewallPresent(this.names);
    if (bridges.length === 0) {
      if (this.fwPresent.size === 0 && !this.fwInstalled) return;
      if (this.fwInstalled) this.fwPresent = await firewallPresent(this.names);
      await applyFirewall(renderFirewallRemoval(this.names, this.fwPresent));
      this.fwPresent = new Set();
      this.fwInstalled = false;
      return;
    }
    const ports: FirewallPort[] = [...this.sandboxes.values()].flatMap((s) => s.ports);
    const insert = !this.fwInstalled;
    await applyFirewall(renderFirewall(this.names, bridges, ports, insert ? (table, chain, rule) => !this.fwPresent!.has(`${table} -A ${chain} ${rule}`) : () => false));
    this.fwInstalled = true;
  }

  // -------------------------------------------------------------------------------------------
  // sandboxes
  // -------------------------------------------------------------------------------------------

  /** Checks a container's network configuration at create (nothing is allocated). */
  validate(req: SandboxRequest): void {
    const hc = req.hostConfig;
    const mode = parseMode(hc.NetworkMode);
    if (mode.kind === 'container') {
      if (!mode.ref) throw new NetworkError('invalid', 'Invalid network mode: container: needs a container name or id');
      if (Object.keys(hc.PortBindings ?? {}).length || hc.PublishAllPorts) throw new NetworkError('invalid', 'conflicting options: port publishing and the container type network mode');
      if (hc.Dns?.length || hc.DnsSearch?.length || hc.DnsOptions?.length) throw new NetworkError('invalid', 'conflicting options: dns and the network mode');
      if (hc.ExtraHosts?.length) throw new NetworkError('invalid', 'conflicting options: custom host-to-IP mapping and the network mode');
      const other = this.containers?.get(mode.ref);
      if (other && other.Id === req.containerId) throw new NetworkError('invalid', 'cannot join own network');
    }
    if (mode.kind === 'bridge') this.find(mode.network);
    for (const d of hc.Dns ?? []) { const e = checkDnsServer(d); if (e) throw new NetworkError('invalid', e); }
    for (const h of hc.ExtraHosts ?? []) parseExtraHost(h, '0.0.0.0');
    portRequests(hc, req.exposedPorts);
    for (const [name, cfg] of Object.entries(req.endpointsConfig ?? {})) {
      // The CLI keys EndpointsConfig by --network's value: "default", or "container:<x>".
      if (name.startsWith('container:') && mode.kind === 'container') continue;
      const n = this.find(name === 'default' ? 'bridge' : name);
      if (mode.kind !== 'bridge') {
        if (mode.kind === 'host' && n.rec.Driver === 'host') continue;
        if (mode.kind === 'none' && n.rec.Driver === 'null') continue;
        throw new NetworkError('invalid', 'conflicting options: container type network can\'t be used with other networks');
      }
      this.checkEndpointConfig(n, cfg);
    }
  }

  private checkEndpointConfig(n: StoredNetwork, cfg: EndpointSettings | undefined): void {
    if (n.rec.Driver !== 'bridge') throw new NetworkError('invalid', `container cannot be disconnected from host network or connected to host network`);
    const ip = cfg?.IPAMConfig?.IPv4Address;
    if (ip) {
      if (n.predefined) throw new NetworkError('invalid', 'user specified IP address is supported on user defined networks only');
      const s = parseSubnet(n.rec.IPAM.Config[0].Subnet)!;
      if (!isIPv4(ip) || !contains(s, ipToInt(ip))) throw new NetworkError('invalid', `no configured subnet or ip-range contain the IP address ${ip}`);
    }
    if (cfg?.Aliases?.length && n.predefined) throw new NetworkError('invalid', 'network-scoped alias is supported only for containers in user defined networks');
  }

  /** Makes (or re-makes) a container's sandbox; at every start, before the runtime creates the container. */
  prepare(req: SandboxRequest): Promise<Sandbox> {
    return this.serial(() => this.prepareLocked(req));
  }

  private async prepareLocked(req: SandboxRequest): Promise<Sandbox> {
    const t0 = performance.now();
    this.validate(req);
    if (this.sandboxes.has(req.containerId)) await this.releaseLocked(req.containerId);
    const hc = req.hostConfig;
    const mode = parseMode(hc.NetworkMode);
    mkdirSync(req.dataDir, { recursive: true });
    const files = { hostsPath: join(req.dataDir, 'hosts'), resolvConfPath: join(req.dataDir, 'resolv.conf'), hostnamePath: join(req.dataDir, 'hostname') };
    const sb: SandboxState = {
      containerId: req.containerId, name: req.containerName.replace(/^\//, ''), hostname: req.hostname, domainname: req.domainname ?? '',
      mode: mode.kind, sandboxId: randomId(), endpoints: [], ports: [], portMap: {}, extraHosts: [], links: [], ...files,
    };

    if (mode.kind === 'container') {
      const access = this.containers;
      if (!access) throw new NetworkError('failed', 'container network mode needs the container service');
      const other = access.get(mode.ref);
      const target = this.sandboxes.get(other.Id);
      if (!target || other.Id === req.containerId) throw new NetworkError('conflict', `cannot join network of a non running container: ${other.Id}`);
      const root = target.mode === 'container' && target.joined ? this.sandboxes.get(target.joined) ?? target : target;
      sb.joined = root.containerId;
      sb.netnsPath = root.netnsPath;
      this.persist(sb);
      return {
        netnsPath: root.netnsPath, hostsPath: root.hostsPath, resolvConfPath: root.resolvConfPath, hostnamePath: root.hostnamePath,
        networkSettings: this.settingsOf(sb),
      };
    }

    const gatewayForHost = this.defaultGateway();
    sb.extraHosts = (hc.ExtraHosts ?? []).map((h) => parseExtraHost(h, gatewayForHost));
    writeInPlace(files.hostnamePath, `${req.hostname}\n`);
    writeInPlace(files.resolvConfPath, renderResolvConf({ dns: hc.Dns, search: hc.DnsSearch, options: hc.DnsOptions }, mode.kind === 'host'));

    if (mode.kind === 'host') {
      let hostHosts = '';
      try { hostHosts = readFileSync('/etc/hosts', 'utf8'); } catch { /* none */ }
      writeInPlace(files.hostsPath, hostHosts + sb.extraHosts.map((e) => `${e.ip}\t${e.names.join(' ')}\n`).join(''));
      this.persist(sb);
      return { netnsPath: undefined, ...files, networkSettings: this.settingsOf(sb) };
    }

    sb.netnsPath = this.netnsPath(req.containerId);
    if (mode.kind === 'none') {
      await createNetns(sb.netnsPath, ['link set lo up']);
      this.persist(sb);
      this.writeHosts(sb);
      return { netnsPath: sb.netnsPath, ...files, networkSettings: this.settingsOf(sb) };
    }

    // Bridge mode: the configured networks, their bridges, addresses, ports, then the namespace.
    const attachments = this.attachmentsFor(req.containerId, mode.network, req.endpointsConfig);
    sb.links = (hc.Links ?? []).map(parseLink);
    let firewallDirty = false;
    let phases: Record<string, number> = {};
    const hostLines: string[] = [];
    const nsLines = ['link set lo up'];
    try {
      for (const [i, a] of attachments.entries()) {
        const n = this.networks.get(a.networkId);
        if (!n) throw new NetworkError('not-found', `network ${a.networkId} not found`);
        this.checkEndpointConfig(n, a.config);
        if (await this.bridgeUp(n)) firewallDirty = true;
        const ep = this.allocateEndpoint(n, a.config, sb, `eth${i}`);
        sb.endpoints.push(ep);
        nsLines.push(...this.nsLinesFor(ep), ...(i === 0 && !n.rec.Internal ? [`route add default via ${ep.gateway}`] : []));
        hostLines.push(...this.hostLinesFor(ep, n));
      }
      const t1 = performance.now();
      await this.allocatePorts(sb, hc, req.exposedPorts);
      const t2 = performance.now();
      await createNetns(sb.netnsPath, nsLines);
      const t3 = performance.now();
      const firewall = firewallDirty || (sb.ports.length && !this.fwInstalled) ? this.syncFirewallWith(sb)
        : sb.ports.length ? applyFirewall(renderPortRules(this.names, sb.ports, 'add')) : undefined;
      await Promise.all([ipBatchIn(undefined, hostLines), firewall]);
      phases = { ports: t2 - t1, netns: t3 - t2, host: performance.now() - t3 };
    } catch (e) {
      await this.teardown(sb).catch(() => {});
      throw e;
    }
    this.persist(sb);
    this.writeHosts(sb);
    this.refreshPeers(sb);
    for (const ep of sb.endpoints) {
      const n = this.networks.get(ep.networkId)!;
      this.daemon.events.log('network', 'connect', { ID: n.rec.Id, Attributes: { container: sb.containerId, name: n.rec.Name, type: n.rec.Driver } });
    }
    this.daemon.log.debug('network sandbox ready', {
      container: req.containerId, ms: (performance.now() - t0).toFixed(1),
      ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, v.toFixed(1)])),
    });
    return { netnsPath: sb.netnsPath, ...files, networkSettings: this.settingsOf(sb) };
  }

  /** syncFirewall with a sandbox that is not yet in the map. */
  private async syncFirewallWith(sb: SandboxState): Promise<void> {
    const had = this.sandboxes.get(sb.containerId);
    this.sandboxes.set(sb.containerId, sb);
    try {
      await this.syncFirewall();
    } catch (e) {
      if (had) this.sandboxes.set(sb.containerId, had); else this.sandboxes.delete(sb.containerId);
      throw e;
    }
  }

  private persist(sb: SandboxState): void {
    this.store.putSandbox(sb);
    this.sandboxes.set(sb.containerId, sb);
  }

  private defaultGateway(): string {
    const b = [...this.networks.values()].find((n) => n.predefined && n.rec.Name === 'bridge');
    return b?.rec.IPAM.Config[0]?.Gateway ?? '172.17.0.1';
  }

  /** The networks a container is configured for; seeded from its create request the first time. */
  private attachmentsFor(containerId: string, primary: string, endpoints: Record<string, EndpointSettings>): Attachment[] {
    if (!this.store.seeded(containerId)) {
      const list: Attachment[] = [];
      const add = (nameOrId: string, cfg: EndpointSettings): void => {
        const n = this.find(nameOrId);
        if (!list.some((a) => a.networkId === n.rec.Id)) list.push({ networkId: n.rec.Id, config: cleanEndpointConfig(cfg) });
      };
      add(primary, endpoints?.[primary] ?? (primary === 'bridge' ? endpoints?.default : undefined) ?? {});
      for (const [name, cfg] of Object.entries(endpoints ?? {})) if (name !== 'default') add(name, cfg);
      this.store.seed(containerId, list);
    }
    return this.store.attachments(containerId);
  }

  private allocateEndpoint(n: StoredNetwork, cfg: EndpointSettings, sb: SandboxState, ifName: string): EndpointState {
    const c = n.rec.IPAM.Config[0];
    const s = parseSubnet(c.Subnet)!;
    const range = c.IPRange ? parseSubnet(c.IPRange)! : s;
    // The gateway and --aux-address entries are never given to containers.
    const used = new Set<number>([ipToInt(c.Gateway ?? intToIp(s.base + 1)), ...Object.values(c.AuxiliaryAddresses ?? {}).map(ipToInt)]);
    for (const x of this.sandboxes.values()) for (const e of x.endpoints) if (e.networkId === n.rec.Id) used.add(ipToInt(e.ip));
    for (const e of sb.endpoints) if (e.networkId === n.rec.Id) used.add(ipToInt(e.ip));
    let ip: number | undefined;
    const wanted = cfg.IPAMConfig?.IPv4Address;
    if (wanted) {
      ip = ipToInt(wanted);
      if (used.has(ip)) throw new NetworkError('forbidden', `Address already in use`);
    } else {
      const broadcast = (s.base | (~maskOf(s.bits) >>> 0)) >>> 0;
      const last = (range.base | (~maskOf(range.bits) >>> 0)) >>> 0;
      for (let x = Math.max(range.base, s.base + 1); x <= last && x < broadcast; x++) {
        if (!used.has(x)) { ip = x; break; }
      }
      if (ip === undefined) throw new NetworkError('failed', `no available IPv4 addresses on this network's address pools: ${n.rec.Name} (${n.rec.Id})`);
    }
    const aliases = [...new Set([...(cfg.Aliases ?? [])])];
    return {
      networkId: n.rec.Id, endpointId: randomId(), ip: intToIp(ip), prefixLen: s.bits, gateway: c.Gateway ?? intToIp(s.base + 1),
      mac: cfg.MacAddress || macForIp(ip), hostVeth: this.names.veth(), ifName, aliases, config: cfg,
    };
  }

  private nsLinesFor(ep: EndpointState): string[] {
    return [
      `link add ${ep.ifName} address ${ep.mac} type veth peer name ${ep.hostVeth} netns ${process.pid}`,
      `addr add ${ep.ip}/${ep.prefixLen} dev ${ep.ifName}`,
      `link set ${ep.ifName} up`,
    ];
  }

  private hostLinesFor(ep: EndpointState, n: StoredNetwork): string[] {
    // Hairpin lets a container reach its own published port through the host's address.
    return [`link set ${ep.hostVeth} master ${n.bridge}`, `link set dev ${ep.hostVeth} type bridge_slave hairpin on`, `link set ${ep.hostVeth} up`];
  }

  private async allocatePorts(sb: SandboxState, hc: DockerHostConfig, exposed: Record<string, object>): Promise<void> {
    const { requests, keys } = portRequests(hc, exposed);
    for (const k of keys) sb.portMap[k] = null;
    const primary = sb.endpoints[0];
    if (!primary || requests.length === 0) return;
    const bridge = this.networks.get(primary.networkId)!.bridge;
    const taken = [...this.sandboxes.values()].filter((x) => x.containerId !== sb.containerId).flatMap((x) => x.ports);
    const clash = (proto: string, ip: string, port: number): boolean => [...taken, ...sb.ports]
      .some((p) => p.proto === proto && p.hostPort === port && (p.hostIp === ip || p.hostIp === '0.0.0.0' || ip === '0.0.0.0'));
    const failed = (msg: string): NetworkError =>
      new NetworkError('failed', `driver failed programming external connectivity on endpoint ${sb.name} (${primary.endpointId}): ${msg}`);
    const [lo, hi] = ephemeralRange();
    for (const r of requests) {
      const list: PortBinding[] = [];
      for (const b of r.bindings) {
        // IPv6 host addresses are not published (Berth's networks are IPv4-only).
        if (b.hostIp.includes(':')) continue;
        const ip = b.hostIp || '0.0.0.0';
        let port: number | undefined;
        if (b.from === 0) {
          const span = hi - lo + 1;
          const start = Math.floor(Math.random() * span);
          for (let i = 0; i < span && port === undefined; i++) {
            const p = lo + ((start + i) % span);
            if (!clash(r.proto, ip, p) && (await bindProbe(r.proto, ip, p)) === undefined) port = p;
          }
          if (port === undefined) throw failed(`no free host port in ${lo}-${hi} for ${r.key}`);
        } else {
          let lastError = '';
          for (let p = b.from; p <= b.to && port === undefined; p++) {
            if (clash(r.proto, ip, p)) { lastError = `Bind for ${ip}:${p} failed: port is already allocated`; continue; }
            const code = await bindProbe(r.proto, ip, p);
            if (code === undefined) port = p;
            else if (code === 'EADDRINUSE') lastError = `Error starting userland proxy: listen ${r.proto}4 ${ip}:${p}: bind: address already in use`;
            else if (code === 'EADDRNOTAVAIL') lastError = `Error starting userland proxy: listen ${r.proto}4 ${ip}:${p}: bind: cannot assign requested address`;
            else lastError = `Error starting userland proxy: listen ${r.proto}4 ${ip}:${p}: bind: ${code}`;
          }
          if (port === undefined) throw failed(lastError);
        }
        sb.ports.push({ proto: r.proto, hostIp: ip, hostPort: port, containerPort: r.containerPort, containerIp: primary.ip, bridge });
        list.push({ HostIp: ip, HostPort: String(port) });
      }
      sb.portMap[r.key] = list.length ? list : null;
    }
  }

  /** Removes what a (possibly partial) sandbox made on the host. */
  private async teardown(sb: SandboxState): Promise<void> {
    const veths = sb.endpoints.map((e) => e.hostVeth).filter(linkExists);
    if (veths.length) await ipBatchIn(undefined, veths.map((v) => `link del ${v}`), true).catch(() => {});
    if (sb.netnsPath && sb.mode !== 'container') await removeNetns(sb.netnsPath);
  }

  /**
   * A stopped container's namespace is unmounted and the kernel frees it, with its veths, in the
   * background: deleting a veth ourselves costs ~25 ms (the kernel waits for RCU grace periods),
   * more than everything else a start or stop does here. Veths still present a moment later (a
   * leftover process holds the namespace) are deleted then, if they are still the same devices.
   */
  private async releaseNamespace(sb: SandboxState): Promise<void> {
    const veths = sb.endpoints.map((e) => ({ name: e.hostVeth, ifindex: ifindexOf(e.hostVeth) })).filter((v) => v.ifindex !== undefined);
    if (sb.netnsPath && sb.mode !== 'container') await removeNetns(sb.netnsPath);
    if (veths.length === 0) return;
    const timer = setTimeout(() => {
      const left = veths.filter((v) => ifindexOf(v.name) === v.ifindex);
      if (left.length) void ipBatchIn(undefined, left.map((v) => `link del ${v.name}`), true).catch(() => {});
    }, VETH_REAP_MS);
    timer.unref();
  }

  /** After the container stopped: its ports, veths and namespace go; idempotent. */
  release(containerId: string): Promise<void> {
    return this.serial(() => this.releaseLocked(containerId));
  }

  private async releaseLocked(containerId: string): Promise<void> {
    const sb = this.sandboxes.get(containerId);
    if (!sb) {
      const stale = this.netnsPath(containerId);
      if (existsSync(stale)) await removeNetns(stale);
      return;
    }
    await this.releaseNamespace(sb);
    this.store.deleteSandbox(containerId);
    this.sandboxes.delete(containerId);
    if (sb.ports.length) {
      // Deleting rules makes iptables-nft read the whole ruleset (~20-30 ms): done next in the
      // queue, so a stop does not wait for it and the next start still sees it done.
      void this.serial(async () => {
        if (!this.fwInstalled) await this.syncFirewall();
        else await applyFirewall(renderPortRules(this.names, sb.ports, 'delete')).catch(() => this.syncFirewall());
      }).catch((e) => this.daemon.log.warn('removing port rules failed', { container: containerId, error: (e as Error).message }));
    }
    this.refreshPeers(sb);
    for (const ep of sb.endpoints) {
      const n = this.networks.get(ep.networkId);
      if (n) this.daemon.events.log('network', 'disconnect', { ID: n.rec.Id, Attributes: { container: containerId, name: n.rec.Name, type: n.rec.Driver } });
    }
  }

  /** The container is gone: its sandbox and network configuration too. */
  containerRemoved(containerId: string): Promise<void> {
    return this.serial(async () => {
      await this.releaseLocked(containerId);
      this.store.forgetContainer(containerId);
    });
  }

  /** At daemon start: sandboxes of containers that are not running any more are released, the rest kept. */
  reconcile(running: Set<string>): Promise<void> {
    return this.serial(async () => {
      for (const id of [...this.sandboxes.keys()]) if (!running.has(id)) await this.releaseLocked(id);
      const dir = join(this.execRoot, 'netns');
      let files: string[] = [];
      try { files = readdirSync(dir); } catch { /* none made yet */ }
      for (const f of files) if (!this.sandboxes.has(f)) await removeNetns(join(dir, f)).catch(() => {});
      // Veths whose namespace a process still held when the daemon stopped (see releaseNamespace).
      const live = new Set([...this.sandboxes.values()].flatMap((x) => x.endpoints.map((e) => e.hostVeth)));
      let links: string[] = [];
      try { links = readdirSync('/sys/class/net'); } catch { /* no sysfs */ }
      const ours = this.ownBridges();
      const masterOf = (l: string): string | undefined => { try { return basename(readlinkSync(`/sys/class/net/${l}/master`)); } catch { return undefined; } };
      const stale = links.filter((l) => this.names.isOwnVeth(l) && !live.has(l) && (masterOf(l) === undefined || ours.has(masterOf(l)!)));
      if (stale.length) await ipBatchIn(undefined, stale.map((l) => `link del ${l}`), true).catch(() => {});
      if (this.sandboxes.size || [...this.networks.values()].some((n) => n.bridge && linkExists(n.bridge))) {
        for (const n of this.networks.values()) {
          if (n.bridge && !n.predefined && !linkExists(n.bridge)) await this.bridgeUp(n).catch((e) => this.daemon.log.warn('bridge not restored', { network: n.rec.Name, error: (e as Error).message }));
        }
        await this.syncFirewall();
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // connect / disconnect
  // -------------------------------------------------------------------------------------------

  connect(networkRef: string, containerRef: string, cfg: EndpointSettings = {}): Promise<void> {
    return this.serial(async () => {
      const n = this.find(networkRef);
      const c = this.containerRecord(containerRef);
      const mode = parseMode(c.HostConfig.NetworkMode);
      if (mode.kind === 'host' || n.rec.Driver === 'host') throw new NetworkError('forbidden', 'container cannot be disconnected from host network or connected to host network');
      if (mode.kind === 'none' || n.rec.Driver === 'null') throw new NetworkError('forbidden', 'container cannot be connected to multiple networks with one of the networks in private (none) mode');
      if (mode.kind === 'container') throw new NetworkError('forbidden', 'conflicting options: container type network can\'t be used with other networks');
      this.checkEndpointConfig(n, cfg);
      this.attachmentsFor(c.Id, mode.network, Object.fromEntries(Object.entries(c.NetworkSettings?.Networks ?? {}).map(([k, v]) => [k, cleanEndpointConfig(v)])));
      const name = c.Name.replace(/^\//, '');
      if (this.store.attachments(c.Id).some((a) => a.networkId === n.rec.Id)) {
        throw new NetworkError('forbidden', `endpoint with name ${name} already exists in network ${n.rec.Name}`);
      }
      const clean = cleanEndpointConfig(cfg);
      const sb = this.sandboxes.get(c.Id);
      if (sb && sb.mode === 'bridge' && sb.netnsPath) {
        const fresh = await this.bridgeUp(n);
        const used = new Set(sb.endpoints.map((e) => e.ifName));
        let i = 0;
        while (used.has(`eth${i}`)) i++;
        const ep = this.allocateEndpoint(n, clean, sb, `eth${i}`);
        try {
          await ipBatchIn(sb.netnsPath, this.nsLinesFor(ep));
          await ipBatchIn(undefined, this.hostLinesFor(ep, n));
        } catch (e) {
          if (linkExists(ep.hostVeth)) await ipBatchIn(undefined, [`link del ${ep.hostVeth}`], true).catch(() => {});
          throw e;
        }
        sb.endpoints.push(ep);
        this.persist(sb);
        if (fresh) await this.syncFirewall();
        this.writeHosts(sb);
        this.refreshPeers(sb);
        this.onSettingsChanged?.(c.Id, this.settingsOf(sb));
      }
      this.store.attach(c.Id, { networkId: n.rec.Id, config: clean });
      this.daemon.events.log('network', 'connect', { ID: n.rec.Id, Attributes: { container: c.Id, name: n.rec.Name, type: n.rec.Driver } });
    });
  }

  disconnect(networkRef: string, containerRef: string, _force = false): Promise<void> {
    return this.serial(async () => {
      const n = this.find(networkRef);
      const c = this.containerRecord(containerRef);
      const mode = parseMode(c.HostConfig.NetworkMode);
      if (mode.kind === 'host' || n.rec.Driver === 'host') throw new NetworkError('forbidden', 'container cannot be disconnected from host network or connected to host network');
      if (mode.kind === 'bridge') this.attachmentsFor(c.Id, mode.network, Object.fromEntries(Object.entries(c.NetworkSettings?.Networks ?? {}).map(([k, v]) => [k, cleanEndpointConfig(v)])));
      if (!this.store.attachments(c.Id).some((a) => a.networkId === n.rec.Id)) {
        throw new NetworkError('forbidden', `container ${c.Id} is not connected to network ${n.rec.Name}`);
      }
      const sb = this.sandboxes.get(c.Id);
      const ep = sb?.endpoints.find((e) => e.networkId === n.rec.Id);
      if (sb && ep) {
        if (linkExists(ep.hostVeth)) await ipBatchIn(undefined, [`link del ${ep.hostVeth}`], true);
        sb.endpoints = sb.endpoints.filter((e) => e !== ep);
        const hadPorts = sb.ports.some((p) => p.containerIp === ep.ip);
        sb.ports = sb.ports.filter((p) => p.containerIp !== ep.ip);
        this.persist(sb);
        if (hadPorts) await this.syncFirewall();
        this.writeHosts(sb);
        this.refreshPeers(sb, [n.rec.Id]);
        this.onSettingsChanged?.(c.Id, this.settingsOf(sb));
      }
      this.store.detach(c.Id, n.rec.Id);
      this.daemon.events.log('network', 'disconnect', { ID: n.rec.Id, Attributes: { container: c.Id, name: n.rec.Name, type: n.rec.Driver } });
    });
  }

  private containerRecord(ref: string): ContainerRecord {
    const access = this.containers;
    if (!access) throw new NetworkError('failed', 'no container service');
    return access.get(ref);
  }

  // -------------------------------------------------------------------------------------------
  // files and settings
  // -------------------------------------------------------------------------------------------

  private userNetwork(id: string): boolean {
    const n = this.networks.get(id);
    return Boolean(n && !n.predefined && n.rec.Driver === 'bridge');
  }

  private dnsNames(sb: SandboxState, ep: EndpointState): string[] {
    return [...new Set([sb.name, ...ep.aliases, sb.containerId.slice(0, 12)].filter(Boolean))];
  }

  private writeHosts(sb: SandboxState): void {
    if (sb.mode === 'container' || sb.mode === 'host') return;
    const self: HostsEntry[] = [];
    const fqdn = sb.domainname ? [`${sb.hostname}.${sb.domainname}`, sb.hostname] : [sb.hostname];
    if (sb.endpoints[0]) self.push({ ip: sb.endpoints[0].ip, names: fqdn });
    const peers: HostsEntry[] = [];
    const seen = new Set<string>();
    for (const l of sb.links) {
      const other = [...this.sandboxes.values()].find((x) => x.name === l.name || x.containerId === l.name);
      const oep = other?.endpoints.find((e) => sb.endpoints.some((m) => m.networkId === e.networkId));
      if (other && oep) peers.push({ ip: oep.ip, names: [...new Set([l.alias, other.name, other.containerId.slice(0, 12)])] });
    }
    for (const ep of sb.endpoints) {
      if (!this.userNetwork(ep.networkId)) continue;
      for (const other of this.sandboxes.values()) {
        if (other.containerId === sb.containerId) continue;
        const oep = other.endpoints.find((e) => e.networkId === ep.networkId);
        if (!oep || seen.has(`${oep.ip}`)) continue;
        seen.add(oep.ip);
        peers.push({ ip: oep.ip, names: this.dnsNames(other, oep) });
      }
    }
    writeInPlace(sb.hostsPath, renderHosts(sb.extraHosts, self, peers));
  }

  /** Rewrites the hosts files of the other containers on the networks `sb` is (or was) on. */
  private refreshPeers(sb: SandboxState, extraNetworks: string[] = []): void {
    const nets = new Set([...sb.endpoints.map((e) => e.networkId), ...extraNetworks].filter((id) => this.userNetwork(id)));
    for (const other of this.sandboxes.values()) {
      if (other.containerId === sb.containerId) continue;
      if (other.endpoints.some((e) => nets.has(e.networkId)) || other.links.some((l) => l.name === sb.name)) {
        try { this.writeHosts(other); } catch (e) { this.daemon.log.warn('hosts file not updated', { container: other.containerId, error: (e as Error).message }); }
      }
    }
  }

  private settingsOf(sb: SandboxState): NetworkSettings {
    const networks: Record<string, EndpointSettings> = {};
    const empty = { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null };
    const byDriver = (d: string): StoredNetwork | undefined => [...this.networks.values()].find((n) => n.predefined && n.rec.Driver === d);
    if (sb.mode === 'host' || sb.mode === 'none') {
      const n = byDriver(sb.mode === 'host' ? 'host' : 'null');
      if (n) networks[n.rec.Name] = { ...empty, NetworkID: n.rec.Id, EndpointID: sb.sandboxId };
    }
    for (const ep of sb.endpoints) {
      const n = this.networks.get(ep.networkId);
      if (!n) continue;
      networks[n.rec.Name] = {
        IPAMConfig: ep.config.IPAMConfig ?? null, Links: ep.config.Links ?? null, Aliases: ep.config.Aliases ?? null,
        MacAddress: ep.mac, DriverOpts: ep.config.DriverOpts ?? null, NetworkID: n.rec.Id, EndpointID: ep.endpointId,
        Gateway: ep.gateway, IPAddress: ep.ip, IPPrefixLen: ep.prefixLen, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
        DNSNames: this.userNetwork(n.rec.Id) ? this.dnsNames(sb, ep) : null,
      };
    }
    // The top-level address fields describe the default bridge endpoint only (docker's legacy fields).
    const def = sb.endpoints.find((e) => { const n = this.networks.get(e.networkId); return n?.predefined && n.rec.Name === 'bridge'; });
    return {
      Bridge: '', SandboxID: sb.mode === 'container' ? '' : sb.sandboxId, SandboxKey: sb.netnsPath ?? '', Ports: sb.portMap,
      HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
      EndpointID: def?.endpointId ?? '', Gateway: def?.gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      IPAddress: def?.ip ?? '', IPPrefixLen: def?.prefixLen ?? 0, IPv6Gateway: '', MacAddress: def?.mac ?? '',
      Networks: networks,
    };
  }
}

/** RFC 3339 with nanoseconds, as docker's Created (Go prints trailing zeros trimmed). */
function createdNow(): string {
  const ns = nowNano();
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** docker's field order (ConfigOnly, then Containers, then Options and Labels). */
function resource(r: NetworkRecord, containers: Record<string, NetworkContainer>): NetworkResource {
  return {
    Name: r.Name, Id: r.Id, Created: r.Created, Scope: r.Scope, Driver: r.Driver, EnableIPv4: r.EnableIPv4, EnableIPv6: r.EnableIPv6,
    IPAM: r.IPAM, Internal: r.Internal, Attachable: r.Attachable, Ingress: r.Ingress, ConfigFrom: r.ConfigFrom, ConfigOnly: r.ConfigOnly,
    Containers: containers, Options: r.Options, Labels: r.Labels,
  };
}

/** The user's part of an endpoint config (what create/connect gave), without runtime fields. */
function cleanEndpointConfig(cfg: EndpointSettings | undefined): EndpointSettings {
  const out: EndpointSettings = {};
  if (!cfg) return out;
  if (cfg.IPAMConfig && (cfg.IPAMConfig.IPv4Address || cfg.IPAMConfig.IPv6Address || cfg.IPAMConfig.LinkLocalIPs?.length)) out.IPAMConfig = cfg.IPAMConfig;
  if (cfg.Aliases?.length) out.Aliases = cfg.Aliases;
  if (cfg.Links?.length) out.Links = cfg.Links;
  if (cfg.DriverOpts && Object.keys(cfg.DriverOpts).length) out.DriverOpts = cfg.DriverOpts;
  if (cfg.MacAddress) out.MacAddress = cfg.MacAddress;
  return out;
}

/** --add-host "name:ip" (or "name=ip"); "host-gateway" is the default bridge's address. */
export function parseExtraHost(spec: string, hostGateway: string): HostsEntry {
  const sep = /^[^:=]*[=:]/.exec(spec);
  if (!sep) throw new NetworkError('invalid', `bad format for add-host: "${spec}"`);
  const name = spec.slice(0, sep[0].length - 1);
  let ip = spec.slice(sep[0].length).replace(/^\[(.*)\]$/, '$1');
  if (ip === 'host-gateway') ip = hostGateway;
  if (!name || !isIP(ip)) throw new NetworkError('invalid', `invalid IP address in add-host: "${ip}"`);
  return { ip, names: [name] };
}

/** HostConfig.Links: "name:alias", "name", or docker's stored "/name:/me/alias". */
function parseLink(spec: string): { name: string; alias: string } {
  const [a, b] = spec.split(':');
  const name = a.replace(/^\//, '');
  const alias = b ? b.split('/').pop()! : name;
  return { name, alias };
}

function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return Object.hasOwn(labels, filter);
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** prune's until=: Unix seconds (what the CLI sends), RFC 3339, or a Go duration ago ("10m", "24h"). */
function parseUntilFilter(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[d[2] as 's' | 'm' | 'h'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new NetworkError('invalid', `invalid filter 'until=${v}'`);
  return t;
}
