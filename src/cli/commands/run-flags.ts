// `run` and `create` flags → the POST /containers/create request, as the docker CLI (28.x) builds
// it: the same Config/HostConfig/NetworkingConfig fields, the same defaults and empty values
// (null vs [] vs {} as Go marshals them), the same validation and messages. Parse errors are
// docker's exit status 125; the command prints them (see ContainerFlagError).
//
// Deliberate differences: docker builds Env from a Go map (its proxy-config step), so its order
// is random and repeated keys collapse to the last; Berth collapses the same way but keeps the
// order in which keys first appeared. `--gpus`, content trust and `--use-api-socket` are not offered.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { compareVersions } from '../../api/version.ts';
import { ramInBytes } from '../../api/units.ts';
import { parseDuration } from '../../runtime/events.ts';
import type { DockerMount } from '../../engine/containers/types.ts';
import { FlagError, FlagSet, FlagValues, goParseInt, type FlagDef, type ParsedFlags } from './flags.ts';

/** A usage error of run/create: docker prints it with "docker: " and exits 125. */
export class ContainerFlagError extends Error {
  override name = 'ContainerFlagError';
}

// ---------------------------------------------------------------------------------------------
// value validators (Go flag.Value.Set equivalents)
// ---------------------------------------------------------------------------------------------

const memBytes = (v: string): string => String(ramInBytes(v));
const memSwapBytes = (v: string): string => (v === '-1' ? '-1' : String(ramInBytes(v)));

/** docker's ParseCPUs: a rational number of CPUs → nano CPUs, refusing fractions of a nano CPU. */
export function parseNanoCpus(v: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(v);
  const frac = /^([+-]?\d+)\/(\d+)$/.exec(v);
  if (frac) {
    const num = BigInt(frac[1]) * 1_000_000_000n;
    const den = BigInt(frac[2]);
    if (den === 0n || num % den !== 0n) throw new Error(den === 0n ? `failed to parse ${v} as a rational number` : 'value is too precise');
    return String(num / den);
  }
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`failed to parse ${v} as a rational number`);
  const digits = `${m[2]}${m[3] ?? ''}`;
  let scale = (m[3] ?? '').length - Number(m[4] ?? 0) - 9; // value = digits * 10^-scale * 1e9
  let n = BigInt(digits || '0');
  while (scale < 0) { n *= 10n; scale++; }
  const div = 10n ** BigInt(scale);
  if (n % div !== 0n) throw new Error('value is too precise');
  n /= div;
  return String(m[1] === '-' ? -n : n);
}

const intVal = (bits: number, unsigned = false) => (v: string): string => String(goParseInt(v, bits, unsigned));

function goDuration(v: string): string {
  try {
    // nanoseconds, as time.Duration marshals
    return String(Math.round(parseDuration(v) * 1e6));
  } catch {
    throw new Error(`time: invalid duration ${JSON.stringify(v)}`);
  }
}

/** opts.ValidateEnv: "K" takes its value from this process's environment when it has one. */
export function validateEnv(v: string, env: NodeJS.ProcessEnv = process.env): string {
  const eq = v.indexOf('=');
  const k = eq >= 0 ? v.slice(0, eq) : v;
  if (k === '') throw new Error(`invalid environment variable: ${v}`);
  if (eq >= 0) return v;
  const e = env[k];
  return e !== undefined ? `${k}=${e}` : v;
}

function validateLabel(v: string): string {
  const eq = v.indexOf('=');
  const key = (eq >= 0 ? v.slice(0, eq) : v).replace(/^[ \t]+/, '');
  if (key === '') throw new Error(`invalid label '${v}': empty name`);
  if (/[ \t]/.test(key)) throw new Error(`label '${key}' contains whitespaces`);
  return v;
}

/** net.ParseIP(...).String(): the canonical text of an IPv4/IPv6 address, or undefined. */
function canonicalIP(text: string): string | undefined {
  const t = text.trim();
  if (isIP(t) === 4) return t.split('.').map((x) => String(Number(x))).join('.');
  if (isIP(t) === 6) {
    try {
      return new URL(`http://[${t}]/`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function validateIP(v: string): string {
  const ip = canonicalIP(v);
  if (ip === undefined) throw new Error(`IP address is not correctly formatted: ${v}`);
  return ip;
}

function validateExtraHost(v: string): string {
  let sep = v.indexOf('=');
  if (sep < 0) sep = v.indexOf(':');
  const k = sep >= 0 ? v.slice(0, sep) : v;
  let ip = sep >= 0 ? v.slice(sep + 1) : '';
  if (sep < 0 || k === '' || k.includes(':')) throw new Error(`bad format for add-host: ${JSON.stringify(v)}`);
  if (ip !== 'host-gateway') {
    if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (canonicalIP(ip) === undefined) throw new Error(`invalid IP address in add-host: ${JSON.stringify(ip)}`);
  }
  return `${k}:${ip}`;
}

function validateDNSSearch(v: string): string {
  const t = v.replace(/^ +| +$/g, '');
  if (t === '.') return t;
  const m = /^(:?(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))(:?\.(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])))*)\.?\s*$/.exec(t);
  if (!/[a-zA-Z]/.test(t) || !m || m[1].length >= 255) throw new Error(`${t} is not a valid domain`);
  return m[1];
}

const SYSCTL_NAMES = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);
function validateSysctl(v: string): string {
  const eq = v.indexOf('=');
  const k = eq >= 0 ? v.slice(0, eq) : '';
  if (eq < 0 || k === '' || !(SYSCTL_NAMES.has(k) || k.startsWith('net.') || k.startsWith('fs.mqueue.'))) {
    throw new Error(`sysctl '${v}' is not allowed`);
  }
  return v;
}

function validateAttach(v: string): string {
  const s = v.toLowerCase();
  if (s === 'stdin' || s === 'stdout' || s === 'stderr') return s;
  throw new Error('valid streams are STDIN, STDOUT and STDERR');
}

const ULIMIT_NAMES = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);
export interface Ulimit { Name: string; Hard: number; Soft: number }
export function parseUlimit(v: string): Ulimit {
  const eq = v.indexOf('=');
  if (eq < 0) throw new Error(`invalid ulimit argument: ${v}`);
  const name = v.slice(0, eq);
  if (!ULIMIT_NAMES.has(name)) throw new Error(`invalid ulimit type: ${name}`);
  const parts = v.slice(eq + 1).split(':');
  if (parts.length > 2) throw new Error(`too many limit value arguments - ${v.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const hard = parts.length === 2 ? goParseInt(parts[1]) : undefined;
  const soft = goParseInt(parts[0]);
  const h = hard ?? soft;
  if (h !== -1) {
    if (soft === -1) throw new Error(`ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${h}`);
    if (soft > h) throw new Error(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${h}`);
  }
  return { Name: name, Hard: h, Soft: soft };
}

