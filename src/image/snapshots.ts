// Snapshots: the unpacked layers of images, keyed by chain ID so images that share a stack of
// layers share the directories, and the writable layers of containers, keyed by a caller's key.
//
// Layout under the snapshotter's root:
//   driver                 "overlay" or "vfs", fixed when the first snapshot is made
//   snapshots/<n>/fs       the snapshot's files: for overlay, only this layer's diff (whiteouts
//                          as 0:0 char devices, opaque dirs as trusted.overlay.opaque=y); for vfs,
//                          the whole tree (parent copied, then the layer applied)
//   snapshots/<n>/work     overlayfs workdir (active overlay snapshots only)
//   snapshots/<n>/meta.json  what the snapshot is (kind, chain ID or key, parent): its presence is
//                          the commit; it is written to a temp name, fsynced and renamed
//
// Crash consistency (kill -9): a directory without meta.json is an unfinished preparation and is
// deleted when the snapshotter opens; removal renames <n> to rm-<n> first, so a half-deleted
// snapshot is never visible. A snapshot is therefore either complete or absent. The layer files
// themselves are not fsynced (neither docker nor containerd do by default): after a power loss,
// a committed layer may lack data; `berth image prune -a` and a new pull repair it.
//
// One Snapshotter per root per process (the daemon's): the index and the per-chain-ID locks
// that make concurrent pulls of shared layers wait for each other live in memory.
//
// Short numeric directory names matter: overlayfs takes all lower dirs in one mount option, and
// the legacy mount(2) data is limited to one page (4096 bytes). mount() passes paths relative
// to snapshots/ with the mount process started there (containerd's trick), ~7 bytes per layer,
// which allows well over the 128 layers docker allows; mounts() returns absolute paths for
// callers that mount elsewhere, which fit about 100 layers under /var/lib/berth.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync,
  writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDigest } from './digest.ts';
import type { Digest } from './types.ts';
import type { LowerLayer, UnpackMode } from './unpack/index.ts';

export { chainId, chainIds } from './digest.ts';

const execFileP = promisify(execFile);
const SLASH = Buffer.from('/');

export type SnapshotDriver = 'overlay' | 'vfs';
export type SnapshotKind = 'committed' | 'active';

export interface SnapshotInfo {
  /** The directory number under snapshots/. */
  id: number;
  kind: SnapshotKind;
  /** Chain ID (committed) or the caller's key (active). */
  name: string;
  /** The chain ID of the parent, if any. */
  parent?: Digest;
  created: string;
  /** committed: the diff ID and uncompressed size of the layer applied on top of the parent. */
  diffId?: Digest;
  size?: number;
  /** overlay, committed: opaque directories of this layer (raw bytes as latin1), for later unpacks. */
  opaque?: string[];
  labels?: Record<string, string>;
}

/** How to mount a snapshot: one overlay, or a bind mount of a plain directory. */
export type MountSpec =
  | { type: 'overlay'; source: 'overlay'; lowerdirs: string[]; upperdir: string; workdir: string; options: string[] }
  | { type: 'bind'; source: string; options: string[] };

/** An extraction target for one layer: unpack into `dir` with `mode`, then commit() or abort(). */
export interface LayerTarget {
  readonly id: number;
  readonly chainId: Digest;
  readonly dir: string;
  readonly mode: UnpackMode;
  /** overlay: the layers below, topmost first (pass to applyLayer). */
  readonly lowers: LowerLayer[];
  /**
   * Publishes the snapshot; pass applyLayer's result (its diffId, size and opaqueDirs are kept).
   * `as`: publish under this chain ID instead (for a layer whose diff ID was known only once it
   * was written); if a snapshot of that chain exists already, this one is dropped and that one returned.
   */
  commit(layer?: { diffId?: Digest; size?: number; opaqueDirs?: string[] }, opts?: { as?: Digest }): Promise<SnapshotInfo>;
  abort(): Promise<void>;
}

export type SnapshotErrorCode = 'not-found' | 'exists' | 'has-children' | 'invalid' | 'mount' | 'driver' | 'busy';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
  constructor(readonly code: SnapshotErrorCode, message: string) {
    super(message);
  }
}

export interface SnapshotUsage {
  /** Bytes allocated on disk (st_blocks × 512, each inode once). */
  size: number;
  inodes: number;
}

