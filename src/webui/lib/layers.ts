// The layer explorer's logic: read a `docker save` archive (GET /images/{name}/get) as it streams,
// keeping only the headers of the files inside each layer, then work out what each layer adds,
// changes and deletes. Pure (no DOM); unit-tested in Node.
//
// Archive layouts read: OCI (blobs/sha256/<digest>, what Berth and docker 25+ write) and docker's
// legacy one (<id>/layer.tar, possibly a symlink to another layer's tar). manifest.json, which names
// the layers in order, comes after the layers in both, so every blob is read as a tar on speculation;
// blobs that are not tars (the config, the manifests) simply yield no entries. Small blobs that start
// like JSON are also kept whole, so the image config (its history, with empty_layer marks) can be read
// at the end; layers are never held.
//
// Deletions follow the image spec's whiteouts: `.wh.<name>` removes <name> (and everything under
// it) from the layers below; `.wh..wh..opq` in a directory hides everything the lower layers had in it.
import { TarFormatError, TarReader, type TarEntry, type TarEntryType } from './tar.ts';

export interface FileHeader {
  /** Relative, without './', leading or trailing '/'. */
  path: string;
  type: TarEntryType;
  size: number;
  link?: string;
}

export interface SaveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export interface ImageConfigHistory {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface SavedImage {
  manifest: SaveManifestEntry[];
  /** The first image's config, when its blob was small enough to keep. */
  config?: { history?: ImageConfigHistory[]; rootfs?: { diff_ids?: string[] } };
  /** Layer headers in manifest order (of the first image in the archive). */
  layers: Array<{ name: string; entries: FileHeader[]; error?: string }>;
  /** Header cap reached: later entries were not recorded, so the diff is incomplete. */
  truncated: boolean;
  entries: number;
  bytes: number;
}

export const DEFAULT_ENTRY_CAP = 200_000;
/** Blobs up to this size that start like JSON are kept whole (configs, manifests are a few kB). */
const KEEP_BLOB = 4 << 20;

export function normalizePath(name: string): string {
  let p = name.replace(/\\/g, '/');
  p = p.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  p = p.replace(/\/\.\//g, '/').replace(/\/{2,}/g, '/');
  return p === '.' ? '' : p;
}

interface BlobState {
  inner: TarReader;
  entries: FileHeader[];
  error?: string;
  /** The whole blob, while it may be JSON (a config). */
  kept?: Uint8Array[];
  keptBytes: number;
  /** The first bytes, to recognise gzip. */
  magic?: Uint8Array;
}

/** Feeds on the bytes of a `docker save` stream; `finish()` when it ends. */
export class SaveArchiveReader {
  private readonly outer: TarReader;
  private readonly blobs = new Map<string, BlobState>();
  private readonly aliases = new Map<string, string>();
  private manifestParts: Uint8Array[] = [];
  private current?: BlobState;
  entries = 0;
  bytes = 0;
  truncated = false;

  constructor(private readonly cap = DEFAULT_ENTRY_CAP) {
    this.outer = new TarReader({
      onEntry: (e) => this.onOuter(e),
      onData: (e, chunk) => this.onOuterData(e, chunk),
      onEntryEnd: () => { this.current = undefined; },
    });
  }

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.outer.push(chunk);
  }

  private onOuter(e: TarEntry): boolean {
    const name = normalizePath(e.name);
    if (name === 'manifest.json') return true;
    if (e.type === 'symlink' || e.type === 'hardlink') {
      // docker's legacy format links a repeated layer to the first copy.
      const target = e.type === 'symlink' ? normalizePath(joinPath(dirname(name), e.linkname)) : normalizePath(e.linkname);
      this.aliases.set(name, target);
      return false;
    }
    if (e.type !== 'file') return false;
    const blob: BlobState = { entries: [], keptBytes: 0, inner: undefined as unknown as TarReader };
    if (e.size <= KEEP_BLOB) blob.kept = [];
    blob.inner = new TarReader({
      onEntry: (inner) => {
        if (this.entries >= this.cap) {
          this.truncated = true;
          return false;
        }
        const path = normalizePath(inner.name);
        if (!path) return false;
        this.entries++;
        const h: FileHeader = { path, type: inner.type, size: inner.type === 'file' ? inner.size : 0 };
        if (inner.type === 'symlink' || inner.type === 'hardlink') h.link = inner.linkname;
        blob.entries.push(h);
        return false;
      },
    });
    this.blobs.set(name, blob);
    this.current = blob;
    return true;
  }

  private onOuterData(e: TarEntry, chunk: Uint8Array): void {
    if (normalizePath(e.name) === 'manifest.json') {
      this.manifestParts.push(chunk.slice());
      return;
    }
    const blob = this.current;
    if (!blob) return;
    if (!blob.magic || blob.magic.length < 2) {
      const m = concatAll([blob.magic ?? new Uint8Array(0), chunk.subarray(0, 2)]);
      blob.magic = m.slice(0, 2);
    }
    if (blob.kept) {
      if (blob.magic[0] !== 0x7b /* { */) {
        // Not JSON (a layer): keep only its first bytes (blob.magic), to tell a compressed layer apart.
        blob.kept = undefined;
      } else {
        blob.kept.push(chunk.slice());
        blob.keptBytes += chunk.length;
      }
    }
    if (blob.error) return;
    try {
      blob.inner.push(chunk);
    } catch (err) {
      if (!(err instanceof TarFormatError)) throw err;
      // Not a tar (a JSON blob, or a compressed layer): no entries.
      blob.error = err.message;
      if (blob.entries.length) this.entries -= blob.entries.length;
      blob.entries = [];
    }
  }

  private blob(name: string): BlobState | undefined {
    let n = normalizePath(name);
    for (let i = 0; i < 8 && !this.blobs.has(n) && this.aliases.has(n); i++) n = this.aliases.get(n) as string;
    return this.blobs.get(n);
  }

  finish(): SavedImage {
    if (!this.manifestParts.length) throw new Error('the image archive has no manifest.json (is it a docker save archive?)');
    const text = new TextDecoder().decode(concatAll(this.manifestParts));
    let manifest: SaveManifestEntry[];
    try {
      manifest = JSON.parse(text) as SaveManifestEntry[];
    } catch (e) {
      throw new Error(`the archive's manifest.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(manifest) || !manifest.length || !Array.isArray(manifest[0].Layers)) {
      throw new Error("the archive's manifest.json lists no image");
    }
    const first = manifest[0];
    let config: SavedImage['config'];
    const cb = this.blob(first.Config);
    if (cb?.kept) {
      try { config = JSON.parse(new TextDecoder().decode(concatAll(cb.kept))) as SavedImage['config']; } catch { /* config unreadable: no history marks */ }
    }
    const layers = first.Layers.map((name) => {
      const b = this.blob(name);
      if (!b) return { name, entries: [], error: 'this layer is missing from the archive' };
      if (b.error) return { name, entries: [], error: isGzip(b) ? 'this layer is compressed; the explorer reads uncompressed layers only' : `this layer is not a tar: ${b.error}` };
      return { name, entries: b.entries };
    });
    return { manifest, config, layers, truncated: this.truncated, entries: this.entries, bytes: this.bytes };
  }
}

function isGzip(b: BlobState): boolean {
  const first = b.magic;
  return !!first && first[0] === 0x1f && first[1] === 0x8b;
}

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

function joinPath(dir: string, rel: string): string {
  if (rel.startsWith('/')) return rel;
  const parts = dir ? dir.split('/') : [];
  for (const seg of rel.split('/')) {
    if (seg === '..') parts.pop();
    else if (seg && seg !== '.') parts.push(seg);
  }
  return parts.join('/');
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

export type ChangeKind = 'added' | 'changed' | 'deleted';

export interface LayerChange {
  path: string;
  kind: ChangeKind;
  type: TarEntryType;
  /** Added/changed: the new size. Deleted: the bytes removed (the whole subtree for a directory). */
  size: number;
  /** Changed: the size in the layers below. */
  prevSize?: number;
  /** Deleted: how many lower paths went (the path itself and what was under it). */
  removed?: number;
  link?: string;
  /** Changed directory that was only listed again (its metadata or something inside changed). */
  meta?: boolean;
  /** Deleted through an opaque directory rather than a whiteout of its own. */
  opaque?: boolean;
}

export interface KindTotal { count: number; bytes: number }

export interface LayerDiff {
  changes: LayerChange[];
  added: KindTotal;
  changed: KindTotal;
  deleted: KindTotal;
  /** Sum of the sizes of the files the layer carries. */
  size: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

interface Node { type: TarEntryType; size: number }

/**
 * The changes of each layer against the union of the layers below it. Sorted by path.
 * `fs` (the merged tree) holds one small record per path: memory follows the header count.
 */
export function diffLayers(layers: FileHeader[][]): LayerDiff[] {
  const fs = new Map<string, Node>();
  // Children by parent path, so a deletion walks only its own subtree.
  const kids = new Map<string, Set<string>>();
  const put = (path: string, n: Node): void => {
    fs.set(path, n);
    const d = dirname(path);
    let set = kids.get(d);
    if (!set) kids.set(d, (set = new Set()));
    set.add(path);
  };
  const drop = (path: string): void => {
    fs.delete(path);
    kids.get(dirname(path))?.delete(path);
  };
  /** Paths strictly under `root` that the lower layers hold. */
  const below = (root: string): string[] => {
    const out: string[] = [];
    const stack = [root];
    while (stack.length) {
      const d = stack.pop() as string;
      for (const c of kids.get(d) ?? []) {
        out.push(c);
        stack.push(c);
      }
    }
    return out;
  };
  const sizeOf = (paths: string[]): number => paths.reduce((n, p) => n + (fs.get(p)?.size ?? 0), 0);
  const out: LayerDiff[] = [];
  for (const entries of layers) {
    const changes: LayerChange[] = [];
    const present = new Map<string, FileHeader>();
    const whiteouts: string[] = [];
    const opaques: string[] = [];
    for (const e of entries) {
      const base = basename(e.path);
      if (base === OPAQUE) opaques.push(dirname(e.path));
      else if (base.startsWith(WH)) whiteouts.push(e.path.slice(0, e.path.length - base.length) + base.slice(WH.length));
      else present.set(e.path, e);
    }
    // What the layer replaces is judged against the lower layers as they were before it.
    for (const [path, e] of present) {
      const prev = fs.get(path);
      const link = e.link !== undefined ? { link: e.link } : {};
      if (!prev) {
        changes.push({ path, kind: 'added', type: e.type, size: e.size, ...link });
      } else {
        const meta = e.type === 'dir' && prev.type === 'dir' ? { meta: true } : {};
        changes.push({ path, kind: 'changed', type: e.type, size: e.size, prevSize: prev.size, ...link, ...meta });
      }
    }
    const gone = new Set<string>();
    for (const target of whiteouts) {
      const prev = fs.get(target);
      const sub = below(target);
      if (prev) sub.push(target);
      for (const p of sub) gone.add(p);
      changes.push({ path: target, kind: 'deleted', type: prev?.type ?? 'other', size: sizeOf(sub), removed: sub.length });
    }
    for (const dir of opaques) {
      const sub = below(dir);
      // Report the topmost hidden paths the layer does not bring back, with their subtrees' totals.
      const hidden = new Set(sub.filter((p) => !present.has(p) && !gone.has(p)));
      for (const top of hidden) {
        if (hidden.has(dirname(top))) continue;
        const s = below(top);
        s.push(top);
        const n = fs.get(top) as Node;
        changes.push({ path: top, kind: 'deleted', type: n.type, size: sizeOf(s), removed: s.length, opaque: true });
      }
      for (const p of sub) gone.add(p);
    }
    for (const p of gone) drop(p);
    for (const [path, e] of present) put(path, { type: e.type, size: e.size });
    changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const total = (k: ChangeKind): KindTotal => {
      let count = 0;
      let bytes = 0;
      for (const c of changes) {
        if (c.kind !== k || c.meta) continue;
        count++;
        bytes += c.size;
      }
      return { count, bytes };
    };
    let size = 0;
    for (const e of present.values()) size += e.size;
    out.push({ changes, added: total('added'), changed: total('changed'), deleted: total('deleted'), size });
  }
  return out;
}

/** Pairs layers with the config's history entries that made them (those not marked empty_layer). */
export function layerHistory(history: ImageConfigHistory[] | undefined, layerCount: number): Array<ImageConfigHistory | undefined> {
  const made = (history ?? []).filter((h) => !h.empty_layer);
  // A history shorter than the layer list (hand-made images) cannot be paired reliably.
  if (made.length !== layerCount) return Array.from({ length: layerCount }, () => undefined);
  return made;
}

/** `/bin/sh -c #(nop)  CMD ["sh"]` → `CMD ["sh"]`; `/bin/sh -c apk add x` → `RUN apk add x`. */
export function readableCreatedBy(createdBy: string | undefined): string {
  if (!createdBy) return '';
  const s = createdBy.trim();
  const nop = /^\/bin\/sh -c #\(nop\)\s*(.*)$/s.exec(s);
  if (nop) return nop[1].trim();
  const run = /^\/bin\/sh -c (.*)$/s.exec(s);
  if (run) return `RUN ${run[1]}`;
  // BuildKit's history: "RUN /bin/sh -c … # buildkit", "COPY … # buildkit"
  return s.replace(/\s+# buildkit$/, '');
}

export interface TreeNode {
  name: string;
  path: string;
  change?: LayerChange;
  children: TreeNode[];
  /** Totals of the changes at or under this node (meta-only directories not counted). */
  count: number;
  bytes: number;
}

/** The changes as a directory tree (parents without a change of their own are made up as needed). */
export function changeTree(changes: LayerChange[]): TreeNode {
  const root: TreeNode = { name: '/', path: '', children: [], count: 0, bytes: 0 };
  const index = new Map<string, TreeNode>([['', root]]);
  const node = (path: string): TreeNode => {
    const found = index.get(path);
    if (found) return found;
    const parent = node(dirname(path));
    const n: TreeNode = { name: basename(path), path, children: [], count: 0, bytes: 0 };
    parent.children.push(n);
    index.set(path, n);
    return n;
  };
  for (const c of changes) {
    const n = node(c.path);
    n.change = c;
    if (c.meta) continue;
    for (let p: string | undefined = c.path; p !== undefined; p = p === '' ? undefined : dirname(p)) {
      const a = index.get(p) as TreeNode;
      a.count++;
      a.bytes += c.size;
    }
  }
  const sort = (n: TreeNode): void => {
    n.children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const c of n.children) sort(c);
  };
  sort(root);
  return root;
}