/** A CSV record (encoding/csv with its defaults) split into fields. */
function csvFields(v: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (v[i] === '"') {
      i++;
      for (;;) {
        if (i >= v.length) throw new Error(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
        if (v[i] === '"') {
          if (v[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += v[i++];
      }
      if (i < v.length && v[i] !== ',') throw new Error(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
    } else {
      const j = v.indexOf(',', i);
      field = j < 0 ? v.slice(i) : v.slice(i, j);
      if (field.includes('"')) throw new Error(`parse error on line 1, column ${i + field.indexOf('"') + 1}: bare " in non-quoted-field`);
      i = j < 0 ? v.length : j;
    }
    out.push(field);
    if (i >= v.length) break;
    i++; // the comma
  }
  return out;
}

const goBool = (key: string, val: string): boolean => {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(val)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(val)) return false;
  throw new Error(`invalid value for ${key}: ${val}`);
};

/** --mount's CSV form → a HostConfig.Mounts entry (opts.MountOpt). */
export function parseMount(v: string): DockerMount {
  const m: DockerMount & { VolumeOptions?: Record<string, unknown>; BindOptions?: Record<string, unknown>; TmpfsOptions?: Record<string, unknown>; ImageOptions?: Record<string, unknown> } = { Type: 'volume', Target: '' };
  const vol = (): Record<string, unknown> => {
    m.VolumeOptions ??= { Labels: {} };
    m.VolumeOptions.DriverConfig ??= {};
    return m.VolumeOptions;
  };
  const bind = (): Record<string, unknown> => (m.BindOptions ??= {});
  const tmpfs = (): Record<string, unknown> => (m.TmpfsOptions ??= {});
  for (const field of csvFields(v)) {
    const eq = field.indexOf('=');
    const key = (eq >= 0 ? field.slice(0, eq) : field).toLowerCase();
    const val = eq >= 0 ? field.slice(eq + 1) : '';
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') { m.ReadOnly = true; continue; }
      if (key === 'volume-nocopy') { vol().NoCopy = true; continue; }
      if (key === 'bind-nonrecursive') { bind().NonRecursive = true; continue; }
      throw new Error(`invalid field '${field}' must be a key=value pair`);
    }
    switch (key) {
      case 'type': m.Type = val.toLowerCase() as DockerMount['Type']; break;
      case 'source': case 'src':
        m.Source = !val.startsWith('/') && val.startsWith('.') ? resolve(val) : val;
        break;
      case 'target': case 'dst': case 'destination': m.Target = val; break;
      case 'readonly': case 'ro': m.ReadOnly = goBool(key, val); break;
      case 'consistency': m.Consistency = val.toLowerCase(); break;
      case 'bind-propagation': bind().Propagation = val.toLowerCase(); break;
      case 'bind-nonrecursive': bind().NonRecursive = goBool(key, val); break;
      case 'bind-recursive':
        if (val === 'enabled') break;
        if (val === 'disabled') bind().NonRecursive = true;
        else if (val === 'writable') bind().ReadOnlyNonRecursive = true;
        else if (val === 'readonly') bind().ReadOnlyForceRecursive = true;
        else throw new Error(`invalid value for ${key}: ${val} (must be "enabled", "disabled", "writable", or "readonly")`);
        break;
      case 'volume-subpath': vol().Subpath = val; break;
      case 'volume-nocopy':
        try { vol().NoCopy = goBool(key, val); } catch { throw new Error(`invalid value for volume-nocopy: ${val}`); }
        break;
      case 'volume-label': {
        const [k, ...rest] = val.split('=');
        if (k) (vol().Labels as Record<string, string>)[k] = rest.join('=');
        break;
      }
      case 'volume-driver': (vol().DriverConfig as Record<string, unknown>).Name = val; break;
      case 'volume-opt': {
        const dc = vol().DriverConfig as Record<string, unknown>;
        dc.Options ??= {};
        const [k, ...rest] = val.split('=');
        if (k) (dc.Options as Record<string, string>)[k] = rest.join('=');
        break;
      }
      case 'image-subpath': (m.ImageOptions ??= {}).Subpath = val; break;
      case 'tmpfs-size':
        try { tmpfs().SizeBytes = ramInBytes(val); } catch { throw new Error(`invalid value for ${key}: ${val}`); }
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val) || Number.parseInt(val, 8) > 0xffffffff) throw new Error(`invalid value for ${key}: ${val}`);
        tmpfs().Mode = Number.parseInt(val, 8);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!m.Type) throw new Error('type is required');
  if (!m.Target) throw new Error('target is required');
  if (m.VolumeOptions && m.Type !== 'volume') throw new Error(`cannot mix 'volume-*' options with mount type '${m.Type}'`);
  if (m.ImageOptions && (m.Type as string) !== 'image') throw new Error(`cannot mix 'image-*' options with mount type '${m.Type}'`);
  if (m.BindOptions && m.Type !== 'bind') throw new Error(`cannot mix 'bind-*' options with mount type '${m.Type}'`);
  if (m.TmpfsOptions && m.Type !== 'tmpfs') throw new Error(`cannot mix 'tmpfs-*' options with mount type '${m.Type}'`);
  if (m.BindOptions?.ReadOnlyNonRecursive && !m.ReadOnly) throw new Error("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction");
  if (m.BindOptions?.ReadOnlyForceRecursive) {
    if (!m.ReadOnly) throw new Error("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction");
    if (m.BindOptions.Propagation !== 'rprivate') throw new Error("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction");
  }
  return m;
}

interface NetworkAttachment {
  Target: string;
  Aliases?: string[];
  IPv4Address?: string;
  IPv6Address?: string;
  LinkLocalIPs?: string[];
  MacAddress?: string;
  DriverOpts?: Record<string, string>;
  GwPriority?: number;
  Links?: string[];
}

/** --network NAME, or its long form "name=x,alias=y,ip=…,mac-address=…,driver-opt=k=v,gw-priority=n". */
function parseNetworkOpt(v: string): NetworkAttachment {
  if (!/\w+=\w+(,\w+=\w+)*/.test(v)) return { Target: v };
  const n: NetworkAttachment = { Target: '', Aliases: [] };
  for (const field of csvFields(v)) {
    const lower = field.toLowerCase();
    const eq = lower.indexOf('=');
    if (eq <= 0) throw new Error(`invalid field ${field}`);
    const key = lower.slice(0, eq).trim();
    const val = lower.slice(eq + 1).trim();
    switch (key) {
      case 'name': n.Target = val; break;
      case 'alias': n.Aliases!.push(val); break;
      case 'ip': n.IPv4Address = val; break;
      case 'ip6': n.IPv6Address = val; break;
      case 'mac-address': n.MacAddress = val; break;
      case 'link-local-ip': (n.LinkLocalIPs ??= []).push(val); break;
      case 'driver-opt': {
        const i = val.indexOf('=');
        if (i < 0) throw new Error('invalid key value pair format in driver options');
        (n.DriverOpts ??= {})[val.slice(0, i).trim().toLowerCase()] = val.slice(i + 1).trim().toLowerCase();
        break;
      }
      case 'gw-priority':
        if (!/^[+-]?\d+$/.test(val)) throw new Error(`invalid gw-priority (${val}): invalid syntax`);
        n.GwPriority = Number(val);
        break;
      default: throw new Error(`invalid field key ${key}`);
    }
  }
  if (!n.Target) throw new Error('network name/id is not specified');
  return n;
}

function validateDeviceCgroupRule(v: string): string {
  if (/^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$/.test(v)) return v;
  throw new Error(`invalid device cgroup format '${v}'`);
}

function validateLink(v: string): string {
  const parts = v.split(':');
  if (parts.length > 2 || parts.some((p) => p === '') || v === '') throw new Error(`bad format for links: ${v}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// the flags
// ---------------------------------------------------------------------------------------------

const F = (long: string, type: FlagDef['type'], help: string, extra: Partial<FlagDef> = {}): FlagDef => ({ long, type, help, ...extra });

/** The flags `create` and `run` share (docker's addFlags), then each command's own. */
export const CONTAINER_FLAGS: FlagDef[] = [
  F('add-host', 'list', 'Add a custom host-to-IP mapping (host:ip)', { validate: validateExtraHost }),
  F('annotation', 'map', 'Add an annotation to the container (passed through to the OCI runtime)', { minVersion: '1.43' }),
  F('attach', 'list', 'Attach to STDIN, STDOUT or STDERR', { short: 'a', validate: validateAttach }),
  F('blkio-weight', 'uint16', 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)', { validate: intVal(16, true) }),
  F('blkio-weight-device', 'list', 'Block IO weight (relative device weight)'),
  F('cap-add', 'list', 'Add Linux capabilities'),
  F('cap-drop', 'list', 'Drop Linux capabilities'),
  F('cgroup-parent', 'string', 'Optional parent cgroup for the container'),
  F('cgroupns', 'string', 'Cgroup namespace to use (host|private)', { minVersion: '1.41' }),
  F('cidfile', 'string', 'Write the container ID to the file'),
  F('cpu-count', 'int64', 'CPU count (Windows only)', { validate: intVal(64), hidden: true }),
  F('cpu-percent', 'int64', 'CPU percent (Windows only)', { validate: intVal(64), hidden: true }),
  F('cpu-period', 'int64', 'Limit CPU CFS (Completely Fair Scheduler) period', { validate: intVal(64) }),
  F('cpu-quota', 'int64', 'Limit CPU CFS (Completely Fair Scheduler) quota', { validate: intVal(64) }),
  F('cpu-rt-period', 'int64', 'Limit CPU real-time period in microseconds', { validate: intVal(64), minVersion: '1.25' }),
  F('cpu-rt-runtime', 'int64', 'Limit CPU real-time runtime in microseconds', { validate: intVal(64), minVersion: '1.25' }),
  F('cpu-shares', 'int64', 'CPU shares (relative weight)', { short: 'c', validate: intVal(64) }),
  F('cpus', 'decimal', 'Number of CPUs', { validate: parseNanoCpus, minVersion: '1.25' }),
  F('cpuset-cpus', 'string', 'CPUs in which to allow execution (0-3, 0,1)'),
  F('cpuset-mems', 'string', 'MEMs in which to allow execution (0-3, 0,1)'),
  F('device', 'list', 'Add a host device to the container'),
  F('device-cgroup-rule', 'list', 'Add a rule to the cgroup allowed devices list', { validate: validateDeviceCgroupRule }),
  F('device-read-bps', 'list', 'Limit read rate (bytes per second) from a device'),
  F('device-read-iops', 'list', 'Limit read rate (IO per second) from a device'),
  F('device-write-bps', 'list', 'Limit write rate (bytes per second) to a device'),
  F('device-write-iops', 'list', 'Limit write rate (IO per second) to a device'),
  F('dns', 'list', 'Set custom DNS servers', { validate: validateIP }),
  F('dns-opt', 'list', 'Set DNS options', { hidden: true, alias: 'dns-option' }),
  F('dns-option', 'list', 'Set DNS options'),
  F('dns-search', 'list', 'Set custom DNS search domains', { validate: validateDNSSearch }),
  F('domainname', 'string', 'Container NIS domain name'),
  F('entrypoint', 'string', 'Overwrite the default ENTRYPOINT of the image'),
  F('env', 'list', 'Set environment variables', { short: 'e', validate: (v) => validateEnv(v, {}), minVersion: '1.25' }),
  F('env-file', 'list', 'Read in a file of environment variables', { minVersion: '1.25' }),
  F('expose', 'list', 'Expose a port or a range of ports'),
  F('group-add', 'list', 'Add additional groups to join'),
  F('health-cmd', 'string', 'Command to run to check health'),
  F('health-interval', 'duration', 'Time between running the check (ms|s|m|h) (default 0s)', { validate: goDuration }),
  F('health-retries', 'int', 'Consecutive failures needed to report unhealthy', { validate: intVal(64) }),
  F('health-start-interval', 'duration', 'Time between running the check during the start period (ms|s|m|h) (default 0s)', { validate: goDuration, minVersion: '1.44' }),
  F('health-start-period', 'duration', 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)', { validate: goDuration, minVersion: '1.29' }),
  F('health-timeout', 'duration', 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)', { validate: goDuration }),
  F('hostname', 'string', 'Container host name', { short: 'h' }),
  F('init', 'bool', 'Run an init inside the container that forwards signals and reaps processes', { minVersion: '1.25' }),
  F('interactive', 'bool', 'Keep STDIN open even if not attached', { short: 'i' }),
  F('io-maxbandwidth', 'bytes', 'Maximum IO bandwidth limit for the system drive (Windows only)', { validate: memBytes, hidden: true }),
  F('io-maxiops', 'uint64', 'Maximum IOps limit for the system drive (Windows only)', { validate: intVal(64, true), hidden: true }),
  F('ip', 'string', 'IPv4 address (e.g., 172.30.100.104)'),
  F('ip6', 'string', 'IPv6 address (e.g., 2001:db8::33)'),
  F('ipc', 'string', 'IPC mode to use'),
  F('isolation', 'string', 'Container isolation technology'),
  F('kernel-memory', 'bytes', 'Kernel memory limit', { validate: memBytes, hidden: true }),
  F('label', 'list', 'Set meta data on a container', { short: 'l', validate: validateLabel }),
  F('label-file', 'list', 'Read in a line delimited file of labels'),
  F('link', 'list', 'Add link to another container', { validate: validateLink }),
  F('link-local-ip', 'list', 'Container IPv4/IPv6 link-local addresses'),
  F('log-driver', 'string', 'Logging driver for the container'),
  F('log-opt', 'list', 'Log driver options'),
  F('mac-address', 'string', 'Container MAC address (e.g., 92:d0:c6:0a:29:33)'),
  F('memory', 'bytes', 'Memory limit', { short: 'm', validate: memBytes }),
  F('memory-reservation', 'bytes', 'Memory soft limit', { validate: memBytes }),
  F('memory-swap', 'bytes', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", { validate: memSwapBytes }),
  F('memory-swappiness', 'int64', 'Tune container memory swappiness (0 to 100) (default -1)', { validate: intVal(64) }),
  F('mount', 'mount', 'Attach a filesystem mount to the container', { validate: (v) => JSON.stringify(parseMount(v)) }),
  F('name', 'string', 'Assign a name to the container'),
  F('net', 'network', 'Connect a container to a network', { hidden: true, alias: 'network', validate: (v) => JSON.stringify(parseNetworkOpt(v)) }),
  F('net-alias', 'list', 'Add network-scoped alias for the container', { hidden: true, alias: 'network-alias' }),
  F('network', 'network', 'Connect a container to a network', { validate: (v) => JSON.stringify(parseNetworkOpt(v)) }),
  F('network-alias', 'list', 'Add network-scoped alias for the container'),
  F('no-healthcheck', 'bool', 'Disable any container-specified HEALTHCHECK'),
  F('oom-kill-disable', 'bool', 'Disable OOM Killer'),
  F('oom-score-adj', 'int', "Tune host's OOM preferences (-1000 to 1000)", { validate: intVal(64) }),
  F('pid', 'string', 'PID namespace to use'),
  F('pids-limit', 'int', 'Tune container pids limit (set -1 for unlimited)', { validate: intVal(64) }),
  F('platform', 'string', 'Set platform if server is multi-platform capable'),
  F('privileged', 'bool', 'Give extended privileges to this container'),
  F('publish', 'list', "Publish a container's port(s) to the host", { short: 'p' }),
  F('publish-all', 'bool', 'Publish all exposed ports to random ports', { short: 'P' }),
  F('pull', 'string', 'Pull image before running ("always", "missing", "never") (default "missing")'),
  F('quiet', 'bool', 'Suppress the pull output', { short: 'q' }),
  F('read-only', 'bool', "Mount the container's root filesystem as read only"),
  F('restart', 'string', 'Restart policy to apply when a container exits (default "no")'),
  F('rm', 'bool', 'Automatically remove the container and its associated anonymous volumes when it exits'),
  F('runtime', 'string', 'Runtime to use for this container'),
  F('security-opt', 'list', 'Security Options'),
  F('shm-size', 'bytes', 'Size of /dev/shm', { validate: memBytes }),
  F('stop-signal', 'string', 'Signal to stop the container'),
  F('stop-timeout', 'int', 'Timeout (in seconds) to stop a container', { validate: intVal(64), minVersion: '1.25' }),
  F('storage-opt', 'list', 'Storage driver options for the container'),
  F('sysctl', 'map', 'Sysctl options', { validate: validateSysctl }),
  F('tmpfs', 'list', 'Mount a tmpfs directory'),
  F('tty', 'bool', 'Allocate a pseudo-TTY', { short: 't' }),
  F('ulimit', 'ulimit', 'Ulimit options', { validate: (v) => JSON.stringify(parseUlimit(v)) }),
  F('user', 'string', 'Username or UID (format: <name|uid>[:<group|gid>])', { short: 'u' }),
  F('userns', 'string', 'User namespace to use'),
  F('uts', 'string', 'UTS namespace to use'),
  F('volume', 'list', 'Bind mount a volume', { short: 'v' }),
  F('volume-driver', 'string', 'Optional volume driver for the container'),
  F('volumes-from', 'list', 'Mount volumes from the specified container(s)'),
  F('workdir', 'string', 'Working directory inside the container', { short: 'w', minVersion: '1.35' }),
];

export const RUN_ONLY_FLAGS: FlagDef[] = [
  F('detach', 'bool', 'Run container in background and print container ID', { short: 'd' }),
  F('detach-keys', 'string', 'Override the key sequence for detaching a container'),
  F('sig-proxy', 'bool', 'Proxy received signals to the process (default true)'),
  F('disable-content-trust', 'bool', 'Skip image verification (always: Berth has no content trust)', { hidden: true }),
];

export function containerFlagSet(command: 'run' | 'create'): FlagSet {
  const defs = command === 'run' ? [...CONTAINER_FLAGS, ...RUN_ONLY_FLAGS] : [...CONTAINER_FLAGS, RUN_ONLY_FLAGS[3]];
  return new FlagSet(defs.sort((a, b) => a.long.localeCompare(b.long)), { interspersed: false });
}

// ---------------------------------------------------------------------------------------------
// flags → request
// ---------------------------------------------------------------------------------------------

/** env-file / label-file lines (docker's kvfile): comments and blank lines skipped, "K" alone looked up. */
export function readKVFile(file: string, lookup?: (k: string) => string | undefined): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ContainerFlagError(`open ${file}: ${why}`);
  }
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq >= 0 ? line.slice(0, eq) : line;
    if (key === '') throw new ContainerFlagError(`invalid env file (${file}): no variable name on line '${line}'`);
    if (/[ \t]/.test(key)) throw new ContainerFlagError(`invalid env file (${file}): variable '${key}' contains whitespaces`);
    if (eq >= 0) { out.push(line); continue; }
    const v = lookup?.(line);
    if (v !== undefined) out.push(`${key}=${v}`);
  }
  return out;
}

function kvMap(values: string[]): Record<string, string> {
  const m: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    m[i >= 0 ? v.slice(0, i) : v] = i >= 0 ? v.slice(i + 1) : '';
  }
  return m;
}

/** Go marshals maps with sorted keys; so does this (the body reads the same as docker's). */
function sorted<T>(m: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k];
  return out;
}

// ---- ports (go-connections/nat) -------------------------------------------------------------

function parsePortRange(r: string): [number, number] {
  if (r === '') throw new Error('empty string specified for ports');
  const [a, b, ...more] = r.split('-');
  if (more.length) throw new Error(`invalid port range: ${r}`);
  const num = (s: string): number => {
    if (!/^\d+$/.test(s) || Number(s) > 65535) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax`);
    return Number(s);
  };
  const start = num(a);
  const end = b === undefined ? start : num(b);
  if (end < start) throw new Error(`invalid range specified for port: ${r}`);
  return [start, end];
}

