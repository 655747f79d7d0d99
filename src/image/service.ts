// The image service: the operations behind the Engine API's image endpoints, over the registry
// client, content store, unpacker, snapshotter and image store.
//
// Pull, per layer: a snapshot for its chain ID already there → "Already exists"; otherwise the
// blob is downloaded (at most PULL_CONCURRENCY at once, as dockerd) into a content-store ingest,
// which resumes from the bytes a killed daemon left behind (Range request). When the layer's
// parent snapshot is already committed as its download starts, the bytes are teed straight into
// applyLayer, so download and extraction overlap with no second read; other layers are extracted
// from the store as soon as their parent is committed. Snapshots are committed strictly in chain
// order, and the image record is written last, so a crash at any point leaves blobs and snapshots
// that are complete (or absent) and at worst unreferenced — never an image with missing parts.
// Concurrent pulls of one blob share its download: the content store admits one writer per digest
// and the second finds the blob complete; the snapshotter does the same per chain ID.
//
// Push sends each layer's original compressed blob (recorded at pull time), so an unchanged
// image's manifest bytes, and therefore its digest, stay the same; it mounts from the source
// repository when that is on the same registry.
import { once } from 'node:events';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ContentStore } from './content-store.ts';
import { chainIds, shortId } from './digest.ts';
import { gcLockFor } from './gc-lock.ts';
import { ImageStore, type ImageRecord } from './image-store.ts';
import {
  familiarName, familiarString, isValidTag, parseDockerReference, parseNormalizedReference, referenceName, withDigest, withTag,
  type Reference,
} from './reference.ts';
import {
  CredentialStore, fixedCredentials, RegistryClient, type Credentials, type CredentialResolver, type ResolvedImage,
} from './registry/index.ts';
import { Snapshotter, type LayerTarget } from './snapshots.ts';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest, type Platform, type ProgressSink } from './types.ts';
import { applyLayer } from './unpack/index.ts';

/** dockerd's max-concurrent-downloads / uploads default. */
const PULL_CONCURRENCY = 3;
const PUSH_CONCURRENCY = 5;
const CLIENT_CACHE_SIZE = 16;

export type ImageServiceErrorCode = 'not-found' | 'conflict' | 'invalid' | 'unsupported';

export class ImageServiceError extends Error {
  override name = 'ImageServiceError';
  constructor(readonly code: ImageServiceErrorCode, message: string) {
    super(message);
  }
}

export interface ImageServiceOptions {
  dataRoot: string;
  db: ConstructorParameters<typeof ImageStore>[0];
  /** Read per operation (the daemon's config may be reloaded). */
  insecureRegistries: () => string[];
  /** The daemon's own credentials (docker config.json); X-Registry-Auth takes precedence. */
  credentials?: CredentialStore;
  /** Called after a change (pull/push/tag/untag/delete) with docker's event action and attributes. */
  onEvent?: (action: string, id: string, attributes: Record<string, string>) => void;
  /** Whether containers use an image (rmi refuses without force); none exist yet. */
  imageInUse?: (id: Digest) => string | undefined;
}

export interface PullOptions {
  platform?: Platform;
  /** Credentials from X-Registry-Auth (for the reference's registry). */
  auth?: Credentials;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface PushOptions {
  auth?: Credentials;
  progress?: ProgressSink;
  /** Side data for each pushed tag ({Tag, Digest, Size}): the API sends it as docker's `aux` message. */
  aux?: (value: { Tag: string; Digest: Digest; Size: number }) => void;
  signal?: AbortSignal;
}

export interface DeleteResult {
  Untagged?: string;
  Deleted?: string;
}

/** A counting semaphore: at most `n` holders at once, FIFO. */
class Limiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly n: number) {}
  /** True if a slot was free right away (callers report "Waiting" otherwise). */
  get free(): boolean { return this.active < this.n; }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

function isLayerType(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.') || mediaType.startsWith('application/vnd.docker.image.rootfs.');
}

