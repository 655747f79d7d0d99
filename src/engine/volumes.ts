// Volumes and container mounts, with dockerd's rules and messages.
//
// Named volumes live where dockerd keeps them, <data-root>/volumes/<name>/_data (0701 on
// <name>, 0755 on _data); their metadata is in berth.db:
//   volumes           name, driver ("local"), labels and driver options (JSON, or NULL when the
//                     creator sent none: docker shows null then), creation time
//   volume_refs       which containers use which volume (`volume rm` of a used one is refused
//                     with "remove x: volume is in use - [ids]", prune and dangling= skip them)
//   container_mounts  each container's planned mounts with what inspect's MountPoint cannot
//                     carry (tmpfs options, nocopy / copy-up still pending, anonymous, bind
//                     recursion), so each start can build the same OCI mounts
// Anonymous volumes are named by 64 random hex digits and carry docker's
// "com.docker.volume.anonymous" label, which is what prune (without all=true) removes.
//
// The local driver's options type/device/o mount something (tmpfs, a bind, …) at _data while
// containers use the volume, as dockerd's; "size" needs quota support, which Berth lacks.
//
// Mount resolution follows dockerd's registerMountPoints: volumes-from first, then Binds (-v),
// then Mounts (--mount), each replacing what an earlier step put at the same destination
// (a repeat within Binds/Mounts, or against HostConfig.Tmpfs, is "Duplicate mount point"),
// then the image's VOLUMEs as anonymous volumes where nothing else is mounted.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { release as kernelRelease } from 'node:os';
import { join, posix } from 'node:path';
import type { DaemonContext } from '../api/context.ts';
import { registerMigrations } from './db.ts';
import type { FilterArgs } from './filters.ts';
import type { Mount } from '../runtime/spec-types.ts';
import type { DockerHostConfig, DockerMount, MountPoint } from './containers/types.ts';
import { copyUp } from './volume-copyup.ts';

registerMigrations('volumes', [
  {
    version: 1,
    name: 'volumes, volume references and container mounts',
    up: (db) => db.exec(`
      CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        labels TEXT,
        options TEXT,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE volume_refs (
        volume TEXT NOT NULL,
        container_id TEXT NOT NULL,
        PRIMARY KEY (volume, container_id)
      ) STRICT;
      CREATE INDEX volume_refs_container ON volume_refs(container_id);
      CREATE TABLE container_mounts (
        container_id TEXT NOT NULL,
        destination TEXT NOT NULL,
        position INTEGER NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (container_id, destination)
      ) STRICT;
    `),
  },
]);

export const DEFAULT_DRIVER = 'local';
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
const NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export type VolumeErrorCode = 'not-found' | 'conflict' | 'invalid' | 'system';

/** Errors with dockerd's wording; statusCode is what the API answers. */
export class VolumeError extends Error {
  override name = 'VolumeError';
  constructor(readonly code: VolumeErrorCode, message: string) {
    super(message);
  }
  get statusCode(): number {
    return { 'not-found': 404, conflict: 409, invalid: 400, system: 500 }[this.code];
  }
}

export interface VolumeRecord {
  name: string;
  driver: string;
  labels: Record<string, string> | null;
  options: Record<string, string> | null;
  /** ISO time. */
  createdAt: string;
}

/** docker's volume.Volume, in its JSON field order. */
export interface DockerVolume {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
  UsageData?: { RefCount: number; Size: number };
}

/** One mount of a container as planned at create (stored per container). */
export interface PlannedMount {
  point: MountPoint;
  /** No source in the request (image VOLUME, `-v /x`, --mount without source): rm -v removes it. */
  anonymous?: boolean;
  /** Copy the image's content in at the next start (cleared once done). */
  copyData?: boolean;
  /** An image VOLUME: a file at its path in the image is an error. */
  imageVolume?: boolean;
  /** -v binds: the host directory is created at start when missing. */
  createHostDir?: boolean;
  nonRecursive?: boolean;
  readOnlyNonRecursive?: boolean;
  readOnlyForceRecursive?: boolean;
  /** tmpfs: docker's option string (size=…,mode=…). */
  tmpfsData?: string;
  /** --mount volume-subpath. */
  subpath?: string;
}

export interface PlanRequest {
  containerId: string;
  hostConfig: DockerHostConfig;
  /** The image config's Volumes merged with the create request's Config.Volumes. */
  imageVolumes: Record<string, object> | null | undefined;
  /** The Mounts of another container (throws docker's "No such container: x" when unknown). */
  volumesFrom?: (idOrName: string) => MountPoint[];
}

// ---------------------------------------------------------------------------------------------
// Parsing: docker's linux mount parser
// ---------------------------------------------------------------------------------------------

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const PROPAGATION_MODES = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);
const DEFAULT_PROPAGATION = 'rprivate';

const invalidSpec = (raw: string): string => `invalid volume specification: '${raw}'`;
const invalid = (msg: string): VolumeError => new VolumeError('invalid', msg);

export function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = { rw: 0, label: 0, prop: 0, copy: 0, consistency: 0 };
  for (const o of mode.split(',')) {
    if (RW_MODES.has(o)) counts.rw++;
    else if (LABEL_MODES.has(o)) counts.label++;
    else if (PROPAGATION_MODES.has(o)) counts.prop++;
    else if (o === 'nocopy') counts.copy++;
    else if (CONSISTENCY_MODES.has(o)) counts.consistency++;
    else return false;
  }
  return Object.values(counts).every((n) => n <= 1);
}