function splitProtoPort(raw: string): [string, string] {
  const parts = raw.split('/');
  if (raw.length === 0 || parts.length === 0 || parts[0].length === 0) return ['', ''];
  if (parts.length === 1) return ['tcp', raw];
  if (parts[1].length === 0) return ['tcp', parts[0]];
  return [parts[1], parts[0]];
}

function validProto(p: string): boolean {
  return ['tcp', 'udp', 'sctp'].includes(p.toLowerCase());
}

interface PortMapping { port: string; binding: { HostIp: string; HostPort: string } }

/** nat.ParsePortSpec: "[ip:][hostPort:]containerPort[/proto]", ranges allowed. */
function parsePortSpec(rawPort: string): PortMapping[] {
  let ip = '';
  let hostPort = '';
  let containerPort: string;
  let raw = rawPort;
  // An IPv6 host IP is in brackets.
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(raw);
  if (v6) {
    ip = v6[1];
    raw = v6[2];
    const i = raw.indexOf(':');
    if (i < 0) { hostPort = ''; containerPort = raw; } else { hostPort = raw.slice(0, i); containerPort = raw.slice(i + 1); }
  } else {
    const parts = raw.split(':');
    if (parts.length === 1) containerPort = parts[0];
    else if (parts.length === 2) { hostPort = parts[0]; containerPort = parts[1]; }
    else if (parts.length === 3) { ip = parts[0]; hostPort = parts[1]; containerPort = parts[2]; }
    else {
      ip = parts.slice(0, -2).join(':');
      hostPort = parts[parts.length - 2];
      containerPort = parts[parts.length - 1];
    }
  }
  if (ip !== '' && isIP(ip) === 0) throw new Error(`invalid IP address: ${ip}`);
  if (containerPort === '') throw new Error(`no port specified: ${rawPort}<empty>`);
  const [proto, port] = splitProtoPort(containerPort);
  let start: number; let end: number;
  try { [start, end] = parsePortRange(port); } catch { throw new Error(`invalid containerPort: ${port}`); }
  let hStart = 0; let hEnd = 0;
  if (hostPort !== '') {
    try { [hStart, hEnd] = parsePortRange(hostPort); } catch { throw new Error(`invalid hostPort: ${hostPort}`); }
  }
  if (hostPort !== '' && (end - start) !== (hEnd - hStart)) {
    // A host range for a single container port lets the daemon pick one of them.
    if (end !== start) throw new Error(`invalid ranges specified for container and host Ports: ${port} and ${hostPort}`);
  }
  if (!validProto(proto)) throw new Error(`invalid proto: ${proto}`);
  const out: PortMapping[] = [];
  for (let i = 0; i <= end - start; i++) {
    const cp = String(start + i);
    let hp = '';
    if (hostPort !== '') hp = hEnd !== hStart && end === start ? `${hStart}-${hEnd}` : String(hStart + i);
    out.push({ port: `${cp}/${proto.toLowerCase()}`, binding: { HostIp: ip, HostPort: hp } });
  }
  return out;
}

