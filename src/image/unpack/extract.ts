// Writes tar entries into a directory with synchronous fs calls (measured several times faster
// than an async call chain per file: one thread-pool round trip per syscall dominates otherwise).
//
// Confinement without openat2: the tree under `root` is written only by this extractor (a fresh
// snapshot directory), so it is enough to check each path once. Names are cleaned lexically (a
// `..` that would leave the root is refused), every parent component is lstat'ed before the first
// write beneath it and must be a real directory (a symlink parent is refused, never followed),
// and the final component is created with O_EXCL|O_NOFOLLOW (or link/symlink/mkdir, which never
// follow), after unlinking whatever was there, as tar does. Verified directories are cached and
// the cache is dropped for anything this layer removes or replaces.
//
// Paths are raw bytes held in latin1 strings (one char per byte) and turned into Buffers for
// each fs call, so names that are not UTF-8 survive byte for byte.
//
// Two modes:
//   overlay: the target is the layer's own overlayfs upper ("diff") directory. Whiteouts become
//            what overlayfs reads: a 0:0 character device for `.wh.<name>`, the xattr
//            trusted.overlay.opaque=y for `.wh..wh..opq`. Parents missing from the layer are
//            created with the metadata of the lower layer's directory, so the merged view keeps it.
//   apply:   the target already holds the parent's tree (copying snapshotter); whiteouts delete
//            the lower entries they name, an opaque marker deletes the lower contents of its dir.
// In both modes a whiteout only hides what lies below the layer, never an entry of the same layer
// (OCI image-spec, layer.md "Whiteouts").
import {
  closeSync, constants as C, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeSync, chmodSync, chownSync, utimesSync,
  copyFileSync, type BigIntStats, type Stats,
} from 'node:fs';
import { FsOpsBatch } from './fsops.ts';
import { LayerError, displayName } from './errors.ts';
import type { TarEntry, TarSink, TarTime } from './tar.ts';

export type UnpackMode = 'overlay' | 'apply';

/** A lower layer of an overlay stack (for hard links to, and directory metadata of, lower entries). */
export interface LowerLayer {
  /** The layer's diff directory. */
  dir: string;
  /** Its opaque directories (relative paths, raw bytes as latin1), as returned by applyLayer. */
  opaque?: ReadonlySet<string> | readonly string[];
}

