// The image store: which images exist and what names point at them (SQLite, in the daemon's
// metadata DB). Blobs (index, manifest, config, compressed layers) live in the content store and
// unpacked layers in the snapshotter; this module only records how they fit together.
//
//   images       one row per image, keyed by the image ID = the config digest (as docker). The
//                manifest (and index) digest it was pulled as, its platform, the layer diff IDs
//                and chain IDs (snapshot keys), and the uncompressed size.
//   image_refs   full reference string → image ID. Two kinds, as docker's reference store:
//                tags ("docker.io/library/busybox:latest") and repo digests
//                ("docker.io/library/busybox@sha256:<manifest>"). A name points at one image;
//                an image has any number of names. Stored normalised, so lookups must normalise.
//   layer_blobs  diff ID → the compressed blobs known to carry it (digest, media type, size) and
//                the repositories they came from. Push uses it to send the original blob (so
//                manifest digests stay the same) and to cross-repository-mount from its source.
//
// Name resolution follows docker's GetImage: a full ID (with or without "sha256:"), a reference
// (name defaults to :latest; name@digest looks up repo digests), then a unique ID prefix.
// Everything is synchronous (better-sqlite3): callers need no locking for single statements, and
// multi-step changes use transaction().
import type { MetadataDb, SqliteDatabase } from '../engine/db.ts';
import { registerMigrations } from '../engine/db.ts';
import {
  familiarString, parseAnyReference, parseDockerReference, referenceName, referenceString,
  ReferenceError, type Reference,
} from './reference.ts';
import type { Digest, Platform } from './types.ts';

registerMigrations('images', [
  {
    version: 1,
    name: 'images, references and layer blobs',
    up: (db) => db.exec(`
      CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest_digest TEXT,
        manifest_media_type TEXT,
        index_digest TEXT,
        platform TEXT NOT NULL,
        created TEXT,
        size INTEGER NOT NULL,
        diff_ids TEXT NOT NULL,
        chain_ids TEXT NOT NULL,
        parent TEXT,
        added_at TEXT NOT NULL,
        last_tag_time TEXT
      ) STRICT;
      CREATE TABLE image_refs (
        name TEXT PRIMARY KEY,
        repository TEXT NOT NULL,
        tag TEXT,
        digest TEXT,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        added_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX image_refs_image ON image_refs(image_id);
      CREATE TABLE layer_blobs (
        diff_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (diff_id, digest, source)
      ) STRICT;
      CREATE INDEX layer_blobs_digest ON layer_blobs(digest);
    `),
  },
]);

export interface ImageRecord {
  /** The config digest. */
  id: Digest;
  /** The manifest this image was pulled or pushed as; absent for loaded/imported/committed images. */
  manifestDigest?: Digest;
  manifestMediaType?: string;
  /** The index (manifest list) it was selected from, when it came from one. */
  indexDigest?: Digest;
  platform: Platform;
  /** The config's `created`. */
  created?: string;
  /** Sum of the layers' uncompressed sizes (what docker shows as SIZE). */
  size: number;
  diffIds: Digest[];
  /** chainIds(diffIds): the snapshot keys, bottom layer first. */
  chainIds: Digest[];
  /** The local parent image (docker commit/build), when known. */
  parent?: Digest;
  /** When this record was first written (ISO). */
  addedAt: string;
  /** When a tag last moved to this image (docker's Metadata.LastTagTime). */
  lastTagTime?: string;
}

export interface ImageReference {
  /** Full normalised string: "docker.io/library/busybox:latest" or "…/busybox@sha256:…". */
  name: string;
  /** "docker.io/library/busybox". */
  repository: string;
  tag?: string;
  digest?: Digest;
  imageId: Digest;
  /** Docker's short form: "busybox:latest", "busybox@sha256:…". */
  familiar: string;
}

export interface LayerBlob {
  diffId: Digest;
  digest: Digest;
  mediaType: string;
  size: number;
  /** The repository it was pulled from or pushed to ("localhost:5000/library/busybox"). */
  source: string;
}

export interface ImageLayer {
  diffId: Digest;
  chainId: Digest;
  /** Known compressed forms of this layer, most recently recorded first. */
  blobs: LayerBlob[];
}

export type ImageStoreErrorCode = 'not-found' | 'ambiguous' | 'invalid';

export class ImageStoreError extends Error {
  override name = 'ImageStoreError';
  constructor(readonly code: ImageStoreErrorCode, message: string) {
    super(message);
  }
}

