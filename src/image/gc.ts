// Garbage collection and disk usage: `docker image prune [-a]`, the image half of `docker system
// df` and `system prune`.
//
// Roots are the image records: an image keeps its config, manifest, index and layer blobs in the
// content store and its chain of snapshots. Containers keep the snapshots under their writable
// layers (an active snapshot's parent chain) and, through `inUse`, their images. Everything else
// is garbage: blobs no image names, committed snapshots no image or container stacks on (removed
// top first, since a snapshot with children cannot go), and partial downloads untouched for a day.
//
// Safety against concurrent pulls, loads and imports: they hold the store's GcLock shared from the
// first blob they write to the image record, and collection runs with it exclusive, so a blob
// that is not referenced *yet* is never seen by the collector (see gc-lock.ts).
import type { ContentStore } from './content-store.ts';
import type { GcLock } from './gc-lock.ts';
import type { ImageRecord, ImageStore } from './image-store.ts';
import type { Snapshotter } from './snapshots.ts';
import type { Digest, ImageConfig } from './types.ts';

export { GcLock, gcLockFor } from './gc-lock.ts';

/** Partial downloads older than this are removed by a collection (a pull resumes younger ones). */
export const STALE_INGEST_MS = 24 * 60 * 60 * 1000;

export interface GcStores {
  content: ContentStore;
  snapshots: Snapshotter;
  images: ImageStore;
  lock: GcLock;
  /** Publishes an image event (untag, delete). */
  event?: (action: string, id: string, attributes?: Record<string, string>) => void;
}

/**
 * The images containers use, by image ID, with how many containers use each. The container
 * module provides it once containers exist; until then nothing is in use.
 */
export type ImagesInUse = () => Map<Digest, number>;
export const noImagesInUse: ImagesInUse = () => new Map();

export class GcError extends Error {
  override name = 'GcError';
}

export interface PruneFilters {
  /** false: dangling (untagged) images only, docker's default; true: every image no container uses (-a). */
  all: boolean;
  /** Only images created before this time. */
  until?: Date;
  /** docker's label filters: "k", "k=v" (must match) and, with `negate`, "k", "k=v" (must not). */
  labels?: string[];
  notLabels?: string[];
}

export interface PruneReport {
  /** docker's ImagesDeleted: {Untagged: name} and {Deleted: id}, in docker's order. */
  ImagesDeleted: Array<{ Untagged: string } | { Deleted: string }>;
  SpaceReclaimed: number;
}

export interface CollectReport {
  blobsRemoved: Digest[];
  snapshotsRemoved: Digest[];
  ingestsRemoved: string[];
  spaceReclaimed: number;
}

/** Parses docker's `until` value: a Unix timestamp (with optional fraction), an RFC 3339 date, or a Go duration before now. */
export function parseUntil(value: string, now = Date.now()): Date {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return new Date(Number(v) * 1000);
  const dur = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(v) ? v : undefined;
  if (dur) {
    const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    let ms = 0;
    for (const m of dur.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]!]!;
    return new Date(now - ms);
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new GcError(`invalid filter 'until=${value}': expected a Unix timestamp, a date (RFC 3339) or a duration such as 24h`);
  return new Date(t);
}

function labelMatches(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=');
  if (eq < 0) return Object.hasOwn(labels, spec);
  return labels[spec.slice(0, eq)] === spec.slice(eq + 1);
}

async function configOf(content: ContentStore, id: Digest): Promise<ImageConfig | undefined> {
  try {
    return await content.readJSON<ImageConfig>(id);
  } catch {
    return undefined;
  }
}

/**
 * `docker image prune`: deletes the images the filters select (never one a container uses, and
 * in dangling mode never an untagged image that another image names as its parent), then
 * collects what they left unreferenced.
 */
