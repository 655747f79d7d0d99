// Reading a directory tree into a tar stream, safely and deterministically: the shared half of
// layer diffs (layer-diff.ts), container archives (`docker cp` out of a container) and
// `docker export`.
//
// Safety: the trees read here may belong to a running container, which can swap any directory
// for a symlink at any moment. Every access therefore goes through an open directory fd and one
// final name (`/proc/self/fd/<dir>/<name>`, which the kernel resolves to exactly that directory),
// directories are opened with O_NOFOLLOW, and files with O_NOFOLLOW too: nothing is ever read
// through a symlink, so nothing outside the tree can end up in the archive. Extended attributes
// come from native/xattrs.c (Node has no lgetxattr), which walks each path the same way.
//
// Determinism: entries are in depth-first order with names sorted bytewise (as Go's
// filepath.Walk, which docker's archives use), headers carry whole-second mtimes and no
// atime/ctime/uname/gname (as moby does for reproducible layers), PAX records are sorted, and
// the archive ends with two zero blocks and no further padding — an empty archive is exactly
// the 1024 zero bytes whose digest docker treats as "no layer".
//
// Names are raw bytes held in latin1 strings (one char per byte), as in the unpacker.
import { spawn } from 'node:child_process';
import {
  closeSync, constants as C, existsSync, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EntryType } from './unpack/tar.ts';

const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
const FILE_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const BLOCK = 512;
const CHUNK = 1 << 20;

// ─── fd-relative access ────────────────────────────────────────────────────────────────────────