interface ImageRow {
  id: string; manifest_digest: string | null; manifest_media_type: string | null; index_digest: string | null;
  platform: string; created: string | null; size: number; diff_ids: string; chain_ids: string;
  parent: string | null; added_at: string; last_tag_time: string | null;
}
interface RefRow { name: string; repository: string; tag: string | null; digest: string | null; image_id: string }
interface BlobRow { diff_id: string; digest: string; media_type: string; size: number; source: string }

function toRecord(r: ImageRow): ImageRecord {
  const rec: ImageRecord = {
    id: r.id,
    platform: JSON.parse(r.platform) as Platform,
    size: r.size,
    diffIds: JSON.parse(r.diff_ids) as Digest[],
    chainIds: JSON.parse(r.chain_ids) as Digest[],
    addedAt: r.added_at,
  };
  if (r.manifest_digest !== null) rec.manifestDigest = r.manifest_digest;
  if (r.manifest_media_type !== null) rec.manifestMediaType = r.manifest_media_type;
  if (r.index_digest !== null) rec.indexDigest = r.index_digest;
  if (r.created !== null) rec.created = r.created;
  if (r.parent !== null) rec.parent = r.parent;
  if (r.last_tag_time !== null) rec.lastTagTime = r.last_tag_time;
  return rec;
}

function toRef(r: RefRow): ImageReference {
  const ref: Reference = { domain: '', path: '' };
  const slash = r.repository.indexOf('/');
  ref.domain = r.repository.slice(0, slash);
  ref.path = r.repository.slice(slash + 1);
  if (r.tag !== null) ref.tag = r.tag;
  if (r.digest !== null) ref.digest = r.digest;
  const out: ImageReference = { name: r.name, repository: r.repository, imageId: r.image_id, familiar: familiarString(ref) };
  if (r.tag !== null) out.tag = r.tag;
  if (r.digest !== null) out.digest = r.digest;
  return out;
}