export async function pruneImages(stores: GcStores, filters: PruneFilters, inUse: ImagesInUse = noImagesInUse): Promise<PruneReport> {
  return stores.lock.exclusive(async () => {
    const used = inUse();
    const report: PruneReport = { ImagesDeleted: [], SpaceReclaimed: 0 };
    const victims: ImageRecord[] = [];
    for (const rec of stores.images.list()) {
      if (used.has(rec.id)) continue;
      const refs = stores.images.references(rec.id);
      const tagged = refs.some((r) => r.tag !== undefined);
      if (!filters.all && tagged) continue;
      if (!filters.all && stores.images.children(rec.id).length > 0) continue;
      if (filters.until) {
        const created = rec.created ? Date.parse(rec.created) : Number.NaN;
        if (Number.isNaN(created) || created >= filters.until.getTime()) continue;
      }
      if (filters.labels?.length || filters.notLabels?.length) {
        const labels = (await configOf(stores.content, rec.id))?.config?.Labels ?? {};
        if (filters.labels?.some((l) => !labelMatches(labels, l))) continue;
        if (filters.notLabels?.some((l) => labelMatches(labels, l))) continue;
      }
      victims.push(rec);
    }
    for (const rec of victims) {
      const refs = stores.images.references(rec.id);
      stores.images.delete(rec.id);
      for (const r of refs) {
        report.ImagesDeleted.push({ Untagged: r.familiar });
        stores.event?.('untag', rec.id, { name: r.familiar });
      }
      report.ImagesDeleted.push({ Deleted: rec.id });
      stores.event?.('delete', rec.id);
    }
    const collected = await collectLocked(stores);
    // docker lists the removed layers after the images, as "deleted: sha256:<chain ID>".
    for (const c of collected.snapshotsRemoved) report.ImagesDeleted.push({ Deleted: c });
    report.SpaceReclaimed = collected.spaceReclaimed;
    return report;
  });
}

/** Collects unreferenced blobs, snapshots and stale ingests (takes the lock exclusively). */
export async function collectGarbage(stores: GcStores): Promise<CollectReport> {
  return stores.lock.exclusive(() => collectLocked(stores));
}

async function collectLocked(stores: GcStores): Promise<CollectReport> {
  const report: CollectReport = { blobsRemoved: [], snapshotsRemoved: [], ingestsRemoved: [], spaceReclaimed: 0 };

  // Snapshots first: a failure there leaves the blobs, from which a pull can rebuild them.
  const keep = stores.images.usedChainIds();
  const all = stores.snapshots.list();
  for (const s of all) {
    // A container's writable layer keeps its whole parent chain.
    if (s.kind === 'active') {
      keep.add(s.name);
      for (let p = s.parent; p; p = stores.snapshots.get(p)?.parent) keep.add(p);
    }
  }
  let candidates = all.filter((s) => s.kind === 'committed' && !keep.has(s.name));
  for (let progress = true; progress && candidates.length;) {
    progress = false;
    const next = [];
    for (const s of candidates) {
      if (stores.snapshots.children(s.name).length > 0) {
        next.push(s);
        continue;
      }
      let bytes = 0;
      try {
        bytes = (await stores.snapshots.usage(s.name)).size;
        await stores.snapshots.remove(s.name);
      } catch {
        continue; // busy or gone: the next collection tries again
      }
      report.snapshotsRemoved.push(s.name);
      report.spaceReclaimed += bytes;
      progress = true;
    }
    candidates = next;
  }

  const usedBlobs = stores.images.usedBlobs();
  for (const b of await stores.content.list()) {
    if (usedBlobs.has(b.digest)) continue;
    if (await stores.content.delete(b.digest)) {
      stores.images.forgetLayerBlob(b.digest);
      report.blobsRemoved.push(b.digest);
      report.spaceReclaimed += b.size;
    }
  }

  report.ingestsRemoved = await stores.content.removeStaleIngests(STALE_INGEST_MS);
  return report;
}

// ─── disk usage ────────────────────────────────────────────────────────────────────────────────

export interface ImageUsage {
  id: Digest;
  /** What `docker images` shows: the uncompressed layers. */
  size: number;
  /** The part of `size` in layers other images use too. */
  sharedSize: number;
  containers: number;
}

export interface DiskUsageReport {
  /**
   * Bytes the image store occupies: every unpacked layer once (its uncompressed tar size) plus
   * the content store's blobs (compressed layers, configs, manifests), which Berth keeps to push
   * and save without re-compressing.
   */
  layersSize: number;
  images: ImageUsage[];
}

/** Sizes for /system/df (cheap: recorded layer sizes, blob sizes from stat; no tree walks). */
export async function diskUsage(stores: GcStores, inUse: ImagesInUse = noImagesInUse): Promise<DiskUsageReport> {
  const used = inUse();
  let layersSize = 0;
  const snapSize = new Map<Digest, number>();
  for (const s of stores.snapshots.list()) {
    if (s.kind !== 'committed') continue;
    snapSize.set(s.name, s.size ?? 0);
    layersSize += s.size ?? 0;
  }
  for (const b of await stores.content.list()) layersSize += b.size;
  const chainUse = stores.images.chainIdUsage();
  const images: ImageUsage[] = stores.images.list().map((rec) => {
    let shared = 0;
    for (const c of rec.chainIds) if ((chainUse.get(c) ?? 0) > 1) shared += snapSize.get(c) ?? 0;
    return { id: rec.id, size: rec.size, sharedSize: shared, containers: used.get(rec.id) ?? 0 };
  });
  return { layersSize, images };
}
