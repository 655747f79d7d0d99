// Files in and out of a container: `docker cp` (stat, archive, extract), `docker export`.
//
// A container's filesystem here is its rootfs plus its bind and volume mounts: a path under a
// mount's destination lives in the mount's source, as the container sees it. Paths are resolved
// as the container would resolve them (symlinks followed inside the container, `..` stopping at
// its root, docker's FollowSymlinkInScope), one component at a time without ever following a
// symlink on the host; the result is a host directory plus a symlink-free relative path, and every
// later access opens that path again component by component with O_NOFOLLOW (tree-reader.ts). A
// running container that swaps a directory for a symlink in between makes the copy fail; it
// never makes Berth read or write outside the container.
//
// Extraction (PUT archive) reuses the unpacker's hostile-tar reader (unpack/tar.ts) and its name
// rules (`clean`: no `..` above the destination), and writes every entry through an fd of its
// verified parent directory: a parent that is a symlink — one already in the container or one
// the archive itself created — is refused, never followed.
import {
  closeSync, constants as C, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lutimesSync, mkdirSync,
  openSync, readdirSync, readlinkSync, rmdirSync, symlinkSync, unlinkSync, writeSync, type BigIntStats,
} from 'node:fs';
import { Readable } from 'node:stream';
import { createDecompressor, detectCompression, MAGIC_BYTES } from '../../image/unpack/compression.ts';
import { clean } from '../../image/unpack/extract.ts';
import { FsOpsBatch } from '../../image/unpack/fsops.ts';
import { LayerError, TarReader, type TarEntry, type TarSink } from '../../image/unpack/index.ts';
import {
  atPath, collectTree, loadXattrs, lstatAt, lstatRel, openDirAt, openDirRel, openRoot, tarEntries, type TreeEntry,
} from '../../image/tree-reader.ts';
import type { MountPoint } from './types.ts';

export type ContainerFsErrorCode = 'not-found' | 'invalid' | 'read-only' | 'escape' | 'conflict';

