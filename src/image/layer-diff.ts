// A container's (or a build step's) writable layer → an OCI layer, and `docker diff`.
//
// overlay: the upperdir is the diff. Overlay's deletion marks are turned into the OCI forms:
// a 0:0 character device becomes a `.wh.<name>` entry (an empty regular file, mode 0600, as moby
// writes it), a directory with trusted.overlay.opaque=y (or user.overlay.opaque=y, for
// unprivileged overlays) gets a `.wh..wh..opq` entry right after its own header. Overlay's
// private xattrs (trusted.overlay.*, user.overlay.*) stay out of the layer.
// bind (the copying "vfs" snapshotter): the snapshot holds the whole tree, so it is compared with
// its parent's by metadata, as docker's naive differ does (mode, owner, rdev, and for
// non-directories mtime and size; xattrs too): changed and added paths go in, with every
// directory above them, and paths gone from the tree become whiteouts.
//
// The tar is deterministic (see tree-reader.ts), optionally with mtimes clamped to
// SOURCE_DATE_EPOCH; it is gzip-compressed into the content store while the diff ID (sha256 of
// the tar) and the blob digest and size are computed, all in the one pass.
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { ContentStore } from './content-store.ts';
import type { MountSpec } from './snapshots.ts';
import { collectTree, loadXattrs, lstatRel, tarEntries, type TreeEntry } from './tree-reader.ts';
import { MediaType, type Digest } from './types.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** docker's change kinds (GET /containers/{id}/changes). */
export const ChangeKind = { Modify: 0, Add: 1, Delete: 2 } as const;
export type ChangeKindValue = (typeof ChangeKind)[keyof typeof ChangeKind];

export interface Change {
  /** Absolute path in the container (UTF-8 where the name is; raw bytes are kept as latin1 otherwise). */
  Path: string;
  Kind: ChangeKindValue;
}

export interface LayerDiffOptions {
  /** bind mounts (vfs): the parent snapshot's directory to compare with (none: everything is new). */
  parent?: string;
  /** Clamp mtimes to this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /**
   * Paths (relative, e.g. "etc/hosts") left out of the diff: mount points the engine created in
   * the writable layer for its own bind mounts, which are not the container's changes. overlay:
   * a directory that is in the upper dir only to hold such paths is left out too.
   */
  exclude?: Iterable<string>;
  signal?: AbortSignal;
  /** Filled while the tar is made: regular file bytes plus symlink target lengths, and the opaque directories (relative, raw bytes as latin1). */
  stats?: { contentSize: number; opaqueDirs: string[] };
}

function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

function isOpaque(e: TreeEntry): boolean {
  const v = e.xattrs?.get('trusted.overlay.opaque') ?? e.xattrs?.get('user.overlay.opaque');
  return v !== undefined && v.length === 1 && v[0] === 0x79;
}

function isWhiteoutDevice(e: TreeEntry): boolean {
  return e.st.isCharacterDevice() && e.st.rdev === 0n;
}

function excluder(list: Iterable<string> | undefined): (rel: string) => boolean {
  const set = new Set([...(list ?? [])].map((p) => Buffer.from(p.replace(/^\/+|\/+$/g, ''), 'utf8').toString('latin1')));
  return (rel) => set.has(rel);
}

const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const baseOf = (rel: string): string => rel.slice(rel.lastIndexOf('/') + 1);

/** Depth-first tar order for rel paths: component-wise bytewise comparison. */
function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]!, 'latin1'), Buffer.from(pb[i]!, 'latin1'));
  }
  return pa.length - pb.length;
}

// ─── overlay ───────────────────────────────────────────────────────────────────────────────────

/**
 * The upper dir's entries without the excluded paths, and without the directories that are in
 * the upper dir only because an excluded path was created in them (/etc for /etc/hosts): docker
 * keeps such files in a separate init layer, so they are not part of a container's changes.
 */