function convertToStandardNotation(ports: string[]): string[] {
  return ports.map((p) => {
    if (!p.includes('=')) return p;
    const params: Record<string, string> = { protocol: 'tcp' };
    for (const param of p.split(',')) {
      const i = param.indexOf('=');
      if (i <= 0) throw new ContainerFlagError(`invalid publish opts format (should be name=value but got '${param}')`);
      params[param.slice(0, i)] = param.slice(i + 1);
    }
    return `${params.published ?? ''}:${params.target ?? ''}/${params.protocol}`;
  });
}

// ---- devices --------------------------------------------------------------------------------

const validDeviceMode = (mode: string): boolean => mode !== '' && /^[rwm]+$/.test(mode) && new Set(mode).size === mode.length;

function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); continue; }
    out.push(s);
  }
  const j = out.join('/');
  return abs ? `/${j}` : j || '.';
}

function parseDevice(device: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  if ((device.match(/:/g) ?? []).length > 2) throw new ContainerFlagError(`bad format for path: ${device}`);
  const split = device.split(':');
  if (split[0] === '') throw new ContainerFlagError(`bad format for path: ${device}`);
  let containerPath: string;
  let val = device;
  if (split.length === 1) { containerPath = split[0]; val = cleanPath(containerPath); }
  else if (split.length === 2) {
    if (validDeviceMode(split[1])) { containerPath = split[0]; val = `${cleanPath(containerPath)}:${split[1]}`; }
    else { containerPath = split[1]; val = `${split[0]}:${cleanPath(containerPath)}`; }
  } else {
    containerPath = split[1];
    if (!validDeviceMode(split[2])) throw new ContainerFlagError(`bad mode specified: ${split[2]}`);
  }
  if (!containerPath.startsWith('/')) throw new ContainerFlagError(`${containerPath} is not an absolute path`);
  // SRC[:DST][:PERMS], where a lone second part that reads as permissions ("rw") is PERMS
  const arr = val.split(':');
  let dst = '';
  let perms = 'rwm';
  if (arr.length === 3) perms = arr[2];
  if (arr.length >= 2) {
    if (validDeviceMode(arr[1])) perms = arr[1];
    else dst = arr[1];
  }
  return { PathOnHost: arr[0], PathInContainer: dst || arr[0], CgroupPermissions: perms };
}