/** `/proc/self/fd/<fd>/<name>` as bytes: the name resolved in exactly that directory. */
export function atPath(dirFd: number, name?: string): Buffer {
  return Buffer.from(name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`, 'latin1');
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Opens a directory of a tree the caller controls (a snapshot dir, a mount source). */
export function openRoot(hostPath: string): number {
  return openSync(hostPath, C.O_RDONLY | C.O_DIRECTORY);
}

/** Opens name inside dirFd as a directory, never through a symlink; undefined if it is not one. */
export function openDirAt(dirFd: number, name: string): number | undefined {
  try {
    return openSync(atPath(dirFd, name), DIR_FLAGS);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw err;
  }
}

export function lstatAt(dirFd: number, name: string): BigIntStats | undefined {
  return lstatSync(atPath(dirFd, name), { bigint: true, throwIfNoEntry: false });
}

/**
 * Opens the directory `rel` below the root fd one component at a time, never following a
 * symlink; undefined when a component is missing or not a directory. The caller closes the fd.
 */
export function openDirRel(rootFd: number, rel: string): number | undefined {
  let fd = openSync(atPath(rootFd), C.O_RDONLY | C.O_DIRECTORY);
  if (rel === '') return fd;
  for (const part of rel.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      closeSync(fd);
      throw new Error(`refusing path component ${JSON.stringify(part)} in ${JSON.stringify(rel)}`);
    }
    const next = openDirAt(fd, part);
    closeSync(fd);
    if (next === undefined) return undefined;
    fd = next;
  }
  return fd;
}

/** lstat of `rel` below a host directory, resolved without following any symlink component. */
export function lstatRel(rootHost: string, rel: string): BigIntStats | undefined {
  if (rel === '') return lstatSync(rootHost, { bigint: true, throwIfNoEntry: false });
  let root: number;
  try {
    root = openRoot(rootHost);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
  try {
    const slash = rel.lastIndexOf('/');
    const dir = openDirRel(root, slash < 0 ? '' : rel.slice(0, slash));
    if (dir === undefined) return undefined;
    try {
      return lstatAt(dir, rel.slice(slash + 1));
    } finally {
      closeSync(dir);
    }
  } finally {
    closeSync(root);
  }
}

// ─── tar headers ───────────────────────────────────────────────────────────────────────────────

export interface TarHeader {
  /** Raw bytes as latin1; a directory's trailing slash is added here. */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const TYPEFLAG: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(buf: Buffer, off: number, len: number, value: number): boolean {
  const s = value.toString(8);
  if (value < 0 || s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> <key>=<value>\n", where len counts its own digits.
  const rest = Buffer.byteLength(key, 'latin1') + value.length + 3;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'latin1'), value, Buffer.from('\n')]);
}

function ustar(h: TarHeader, name: string, prefix: string, typeflag: string, size: number, pax: Map<string, Buffer> | undefined): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'latin1');
  octal(b, 100, 8, h.mode & 0o7777);
  if (!octal(b, 108, 8, h.uid)) { pax?.set('uid', Buffer.from(String(h.uid))); octal(b, 108, 8, 0); }
  if (!octal(b, 116, 8, h.gid)) { pax?.set('gid', Buffer.from(String(h.gid))); octal(b, 116, 8, 0); }
  if (!octal(b, 124, 12, size)) { pax?.set('size', Buffer.from(String(size))); octal(b, 124, 12, 0); }
  if (!octal(b, 136, 12, h.mtime)) { pax?.set('mtime', Buffer.from(String(h.mtime))); octal(b, 136, 12, 0); }
  b.write(typeflag, 156, 1, 'latin1');
  if (h.linkname) b.write(h.linkname, 157, 100, 'latin1');
  b.write('ustar\u000000', 257, 8, 'latin1');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  if (prefix) b.write(prefix, 345, 155, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return b;
}

/** Splits a long name into ustar's prefix and name fields at a slash, if it fits. */
function splitName(name: string): [string, string] | undefined {
  if (name.length <= 100) return ['', name];
  for (let i = name.length - 1; i >= 0; i--) {
    if (name[i] !== '/') continue;
    if (i > 155) continue;
    if (name.length - i - 1 > 100 || name.length - i - 1 === 0) return undefined;
    return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

/** One entry's header blocks (a PAX extended header first when ustar cannot hold it). */
export function encodeHeader(h: TarHeader): Buffer {
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const size = h.type === 'file' ? h.size : 0;
  const pax = new Map<string, Buffer>();
  let fields = splitName(name);
  if (!fields) {
    pax.set('path', Buffer.from(name, 'latin1'));
    fields = ['', name.slice(0, 100)];
  }
  if (h.linkname && h.linkname.length > 100) pax.set('linkpath', Buffer.from(h.linkname, 'latin1'));
  if (h.xattrs) for (const [k, v] of h.xattrs) pax.set(`SCHILY.xattr.${k}`, v);
  const main = ustar(h, fields[1], fields[0], TYPEFLAG[h.type], size, pax);
  if (pax.size === 0) return main;
  const keys = [...pax.keys()].sort();
  const body = Buffer.concat(keys.map((k) => paxRecord(k, pax.get(k)!)));
  const base = name.replace(/\/+$/, '');
  const paxName = `PaxHeaders.0/${base.slice(base.lastIndexOf('/') + 1)}`.slice(0, 100);
  const head = ustar({ ...h, uid: 0, gid: 0, linkname: '', devmajor: 0, devminor: 0, mode: 0o644 }, paxName, '', 'x', body.length, undefined);
  const pad = Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK);
  // The main header's own over-large fields were zeroed in it: the PAX record carries them.
  return Buffer.concat([head, body, pad, main]);
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

// ─── xattrs ────────────────────────────────────────────────────────────────────────────────────

let xattrsBin: string | undefined;

/** dist/berth-xattrs next to the bundle or from the source tree; BERTH_XATTRS overrides. */
export function xattrsPath(): string {
  if (xattrsBin) return xattrsBin;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.BERTH_XATTRS, join(here, 'berth-xattrs'), join(here, '..', '..', 'dist', 'berth-xattrs')];
  for (const c of candidates) if (c && existsSync(c)) return (xattrsBin = c);
  throw new Error(`the helper berth-xattrs is missing (it reads extended attributes); run "npm run build" (looked in ${candidates.filter(Boolean).join(', ')})`);
}

/** The xattrs of each rel path below root (same order); a path that vanished has none. */
export async function readXattrs(root: string, rels: string[]): Promise<Array<Map<string, Buffer> | undefined>> {
  if (rels.length === 0) return [];
  const input = Buffer.concat(rels.flatMap((r) => [Buffer.from(r, 'latin1'), Buffer.alloc(1)]));
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn(xattrsPath(), [root], { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => errs.push(c));
    child.on('error', reject);
    child.stdin.on('error', () => { /* the exit status tells */ });
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(Buffer.concat(errs).toString('utf8').trim() || `berth-xattrs exited with ${code}`));
    });
    child.stdin.end(input);
  });
  const result: Array<Map<string, Buffer> | undefined> = [];
  let pos = 0;
  const u32 = () => { const v = out.readUInt32LE(pos); pos += 4; return v; };
  for (let i = 0; i < rels.length; i++) {
    const count = u32();
    if (count === 0) { result.push(undefined); continue; }
    const m = new Map<string, Buffer>();
    for (let j = 0; j < count; j++) {
      const nl = u32();
      const name = out.toString('latin1', pos, pos + nl);
      pos += nl;
      const vl = u32();
      m.set(name, Buffer.from(out.subarray(pos, pos + vl)));
      pos += vl;
    }
    result.push(m);
  }
  return result;
}

// ─── tree collection ───────────────────────────────────────────────────────────────────────────

/** One file of a tree, as found (the tar header is made from it later). */
export interface TreeEntry {
  /** The tar name (latin1, no trailing slash). */
  name: string;
  /** The host directory the entry lives under (a rootfs, an upperdir, a volume's source). */
  root: string;
  /** Path below root (latin1; '' is root itself). */
  rel: string;
  st: BigIntStats;
  /** Filled by loadXattrs. */
  xattrs?: Map<string, Buffer>;
  /** Symlink target (latin1), read while walking. */
  target?: string;
  /** A synthesized entry: an empty regular file (overlay whiteouts and opaque markers). */
  synthetic?: { mode: number };
}

export interface CollectOptions {
  /** Include the start directory itself (named `name`). */
  includeRoot: boolean;
  /** Tar name of a child: default `${parent}/${child}` (or just child under an empty parent). */
  childName?: (parentName: string, child: string) => string;
  /**
   * Mount crossing: called with the container path of every directory met (when `containerPath`
   * is given); a host directory returned replaces the directory's contents (a volume).
   */
  mountAt?: (containerPath: string) => string | undefined;
  /** The container path of the start directory (latin1, "/" for the root). */
  containerPath?: string;
  /** Skips an entry (and what is below it). */
  skip?: (entry: TreeEntry) => boolean;
}

const joinName = (parent: string, child: string): string => (parent === '' ? child : `${parent}/${child}`);
const joinContainer = (parent: string, child: string): string => (parent === '/' ? `/${child}` : `${parent}/${child}`);

/**
 * Walks the directory `rel` below `root` (depth first, names sorted bytewise) and returns its
 * entries. Sockets are left out (tar has no type for them). Entries that vanish meanwhile are
 * left out; a directory replaced by a symlink meanwhile is never entered.
 */
export function collectTree(root: string, rel: string, name: string, opts: CollectOptions): TreeEntry[] {
  const out: TreeEntry[] = [];
  const childName = opts.childName ?? joinName;
  const rootFd = openRoot(root);
  try {
    const dirFd = openDirRel(rootFd, rel);
    if (dirFd === undefined) return out;
    try {
      const st = fstatSync(dirFd, { bigint: true });
      const self: TreeEntry = { name, root, rel, st };
      if (opts.includeRoot && !opts.skip?.(self)) out.push(self);
      walkDir(dirFd, root, rel, name, opts.containerPath, opts, childName, out);
    } finally {
      closeSync(dirFd);
    }
  } finally {
    closeSync(rootFd);
  }
  return out;
}

function walkDir(dirFd: number, root: string, rel: string, name: string, cpath: string | undefined, opts: CollectOptions,
  childName: (p: string, c: string) => string, out: TreeEntry[]): void {
  let names: Buffer[];
  try {
    names = readdirSync(atPath(dirFd), { encoding: 'buffer' });
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw err;
  }
  names.sort(Buffer.compare);
  for (const raw of names) {
    const child = raw.toString('latin1');
    const childRel = joinName(rel, child);
    const childCpath = cpath === undefined ? undefined : joinContainer(cpath, child);
    let st = lstatAt(dirFd, child);
    if (!st || st.isSocket()) continue;
    const mountSource = childCpath !== undefined ? opts.mountAt?.(childCpath) : undefined;
    if (mountSource !== undefined) {
      const mst = lstatSync(mountSource, { bigint: true, throwIfNoEntry: false });
      if (!mst) continue;
      if (!mst.isDirectory()) {
        // A file bind-mounted here: the file itself stands in for the mount point.
        const entry: TreeEntry = { name: childName(name, child), root: mountSource, rel: '', st: mst };
        if (!mst.isSocket() && !mst.isSymbolicLink() && !opts.skip?.(entry)) out.push(entry);
        continue;
      }
      // A volume mounted here: its source's contents stand in for the directory.
      const mfd = openRoot(mountSource);
      try {
        const entry: TreeEntry = { name: childName(name, child), root: mountSource, rel: '', st: fstatSync(mfd, { bigint: true }) };
        if (opts.skip?.(entry)) continue;
        out.push(entry);
        walkDir(mfd, mountSource, '', entry.name, childCpath, opts, childName, out);
      } finally {
        closeSync(mfd);
      }
      continue;
    }
    const entry: TreeEntry = { name: childName(name, child), root, rel: childRel, st };
    if (st.isSymbolicLink()) {
      try {
        entry.target = readlinkSync(atPath(dirFd, child), { encoding: 'buffer' }).toString('latin1');
      } catch {
        continue; // replaced meanwhile
      }
    }
    if (opts.skip?.(entry)) continue;
    if (st.isDirectory()) {
      const sub = openDirAt(dirFd, child);
      if (sub === undefined) continue; // swapped for something else meanwhile
      try {
        st = fstatSync(sub, { bigint: true });
        entry.st = st;
        out.push(entry);
        walkDir(sub, root, childRel, entry.name, childCpath, opts, childName, out);
      } finally {
        closeSync(sub);
      }
    } else {
      out.push(entry);
    }
  }
}

/** Reads the xattrs of every entry (one helper run per root). */
export async function loadXattrs(entries: TreeEntry[]): Promise<void> {
  const byRoot = new Map<string, Array<{ e: TreeEntry; rel: string }>>();
  for (const e of entries) {
    if (e.synthetic) continue;
    // A tree whose root is a file (a file bind mount): read it from its directory.
    const fileRoot = e.rel === '' && !e.st.isDirectory();
    const root = fileRoot ? dirname(e.root) : e.root;
    const rel = fileRoot ? Buffer.from(basename(e.root), 'utf8').toString('latin1') : e.rel;
    let list = byRoot.get(root);
    if (!list) byRoot.set(root, (list = []));
    list.push({ e, rel });
  }
  for (const [root, list] of byRoot) {
    const values = await readXattrs(root, list.map((x) => x.rel));
    list.forEach((x, i) => { x.e.xattrs = values[i]; });
  }
}

// ─── tar output ────────────────────────────────────────────────────────────────────────────────

export interface TarStreamOptions {
  /** Clamp every mtime to at most this (SOURCE_DATE_EPOCH, seconds). */
  clampMtime?: number;
  /** Which xattrs go into the archive (default: all). */
  xattrFilter?: (name: string) => boolean;
  /** Rewrites ownership (e.g. `docker cp -a` semantics are the caller's). */
  owner?: (e: TreeEntry) => { uid: number; gid: number };
  signal?: AbortSignal;
}

function entryType(st: BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined;
}

/** The header an entry gets (without hard-link detection). */
export function headerOf(e: TreeEntry, opts: TarStreamOptions = {}): TarHeader {
  const st = e.st;
  let mtime = Number(st.mtimeNs / 1_000_000_000n);
  if (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n) mtime -= 1;
  if (opts.clampMtime !== undefined && mtime > opts.clampMtime) mtime = opts.clampMtime;
  const own = opts.owner?.(e) ?? { uid: Number(st.uid), gid: Number(st.gid) };
  if (e.synthetic) {
    return { name: e.name, type: 'file', mode: e.synthetic.mode, uid: own.uid, gid: own.gid, size: 0, mtime };
  }
  const type = entryType(st)!;
  const rdev = st.rdev;
  let xattrs: Map<string, Buffer> | undefined;
  if (e.xattrs) {
    const keys = [...e.xattrs.keys()].filter((k) => !opts.xattrFilter || opts.xattrFilter(k)).sort();
    if (keys.length) xattrs = new Map(keys.map((k) => [k, e.xattrs!.get(k)!]));
  }
  return {
    name: e.name, type, mode: Number(st.mode) & 0o7777, uid: own.uid, gid: own.gid,
    size: type === 'file' ? Number(st.size) : 0, mtime,
    linkname: type === 'symlink' ? e.target ?? '' : undefined,
    // glibc's gnu_dev_major/minor: the 64-bit dev_t split.
    devmajor: type === 'char' || type === 'block' ? Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)) : undefined,
    devminor: type === 'char' || type === 'block' ? Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)) : undefined,
    xattrs,
  };
}

/** Opens a regular file below root without following symlinks anywhere on the way. */
function openFileRel(root: string, rel: string): number | undefined {
  if (rel === '') return openSync(root, FILE_FLAGS);
  const rootFd = openRoot(root);
  try {
    const slash = rel.lastIndexOf('/');
    const dir = openDirRel(rootFd, slash < 0 ? '' : rel.slice(0, slash));
    if (dir === undefined) return undefined;
    try {
      return openSync(atPath(dir, rel.slice(slash + 1)), FILE_FLAGS);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return undefined;
      throw err;
    } finally {
      closeSync(dir);
    }
  } finally {
    closeSync(rootFd);
  }
}

/**
 * The tar stream of the entries, in their order. Files with several links in the list become
 * one file and hard links to its first name. A file that shrinks while it is read is padded with
 * zeros, one that grows is cut at the size in its header (the archive stays well-formed).
 */
export async function* tarEntries(entries: Iterable<TreeEntry>, opts: TarStreamOptions = {}): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const e of entries) {
    opts.signal?.throwIfAborted();
    const h = headerOf(e, opts);
    if (!e.synthetic && h.type !== 'dir' && e.st.nlink > 1n) {
      const key = `${e.st.dev}:${e.st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield encodeHeader({ ...h, type: 'link', size: 0, linkname: first, xattrs: undefined });
        continue;
      }
      links.set(key, e.name);
    }
    if (h.type !== 'file' || h.size === 0) {
      yield encodeHeader(h);
      continue;
    }
    const fd = openFileRel(e.root, e.rel);
    if (fd === undefined) {
      // Gone or replaced since it was listed: leave it out rather than archive something else.
      links.forEach((v, k) => { if (v === e.name) links.delete(k); });
      continue;
    }
    try {
      if (!fstatSync(fd).isFile()) continue;
      yield encodeHeader(h);
      let left = h.size;
      while (left > 0) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, left), null);
        if (n === 0) break;
        left -= n;
        yield Buffer.from(buf.subarray(0, n));
      }
      const pad = left + ((BLOCK - (h.size % BLOCK)) % BLOCK);
      if (pad > 0) yield Buffer.alloc(pad);
    } finally {
      closeSync(fd);
    }
  }
  yield END_OF_ARCHIVE;
}