export interface SnapshotterOptions {
  /** 'auto' (default): overlay when an overlay mount works in the root, else vfs. */
  driver?: SnapshotDriver | 'auto';
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

/** Writes a small file so that it is either absent or complete after any crash. */
function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(join(path, '..'), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Mount points at or below dir (from /proc/self/mountinfo), deepest first. */
function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return info.split('\n').map((l) => unescape(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** rm -rf that first unmounts anything mounted inside (so it never deletes through a mount). */
function removeTree(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

/** mount(8), asynchronously: a daemon starting containers must not stall its event loop on it. */
function runMount(args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(MOUNT_BIN, args, { cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) { resolve(); return; }
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string') { reject(new SnapshotError('mount', `cannot run mount: ${err.message}`)); return; }
      reject(new SnapshotError('mount', `mount ${args.join(' ')} failed: ${(stderr || stdout).trim() || `exit ${code}`}`));
    });
  });
}

// util-linux's, by path: a lookup through $PATH costs a failed exec per earlier PATH entry.
const MOUNT_BIN = existsSync('/usr/bin/mount') ? '/usr/bin/mount' : existsSync('/bin/mount') ? '/bin/mount' : 'mount';
const UMOUNT_BIN = existsSync('/usr/bin/umount') ? '/usr/bin/umount' : existsSync('/bin/umount') ? '/bin/umount' : 'umount';

/**
 * Whether overlayfs works with upper and work dirs inside `dir` (it does not on top of another
 * overlay, on some network filesystems, or without privileges): mounts a tiny one and unmounts it.
 */
export function probeOverlay(dir: string): { ok: true } | { ok: false; reason: string } {
  const probe = join(dir, `probe-${randomBytes(4).toString('hex')}`);
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(probe, d), { recursive: true });
    writeFileSync(join(probe, 'lower', 'f'), 'x');
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', 'lowerdir=lower,upperdir=upper,workdir=work', 'merged'], { cwd: probe, encoding: 'utf8' });
    if (r.error || r.status !== 0) return { ok: false, reason: (r.error?.message ?? r.stderr ?? '').trim() || `mount exit ${r.status}` };
    try {
      if (readFileSync(join(probe, 'merged', 'f'), 'utf8') !== 'x') return { ok: false, reason: 'the overlay does not show its lower dir' };
    } finally {
      spawnSync('umount', [join(probe, 'merged')], { stdio: 'ignore' });
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  } finally {
    removeTree(probe);
  }
}

export class Snapshotter {
  readonly root: string;
  readonly driver: SnapshotDriver;
  private readonly dir: string; // <root>/snapshots
  private readonly byId = new Map<number, SnapshotInfo>();
  private readonly committed = new Map<string, SnapshotInfo>();
  private readonly active = new Map<string, SnapshotInfo>();
  /** Chain IDs and keys being prepared in this process. */
  private readonly preparing = new Map<string, Promise<void>>();
  private nextId = 1;

  private constructor(root: string, driver: SnapshotDriver) {
    this.root = root;
    this.driver = driver;
    this.dir = join(root, 'snapshots');
  }

  static async open(root: string, opts: SnapshotterOptions = {}): Promise<Snapshotter> {
    const snapDir = join(root, 'snapshots');
    mkdirSync(snapDir, { recursive: true, mode: 0o700 });
    const driverFile = join(root, 'driver');
    let stored: SnapshotDriver | undefined;
    try {
      const text = readFileSync(driverFile, 'utf8').trim();
      if (text === 'overlay' || text === 'vfs') stored = text;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const wanted = opts.driver ?? 'auto';
    let driver: SnapshotDriver;
    if (stored) {
      if (wanted !== 'auto' && wanted !== stored) {
        throw new SnapshotError('driver', `the snapshots in ${root} were made by the ${stored} driver; cannot open them with ${wanted} (remove the directory to switch)`);
      }
      driver = stored;
    } else if (wanted === 'overlay') {
      const probe = probeOverlay(snapDir);
      if (!probe.ok) throw new SnapshotError('driver', `overlayfs does not work in ${snapDir}: ${probe.reason}`);
      driver = 'overlay';
    } else if (wanted === 'vfs') {
      driver = 'vfs';
    } else {
      driver = probeOverlay(snapDir).ok ? 'overlay' : 'vfs';
    }
    if (!stored) writeAtomic(driverFile, `${driver}\n`);
    const s = new Snapshotter(root, driver);
    s.load();
    return s;
  }

  /** Reads every committed meta.json and deletes what a crash left unfinished. */
  private load(): void {
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (!/^[1-9][0-9]*$/.test(name)) {
        // rm-<n> (interrupted removal), probe-* (interrupted probe), stray temp files.
        removeTree(path);
        continue;
      }
      const id = Number(name);
      this.nextId = Math.max(this.nextId, id + 1);
      let info: SnapshotInfo;
      try {
        info = JSON.parse(readFileSync(join(path, 'meta.json'), 'utf8')) as SnapshotInfo;
      } catch {
        removeTree(path); // never committed: an interrupted unpack or prepare
        continue;
      }
      info.id = id;
      this.byId.set(id, info);
      (info.kind === 'committed' ? this.committed : this.active).set(info.name, info);
    }
    // A snapshot whose parent vanished is unusable (possible only after manual deletion).
    for (const info of [...this.byId.values()]) {
      if (info.parent && !this.committed.has(info.parent)) {
        this.forget(info);
        removeTree(join(this.dir, String(info.id)));
      }
    }
  }