export class ContainerFsError extends Error {
  override name = 'ContainerFsError';
  constructor(readonly code: ContainerFsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** What a container's filesystem is made of, as the archive operations need it. */
export interface ContainerView {
  /** The container id (or name) for messages. */
  name: string;
  /** The mounted rootfs on the host. */
  rootfs: string;
  mounts: Array<{ destination: string; source: string; rw: boolean }>;
  readonlyRootfs?: boolean;
}

/** The bind and volume mounts of a record's Mounts, for a ContainerView. */
export function viewMounts(mounts: MountPoint[]): ContainerView['mounts'] {
  return mounts.filter((m) => (m.Type === 'bind' || m.Type === 'volume') && m.Source && m.Destination)
    .map((m) => ({ destination: m.Destination, source: m.Source, rw: m.RW }));
}

/** docker's ContainerPathStat (X-Docker-Container-Path-Stat). */
export interface ContainerPathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

const toLatin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
const fromLatin1 = (s: string): string => {
  const bytes = Buffer.from(s, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : s;
};

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Where a container path (components, latin1) lives on the host. */
interface HostLoc {
  root: string;
  rel: string;
  mount?: ContainerView['mounts'][number];
}

function mapPath(view: ContainerView, parts: string[]): HostLoc {
  const cpath = `/${parts.join('/')}`;
  let best: ContainerView['mounts'][number] | undefined;
  let bestLen = -1;
  for (const m of view.mounts) {
    const dest = toLatin1(m.destination).replace(/\/+$/, '') || '/';
    if (dest === '/') continue; // a mount over the whole root is not a volume
    if ((cpath === dest || cpath.startsWith(`${dest}/`)) && dest.length > bestLen) {
      best = m;
      bestLen = dest.length;
    }
  }
  if (best) return { root: best.source, rel: cpath.slice(bestLen + 1), mount: best };
  return { root: view.rootfs, rel: parts.join('/') };
}

function readlinkRel(root: string, rel: string): string | undefined {
  const rootFd = openRoot(root);
  try {
    const slash = rel.lastIndexOf('/');
    const dir = openDirRel(rootFd, slash < 0 ? '' : rel.slice(0, slash));
    if (dir === undefined) return undefined;
    try {
      return readlinkSync(atPath(dir, rel.slice(slash + 1)), { encoding: 'buffer' }).toString('latin1');
    } catch {
      return undefined;
    } finally {
      closeSync(dir);
    }
  } finally {
    closeSync(rootFd);
  }
}

export interface Resolved {
  /** The resolved container path's components (latin1), symlink-free. */
  parts: string[];
  loc: HostLoc;
  /** lstat of the result; undefined when it does not exist. */
  st: BigIntStats | undefined;
}

/**
 * Resolves a container path inside the container (FollowSymlinkInScope): symlinks are read and
 * followed within the container, absolute targets from its root, `..` never above the root.
 * The last component is followed only when `followLast`.
 */
export function resolveInContainer(view: ContainerView, path: string, followLast: boolean): Resolved {
  const todo = toLatin1(path).split('/').filter((p) => p !== '').reverse();
  let parts: string[] = [];
  let hops = 0;
  while (todo.length) {
    const c = todo.pop()!;
    if (c === '.') continue;
    if (c === '..') {
      parts.pop();
      continue;
    }
    const candidate = [...parts, c];
    const loc = mapPath(view, candidate);
    const st = lstatRel(loc.root, loc.rel);
    const last = todo.every((t) => t === '.');
    if (st?.isSymbolicLink() && (!last || followLast)) {
      if (++hops > 255) throw new ContainerFsError('invalid', `too many levels of symbolic links in ${path}`);
      const target = readlinkRel(loc.root, loc.rel);
      if (target === undefined) throw new ContainerFsError('not-found', `cannot read the symbolic link ${fromLatin1(`/${candidate.join('/')}`)}`);
      if (target.startsWith('/')) parts = [];
      for (const t of target.split('/').filter((p) => p !== '').reverse()) todo.push(t);
      continue;
    }
    if (!st && todo.some((t) => t !== '.' && t !== '..')) {
      // A missing directory in the middle: nothing below it exists either.
      return { parts: [...candidate, ...todo.reverse()], loc: mapPath(view, [...candidate, ...todo]), st: undefined };
    }
    parts = candidate;
  }
  const loc = mapPath(view, parts);
  return { parts, loc, st: lstatRel(loc.root, loc.rel) };
}

/** Go's filepath.Base of a cleaned container path ("/" for the root, "." for a trailing "/."). */
function goBase(abs: string): string {
  const trimmed = abs.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** The absolute path docker works with: cleaned, but keeping a trailing "/" or "/.". */
function absPath(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  let abs = `/${parts.join('/')}`;
  if (abs !== '/' && (path.endsWith('/.') || path === '.')) abs += '/.';
  else if (abs !== '/' && path.endsWith('/')) abs += '/';
  return abs;
}

/** Go's os.FileMode for a stat mode. */
export function goFileMode(mode: number): number {
  const perm = mode & 0o777;
  let bits = 0;
  switch (mode & 0o170000) {
    case 0o040000: bits += 2 ** 31; break; // ModeDir
    case 0o120000: bits += 2 ** 27; break; // ModeSymlink
    case 0o060000: bits += 2 ** 26; break; // ModeDevice
    case 0o020000: bits += 2 ** 26 + 2 ** 21; break; // ModeDevice | ModeCharDevice
    case 0o010000: bits += 2 ** 25; break; // ModeNamedPipe
    case 0o140000: bits += 2 ** 24; break; // ModeSocket
  }
  if (mode & 0o4000) bits += 2 ** 23;
  if (mode & 0o2000) bits += 2 ** 22;
  if (mode & 0o1000) bits += 2 ** 20;
  return bits + perm;
}

/** Go's RFC 3339 with nanoseconds, trailing zeros trimmed (time.Time's JSON form), in UTC. */
export function goTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n - (ns < 0n && ns % 1_000_000_000n !== 0n ? 1n : 0n);
  const frac = ns - sec * 1_000_000_000n;
  const iso = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  const f = frac === 0n ? '' : `.${frac.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${iso}${f}Z`;
}

function notFound(view: ContainerView, path: string): ContainerFsError {
  return new ContainerFsError('not-found', `Could not find the file ${path} in container ${view.name}`);
}

/** Resolves a path as docker's ResolvePath does: the directory part followed, the last element only for "x/" and "x/.". */
function resolveForRead(view: ContainerView, path: string): { abs: string; res: Resolved } {
  const abs = absPath(path.startsWith('/') ? path : `/${path}`);
  const follow = abs.endsWith('/') || abs.endsWith('/.');
  const res = resolveInContainer(view, abs, follow);
  if (!res.st) throw notFound(view, path);
  if (follow && abs !== '/' && !res.st.isDirectory()) throw new ContainerFsError('invalid', `${path}: not a directory`);
  return { abs, res };
}

/** HEAD /containers/{id}/archive: docker's stat of a path in the container. */
export function statPath(view: ContainerView, path: string): ContainerPathStat {
  const { abs, res } = resolveForRead(view, path);
  const st = res.st!;
  let linkTarget = '';
  if (st.isSymbolicLink()) {
    const full = resolveInContainer(view, abs, true);
    linkTarget = fromLatin1(`/${full.parts.join('/')}`);
  }
  return {
    name: fromLatin1(toLatin1(goBase(abs))),
    size: Number(st.size),
    mode: goFileMode(Number(st.mode)),
    mtime: goTime(st.mtimeNs),
    linkTarget,
  };
}

/** Only file capabilities travel with copies, as docker's archives carry them. */
const CAPABILITY_ONLY = (name: string): boolean => name === 'security.capability';

/**
 * GET /containers/{id}/archive: the stat and a tar of the path. Entries are named as docker
 * names them: the requested base name (not a followed symlink's), "." and "./x" for "dir/.",
 * the root's contents without a prefix for "/".
 */
export async function archivePath(view: ContainerView, path: string): Promise<{ stat: ContainerPathStat; tar: AsyncGenerator<Buffer> }> {
  const stat = statPath(view, path);
  const { abs, res } = resolveForRead(view, path);
  const rebase = toLatin1(goBase(abs));
  let entries: TreeEntry[];
  if (res.st!.isDirectory()) {
    const cpath = `/${res.parts.join('/')}`;
    const mountAt = (cp: string) => view.mounts.find((m) => toLatin1(m.destination).replace(/\/+$/, '') === cp)?.source;
    entries = rebase === '/'
      ? collectTree(res.loc.root, res.loc.rel, '', { includeRoot: false, containerPath: cpath, mountAt })
      : collectTree(res.loc.root, res.loc.rel, rebase, { includeRoot: true, containerPath: cpath, mountAt });
  } else {
    const e: TreeEntry = { name: rebase, root: res.loc.root, rel: res.loc.rel, st: res.st! };
    if (e.st.isSymbolicLink()) e.target = readlinkRel(e.root, e.rel) ?? '';
    entries = e.st.isSocket() ? [] : [e];
  }
  await loadXattrs(entries);
  return { stat, tar: tarEntries(entries, { xattrFilter: CAPABILITY_ONLY }) };
}

/** GET /containers/{id}/export: the whole root filesystem (no volumes, as docker). */
export async function exportRootfs(rootfs: string, signal?: AbortSignal): Promise<AsyncGenerator<Buffer>> {
  const entries = collectTree(rootfs, '', '', { includeRoot: false });
  await loadXattrs(entries);
  return tarEntries(entries, { xattrFilter: CAPABILITY_ONLY, signal });
}

// ─── extraction ────────────────────────────────────────────────────────────────────────────────

export interface ExtractOptions {
  /** Refuse to replace a directory with a non-directory or the reverse (noOverwriteDirNonDir). */
  noOverwriteDirNonDir?: boolean;
  /** Owner for every entry (copyUIDGID with a container user); default: the archive's. */
  chown?: { uid: number; gid: number };
  signal?: AbortSignal;
}

const NEW_FILE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

/** Removes name inside dirFd, recursively, never following a symlink (fd-relative all the way). */
function removeAt(dirFd: number, name: string): void {
  const st = lstatAt(dirFd, name);
  if (!st) return;
  if (!st.isDirectory()) {
    unlinkSync(atPath(dirFd, name));
    return;
  }
  const sub = openDirAt(dirFd, name);
  if (sub === undefined) {
    unlinkSync(atPath(dirFd, name)); // swapped for a non-directory meanwhile
    return;
  }
  try {
    for (const child of readdirSync(atPath(sub), { encoding: 'buffer' })) removeAt(sub, child.toString('latin1'));
  } finally {
    closeSync(sub);
  }
  rmdirSync(atPath(dirFd, name));
}

class LiveExtractor implements TarSink {
  private fd = -1;
  private current: { entry: TarEntry; cpath: string } | undefined;
  private readonly dirTimes: Array<{ loc: HostLoc; atime: number; mtime: number }> = [];
  private readonly batches = new Map<string, FsOpsBatch>();
  private cache: { key: string; fd: number } | undefined;
  private readonly root: boolean = process.getuid?.() === 0;

  constructor(private readonly view: ContainerView, private readonly dest: string[], private readonly opts: ExtractOptions) {}

  private fail(e: TarEntry, why: string, code: ContainerFsErrorCode = 'conflict'): never {
    throw new ContainerFsError(code, `archive entry ${JSON.stringify(fromLatin1(e.name))}: ${why}`);
  }

  private dropCache(): void {
    if (this.cache) closeSync(this.cache.fd);
    this.cache = undefined;
  }

  /** The verified parent directory of loc (creating missing directories), as an fd. */
  private parentOf(loc: HostLoc, e: TarEntry): { dir: number; base: string } {
    const slash = loc.rel.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : loc.rel.slice(0, slash);
    const base = loc.rel.slice(slash + 1);
    const key = `${loc.root}\0${dirRel}`;
    if (this.cache?.key === key) return { dir: this.cache.fd, base };
    this.dropCache();
    let fd = openRoot(loc.root);
    try {
      for (const part of dirRel === '' ? [] : dirRel.split('/')) {
        let next = openDirAt(fd, part);
        if (next === undefined) {
          const st = lstatAt(fd, part);
          if (st?.isSymbolicLink()) this.fail(e, `${fromLatin1(part)} on its path is a symbolic link; refusing to write through it`, 'escape');
          if (st) this.fail(e, `${fromLatin1(part)} on its path is not a directory`);
          mkdirSync(atPath(fd, part), 0o755);
          next = openDirAt(fd, part);
          if (next === undefined) this.fail(e, `cannot create the directory ${fromLatin1(part)}`);
          if (this.root) fchownSync(next, 0, 0);
        }
        closeSync(fd);
        fd = next;
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.cache = { key, fd };
    return { dir: fd, base };
  }

  private batchFor(root: string): FsOpsBatch {
    let b = this.batches.get(root);
    if (!b) this.batches.set(root, (b = new FsOpsBatch()));
    return b;
  }

  private owner(e: TarEntry): { uid: number; gid: number } {
    return this.opts.chown ?? { uid: e.uid, gid: e.gid };
  }

  private locate(e: TarEntry, name: string): { loc: HostLoc; parts: string[] } {
    let rel: string;
    try {
      rel = clean(name, 'entry');
    } catch (err) {
      if (err instanceof LayerError) this.fail(e, 'it would be written outside the destination directory', 'escape');
      throw err;
    }
    const parts = rel === '' ? [...this.dest] : [...this.dest, ...rel.split('/')];
    const loc = mapPath(this.view, parts);
    if (loc.mount ? !loc.mount.rw : this.view.readonlyRootfs) {
      this.fail(e, loc.mount ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only', 'read-only');
    }
    return { loc, parts };
  }

  entry(e: TarEntry): void {
    this.opts.signal?.throwIfAborted();
    const { loc, parts } = this.locate(e, e.name);
    const cpath = fromLatin1(`/${parts.join('/')}`);
    if (loc.rel === '') {
      // The destination itself or a mount point: its contents are written, it is not replaced.
      if (e.type !== 'dir') this.fail(e, `${cpath} is a mount point (or the destination itself); it cannot be replaced`);
      return;
    }
    const { dir, base } = this.parentOf(loc, e);
    const existing = lstatAt(dir, base);
    if (existing) {
      const isDir = existing.isDirectory();
      if (this.opts.noOverwriteDirNonDir && isDir && e.type !== 'dir') {
        throw new ContainerFsError('conflict', `cannot overwrite directory ${JSON.stringify(cpath)} with non-directory ${JSON.stringify(fromLatin1(e.name))}`);
      }
      if (this.opts.noOverwriteDirNonDir && !isDir && e.type === 'dir') {
        throw new ContainerFsError('conflict', `cannot overwrite non-directory ${JSON.stringify(cpath)} with directory ${JSON.stringify(fromLatin1(e.name))}`);
      }
      if (!(isDir && e.type === 'dir')) {
        if (e.type === 'link' && this.sameAsLinkTarget(e, existing)) return;
        removeAt(dir, base);
      }
    }
    const own = this.owner(e);
    const path = atPath(dir, base);
    switch (e.type) {
      case 'dir': {
        if (!existing?.isDirectory()) mkdirSync(path, 0o700);
        const fd = openDirAt(dir, base);
        if (fd === undefined) this.fail(e, 'the directory was replaced while it was written');
        try {
          if (this.root) fchownSync(fd, own.uid, own.gid);
          fchmodSync(fd, e.mode);
        } finally {
          closeSync(fd);
        }
        this.dirTimes.push({ loc, atime: (e.atime ?? e.mtime).sec, mtime: e.mtime.sec });
        break;
      }
      case 'file':
        this.fd = openSync(path, NEW_FILE, 0o600);
        this.current = { entry: e, cpath };
        break;
      case 'symlink':
        if (e.linkname === '') this.fail(e, 'symbolic link with an empty target');
        symlinkSync(Buffer.from(e.linkname, 'latin1'), path);
        if (this.root) lchownSync(path, own.uid, own.gid);
        lutimesSync(path, (e.atime ?? e.mtime).sec, e.mtime.sec);
        break;
      case 'link': {
        const target = this.locate(e, e.linkname).loc;
        if (target.root !== loc.root) this.fail(e, 'a hard link cannot cross a mount point');
        if (target.rel === '') this.fail(e, 'a hard link to a directory');
        const slash = target.rel.lastIndexOf('/');
        const rootFd = openRoot(target.root);
        let tdir: number | undefined;
        try {
          tdir = openDirRel(rootFd, slash < 0 ? '' : target.rel.slice(0, slash));
        } finally {
          closeSync(rootFd);
        }
        if (tdir === undefined) this.fail(e, `the link target ${JSON.stringify(fromLatin1(e.linkname))} does not exist`);
        try {
          const tbase = target.rel.slice(slash + 1);
          const tst = lstatAt(tdir, tbase);
          if (!tst) this.fail(e, `the link target ${JSON.stringify(fromLatin1(e.linkname))} does not exist`);
          if (tst.isDirectory()) this.fail(e, 'a hard link to a directory');
          linkSync(atPath(tdir, tbase), path);
        } finally {
          closeSync(tdir);
        }
        break;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const b = new FsOpsBatch();
        const type = e.type === 'char' ? 0o020000 : e.type === 'block' ? 0o060000 : 0o010000;
        b.mknod(loc.rel, type | e.mode, e.devmajor, e.devminor);
        if (this.root) b.chown(loc.rel, own.uid, own.gid);
        b.chmod(loc.rel, e.mode);
        b.times(loc.rel, e.atime ?? e.mtime, e.mtime);
        b.run(loc.root);
        break;
      }
    }
    if (e.xattrs?.size) {
      const b = this.batchFor(loc.root);
      for (const [k, v] of e.xattrs) b.setxattr(loc.rel, k, v);
    }
  }

  private sameAsLinkTarget(e: TarEntry, existing: BigIntStats): boolean {
    const target = this.locate(e, e.linkname).loc;
    const st = lstatRel(target.root, target.rel);
    return st !== undefined && st.ino === existing.ino && st.dev === existing.dev;
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  entryEnd(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    const e = this.current!.entry;
    this.fd = -1;
    this.current = undefined;
    try {
      const own = this.owner(e);
      if (this.root) fchownSync(fd, own.uid, own.gid);
      fchmodSync(fd, e.mode); // after chown, which clears setuid/setgid
      futimesSync(fd, (e.atime ?? e.mtime).sec + (e.atime ?? e.mtime).nsec / 1e9, e.mtime.sec + e.mtime.nsec / 1e9);
    } finally {
      closeSync(fd);
    }
  }

  finish(): void {
    this.dropCache();
    for (const [root, b] of this.batches) b.run(root);
    // Last, and deepest first: writing inside a directory changes its times.
    for (const t of this.dirTimes.reverse()) {
      const rootFd = openRoot(t.loc.root);
      try {
        const fd = openDirRel(rootFd, t.loc.rel);
        if (fd === undefined) continue;
        try {
          futimesSync(fd, t.atime, t.mtime);
        } finally {
          closeSync(fd);
        }
      } finally {
        closeSync(rootFd);
      }
    }
  }

  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.dropCache();
  }
}

/**
 * PUT /containers/{id}/archive: extracts a tar (plain, gzip or zstd) into the directory `path`
 * of the container (its last element followed if it is a symlink, as docker does).
 */
export async function extractToContainer(view: ContainerView, path: string, source: AsyncIterable<Uint8Array>, opts: ExtractOptions = {}): Promise<void> {
  const abs = absPath(path.startsWith('/') ? path : `/${path}`);
  const res = resolveInContainer(view, abs, true);
  if (!res.st) throw notFound(view, path);
  if (!res.st.isDirectory()) throw new ContainerFsError('invalid', 'extraction point is not a directory');
  const loc = res.loc;
  if (loc.mount ? !loc.mount.rw : view.readonlyRootfs) {
    throw new ContainerFsError('read-only', loc.mount ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only');
  }
  const extractor = new LiveExtractor(view, res.parts, opts);
  const reader = new TarReader(extractor);
  const iter = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let done = false;
  while (headLen < MAGIC_BYTES) {
    const r = await iter.next();
    if (r.done) { done = true; break; }
    head.push(Buffer.from(r.value));
    headLen += r.value.length;
  }
  const first = Buffer.concat(head);
  let compression;
  try {
    compression = detectCompression(first);
  } catch (err) {
    throw new ContainerFsError('invalid', `the archive: ${(err as Error).message}`);
  }
  const rest = (async function* () {
    if (first.length) yield first;
    if (!done) for (let r = await iter.next(); !r.done; r = await iter.next()) yield Buffer.from(r.value);
  })();
  const decompressor = createDecompressor(compression);
  const plain: AsyncIterable<Buffer> = decompressor ? Readable.from(rest).pipe(decompressor) : rest;
  try {
    for await (const chunk of plain) reader.push(chunk as Buffer);
    reader.end();
    extractor.finish();
  } catch (err) {
    extractor.abort();
    if (err instanceof LayerError) throw new ContainerFsError('invalid', err.message.replace(/the layer root/g, 'the destination'), { cause: err });
    if (errnoOf(err) && (err as NodeJS.ErrnoException).syscall) throw new ContainerFsError('conflict', (err as Error).message.replace(/\/proc\/self\/fd\/\d+\/?/g, ''), { cause: err });
    throw err;
  }
}
