// Rootless operation: berth-runtime run by an unprivileged user, as runc does it.
//
// Two separate questions, as in runc:
//  * rootless EUID (euid != 0): the container needs a user namespace; id maps other than the
//    caller's own id go through the setuid helpers newuidmap/newgidmap (Debian: uidmap), which
//    check them against /etc/subuid and /etc/subgid; the caller's own gid alone is written
//    directly, which the kernel only allows after "deny" in /proc/<pid>/setgroups.
//  * rootless cgroups (euid != 0, or euid 0 inside a user namespace; `--rootless true|false|auto`):
//    cgroups the caller cannot write are skipped when no limits are asked for, a writable or
//    delegated cgroup (systemd's Delegate=yes on cgroup v2) is used when there is one, and
//    asking for limits without one is an error. Device rules need privileges no such caller has
//    (eBPF on v2, devices.allow on v1): the container only gets the device nodes it is given,
//    as bind mounts of the host's (a user namespace cannot mknod), and the host's file
//    permissions apply to them.
// Everything here is policy; the C stage only pauses after clone so that Node can run the helpers.
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants as fsc, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, posix } from 'node:path';
import { detectLayout, loadCgroup, openCgroup } from './cgroups/index.ts';
import type { CgroupHierarchy, CgroupManager, CgroupMountInfo, SavedCgroup } from './cgroups/index.ts';
import { ConfigError, RuntimeError } from './errors.ts';
import { namespacesOf } from './spec.ts';
import type { IdMapping, LinuxResources, Spec } from './spec-types.ts';

const euid = (): number => process.geteuid?.() ?? 0;
const egid = (): number => process.getegid?.() ?? 0;

/** runc's RootlessEUID: not root in this user namespace. */
export function rootlessEuid(): boolean {
  return euid() !== 0;
}

/** Whether this process runs in a user namespace other than the initial one. */
export function runningInUserNs(): boolean {
  try {
    const lines = readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n');
    const f = lines[0]?.trim().split(/\s+/) ?? [];
    return !(lines.length === 1 && f[0] === '0' && f[1] === '0' && f[2] === '4294967295');
  } catch {
    return false;
  }
}

/** `--rootless true|false|auto` (runc's flag): whether cgroup permission problems are tolerated. */
export function parseRootlessFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === 'auto') return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new RuntimeError(`--rootless: expected true, false or auto, got "${value}"`);
}

/** runc's shouldUseRootlessCgroupManager for the cgroupfs driver: given, else euid != 0 or in a user ns. */
export function rootlessCgroups(flag: boolean | undefined): boolean {
  if (flag !== undefined) return flag;
  return rootlessEuid() || runningInUserNs();
}

/** `list`'s OWNER (as runc): the name of the user owning a container's state dir, else "#<uid>". */
export function stateOwner(dir: string): string {
  let uid: number;
  try {
    uid = statSync(dir).uid;
  } catch {
    return '';
  }
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0];
    }
  } catch { /* no passwd */ }
  return `#${uid}`;
}

// ---- the state root -----------------------------------------------------------------------------

/**
 * The default --root: $XDG_RUNTIME_DIR/berth for an unprivileged caller (runc: $XDG_RUNTIME_DIR/runc);
 * root in the initial user namespace keeps `systemRoot` even when XDG_RUNTIME_DIR is set (as runc).
 */
export function defaultStateRoot(systemRoot: string): { root: string; xdg: boolean } {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg && honourXdgRuntimeDir()) return { root: join(xdg, 'berth'), xdg: true };
  return { root: systemRoot, xdg: false };
}

function honourXdgRuntimeDir(): boolean {
  if (rootlessEuid()) return true;
  if (!runningInUserNs()) return false;
  // euid 0 in a user namespace (rootless podman's): unless that is the real root's session
  return process.env.USER !== 'root';
}

/** Creates $XDG_RUNTIME_DIR/berth 0700 with the sticky bit (XDG: files without it may be pruned). */
export function prepareXdgStateRoot(root: string): void {
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    chmodSync(root, 0o1700);
  } catch (err) {
    throw new RuntimeError(`cannot create the state directory ${root} (from $XDG_RUNTIME_DIR): ${(err as Error).message}; ` +
      'the path in $XDG_RUNTIME_DIR must be writable by the user (or pass --root)');
  }
}

/** A state root an unprivileged caller cannot create: say what to do instead of EACCES. */
export function checkStateRootUsable(root: string): void {
  if (!rootlessEuid()) return;
  let dir = root;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    accessSync(dir, fsc.W_OK | fsc.X_OK);
  } catch {
    throw new RuntimeError(`the state directory ${root} is not writable by uid ${euid()}: as an unprivileged user set ` +
      'XDG_RUNTIME_DIR (the state then goes to $XDG_RUNTIME_DIR/berth) or pass --root <dir>');
  }
}

