// Image archives: `docker save` / `docker load` / `docker import`, without the image store.
//
//   writeArchive   images → one tar stream, written as it is produced (no temp file). The
//                  docker-archive form is what docker ≥ 25 writes: an OCI image layout
//                  (oci-layout, index.json, blobs/sha256/…) that is also a legacy docker archive
//                  (manifest.json [{Config, RepoTags, Layers}] and `repositories` pointing into
//                  blobs/). Layers are uncompressed tars: stored blobs are decompressed on the
//                  way out and their diff IDs verified. The 'oci' form is the layout alone.
//   readArchive    a tar stream (docker-archive old or new style, or an OCI layout) → blobs in
//                  the content store + what each image is (config, layers, names). Parsed in one
//                  pass: every file that is not small metadata streams straight into the content
//                  store, so the upload is never held in memory or unpacked into a temp dir.
//   unpackLayers   layers → committed snapshots (applyLayer verifies each diff ID).
//   importRootfs   one rootfs tarball (any compression) → a single-layer image's blobs.
//   applyChanges   `docker import --change` / `docker commit --change` Dockerfile instructions.
//
// Records and names are the caller's business (service/image-store); this module only
// guarantees that what it reports is verified and present in the content store and snapshotter,
// and it tells the caller which blobs and snapshots it created so a failed load can be undone.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { posix } from 'node:path';
import { pipeline, Readable, type Transform, type Writable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Pack } from 'tar-stream';
import type { ContentStore } from './content-store.ts';
import { chainIds, isDigest, parseDigest, sha256Digest } from './digest.ts';
import { hostPlatform, normalizePlatform, selectManifest } from './platform.ts';
import type { GcLock } from './gc-lock.ts';
import type { ImageStore } from './image-store.ts';
import {
  familiarName, familiarString, parseAnyReference, parseNormalizedReference, referenceName, referenceString, type Reference,
} from './reference.ts';
import type { Snapshotter } from './snapshots.ts';
import {
  MediaType, type ContainerConfig, type Descriptor, type Digest, type ImageConfig, type ImageIndex, type ImageManifest,
  type Platform, type ProgressSink,
} from './types.ts';
import { applyLayer, detectCompression, LayerError, type Compression } from './unpack/index.ts';
import { createDecompressor, MAGIC_BYTES } from './unpack/compression.ts';

export type ArchiveErrorCode =
  | 'format' // not an archive Berth reads, or malformed JSON inside it
  | 'unsafe' // an entry that would leave the archive (`..`, absolute paths, links outside)
  | 'digest' // content that does not match its digest (blob name, manifest, diff ID)
  | 'missing' // a file the archive's manifest names is absent
  | 'unsupported' // a valid but unsupported construct (schema1-era archives, foreign layers, …)
  | 'changes'; // an invalid --change instruction