export interface ExtractOptions {
  root: string;
  mode: UnpackMode;
  /** overlay mode: the layers below, topmost first. */
  lowers?: readonly LowerLayer[];
  /** Apply the entries' uid/gid (default: when running as root). */
  chown?: boolean;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const CREATE_FILE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

interface Lower {
  dir: string;
  dirBytes: string;
  opaque: ReadonlySet<string>;
}

interface LowerHit {
  layer: Lower;
  st: Stats;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export class Extractor implements TarSink {
  private readonly rootBytes: string; // root as raw bytes (latin1), '/'-terminated
  private readonly mode: UnpackMode;
  private readonly chown: boolean;
  private readonly lowers: Lower[];
  /** Directories known to be real (not symlinks) and inside the root; '' is the root. */
  private readonly dirOK = new Set<string>(['']);
  /** Every path this layer created (entries and their implicit parents excluded). */
  private readonly written = new Set<string>();
  /** Paths the helper batch will create (mknod): nothing may touch them before it runs. */
  private readonly pendingCreate = new Set<string>();
  /** Paths the helper batch will modify (xattrs, times): they must not be removed before it runs. */
  private readonly pendingMeta = new Set<string>();
  private readonly batch = new FsOpsBatch();
  private readonly dirTimes = new Map<string, { atime: TarTime; mtime: TarTime }>();
  readonly opaqueDirs = new Set<string>();
  private fd = -1;
  private current: { rel: string; entry: TarEntry } | undefined;
  entries = 0;
  /**
   * Bytes of content this layer adds as docker measures a layer directory (regular files' sizes
   * plus symlink target lengths; a hardlink adds nothing), for image and history sizes.
   */
  contentSize = 0;

  constructor(private readonly opts: ExtractOptions) {
    this.rootBytes = `${Buffer.from(opts.root, 'utf8').toString('latin1').replace(/\/+$/, '')}/`;
    this.mode = opts.mode;
    this.chown = opts.chown ?? process.getuid?.() === 0;
    this.lowers = (opts.lowers ?? []).map((l) => ({
      dir: l.dir,
      dirBytes: `${Buffer.from(l.dir, 'utf8').toString('latin1').replace(/\/+$/, '')}/`,
      opaque: l.opaque instanceof Set ? l.opaque : new Set(l.opaque ?? []),
    }));
  }

  private abs(rel: string): Buffer {
    return Buffer.from(rel === '' ? this.rootBytes : this.rootBytes + rel, 'latin1');
  }

  private lstat(rel: string): Stats | undefined {
    return lstatSync(this.abs(rel), { throwIfNoEntry: false });
  }

  // ---- the sink ------------------------------------------------------------------------------

  entry(e: TarEntry): void {
    this.entries++;
    const rel = clean(e.name, 'entry');
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const dirRel = slash < 0 ? '' : rel.slice(0, slash);
    if (base.startsWith(WHITEOUT)) {
      if (base === OPAQUE) this.opaque(dirRel, e);
      else if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return; // aufs bookkeeping (.wh..wh.plnk, …): not content
      else this.whiteout(dirRel, base.slice(WHITEOUT.length), e);
      return;
    }
    try {
      switch (e.type) {
        case 'dir': this.makeDir(rel, e); break;
        case 'file': this.openFile(rel, e); this.contentSize += e.size; break;
        case 'symlink': this.makeSymlink(rel, e); this.contentSize += Buffer.byteLength(e.linkname, 'latin1'); break;
        case 'link': this.makeHardlink(rel, e); break;
        case 'char':
        case 'block':
        case 'fifo': this.makeNode(rel, e); break;
      }
    } catch (err) {
      throw this.fsError(err, e);
    }
    this.written.add(rel);
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return;
    let off = 0;
    try {
      while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    } catch (err) {
      throw this.fsError(err, this.current!.entry);
    }
  }

  entryEnd(): void {
    if (this.fd < 0) return;
    const { rel, entry: e } = this.current!;
    const fd = this.fd;
    this.fd = -1;
    this.current = undefined;
    try {
      if (this.chown) fchownSync(fd, e.uid, e.gid);
      // After chown: chown clears setuid/setgid.
      fchmodSync(fd, e.mode);
      if (e.mtime.nsec === 0 && (e.atime === undefined || e.atime.nsec === 0)) {
        futimesSync(fd, (e.atime ?? e.mtime).sec, e.mtime.sec);
      } else {
        this.queueTimes(rel, e);
      }
    } catch (err) {
      throw this.fsError(err, e);
    } finally {
      closeSync(fd);
    }
    this.queueXattrs(rel, e);
  }

  /** Runs the queued helper operations and sets directory times (last: every write above changes them). */
  finish(): void {
    this.abort();
    if (!this.batch.empty || [...this.dirTimes.values()].some((t) => t.mtime.nsec !== 0 || t.atime.nsec !== 0)) {
      for (const [rel, t] of this.dirTimes) this.batch.times(rel, t.atime, t.mtime);
      this.runBatch();
    } else {
      for (const [rel, t] of this.dirTimes) utimesSync(this.abs(rel), t.atime.sec, t.mtime.sec);
    }
    this.dirTimes.clear();
  }

  /** Closes what is open; the caller discards the directory. */
  abort(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* already failing */ }
      this.fd = -1;
    }
  }

  // ---- entries -------------------------------------------------------------------------------

