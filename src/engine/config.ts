// The daemon's configuration: command-line flags merged with a daemon.json in docker's format.
//
// As dockerd: a directive given both as a flag and in the file is an error (neither silently
// wins), and the file may only contain directives this daemon understands. Unlike dockerd, the
// file is Berth's own (/etc/berth/daemon.json), so a directive Berth does not implement is refused
// by name instead of being accepted and ignored.
//
// Socket: by default the API socket lives in the exec root (<exec-root>/berth.sock), so
// `--exec-root` alone gives a self-contained instance (tests, a second daemon); the CLI derives
// its default host the same way.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { isLogLevel, type LogLevel } from './log.ts';

export const DEFAULT_DATA_ROOT = '/var/lib/berth';
export const DEFAULT_EXEC_ROOT = '/run/berth';
export const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';
/** The built-in runtime (berth-runtime's library, in process); cannot be redefined in `runtimes`. */
export const BUILTIN_RUNTIME = 'berth';

export function defaultHost(execRoot: string = DEFAULT_EXEC_ROOT): string {
  return `unix://${execRoot}/berth.sock`;
}

/** A configuration the user must fix; the message names the flag or directive and the file. */
export class DaemonConfigError extends Error {
  override name = 'DaemonConfigError';
}

export interface RuntimeConfig {
  path: string;
  runtimeArgs?: string[];
}

export interface DaemonConfig {
  /** Listen addresses, each `unix:///abs/path`. */
  hosts: string[];
  dataRoot: string;
  execRoot: string;
  /** The file that was read ('' when the default file does not exist). */
  configFile: string;
  debug: boolean;
  logLevel: LogLevel;
  /** As given (after dropping an http:// or https:// prefix, as dockerd does). */
  insecureRegistries: string[];
  /** Normalised with a trailing slash, as dockerd stores them. */
  registryMirrors: string[];
  /** Runtimes from the config file; the built-in `berth` is not listed here. */
  runtimes: Record<string, RuntimeConfig>;
  defaultRuntime: string;
  /** Group owning the API socket (mode 0660); undefined = root. */
  group?: string;
  pidFile: string;
  /**
   * daemon.json "bridge-suffix": put into the name of every host network object this daemon
   * creates (bridges, veths, firewall chains), so several daemons (tests) never share one. '' by default.
   */
  bridgeSuffix: string;
  /** daemon.json "cgroup-parent" (docker's key): containers' cgroups go to <parent>/<id>. Default "/berth". */
  cgroupParent: string;
  /** `--ui` / daemon.json "ui": where the web UI listens (host and port); undefined = no UI. */
  ui?: UiListen;
}

/** A TCP address for the web UI. */
export interface UiListen {
  host: string;
  port: number;
}

/** The UI's port when `berth ui` starts it without one. */
export const DEFAULT_UI_PORT = 7780;

/**
 * Parses the UI's listen address: `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (loopback), or a
 * bare host (default port). Loopback is the default because the UI is root-equivalent.
 */
export function parseUiListen(text: string): UiListen {
  const t = text.trim().replace(/^https?:\/\//, '').replace(/\/$/, '');
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(t);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if (/^\d+$/.test(t)) {
    host = '127.0.0.1';
    portText = t;
  } else {
    const i = t.lastIndexOf(':');
    if (i >= 0 && t.indexOf(':') !== i) throw new DaemonConfigError(`invalid UI address "${text}": write an IPv6 address as [ADDR]:PORT`);
    host = i >= 0 ? t.slice(0, i) : t;
    portText = i >= 0 ? t.slice(i + 1) : undefined;
    if (host === '') host = '127.0.0.1';
  }
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) throw new DaemonConfigError(`invalid UI address "${text}": expected HOST:PORT, e.g. 127.0.0.1:${DEFAULT_UI_PORT}`);
  const port = portText === undefined ? DEFAULT_UI_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (portText !== undefined && !/^\d+$/.test(portText))) {
    throw new DaemonConfigError(`invalid UI address "${text}": the port must be a number from 0 to 65535`);
  }
  return { host, port };
}