export class ArchiveError extends Error {
  override name = 'ArchiveError';
  constructor(readonly code: ArchiveErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const OCI_LAYOUT = JSON.stringify({ imageLayoutVersion: '1.0.0' });
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
/** Metadata files kept in memory while reading an archive; anything larger is refused. */
const MAX_METADATA_BYTES = 16 * 1024 * 1024;
const MAX_METADATA_TOTAL = 64 * 1024 * 1024;
const MAX_LINK_DEPTH = 16;

// ─── save ──────────────────────────────────────────────────────────────────────────────────────

export interface ArchiveLayer {
  diffId: Digest;
  /** The stored blob (any compression; the magic bytes decide). */
  blob: Descriptor;
  /**
   * The exact size of the uncompressed tar, when known; measured with a first decompression pass
   * when not. (Not a snapshot's recorded size: that is docker's SIZE, the file bytes.)
   */
  uncompressedSize?: number;
}

export interface ArchiveImage {
  /** The image ID: the config's digest. */
  id: Digest;
  /** The config's bytes exactly as stored (the ID is their digest). */
  config: Buffer;
  layers: ArchiveLayer[];
  /** Tagged references to record in the archive (normalised; digest-only references are skipped). */
  refs: Reference[];
  /** For the 'oci' form: the stored manifest to write as is (its layers' blobs are written unchanged). */
  manifest?: { digest: Digest; bytes: Buffer };
}

export type ArchiveFormat = 'docker' | 'oci';

export interface WriteArchiveOptions {
  format?: ArchiveFormat;
  signal?: AbortSignal;
  /** Called per image once its blobs are written (docker logs an image "save" event). */
  onImageSaved?: (id: Digest) => void;
}

function blobPath(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

function platformOf(config: ImageConfig): Platform {
  const p: Platform = { architecture: config.architecture, os: config.os };
  if (config.variant) p.variant = config.variant;
  return p;
}

/** Writes one tar entry from a stream of exactly `size` bytes, with backpressure. */
async function writeEntry(pack: Pack, name: string, size: number, source: AsyncIterable<Uint8Array> | Buffer, mtime: Date): Promise<void> {
  let entry!: ReturnType<Pack['entry']>;
  const entryDone = new Promise<void>((resolve, reject) => {
    entry = pack.entry({ name, size, mode: 0o644, mtime, type: 'file' }, (err) => (err ? reject(err) : resolve()));
  });
  // When the source fails first, the entry's own failure (the pack is destroyed) is not news;
  // streamx would otherwise emit it as an 'error' nobody listens to.
  entryDone.catch(() => {});
  entry.on('error', () => {});
  if (Buffer.isBuffer(source)) {
    entry.end(source);
  } else {
    for await (const chunk of source) {
      if (!entry.write(chunk)) await Promise.race([once(entry, 'drain'), entryDone]);
    }
    (entry as unknown as { end(): void }).end(); // streamx's typings want an argument; none is valid
  }
  await entryDone;
}

function dirEntry(pack: Pack, name: string, mtime: Date): void {
  pack.entry({ name, type: 'directory', mode: 0o755, mtime });
}

/**
 * source → transform, with the source's failure passed on: pipe() does not forward errors, and a
 * decompressor left waiting for input would hang its reader (and the GC lock it holds) forever.
 */
function through(source: AsyncIterable<Buffer>, transform: Transform): Transform {
  // pipeline() destroys every stage with the first error; the reader of `transform` sees it.
  return pipeline(Readable.from(source), transform, () => {});
}

/** The uncompressed bytes of a stored layer blob. */
async function* layerTar(store: ContentStore, layer: ArchiveLayer): AsyncGenerator<Buffer> {
  const raw = store.createReadStream(layer.blob.digest);
  const iter = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iter.next();
  if (first.done) return;
  const head = first.value as Buffer;
  const compression = detectCompression(head.subarray(0, MAGIC_BYTES), layer.blob.mediaType);
  const rest = async function* (): AsyncGenerator<Buffer> {
    yield head;
    for (let r = await iter.next(); !r.done; r = await iter.next()) yield r.value as Buffer;
  };
  const decompressor = createDecompressor(compression);
  if (!decompressor) {
    yield* rest();
    return;
  }
  const out = through(rest(), decompressor);
  for await (const chunk of out) yield chunk as Buffer;
}

/** Streams a layer, hashing it; throws at the end when it is not the diff ID the config names. */
async function* verifiedLayer(store: ContentStore, layer: ArchiveLayer, size: number): AsyncGenerator<Buffer> {
  const hash = createHash(parseDigest(layer.diffId).algorithm);
  let n = 0;
  for await (const chunk of layerTar(store, layer)) {
    n += chunk.length;
    if (n > size) break;
    hash.update(chunk);
    yield chunk;
  }
  const actual = `${parseDigest(layer.diffId).algorithm}:${hash.digest('hex')}`;
  if (n !== size || actual !== layer.diffId) {
    throw new ArchiveError('digest', `layer ${layer.diffId} (blob ${layer.blob.digest}) is corrupt in the content store: its uncompressed content ${n !== size ? `is ${n} bytes, not ${size}` : `hashes to ${actual}`}; remove the image and pull it again`);
  }
}

/** Measured tar sizes by diff ID: a tar header needs the size before the data, and a compressed blob does not say it. */
const tarSizes = new Map<Digest, number>();
const TAR_SIZES_KEPT = 4096;

async function uncompressedSize(store: ContentStore, layer: ArchiveLayer): Promise<number> {
  if (layer.uncompressedSize !== undefined) return layer.uncompressedSize;
  if (layer.blob.digest === layer.diffId) return store.size(layer.blob.digest);
  const known = tarSizes.get(layer.diffId);
  if (known !== undefined) return known;
  let n = 0;
  for await (const chunk of layerTar(store, layer)) n += chunk.length;
  if (tarSizes.size >= TAR_SIZES_KEPT) tarSizes.delete(tarSizes.keys().next().value!);
  tarSizes.set(layer.diffId, n);
  return n;
}

/**
 * Writes the images as one tar to `out` (which is not ended on failure: the caller destroys it
 * so the client sees a cut stream rather than a complete-looking archive).
 */
export async function writeArchive(store: ContentStore, images: ArchiveImage[], out: Writable, opts: WriteArchiveOptions = {}): Promise<void> {
  const format = opts.format ?? 'docker';
  const pack = tarPack();
  const epoch = new Date(0);
  const failed = new Promise<never>((_resolve, reject) => {
    out.once('error', reject);
    out.once('close', () => { if (!out.writableFinished) reject(new ArchiveError('format', 'the client went away before the archive was complete')); });
  });
  failed.catch(() => {});
  // Failures are reported through the returned promise; the pack's own 'error' (e.g. streamx's
  // "Writable stream closed" when the client goes away) must not become an uncaught exception.
  pack.on('error', () => {});
  pack.pipe(out);

  const written = new Set<string>();
  const manifestJson: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  const indexEntries: Descriptor[] = [];

  const work = (async () => {
    dirEntry(pack, 'blobs/', epoch);
    dirEntry(pack, 'blobs/sha256/', epoch);
    for (const img of images) {
      opts.signal?.throwIfAborted();
      const config = JSON.parse(img.config.toString('utf8')) as ImageConfig;
      const platform = platformOf(config);
      let manifestDesc: Descriptor;
      if (format === 'oci' && img.manifest) {
        // As stored: the manifest's digest (and so RepoDigests after a load) stays the same.
        const manifest = JSON.parse(img.manifest.bytes.toString('utf8')) as ImageManifest;
        for (const l of manifest.layers) {
          if (written.has(l.digest)) continue;
          await writeEntry(pack, blobPath(l.digest), l.size, verifiedBlob(store, l), epoch);
          written.add(l.digest);
        }
        if (!written.has(img.id)) await writeEntry(pack, blobPath(img.id), img.config.length, img.config, epoch);
        written.add(img.id);
        if (!written.has(img.manifest.digest)) await writeEntry(pack, blobPath(img.manifest.digest), img.manifest.bytes.length, img.manifest.bytes, epoch);
        written.add(img.manifest.digest);
        manifestDesc = { mediaType: manifest.mediaType ?? MediaType.OciManifest, digest: img.manifest.digest, size: img.manifest.bytes.length, platform };
      } else {
        const layerDescs: Descriptor[] = [];
        for (const layer of img.layers) {
          opts.signal?.throwIfAborted();
          const size = await uncompressedSize(store, layer);
          if (!written.has(layer.diffId)) {
            await writeEntry(pack, blobPath(layer.diffId), size, verifiedLayer(store, layer, size), epoch);
            written.add(layer.diffId);
          }
          layerDescs.push({ mediaType: MediaType.OciLayer, digest: layer.diffId, size });
        }
        if (!written.has(img.id)) {
          await writeEntry(pack, blobPath(img.id), img.config.length, img.config, epoch);
          written.add(img.id);
        }
        const manifest: ImageManifest = {
          schemaVersion: 2, mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: img.id, size: img.config.length },
          layers: layerDescs,
        };
        const bytes = Buffer.from(JSON.stringify(manifest));
        const digest = sha256Digest(bytes);
        if (!written.has(digest)) await writeEntry(pack, blobPath(digest), bytes.length, bytes, epoch);
        written.add(digest);
        manifestDesc = { mediaType: MediaType.OciManifest, digest, size: bytes.length, platform };
      }
      const tags = img.refs.filter((r) => r.tag !== undefined && r.digest === undefined);
      for (const ref of tags) {
        indexEntries.push({ ...manifestDesc, annotations: { [ANNOTATION_IMAGE_NAME]: referenceString(ref), [ANNOTATION_REF_NAME]: ref.tag! } });
        const top = img.layers[img.layers.length - 1];
        if (top) (repositories[familiarName(ref)] ??= {})[ref.tag!] = parseDigest(top.diffId).hex;
      }
      // An untagged image still needs an index entry, or OCI readers would not see it at all.
      if (tags.length === 0) indexEntries.push(manifestDesc);
      manifestJson.push({
        Config: blobPath(img.id),
        RepoTags: tags.length ? tags.map(familiarString) : null,
        Layers: img.layers.map((l) => blobPath(l.diffId)),
      });
      opts.onImageSaved?.(img.id);
    }
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: indexEntries };
    const meta: Array<[string, string]> = [['index.json', JSON.stringify(index)]];
    if (format === 'docker') meta.push(['manifest.json', `${JSON.stringify(manifestJson)}\n`]);
    meta.push(['oci-layout', OCI_LAYOUT]);
    if (format === 'docker' && Object.keys(repositories).length) meta.push(['repositories', `${JSON.stringify(repositories)}\n`]);
    for (const [name, text] of meta) {
      const b = Buffer.from(text);
      await writeEntry(pack, name, b.length, b, epoch);
    }
    pack.finalize();
    await once(pack, 'end');
  })();
  work.catch(() => {}); // when `failed` wins the race, the writer's own rejection is expected
  try {
    await Promise.race([work, failed]);
  } catch (err) {
    pack.destroy(err as Error);
    throw err;
  }
}

/** A stored blob as is, verified against its descriptor on the way out. */
async function* verifiedBlob(store: ContentStore, desc: Descriptor): AsyncGenerator<Buffer> {
  const hash = createHash(parseDigest(desc.digest).algorithm);
  let n = 0;
  for await (const chunk of store.createReadStream(desc.digest)) {
    n += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
    yield chunk as Buffer;
  }
  const actual = `${parseDigest(desc.digest).algorithm}:${hash.digest('hex')}`;
  if (n !== desc.size || actual !== desc.digest) {
    throw new ArchiveError('digest', `blob ${desc.digest} is corrupt in the content store (${n} bytes hashing to ${actual}); remove the image and pull it again`);
  }
}

// ─── load ──────────────────────────────────────────────────────────────────────────────────────

export interface LoadedLayer {
  diffId: Digest;
  /** The blob in the content store (as the archive had it: plain, gzip or zstd). */
  blob: Descriptor;
}

export interface LoadedImage {
  id: Digest;
  config: ImageConfig;
  configBytes: Buffer;
  layers: LoadedLayer[];
  /** The manifest the image is recorded under: the archive's (OCI layout) or one made for it. */
  manifest: { digest: Digest; bytes: Buffer; mediaType: string };
  /** Names found in the archive, normalised and tagged. */
  refs: Reference[];
}

export interface ReadArchiveResult {
  images: LoadedImage[];
  /** Blobs this read added to the content store (to delete if the load is abandoned). */
  added: Set<Digest>;
  format: 'docker-archive' | 'oci-layout';
}

interface ArchiveFile {
  kind: 'file';
  size: number;
  digest?: Digest; // in the content store
  data?: Buffer; // small metadata kept in memory
}
interface ArchiveLink { kind: 'symlink'; target: string }
type ArchiveNode = ArchiveFile | ArchiveLink;

/** An archive path made canonical, or an error for one that could leave the archive. */
function cleanName(raw: string): string {
  if (raw.includes('\0')) throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(raw)} has a NUL byte in its name`);
  if (raw.startsWith('/')) throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(raw)} has an absolute path; refusing the archive`);
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(raw)} escapes the archive ("..") ; refusing the archive`);
    parts.push(p);
  }
  return parts.join('/');
}

/** Small files whose content the loader reads; everything else goes to the content store. */
function isMetadataName(name: string): boolean {
  return name === 'manifest.json' || name === 'index.json' || name === 'oci-layout' || name === 'repositories'
    || /^[^/]+\/(json|VERSION)$/.test(name) || /^[^/]+\.json$/.test(name);
}

function blobNameDigest(name: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (!m) return undefined;
  const d = `${m[1]}:${m[2]}`;
  return isDigest(d) ? d : undefined;
}

export interface ReadArchiveOptions {
  signal?: AbortSignal;
  /** Which image of a multi-platform index to take (default: the host's). */
  platform?: Platform;
  onProgress?: ProgressSink;
}

/**
 * Reads an archive from `source` into the content store and describes its images. On failure,
 * every blob it added is removed again and the error is thrown.
 */
export async function readArchive(source: Readable, store: ContentStore, opts: ReadArchiveOptions = {}): Promise<ReadArchiveResult> {
  const added = new Set<Digest>();
  try {
    const nodes = await ingestEntries(source, store, added, opts);
    const result = await describe(nodes, store, added, opts);
    return result;
  } catch (err) {
    await discardBlobs(store, added);
    throw err;
  }
}

/** Deletes blobs a failed load added (best effort: a concurrent user may have just referenced one, which the GC lease prevents). */
export async function discardBlobs(store: ContentStore, digests: Iterable<Digest>): Promise<void> {
  for (const d of digests) await store.delete(d).catch(() => false);
}

async function ingestEntries(source: Readable, store: ContentStore, added: Set<Digest>, opts: ReadArchiveOptions): Promise<Map<string, ArchiveNode>> {
  const nodes = new Map<string, ArchiveNode>();
  const ex = tarExtract();
  let metaTotal = 0;
  const feed = (async () => {
    try {
      for await (const chunk of source) {
        if (!ex.write(chunk as Buffer)) await once(ex, 'drain');
      }
      (ex as unknown as { end(): void }).end();
    } catch (err) {
      ex.destroy(err as Error);
    }
  })();
  const onAbort = (): void => { ex.destroy(new ArchiveError('format', 'the load was cancelled')); };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let count = 0;
  try {
    for await (const entry of ex) {
      count++;
      const h = entry.header;
      const name = cleanName(h.name);
      if (name === '') { entry.resume(); continue; }
      switch (h.type) {
        case 'directory':
          entry.resume();
          continue;
        case 'symlink': {
          entry.resume();
          const target = h.linkname ?? '';
          if (target.startsWith('/')) throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(name)} is a symlink to an absolute path (${JSON.stringify(target)}); refusing the archive`);
          const resolved = posix.normalize(posix.join(posix.dirname(name), target));
          if (resolved === '..' || resolved.startsWith('../')) {
            throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(name)} is a symlink that leaves the archive (${JSON.stringify(target)}); refusing the archive`);
          }
          nodes.set(name, { kind: 'symlink', target: resolved });
          continue;
        }
        case 'link': {
          entry.resume();
          const target = cleanName(h.linkname ?? '');
          const node = nodes.get(target);
          if (!node) throw new ArchiveError('format', `archive entry ${JSON.stringify(name)} is a hard link to ${JSON.stringify(target)}, which is not earlier in the archive`);
          nodes.set(name, node);
          continue;
        }
        case 'file':
        case 'contiguous-file':
          break;
        default:
          throw new ArchiveError('unsafe', `archive entry ${JSON.stringify(name)} is a ${h.type ?? 'special file'}; image archives only hold files, directories and symlinks`);
      }
      const size = h.size ?? 0;
      if (isMetadataName(name)) {
        if (size > MAX_METADATA_BYTES || (metaTotal += size) > MAX_METADATA_TOTAL) {
          throw new ArchiveError('format', `archive entry ${JSON.stringify(name)} is too large for metadata (${size} bytes)`);
        }
        const parts: Buffer[] = [];
        for await (const c of entry as AsyncIterable<Buffer>) parts.push(c);
        nodes.set(name, { kind: 'file', size, data: Buffer.concat(parts) });
        continue;
      }
      const expected = blobNameDigest(name);
      if (expected && (await store.has(expected))) {
        // Already stored (and so verified once): skip the bytes.
        // Drained by iteration: waiting for 'end' could miss one already emitted.
        for await (const _chunk of entry as AsyncIterable<Buffer>) { /* discard */ }
        nodes.set(name, { kind: 'file', size, digest: expected });
        continue;
      }
      opts.onProgress?.({ status: 'Loading layer', id: expected ? parseDigest(expected).hex.slice(0, 12) : name.slice(0, 12), current: 0, total: size });
      let info;
      try {
        info = await store.writeStream(entry as AsyncIterable<Uint8Array>, { digest: expected, size });
      } catch (err) {
        if ((err as { code?: string }).code === 'digest-mismatch') {
          throw new ArchiveError('digest', `archive entry ${JSON.stringify(name)} does not match its digest: ${(err as Error).message}; refusing the archive`, { cause: err });
        }
        throw err;
      }
      if (info.created) added.add(info.digest);
      nodes.set(name, { kind: 'file', size, digest: info.digest });
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    source.resume(); // drain whatever the client still sends, so it gets the answer
  }
  await feed;
  if (count === 0) throw new ArchiveError('format', 'the archive is empty (or not a tar file)');
  return nodes;
}

function resolveNode(nodes: Map<string, ArchiveNode>, rawName: string, what: string): ArchiveFile & { name: string } {
  let name = cleanName(rawName);
  for (let depth = 0; depth <= MAX_LINK_DEPTH; depth++) {
    const node = nodes.get(name);
    if (!node) throw new ArchiveError('missing', `the archive has no ${what} ${JSON.stringify(rawName)}`);
    if (node.kind === 'file') return { ...node, name };
    name = node.target;
  }
  throw new ArchiveError('format', `${what} ${JSON.stringify(rawName)}: too many levels of symbolic links`);
}

async function nodeBytes(store: ContentStore, node: ArchiveFile): Promise<Buffer> {
  if (node.data) return node.data;
  if (node.size > MAX_METADATA_BYTES) throw new ArchiveError('format', `a JSON document in the archive is too large (${node.size} bytes)`);
  return store.readBuffer(node.digest!);
}

function parseJSON<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new ArchiveError('format', `${what} in the archive is not valid JSON: ${(err as Error).message}`);
  }
}

function checkConfig(config: ImageConfig, what: string): Digest[] {
  if (!config || typeof config !== 'object' || !config.rootfs || !Array.isArray(config.rootfs.diff_ids)) {
    throw new ArchiveError('format', `${what} is not an image config (no rootfs.diff_ids)`);
  }
  for (const d of config.rootfs.diff_ids) {
    if (!isDigest(d)) throw new ArchiveError('format', `${what} has an invalid diff ID ${JSON.stringify(d)}`);
  }
  return config.rootfs.diff_ids;
}

/** Parses a name from an archive into a tagged reference; a bad name is an error (docker's behaviour). */
function archiveRef(name: string, where: string): Reference {
  try {
    const ref = parseNormalizedReference(name);
    if (ref.digest !== undefined && ref.tag === undefined) throw new Error('a digest reference cannot be a tag');
    if (ref.tag === undefined) ref.tag = 'latest';
    return { domain: ref.domain, path: ref.path, tag: ref.tag };
  } catch (err) {
    throw new ArchiveError('format', `invalid image name ${JSON.stringify(name)} in ${where}: ${(err as Error).message}`);
  }
}

async function storeSmall(store: ContentStore, added: Set<Digest>, bytes: Buffer, expected?: Digest): Promise<Digest> {
  const digest = expected ?? sha256Digest(bytes);
  if (!(await store.has(digest))) {
    await store.writeBuffer(bytes, expected);
    added.add(digest);
  }
  return digest;
}

function layerMediaType(compression: Compression): string {
  return compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
}

async function sniffCompression(store: ContentStore, digest: Digest): Promise<Compression> {
  const s = store.createReadStream(digest, { start: 0, end: MAGIC_BYTES - 1 });
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  try {
    return detectCompression(Buffer.concat(parts));
  } catch (err) {
    throw new ArchiveError('unsupported', `layer ${digest}: ${(err as Error).message}`);
  }
}

async function describe(nodes: Map<string, ArchiveNode>, store: ContentStore, added: Set<Digest>, opts: ReadArchiveOptions): Promise<ReadArchiveResult> {
  if (nodes.has('manifest.json')) return { images: await describeDocker(nodes, store, added), added, format: 'docker-archive' };
  if (nodes.has('index.json')) return { images: await describeOci(nodes, store, added, opts), added, format: 'oci-layout' };
  if (nodes.has('repositories')) {
    throw new ArchiveError('unsupported', 'this is a pre-1.10 docker archive (a "repositories" file without manifest.json); load it into docker ≥ 1.10 and save it again');
  }
  throw new ArchiveError('format', 'not an image archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)');
}

interface DockerManifestItem { Config?: unknown; RepoTags?: unknown; Layers?: unknown; LayerSources?: Record<string, Descriptor> }

async function describeDocker(nodes: Map<string, ArchiveNode>, store: ContentStore, added: Set<Digest>): Promise<LoadedImage[]> {
  const items = parseJSON<DockerManifestItem[]>(await nodeBytes(store, resolveNode(nodes, 'manifest.json', 'file')), 'manifest.json');
  if (!Array.isArray(items)) throw new ArchiveError('format', 'manifest.json is not a list of images');
  const images: LoadedImage[] = [];
  for (const [i, item] of items.entries()) {
    const where = `manifest.json entry ${i}`;
    if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
      throw new ArchiveError('format', `${where} needs "Config" (a path) and "Layers" (a list of paths)`);
    }
    if (item.LayerSources && Object.keys(item.LayerSources).length) {
      throw new ArchiveError('unsupported', `${where} has foreign layers (LayerSources), which Berth does not load`);
    }
    const cfgNode = resolveNode(nodes, item.Config, 'config');
    const configBytes = await nodeBytes(store, cfgNode);
    const config = parseJSON<ImageConfig>(configBytes, item.Config);
    const diffIds = checkConfig(config, item.Config);
    const blobDigest = blobNameDigest(cfgNode.name);
    const id = await storeSmall(store, added, configBytes);
    if (blobDigest && blobDigest !== id) throw new ArchiveError('digest', `config ${cfgNode.name} does not match its digest (it hashes to ${id}); refusing the archive`);
    const layerPaths = item.Layers as string[];
    if (layerPaths.length !== diffIds.length) {
      throw new ArchiveError('format', `${where} lists ${layerPaths.length} layers but its config has ${diffIds.length} diff IDs`);
    }
    const layers: LoadedLayer[] = [];
    for (const [j, p] of layerPaths.entries()) {
      const node = resolveNode(nodes, p, 'layer');
      if (!node.digest) throw new ArchiveError('format', `layer ${JSON.stringify(p)} is not a layer tar`);
      const compression = await sniffCompression(store, node.digest);
      // An uncompressed layer is its own diff ID: check it now, before anything is unpacked.
      if (compression === 'none' && node.digest !== diffIds[j]) {
        throw new ArchiveError('digest', `layer ${JSON.stringify(p)} hashes to ${node.digest}, but the image config says its diff ID is ${diffIds[j]}; refusing the archive`);
      }
      layers.push({ diffId: diffIds[j]!, blob: { mediaType: layerMediaType(compression), digest: node.digest, size: node.size } });
    }
    const manifest: ImageManifest = {
      schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: id, size: configBytes.length },
      layers: layers.map((l) => l.blob),
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const mdigest = await storeSmall(store, added, bytes);
    const refs: Reference[] = [];
    if (item.RepoTags !== null && item.RepoTags !== undefined) {
      if (!Array.isArray(item.RepoTags)) throw new ArchiveError('format', `${where}: RepoTags is not a list`);
      for (const t of item.RepoTags) refs.push(archiveRef(String(t), where));
    }
    images.push({ id, config, configBytes, layers, manifest: { digest: mdigest, bytes, mediaType: MediaType.OciManifest }, refs });
  }
  return images;
}

async function describeOci(nodes: Map<string, ArchiveNode>, store: ContentStore, added: Set<Digest>, opts: ReadArchiveOptions): Promise<LoadedImage[]> {
  const layoutNode = nodes.get('oci-layout');
  if (layoutNode) {
    const layout = parseJSON<{ imageLayoutVersion?: string }>(await nodeBytes(store, resolveNode(nodes, 'oci-layout', 'file')), 'oci-layout');
    if (typeof layout.imageLayoutVersion === 'string' && !layout.imageLayoutVersion.startsWith('1.')) {
      throw new ArchiveError('unsupported', `OCI layout version ${layout.imageLayoutVersion} is not supported (1.x is)`);
    }
  }
  const index = parseJSON<ImageIndex>(await nodeBytes(store, resolveNode(nodes, 'index.json', 'file')), 'index.json');
  if (!index || !Array.isArray(index.manifests)) throw new ArchiveError('format', 'index.json has no "manifests" list');
  const want = normalizePlatform(opts.platform ?? hostPlatform());

  const blob = async (desc: Descriptor, what: string): Promise<{ digest: Digest; bytes?: Buffer; size: number }> => {
    if (!desc || !isDigest(desc.digest)) throw new ArchiveError('format', `${what} has an invalid digest ${JSON.stringify(desc?.digest)}`);
    const node = resolveNode(nodes, blobPath(desc.digest), `${what} blob`);
    if (node.size !== desc.size) throw new ArchiveError('digest', `${what} ${desc.digest} is ${node.size} bytes in the archive, the descriptor says ${desc.size}; refusing the archive`);
    return { digest: desc.digest, size: node.size };
  };
  const json = async <T>(desc: Descriptor, what: string): Promise<{ value: T; bytes: Buffer }> => {
    await blob(desc, what);
    const node = resolveNode(nodes, blobPath(desc.digest), `${what} blob`);
    const bytes = await nodeBytes(store, node);
    if (sha256Digest(bytes) !== desc.digest && parseDigest(desc.digest).algorithm === 'sha256') {
      throw new ArchiveError('digest', `${what} ${desc.digest} does not match its digest; refusing the archive`);
    }
    return { value: parseJSON<T>(bytes, `${what} ${desc.digest}`), bytes };
  };

  // Several index entries may name one manifest (one per tag): one image, several names.
  const byManifest = new Map<Digest, LoadedImage>();
  const order: LoadedImage[] = [];
  for (const [i, top] of index.manifests.entries()) {
    let desc = top;
    const where = `index.json entry ${i}`;
    if (desc.mediaType === MediaType.OciIndex || desc.mediaType === MediaType.DockerManifestList) {
      const nested = (await json<ImageIndex>(desc, 'index')).value;
      const pick = selectManifest(nested.manifests ?? [], want);
      if (!pick) throw new ArchiveError('unsupported', `${where}: no image for the platform ${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ''} in the index`);
      desc = pick;
    } else if (desc.mediaType && desc.mediaType !== MediaType.OciManifest && desc.mediaType !== MediaType.DockerManifest) {
      throw new ArchiveError('unsupported', `${where} is a ${desc.mediaType}, not an image`);
    }
    let img = byManifest.get(desc.digest);
    if (!img) {
      const m = await json<ImageManifest>(desc, 'manifest');
      const manifest = m.value;
      if (!manifest?.config || !Array.isArray(manifest.layers)) throw new ArchiveError('format', `manifest ${desc.digest} has no config or layers`);
      const cfg = await json<ImageConfig>(manifest.config, 'config');
      const diffIds = checkConfig(cfg.value, `config ${manifest.config.digest}`);
      if (diffIds.length !== manifest.layers.length) {
        throw new ArchiveError('format', `manifest ${desc.digest} has ${manifest.layers.length} layers but its config has ${diffIds.length} diff IDs`);
      }
      const layers: LoadedLayer[] = [];
      for (const [j, l] of manifest.layers.entries()) {
        if (l.mediaType && /nondistributable|foreign/.test(l.mediaType) && !nodes.has(blobPath(l.digest))) {
          throw new ArchiveError('unsupported', `layer ${l.digest} is a foreign layer that the archive does not include`);
        }
        await blob(l, 'layer');
        const compression = await sniffCompression(store, l.digest);
        if (compression === 'none' && l.digest !== diffIds[j]) {
          throw new ArchiveError('digest', `layer ${l.digest} is uncompressed but is not the diff ID ${diffIds[j]} the config names; refusing the archive`);
        }
        layers.push({ diffId: diffIds[j]!, blob: { mediaType: l.mediaType ?? layerMediaType(compression), digest: l.digest, size: l.size } });
      }
      // Blobs read from memory (small metadata) must be in the store too.
      await storeSmall(store, added, cfg.bytes, manifest.config.digest);
      await storeSmall(store, added, m.bytes, desc.digest);
      img = {
        id: manifest.config.digest, config: cfg.value, configBytes: cfg.bytes, layers,
        manifest: { digest: desc.digest, bytes: m.bytes, mediaType: manifest.mediaType ?? desc.mediaType ?? MediaType.OciManifest }, refs: [],
      };
      byManifest.set(desc.digest, img);
      order.push(img);
    }
    const name = top.annotations?.[ANNOTATION_IMAGE_NAME] ?? ociRefName(top.annotations?.[ANNOTATION_REF_NAME]);
    if (name) {
      const ref = archiveRef(name, where);
      if (!img.refs.some((r) => referenceString(r) === referenceString(ref))) img.refs.push(ref);
    }
  }
  return order;
}

/**
 * org.opencontainers.image.ref.name is only a tag to the spec, but skopeo and podman put whole
 * names there ("busybox:latest", "localhost/x:1"); a bare tag names no repository, so it is
 * ignored (the image loads untagged, as docker does).
 */
function ociRefName(v: string | undefined): string | undefined {
  if (!v) return undefined;
  if (!v.includes(':') && !v.includes('/')) return undefined;
  return v;
}

// ─── unpack ────────────────────────────────────────────────────────────────────────────────────

export interface UnpackLayersOptions {
  signal?: AbortSignal;
  onProgress?: ProgressSink;
}

/**
 * Makes sure every layer of the image is a committed snapshot. Returns the chain IDs it created
 * (bottom first), so a failed load can remove them again; on failure, it removes its own.
 */
export async function unpackLayers(store: ContentStore, snapshots: Snapshotter, layers: LoadedLayer[], opts: UnpackLayersOptions = {}): Promise<Digest[]> {
  const chain = chainIds(layers.map((l) => l.diffId));
  const created: Digest[] = [];
  try {
    for (const [i, layer] of layers.entries()) {
      opts.signal?.throwIfAborted();
      const id = parseDigest(layer.blob.digest).hex.slice(0, 12);
      const target = await snapshots.prepareLayer(chain[i]!, i === 0 ? null : chain[i - 1]!);
      if (!target) continue;
      try {
        opts.onProgress?.({ status: 'Loading layer', id, current: 0, total: layer.blob.size });
        const result = await applyLayer(store.createReadStream(layer.blob.digest), {
          target: target.dir, mode: target.mode, lowers: target.lowers, mediaType: layer.blob.mediaType,
          digest: layer.blob.digest, expectedDiffId: layer.diffId, signal: opts.signal,
          onProgress: (n) => opts.onProgress?.({ status: 'Loading layer', id, current: n, total: layer.blob.size }),
        });
        // Snapshot sizes are docker's SIZE (file bytes), as the pull path records them.
        await target.commit({ ...result, size: result.contentSize });
        created.push(chain[i]!);
      } catch (err) {
        await target.abort();
        if (err instanceof LayerError && err.reason === 'diffid') throw new ArchiveError('digest', `${err.message}; refusing the archive`, { cause: err });
        throw err;
      }
    }
    return created;
  } catch (err) {
    await removeSnapshots(snapshots, created);
    throw err;
  }
}

/** Removes snapshots a failed operation created, top first; ones others now build on are kept. */
export async function removeSnapshots(snapshots: Snapshotter, chain: Digest[]): Promise<void> {
  for (const c of [...chain].reverse()) {
    try {
      if (snapshots.has(c) && snapshots.children(c).length === 0) await snapshots.remove(c);
    } catch {
      // kept: another image's pull started using it
    }
  }
}

// ─── import ────────────────────────────────────────────────────────────────────────────────────

export interface ImportOptions {
  /** Shown in the history ("Imported from -" or the URL) unless `message` is given. */
  source: string;
  message?: string;
  changes?: string[];
  platform?: Platform;
  created?: Date;
  signal?: AbortSignal;
}

export interface ImportedImage {
  id: Digest;
  config: ImageConfig;
  configBytes: Buffer;
  layer: LoadedLayer;
  manifest: { digest: Digest; bytes: Buffer; mediaType: string };
  added: Set<Digest>;
}

/**
 * A rootfs tarball (plain, gzip or zstd) → the blobs of a one-layer image: the layer is stored
 * uncompressed (its digest is its diff ID). The caller unpacks it (unpackLayers) and records it.
 */
export async function importRootfs(source: AsyncIterable<Uint8Array>, store: ContentStore, opts: ImportOptions): Promise<ImportedImage> {
  const added = new Set<Digest>();
  try {
    const config: ContainerConfig = applyChanges({}, opts.changes ?? []);
    const iter = source[Symbol.asyncIterator]();
    const first = await iter.next();
    if (first.done || first.value.length === 0) throw new ArchiveError('format', 'the imported tarball is empty');
    const head = Buffer.from(first.value);
    let compression: Compression;
    try {
      compression = detectCompression(head.subarray(0, MAGIC_BYTES));
    } catch (err) {
      throw new ArchiveError('unsupported', `the imported tarball: ${(err as Error).message}`);
    }
    const all = async function* (): AsyncGenerator<Buffer> {
      yield head;
      for (let r = await iter.next(); !r.done; r = await iter.next()) yield Buffer.from(r.value);
    };
    const decompressor = createDecompressor(compression);
    const plain: AsyncIterable<Uint8Array> = decompressor ? through(all(), decompressor) : all();
    const info = await store.writeStream(plain);
    if (info.created) added.add(info.digest);
    const diffId = info.digest;

    const platform = normalizePlatform(opts.platform ?? hostPlatform());
    const created = (opts.created ?? new Date()).toISOString();
    const comment = opts.message || `Imported from ${opts.source}`;
    const image: ImageConfig = {
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: platform.os,
      created,
      comment,
      config,
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, comment }],
    };
    const configBytes = Buffer.from(JSON.stringify(image));
    const id = await storeSmall(store, added, configBytes);
    const layer: LoadedLayer = { diffId, blob: { mediaType: MediaType.OciLayer, digest: diffId, size: info.size } };
    const manifest: ImageManifest = {
      schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: id, size: configBytes.length },
      layers: [layer.blob],
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const mdigest = await storeSmall(store, added, bytes);
    return { id, config: image, configBytes, layer, manifest: { digest: mdigest, bytes, mediaType: MediaType.OciManifest }, added };
  } catch (err) {
    await discardBlobs(store, added);
    if (err instanceof LayerError) throw new ArchiveError('format', `the imported tarball: ${err.message}`, { cause: err });
    throw err;
  }
}

// ─── --change ──────────────────────────────────────────────────────────────────────────────────

const CHANGE_COMMANDS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

function changeError(line: string, why: string): ArchiveError {
  return new ArchiveError('changes', `invalid --change ${JSON.stringify(line)}: ${why}`);
}

/** A JSON array of strings, or undefined when the text is not one (then it is shell form). Shared with the Dockerfile parser. */
export function jsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // shell form that happens to start with "["
  }
  return undefined;
}

/** Dockerfile word splitting for ENV/LABEL: quotes group and are removed, backslash escapes. */
function splitWords(text: string, line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") { quote = c; inWord = true; continue; }
    if (c === '\\' && i + 1 < text.length) { cur += text[++i]; inWord = true; continue; }
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (quote) throw changeError(line, 'unterminated quote');
  if (inWord) words.push(cur);
  return words;
}

/** `k=v k2="v 2"` pairs, or the legacy one-pair form `k v with spaces`. */
function keyValues(args: string, line: string, command: string): Array<[string, string]> {
  const words = splitWords(args, line);
  if (words.length === 0) throw changeError(line, `${command} needs at least one argument`);
  if (!words[0]!.includes('=')) {
    const m = /^\s*(\S+)\s+(.*)$/.exec(args);
    if (!m) throw changeError(line, `${command} needs a value`);
    return [[m[1]!, splitWords(m[2]!, line).join(' ')]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw changeError(line, `${command} expects key=value pairs, got ${JSON.stringify(w)}`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/**
 * Applies Dockerfile instructions to a container config (the same set `docker import --change`
 * accepts). Returns a new config; the input is not modified.
 */
export function applyChanges(base: ContainerConfig, changes: string[]): ContainerConfig {
  const cfg: ContainerConfig = structuredClone(base);
  for (const raw of changes) {
    // The CLI sends one instruction per --change, but a caller may join them with newlines.
    for (const line of raw.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
      const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(line)!;
      const command = m[1]!.toUpperCase();
      const args = (m[2] ?? '').trim();
      if (!CHANGE_COMMANDS.includes(command)) throw changeError(line, `${m[1]} is not a valid change command (one of ${CHANGE_COMMANDS.join(', ')})`);
      switch (command) {
        case 'CMD':
        case 'ENTRYPOINT': {
          if (!args) throw changeError(line, `${command} needs an argument`);
          const arr = jsonArray(args) ?? ['/bin/sh', '-c', args];
          if (command === 'CMD') cfg.Cmd = arr;
          else {
            cfg.Entrypoint = arr;
            // As docker's builder: a new ENTRYPOINT resets a CMD inherited from before it.
            cfg.Cmd = null;
          }
          break;
        }
        case 'ENV': {
          const env = [...(cfg.Env ?? [])];
          for (const [k, v] of keyValues(args, line, 'ENV')) {
            const i = env.findIndex((e) => e.split('=', 1)[0] === k);
            if (i >= 0) env[i] = `${k}=${v}`;
            else env.push(`${k}=${v}`);
          }
          cfg.Env = env;
          break;
        }
        case 'LABEL': {
          const labels = { ...(cfg.Labels ?? {}) };
          for (const [k, v] of keyValues(args, line, 'LABEL')) labels[k] = v;
          cfg.Labels = labels;
          break;
        }
        case 'EXPOSE': {
          const ports = { ...(cfg.ExposedPorts ?? {}) };
          for (const p of splitWords(args, line)) {
            const pm = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
            if (!pm) throw changeError(line, `invalid port ${JSON.stringify(p)} (expected PORT[-PORT][/tcp|udp|sctp])`);
            const lo = Number(pm[1]);
            const hi = pm[2] ? Number(pm[2]) : lo;
            if (lo < 1 || hi > 65535 || hi < lo) throw changeError(line, `invalid port range ${JSON.stringify(p)}`);
            for (let port = lo; port <= hi; port++) ports[`${port}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
          }
          cfg.ExposedPorts = ports;
          break;
        }
        case 'VOLUME': {
          const list = jsonArray(args) ?? splitWords(args, line);
          if (list.length === 0) throw changeError(line, 'VOLUME needs at least one path');
          const vols = { ...(cfg.Volumes ?? {}) };
          for (const v of list) {
            if (!v.trim()) throw changeError(line, 'VOLUME paths cannot be empty');
            vols[v] = {};
          }
          cfg.Volumes = vols;
          break;
        }
        case 'USER':
          if (!args) throw changeError(line, 'USER needs a user name or uid');
          cfg.User = args;
          break;
        case 'WORKDIR': {
          if (!args) throw changeError(line, 'WORKDIR needs a path');
          const dir = splitWords(args, line).join(' ');
          cfg.WorkingDir = dir.startsWith('/') ? posix.normalize(dir) : posix.join(cfg.WorkingDir || '/', dir);
          break;
        }
        case 'STOPSIGNAL':
          if (!/^(SIG)?[A-Z0-9+-]+$/i.test(args)) throw changeError(line, `invalid signal ${JSON.stringify(args)}`);
          cfg.StopSignal = args;
          break;
        case 'ONBUILD':
          if (!args) throw changeError(line, 'ONBUILD needs an instruction');
          cfg.OnBuild = [...(cfg.OnBuild ?? []), args];
          break;
      }
    }
  }
  return cfg;
}

