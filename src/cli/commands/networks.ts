// The network commands as an Engine API client, with the docker CLI's flags, output and exit
// codes: network create, ls (list), inspect, rm (remove), connect, disconnect, prune. Every
// decision about networks is the daemon's; these turn flags into requests and JSON into text.
import type { Command } from 'commander';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import type { EngineClient } from '../client.ts';
import { ApiResponseError } from '../client.ts';
import { parseTemplate, renderList, shortId } from '../format/output.ts';
import { checkArgs, encodeFilters, errorMessage, goTimeString, jsonIndent, parseFilterFlags, promptForConfirmation } from './common.ts';
import { goMarshal } from './images.ts';
import { ExitError } from './system.ts';

type Connect = () => Promise<EngineClient>;
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** GET /networks items (the fields docker's formatter reads). */
export interface NetworkSummary {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4?: boolean;
  EnableIPv6: boolean;
  Internal: boolean;
  Labels?: Record<string, string> | null;
}

/** One row of `docker network ls` (formatter.networkContext). */
export class NetworkRow {
  static goType = 'formatter.networkContext';
  constructor(private readonly n: NetworkSummary, private readonly trunc: boolean) {}
  get ID(): string { return this.trunc ? shortId(this.n.Id) : this.n.Id; }
  get Name(): string { return this.n.Name; }
  get Driver(): string { return this.n.Driver; }
  get Scope(): string { return this.n.Scope; }
  get IPv4(): string { return String(this.n.EnableIPv4 ?? false); }
  get IPv6(): string { return String(this.n.EnableIPv6); }
  get Internal(): string { return String(this.n.Internal); }
  get Labels(): string { return Object.entries(this.n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','); }
  /** Go's time.Time.String(): the local time with the fraction docker stored (trailing zeros trimmed). */
  get CreatedAt(): string {
    const base = goTimeString(Math.floor(Date.parse(this.n.Created) / 1000));
    const frac = /\.(\d+)/.exec(this.n.Created)?.[1]?.replace(/0+$/, '') ?? '';
    return frac ? base.replace(/^(\S+ \S+)/, `$1.${frac}`) : base;
  }
  toJSON(): Record<string, string> {
    return { CreatedAt: this.CreatedAt, Driver: this.Driver, ID: this.ID, IPv4: this.IPv4, IPv6: this.IPv6, Internal: this.Internal, Labels: this.Labels, Name: this.Name, Scope: this.Scope };
  }
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

const NETWORK_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
const NETWORK_HEADERS: Record<string, string> = {
  ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv4: 'IPV4', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED AT',
};

/** docker's sortorder.NaturalLess: runs of digits compare as numbers, everything else byte by byte ("net2" < "net10"). */
export function naturalCompare(a: string, b: string): number {
  const chunks = (s: string): string[] => s.match(/\d+|\D+/g) ?? [];
  const x = chunks(a);
  const y = chunks(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const dx = /^\d/.test(x[i]);
    const dy = /^\d/.test(y[i]);
    if (dx && dy) {
      const nx = BigInt(x[i]);
      const ny = BigInt(y[i]);
      if (nx !== ny) return nx < ny ? -1 : 1;
      if (x[i].length !== y[i].length) return x[i].length - y[i].length;
    } else if (x[i] !== y[i]) {
      return x[i] < y[i] ? -1 : 1;
    }
  }
  return x.length - y.length;
}

export function renderNetworks(list: NetworkSummary[], opts: { format?: string; quiet?: boolean; noTrunc?: boolean }): string {
  const rows = [...list].sort((a, b) => naturalCompare(a.Name, b.Name)).map((n) => new NetworkRow(n, !opts.noTrunc));
  return renderList(rows, { format: opts.format, quiet: opts.quiet, defaultTable: NETWORK_TABLE, headers: NETWORK_HEADERS });
}

export async function networkLsCommand(args: string[], opts: { filter?: string[]; format?: string; quiet?: boolean; trunc?: boolean }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network ls', usage: '[OPTIONS]', short: 'List networks', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'network ls', usage: '[OPTIONS]', flag: '-f, --filter' });
  if (opts.format && !['table', 'json'].includes(opts.format)) parseTemplate(opts.format.replace(/^table/, '').trim());
  const client = await connect();
  const list = await client.get<NetworkSummary[] | null>('/networks', { filters: encodeFilters(filters) || undefined });
  writeStdout(renderNetworks(list ?? [], { format: opts.format, quiet: opts.quiet, noTrunc: opts.trunc === false }));
}

export interface NetworkCreateOptions {
  driver?: string; subnet?: string[]; gateway?: string[]; ipRange?: string[]; internal?: boolean; attachable?: boolean;
  label?: string[]; opt?: string[]; ipamDriver?: string; ipv6?: boolean; auxAddress?: string[];
}

function keyValues(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 0) out[kv] = '';
    else out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** Whether an IPv4 address lies in a CIDR subnet (the CLI's own check before asking the daemon). */
function inSubnet(ip: string, cidr: string): boolean {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  const toInt = (a: string): number => a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
  if (!m || !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false;
  const bits = Number(m[2]);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((toInt(ip) & mask) >>> 0) === ((toInt(m[1]) & mask) >>> 0);
}

export async function networkCreateCommand(args: string[], opts: NetworkCreateOptions, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network create', usage: '[OPTIONS] NETWORK', short: 'Create a network', min: 1, max: 1 });
  const subnets = opts.subnet ?? [];
  const gateways = opts.gateway ?? [];
  const ranges = opts.ipRange ?? [];
  // docker pairs each gateway and range with the subnet that contains it; one subnet is what Berth takes.
  if ((gateways.length || ranges.length) && subnets.length === 0) throw new Error('every ip-range or gateway must have a corresponding subnet');
  if (gateways.length > subnets.length) throw new Error('cannot configure multiple gateways on the same subnet');
  for (const gw of gateways) {
    if (!subnets.some((sn) => inSubnet(gw, sn))) throw new Error(`no matching subnet for gateway ${gw}`);
  }
  for (const r of ranges) {
    const base = r.split('/')[0];
    if (!subnets.some((sn) => inSubnet(base, sn))) throw new Error(`no matching subnet for range ${r}`);
  }
  const config = subnets.map((s, i) => ({
    Subnet: s, ...(gateways[i] ? { Gateway: gateways[i] } : {}), ...(ranges[i] ? { IPRange: ranges[i] } : {}),
    ...(opts.auxAddress?.length ? { AuxiliaryAddresses: keyValues(opts.auxAddress) } : {}),
  }));
  const client = await connect();
  const res = await client.json<{ Id: string; Warning?: string }>('POST', '/networks/create', {
    body: {
      Name: args[0], Driver: opts.driver ?? 'bridge', Options: keyValues(opts.opt),
      IPAM: { Driver: opts.ipamDriver ?? 'default', Config: config, Options: {} },
      Internal: Boolean(opts.internal), Attachable: Boolean(opts.attachable), EnableIPv6: Boolean(opts.ipv6),
      Labels: keyValues(opts.label),
    },
  });
  if (res.Warning) writeStderr(`${res.Warning}\n`);
  writeStdout(`${res.Id}\n`);
}

export async function networkInspectCommand(args: string[], opts: { format?: string; verbose?: boolean }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network inspect', usage: '[OPTIONS] NETWORK [NETWORK...]', short: 'Display detailed information on one or more networks', min: 1 });
  const format = opts.format ?? '';
  const tmpl = format !== '' && format !== 'json' ? parseTemplate(format) : undefined;
  const client = await connect();
  const raws: string[] = [];
  let templated = '';
  const errors: string[] = [];
  for (const name of args) {
    try {
      const res = await client.request('GET', `/networks/${encodeURIComponent(name)}`, { query: { verbose: opts.verbose ? 'true' : undefined } });
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8').trim();
      if (tmpl) templated += `${tmpl.execute(JSON.parse(raw))}\n`;
      else raws.push(raw);
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (tmpl) writeStdout(templated || '\n');
  else if (raws.length === 0) writeStdout('[]\n');
  else if (format === 'json') writeStdout(`[${raws.map((r) => JSON.stringify(JSON.parse(r))).join(',')}]\n`);
  else writeStdout(`${jsonIndent(`[${raws.join(',')}]`)}\n`);
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

export async function networkRmCommand(args: string[], opts: { force?: boolean }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network rm', usage: 'NETWORK [NETWORK...]', short: 'Remove one or more networks', min: 1 });
  const client = await connect();
  const errors: string[] = [];
  for (const name of args) {
    try {
      const res = await client.request('DELETE', `/networks/${encodeURIComponent(name)}`);
      res.resume();
      writeStdout(`${name}\n`);
    } catch (e) {
      if (opts.force && e instanceof ApiResponseError && e.statusCode === 404) continue;
      errors.push(errorMessage(e));
    }
  }
  // docker's rm ends a failure with its status line too.
  if (errors.length) throw new ExitError(1, `${errors.join('\n')}\nexit status 1`);
}

export interface NetworkConnectOptions { alias?: string[]; ip?: string; ip6?: string; link?: string[]; linkLocalIp?: string[]; driverOpt?: string[] }

export async function networkConnectCommand(args: string[], opts: NetworkConnectOptions, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network connect', usage: '[OPTIONS] NETWORK CONTAINER', short: 'Connect a container to a network', min: 2, max: 2 });
  const ipam = opts.ip || opts.ip6 || opts.linkLocalIp?.length
    ? { IPv4Address: opts.ip ?? '', IPv6Address: opts.ip6 ?? '', LinkLocalIPs: opts.linkLocalIp ?? [] } : undefined;
  const client = await connect();
  const res = await client.request('POST', `/networks/${encodeURIComponent(args[0])}/connect`, {
    body: {
      Container: args[1],
      EndpointConfig: {
        ...(ipam ? { IPAMConfig: ipam } : {}), Links: opts.link ?? null, Aliases: opts.alias ?? null,
        DriverOpts: opts.driverOpt?.length ? keyValues(opts.driverOpt) : null,
      },
    },
  });
  res.resume();
}

export async function networkDisconnectCommand(args: string[], opts: { force?: boolean }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network disconnect', usage: '[OPTIONS] NETWORK CONTAINER', short: 'Disconnect a container from a network', min: 2, max: 2 });
  const client = await connect();
  const res = await client.request('POST', `/networks/${encodeURIComponent(args[0])}/disconnect`, { body: { Container: args[1], Force: Boolean(opts.force) } });
  res.resume();
}

const PRUNE_WARNING = 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?';

export async function networkPruneCommand(args: string[], opts: { force?: boolean; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'network prune', usage: '[OPTIONS]', short: 'Remove all unused networks', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'network prune', usage: '[OPTIONS]', flag: '--filter' });
  // A declined prompt is not a failure (docker exits 0).
  if (!opts.force && !promptForConfirmation(PRUNE_WARNING)) throw new ExitError(0);
  const client = await connect();
  const report = await client.json<{ NetworksDeleted?: string[] | null }>('POST', '/networks/prune', { query: { filters: encodeFilters(filters) || undefined } });
  const deleted = report?.NetworksDeleted ?? [];
  if (deleted.length) writeStdout(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}\n`);
}

/** `berth network …` with docker's subcommands and flags. */
export function registerNetworkCommands(program: Command, connect: Connect): void {
  const network = program.command('network').description('manage networks');
  network.command('create').description('create a network')
    .argument('[args...]', 'NETWORK').usage('[options] NETWORK')
    .option('-d, --driver <driver>', 'driver to manage the network (bridge)', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR format that represents a network segment', collect)
    .option('--gateway <ip>', 'IPv4 gateway for the master subnet', collect)
    .option('--ip-range <cidr>', 'allocate container IPs from a sub-range', collect)
    .option('--aux-address <name=ip>', 'auxiliary IPv4 addresses used by the network driver', collect)
    .option('--internal', 'restrict external access to the network')
    .option('--attachable', 'enable manual container attachment')
    .option('--ipv6', 'enable IPv6 networking')
    .option('--ipam-driver <driver>', 'IP address management driver', 'default')
    .option('--label <label>', 'set metadata on a network; repeatable', collect)
    .option('-o, --opt <key=value>', 'set driver specific options; repeatable', collect)
    .action((args: string[], o: NetworkCreateOptions) => networkCreateCommand(args, o, connect));

  network.command('ls').alias('list').description('list networks')
    .argument('[args...]').usage('[options]')
    .option('-f, --filter <filter>', 'provide filter values (e.g. "driver=bridge"); repeatable', collect)
    .option('--format <template>', 'format output using a Go template ("table", "table TEMPLATE", "json", or a template)')
    .option('--no-trunc', 'do not truncate the output')
    .option('-q, --quiet', 'only display network IDs')
    .action((args: string[], o: { filter?: string[]; format?: string; quiet?: boolean; trunc?: boolean }) => networkLsCommand(args, o, connect));

  network.command('inspect').description('display detailed information on one or more networks')
    .argument('[args...]', 'NETWORK [NETWORK...]').usage('[options] NETWORK [NETWORK...]')
    .option('-f, --format <template>', 'format output using a Go template ("json" for compact JSON)')
    .option('-v, --verbose', 'verbose output for diagnostics')
    .action((args: string[], o: { format?: string; verbose?: boolean }) => networkInspectCommand(args, o, connect));

  network.command('rm').alias('remove').description('remove one or more networks')
    .argument('[args...]', 'NETWORK [NETWORK...]').usage('[options] NETWORK [NETWORK...]')
    .option('-f, --force', 'do not error if the network does not exist')
    .action((args: string[], o: { force?: boolean }) => networkRmCommand(args, o, connect));

  network.command('connect').description('connect a container to a network')
    .argument('[args...]', 'NETWORK CONTAINER').usage('[options] NETWORK CONTAINER')
    .option('--alias <name>', 'add network-scoped alias for the container; repeatable', collect)
    .option('--ip <address>', 'IPv4 address (e.g. 172.30.100.104)')
    .option('--ip6 <address>', 'IPv6 address')
    .option('--link <container>', 'add link to another container; repeatable', collect)
    .option('--link-local-ip <address>', 'add a link-local address for the container; repeatable', collect)
    .option('--driver-opt <key=value>', 'driver options for the network; repeatable', collect)
    .action((args: string[], o: NetworkConnectOptions) => networkConnectCommand(args, o, connect));

  network.command('disconnect').description('disconnect a container from a network')
    .argument('[args...]', 'NETWORK CONTAINER').usage('[options] NETWORK CONTAINER')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action((args: string[], o: { force?: boolean }) => networkDisconnectCommand(args, o, connect));

  network.command('prune').description('remove all unused networks')
    .argument('[args...]').usage('[options]')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>"); repeatable', collect)
    .action((args: string[], o: { force?: boolean; filter?: string[] }) => networkPruneCommand(args, o, connect));
}