  private forget(info: SnapshotInfo): void {
    this.byId.delete(info.id);
    (info.kind === 'committed' ? this.committed : this.active).delete(info.name);
  }

  has(chainId: Digest): boolean {
    return this.committed.has(chainId);
  }

  /** A committed snapshot by chain ID, or an active one by key. */
  get(name: string): SnapshotInfo | undefined {
    return this.committed.get(name) ?? this.active.get(name);
  }

  list(): SnapshotInfo[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  /** The fs directory of a snapshot (for overlay: its diff only). */
  dirOf(name: string): string {
    return join(this.dir, String(this.require(name).id), 'fs');
  }

  private require(name: string): SnapshotInfo {
    const info = this.get(name);
    if (!info) throw new SnapshotError('not-found', `snapshot ${name} not found`);
    return info;
  }

  private requireParent(parent: Digest | null | undefined): SnapshotInfo | undefined {
    if (parent === null || parent === undefined) return undefined;
    const info = this.committed.get(parent);
    if (!info) throw new SnapshotError('not-found', `parent snapshot ${parent} not found (unpack the layers below it first)`);
    return info;
  }

  /** The committed chain from `info` down to the base layer (topmost first). */
  private chain(info: SnapshotInfo | undefined): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    for (let cur = info; cur; cur = cur.parent ? this.committed.get(cur.parent) : undefined) out.push(cur);
    return out;
  }

  /** Waits for a preparation of the same name in this process, then reserves the name. */
  private async reserve(name: string): Promise<() => void> {
    for (let p = this.preparing.get(name); p; p = this.preparing.get(name)) await p;
    let release!: () => void;
    this.preparing.set(name, new Promise<void>((resolve) => { release = resolve; }));
    return () => {
      this.preparing.delete(name);
      release();
    };
  }