// ---- volumes (-v) ---------------------------------------------------------------------------

/** -v SPEC: a bind when it names a source, an anonymous volume otherwise (compose's ParseVolume, Linux forms). */
function classifyVolume(spec: string): { bind?: string } {
  if (spec === '') throw new ContainerFlagError('invalid empty volume spec');
  const parts = spec.split(':');
  if (parts.length > 3) throw new ContainerFlagError(`invalid spec: ${spec}: too many colons`);
  if (parts.length === 1) return {};
  let [host, ...rest] = parts;
  // docker makes "./x" and "../x" absolute; a name ("data") is a named volume and stays as is
  if (!host.startsWith('/') && host.startsWith('.')) host = resolve(host);
  return { bind: [host, ...rest].join(':') };
}

// ---- the request ----------------------------------------------------------------------------

export interface CreateRequest {
  /** The JSON body, in docker's field order. */
  body: Record<string, unknown>;
  /** ?name= and ?platform= */
  name?: string;
  platform?: string;
}

export interface RunOptions {
  command: 'run' | 'create';
  request: CreateRequest;
  image: string;
  detach: boolean;
  rm: boolean;
  pull: 'missing' | 'always' | 'never';
  quiet: boolean;
  sigProxy: boolean;
  detachKeys?: string;
  cidfile?: string;
  /** -a given (its streams), for run's "conflicting options" check. */
  attachGiven: boolean;
  tty: boolean;
  interactive: boolean;
}

export interface BuildContext {
  /** The negotiated API version (fields differ by version as in docker's client). */
  apiVersion: string;
  /** [height, width] of the terminal on stdout, [0, 0] when it is not one. */
  consoleSize?: [number, number];
  env?: NodeJS.ProcessEnv;
  /** config.json "proxies" for this daemon (or "default"): given to the container unless -e sets them. */
  proxies?: ProxyConfig;
}

export interface ProxyConfig { httpProxy?: string; httpsProxy?: string; noProxy?: string; ftpProxy?: string; allProxy?: string }

/** docker's ParseProxyConfig: the proxies for `host` (else "default") from config.json's "proxies". */
export function proxyConfigFor(config: { proxies?: Record<string, ProxyConfig> }, host: string): ProxyConfig | undefined {
  const p = config.proxies;
  if (!p) return undefined;
  return p[host] ?? p.default;
}

const isUserDefinedNetwork = (n: string): boolean =>
  !['default', 'bridge', 'host', 'none'].includes(n) && !n.startsWith('container:');

function validMac(m: string): boolean {
  return /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(m.trim()) || /^([0-9a-fA-F]{2}[:-]){7}[0-9a-fA-F]{2}$/.test(m.trim()) ||
    /^([0-9a-fA-F]{2}[:-]){19}[0-9a-fA-F]{2}$/.test(m.trim()) || /^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$/.test(m.trim());
}

function normalizeCaps(caps: string[] | null): string[] | null {
  if (!caps) return caps;
  return caps.map((c) => {
    const u = c.toUpperCase();
    return u === 'ALL' || u.startsWith('CAP_') ? u : `CAP_${u}`;
  });
}

function endpoint(ep: NetworkAttachment): Record<string, unknown> {
  if (ep.Target.trim() === '') throw new ContainerFlagError('no name set for network');
  if (!isUserDefinedNetwork(ep.Target)) {
    if (ep.Aliases && ep.Aliases.length > 0) throw new ContainerFlagError('network-scoped aliases are only supported for user-defined networks');
    if (ep.Links && ep.Links.length > 0) throw new ContainerFlagError('links are only supported for user-defined networks');
  }
  let ipam: Record<string, unknown> | null = null;
  if (ep.IPv4Address || ep.IPv6Address || (ep.LinkLocalIPs && ep.LinkLocalIPs.length)) {
    ipam = {};
    if (ep.IPv4Address) ipam.IPv4Address = ep.IPv4Address;
    if (ep.IPv6Address) ipam.IPv6Address = ep.IPv6Address;
    if (ep.LinkLocalIPs && ep.LinkLocalIPs.length) ipam.LinkLocalIPs = ep.LinkLocalIPs;
  }
  if (ep.MacAddress && !validMac(ep.MacAddress)) throw new ContainerFlagError(`${ep.MacAddress} is not a valid mac address`);
  return {
    IPAMConfig: ipam,
    Links: ep.Links && ep.Links.length ? ep.Links : null,
    Aliases: ep.Aliases && ep.Aliases.length ? [...ep.Aliases] : null,
    MacAddress: ep.MacAddress ?? '',
    DriverOpts: ep.DriverOpts && Object.keys(ep.DriverOpts).length ? sorted(ep.DriverOpts) : null,
    GwPriority: ep.GwPriority ?? 0,
    NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '',
    GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null,
  };
}