function readWrite(mode: string): boolean {
  return validMountMode(mode) && !mode.split(',').includes('ro');
}

function propagationOf(mode: string): string | undefined {
  return mode.split(',').find((o) => PROPAGATION_MODES.has(o));
}

/** path.Clean for the absolute paths mount destinations are. */
function cleanPath(p: string): string {
  return posix.normalize(p).replace(/(.)\/+$/, '$1');
}

function mountConfigError(type: string, msg: string): VolumeError {
  return invalid(`invalid mount config for type "${type}": ${msg}`);
}

const TMPFS_OPTIONS = new Set(['exec', 'noexec']);

/** docker's ConvertTmpfsOptions: ro, mode, size (with the largest exact suffix), exec/noexec. */
export function tmpfsData(opts: DockerMount['TmpfsOptions'] | undefined, readOnly: boolean): string {
  const out: string[] = [];
  if (readOnly) out.push('ro');
  if (opts?.Mode) out.push(`mode=${opts.Mode.toString(8)}`);
  if (opts?.SizeBytes) {
    let size = opts.SizeBytes;
    let suffix = '';
    for (const [s, d] of [['g', 2 ** 30], ['m', 2 ** 20], ['k', 2 ** 10]] as const) {
      if (size % d === 0) { size /= d; suffix = s; break; }
    }
    out.push(`size=${size}${suffix}`);
  }
  for (const o of opts?.Options ?? []) {
    if (!Array.isArray(o) || o.length < 1 || o.length > 2) throw new Error('invalid option array length');
    if (!TMPFS_OPTIONS.has(o[0])) throw new Error(`invalid option: ${o[0]}`);
    out.push(o.length === 1 ? o[0] : `${o[0]}=${o[1]}`);
  }
  return out.join(',');
}

/** docker's validateMountConfig (Linux). */
export function validateMountConfig(m: DockerMount, checkBindSource: boolean): void {
  const type = m.Type;
  const extra = (f: string): VolumeError => mountConfigError(type, `field ${f} must not be specified`);
  if (type !== 'bind' && m.BindOptions) throw extra('BindOptions');
  if (type !== 'volume' && m.VolumeOptions) throw extra('VolumeOptions');
  if (type !== 'tmpfs' && m.TmpfsOptions) throw extra('TmpfsOptions');
  if (!m.Target) throw mountConfigError(type, 'field Target must not be empty');
  if (cleanPath(m.Target.replace(/\\/g, '/')) === '/') throw mountConfigError(type, "invalid specification: destination can't be '/'");
  if (!m.Target.replace(/\\/g, '/').startsWith('/')) throw mountConfigError(type, `invalid mount path: '${m.Target}' mount path must be absolute`);
  switch (type) {
    case 'bind': {
      if (!m.Source) throw mountConfigError(type, 'field Source must not be empty');
      const prop = m.BindOptions?.Propagation;
      if (prop && !PROPAGATION_MODES.has(prop)) throw mountConfigError(type, `invalid propagation mode: ${prop}`);
      if (!m.Source.startsWith('/')) throw mountConfigError(type, `invalid mount path: '${m.Source}' mount path must be absolute`);
      if (checkBindSource && !existsSync(m.Source) && !m.BindOptions?.CreateMountpoint) {
        throw mountConfigError(type, `bind source path does not exist: ${m.Source}`);
      }
      break;
    }
    case 'volume': {
      const sub = m.VolumeOptions?.Subpath;
      if (sub) {
        if (!m.Source) throw mountConfigError(type, 'must not set Subpath when using anonymous volumes');
        if (!isLocalPath(sub)) throw mountConfigError(type, 'subpath must be a relative path within the volume');
      }
      break;
    }
    case 'tmpfs':
      if (m.Source) throw extra('Source');
      try {
        tmpfsData(m.TmpfsOptions, Boolean(m.ReadOnly));
      } catch (e) {
        throw mountConfigError(type, (e as Error).message);
      }
      break;
    default:
      throw mountConfigError(type, 'mount type unknown');
  }
}

/** Go's filepath.IsLocal: relative, not empty, never climbing above its start. */
function isLocalPath(p: string): boolean {
  if (p === '' || p.startsWith('/')) return false;
  const n = posix.normalize(p);
  return n !== '..' && !n.startsWith('../');
}

export interface ParsedBind {
  spec: DockerMount;
  mode: string;
  /** Named volume (type volume with a source). */
  name?: string;
  copyData: boolean;
}

/** docker's ParseMountRaw for one -v / HostConfig.Binds entry. */
export function parseBind(raw: string, volumeDriver = ''): ParsedBind {
  // Go's strings.SplitN(raw, ":", 4).
  const parts: string[] = [];
  let rest = raw;
  while (parts.length < 3) {
    const i = rest.indexOf(':');
    if (i < 0) break;
    parts.push(rest.slice(0, i));
    rest = rest.slice(i + 1);
  }
  parts.push(rest);
  if (parts[0] === '') throw invalid(invalidSpec(raw));
  const spec: DockerMount = { Type: 'volume', Target: '' };
  let mode = '';
  switch (parts.length) {
    case 1:
      spec.Target = parts[0];
      break;
    case 2:
      // "/foo:rw" is a destination with a mode, which volumes cannot have.
      if (validMountMode(parts[1])) throw invalid(invalidSpec(raw));
      spec.Source = parts[0];
      spec.Target = parts[1];
      break;
    case 3:
      [spec.Source, spec.Target, mode] = parts;
      break;
    default:
      throw invalid(invalidSpec(raw));
  }
  if (!validMountMode(mode)) throw invalid(`invalid mode: ${mode}`);
  spec.Type = spec.Source?.startsWith('/') ? 'bind' : 'volume';
  spec.ReadOnly = !readWrite(mode);
  if (volumeDriver && spec.Type === 'volume') spec.VolumeOptions = { DriverConfig: { Name: volumeDriver } };
  const nocopy = mode.split(',').includes('nocopy');
  if (nocopy) spec.VolumeOptions = { ...(spec.VolumeOptions ?? {}), NoCopy: true };
  const prop = propagationOf(mode);
  if (prop) spec.BindOptions = { Propagation: prop };
  try {
    validateMountConfig(spec, false);
  } catch (e) {
    throw invalid(`${invalidSpec(raw)}: ${(e as Error).message}`);
  }
  return { spec, mode, name: spec.Type === 'volume' && spec.Source ? spec.Source : undefined, copyData: !nocopy };
}