// ─── operations over the stores (save / load / import as the API runs them) ─────────────────────

export interface ArchiveStores {
  content: ContentStore;
  snapshots: Snapshotter;
  images: ImageStore;
  /** Held shared while content is added, so a concurrent prune cannot collect it half-way. */
  lock: GcLock;
  /** Publishes an image event (docker: save, load, import, tag, untag). */
  event?: (action: string, id: string, attributes?: Record<string, string>) => void;
}

export class ImageNotFoundError extends Error {
  override name = 'ImageNotFoundError';
  constructor(readonly ref: string) {
    super(`No such image: ${ref}`);
  }
}

/**
 * Resolves `docker save` arguments as docker does: a tagged name saves that tag, a bare
 * repository name saves every tag of it, an ID (or ID prefix) saves the image untagged.
 */
export function resolveSaveNames(images: ImageStore, names: string[]): Map<Digest, Reference[]> {
  const out = new Map<Digest, Reference[]>();
  const add = (id: Digest, ref?: Reference): void => {
    const refs = out.get(id) ?? [];
    if (ref && !refs.some((r) => referenceString(r) === referenceString(ref))) refs.push(ref);
    out.set(id, refs);
  };
  for (const name of names) {
    let parsed: Reference | undefined;
    try {
      const any = parseAnyReference(name);
      if (any.kind === 'reference') parsed = any.reference;
    } catch {
      parsed = undefined;
    }
    if (parsed && parsed.tag === undefined && parsed.digest === undefined) {
      const repo = referenceName(parsed);
      const tagged = images.allReferences().filter((r) => r.repository === repo && r.tag !== undefined);
      if (tagged.length) {
        for (const r of tagged) add(r.imageId, { domain: parsed.domain, path: parsed.path, tag: r.tag });
        continue;
      }
    }
    const found = images.lookup(name);
    if (!found) throw new ImageNotFoundError(name);
    add(found.image.id, found.ref?.tag !== undefined ? { domain: parsed!.domain, path: parsed!.path, tag: found.ref.tag } : undefined);
  }
  return out;
}