/** A normalised reference to exactly one of tag or digest (what a stored name is). */
function storedRef(ref: Reference): Reference {
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  return { domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' };
}

export class ImageStore {
  readonly db: SqliteDatabase;

  constructor(db: MetadataDb | SqliteDatabase) {
    this.db = 'sqlite' in db ? db.sqlite : db;
  }

  /** Opens the store on a DB, applying the image migrations if the daemon has not yet. */
  static open(db: MetadataDb): ImageStore {
    db.migrate('images');
    return new ImageStore(db);
  }

  /** Runs fn in one SQLite transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- images ----

  /** Inserts or replaces an image record (refs and layer blobs are kept). */
  put(rec: Omit<ImageRecord, 'addedAt'> & { addedAt?: string }): ImageRecord {
    const existing = this.get(rec.id);
    const addedAt = existing?.addedAt ?? rec.addedAt ?? new Date().toISOString();
    this.db.prepare(`INSERT INTO images (id, manifest_digest, manifest_media_type, index_digest, platform, created, size,
        diff_ids, chain_ids, parent, added_at, last_tag_time)
      VALUES (@id, @manifest_digest, @manifest_media_type, @index_digest, @platform, @created, @size, @diff_ids,
        @chain_ids, @parent, @added_at, @last_tag_time)
      ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
        manifest_media_type = excluded.manifest_media_type, index_digest = excluded.index_digest,
        platform = excluded.platform, created = excluded.created, size = excluded.size, diff_ids = excluded.diff_ids,
        chain_ids = excluded.chain_ids, parent = COALESCE(excluded.parent, images.parent),
        last_tag_time = COALESCE(excluded.last_tag_time, images.last_tag_time)`).run({
      id: rec.id,
      manifest_digest: rec.manifestDigest ?? null,
      manifest_media_type: rec.manifestMediaType ?? null,
      index_digest: rec.indexDigest ?? null,
      platform: JSON.stringify(rec.platform),
      created: rec.created ?? null,
      size: rec.size,
      diff_ids: JSON.stringify(rec.diffIds),
      chain_ids: JSON.stringify(rec.chainIds),
      parent: rec.parent ?? null,
      added_at: addedAt,
      last_tag_time: rec.lastTagTime ?? null,
    });
    return this.get(rec.id)!;
  }

  /** The record of a full image ID ("sha256:…"), or undefined. */
  get(id: Digest): ImageRecord | undefined {
    const row = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  has(id: Digest): boolean {
    return this.db.prepare('SELECT 1 FROM images WHERE id = ?').get(id) !== undefined;
  }

  /** Every image, newest `created` first (docker images' order). */
  list(): ImageRecord[] {
    return (this.db.prepare('SELECT * FROM images ORDER BY created DESC, added_at DESC').all() as ImageRow[]).map(toRecord);
  }

  /** Removes the image record and all its references. Layer blobs and snapshots are the caller's. */
  delete(id: Digest): boolean {
    return this.transaction(() => {
      this.db.prepare('DELETE FROM image_refs WHERE image_id = ?').run(id);
      return this.db.prepare('DELETE FROM images WHERE id = ?').run(id).changes > 0;
    });
  }

  /** Images whose local parent is `id` (docker refuses to delete those without force). */
  children(id: Digest): ImageRecord[] {
    return (this.db.prepare('SELECT * FROM images WHERE parent = ?').all(id) as ImageRow[]).map(toRecord);
  }

  // ---- names ----

  /**
   * Finds an image the way docker's CLI arguments name one: full ID ("sha256:<64>" or "<64>"),
   * a reference ("busybox" = docker.io/library/busybox:latest, "x@sha256:<manifest>"), then a
   * unique ID prefix ("3f57", "sha256:3f57"). Returns undefined when nothing matches; throws
   * ImageStoreError('ambiguous') for a prefix of several IDs.
   */
  resolve(input: string): ImageRecord | undefined {
    return this.lookup(input)?.image;
  }

  /** resolve() that also says which stored reference matched (undefined when found by ID). */
  lookup(input: string): { image: ImageRecord; ref?: ImageReference } | undefined {
    let parsed;
    try {
      parsed = parseAnyReference(input);
    } catch (err) {
      if (!(err instanceof ReferenceError)) throw err;
      parsed = undefined;
    }
    if (parsed?.kind === 'id') {
      const image = this.get(parsed.digest);
      if (image) return { image };
      return undefined;
    }
    if (parsed?.kind === 'reference') {
      const ref = parsed.reference;
      const wanted = storedRef(ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref);
      const row = this.db.prepare('SELECT * FROM image_refs WHERE name = ?').get(referenceString(wanted)) as RefRow | undefined;
      if (row) {
        const image = this.get(row.image_id);
        if (image) return { image, ref: toRef(row) };
      }
      // name@digest where the digest is the image ID itself (docker accepts it) or a manifest
      // digest this image was pulled as under another name.
      if (ref.digest !== undefined) {
        const byId = this.get(ref.digest);
        if (byId && this.refsOfRepo(byId.id, referenceName(ref))) return { image: byId };
        const byManifest = this.db.prepare('SELECT * FROM images WHERE manifest_digest = ? AND id IN (SELECT image_id FROM image_refs WHERE repository = ?)')
          .get(ref.digest, referenceName(ref)) as ImageRow | undefined;
        if (byManifest) return { image: toRecord(byManifest) };
      }
    }
    // An ID prefix: only plain lower-case hex (docker's truncindex), optionally "sha256:".
    const prefix = input.startsWith('sha256:') ? input.slice(7) : input;
    if (/^[a-f0-9]{1,64}$/.test(prefix)) {
      const rows = this.db.prepare("SELECT * FROM images WHERE substr(id, 8, ?) = ? LIMIT 2").all(prefix.length, prefix) as ImageRow[];
      if (rows.length > 1) throw new ImageStoreError('ambiguous', `multiple IDs found with provided prefix: ${prefix}`);
      if (rows.length === 1) return { image: toRecord(rows[0]!) };
    }
    return undefined;
  }

  private refsOfRepo(id: Digest, repository: string): boolean {
    return this.db.prepare('SELECT 1 FROM image_refs WHERE image_id = ? AND repository = ?').get(id, repository) !== undefined;
  }

  /**
   * Points a name (a normalised reference; no tag and no digest means :latest) at an image.
   * Returns the image the name pointed at before, if it moved (that one may now be dangling).
   * A reference with both tag and digest is stored as the digest alone (docker's rule).
   * `touch` sets the image's lastTagTime: dockerd does that for `docker tag` only, not for the
   * names a pull or load adds.
   */
  tag(id: Digest, ref: Reference, opts: { touch?: boolean } = {}): { previous?: Digest } {
    const r = storedRef(ref);
    const name = referenceString(r);
    const now = new Date().toISOString();
    return this.transaction(() => {
      if (!this.has(id)) throw new ImageStoreError('not-found', `No such image: ${id}`);
      const old = this.db.prepare('SELECT image_id FROM image_refs WHERE name = ?').get(name) as { image_id: string } | undefined;
      this.db.prepare(`INSERT INTO image_refs (name, repository, tag, digest, image_id, added_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at`)
        .run(name, referenceName(r), r.tag ?? null, r.digest ?? null, id, now);
      if (opts.touch && r.tag !== undefined) this.db.prepare('UPDATE images SET last_tag_time = ? WHERE id = ?').run(now, id);
      return old && old.image_id !== id ? { previous: old.image_id } : {};
    });
  }

  /** Removes one name; returns the reference removed (with the image it pointed at), or undefined. */
  untag(ref: Reference): ImageReference | undefined {
    const name = referenceString(storedRef(ref));
    return this.transaction(() => {
      const row = this.db.prepare('SELECT * FROM image_refs WHERE name = ?').get(name) as RefRow | undefined;
      if (!row) return undefined;
      this.db.prepare('DELETE FROM image_refs WHERE name = ?').run(name);
      return toRef(row);
    });
  }

  /** The names of an image: tags and repo digests, in the order they were added. */
  references(id: Digest): ImageReference[] {
    return (this.db.prepare('SELECT * FROM image_refs WHERE image_id = ? ORDER BY added_at, name').all(id) as RefRow[]).map(toRef);
  }

  /** Every stored name (for filters such as reference=…). */
  allReferences(): ImageReference[] {
    return (this.db.prepare('SELECT * FROM image_refs ORDER BY name').all() as RefRow[]).map(toRef);
  }

  /** The image a name points at, by exact normalised reference (no prefix or ID matching). */
  byReference(ref: Reference): Digest | undefined {
    const row = this.db.prepare('SELECT image_id FROM image_refs WHERE name = ?').get(referenceString(storedRef(ref))) as { image_id: string } | undefined;
    return row?.image_id;
  }

  /** Parses and normalises a user-supplied name as docker does (defaults to :latest). */
  static normalize(input: string): Reference {
    return parseDockerReference(input);
  }

  // ---- layers ----

  /** Records that `digest` (compressed, `mediaType`) is a form of layer `diffId`, seen in `source`. */
  recordLayerBlob(blob: LayerBlob): void {
    this.db.prepare(`INSERT INTO layer_blobs (diff_id, digest, media_type, size, source) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT DO NOTHING`).run(blob.diffId, blob.digest, blob.mediaType, blob.size, blob.source);
  }

  /** Known compressed forms of a layer (several rows for one digest when seen in several repositories). */
  layerBlobs(diffId: Digest): LayerBlob[] {
    return (this.db.prepare('SELECT * FROM layer_blobs WHERE diff_id = ? ORDER BY rowid DESC').all(diffId) as BlobRow[])
      .map((r) => ({ diffId: r.diff_id, digest: r.digest, mediaType: r.media_type, size: r.size, source: r.source }));
  }

  /** Forgets a compressed blob (e.g. garbage collection removed it from the content store). */
  forgetLayerBlob(digest: Digest): void {
    this.db.prepare('DELETE FROM layer_blobs WHERE digest = ?').run(digest);
  }

  /** The layers of an image, bottom first, each with its chain ID and known compressed blobs. */
  layersOf(id: Digest): ImageLayer[] {
    const image = this.get(id);
    if (!image) throw new ImageStoreError('not-found', `No such image: ${id}`);
    return image.diffIds.map((diffId, i) => ({ diffId, chainId: image.chainIds[i]!, blobs: this.layerBlobs(diffId) }));
  }

  /** Chain IDs used by any image (the snapshots garbage collection must keep). */
  usedChainIds(): Set<Digest> {
    const out = new Set<Digest>();
    for (const row of this.db.prepare('SELECT chain_ids FROM images').all() as Array<{ chain_ids: string }>) {
      for (const c of JSON.parse(row.chain_ids) as Digest[]) out.add(c);
    }
    return out;
  }

  /**
   * Content-store blobs that images still need: configs, manifests, indexes and the compressed
   * blobs of layers some image uses (garbage collection keeps these).
   */
  usedBlobs(): Set<Digest> {
    const out = new Set<Digest>();
    const diffIds = new Set<Digest>();
    for (const r of this.db.prepare('SELECT id, manifest_digest, index_digest, diff_ids FROM images').all() as ImageRow[]) {
      out.add(r.id);
      if (r.manifest_digest) out.add(r.manifest_digest);
      if (r.index_digest) out.add(r.index_digest);
      for (const d of JSON.parse(r.diff_ids) as Digest[]) diffIds.add(d);
    }
    for (const r of this.db.prepare('SELECT diff_id, digest FROM layer_blobs').all() as BlobRow[]) {
      if (diffIds.has(r.diff_id)) out.add(r.digest);
    }
    return out;
  }

  /** How many images use each chain ID (for docker's SharedSize / Containers counts). */
  chainIdUsage(): Map<Digest, number> {
    const out = new Map<Digest, number>();
    for (const row of this.db.prepare('SELECT chain_ids FROM images').all() as Array<{ chain_ids: string }>) {
      for (const c of new Set(JSON.parse(row.chain_ids) as Digest[])) out.set(c, (out.get(c) ?? 0) + 1);
    }
    return out;
  }
}