export class ImageService {
  readonly store: ImageStore;
  readonly content: ContentStore;
  readonly snapshots: Snapshotter;
  private readonly opts: ImageServiceOptions;
  private readonly clients = new Map<string, RegistryClient>();
  /** Chain IDs an unfinished pull relies on (it has no image record yet): rmi must not remove them. */
  private readonly pinned = new Map<Digest, number>();

  private constructor(opts: ImageServiceOptions, store: ImageStore, content: ContentStore, snapshots: Snapshotter) {
    this.opts = opts;
    this.store = store;
    this.content = content;
    this.snapshots = snapshots;
  }

  /** Opens the stores under <dataRoot>/image/{content,snapshots}. */
  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const store = new ImageStore(opts.db);
    const content = new ContentStore(join(opts.dataRoot, 'image', 'content'));
    const snapshots = await Snapshotter.open(join(opts.dataRoot, 'image', 'snapshots'));
    return new ImageService(opts, store, content, snapshots);
  }

  /**
   * A registry client for these credentials. Clients are kept (a few, most recent first) because
   * each remembers host probes (HTTPS or plain HTTP) and bearer tokens: a fresh client per pull
   * would pay a ping, a TLS attempt and a token fetch every time.
   */
  private client(domain: string, auth?: Credentials): RegistryClient {
    const insecure = this.opts.insecureRegistries();
    const key = JSON.stringify([domain, auth ?? null, insecure]);
    const cached = this.clients.get(key);
    if (cached) {
      this.clients.delete(key);
      this.clients.set(key, cached);
      return cached;
    }
    const fallback: CredentialResolver | undefined = this.opts.credentials?.resolver();
    const fixed = auth ? fixedCredentials(domain, auth) : undefined;
    const credentials: CredentialResolver = async (d) => (await fixed?.(d)) ?? (await fallback?.(d));
    const client = new RegistryClient({ credentials, insecureRegistries: insecure, userAgent: 'berth' });
    this.clients.set(key, client);
    while (this.clients.size > CLIENT_CACHE_SIZE) this.clients.delete(this.clients.keys().next().value!);
    return client;
  }

  /** Forgets cached clients, e.g. after the daemon's own credential file changed (they cache credentials). */
  forgetClients(): void {
    this.clients.clear();
  }

  private emit(action: string, id: string, attributes: Record<string, string>): void {
    this.opts.onEvent?.(action, id, attributes);
  }

  // -------------------------------------------------------------------------------------------
  // pull
  // -------------------------------------------------------------------------------------------

  /**
   * `docker pull` of one reference (a tag or a digest; a bare name means :latest), or of every
   * tag of a repository with `allTags`. Progress goes to opts.progress in docker's words.
   */
  async pull(input: string | Reference, opts: PullOptions & { allTags?: boolean } = {}): Promise<ImageRecord[]> {
    const ref = typeof input === 'string' ? parseNormalizedReference(input) : input;
    const progress = opts.progress ?? (() => {});
    if (opts.allTags && ref.tag === undefined && ref.digest === undefined) {
      const client = this.client(ref.domain, opts.auth);
      const tags = await client.listTags(ref, { signal: opts.signal });
      const out: ImageRecord[] = [];
      for (const t of tags.filter(isValidTag)) out.push(await this.pullOne(withTag(ref, t), client, opts, progress, false));
      progress({ status: `Status: Downloaded newer image for ${familiarName(ref)}` });
      return out;
    }
    const full = ref.tag === undefined && ref.digest === undefined ? withTag(ref, 'latest') : ref;
    const client = this.client(full.domain, opts.auth);
    return [await this.pullOne(full, client, opts, progress, true)];
  }

  private async pullOne(ref: Reference, client: RegistryClient, opts: PullOptions, progress: ProgressSink, finalStatus: boolean): Promise<ImageRecord> {
    // Resolved before the first message: a missing or forbidden image is then a plain HTTP error,
    // which is how dockerd reports it ("Error response from daemon: …").
    const resolved = await client.resolve(ref, { platform: opts.platform, signal: opts.signal });
    progress({ id: ref.digest ?? ref.tag, status: `Pulling from ${ref.path}` });
    return gcLockFor(this.content).shared(async () => {
      const before = this.store.byReference(ref);
      const image = await this.fetchAndUnpack(resolved, client, opts.signal, progress);
      const name = familiarString(ref);
      progress({ status: `Digest: ${resolved.digest}` });
      // The record goes in last: what it names is complete by now.
      const existed = this.store.has(image.id);
      const rec = this.store.put(image);
      const repoDigest = withDigest({ domain: ref.domain, path: ref.path }, resolved.digest);
      this.store.tag(rec.id, repoDigest);
      if (ref.tag !== undefined) this.store.tag(rec.id, { domain: ref.domain, path: ref.path, tag: ref.tag });
      const upToDate = existed && before === rec.id;
      if (finalStatus) progress({ status: upToDate ? `Status: Image is up to date for ${name}` : `Status: Downloaded newer image for ${name}` });
      this.emit('pull', familiarString(ref), { name: familiarString(ref) });
      return this.store.get(rec.id)!;
    });
  }

  private async fetchAndUnpack(resolved: ResolvedImage, client: RegistryClient, outer: AbortSignal | undefined, progress: ProgressSink): Promise<Omit<ImageRecord, 'addedAt'>> {
    // One failed layer stops the others at once (they keep their partial data for a retry).
    const stop = new AbortController();
    const onOuterAbort = (): void => stop.abort(outer?.reason);
    if (outer?.aborted) stop.abort(outer.reason);
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      return await this.fetchAndUnpackWith(resolved, client, stop, progress);
    } finally {
      outer?.removeEventListener('abort', onOuterAbort);
    }
  }

  private async fetchAndUnpackWith(resolved: ResolvedImage, client: RegistryClient, stop: AbortController, progress: ProgressSink): Promise<Omit<ImageRecord, 'addedAt'>> {
    const ref = resolved.reference;
    const manifest = resolved.manifest.manifest;
    const config = resolved.config.config;
    const layers = manifest.layers.filter((l) => isLayerType(l.mediaType));
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (layers.length !== diffIds.length) {
      throw new ImageServiceError('invalid', `${familiarString(ref)}: the manifest has ${layers.length} layers but the config lists ${diffIds.length} diff IDs`);
    }
    const chains = chainIds(diffIds);
    const source = referenceName(ref);
    for (const c of chains) this.pinned.set(c, (this.pinned.get(c) ?? 0) + 1);
    try {
      return await this.fetchLayers(resolved, stop, progress, client, layers, diffIds, chains, source);
    } finally {
      for (const c of chains) {
        const n = (this.pinned.get(c) ?? 1) - 1;
        if (n <= 0) this.pinned.delete(c);
        else this.pinned.set(c, n);
      }
    }
  }

  private async fetchLayers(resolved: ResolvedImage, stop: AbortController, progress: ProgressSink, client: RegistryClient,
    layers: Descriptor[], diffIds: Digest[], chains: Digest[], source: string): Promise<Omit<ImageRecord, 'addedAt'>> {
    const signal = stop.signal;
    const ref = resolved.reference;
    const config = resolved.config.config;

    // The small blobs are written while the layers download (each costs an fsync); they only
    // have to be in place before the image record, which names them, is written.
    const metadata = Promise.all([
      resolved.index ? this.content.writeBuffer(resolved.index.bytes, resolved.index.digest) : undefined,
      this.content.writeBuffer(resolved.manifest.bytes, resolved.manifest.digest),
      this.content.writeBuffer(resolved.config.bytes, resolved.config.descriptor.digest),
    ]);
    metadata.catch(() => {});

    const limiter = new Limiter(PULL_CONCURRENCY);
    // committed[i] settles when layer i's snapshot exists (or fails).
    const committed: Array<Promise<void>> = [];
    const sizes: number[] = [];
    const ids = layers.map((l) => shortId(l.digest));
    const present = chains.map((c) => this.snapshots.has(c));
    // An image that is already complete gets no per-layer lines, as with dockerd.
    const known = this.store.has(resolved.config.descriptor.digest) && present.every(Boolean);
    if (!known) layers.forEach((_l, i) => progress({ id: ids[i], status: present[i] ? 'Already exists' : 'Pulling fs layer' }));

    const downloads = layers.map((layer, i) => {
      if (present[i]) {
        // Unpacked already (shared with another image, or loaded). Its compressed blob is still
        // fetched, quietly, when the store lacks it: push and `save --format oci` then have the
        // registry's exact blobs and manifest. Layers shared with pulled images have it already.
        return (async (): Promise<'present'> => {
          if (!(await this.content.has(layer.digest))) {
            await limiter.run(() => this.downloadLayer(client, ref, layer, {
              parentReady: () => false, extract: async () => {}, signal, progress: () => {}, id: ids[i]!,
            }));
          }
          return 'present';
        })();
      }
      if (!limiter.free) progress({ id: ids[i], status: 'Waiting' });
      return limiter.run(() => this.downloadLayer(client, ref, layer, {
        parentReady: () => i === 0 || this.snapshots.has(chains[i - 1]!),
        extract: (stream, gate) => this.extractLayer(stream, layer, diffIds[i]!, chains[i]!, i === 0 ? null : chains[i - 1]!, ids[i]!, signal, progress, sizes, i, gate),
        signal, progress, id: ids[i]!,
      }));
    });
    // Keep one rejection from surfacing as unhandled while another is awaited.
    for (const d of downloads) d.catch(() => {});

    for (let i = 0; i < layers.length; i++) {
      committed[i] = (async () => {
        if (i > 0) await committed[i - 1];
        const how = await downloads[i]!;
        if (how === 'present') {
          sizes[i] = this.snapshots.get(chains[i]!)?.size ?? 0;
          return;
        }
        if (how === 'stored') {
          await this.extractLayer(this.content.createReadStream(layers[i]!.digest), layers[i]!, diffIds[i]!, chains[i]!,
            i === 0 ? null : chains[i - 1]!, ids[i]!, signal, progress, sizes, i);
        }
        this.store.recordLayerBlob({ diffId: diffIds[i]!, digest: layers[i]!.digest, mediaType: layers[i]!.mediaType, size: layers[i]!.size, source });
        progress({ id: ids[i], status: 'Pull complete' });
      })();
      committed[i]!.catch(() => {});
    }
    try {
      await Promise.all(committed);
    } catch (err) {
      stop.abort(err);
      await Promise.allSettled(downloads);
      throw err;
    }
    await metadata;
    for (let i = 0; i < layers.length; i++) {
      if (present[i]) this.store.recordLayerBlob({ diffId: diffIds[i]!, digest: layers[i]!.digest, mediaType: layers[i]!.mediaType, size: layers[i]!.size, source });
    }
    const rec: Omit<ImageRecord, 'addedAt'> = {
      id: resolved.config.descriptor.digest,
      manifestDigest: resolved.manifest.digest,
      manifestMediaType: resolved.manifest.mediaType,
      platform: resolved.platform,
      size: sizes.reduce((a, b) => a + (b ?? 0), 0),
      diffIds,
      chainIds: chains,
    };
    if (resolved.index) rec.indexDigest = resolved.index.digest;
    if (config.created) rec.created = config.created;
    return rec;
  }

  /**
   * Downloads one layer blob into the content store, resuming a partial ingest. When the parent
   * snapshot is ready and nothing was downloaded before, the bytes are also fed to `extract`
   * as they arrive (tee); returns whether the layer was 'extracted' that way or only 'stored'.
   */
  private async downloadLayer(client: RegistryClient, ref: Reference, layer: Descriptor, o: {
    parentReady: () => boolean; extract: (stream: AsyncIterable<Uint8Array>, gate: { open: boolean }) => Promise<void>; signal: AbortSignal | undefined;
    progress: ProgressSink; id: string;
  }): Promise<'stored' | 'extracted'> {
    const ingest = await this.content.ingest({ digest: layer.digest, size: layer.size, ref: referenceName(ref) });
    if (ingest.complete) {
      await ingest.commit();
      o.progress({ id: o.id, status: 'Download complete' });
      return 'stored';
    }
    let tee: PassThrough | undefined;
    let extraction: Promise<void> | undefined;
    const gate = { open: false };
    try {
      const dl = await client.openBlob(ref, layer, { offset: ingest.offset, verify: false, signal: o.signal });
      if (dl.offset !== ingest.offset) await ingest.restart();
      if (dl.offset === 0 && o.parentReady()) {
        tee = new PassThrough({ highWaterMark: 1 << 20 });
        extraction = o.extract(tee, gate);
        extraction.catch(() => {});
      }
      let done = dl.offset;
      o.progress({ id: o.id, status: 'Downloading', current: done, total: layer.size });
      for await (const chunk of dl.stream) {
        const buf = chunk as Buffer;
        await ingest.write(buf);
        done += buf.length;
        o.progress({ id: o.id, status: 'Downloading', current: done, total: layer.size });
        if (tee && !tee.write(buf)) {
          // The extractor is slower than the network: wait for it, or for its failure.
          await Promise.race([once(tee, 'drain'), extraction!.then(() => { throw new Error('layer extraction ended before its input'); })]);
        }
      }
      o.progress({ id: o.id, status: 'Verifying Checksum' });
      await ingest.commit();
      o.progress({ id: o.id, status: 'Download complete' });
      gate.open = true;
    } catch (err) {
      await ingest.release().catch(() => {});
      tee?.destroy(err as Error);
      if (extraction) await extraction.catch(() => {});
      throw err;
    }
    if (tee) {
      tee.end();
      await extraction;
      return 'extracted';
    }
    return 'stored';
  }

  private async extractLayer(stream: AsyncIterable<Uint8Array>, layer: Descriptor, diffId: Digest, chain: Digest, parent: Digest | null,
    id: string, signal: AbortSignal | undefined, progress: ProgressSink, sizes: number[], i: number, gate: { open: boolean } = { open: true }): Promise<void> {
    const target: LayerTarget | null = await this.snapshots.prepareLayer(chain, parent);
    if (!target) {
      // Another pull committed the same stack meanwhile.
      sizes[i] = this.snapshots.get(chain)?.size ?? 0;
      for await (const _ of stream) { /* drain the tee so the download finishes */ }
      return;
    }
    try {
      const result = await applyLayer(stream, {
        target: target.dir, mode: target.mode, mediaType: layer.mediaType, expectedDiffId: diffId, lowers: target.lowers, signal,
        // Teed: the layer's line shows Downloading until the download is done, then Extracting.
        onProgress: (n) => { if (gate.open) progress({ id, status: 'Extracting', current: n, total: layer.size }); },
      });
      // Sizes as docker reports them (file bytes, not tar bytes): image SIZE and history agree.
      await target.commit({ ...result, size: result.contentSize });
      sizes[i] = result.contentSize;
    } catch (err) {
      await target.abort();
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // push
  // -------------------------------------------------------------------------------------------

  /**
   * `docker push NAME[:TAG]`: pushes one tag, or every tag of the repository when `tag` is
   * undefined and the name has none (docker CLI -a, or docker < 20.10 without a tag).
   */
  async push(name: string, tag: string | undefined, opts: PushOptions = {}): Promise<void> {
    const progress = opts.progress ?? (() => {});
    let ref = parseNormalizedReference(name);
    if (tag) ref = withTag(ref, tag);
    const repo = { domain: ref.domain, path: ref.path };
    const repoName = referenceName(repo);
    let tags: string[];
    if (ref.tag !== undefined) tags = [ref.tag];
    else tags = this.store.allReferences().filter((r) => r.repository === repoName && r.tag !== undefined).map((r) => r.tag!);
    if (tags.length === 0) throw new ImageServiceError('not-found', `An image does not exist locally with the tag: ${familiarName(repo)}`);
    const ids = tags.map((t) => {
      const id = this.store.byReference({ ...repo, tag: t });
      if (!id) throw new ImageServiceError('not-found', `An image does not exist locally with the tag: ${familiarString({ ...repo, tag: t })}`);
      return id;
    });
    progress({ status: `The push refers to repository [${repoName.startsWith('docker.io/') ? repoName : familiarName(repo)}]` });
    const client = this.client(repo.domain, opts.auth);
    for (let k = 0; k < tags.length; k++) {
      await this.pushOne(client, repo, tags[k]!, ids[k]!, progress, opts.aux, opts.signal);
    }
  }

  private async pushOne(client: RegistryClient, repo: { domain: string; path: string }, tag: string, id: Digest, progress: ProgressSink,
    aux: PushOptions['aux'], signal?: AbortSignal): Promise<void> {
    const image = this.store.get(id)!;
    const layers = this.store.layersOf(id);
    // Pick, per layer, a compressed blob that is in the content store, preferring one whose
    // source is on the target registry (mountable).
    const chosen: Array<{ diffId: Digest; blob: { digest: Digest; size: number; mediaType: string }; mountFrom: string[] }> = [];
    for (const l of layers) {
      const candidates: typeof l.blobs = [];
      for (const b of l.blobs) if (await this.content.has(b.digest)) candidates.push(b);
      if (candidates.length === 0) {
        throw new ImageServiceError('unsupported',
          `cannot push ${familiarString({ ...repo, tag })}: layer ${l.diffId} has no compressed blob in the store (images that were loaded, imported or committed cannot be pushed yet)`);
      }
      const sameRegistry = candidates.filter((b) => b.source.startsWith(`${repo.domain}/`));
      const pick = sameRegistry[0] ?? candidates[0]!;
      const mountFrom = [...new Set(sameRegistry.filter((b) => b.digest === pick.digest).map((b) => b.source.slice(repo.domain.length + 1)))]
        .filter((p) => p !== repo.path);
      chosen.push({ diffId: l.diffId, blob: pick, mountFrom });
    }
    const limiter = new Limiter(PUSH_CONCURRENCY);
    // docker lists the top layer first.
    const order = [...chosen.keys()].reverse();
    const seen = new Set<string>();
    for (const i of order) {
      const sid = shortId(chosen[i]!.diffId);
      if (!seen.has(sid)) progress({ id: sid, status: 'Preparing' });
      seen.add(sid);
    }
    const jobs = new Map<Digest, Promise<void>>();
    for (const i of order) {
      const c = chosen[i]!;
      if (jobs.has(c.blob.digest)) continue;
      const sid = shortId(c.diffId);
      if (!limiter.free) progress({ id: sid, status: 'Waiting' });
      const job = limiter.run(async () => {
        const res = await client.pushBlob(repo, c.blob, { open: () => this.content.createReadStream(c.blob.digest) }, {
          mountFrom: c.mountFrom, signal,
          onProgress: (sent) => progress({ id: sid, status: 'Pushing', current: sent, total: c.blob.size }),
        });
        if (res.status === 'exists') progress({ id: sid, status: 'Layer already exists' });
        else if (res.status === 'mounted') progress({ id: sid, status: `Mounted from ${res.from ?? c.mountFrom[0]}` });
        else progress({ id: sid, status: 'Pushed' });
        this.store.recordLayerBlob({ diffId: c.diffId, digest: c.blob.digest, mediaType: c.blob.mediaType, size: c.blob.size, source: referenceName(repo) });
      });
      job.catch(() => {});
      jobs.set(c.blob.digest, job);
    }
    await Promise.all(jobs.values());
    const configBytes = await this.content.readBuffer(image.id);
    await client.pushBlob(repo, { digest: image.id, size: configBytes.length }, configBytes, { signal });

    // The original manifest when it still describes exactly these blobs: same bytes, same digest.
    let manifestBytes: Buffer | undefined;
    let mediaType = image.manifestMediaType ?? MediaType.DockerManifest;
    if (image.manifestDigest && (await this.content.has(image.manifestDigest))) {
      const bytes = await this.content.readBuffer(image.manifestDigest);
      const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
      const ls = m.layers.filter((l) => isLayerType(l.mediaType));
      if (m.config.digest === image.id && ls.length === chosen.length && ls.every((l, i) => l.digest === chosen[i]!.blob.digest)) manifestBytes = bytes;
    }
    if (!manifestBytes) {
      const oci = chosen.some((c) => c.blob.mediaType.startsWith('application/vnd.oci.'));
      mediaType = oci ? MediaType.OciManifest : MediaType.DockerManifest;
      const m: ImageManifest = {
        schemaVersion: 2, mediaType,
        config: { mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: image.id, size: configBytes.length },
        layers: chosen.map((c) => ({ mediaType: c.blob.mediaType, digest: c.blob.digest, size: c.blob.size })),
      };
      manifestBytes = Buffer.from(JSON.stringify(m, null, 3));
    }
    const digest = await client.putManifest(repo, tag, manifestBytes, mediaType, { signal });
    await this.content.writeBuffer(manifestBytes, digest);
    this.store.tag(id, withDigest(repo, digest));
    progress({ status: `${tag}: digest: ${digest} size: ${manifestBytes.length}` });
    aux?.({ Tag: tag, Digest: digest, Size: manifestBytes.length });
    this.emit('push', familiarString({ ...repo, tag }), { name: familiarString({ ...repo, tag }) });
  }

  // -------------------------------------------------------------------------------------------
  // local operations
  // -------------------------------------------------------------------------------------------

  /** The image a CLI argument names (docker's rules), or a NotFound-coded error in docker's words. */
  get(input: string): ImageRecord {
    const image = this.store.resolve(input);
    if (!image) throw new ImageServiceError('not-found', `No such image: ${displayName(input)}`);
    return image;
  }

  async config(id: Digest): Promise<ImageConfig> {
    return this.content.readJSON<ImageConfig>(id);
  }

  /** `docker tag SOURCE TARGET`. */
  tag(source: string, repo: string, tag: string | undefined): void {
    const image = this.get(source);
    let ref = parseNormalizedReference(repo);
    if (ref.digest !== undefined) throw new ImageServiceError('invalid', 'refusing to create a tag with a digest reference');
    if (tag) {
      if (!isValidTag(tag)) throw new ImageServiceError('invalid', `invalid tag format`);
      ref = withTag(ref, tag);
    }
    if (ref.tag === undefined) ref = withTag(ref, 'latest');
    this.store.tag(image.id, ref, { touch: true });
    this.emit('tag', image.id, { name: familiarString(ref) });
  }

  /**
   * `docker rmi`, with dockerd's rules:
   *  - by name: that name goes; when it was the repository's last tag, the repository's digest
   *    names go too; the image is deleted only when no name is left;
   *  - by ID: the names go when they are all in one repository; names in several repositories
   *    need force (without it: "image is referenced in multiple repositories").
   * Images used by containers: refused (running: even with force) — a hook until containers exist.
   */
  async remove(input: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<DeleteResult[]> {
    const found = this.store.lookup(input);
    if (!found) throw new ImageServiceError('not-found', `No such image: ${displayName(input)}`);
    const { image, ref } = found;
    const force = opts.force ?? false;
    const out: DeleteResult[] = [];
    const untag = (name: string): void => {
      const removed = this.store.untag(parseDockerReference(name));
      if (!removed) return;
      out.push({ Untagged: removed.familiar });
      this.emit('untag', image.id, { name: image.id });
    };
    const user = this.opts.imageInUse?.(image.id);
    if (ref) {
      if (!force && user && this.store.references(image.id).length === 1) {
        throw new ImageServiceError('conflict', `conflict: unable to remove repository reference "${displayName(input)}" (must force) - container ${shortId(user)} is using its referenced image ${shortId(image.id)}`);
      }
      untag(ref.name);
      const rest = this.store.references(image.id);
      if (ref.tag !== undefined && !rest.some((r) => r.tag !== undefined && r.repository === ref.repository)) {
        for (const r of rest) if (r.digest !== undefined && r.repository === ref.repository) untag(r.name);
      }
      if (this.store.references(image.id).length > 0) return out;
    } else {
      const refs = this.store.references(image.id);
      if (new Set(refs.map((r) => r.repository)).size <= 1) for (const r of refs) untag(r.name);
    }
    // As dockerd: when removing a name left the image without names, a conflict (a container
    // uses it, child images need it) keeps the image quietly — the untag was the answer.
    const quiet = ref !== undefined;
    if (user) {
      if (quiet) return out;
      throw new ImageServiceError('conflict', `conflict: unable to delete ${shortId(image.id)} (${force ? 'cannot be forced' : 'must be forced'}) - image is being used by container ${shortId(user)}`);
    }
    if (this.store.children(image.id).length > 0) {
      if (quiet) return out;
      throw new ImageServiceError('conflict', `conflict: unable to delete ${shortId(image.id)} (cannot be forced) - image has dependent child images`);
    }
    const remaining = this.store.references(image.id);
    if (remaining.length > 0) {
      if (!force) throw new ImageServiceError('conflict', `conflict: unable to delete ${shortId(image.id)} (must be forced) - image is referenced in multiple repositories`);
      for (const r of remaining) untag(r.name);
    }
    this.store.delete(image.id);
    out.push({ Deleted: image.id });
    this.emit('delete', image.id, { name: image.id });
    // dockerd also lists each layer it removed (by chain ID).
    if (!opts.noPrune) for (const c of await this.releaseLayers(image)) out.push({ Deleted: c });
    // Untagged parents nothing else needs (a build's intermediate images) go with it, as with dockerd.
    let parentId = opts.noPrune ? undefined : image.parent;
    while (parentId) {
      const parent = this.store.get(parentId);
      if (!parent || this.store.references(parent.id).length > 0 || this.store.children(parent.id).length > 0 || this.opts.imageInUse?.(parent.id)) break;
      this.store.delete(parent.id);
      out.push({ Deleted: parent.id });
      this.emit('delete', parent.id, { name: parent.id });
      for (const c of await this.releaseLayers(parent)) out.push({ Deleted: c });
      parentId = parent.parent;
    }
    return out;
  }

  /** Removes snapshots no image uses any more, top of the chain first. */
  private async releaseLayers(image: ImageRecord): Promise<Digest[]> {
    const removed: Digest[] = [];
    const used = this.store.usedChainIds();
    for (const c of [...image.chainIds].reverse()) {
      if (used.has(c) || this.pinned.has(c) || !this.snapshots.has(c)) continue;
      if (this.snapshots.children(c).length > 0) break;
      try {
        await this.snapshots.remove(c);
        removed.push(c);
      } catch {
        break; // a container's snapshot may sit on it; garbage collection retries later
      }
    }
    return removed;
  }

  /** `docker login`: checks the credentials against the registry; returns the identity token if any. */
  async login(serverAddress: string, creds: Credentials, signal?: AbortSignal): Promise<{ identityToken?: string }> {
    const domain = loginDomain(serverAddress);
    return this.client(domain, creds).login(domain, creds, { signal });
  }
}

/** What docker prints for a name not found: a tagless name gets ":latest". */
export function displayName(input: string): string {
  try {
    const r = parseNormalizedReference(input);
    if (r.tag === undefined && r.digest === undefined) return `${input}:latest`;
  } catch { /* an ID or garbage: printed as given */ }
  return input;
}

/** The registry domain of a login server address (docker's "https://index.docker.io/v1/" is docker.io). */
export function loginDomain(serverAddress: string): string {
  let s = serverAddress.trim();
  if (s === '' || /(^|\/\/)index\.docker\.io(\/|$)/.test(s) || /(^|\/\/)registry-1\.docker\.io(\/|$)/.test(s) || s === 'docker.io') return 'docker.io';
  s = s.replace(/^https?:\/\//, '');
  return s.split('/')[0]!;
}