  private allocate(): { id: number; path: string } {
    for (;;) {
      const id = this.nextId++;
      const path = join(this.dir, String(id));
      try {
        mkdirSync(path, { mode: 0o700 });
        return { id, path };
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
  }

  /** Copies a tree exactly (owners, modes, times, xattrs, devices, hard links), for vfs. */
  private async copyTree(from: string, to: string): Promise<void> {
    try {
      await execFileP('cp', ['-a', '--reflink=auto', `${from}/.`, `${to}/`], { maxBuffer: 1 << 20 });
    } catch (err) {
      throw new SnapshotError('invalid', `copying ${from} failed: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
    }
  }

  /**
   * Prepares the directory a layer is unpacked into, to become the committed snapshot `chainId`
   * on top of `parent`. Returns null if that snapshot exists (waiting first for a preparation of
   * the same chain ID elsewhere in this process).
   */
  async prepareLayer(chainId: Digest, parent?: Digest | null): Promise<LayerTarget | null> {
    parseDigest(chainId);
    if (parent) parseDigest(parent);
    const release = await this.reserve(chainId);
    let path: string | undefined;
    try {
      if (this.committed.has(chainId)) {
        release();
        return null;
      }
      const parentInfo = this.requireParent(parent);
      const alloc = this.allocate();
      path = alloc.path;
      const fs = join(path, 'fs');
      mkdirSync(fs, { mode: 0o755 });
      const lowers: LowerLayer[] = [];
      if (this.driver === 'vfs') {
        if (parentInfo) await this.copyTree(join(this.dir, String(parentInfo.id), 'fs'), fs);
      } else {
        for (const s of this.chain(parentInfo)) lowers.push({ dir: join(this.dir, String(s.id), 'fs'), opaque: s.opaque ?? [] });
      }
      const id = alloc.id;
      const snapPath = path;
      let finished = false;
      return {
        id,
        chainId,
        dir: fs,
        mode: this.driver === 'overlay' ? 'overlay' : 'apply',
        lowers,
        commit: async (layer = {}, opts = {}) => {
          if (finished) throw new SnapshotError('invalid', `snapshot ${chainId} was already committed or aborted`);
          finished = true;
          const name = opts.as ?? chainId;
          if (opts.as) parseDigest(opts.as);
          try {
            if (parent && !this.committed.has(parent)) {
              throw new SnapshotError('not-found', `parent snapshot ${parent} was removed while ${chainId} was being unpacked`);
            }
            const existing = name !== chainId ? this.committed.get(name) : undefined;
            if (existing) {
              removeTree(snapPath);
              return existing;
            }
            const info: SnapshotInfo = {
              id, kind: 'committed', name, parent: parent ?? undefined, created: new Date().toISOString(),
              diffId: layer.diffId, size: layer.size,
              opaque: this.driver === 'overlay' && layer.opaqueDirs?.length ? layer.opaqueDirs : undefined,
            };
            writeAtomic(join(snapPath, 'meta.json'), JSON.stringify(info));
            this.byId.set(id, info);
            this.committed.set(name, info);
            return info;
          } catch (err) {
            removeTree(snapPath);
            throw err;
          } finally {
            release();
          }
        },
        abort: async () => {
          if (finished) return;
          finished = true;
          try {
            removeTree(snapPath);
          } finally {
            release();
          }
        },
      };
    } catch (err) {
      if (path) removeTree(path);
      release();
      throw err;
    }
  }

  /**
   * Turns an unmounted active snapshot into the committed snapshot `chainId` in place (its
   * directory becomes the layer's: the overlay upper dir is the layer's diff, a vfs tree the whole
   * tree), for a caller that has just written that layer from it. Returns undefined, changing
   * nothing, when `chainId` exists already.
   */
  async commitActive(key: string, chainId: Digest, layer: { diffId?: Digest; size?: number; opaqueDirs?: string[] }): Promise<SnapshotInfo | undefined> {
    parseDigest(chainId);
    const release = await this.reserve(chainId);
    const releaseKey = await this.reserve(`active:${key}`);
    try {
      if (this.committed.has(chainId)) return undefined;
      const info = this.active.get(key);
      if (!info) throw new SnapshotError('not-found', `active snapshot ${key} not found`);
      if (info.parent && !this.committed.has(info.parent)) throw new SnapshotError('not-found', `parent snapshot ${info.parent} is gone`);
      const path = join(this.dir, String(info.id));
      const mounted = mountsUnder(path);
      if (mounted.length) throw new SnapshotError('busy', `snapshot ${key} is mounted (${mounted[0]})`);
      removeTree(join(path, 'work'));
      const committed: SnapshotInfo = {
        id: info.id, kind: 'committed', name: chainId, parent: info.parent, created: new Date().toISOString(),
        diffId: layer.diffId, size: layer.size,
        opaque: this.driver === 'overlay' && layer.opaqueDirs?.length ? layer.opaqueDirs : undefined,
      };
      writeAtomic(join(path, 'meta.json'), JSON.stringify(committed));
      this.active.delete(key);
      this.byId.set(info.id, committed);
      this.committed.set(chainId, committed);
      return committed;
    } finally {
      releaseKey();
      release();
    }
  }

  /** Creates a writable snapshot (a container's rootfs) on top of `parent`; returns how to mount it. */
  async prepareActive(key: string, parent?: Digest | null, opts: { labels?: Record<string, string> } = {}): Promise<MountSpec> {
    if (!key || key.includes('\n')) throw new SnapshotError('invalid', `invalid snapshot key ${JSON.stringify(key)}`);
    const release = await this.reserve(`active:${key}`);
    let path: string | undefined;
    try {
      if (this.active.has(key)) throw new SnapshotError('exists', `snapshot ${key} already exists`);
      const parentInfo = this.requireParent(parent);
      const alloc = this.allocate();
      path = alloc.path;
      mkdirSync(join(path, 'fs'), { mode: 0o755 });
      if (this.driver === 'overlay') {
        mkdirSync(join(path, 'work'), { mode: 0o700 });
      } else if (parentInfo) {
        await this.copyTree(join(this.dir, String(parentInfo.id), 'fs'), join(path, 'fs'));
      }
      const info: SnapshotInfo = {
        id: alloc.id, kind: 'active', name: key, parent: parent ?? undefined, created: new Date().toISOString(), labels: opts.labels,
      };
      writeAtomic(join(path, 'meta.json'), JSON.stringify(info));
      this.byId.set(info.id, info);
      this.active.set(key, info);
      return this.mounts(key);
    } catch (err) {
      if (path && !this.active.has(key)) removeTree(path);
      throw err;
    } finally {
      release();
    }
  }

  /** The mount for an active snapshot (absolute paths). */
  mounts(key: string): MountSpec {
    return this.mountSpec(key, (p) => join(this.dir, p));
  }

  private mountSpec(key: string, path: (rel: string) => string): MountSpec {
    const info = this.active.get(key);
    if (!info) throw new SnapshotError('not-found', `active snapshot ${key} not found`);
    const own = String(info.id);
    const parents = this.chain(info.parent ? this.committed.get(info.parent) : undefined);
    if (this.driver === 'vfs' || parents.length === 0) {
      return { type: 'bind', source: path(`${own}/fs`), options: ['rbind', 'rw'] };
    }
    const lowerdirs = parents.map((p) => path(`${p.id}/fs`));
    const upperdir = path(`${own}/fs`);
    const workdir = path(`${own}/work`);
    return {
      type: 'overlay', source: 'overlay', lowerdirs, upperdir, workdir,
      options: [`lowerdir=${lowerdirs.join(':')}`, `upperdir=${upperdir}`, `workdir=${workdir}`],
    };
  }

  /** Mounts an active snapshot at target (which must exist). */
  async mount(key: string, target: string): Promise<void> {
    const spec = this.mountSpec(key, (p) => p);
    if (spec.type === 'bind') {
      await runMount(['--bind', join(this.dir, spec.source), target]);
      return;
    }
    const data = spec.options.join(',');
    // One page of mount data, NUL included (legacy mount(2), which util-linux 2.38 uses).
    if (data.length >= 4096) {
      throw new SnapshotError('mount', `too many layers to mount (${spec.lowerdirs.length}): the overlay options exceed one page`);
    }
    await runMount(['-t', 'overlay', 'overlay', '-o', data, target], this.dir);
  }

  async unmount(target: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      execFile(UMOUNT_BIN, [target], { encoding: 'utf8' }, (err, _stdout, stderr) => {
        if (err) reject(new SnapshotError('mount', `umount ${target} failed: ${(stderr || '').trim() || err.message}`));
        else resolve();
      });
    });
  }

  /** Snapshots that name this one as parent. */
  children(name: string): SnapshotInfo[] {
    const info = this.require(name);
    if (info.kind !== 'committed') return [];
    return [...this.byId.values()].filter((s) => s.parent === info.name);
  }

  /** Removes a snapshot (active by key, committed by chain ID); refuses while others build on it. */
  async remove(name: string): Promise<void> {
    const release = await this.reserve(this.active.has(name) ? `active:${name}` : name);
    try {
      const info = this.require(name);
      const kids = this.children(name);
      if (kids.length) {
        throw new SnapshotError('has-children', `snapshot ${name} is the parent of ${kids.length} other snapshot${kids.length > 1 ? 's' : ''} (${kids.map((k) => k.name).slice(0, 3).join(', ')}); remove them first`);
      }
      const path = join(this.dir, String(info.id));
      const mounted = mountsUnder(path);
      if (mounted.length) throw new SnapshotError('busy', `snapshot ${name} has mounts inside it (${mounted[0]})`);
      const trash = join(this.dir, `rm-${info.id}`);
      renameSync(path, trash); // from here on the snapshot is gone, even if the delete is interrupted
      this.forget(info);
      removeTree(trash);
    } finally {
      release();
    }
  }

  /** Disk use of the snapshot's own directory (for overlay: the layer's diff or the container's upper). */
  async usage(name: string): Promise<SnapshotUsage> {
    const root = join(this.dir, String(this.require(name).id), 'fs');
    const seen = new Set<bigint>();
    let size = 0;
    let inodes = 0;
    // Buffers, not strings: names in a layer need not be UTF-8.
    const walk = (path: Buffer) => {
      const st = lstatSync(path, { bigint: true });
      if (!seen.has(st.ino)) {
        seen.add(st.ino);
        inodes++;
        size += Number(st.blocks) * 512;
      }
      if (st.isDirectory()) {
        for (const n of readdirSync(path, { encoding: 'buffer' })) walk(Buffer.concat([path, SLASH, n]));
      }
    };
    if (existsSync(root)) walk(Buffer.from(root));
    return { size, inodes };
  }
}