// ---- `spec --rootless` --------------------------------------------------------------------------

/**
 * Turns a default spec into one an unprivileged user can run (runc's specconv.ToRootless): no
 * network namespace of its own (it could not be configured), a user namespace mapping the caller's
 * euid/egid to 0, /sys bound from the host (sysfs can only be mounted with a network namespace
 * owned by the user namespace), no uid=/gid= mount options, no cgroup resources.
 */
export function toRootless(spec: Spec): void {
  const linux = (spec.linux ??= {});
  linux.namespaces = (linux.namespaces ?? []).filter((n) => n.type !== 'network' && n.type !== 'user');
  linux.namespaces.push({ type: 'user' });
  linux.uidMappings = [{ containerID: 0, hostID: euid(), size: 1 }];
  linux.gidMappings = [{ containerID: 0, hostID: egid(), size: 1 }];
  spec.mounts = (spec.mounts ?? []).map((m) => {
    if (posix.normalize(m.destination) === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (!m.options) return m;
    return { ...m, options: m.options.filter((o) => !o.startsWith('uid=') && !o.startsWith('gid=')) };
  });
  delete linux.resources;
}

// ---- id maps ------------------------------------------------------------------------------------

/** What the plan's ID_MAPS carries, and what Node maps itself with the helpers in between. */
export interface IdMapPlan {
  /** Written by the stage (empty: not by it). */
  uidMap: string;
  gidMap: string;
  /** "deny" before a direct gid map of the caller's own gid; "" leaves setgroups alone. */
  setgroups: '' | 'deny';
  /** Mapped by newuidmap/newgidmap at the stage's MAPS point (null: written directly). */
  helperUid: IdMapping[] | null;
  helperGid: IdMapping[] | null;
}

function mapText(maps: IdMapping[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function ownIdOnly(maps: IdMapping[], id: number): boolean {
  return maps.length === 1 && maps[0].size === 1 && maps[0].hostID === id;
}

/**
 * Rootless EUID: the own-id single mappings are written directly (as the kernel allows an
 * unprivileged owner to); anything else goes through newuidmap/newgidmap, which apply the
 * administrator's /etc/subuid and /etc/subgid (runc makes the same choice).
 */
export function planIdMaps(uidMappings: IdMapping[], gidMappings: IdMapping[]): IdMapPlan {
  const uidDirect = ownIdOnly(uidMappings, euid());
  const gidDirect = ownIdOnly(gidMappings, egid());
  const plan: IdMapPlan = {
    uidMap: uidDirect ? mapText(uidMappings) : '',
    gidMap: gidDirect ? mapText(gidMappings) : '',
    setgroups: gidDirect ? 'deny' : '',
    helperUid: uidDirect ? null : uidMappings,
    helperGid: gidDirect ? null : gidMappings,
  };
  if (plan.helperUid) helperPath('newuidmap', 'linux.uidMappings');
  if (plan.helperGid) helperPath('newgidmap', 'linux.gidMappings');
  return plan;
}

/** Looked up in PATH from here (as runc does), then in /usr/bin; missing → a ConfigError that says why it is needed. */
function helperPath(name: 'newuidmap' | 'newgidmap', field: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/bin'];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, fsc.X_OK);
      if (statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  throw new ConfigError(`${field}: mapping more than your own ${name === 'newuidmap' ? 'uid' : 'gid'} (${name === 'newuidmap' ? euid() : egid()}) ` +
    `as an unprivileged user needs ${name} (Debian/Ubuntu package "uidmap", Fedora "shadow-utils") and entries in ` +
    `${name === 'newuidmap' ? '/etc/subuid' : '/etc/subgid'}`);
}

/** Runs newuidmap/newgidmap against the (paused) child; a refusal becomes an error with the helper's words. */
export function runIdMapHelpers(pid: number, plan: IdMapPlan): void {
  const run = (name: 'newuidmap' | 'newgidmap', maps: IdMapping[], field: string): void => {
    const args = [String(pid), ...maps.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(helperPath(name, field), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.error) throw new RuntimeError(`${field}: running ${name}: ${r.error.message}`);
    if (r.status !== 0) {
      const why = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().replace(/\s*\n\s*/g, '; ') || `exit status ${r.status ?? `signal ${r.signal}`}`;
      const file = name === 'newuidmap' ? '/etc/subuid' : '/etc/subgid';
      throw new RuntimeError(`${field}: ${name} ${args.slice(1).join(' ')} refused: ${why} (each range must be your own ` +
        `${name === 'newuidmap' ? 'uid' : 'gid'} with size 1 or lie inside your entries in ${file})`);
    }
  };
  if (plan.helperUid) run('newuidmap', plan.helperUid, 'linux.uidMappings');
  if (plan.helperGid) run('newgidmap', plan.helperGid, 'linux.gidMappings');
}

// ---- the checks runc makes for a rootless EUID ----------------------------------------------------

function mapped(maps: IdMapping[] | undefined, id: number): boolean {
  return (maps ?? []).some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * What an unprivileged caller's spec must satisfy before anything runs (runc: validate/rootless.go
 * and its refusal of additional groups when setgroups is denied).
 */
export function checkRootlessSpec(spec: Spec, maps: IdMapPlan | undefined): void {
  const ns = namespacesOf(spec);
  if (!ns.has('user')) {
    throw new ConfigError(`linux.namespaces: running as an unprivileged user (uid ${euid()}) needs a user namespace; ` +
      'add {"type": "user"} with uidMappings/gidMappings, or write a spec with "berth-runtime spec --rootless"');
  }
  const ownUserNs = !ns.get('user')!.path;
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    for (const o of m.options ?? []) {
      const match = /^(uid|gid)=(\d+)$/.exec(o);
      if (!match || !ownUserNs) continue;
      const maps = match[1] === 'uid' ? spec.linux?.uidMappings : spec.linux?.gidMappings;
      if (!mapped(maps, Number(match[2]))) {
        throw new ConfigError(`mounts[${i}].options: "${o}" names a ${match[1]} that the user namespace does not map; ` +
          'a rootless container can only use mapped ids (remove the option, as "spec --rootless" does)');
      }
    }
  }
  if (maps?.setgroups === 'deny' && (spec.process?.user.additionalGids ?? []).length > 0) {
    throw new ConfigError('process.user.additionalGids: cannot set additional groups in a rootless container whose gid mapping ' +
      'is only your own gid (setgroups is denied there); map subordinate gids (/etc/subgid, newgidmap) or remove them');
  }
  if (spec.process?.oomScoreAdj !== undefined && spec.process.oomScoreAdj < currentOomScoreAdj()) {
    throw new ConfigError(`process.oomScoreAdj: ${spec.process.oomScoreAdj} is below this process's own ` +
      `(${currentOomScoreAdj()}); lowering it needs CAP_SYS_RESOURCE, which an unprivileged user does not have`);
  }
}

function currentOomScoreAdj(): number {
  try {
    return Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
  } catch {
    return 0;
  }
}

// ---- cgroups --------------------------------------------------------------------------------------

const isSet = (v: unknown, key = ''): boolean => {
  if (v === undefined || v === null) return false;
  if (typeof v === 'number') return v !== 0 || key === 'swappiness';
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v !== '';
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.entries(v).some(([k, x]) => isSet(x, k));
  return true;
};

/** The controllers (v1 names; "unified" for linux.resources.unified) that the resources ask for. Devices are not counted. */
export function requestedControllers(r: LinuxResources | undefined): string[] {
  if (!r) return [];
  const out = new Set<string>();
  if (isSet(r.memory)) out.add('memory');
  const { cpus, mems, ...cpu } = r.cpu ?? {};
  if (isSet(cpu)) out.add('cpu');
  if (isSet(cpus) || isSet(mems)) out.add('cpuset');
  if (isSet(r.pids)) out.add('pids');
  if (isSet(r.blockIO)) out.add('blkio');
  if (isSet(r.hugepageLimits)) out.add('hugetlb');
  if (isSet(r.network?.classID)) out.add('net_cls');
  if (isSet(r.network?.priorities)) out.add('net_prio');
  if (isSet(r.rdma)) out.add('rdma');
  if (isSet(r.unified)) out.add('unified');
  return [...out];
}

/** The v2 name of a v1 controller. */
const V2_NAME: Record<string, string> = { blkio: 'io' };

function canWrite(p: string): boolean {
  try {
    accessSync(p, fsc.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether this process could make `dir` (mkdir -p below `mountpoint`) and move itself into it. */
function canCreate(dir: string, mountpoint: string, unified: boolean, ownDir: string | undefined): boolean {
  let d = dir;
  while (!existsSync(d) && d !== mountpoint && d.startsWith(`${mountpoint}/`)) d = dirname(d);
  if (!existsSync(d)) return false;
  try {
    accessSync(d, fsc.W_OK | fsc.X_OK);
  } catch {
    return false;
  }
  if (d === dir && !canWrite(join(dir, 'cgroup.procs'))) return false;
  // v2 moves a process only with write access to cgroup.procs of the common ancestor of both cgroups.
  if (unified && ownDir) {
    let common = ownDir;
    while (common !== mountpoint && !(`${dir}/`).startsWith(`${common}/`)) common = dirname(common);
    if (!canWrite(join(common, 'cgroup.procs'))) return false;
  }
  return true;
}

/** This process's own cgroup directory in a hierarchy (undefined when outside the mounted part). */
function ownCgroupDir(h: CgroupHierarchy): string | undefined {
  const cur = h.current.replace(/ \(deleted\)$/, '');
  if (h.root === '/') return posix.join(h.mountpoint, cur);
  if (cur === h.root) return h.mountpoint;
  if (cur.startsWith(`${h.root}/`)) return posix.join(h.mountpoint, cur.slice(h.root.length));
  return undefined;
}

/**
 * A cgroup subtree delegated to this user (systemd's Delegate=yes: user@<uid>.service on v2): the
 * topmost ancestor of our own cgroup that we own and whose cgroup.procs we can write.
 */
function delegatedRoot(h: CgroupHierarchy): string | undefined {
  const own = ownCgroupDir(h);
  if (!own) return undefined;
  const mine = (d: string): boolean => {
    try {
      return statSync(d).uid === euid() && canWrite(d) && canWrite(join(d, 'cgroup.procs'));
    } catch {
      return false;
    }
  };
  if (own === h.mountpoint || !mine(own)) return undefined;
  let top = own;
  while (dirname(top) !== h.mountpoint && dirname(top).startsWith(`${h.mountpoint}/`) && mine(dirname(top))) top = dirname(top);
  return top;
}

export interface RootlessCgroup {
  /** The container's cgroup, if any hierarchy can be used. */
  cgroup?: CgroupManager;
  /** The resources to apply: the spec's without device rules (they need privileges). */
  resources: LinuxResources;
  /** What a "cgroup" mount inside the container shows: its cgroups, and our own where it has none. */
  mounts: CgroupMountInfo;
}

/**
 * The rootless cgroup manager's choice. Per hierarchy: the usual place (the default /berth/<id>,
 * or linux.cgroupsPath) when we may create it there; else, without a cgroupsPath, a subtree
 * delegated to us (<delegated>/berth/<id>); else nothing. Limits for a controller left without a
 * cgroup are an error; so is a cgroupsPath that no hierarchy lets us create (as runc).
 */
export function openRootlessCgroup(spec: Spec, id: string, resources: LinuxResources): RootlessCgroup {
  const { devices: _devices, ...rest } = resources;
  const layout = detectLayout();
  const explicit = !!spec.linux?.cgroupsPath;
  const base = openCgroup({ containerId: id, cgroupsPath: spec.linux?.cgroupsPath, layout, devicesHandledExternally: true }).toJSON();
  const kept: SavedCgroup['dirs'] = [];
  const view: SavedCgroup['dirs'] = [];
  const refused: string[] = [];
  for (const entry of base.dirs) {
    const h = layout.hierarchies.find((x) => x.mountpoint === entry.mountpoint);
    const own = h ? ownCgroupDir(h) : undefined;
    if (canCreate(entry.dir, entry.mountpoint, !!entry.unified, own)) {
      kept.push(entry);
      view.push(entry);
      continue;
    }
    const deleg = !explicit && h ? delegatedRoot(h) : undefined;
    const dir = deleg ? posix.join(deleg, 'berth', id) : undefined;
    if (dir && canCreate(dir, entry.mountpoint, !!entry.unified, own)) {
      const e = { ...entry, dir, owned: true };
      kept.push(e);
      view.push(e);
      continue;
    }
    refused.push(entry.dir);
    if (own) view.push({ ...entry, dir: own, created: false, owned: false });
  }
  const who = `uid ${euid()}`;
  const handles = (e: SavedCgroup['dirs'][number], c: string): boolean => base.version === 2 || (c === 'unified'
    ? !!e.unified : e.controllers.includes(c) || (!!e.unified && e.controllers.includes(V2_NAME[c] ?? c)));
  const missing = requestedControllers(rest).filter((c) => !kept.some((e) => handles(e, c)));
  if (missing.length) {
    const names = missing.map((c) => (base.version === 2 ? V2_NAME[c] ?? c : c));
    const dirs = base.dirs.filter((e) => missing.some((c) => handles(e, c))).map((e) => e.dir);
    throw new ConfigError(`linux.resources: the ${names.join(', ')} limit${names.length > 1 ? 's need' : ' needs'} a cgroup, ` +
      `but this rootless container (${who}) cannot create one: ${dirs.join(', ') || 'no cgroup hierarchy'} ` +
      `${dirs.length > 1 ? 'are' : 'is'} not writable and no cgroup is delegated to this user ` +
      '(cgroup v2 with systemd: Delegate=yes for user@.service). Remove these limits, or run as root');
  }
  if (explicit && kept.length === 0) {
    throw new ConfigError(`linux.cgroupsPath: "${spec.linux!.cgroupsPath}" cannot be created by ${who} (${refused.join(', ')}); ` +
      'a rootless container needs no cgroupsPath when no cgroup is writable by the user (as runc)');
  }
  const cgroup = kept.length ? loadCgroup({ version: base.version, dirs: kept }, { devicesHandledExternally: true }) : undefined;
  return { cgroup, resources: rest, mounts: mountInfo(base.version, view) };
}

/** A "cgroup" mount's contents, as the managers' mounts() (no manager: a dir may be a hierarchy's root). */
function mountInfo(version: 1 | 2, dirs: SavedCgroup['dirs']): CgroupMountInfo {
  // As runc's fallback: a user namespace cannot mount cgroup2 over the cgroup2 that /sys (bound
  // from the host) already has at /sys/fs/cgroup; a bind of the container's cgroup dir shows the same.
  if (version === 2) {
    return { version, entries: dirs.slice(0, 1).map((d) => ({ name: '', hostDir: d.dir, fsOptions: '', fsType: 'cgroup2' })), symlinks: [], bindOnly: true };
  }
  const info: CgroupMountInfo = { version, entries: [], symlinks: [] };
  for (const d of dirs) {
    const name = posix.basename(d.mountpoint);
    info.entries.push({ name, hostDir: d.dir, fsOptions: d.unified ? '' : d.controllers.join(','), fsType: d.unified ? 'cgroup2' : 'cgroup' });
    if (!d.unified && name.includes(',')) {
      for (const part of name.split(',')) if (part && part !== name) info.symlinks.push({ name: part, target: name });
    }
  }
  return info;
}

// ---- create -------------------------------------------------------------------------------------

export interface RootlessSetup {
  /** Rootless EUID with a new user namespace: the plan's ID_MAPS (compile's `idMaps`). */
  idMaps?: { uidMap: string; gidMap: string; setgroups: '' | 'deny'; external: boolean };
  /** For the stage's MAPS point: runs newuidmap/newgidmap against the child. */
  onIdMaps?: (pid: number) => void;
  /** Rootless cgroups: the cgroup (if any), its resources, and compile's cgroup inputs. */
  cgroups?: RootlessCgroup & { planInputs: { cgroupProcs: string[]; cgroupMounts?: CgroupMountInfo } };
}

/**
 * What create does differently for an unprivileged caller (undefined: nothing). `flag` is
 * --rootless (undefined = auto); `resources` the cgroup resources create would apply.
 */
export function rootlessSetup(spec: Spec, id: string, flag: boolean | undefined, resources: LinuxResources): RootlessSetup | undefined {
  const byEuid = rootlessEuid();
  // Real root (euid 0 in the initial user namespace) never needs the rootless cgroup manager.
  const byCgroups = rootlessCgroups(flag) && (byEuid || runningInUserNs());
  if (!byEuid && !byCgroups) return undefined;
  const setup: RootlessSetup = {};
  if (byEuid) {
    const ns = namespacesOf(spec);
    const newUserNs = ns.has('user') && !ns.get('user')!.path;
    const maps = newUserNs && spec.linux?.uidMappings?.length && spec.linux?.gidMappings?.length
      ? planIdMaps(spec.linux.uidMappings, spec.linux.gidMappings) : undefined;
    checkRootlessSpec(spec, maps);
    if (maps) {
      const external = !!(maps.helperUid || maps.helperGid);
      setup.idMaps = { uidMap: maps.uidMap, gidMap: maps.gidMap, setgroups: maps.setgroups, external };
      if (external) setup.onIdMaps = (pid) => runIdMapHelpers(pid, maps);
    }
  }
  if (byCgroups) {
    const rc = openRootlessCgroup(spec, id, resources);
    const needsMountInfo = (spec.mounts ?? []).some((m) => m.type === 'cgroup' || m.type === 'cgroup2');
    setup.cgroups = { ...rc, planInputs: { cgroupProcs: rc.cgroup?.procsFiles() ?? [], cgroupMounts: needsMountInfo ? rc.mounts : undefined } };
  }
  return setup;
}