/** What writeArchive needs for the named images (throws ImageNotFoundError before anything is written). */
export async function prepareSave(stores: ArchiveStores, names: string[]): Promise<ArchiveImage[]> {
  const wanted = resolveSaveNames(stores.images, names);
  const list: ArchiveImage[] = [];
  for (const [id, refs] of wanted) {
    const rec = stores.images.get(id)!;
    const config = await stores.content.readBuffer(id);
    const layers: ArchiveLayer[] = [];
    for (const layer of stores.images.layersOf(id)) {
      let blob: Descriptor | undefined;
      for (const b of layer.blobs) {
        if (await stores.content.has(b.digest)) { blob = { mediaType: b.mediaType, digest: b.digest, size: b.size }; break; }
      }
      if (!blob) {
        throw new ArchiveError('missing', `image ${shortIdOf(id)}: no stored blob of layer ${layer.diffId} (the content store lost it); pull or load the image again`);
      }
      layers.push({ diffId: layer.diffId, blob });
    }
    let manifest: ArchiveImage['manifest'];
    if (rec.manifestDigest && (await stores.content.has(rec.manifestDigest))) {
      manifest = { digest: rec.manifestDigest, bytes: await stores.content.readBuffer(rec.manifestDigest) };
      // Only usable as is when every blob it names is here.
      const m = JSON.parse(manifest.bytes.toString('utf8')) as ImageManifest;
      for (const l of m.layers ?? []) if (!(await stores.content.has(l.digest))) manifest = undefined;
    }
    list.push({ id, config, layers, refs, manifest });
  }
  return list;
}