/**
 * Parses run/create arguments (everything after the command name) into the create request and
 * run's own options. Throws FlagError (flag syntax: printed with the usage) or ContainerFlagError
 * (semantics: printed with "berth: "), both exit status 125; too few arguments is status 1 as in
 * docker, reported by the caller (parsed.args is empty).
 */
export function parseRunArgs(command: 'run' | 'create', parsed: ParsedFlags, ctx: BuildContext): RunOptions {
  const f = new FlagValues(parsed);
  const env = ctx.env ?? process.env;
  const [image, ...cmdArgs] = parsed.args;
  const pull = f.str('pull', 'missing');
  if (!['missing', 'always', 'never'].includes(pull)) {
    throw new ContainerFlagError(`invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  }
  const attach = f.list('attach');
  const stdinFlag = f.bool('interactive');
  let attachStdin = attach.includes('stdin') || stdinFlag;
  let attachStdout = attach.includes('stdout') || attach.length === 0;
  let attachStderr = attach.includes('stderr') || attach.length === 0;

  const mac = f.str('mac-address');
  if (mac && !validMac(mac)) throw new ContainerFlagError(`${mac} is not a valid mac address`);
  const swappiness = f.num('memory-swappiness', -1);
  if (swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw new ContainerFlagError(`invalid value: ${swappiness}. Valid memory swappiness range is 0-100`);
  }

  // -v: binds go to HostConfig.Binds, the rest are anonymous volumes (Config.Volumes)
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of f.list('volume')) volumes[v] = {};
  for (const v of f.list('volume')) {
    const c = classifyVolume(v);
    if (c.bind !== undefined) {
      binds.push(c.bind);
      delete volumes[v];
    }
  }
  // docker iterates a map of -v values: duplicates count once (and its order is random)
  const uniqueBinds = [...new Set(binds)];

  const tmpfs: Record<string, string> = {};
  for (const t of f.list('tmpfs')) {
    const i = t.indexOf(':');
    tmpfs[i >= 0 ? t.slice(0, i) : t] = i >= 0 ? t.slice(i + 1) : '';
  }

  let entrypoint: string[] | null = null;
  if (f.str('entrypoint') !== '') entrypoint = [f.str('entrypoint')];
  else if (f.changed('entrypoint')) entrypoint = [''];

  // ports
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const spec of convertToStandardNotation(f.list('publish'))) {
    let maps: PortMapping[];
    try { maps = parsePortSpec(spec); } catch (e) { throw new ContainerFlagError((e as Error).message); }
    for (const m of maps) {
      exposed[m.port] = {};
      (bindings[m.port] ??= []).push(m.binding);
    }
  }
  for (const e of f.list('expose')) {
    if (e.includes(':')) throw new ContainerFlagError(`invalid port format for --expose: ${e}`);
    const [proto, port] = splitProtoPort(e);
    let start: number; let end: number;
    try { [start, end] = parsePortRange(port); } catch (err) {
      throw new ContainerFlagError(`invalid range format for --expose: ${e}, error: ${(err as Error).message}`);
    }
    for (let p = start; p <= end; p++) exposed[`${p}/${proto}`] ??= {};
  }

  const devices = f.list('device').map(parseDevice);

  // env: files first, then -e; keys collapse to their last value (docker goes through a map)
  let envList: string[] = [];
  for (const file of f.list('env-file')) envList.push(...readKVFile(file, (k) => env[k]));
  const dashE = new Map<string, string>();
  for (const e0 of f.list('env')) {
    const e = validateEnv(e0, env);
    const i = e.indexOf('=');
    dashE.set(i >= 0 ? e.slice(0, i) : e, e);
  }
  // config.json proxies: upper- and lower-case names, each unless -e set that very name
  const px = ctx.proxies;
  if (px) {
    const permitted: Array<[string, string | undefined]> = [['HTTP_PROXY', px.httpProxy], ['HTTPS_PROXY', px.httpsProxy], ['NO_PROXY', px.noProxy], ['FTP_PROXY', px.ftpProxy], ['ALL_PROXY', px.allProxy]];
    for (const [k, v] of permitted) {
      if (!v) continue;
      for (const name of [k, k.toLowerCase()]) if (!dashE.has(name)) dashE.set(name, `${name}=${v}`);
    }
  }
  envList = [...envList, ...dashE.values()];
  let labelList: string[] = [];
  for (const file of f.list('label-file')) labelList.push(...readKVFile(file));
  labelList = [...labelList, ...f.list('label')];

  const pidMode = f.str('pid');
  if (!(pidMode === '' || pidMode === 'host' || (pidMode.startsWith('container:') && pidMode.length > 'container:'.length))) {
    throw new ContainerFlagError('--pid: invalid PID mode');
  }
  const uts = f.str('uts');
  if (uts !== '' && uts !== 'host') throw new ContainerFlagError('--uts: invalid UTS mode');
  const userns = f.str('userns');
  if (userns !== '' && userns !== 'host') throw new ContainerFlagError('--userns: invalid USER mode');
  const cgroupns = f.str('cgroupns');
  if (!['', 'private', 'host'].includes(cgroupns)) throw new ContainerFlagError('--cgroupns: invalid CGROUP mode');

  // restart
  let restart = { Name: 'no', MaximumRetryCount: 0 };
  const rp = f.str('restart', 'no');
  if (rp === '') restart = { Name: '', MaximumRetryCount: 0 };
  else {
    const i = rp.indexOf(':');
    const k = i >= 0 ? rp.slice(0, i) : rp;
    const v = i >= 0 ? rp.slice(i + 1) : '';
    if (i >= 0 && k === '') throw new ContainerFlagError('invalid restart policy format: no policy provided before colon');
    let count = 0;
    if (v !== '') {
      if (!/^[+-]?\d+$/.test(v)) throw new ContainerFlagError('invalid restart policy format: maximum retry count must be an integer');
      count = Number(v);
    }
    restart = { Name: k, MaximumRetryCount: count };
  }

  const logDriver = f.str('log-driver');
  if (logDriver === 'none' && f.list('log-opt').length > 0) throw new ContainerFlagError(`invalid logging opts for driver ${logDriver}`);
  const logOpts = kvMap(f.list('log-opt'));

  // security options; "systempaths=unconfined" becomes empty MaskedPaths/ReadonlyPaths
  const securityOpts: string[] = [];
  let maskedPaths: string[] | null = null;
  let readonlyPaths: string[] | null = null;
  for (const opt of f.list('security-opt')) {
    let i = opt.indexOf('=');
    let k = i >= 0 ? opt.slice(0, i) : opt;
    if (i < 0 && k !== 'no-new-privileges') { i = opt.indexOf(':'); k = i >= 0 ? opt.slice(0, i) : opt; }
    const v = i >= 0 ? opt.slice(i + 1) : '';
    if ((i < 0 || v === '') && k !== 'no-new-privileges') throw new ContainerFlagError(`Invalid --security-opt: ${JSON.stringify(opt)}`);
    let out = opt;
    if (k === 'seccomp' && v !== 'builtin' && v !== 'unconfined') {
      let text: string;
      try { text = readFileSync(v, 'utf8'); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ContainerFlagError(`opening seccomp profile (${v}) failed: open ${v}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
      }
      try { out = `seccomp=${JSON.stringify(JSON.parse(text))}`; } catch (e) {
        throw new ContainerFlagError(`compacting json for seccomp profile (${v}) failed: ${(e as Error).message}`);
      }
    }
    if (out === 'systempaths=unconfined') { maskedPaths = []; readonlyPaths = []; continue; }
    securityOpts.push(out);
  }

  const storageOpt: Record<string, string> = {};
  for (const o of f.list('storage-opt')) {
    const i = o.indexOf('=');
    if (i < 0) throw new ContainerFlagError('invalid storage option');
    storageOpt[o.slice(0, i)] = o.slice(i + 1);
  }

  // healthcheck
  let health: Record<string, unknown> | undefined;
  const hc = { cmd: f.str('health-cmd'), interval: f.num('health-interval'), timeout: f.num('health-timeout'), start: f.num('health-start-period'), startInterval: f.num('health-start-interval'), retries: f.num('health-retries') };
  const haveHealth = hc.cmd !== '' || hc.interval !== 0 || hc.timeout !== 0 || hc.start !== 0 || hc.retries !== 0 || hc.startInterval !== 0;
  if (f.bool('no-healthcheck')) {
    if (haveHealth) throw new ContainerFlagError('--no-healthcheck conflicts with --health-* options');
    health = { Test: ['NONE'] };
  } else if (haveHealth) {
    if (hc.interval < 0) throw new ContainerFlagError('--health-interval cannot be negative');
    if (hc.timeout < 0) throw new ContainerFlagError('--health-timeout cannot be negative');
    if (hc.retries < 0) throw new ContainerFlagError('--health-retries cannot be negative');
    if (hc.start < 0) throw new ContainerFlagError('--health-start-period cannot be negative');
    if (hc.startInterval < 0) throw new ContainerFlagError('--health-start-interval cannot be negative');
    health = {};
    if (hc.cmd) health.Test = ['CMD-SHELL', hc.cmd];
    if (hc.interval) health.Interval = hc.interval;
    if (hc.timeout) health.Timeout = hc.timeout;
    if (hc.start) health.StartPeriod = hc.start;
    if (hc.startInterval) health.StartInterval = hc.startInterval;
    if (hc.retries) health.Retries = hc.retries;
  }

  const ulimits = new Map<string, Ulimit>();
  for (const u of f.list('ulimit')) { const x = JSON.parse(u) as Ulimit; ulimits.set(x.Name, x); }
  const sysctls = kvMap(f.list('sysctl'));
  const annotations = kvMap(f.list('annotation'));
  const mounts = f.list('mount').map((m) => JSON.parse(m) as DockerMount);

  const autoRemove = f.bool('rm');
  const listOrNull = (name: string): string[] | null => (f.list(name).length ? f.list(name) : null);

  // networks
  const aliases = f.list('network-alias');
  const links = f.list('link');
  const ip4 = f.str('ip');
  const ip6 = f.str('ip6');
  const lli = f.list('link-local-ip');
  const nets = f.list('network').map((n) => JSON.parse(n) as NetworkAttachment);
  const apply = (n: NetworkAttachment): NetworkAttachment => {
    if (n.Aliases?.length && aliases.length) throw new ContainerFlagError('conflicting options: cannot specify both --network-alias and per-network alias');
    if (n.Links?.length && links.length) throw new ContainerFlagError('conflicting options: cannot specify both --link and per-network links');
    if (n.IPv4Address && ip4) throw new ContainerFlagError('conflicting options: cannot specify both --ip and per-network IPv4 address');
    if (n.IPv6Address && ip6) throw new ContainerFlagError('conflicting options: cannot specify both --ip6 and per-network IPv6 address');
    if (n.MacAddress && mac) throw new ContainerFlagError('conflicting options: cannot specify both --mac-address and per-network MAC address');
    if (n.LinkLocalIPs?.length && lli.length) throw new ContainerFlagError('conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses');
    const o = { ...n };
    if (aliases.length) o.Aliases = [...aliases];
    if (isUserDefinedNetwork(o.Target) && links.length) o.Links = [...links];
    if (ip4) o.IPv4Address = ip4;
    if (ip6) o.IPv6Address = ip6;
    if (mac) o.MacAddress = mac;
    if (lli.length) o.LinkLocalIPs = [...lli];
    return o;
  };
  const endpoints: Record<string, Record<string, unknown>> = {};
  if (nets.length === 0) endpoints.default = endpoint(apply({ Target: 'default' }));
  let userDefined = false; let nonUser = false;
  nets.forEach((n0, i) => {
    if (isUserDefinedNetwork(n0.Target)) userDefined = true; else nonUser = true;
    const n = i === 0 ? apply(n0) : n0;
    const ep = endpoint(n);
    if (endpoints[n.Target]) throw new ContainerFlagError(`network ${JSON.stringify(n.Target)} is specified multiple times`);
    if (i === 0 && nets.length === 1 && isEmptyEndpoint(ep)) return;
    endpoints[n.Target] = ep;
  });
  if (userDefined && nonUser) throw new ContainerFlagError('conflicting options: cannot attach both user-defined and non-user-defined network-modes');
  const networkMode = nets.length ? nets[0].Target : 'default';
  let configMac = mac;
  const main = endpoints[networkMode];
  if (main) configMac = String(main.MacAddress ?? '');

  if (autoRemove && !(restart.Name === '' || restart.Name === 'no')) {
    throw new ContainerFlagError('conflicting options: cannot specify both --restart and --rm');
  }

  const openStdin = stdinFlag;
  const detach = command === 'run' && f.bool('detach');
  let stdinOnce = openStdin && attachStdin;
  if (command === 'run' && detach) {
    attachStdin = false; attachStdout = false; attachStderr = false; stdinOnce = false;
  }

  const v = ctx.apiVersion;
  const ge = (x: string): boolean => compareVersions(v, x) >= 0;
  const lt = (x: string): boolean => compareVersions(v, x) < 0;
  if (f.changed('stop-timeout') && lt('1.25')) throw new ContainerFlagError(`"stop timeout" requires API version 1.25, but the Docker daemon API version is ${v}`);

  // Config, in container.Config's field order (omitempty fields left out when empty)
  const config: Record<string, unknown> = {
    Hostname: f.str('hostname'), Domainname: f.str('domainname'), User: f.str('user'),
    AttachStdin: attachStdin, AttachStdout: attachStdout, AttachStderr: attachStderr,
  };
  if (Object.keys(exposed).length) config.ExposedPorts = sorted(exposed);
  Object.assign(config, {
    Tty: f.bool('tty'), OpenStdin: openStdin, StdinOnce: stdinOnce,
    Env: envList.length ? envList : null,
    Cmd: cmdArgs.length ? cmdArgs : null,
  });
  if (health) config.Healthcheck = health;
  Object.assign(config, { Image: image ?? '', Volumes: sorted(volumes), WorkingDir: f.str('workdir'), Entrypoint: entrypoint });
  if (configMac && lt('1.44')) config.MacAddress = configMac;
  Object.assign(config, { OnBuild: null, Labels: sorted(kvMap(labelList)) });
  if (f.str('stop-signal')) config.StopSignal = f.str('stop-signal');
  if (f.changed('stop-timeout')) config.StopTimeout = f.num('stop-timeout');

  const hostConfig: Record<string, unknown> = {
    Binds: uniqueBinds.length ? uniqueBinds : null,
    ContainerIDFile: f.str('cidfile'),
    LogConfig: { Type: logDriver, Config: sorted(logOpts) },
    NetworkMode: networkMode,
    PortBindings: sorted(bindings),
    RestartPolicy: restart,
    AutoRemove: lt('1.25') ? false : autoRemove,
    VolumeDriver: f.str('volume-driver'),
    VolumesFrom: listOrNull('volumes-from'),
    // docker's client zeroes it for a Linux platform on API < 1.42
    ConsoleSize: f.str('platform', env.DOCKER_DEFAULT_PLATFORM ?? '').toLowerCase().startsWith('linux') && lt('1.42') && ge('1.41') ? [0, 0] : (ctx.consoleSize ?? [0, 0]),
  };
  if (Object.keys(annotations).length) hostConfig.Annotations = sorted(annotations);
  Object.assign(hostConfig, {
    CapAdd: normalizeCaps(listOrNull('cap-add')), CapDrop: normalizeCaps(listOrNull('cap-drop')),
    CgroupnsMode: cgroupns,
    Dns: f.list('dns'), DnsOptions: f.list('dns-option'), DnsSearch: f.list('dns-search'),
    ExtraHosts: listOrNull('add-host'), GroupAdd: listOrNull('group-add'),
    IpcMode: f.str('ipc'), Cgroup: '', Links: listOrNull('link'),
    OomScoreAdj: f.num('oom-score-adj'), PidMode: pidMode,
    Privileged: f.bool('privileged'), PublishAllPorts: f.bool('publish-all'), ReadonlyRootfs: f.bool('read-only'),
    SecurityOpt: securityOpts.length ? securityOpts : null,
  });
  if (Object.keys(storageOpt).length) hostConfig.StorageOpt = sorted(storageOpt);
  if (Object.keys(tmpfs).length) hostConfig.Tmpfs = sorted(tmpfs);
  Object.assign(hostConfig, { UTSMode: uts, UsernsMode: userns, ShmSize: f.num('shm-size') });
  if (Object.keys(sysctls).length) hostConfig.Sysctls = sorted(sysctls);
  if (f.str('runtime')) hostConfig.Runtime = f.str('runtime');
  Object.assign(hostConfig, {
    Isolation: f.str('isolation'),
    CpuShares: f.num('cpu-shares'), Memory: f.num('memory'), NanoCpus: f.num('cpus'),
    CgroupParent: f.str('cgroup-parent'), BlkioWeight: f.num('blkio-weight'),
    BlkioWeightDevice: throttle(f.list('blkio-weight-device'), 'weight'),
    BlkioDeviceReadBps: throttle(f.list('device-read-bps'), 'bps'),
    BlkioDeviceWriteBps: throttle(f.list('device-write-bps'), 'bps'),
    BlkioDeviceReadIOps: throttle(f.list('device-read-iops'), 'iops'),
    BlkioDeviceWriteIOps: throttle(f.list('device-write-iops'), 'iops'),
    CpuPeriod: f.num('cpu-period'), CpuQuota: f.num('cpu-quota'),
    CpuRealtimePeriod: f.num('cpu-rt-period'), CpuRealtimeRuntime: f.num('cpu-rt-runtime'),
    CpusetCpus: f.str('cpuset-cpus'), CpusetMems: f.str('cpuset-mems'),
    Devices: devices, DeviceCgroupRules: listOrNull('device-cgroup-rule'), DeviceRequests: null,
  });
  const kmem = f.num('kernel-memory');
  if (kmem && ge('1.40') && lt('1.42')) hostConfig.KernelMemory = kmem;
  Object.assign(hostConfig, {
    MemoryReservation: f.num('memory-reservation'), MemorySwap: f.num('memory-swap'),
    MemorySwappiness: swappiness, OomKillDisable: f.bool('oom-kill-disable'), PidsLimit: f.num('pids-limit'),
    Ulimits: [...ulimits.values()],
    CpuCount: f.num('cpu-count'), CpuPercent: f.num('cpu-percent'),
    IOMaximumIOps: f.num('io-maxiops'), IOMaximumBandwidth: f.num('io-maxbandwidth'),
  });
  if (mounts.length) hostConfig.Mounts = mounts;
  hostConfig.MaskedPaths = maskedPaths;
  hostConfig.ReadonlyPaths = readonlyPaths;
  if (f.changed('init')) hostConfig.Init = f.bool('init');

  const body: Record<string, unknown> = { ...config, HostConfig: hostConfig, NetworkingConfig: { EndpointsConfig: sorted(endpoints) } };
  const platform = f.str('platform', env.DOCKER_DEFAULT_PLATFORM ?? '');
  return {
    command,
    request: { body, name: f.str('name') || undefined, platform: platform && ge('1.41') ? platform.toLowerCase() : undefined },
    image: image ?? '',
    detach,
    rm: autoRemove,
    pull: pull as RunOptions['pull'],
    quiet: f.bool('quiet'),
    sigProxy: f.bool('sig-proxy', true),
    detachKeys: f.str('detach-keys') || undefined,
    cidfile: f.str('cidfile') || undefined,
    attachGiven: attach.length > 0,
    tty: f.bool('tty'),
    interactive: stdinFlag,
  };
}