  private makeDir(rel: string, e: TarEntry): void {
    if (rel !== '') {
      this.ensureParents(rel, e);
      this.touchPending(rel);
      try {
        mkdirSync(this.abs(rel), 0o700);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
        const st = this.lstat(rel)!;
        // An existing directory is merged into (tar and docker do the same); anything else is replaced.
        if (!st.isDirectory()) {
          this.remove(rel, st);
          mkdirSync(this.abs(rel), 0o700);
        }
      }
    }
    const path = this.abs(rel);
    if (this.chown) chownSync(path, e.uid, e.gid);
    chmodSync(path, e.mode);
    this.dirOK.add(rel);
    this.dirTimes.set(rel, { atime: e.atime ?? e.mtime, mtime: e.mtime });
    this.queueXattrs(rel, e);
  }

  private openFile(rel: string, e: TarEntry): void {
    if (rel === '') throw new LayerError('conflict', `entry ${displayName(e.name)}: a file cannot replace the layer root`);
    this.ensureParents(rel, e);
    this.touchPending(rel);
    const path = this.abs(rel);
    let fd: number;
    try {
      fd = openSync(path, CREATE_FILE, 0o600);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      this.remove(rel, this.lstat(rel)!);
      fd = openSync(path, CREATE_FILE, 0o600);
    }
    this.fd = fd;
    this.current = { rel, entry: e };
  }

  private makeSymlink(rel: string, e: TarEntry): void {
    if (rel === '') throw new LayerError('conflict', `entry ${displayName(e.name)}: a symlink cannot replace the layer root`);
    if (e.linkname === '') throw new LayerError('format', `entry ${displayName(e.name)}: symlink with an empty target`);
    this.ensureParents(rel, e);
    this.touchPending(rel);
    const path = this.abs(rel);
    // The target is kept verbatim, absolute or not: it is resolved inside the container later.
    const target = Buffer.from(e.linkname, 'latin1');
    try {
      symlinkSync(target, path);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      this.remove(rel, this.lstat(rel)!);
      symlinkSync(target, path);
    }
    if (this.chown) lchownSync(path, e.uid, e.gid);
    if (e.mtime.nsec === 0 && (e.atime === undefined || e.atime.nsec === 0)) {
      lutimesSync(path, (e.atime ?? e.mtime).sec, e.mtime.sec);
    } else {
      this.queueTimes(rel, e);
    }
    this.queueXattrs(rel, e);
  }

  private makeHardlink(rel: string, e: TarEntry): void {
    const target = clean(e.linkname, 'hardlink', e.name);
    if (target === '') throw new LayerError('hardlink', `hard link ${displayName(e.name)} points at the layer root`);
    if (target === rel) return; // some writers emit a file as a link to itself: nothing to do
    let st = this.existing(target, e);
    if (st === undefined && this.mode === 'overlay') st = this.copyUp(target, e);
    if (st === undefined) {
      throw new LayerError('hardlink', `hard link ${displayName(e.name)} -> ${displayName(e.linkname)}: the target does not exist in the layer or below it`);
    }
    if (st.isDirectory()) throw new LayerError('hardlink', `hard link ${displayName(e.name)} -> ${displayName(e.linkname)}: the target is a directory`);
    if (this.mode === 'overlay' && isWhiteout(st)) {
      throw new LayerError('hardlink', `hard link ${displayName(e.name)} -> ${displayName(e.linkname)}: the target was deleted by this layer`);
    }
    this.ensureParents(rel, e);
    this.touchPending(rel);
    try {
      linkSync(this.abs(target), this.abs(rel));
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      const old = this.lstat(rel)!;
      const src = this.lstat(target)!;
      if (old.ino === src.ino && old.dev === src.dev) return; // already that file
      this.remove(rel, old);
      linkSync(this.abs(target), this.abs(rel));
    }
  }

  private makeNode(rel: string, e: TarEntry): void {
    if (rel === '') throw new LayerError('conflict', `entry ${displayName(e.name)}: a device cannot replace the layer root`);
    this.ensureParents(rel, e);
    this.touchPending(rel);
    const st = this.lstat(rel);
    if (st) this.remove(rel, st);
    const type = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
    this.batch.mknod(rel, type | e.mode, e.devmajor, e.devminor);
    if (this.chown) this.batch.chown(rel, e.uid, e.gid);
    this.batch.chmod(rel, e.mode); // again after chown, which clears setuid/setgid
    this.batch.times(rel, e.atime ?? e.mtime, e.mtime);
    this.pendingCreate.add(rel);
    this.queueXattrs(rel, e);
  }