/** What came from the command line; undefined = not given. */
export interface DaemonFlags {
  hosts?: string[];
  dataRoot?: string;
  execRoot?: string;
  configFile?: string;
  debug?: boolean;
  logLevel?: string;
  group?: string;
  insecureRegistries?: string[];
  registryMirrors?: string[];
  defaultRuntime?: string;
  ui?: string;
}

// daemon.json directive → the DaemonFlags key it conflicts with (undefined: file only).
const DIRECTIVES: Record<string, keyof DaemonFlags | undefined> = {
  'hosts': 'hosts',
  'data-root': 'dataRoot',
  'exec-root': 'execRoot',
  'debug': 'debug',
  'log-level': 'logLevel',
  'group': 'group',
  'insecure-registries': 'insecureRegistries',
  'registry-mirrors': 'registryMirrors',
  'default-runtime': 'defaultRuntime',
  'runtimes': undefined,
  'bridge-suffix': undefined,
  'cgroup-parent': undefined,
  'ui': 'ui',
};
const FLAG_NAMES: Record<keyof DaemonFlags, string> = {
  hosts: 'host', dataRoot: 'data-root', execRoot: 'exec-root', configFile: 'config-file', debug: 'debug',
  logLevel: 'log-level', group: 'group', insecureRegistries: 'insecure-registry',
  registryMirrors: 'registry-mirror', defaultRuntime: 'default-runtime', ui: 'ui',
};

type FileConfig = Record<string, unknown>;

function readConfigFile(path: string, explicit: boolean): FileConfig | undefined {
  if (!existsSync(path)) {
    if (explicit) throw new DaemonConfigError(`unable to configure the Berth daemon with file ${path}: no such file`);
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DaemonConfigError(`unable to configure the Berth daemon with file ${path}: ${(e as Error).message}`);
  }
  if (text.trim() === '') return {}; // dockerd accepts an empty file
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new DaemonConfigError(`unable to configure the Berth daemon with file ${path}: invalid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DaemonConfigError(`unable to configure the Berth daemon with file ${path}: expected a JSON object`);
  }
  const unknown = Object.keys(parsed).filter((k) => !Object.hasOwn(DIRECTIVES, k));
  if (unknown.length) {
    throw new DaemonConfigError(
      `the following directives in ${path} are not supported by Berth: ${unknown.sort().join(', ')} ` +
      `(supported: ${Object.keys(DIRECTIVES).sort().join(', ')})`);
  }
  return parsed as FileConfig;
}

function expectString(file: string, key: string, v: unknown): string {
  if (typeof v !== 'string') throw new DaemonConfigError(`${file}: "${key}" must be a string`);
  return v;
}
function expectBool(file: string, key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new DaemonConfigError(`${file}: "${key}" must be true or false`);
  return v;
}
function expectStringArray(file: string, key: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DaemonConfigError(`${file}: "${key}" must be an array of strings`);
  return v as string[];
}

function parseRuntimes(file: string, v: unknown): Record<string, RuntimeConfig> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DaemonConfigError(`${file}: "runtimes" must be an object of {"name": {"path": …}}`);
  const out: Record<string, RuntimeConfig> = {};
  for (const [name, raw] of Object.entries(v as Record<string, unknown>)) {
    if (name === BUILTIN_RUNTIME) throw new DaemonConfigError(`${file}: runtime name '${BUILTIN_RUNTIME}' is reserved for the built-in runtime`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new DaemonConfigError(`${file}: invalid runtime name "${name}"`);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new DaemonConfigError(`${file}: runtime "${name}" must be an object with a "path"`);
    const r = raw as Record<string, unknown>;
    const extra = Object.keys(r).filter((k) => k !== 'path' && k !== 'runtimeArgs');
    if (extra.length) throw new DaemonConfigError(`${file}: runtime "${name}": unsupported field(s) ${extra.join(', ')} (Berth supports "path" and "runtimeArgs")`);
    const path = expectString(file, `runtimes.${name}.path`, r.path);
    if (path === '') throw new DaemonConfigError(`${file}: runtime "${name}" needs a "path"`);
    const rc: RuntimeConfig = { path };
    if (r.runtimeArgs !== undefined) rc.runtimeArgs = expectStringArray(file, `runtimes.${name}.runtimeArgs`, r.runtimeArgs);
    out[name] = rc;
  }
  return out;
}

/** As dockerd's ValidateMirror: http(s) URL without credentials, query or fragment; stored with a trailing slash. */
export function normaliseMirror(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new DaemonConfigError(`invalid mirror: "${value}" is not a valid URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DaemonConfigError(`invalid mirror: unsupported scheme "${u.protocol.replace(/:$/, '')}" in "${value}"`);
  if (u.search || u.hash) throw new DaemonConfigError(`invalid mirror: query or fragment at end of the URI "${value}"`);
  if (u.username || u.password) throw new DaemonConfigError(`invalid mirror: username/password not allowed in URI "${value}"`);
  return value.replace(/\/+$/, '') + '/';
}

/** As dockerd: strips http:// or https:// (with a warning), refuses other schemes, checks CIDR or host[:port]. */
export function normaliseInsecureRegistry(value: string, warn: (msg: string) => void = () => {}): string {
  let r = value;
  if (r.startsWith('-') || r.endsWith('-')) throw new DaemonConfigError(`invalid index name (${r}). Cannot begin or end with a hyphen`);
  const lower = r.toLowerCase();
  if (lower.startsWith('http://') || lower.startsWith('https://')) {
    warn(`insecure registry ${r} should not contain '${r.slice(0, r.indexOf('://') + 3)}' and it has been removed from the insecure registry config`);
    r = r.slice(r.indexOf('://') + 3);
  } else if (r.includes('://')) {
    throw new DaemonConfigError(`insecure registry ${r} should not contain '://'`);
  }
  if (parseCidr(r)) return r;
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/.test(r)) {
    throw new DaemonConfigError(`insecure registry ${r} is not valid: expected host[:port] or a CIDR like 10.0.0.0/8`);
  }
  return r;
}