function collectUpper(upper: string, opts: LayerDiffOptions): TreeEntry[] {
  const excluded = excluder(opts.exclude);
  const hits: string[] = [];
  const found = collectTree(upper, '', '', {
    includeRoot: false,
    skip: (e) => {
      if (!excluded(e.rel)) return false;
      hits.push(e.rel);
      return true;
    },
  });
  if (hits.length === 0) return found;
  const withHits = new Set<string>();
  for (const h of hits) for (let p = parentOf(h); p !== ''; p = parentOf(p)) withHits.add(p);
  const withContent = new Set<string>();
  for (const e of found) {
    if (e.st.isDirectory() && withHits.has(e.rel)) continue;
    for (let p = parentOf(e.rel); p !== ''; p = parentOf(p)) withContent.add(p);
  }
  return found.filter((e) => !(e.st.isDirectory() && withHits.has(e.rel) && !withContent.has(e.rel)));
}

async function overlayEntries(upper: string, opts: LayerDiffOptions): Promise<TreeEntry[]> {
  const found = collectUpper(upper, opts);
  await loadXattrs(found);
  const out: TreeEntry[] = [];
  for (const e of found) {
    if (isWhiteoutDevice(e)) {
      out.push({ ...e, name: joinRel(parentOf(e.name), WHITEOUT + baseOf(e.name)), synthetic: { mode: 0o600 } });
      continue;
    }
    out.push(e);
    if (e.st.isDirectory() && isOpaque(e)) {
      out.push({ ...e, name: `${e.name}/${OPAQUE}`, synthetic: { mode: Number(e.st.mode) & 0o777 } });
    }
  }
  return out;
}

const joinRel = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

// ─── bind (vfs): compare with the parent ───────────────────────────────────────────────────────

/** docker's statDifferent plus xattrs: whether a path present in both trees changed. */
function differs(oldE: TreeEntry, newE: TreeEntry): boolean {
  const a = oldE.st;
  const b = newE.st;
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true;
  if (!b.isDirectory() && (!sameTime(a.mtimeNs, b.mtimeNs) || a.size !== b.size)) return true;
  if (b.isSymbolicLink() && oldE.target !== newE.target) return true;
  return !sameXattrs(oldE.xattrs, newE.xattrs);
}

/** Go's sameFsTime: equal, or equal seconds where one side has no sub-second part. */
function sameTime(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  const s = 1_000_000_000n;
  return a / s === b / s && (a % s === 0n || b % s === 0n);
}

function sameXattrs(a: Map<string, Buffer> | undefined, b: Map<string, Buffer> | undefined): boolean {
  const ka = [...(a?.keys() ?? [])].filter((k) => !isOverlayXattr(k));
  const kb = [...(b?.keys() ?? [])].filter((k) => !isOverlayXattr(k));
  if (ka.length !== kb.length) return false;
  return ka.every((k) => b!.has(k) && a!.get(k)!.equals(b!.get(k)!));
}

interface NaiveDiff {
  entries: TreeEntry[];
  changes: Array<{ rel: string; kind: ChangeKindValue }>;
}

async function naiveDiff(tree: string, parent: string | undefined, opts: LayerDiffOptions): Promise<NaiveDiff> {
  const excluded = excluder(opts.exclude);
  const now = collectTree(tree, '', '', { includeRoot: false, skip: (e) => excluded(e.rel) });
  const before = parent ? collectTree(parent, '', '', { includeRoot: false, skip: (e) => excluded(e.rel) }) : [];
  await loadXattrs(now);
  await loadXattrs(before);
  const old = new Map(before.map((e) => [e.rel, e]));
  const current = new Map(now.map((e) => [e.rel, e]));
  const kinds = new Map<string, ChangeKindValue>();
  for (const e of now) {
    const o = old.get(e.rel);
    if (!o) kinds.set(e.rel, ChangeKind.Add);
    else if (differs(o, e)) kinds.set(e.rel, ChangeKind.Modify);
  }
  // A directory with changes inside is part of the diff, so its metadata is restored with them.
  for (const rel of [...kinds.keys()]) {
    for (let p = parentOf(rel); p !== '' && !kinds.has(p); p = parentOf(p)) kinds.set(p, ChangeKind.Modify);
  }
  const deleted: string[] = [];
  for (const o of before) {
    if (current.has(o.rel)) continue;
    const p = parentOf(o.rel);
    // Only the top of a deleted subtree: its contents go with it.
    if (p !== '' && !current.get(p)?.st.isDirectory()) continue;
    deleted.push(o.rel);
    for (let q = p; q !== '' && !kinds.has(q); q = parentOf(q)) kinds.set(q, ChangeKind.Modify);
  }
  const entries: TreeEntry[] = now.filter((e) => kinds.has(e.rel));
  for (const rel of deleted) {
    const o = old.get(rel)!;
    entries.push({ ...o, root: tree, name: joinRel(parentOf(rel), WHITEOUT + baseOf(rel)), synthetic: { mode: 0o600 } });
  }
  const key = (e: TreeEntry) => (e.synthetic ? e.name : e.rel);
  entries.sort((a, b) => comparePaths(key(a), key(b)));
  const changes = [...kinds].map(([rel, kind]) => ({ rel, kind })).concat(deleted.map((rel) => ({ rel, kind: ChangeKind.Delete })));
  changes.sort((a, b) => comparePaths(a.rel, b.rel));
  return { entries, changes };
}