  // ---- whiteouts -----------------------------------------------------------------------------

  private whiteout(dirRel: string, name: string, e: TarEntry): void {
    if (name === '' || name === '.' || name === '..') {
      throw new LayerError('escape', `entry ${displayName(e.name)}: whiteout of ${JSON.stringify(name)} is not a file name`);
    }
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    if (this.written.has(rel)) return; // hides only lower layers' entries
    try {
      if (this.mode === 'apply') {
        if (!this.parentsExist(rel, e)) return; // nothing below to delete
        this.touchPending(rel);
        const st = this.lstat(rel);
        if (st) this.remove(rel, st);
      } else {
        this.ensureParents(rel, e);
        this.touchPending(rel);
        const st = this.lstat(rel);
        if (st) this.remove(rel, st);
        this.batch.mknod(rel, S_IFCHR, 0, 0);
        this.pendingCreate.add(rel);
      }
    } catch (err) {
      throw this.fsError(err, e);
    }
  }

  private opaque(dirRel: string, e: TarEntry): void {
    try {
      if (this.mode === 'apply') {
        if (dirRel !== '' && !this.parentsExist(dirRel, e)) return;
        const st = this.lstat(dirRel);
        if (!st) return;
        if (st.isSymbolicLink()) throw symlinkParent(e, dirRel);
        if (!st.isDirectory()) return;
        this.removeLowerContents(dirRel);
      } else {
        if (dirRel !== '') {
          this.ensureParents(dirRel, e);
          this.touchPending(dirRel);
          const st = this.lstat(dirRel);
          if (st?.isSymbolicLink()) throw symlinkParent(e, dirRel);
          if (st && !st.isDirectory()) {
            throw new LayerError('conflict', `entry ${displayName(e.name)}: ${displayName(dirRel)} is not a directory`);
          }
          if (!st) this.implicitDir(dirRel, e);
          this.dirOK.add(dirRel);
        }
        this.batch.setxattr(dirRel, 'trusted.overlay.opaque', Buffer.from('y'));
        this.pendingMeta.add(dirRel);
        this.opaqueDirs.add(dirRel);
      }
    } catch (err) {
      throw this.fsError(err, e);
    }
  }

  /** apply mode: deletes what the lower layers put in dir, keeping what this layer wrote. */
  private removeLowerContents(dirRel: string): void {
    for (const name of readdirSync(this.abs(dirRel), { encoding: 'buffer' })) {
      const rel = dirRel === '' ? name.toString('latin1') : `${dirRel}/${name.toString('latin1')}`;
      const st = this.lstat(rel);
      if (!st) continue;
      if (this.written.has(rel)) {
        if (st.isDirectory()) this.removeLowerContents(rel);
        continue;
      }
      this.touchPending(rel);
      this.remove(rel, st);
    }
  }

  // ---- confinement ---------------------------------------------------------------------------

  /** Makes sure every parent of rel is a real directory inside the root, creating missing ones. */
  private ensureParents(rel: string, e: TarEntry): void {
    const slash = rel.lastIndexOf('/');
    if (slash < 0 || this.dirOK.has(rel.slice(0, slash))) return;
    let end = rel.indexOf('/');
    while (end >= 0) {
      const sub = rel.slice(0, end);
      end = rel.indexOf('/', end + 1);
      if (this.dirOK.has(sub)) continue;
      if (this.pendingCreate.has(sub)) this.runBatch();
      const st = this.lstat(sub);
      if (!st) {
        this.implicitDir(sub, e);
      } else if (st.isSymbolicLink()) {
        throw symlinkParent(e, sub);
      } else if (!st.isDirectory()) {
        throw new LayerError('conflict', `entry ${displayName(e.name)}: parent ${displayName(sub)} is not a directory`);
      }
      this.dirOK.add(sub);
    }
  }