interface Cidr { family: 4 | 6; bytes: number[]; bits: number }

function ipBytes(ip: string): number[] | undefined {
  const fam = isIP(ip);
  if (fam === 4) return ip.split('.').map(Number);
  if (fam !== 6) return undefined;
  // Expand "::" and an embedded IPv4 tail into 16 bytes.
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const parse = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) out.push(...g.split('.').map(Number));
      else { const n = parseInt(g, 16); out.push(n >> 8, n & 0xff); }
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  return [...h, ...new Array(16 - h.length - t.length).fill(0), ...t];
}

function parseCidr(s: string): Cidr | undefined {
  const m = /^(.+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const bytes = ipBytes(m[1]);
  if (!bytes) return undefined;
  const family = bytes.length === 4 ? 4 : 6;
  const bits = Number(m[2]);
  if (bits > bytes.length * 8) return undefined;
  // Masked network address, as Go's net.ParseCIDR returns it.
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  return { family, bytes: masked, bits };
}

function cidrString(c: Cidr): string {
  if (c.family === 4) return `${c.bytes.join('.')}/${c.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((c.bytes[i] << 8) | c.bytes[i + 1]).toString(16));
  // Collapse the longest run of zero groups (RFC 5952), as Go prints IPv6.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const text = best < 0 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  return `${text}/${c.bits}`;
}

/** Loopback is always insecure-allowed, as dockerd adds 127.0.0.0/8 itself. */
const LOOPBACK_CIDR = '127.0.0.0/8';

export interface IndexInfo { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }
/** Docker's registry.ServiceConfig as /info reports it (API 1.47 shape). */
export interface RegistryServiceConfig {
  AllowNondistributableArtifactsCIDRs: string[];
  AllowNondistributableArtifactsHostnames: string[];
  InsecureRegistryCIDRs: string[];
  IndexConfigs: Record<string, IndexInfo>;
  Mirrors: string[];
}

export function registryServiceConfig(cfg: Pick<DaemonConfig, 'insecureRegistries' | 'registryMirrors'>): RegistryServiceConfig {
  const cidrs: string[] = [];
  const index: Record<string, IndexInfo> = {};
  for (const r of [...cfg.insecureRegistries, LOOPBACK_CIDR]) {
    const c = parseCidr(r);
    if (c) {
      const s = cidrString(c);
      if (!cidrs.includes(s)) cidrs.push(s);
    } else {
      index[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
    }
  }
  index['docker.io'] = { Name: 'docker.io', Mirrors: [...cfg.registryMirrors], Secure: true, Official: true };
  return {
    AllowNondistributableArtifactsCIDRs: [],
    AllowNondistributableArtifactsHostnames: [],
    InsecureRegistryCIDRs: cidrs,
    IndexConfigs: index,
    Mirrors: [...cfg.registryMirrors],
  };
}

export interface ParsedHost { proto: 'unix'; path: string; address: string }

/** `unix:///abs/path` → the socket path. TCP is refused: the API is root-equivalent and Berth has no TLS yet. */
export function parseHost(address: string): ParsedHost {
  if (address.startsWith('unix://')) {
    const path = address.slice('unix://'.length);
    if (!path || !isAbsolute(path)) throw new DaemonConfigError(`invalid host "${address}": expected unix:///absolute/path`);
    return { proto: 'unix', path: resolve(path), address: `unix://${resolve(path)}` };
  }
  if (address.startsWith('tcp://') || /^[^/]*:\d+$/.test(address)) {
    throw new DaemonConfigError(
      `refusing to listen on ${address}: the Engine API gives root on this machine, and a TCP socket ` +
      `needs TLS with client certificates, which Berth does not support yet; use a unix socket ` +
      `(unix:///path) and grant access with --group`);
  }
  if (address.startsWith('fd://')) throw new DaemonConfigError(`invalid host "${address}": socket activation (fd://) is not supported; use unix:///path`);
  throw new DaemonConfigError(`invalid host "${address}": expected unix:///absolute/path`);
}

/** Merges flags and the config file into the daemon's configuration; throws DaemonConfigError. */
export function loadDaemonConfig(flags: DaemonFlags, warn: (msg: string) => void = () => {}): DaemonConfig {
  const configPath = resolve(flags.configFile ?? DEFAULT_CONFIG_FILE);
  const file = readConfigFile(configPath, flags.configFile !== undefined);
  const fromFile: Record<string, unknown> = file ?? {};

  // Conflicts, reported all at once as dockerd does.
  const conflicts: string[] = [];
  for (const [directive, flagKey] of Object.entries(DIRECTIVES)) {
    if (!flagKey || !(directive in fromFile)) continue;
    const flagValue = flags[flagKey];
    if (flagValue === undefined || (Array.isArray(flagValue) && flagValue.length === 0)) continue;
    conflicts.push(`${directive}: (from flag --${FLAG_NAMES[flagKey]}: ${JSON.stringify(flagValue)}, from file: ${JSON.stringify(fromFile[directive])})`);
  }
  if (conflicts.length) {
    throw new DaemonConfigError(`the following directives are specified both as a flag and in the configuration file ${configPath}: ${conflicts.join(', ')}`);
  }

  const f = configPath;
  const pick = <T>(flag: T | undefined, key: string, parse: (v: unknown) => T, dflt: T): T =>
    flag !== undefined ? flag : key in fromFile ? parse(fromFile[key]) : dflt;

  const absolute = (what: string) => (v: unknown): string => {
    const s = expectString(f, what, v);
    if (!isAbsolute(s)) throw new DaemonConfigError(`${what} must be an absolute path, got "${s}"`);
    return resolve(s);
  };
  const dataRoot = resolve(pick(flags.dataRoot, 'data-root', absolute('data-root'), DEFAULT_DATA_ROOT));
  const execRoot = resolve(pick(flags.execRoot, 'exec-root', absolute('exec-root'), DEFAULT_EXEC_ROOT));
  if (!isAbsolute(dataRoot) || !isAbsolute(execRoot)) throw new DaemonConfigError('--data-root and --exec-root must be absolute paths');

  const flagHosts = flags.hosts && flags.hosts.length ? flags.hosts : undefined;
  const rawHosts = pick(flagHosts, 'hosts', (v) => expectStringArray(f, 'hosts', v), [defaultHost(execRoot)]);
  if (rawHosts.length === 0) throw new DaemonConfigError('no host to listen on: give --host unix:///path');
  const hosts = rawHosts.map((h) => parseHost(h).address);

  const debug = pick(flags.debug || undefined, 'debug', (v) => expectBool(f, 'debug', v), false);
  const levelText = pick(flags.logLevel, 'log-level', (v) => expectString(f, 'log-level', v), debug ? 'debug' : 'info');
  const level = levelText === 'warning' ? 'warn' : levelText;
  if (!isLogLevel(level)) throw new DaemonConfigError(`invalid log level "${levelText}" (expected debug, info, warn, error or fatal)`);

  const flagInsecure = flags.insecureRegistries?.length ? flags.insecureRegistries : undefined;
  const insecureRegistries = [...new Set(pick(flagInsecure, 'insecure-registries', (v) => expectStringArray(f, 'insecure-registries', v), [])
    .map((r) => normaliseInsecureRegistry(r, warn)))];
  const flagMirrors = flags.registryMirrors?.length ? flags.registryMirrors : undefined;
  const registryMirrors = [...new Set(pick(flagMirrors, 'registry-mirrors', (v) => expectStringArray(f, 'registry-mirrors', v), [])
    .map(normaliseMirror))];

  const runtimes = 'runtimes' in fromFile ? parseRuntimes(f, fromFile.runtimes) : {};
  const defaultRuntime = pick(flags.defaultRuntime, 'default-runtime', (v) => expectString(f, 'default-runtime', v), BUILTIN_RUNTIME);
  if (defaultRuntime !== BUILTIN_RUNTIME && !Object.hasOwn(runtimes, defaultRuntime)) {
    throw new DaemonConfigError(`default runtime "${defaultRuntime}" does not exist: define it under "runtimes" in ${f} (or use "${BUILTIN_RUNTIME}")`);
  }
  const group = pick(flags.group, 'group', (v) => expectString(f, 'group', v), undefined as string | undefined);
  // Interface names have 15 characters: "berth" + suffix + a kind letter + a few hex digits.
  const bridgeSuffix = pick(undefined, 'bridge-suffix', (v) => expectString(f, 'bridge-suffix', v), '');
  if (!/^[a-z0-9]{0,5}$/.test(bridgeSuffix)) throw new DaemonConfigError(`${f}: "bridge-suffix" must be 0 to 5 characters a-z or 0-9, got "${bridgeSuffix}"`);
  const cgroupParent = pick(undefined, 'cgroup-parent', (v) => expectString(f, 'cgroup-parent', v), '/berth');
  if (!/^\/?[A-Za-z0-9_.@:-]+(\/[A-Za-z0-9_.@:-]+)*$/.test(cgroupParent) || cgroupParent.split('/').includes('..')) {
    throw new DaemonConfigError(`${f}: "cgroup-parent" must be a cgroup path such as "/berth", got "${cgroupParent}"`);
  }
  const uiText = pick(flags.ui, 'ui', (v) => expectString(f, 'ui', v), undefined as string | undefined);
  const ui = uiText ? parseUiListen(uiText) : undefined;

  return {
    hosts,
    dataRoot,
    execRoot,
    configFile: file ? configPath : '',
    debug: level === 'debug' ? true : debug,
    logLevel: level,
    insecureRegistries,
    registryMirrors,
    runtimes,
    defaultRuntime,
    group: group || undefined,
    pidFile: `${execRoot}/berth.pid`,
    bridgeSuffix,
    cgroupParent: cgroupParent.startsWith('/') ? cgroupParent : `/${cgroupParent}`,
    ui,
  };
}

/**
 * The directives a SIGHUP reload may change (as dockerd: not the roots, hosts or group, which
 * need a restart). Returns the new configuration; the caller swaps it in.
 */
export function reloadDaemonConfig(current: DaemonConfig, flags: DaemonFlags, warn?: (msg: string) => void): DaemonConfig {
  const next = loadDaemonConfig(flags, warn);
  return {
    ...current,
    debug: next.debug,
    logLevel: next.logLevel,
    insecureRegistries: next.insecureRegistries,
    registryMirrors: next.registryMirrors,
    runtimes: next.runtimes,
    defaultRuntime: next.defaultRuntime,
  };
}