// ─── the layer ─────────────────────────────────────────────────────────────────────────────────

/** The entries of the layer tar for a writable snapshot, in archive order. */
export async function layerEntries(mounts: MountSpec, opts: LayerDiffOptions = {}): Promise<TreeEntry[]> {
  if (mounts.type === 'overlay') return overlayEntries(mounts.upperdir, opts);
  return (await naiveDiff(mounts.source, opts.parent, opts)).entries;
}

/** The uncompressed layer tar (an async stream of chunks). */
export async function* layerTar(mounts: MountSpec, opts: LayerDiffOptions = {}): AsyncGenerator<Buffer> {
  const entries = await layerEntries(mounts, opts);
  if (opts.stats) {
    for (const e of entries) {
      if (e.name.endsWith(`/${OPAQUE}`)) opts.stats.opaqueDirs.push(e.name.slice(0, -OPAQUE.length - 1));
      else if (!e.synthetic && (e.st.isFile() || e.st.isSymbolicLink())) opts.stats.contentSize += Number(e.st.size);
    }
  }
  yield* tarEntries(entries, { clampMtime: opts.sourceDateEpoch, xattrFilter: (n) => !isOverlayXattr(n), signal: opts.signal });
}

/**
 * Joins the tar's many small pieces (a header, a small file, padding) into chunks of at least
 * 256 KiB: every chunk costs a trip through the stream pipeline and zlib's thread pool, which for
 * a layer of many small files took most of the time.
 */