function isEmptyEndpoint(ep: Record<string, unknown>): boolean {
  return ep.IPAMConfig === null && ep.Links === null && ep.Aliases === null && ep.MacAddress === '' && ep.DriverOpts === null && ep.GwPriority === 0;
}

/** --blkio-weight-device PATH:WEIGHT, --device-read-bps PATH:RATE, --device-*-iops PATH:N. */
function throttle(values: string[], kind: 'weight' | 'bps' | 'iops'): Array<Record<string, unknown>> {
  return values.map((v) => {
    const i = v.lastIndexOf(':');
    const path = i >= 0 ? v.slice(0, i) : v;
    const val = i >= 0 ? v.slice(i + 1) : '';
    if (i < 0 || !path.startsWith('/dev/')) throw new ContainerFlagError(`bad format: ${v}`);
    if (kind === 'weight') {
      const w = Number(val);
      if (!/^\d+$/.test(val) || (w > 0 && (w < 10 || w > 1000))) throw new ContainerFlagError(`invalid weight for device: ${v}`);
      return { Path: path, Weight: w };
    }
    if (kind === 'bps') {
      let r: number;
      try { r = ramInBytes(val); } catch { throw new ContainerFlagError(`invalid rate for device: ${v}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb`); }
      return { Path: path, Rate: r };
    }
    if (!/^\d+$/.test(val)) throw new ContainerFlagError(`invalid rate for device: ${v}. The correct format is <device-path>:<number>. Number must be a positive integer`);
    return { Path: path, Rate: Number(val) };
  });
}

export { FlagError };