  /** For paths that must already exist (deletion, hard-link sources): false if a parent is missing. */
  private parentsExist(rel: string, e: TarEntry): boolean {
    let end = rel.indexOf('/');
    while (end >= 0) {
      const sub = rel.slice(0, end);
      end = rel.indexOf('/', end + 1);
      if (this.dirOK.has(sub)) continue;
      if (this.pendingCreate.has(sub)) this.runBatch();
      const st = this.lstat(sub);
      if (!st) return false;
      if (st.isSymbolicLink()) throw symlinkParent(e, sub);
      if (!st.isDirectory()) return false;
      this.dirOK.add(sub);
    }
    return true;
  }

  /** The entry at rel in this layer's tree, if any, after checking its parents. */
  private existing(rel: string, e: TarEntry): Stats | undefined {
    if (!this.parentsExist(rel, e)) return undefined;
    if (this.pendingCreate.has(rel)) this.runBatch();
    return this.lstat(rel);
  }

  /** Creates a directory the layer does not list; in overlay mode it copies the lower one's metadata. */
  private implicitDir(rel: string, e: TarEntry): void {
    const hit = this.mode === 'overlay' ? this.lowerLookup(rel, e) : undefined;
    if (hit && hit.st.isSymbolicLink()) throw symlinkParent(e, rel, 'in a lower layer');
    if (hit && !hit.st.isDirectory()) {
      throw new LayerError('conflict', `entry ${displayName(e.name)}: parent ${displayName(rel)} is not a directory in the lower layers`);
    }
    const path = this.abs(rel);
    mkdirSync(path, 0o755);
    if (hit) {
      const st = hit.st;
      if (this.chown) chownSync(path, st.uid, st.gid);
      chmodSync(path, st.mode & 0o7777);
      const big = lstatSync(Buffer.from(hit.layer.dirBytes + rel, 'latin1'), { bigint: true }) as BigIntStats;
      this.dirTimes.set(rel, { atime: nsTime(big.atimeNs), mtime: nsTime(big.mtimeNs) });
    } else {
      chmodSync(path, 0o755);
    }
  }

  /**
   * Looks rel up in the lower layers as overlayfs would: topmost first, a whiteout hides
   * everything below, an opaque directory hides the same directory below, a non-directory
   * ends the descent.
   */
  private lowerLookup(rel: string, e: TarEntry): LowerHit | undefined {
    let layers = this.lowers;
    const parts = rel.split('/');
    let sub = '';
    for (let i = 0; i < parts.length; i++) {
      sub = i === 0 ? parts[0]! : `${sub}/${parts[i]}`;
      const last = i === parts.length - 1;
      const next: Lower[] = [];
      for (const layer of layers) {
        const st = lstatSync(Buffer.from(layer.dirBytes + sub, 'latin1'), { throwIfNoEntry: false });
        if (!st) continue;
        if (isWhiteout(st)) break;
        if (last) return { layer, st };
        if (!st.isDirectory()) {
          if (next.length === 0) {
            if (st.isSymbolicLink()) throw symlinkParent(e, sub, 'in a lower layer');
            return undefined;
          }
          break;
        }
        next.push(layer);
        if (layer.opaque.has(sub)) break;
      }
      if (next.length === 0) return undefined;
      layers = next;
    }
    return undefined;
  }

  /** overlay mode: a hard link to a lower file needs that file in this layer first (a copy-up). */
  private copyUp(rel: string, e: TarEntry): Stats | undefined {
    const hit = this.lowerLookup(rel, e);
    if (!hit || hit.st.isDirectory()) return hit?.st;
    this.ensureParents(rel, e);
    const src = Buffer.from(hit.layer.dirBytes + rel, 'latin1');
    const dst = this.abs(rel);
    const st = hit.st;
    if (st.isFile()) {
      copyFileSync(src, dst, C.COPYFILE_EXCL);
    } else if (st.isSymbolicLink()) {
      // readlink through the lower's path is safe: the lower was confined when it was unpacked.
      symlinkSync(readlinkSync(src, { encoding: 'buffer' }), dst);
    } else {
      throw new LayerError('hardlink', `hard link ${displayName(e.name)} -> ${displayName(e.linkname)}: the lower target is a device or FIFO, which Berth does not copy up`);
    }
    if (this.chown) lchownSync(dst, st.uid, st.gid);
    if (!st.isSymbolicLink()) chmodSync(dst, st.mode & 0o7777);
    const big = lstatSync(src, { bigint: true }) as BigIntStats;
    this.batch.times(rel, nsTime(big.atimeNs), nsTime(big.mtimeNs));
    this.pendingMeta.add(rel);
    // Lower xattrs are not copied (Node cannot read them); hard links into lower layers are
    // not produced by docker, buildah or BuildKit, so this path exists for correctness only.
    this.written.add(rel);
    return this.lstat(rel);
  }