/** Streams the named images as one archive to `out` (see writeArchive). */
export async function saveImages(stores: ArchiveStores, names: string[], out: Writable, opts: { format?: ArchiveFormat; signal?: AbortSignal } = {}): Promise<void> {
  const list = await prepareSave(stores, names);
  // Read under the shared lock: a prune must not remove a blob between resolution and streaming.
  await stores.lock.shared(() => writeArchive(stores.content, list, out, {
    format: opts.format, signal: opts.signal, onImageSaved: (id) => stores.event?.('save', id),
  }));
}

function shortIdOf(id: Digest): string {
  return parseDigest(id).hex.slice(0, 12);
}

/** Records an image whose blobs and snapshots are in place, and points its names at it. */
function recordImage(stores: ArchiveStores, img: { id: Digest; config: ImageConfig; layers: LoadedLayer[]; manifest?: { digest: Digest; mediaType: string } }, refs: Reference[], lines: string[]): void {
  const diffIds = img.layers.map((l) => l.diffId);
  const chains = chainIds(diffIds);
  const size = chains.reduce((n, c) => n + (stores.snapshots.get(c)?.size ?? 0), 0);
  stores.images.transaction(() => {
    stores.images.put({
      id: img.id,
      manifestDigest: img.manifest?.digest,
      manifestMediaType: img.manifest?.mediaType,
      platform: platformOf(img.config),
      created: typeof img.config.created === 'string' ? img.config.created : undefined,
      size, diffIds, chainIds: chains,
    });
    for (const l of img.layers) stores.images.recordLayerBlob({ diffId: l.diffId, digest: l.blob.digest, mediaType: l.blob.mediaType, size: l.blob.size, source: '' });
    for (const ref of refs) {
      const { previous } = stores.images.tag(img.id, ref);
      // dockerd says this whenever a loaded tag moves, whether or not the old image keeps other names.
      if (previous) {
        lines.push(`The image ${familiarString(ref)} already exists, renaming the old one with ID ${previous} to empty string`);
      }
    }
  });
  for (const ref of refs) {
    lines.push(`Loaded image: ${familiarString(ref)}`);
    stores.event?.('tag', img.id, { name: familiarString(ref) });
  }
  if (refs.length === 0) lines.push(`Loaded image ID: ${img.id}`);
}