/** docker's ParseVolumesFrom: "container[:ro|rw]". */
export function parseVolumesFrom(spec: string): { id: string; mode: string } {
  if (spec === '') throw invalid('volumes-from specification cannot be an empty string');
  const i = spec.indexOf(':');
  const id = i < 0 ? spec : spec.slice(0, i);
  const mode = i < 0 ? '' : spec.slice(i + 1);
  if (mode === '') return { id, mode: 'rw' };
  if (!validMountMode(mode) || propagationOf(mode) || mode.split(',').includes('nocopy')) throw invalid(`invalid mode: ${mode}`);
  return { id, mode };
}

// ---------------------------------------------------------------------------------------------
// OCI mount options
// ---------------------------------------------------------------------------------------------

const FLAG_GROUPS: Record<string, string> = {
  ro: 'rdonly', rw: 'rdonly', exec: 'noexec', noexec: 'noexec', suid: 'nosuid', nosuid: 'nosuid',
  dev: 'nodev', nodev: 'nodev', sync: 'sync', async: 'sync', atime: 'atime', noatime: 'atime',
  diratime: 'diratime', nodiratime: 'diratime', relatime: 'relatime', norelatime: 'relatime',
  strictatime: 'strictatime', nostrictatime: 'strictatime', dirsync: 'dirsync', mand: 'mand', nomand: 'mand',
  private: 'prop', rprivate: 'prop', shared: 'prop', rshared: 'prop', slave: 'prop', rslave: 'prop',
  unbindable: 'prop', runbindable: 'prop',
};
const TMPFS_DATA_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** docker's MergeTmpfsOptions: the last of each flag group and of each key=value wins. */
export function mergeTmpfsOptions(options: string[]): string[] {
  const seenFlags = new Set<string>();
  const seenData = new Set<string>();
  const out: string[] = [];
  for (let i = options.length - 1; i >= 0; i--) {
    const o = options[i];
    if (o === 'defaults' || o === '') continue;
    const group = FLAG_GROUPS[o];
    if (group) {
      if (!seenFlags.has(group)) { out.unshift(o); seenFlags.add(group); }
      continue;
    }
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    if (eq < 0 || !TMPFS_DATA_KEYS.has(key)) throw invalid(`invalid tmpfs option ["${eq < 0 ? o : `${key}" "${o.slice(eq + 1)}`}"]`);
    if (!seenData.has(key)) { out.unshift(o); seenData.add(key); }
  }
  return out;
}

/** Recursive read-only bind mounts need mount_setattr (Linux 5.12), as dockerd checks. */
function kernelHasRro(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease());
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > 5 || (maj === 5 && min >= 12);
}