  // ---- removal and the helper batch ----------------------------------------------------------

  /** Flushes the helper batch if it would touch rel before rel is created or replaced. */
  private touchPending(rel: string): void {
    if (this.pendingCreate.has(rel) || this.pendingMeta.has(rel)) this.runBatch();
  }

  /** Flushes the helper batch if it would touch anything below dir (before dir is removed). */
  private touchPendingUnder(dir: string): void {
    if (this.pendingCreate.size === 0 && this.pendingMeta.size === 0) return;
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const set of [this.pendingCreate, this.pendingMeta]) {
      for (const p of set) {
        if (p.startsWith(prefix)) {
          this.runBatch();
          return;
        }
      }
    }
  }

  private runBatch(): void {
    this.batch.run(this.opts.root);
    this.pendingCreate.clear();
    this.pendingMeta.clear();
  }

  /** Removes the entry at rel (never following symlinks) and forgets what was verified below it. */
  private remove(rel: string, st: Stats): void {
    if (st.isDirectory()) {
      this.touchPendingUnder(rel);
      const prefix = `${rel}/`;
      for (const d of this.dirOK) if (d === rel || d.startsWith(prefix)) this.dirOK.delete(d);
      for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(prefix)) this.dirTimes.delete(d);
      rmSync(this.abs(rel), { recursive: true, force: true });
    } else {
      this.dirOK.delete(rel);
      unlinkSync(this.abs(rel));
    }
  }

  private queueXattrs(rel: string, e: TarEntry): void {
    if (!e.xattrs) return;
    for (const [name, value] of e.xattrs) this.batch.setxattr(rel, name, value);
    this.pendingMeta.add(rel);
  }

  private queueTimes(rel: string, e: TarEntry): void {
    this.batch.times(rel, e.atime ?? e.mtime, e.mtime);
    this.pendingMeta.add(rel);
  }

  private fsError(err: unknown, e: TarEntry): unknown {
    if (err instanceof LayerError) return err;
    const code = errno(err);
    if (code) {
      return new LayerError('io', `entry ${displayName(e.name)}: ${(err as Error).message}`, { cause: err });
    }
    return err;
  }
}

/**
 * Normalises an entry name lexically: leading "/" and "." components dropped (docker does the
 * same), ".." resolved against the components before it and refused if it climbs above the root.
 */
export function clean(raw: string, what: 'entry' | 'hardlink', entryName?: string): string {
  while (raw.startsWith('./')) raw = raw.slice(2);
  // Fast path: the common already-clean relative name.
  if (raw.length > 0 && raw[0] !== '/' && !raw.includes('//') && !/(^|\/)\.\.?(\/|$)/.test(raw)) {
    return raw.endsWith('/') ? raw.slice(0, -1) : raw;
  }
  const out: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) {
        throw new LayerError('escape', what === 'entry'
          ? `entry ${displayName(raw)} escapes the layer root`
          : `hard link ${displayName(entryName ?? '')} -> ${displayName(raw)} escapes the layer root`);
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

function symlinkParent(e: TarEntry, sub: string, where = ''): LayerError {
  return new LayerError('symlink', `entry ${displayName(e.name)}: parent ${displayName(sub)} is a symbolic link${where ? ` ${where}` : ''}; refusing to write through it`);
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function nsTime(ns: bigint): TarTime {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}