async function* batched(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const b of source) {
    parts.push(b);
    size += b.length;
    if (size >= 256 << 10) {
      yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

export interface WrittenLayer {
  /** sha256 of the uncompressed tar. */
  diffId: Digest;
  /** The gzip blob in the content store. */
  digest: Digest;
  size: number;
  mediaType: string;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
  /** Whether the blob was new to the store (a caller undoing its work deletes only its own). */
  created: boolean;
  /** The result of `tee`, when given. */
  teeResult?: unknown;
}

export interface WriteLayerOptions extends LayerDiffOptions {
  /** gzip level (default zlib's 6). */
  level?: number;
  /**
   * Also hands the uncompressed tar to a second consumer in the same pass (commit unpacks it into
   * the new image's snapshot). Its result is returned as teeResult; its failure fails the write.
   */
  tee?: (tar: AsyncIterable<Buffer>) => Promise<unknown>;
}

/** The empty layer's diff ID (1024 zero bytes), which docker leaves out of rootfs.diff_ids. */
export const EMPTY_LAYER_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/**
 * Writes the layer of a writable snapshot into the content store as a gzip blob. The tar is
 * produced once; hashing, compression (and the optional tee) consume the same chunks.
 */
export async function writeLayer(store: ContentStore, mounts: MountSpec, opts: WriteLayerOptions = {}): Promise<WrittenLayer> {
  const diffHash = createHash('sha256');
  let uncompressedSize = 0;
  const source = Readable.from(batched(layerTar(mounts, opts)), { objectMode: false, highWaterMark: 1 << 20 });
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      diffHash.update(chunk);
      uncompressedSize += chunk.length;
      cb(null, chunk);
    },
  });
  const gzip = createGzip({ level: opts.level ?? 6 });
  const tee = opts.tee ? new PassThrough({ highWaterMark: 1 << 20 }) : undefined;
  const fail = (err: Error) => {
    source.destroy(err);
    hasher.destroy(err);
    gzip.destroy(err);
    tee?.destroy(err);
  };
  source.on('error', fail);
  hasher.on('error', fail);
  // Their failures reach the caller through the promises below; the events need no handler.
  gzip.on('error', () => {});
  tee?.on('error', () => {});
  source.pipe(hasher);
  hasher.pipe(gzip);
  if (tee) hasher.pipe(tee);
  const stored = store.writeStream(gzip).catch((err: Error) => { fail(err); throw err; });
  const teed = tee ? opts.tee!(tee).catch((err: Error) => { fail(err); throw err; }) : Promise.resolve(undefined);
  const [s, t] = await Promise.allSettled([stored, teed]);
  if (s.status === 'rejected') {
    // The blob was not published; a failing tee may have caused the store's failure: report the tee's.
    throw t.status === 'rejected' ? t.reason : s.reason;
  }
  if (t.status === 'rejected') {
    if (s.value.created) await store.delete(s.value.digest).catch(() => {});
    throw t.reason;
  }
  return {
    diffId: `sha256:${diffHash.digest('hex')}`,
    digest: s.value.digest,
    size: s.value.size,
    mediaType: MediaType.OciLayerGzip,
    uncompressedSize,
    created: s.value.created,
    teeResult: t.value,
  };
}

// ─── docker diff ───────────────────────────────────────────────────────────────────────────────

function displayPath(rel: string): string {
  const bytes = Buffer.from(`/${rel}`, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : bytes.toString('latin1');
}

/**
 * `docker diff`: what the container changed, with docker's rules. overlay (moby's overlay
 * changes): a whiteout is a deletion; an upper path that exists in a lower layer is a
 * modification — a directory only when its size, mode or mtime differ, or something inside it
 * was added or deleted; an opaque directory that existed below was deleted and recreated (D),
 * its contents added; everything else is an addition. bind: docker's naive comparison with the
 * parent tree.
 */
export async function changes(mounts: MountSpec, opts: LayerDiffOptions = {}): Promise<Change[]> {
  if (mounts.type === 'bind') {
    const diff = await naiveDiff(mounts.source, opts.parent, opts);
    return diff.changes.map((c) => ({ Path: displayPath(c.rel), Kind: c.kind }));
  }
  const found = collectUpper(mounts.upperdir, opts);
  await loadXattrs(found.filter((e) => e.st.isDirectory()));
  const lowers = mounts.lowerdirs;
  const inLower = (rel: string) => {
    for (const l of lowers) {
      const st = lstatRel(l, rel);
      if (st) return st;
    }
    return undefined;
  };
  const out: Change[] = [];
  const changedDirs = new Set<string>();
  for (const e of found) {
    let kind: ChangeKindValue;
    if (isWhiteoutDevice(e) || (e.st.isDirectory() && isOpaque(e) && inLower(e.rel))) {
      kind = ChangeKind.Delete;
    } else {
      kind = ChangeKind.Add;
      const below = inLower(e.rel);
      if (below) {
        if (below.isDirectory() && e.st.isDirectory() && below.size === e.st.size && below.mode === e.st.mode && sameTime(below.mtimeNs, e.st.mtimeNs)) {
          continue; // only on the way to a change: its parent line comes from the child
        }
        kind = ChangeKind.Modify;
      }
    }
    if (e.st.isDirectory()) changedDirs.add(e.rel);
    if (kind !== ChangeKind.Modify) {
      const p = parentOf(e.rel);
      if (p !== '' && !changedDirs.has(p)) {
        out.push({ Path: displayPath(p), Kind: ChangeKind.Modify });
        changedDirs.add(p);
      }
    }
    out.push({ Path: displayPath(e.rel), Kind: kind });
  }
  return out;
}