/** The mountinfo line of the mount a host path is on (the longest mount point above it). */
function sourceMount(path: string): { mountPoint: string; optional: string[] } | undefined {
  let best: { mountPoint: string; optional: string[] } | undefined;
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
  for (const l of lines) {
    const f = l.split(' ');
    const mp = (f[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!(path === mp || mp === '/' || path.startsWith(`${mp}/`))) continue;
    if (best && best.mountPoint.length > mp.length) continue;
    const sep = f.indexOf('-', 6);
    best = { mountPoint: mp, optional: f.slice(6, sep < 0 ? undefined : sep) };
  }
  return best;
}

/**
 * The rootfs propagation a container needs for its bind mounts, as dockerd sets it: a shared
 * bind needs a shared rootfs and a shared source mount ("path … is mounted on … but it is not
 * a shared mount"), a slave bind an rslave rootfs and a shared or slave source. undefined:
 * leave the spec's default.
 */
export function rootfsPropagation(mounts: Mount[]): 'shared' | 'rslave' | undefined {
  let out: 'shared' | 'rslave' | undefined;
  for (const m of mounts) {
    if (m.type !== 'bind' || !m.source) continue;
    const prop = (m.options ?? []).find((o) => PROPAGATION_MODES.has(o));
    if (!prop || prop === 'private' || prop === 'rprivate') continue;
    let real = m.source;
    try { real = realpathSync(m.source); } catch { /* the runtime reports a missing source */ }
    const sm = sourceMount(real);
    const shared = sm?.optional.some((o) => o.startsWith('shared:')) ?? false;
    const slave = sm?.optional.some((o) => o.startsWith('master:')) ?? false;
    if (prop === 'shared' || prop === 'rshared') {
      if (!shared) throw new VolumeError('system', `path ${m.source} is mounted on ${sm?.mountPoint ?? '/'} but it is not a shared mount`);
      out = 'shared';
    } else {
      if (!shared && !slave) throw new VolumeError('system', `path ${m.source} is mounted on ${sm?.mountPoint ?? '/'} but it is not a shared or slave mount`);
      if (out !== 'shared') out = 'rslave';
    }
  }
  return out;
}

/** dockerd's sortMounts: fewer path components first, so /etc is mounted before /etc/x. */
function sortByDepth<T extends { destination: string }>(mounts: T[]): T[] {
  const depth = (d: string): number => (cleanPath(d).match(/\//g) ?? []).length;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Go's time.Format(time.RFC3339) in the daemon's local zone. */
export function rfc3339Local(iso: string): string {
  const d = new Date(iso);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p2(Math.floor(Math.abs(off) / 60))}:${p2(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${zone}`;
}

/** moby's directory.Size: regular files and symlinks, hard links once, directories not counted. */
export function directorySize(dir: string): number {
  const seen = new Set<bigint>();
  let size = 0;
  const walk = (d: string): void => {
    let names: string[];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      let st;
      try { st = lstatSync(p, { bigint: true }); } catch { continue; }
      if (st.isDirectory()) { walk(p); continue; }
      if (st.size === 0n || seen.has(st.ino)) continue;
      seen.add(st.ino);
      size += Number(st.size);
    }
  };
  walk(dir);
  return size;
}

/** Go's filters.Args.Match: an exact value, or a regular expression found in the text. */
function filterMatch(values: string[], text: string): boolean {
  if (values.length === 0) return true;
  for (const v of values) {
    if (v === text) return true;
    try {
      if (new RegExp(v).test(text)) return true;
    } catch { /* not a valid expression: exact only */ }
  }
  return false;
}

/** Mount points in this mount namespace (mountinfo's octal escapes undone). */
function mountPoints(): string[] {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
      .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  } catch {
    return [];
  }
}

function mountedAt(path: string): boolean {
  return mountPoints().includes(path);
}

function mountPointsUnder(dir: string): string[] {
  return mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
}

interface VolumeRow { name: string; driver: string; labels: string | null; options: string | null; created_at: string }

const toRecord = (r: VolumeRow): VolumeRecord => ({
  name: r.name,
  driver: r.driver,
  labels: r.labels === null ? null : JSON.parse(r.labels) as Record<string, string>,
  options: r.options === null ? null : JSON.parse(r.options) as Record<string, string>,
  createdAt: r.created_at,
});

const hasOptions = (v: VolumeRecord): boolean => v.options !== null && Object.keys(v.options).length > 0;

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

export interface CreateVolumeOptions {
  driver?: string;
  labels?: Record<string, string> | null;
  options?: Record<string, string> | null;
}

export class VolumeService {
  /** <data-root>/volumes */
  readonly root: string;
  private pruneRunning = false;

  private constructor(private readonly daemon: DaemonContext) {
    this.root = join(daemon.config.dataRoot, 'volumes');
  }

  /** Opens the store (from the volumes API module's init) and sets daemon.services.volumes. */
  static async open(daemon: DaemonContext): Promise<VolumeService> {
    daemon.db.migrate('volumes');
    const svc = new VolumeService(daemon);
    mkdirSync(svc.root, { recursive: true, mode: 0o701 });
    svc.restore();
    daemon.services.volumes = svc;
    return svc;
  }

  private get sql() {
    return this.daemon.db.sqlite;
  }

  /** The host directory a volume's data is in. */
  dataPath(name: string): string {
    return join(this.root, name, '_data');
  }

  // --- volumes ----------------------------------------------------------------------------

  /** By name; throws "get x: no such volume". */
  get(name: string): VolumeRecord {
    const v = this.find(name);
    if (!v) throw new VolumeError('not-found', `get ${name}: no such volume`);
    return v;
  }

  find(name: string): VolumeRecord | undefined {
    const row = this.sql.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as VolumeRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  all(): VolumeRecord[] {
    return (this.sql.prepare('SELECT * FROM volumes ORDER BY name').all() as VolumeRow[]).map(toRecord);
  }

  /** Container ids referencing a volume. */
  references(name: string): string[] {
    return (this.sql.prepare('SELECT container_id FROM volume_refs WHERE volume = ? ORDER BY rowid').all(name) as Array<{ container_id: string }>).map((r) => r.container_id);
  }

  private refCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.sql.prepare('SELECT volume, COUNT(*) AS n FROM volume_refs GROUP BY volume').all() as Array<{ volume: string; n: number }>) out.set(r.volume, r.n);
    return out;
  }

  /**
   * Creates a volume, or returns the existing one of that name (unchanged, as dockerd). An
   * empty name makes an anonymous volume.
   */
  create(name: string, opts: CreateVolumeOptions = {}): { volume: VolumeRecord; created: boolean } {
    const created: string[] = [];
    try {
      const r = this.daemon.db.transaction(() => this.createInTx(name, opts, created));
      if (r.created) this.daemon.events.log('volume', 'create', { ID: r.volume.name, Attributes: { driver: r.volume.driver } });
      return r;
    } catch (e) {
      for (const n of created) rmSync(join(this.root, n), { recursive: true, force: true });
      throw e;
    }
  }

  private createInTx(name: string, opts: CreateVolumeOptions, created: string[]): { volume: VolumeRecord; created: boolean } {
    let labels = opts.labels ?? null;
    if (name === '') {
      name = randomBytes(32).toString('hex');
      labels = { ...(labels ?? {}), [ANONYMOUS_LABEL]: '' };
    }
    const driver = opts.driver || DEFAULT_DRIVER;
    const existing = this.find(name);
    if (existing) {
      if (opts.driver && opts.driver !== existing.driver) {
        throw new VolumeError('conflict', `create ${name}: volume name must be unique: driver '${existing.driver}' already has volume '${name}'`);
      }
      return { volume: existing, created: false };
    }
    if (driver !== DEFAULT_DRIVER) {
      throw new VolumeError('not-found', `create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    }
    if (name.length === 1) throw invalid(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
    if (!NAME_PATTERN.test(name)) {
      throw invalid(`create ${name}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only ${JSON.stringify(NAME_CHARS)} are allowed. If you intended to pass a host directory, use absolute path`);
    }
    this.validateOptions(name, opts.options ?? null);
    const dir = join(this.root, name);
    // A directory without a record (left by a crash between mkdir and commit) is reused, and
    // then never removed on rollback: it may hold data.
    if (this.makeDir(dir, 0o701)) created.push(name);
    this.makeDir(join(dir, '_data'), 0o755);
    const v: VolumeRecord = {
      name, driver, labels, options: opts.options ?? null, createdAt: new Date().toISOString(),
    };
    this.sql.prepare('INSERT INTO volumes (name, driver, labels, options, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(v.name, v.driver, v.labels === null ? null : JSON.stringify(v.labels), v.options === null ? null : JSON.stringify(v.options), v.createdAt);
    return { volume: v, created: true };
  }

  /** mkdir that accepts an existing directory; true when it made one. */
  private makeDir(path: string, mode: number): boolean {
    try {
      mkdirSync(path, { mode });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && lstatSync(path).isDirectory()) return false;
      throw new VolumeError('system', `error while creating volume path '${path}': ${(e as Error).message}`);
    }
  }

  /**
   * Volume directories without a record become volumes again (as dockerd's local driver lists
   * what it finds on disk), without labels or options.
   */
  private restore(): void {
    const insert = this.sql.prepare('INSERT OR IGNORE INTO volumes (name, driver, labels, options, created_at) VALUES (?, ?, NULL, NULL, ?)');
    for (const name of readdirSync(this.root)) {
      if (!NAME_PATTERN.test(name) || this.find(name)) continue;
      const data = join(this.root, name, '_data');
      try {
        if (!lstatSync(data).isDirectory()) continue;
        insert.run(name, DEFAULT_DRIVER, lstatSync(join(this.root, name)).ctime.toISOString());
        this.daemon.log.info('restored volume found on disk', { volume: name });
      } catch { /* not a volume directory */ }
    }
  }

  /** The local driver's options: type, device, o (mounted at _data while in use) and size. */
  private validateOptions(name: string, options: Record<string, string> | null): void {
    if (!options || Object.keys(options).length === 0) return;
    const err = (m: string): VolumeError => invalid(`create ${name}: ${m}`);
    for (const k of Object.keys(options)) {
      if (!['type', 'o', 'device', 'size'].includes(k)) throw err(`invalid option: ${JSON.stringify(k)}`);
    }
    if (options.size !== undefined) {
      if (!/^\d+(\.\d+)?\s*([kKmMgGtTpP]([iI]?[bB])?|[bB])?$/.test(options.size)) throw err(`invalid size: '${options.size}'`);
      if (parseFloat(options.size) > 0) throw err('quota size requested but no quota support');
    }
    const mandatory: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };
    for (const [k, needs] of Object.entries(mandatory)) {
      if (options[k] === undefined) continue;
      for (const n of needs) if (options[n] === undefined) throw err(`missing required option: ${JSON.stringify(n)}`);
    }
  }

  /** docker's volume JSON (inspect, list; df adds UsageData). */
  toDocker(v: VolumeRecord, usage?: { refCount: number; size: number }): DockerVolume {
    const out: DockerVolume = {
      CreatedAt: rfc3339Local(v.createdAt),
      Driver: v.driver,
      Labels: v.labels,
      Mountpoint: this.dataPath(v.name),
      Name: v.name,
      Options: v.options,
      Scope: 'local',
    };
    if (usage) out.UsageData = { RefCount: usage.refCount, Size: usage.size };
    return out;
  }

  /** GET /volumes filters: dangling, name, driver, label. */
  list(filters: FilterArgs): VolumeRecord[] {
    filters.validate(['dangling', 'name', 'driver', 'label']);
    const dangling = filters.boolValue('dangling');
    const refs = this.refCounts();
    return this.all().filter((v) => {
      if (filters.contains('driver') && !filters.get('driver').includes(v.driver)) return false;
      if (filters.contains('name') && !filterMatch(filters.get('name'), v.name)) return false;
      if (!filters.matchKVList('label', v.labels ?? undefined)) return false;
      if (dangling !== undefined && (refs.get(v.name) ?? 0) > 0 === dangling) return false;
      return true;
    });
  }

  /** DELETE /volumes/{name}: refused while containers use it; force ignores a missing volume. */
  remove(name: string, opts: { force?: boolean } = {}): void {
    const v = this.find(name);
    if (!v) {
      if (opts.force) return;
      throw new VolumeError('not-found', `get ${name}: no such volume`);
    }
    const refs = this.references(name);
    if (refs.length > 0) throw new VolumeError('conflict', `remove ${name}: volume is in use - [${refs.join(', ')}]`);
    this.unmountVolume(v);
    const dir = join(this.root, name);
    // Never recurse into something still mounted there (a bind of host data would go with it).
    const busy = mountPointsUnder(dir);
    if (busy.length > 0) throw new VolumeError('system', `remove ${name}: ${busy[0]} is still mounted`);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if (!opts.force) throw new VolumeError('system', `remove ${name}: error removing volume path '${dir}': ${(e as Error).message}`);
    }
    this.sql.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    this.daemon.events.log('volume', 'destroy', { ID: name, Attributes: { driver: v.driver } });
  }

  /** POST /volumes/prune: unused local volumes without options; anonymous ones unless all=true. */
  prune(filters: FilterArgs): { VolumesDeleted: string[]; SpaceReclaimed: number } {
    if (this.pruneRunning) throw new VolumeError('conflict', 'a prune operation is already running');
    this.pruneRunning = true;
    try {
      filters.validate(['label', 'label!', 'all']);
      const all = filters.get('all');
      if (all.length > 1) throw invalid(`invalid filter 'all=${all.join(' ')}': only one value is expected`);
      let everything = false;
      if (all.length === 1) {
        const b = parseGoBool(all[0]);
        if (b === undefined) throw invalid(`invalid filter 'all': strconv.ParseBool: parsing ${JSON.stringify(all[0])}: invalid syntax`);
        everything = b;
      }
      const refs = this.refCounts();
      const deleted: string[] = [];
      let space = 0;
      for (const v of this.all()) {
        if (v.driver !== DEFAULT_DRIVER || hasOptions(v) || (refs.get(v.name) ?? 0) > 0) continue;
        const labels = v.labels ?? {};
        if (!everything && !Object.hasOwn(labels, ANONYMOUS_LABEL)) continue;
        if (!filters.matchKVList('label', labels)) continue;
        if (filters.contains('label!') && filters.matchKVList('label!', labels)) continue;
        const size = directorySize(this.dataPath(v.name));
        try {
          this.remove(v.name);
        } catch (e) {
          this.daemon.log.warn('could not remove volume', { volume: v.name, error: (e as Error).message });
          continue;
        }
        space += size;
        deleted.push(v.name);
      }
      this.daemon.events.log('volume', 'prune', { ID: '', Attributes: { reclaimed: String(space) } });
      return { VolumesDeleted: deleted, SpaceReclaimed: space };
    } finally {
      this.pruneRunning = false;
    }
  }

  /** /system/df: local volumes without options, with size and reference count. */
  diskUsage(): DockerVolume[] {
    const refs = this.refCounts();
    return this.all()
      .filter((v) => v.driver === DEFAULT_DRIVER && !hasOptions(v))
      .map((v) => {
        const p = this.dataPath(v.name);
        return this.toDocker(v, { refCount: refs.get(v.name) ?? 0, size: existsSync(p) ? directorySize(p) : -1 });
      });
  }

  // --- driver options: mounting at _data ----------------------------------------------------

  private ensureMounted(v: VolumeRecord): void {
    const o = v.options ?? {};
    if (!o.type && !o.device) return;
    const path = this.dataPath(v.name);
    if (mountedAt(path)) return;
    const args = ['-t', o.type!, ...(o.o ? ['-o', o.o] : []), o.device!, path];
    const r = spawnSync('mount', args, { encoding: 'utf8' });
    if (r.status !== 0) {
      let msg = (r.stderr || r.error?.message || `mount exited with ${r.status}`).trim().replace(/^mount: /, '');
      const pw = /(?:^|,)password=([^,]*)/.exec(o.o ?? '');
      if (pw?.[1]) msg = msg.split(pw[1]).join('********');
      throw new VolumeError('system', `error while mounting volume '${path}': failed to mount local volume: ${msg}`);
    }
  }

  private unmountVolume(v: VolumeRecord): void {
    const o = v.options ?? {};
    if (!o.type && !o.device) return;
    const path = this.dataPath(v.name);
    if (!mountedAt(path)) return;
    const r = spawnSync('umount', [path], { encoding: 'utf8' });
    if (r.status !== 0 && mountedAt(path)) throw new VolumeError('system', `error unmounting volume ${v.name}: ${(r.stderr || '').trim()}`);
  }

  // --- container mounts -------------------------------------------------------------------

  /**
   * At container create: validates, creates named/anonymous volumes, takes references and
   * returns inspect's Mounts. Throws docker's errors; on error nothing is left created. A
   * container whose create fails later must be given to release(id, true).
   */
  planMounts(req: PlanRequest): MountPoint[] {
    const createdDirs: string[] = [];
    const createdVolumes: VolumeRecord[] = [];
    const hc = req.hostConfig;
    const tmpfs = hc.Tmpfs ?? {};
    let result: PlannedMount[];
    try {
      result = this.daemon.db.transaction(() => {
        const plan = new Map<string, PlannedMount>();
        const taken = new Set<string>();
        const ensure = (name: string, o: CreateVolumeOptions): VolumeRecord => {
          const r = this.createInTx(name, o, createdDirs);
          if (r.created) createdVolumes.push(r.volume);
          return r.volume;
        };

        // 1. --volumes-from
        for (const spec of hc.VolumesFrom ?? []) {
          const { id, mode } = parseVolumesFrom(spec);
          if (!req.volumesFrom) throw invalid(`--volumes-from is not supported here: ${spec}`);
          for (const m of req.volumesFrom(id)) {
            const point: MountPoint = { ...m, Mode: '', RW: m.RW && readWrite(mode) };
            let anonymous = false;
            if (m.Type === 'volume' && m.Name) {
              const v = this.get(m.Name);
              point.Source = this.dataPath(v.name);
              anonymous = Object.hasOwn(v.labels ?? {}, ANONYMOUS_LABEL);
            }
            const extra = m.Type === 'tmpfs' ? { tmpfsData: point.RW ? '' : 'ro' } : {};
            plan.set(cleanPath(m.Destination), { point, anonymous, copyData: false, ...extra });
          }
        }

        // 2. Binds (-v)
        for (const raw of hc.Binds ?? []) {
          const b = parseBind(raw, hc.VolumeDriver ?? '');
          const dest = cleanPath(b.spec.Target);
          if (taken.has(dest) || Object.hasOwn(tmpfs, dest)) throw invalid(`Duplicate mount point: ${dest}`);
          let pm: PlannedMount;
          if (b.spec.Type === 'volume') {
            const v = ensure(b.name ?? '', { driver: hc.VolumeDriver || undefined });
            pm = {
              point: { Type: 'volume', Name: v.name, Source: this.dataPath(v.name), Destination: dest, Driver: v.driver, Mode: b.mode || 'z', RW: !b.spec.ReadOnly, Propagation: '' },
              anonymous: b.name === undefined,
              copyData: b.copyData,
            };
          } else {
            pm = {
              point: { Type: 'bind', Source: cleanPath(b.spec.Source!), Destination: dest, Mode: b.mode, RW: !b.spec.ReadOnly, Propagation: b.spec.BindOptions?.Propagation ?? DEFAULT_PROPAGATION },
              createHostDir: true,
            };
          }
          taken.add(dest);
          plan.set(dest, pm);
        }

        // 3. Mounts (--mount)
        for (const cfg of hc.Mounts ?? []) {
          validateMountConfig(cfg, true);
          const dest = cleanPath(cfg.Target);
          if (taken.has(dest)) throw invalid(`Duplicate mount point: ${cfg.Target}`);
          let pm: PlannedMount;
          switch (cfg.Type) {
            case 'volume': {
              const vo = cfg.VolumeOptions;
              const v = ensure(cfg.Source ?? '', {
                // dockerd ignores HostConfig.VolumeDriver for --mount.
                driver: vo?.DriverConfig?.Name || undefined,
                options: vo?.DriverConfig?.Options ?? null,
                labels: vo?.Labels ?? null,
              });
              pm = {
                point: { Type: 'volume', Name: v.name, Source: this.dataPath(v.name), Destination: dest, Driver: v.driver, Mode: 'z', RW: !cfg.ReadOnly, Propagation: '' },
                anonymous: !cfg.Source,
                copyData: !vo?.NoCopy,
                ...(vo?.Subpath ? { subpath: vo.Subpath } : {}),
              };
              break;
            }
            case 'bind':
              pm = {
                point: { Type: 'bind', Source: cleanPath(cfg.Source!), Destination: dest, Mode: '', RW: !cfg.ReadOnly, Propagation: cfg.BindOptions?.Propagation || DEFAULT_PROPAGATION },
                createHostDir: Boolean(cfg.BindOptions?.CreateMountpoint),
                ...(cfg.BindOptions?.NonRecursive ? { nonRecursive: true } : {}),
                ...((cfg.BindOptions as { ReadOnlyNonRecursive?: boolean } | undefined)?.ReadOnlyNonRecursive ? { readOnlyNonRecursive: true } : {}),
                ...((cfg.BindOptions as { ReadOnlyForceRecursive?: boolean } | undefined)?.ReadOnlyForceRecursive ? { readOnlyForceRecursive: true } : {}),
              };
              break;
            case 'tmpfs':
              pm = {
                point: { Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: !cfg.ReadOnly, Propagation: '' },
                tmpfsData: tmpfsData(cfg.TmpfsOptions, Boolean(cfg.ReadOnly)),
              };
              break;
            default:
              throw mountConfigError(cfg.Type, 'mount type unknown');
          }
          taken.add(dest);
          plan.set(dest, pm);
        }

        // 4. The image's VOLUMEs where nothing is mounted yet.
        for (const spec of Object.keys(req.imageVolumes ?? {})) {
          const dest = cleanPath(spec);
          if (plan.has(dest) || Object.hasOwn(tmpfs, dest)) continue;
          if (!dest.startsWith('/')) throw invalid(`invalid mount path: '${spec}' mount path must be absolute`);
          const v = ensure('', { driver: hc.VolumeDriver || undefined });
          plan.set(dest, {
            point: { Type: 'volume', Name: v.name, Source: this.dataPath(v.name), Destination: dest, Driver: v.driver, Mode: '', RW: true, Propagation: '' },
            anonymous: true,
            copyData: true,
            imageVolume: true,
          });
        }

        const mounts = [...plan.values()];
        const addRef = this.sql.prepare('INSERT OR IGNORE INTO volume_refs (volume, container_id) VALUES (?, ?)');
        const addMount = this.sql.prepare('INSERT OR REPLACE INTO container_mounts (container_id, destination, position, spec) VALUES (?, ?, ?, ?)');
        mounts.forEach((m, i) => {
          if (m.point.Type === 'volume' && m.point.Name) addRef.run(m.point.Name, req.containerId);
          addMount.run(req.containerId, m.point.Destination, i, JSON.stringify(m));
        });
        return mounts;
      });
    } catch (e) {
      for (const n of createdDirs) rmSync(join(this.root, n), { recursive: true, force: true });
      throw e;
    }
    for (const v of createdVolumes) this.daemon.events.log('volume', 'create', { ID: v.name, Attributes: { driver: v.driver } });
    return result.map((m) => m.point);
  }

  /** The container's planned mounts (in planning order). */
  plannedMounts(containerId: string): PlannedMount[] {
    return (this.sql.prepare('SELECT spec FROM container_mounts WHERE container_id = ? ORDER BY position').all(containerId) as Array<{ spec: string }>)
      .map((r) => JSON.parse(r.spec) as PlannedMount);
  }

  /**
   * At each start: the OCI mounts for the container's MountPoints (sorted so parents come
   * first), after creating missing -v host directories, mounting option volumes and copying
   * the image's content into fresh volumes (once, from `rootfs`, the container's mounted
   * rootfs on the host). The caller drops its default mounts at these destinations.
   */
  async ociMounts(containerId: string, mounts: MountPoint[], rootfs: string): Promise<Mount[]> {
    const planned = new Map(this.plannedMounts(containerId).map((p) => [p.point.Destination, p]));
    const out: Mount[] = [];
    const rro = kernelHasRro();
    for (const mp of mounts) {
      const p: PlannedMount = planned.get(mp.Destination) ?? { point: mp };
      const dest = mp.Destination;
      if (mp.Type === 'tmpfs') {
        const data = p.tmpfsData ?? (mp.RW ? '' : 'ro');
        out.push({ destination: dest, type: 'tmpfs', source: 'tmpfs', options: mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', DEFAULT_PROPAGATION, ...(data ? data.split(',') : [])]) });
        continue;
      }
      let source = mp.Source;
      if (mp.Type === 'volume') {
        const v = this.get(mp.Name ?? '');
        // Recreated if someone deleted it on the host: the runtime needs a source to bind.
        this.makeDir(join(this.root, v.name), 0o701);
        this.makeDir(this.dataPath(v.name), 0o755);
        this.ensureMounted(v);
        source = this.dataPath(v.name);
        if (p.copyData) {
          copyUp(rootfs, dest, source, { refuseFile: p.imageVolume });
          this.sql.prepare('UPDATE container_mounts SET spec = ? WHERE container_id = ? AND destination = ?')
            .run(JSON.stringify({ ...p, copyData: false }), containerId, dest);
        }
        if (p.subpath) source = this.subpathSource(source, p.subpath);
        this.daemon.events.log('volume', 'mount', {
          ID: v.name,
          Attributes: { driver: v.driver, container: containerId, destination: dest, 'read/write': String(mp.RW), propagation: mp.Propagation },
        });
      } else if (p.createHostDir) {
        try {
          mkdirSync(source, { recursive: true, mode: 0o755 });
        } catch (e) {
          // A file there is fine (a file bind); anything else is dockerd's error.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST' && code !== 'ENOTDIR') throw new VolumeError('system', `error while creating mount source path '${source}': ${(e as Error).message}`);
        }
      } else if (!existsSync(source)) {
        throw mountConfigError('bind', `bind source path does not exist: ${source}`);
      }
      const options = [p.nonRecursive ? 'bind' : 'rbind'];
      if (!mp.RW) {
        if (p.readOnlyNonRecursive && p.readOnlyForceRecursive) throw invalid('mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive');
        if (p.readOnlyForceRecursive && !rro) throw new VolumeError('system', 'recursive read-only mounts need Linux 5.12 or later');
        options.push(!p.readOnlyNonRecursive && rro ? 'rro' : 'ro');
      }
      if (mp.Propagation) options.push(mp.Propagation);
      out.push({ destination: dest, type: 'bind', source, options });
    }
    return sortByDepth(out);
  }

  /** A --mount volume-subpath inside the volume, refusing symlinks on the way (they could lead out). */
  private subpathSource(volumeDir: string, subpath: string): string {
    let cur = volumeDir;
    for (const c of posix.normalize(subpath).split('/')) {
      if (c === '' || c === '.') continue;
      cur = join(cur, c);
      let st;
      try {
        st = lstatSync(cur);
      } catch {
        throw new VolumeError('not-found', `cannot access path ${cur}: no such file or directory`);
      }
      if (st.isSymbolicLink()) throw invalid(`subpath ${subpath} must not go through a symlink in the volume (${cur})`);
    }
    return cur;
  }

  /** At container rm: drops its references; removeAnonymous (rm -v, --rm) removes its anonymous volumes unless others use them. */
  async release(containerId: string, removeAnonymous: boolean): Promise<void> {
    const planned = this.plannedMounts(containerId);
    const names = (this.sql.prepare('SELECT volume FROM volume_refs WHERE container_id = ?').all(containerId) as Array<{ volume: string }>).map((r) => r.volume);
    this.daemon.db.transaction(() => {
      this.sql.prepare('DELETE FROM volume_refs WHERE container_id = ?').run(containerId);
      this.sql.prepare('DELETE FROM container_mounts WHERE container_id = ?').run(containerId);
    });
    const anonymous = new Set(planned.filter((p) => p.anonymous && p.point.Name).map((p) => p.point.Name!));
    for (const name of names) {
      const v = this.find(name);
      if (!v) continue;
      if (removeAnonymous && anonymous.has(name)) {
        try {
          this.remove(name);
          continue;
        } catch (e) {
          // Still used by another container (--volumes-from): not an error, as in dockerd.
          if (!(e instanceof VolumeError && e.code === 'conflict')) this.daemon.log.warn('could not remove anonymous volume', { volume: name, error: (e as Error).message });
        }
      }
      if (this.references(name).length === 0) {
        try { this.unmountVolume(v); } catch (e) { this.daemon.log.warn('could not unmount volume', { volume: name, error: (e as Error).message }); }
      }
    }
  }
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(s)) return false;
  return undefined;
}

declare module '../api/context.ts' {
  interface Services { volumes: VolumeService }
}