export interface LoadOptions {
  signal?: AbortSignal;
  platform?: Platform;
  onProgress?: ProgressSink;
}

/**
 * `docker load`: reads the archive, unpacks every layer and only then records the images, so a
 * refused archive leaves no image, blob or snapshot behind. Returns docker's output lines.
 */
export async function loadImages(stores: ArchiveStores, source: Readable, opts: LoadOptions = {}): Promise<string[]> {
  return stores.lock.shared(async () => {
    const read = await readArchive(source, stores.content, opts);
    const created: Digest[][] = [];
    try {
      if (read.images.length === 0) throw new ArchiveError('format', 'the archive contains no images');
      for (const img of read.images) {
        created.push(await unpackLayers(stores.content, stores.snapshots, img.layers, { signal: opts.signal, onProgress: opts.onProgress }));
      }
    } catch (err) {
      for (const c of created.reverse()) await removeSnapshots(stores.snapshots, c);
      await discardBlobs(stores.content, unreferenced(stores, read.added));
      throw err;
    }
    const lines: string[] = [];
    for (const img of read.images) {
      // A docker-archive has no manifest of its own: the one readArchive made is not recorded
      // as the image's (it was never pulled or pushed as that), so push builds its own.
      const manifest = read.format === 'oci-layout' ? img.manifest : undefined;
      recordImage(stores, { ...img, manifest }, img.refs, lines);
      stores.event?.('load', img.id);
    }
    // What the images did not take (a docker-archive's made-up manifests, other platforms of an
    // index) would only wait for the next prune.
    await discardBlobs(stores.content, unreferenced(stores, read.added));
    return lines;
  });
}

/** The blobs of `added` that no image record uses (a failed load must not delete what others now use). */
function unreferenced(stores: ArchiveStores, added: Set<Digest>): Digest[] {
  const used = stores.images.usedBlobs();
  return [...added].filter((d) => !used.has(d));
}

export interface ImportImageOptions extends ImportOptions {
  /** The name to tag the image with (repo[:tag]); none leaves it untagged. */
  ref?: Reference;
}

/** `docker import`: a rootfs tarball → a recorded one-layer image. Returns its ID. */
export async function importImage(stores: ArchiveStores, source: AsyncIterable<Uint8Array>, opts: ImportImageOptions): Promise<Digest> {
  return stores.lock.shared(async () => {
    const img = await importRootfs(source, stores.content, opts);
    let created: Digest[] = [];
    try {
      created = await unpackLayers(stores.content, stores.snapshots, [img.layer], { signal: opts.signal });
    } catch (err) {
      await removeSnapshots(stores.snapshots, created);
      await discardBlobs(stores.content, unreferenced(stores, img.added));
      throw err;
    }
    const lines: string[] = [];
    recordImage(stores, { id: img.id, config: img.config, layers: [img.layer] }, opts.ref ? [opts.ref] : [], lines);
    stores.event?.('import', img.id);
    return img.id;
  });
}
