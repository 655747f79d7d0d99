// A new local image on top of another: the writable snapshot's changes become a layer (or none,
// when nothing changed), the layer's snapshot is committed right away so the image runs without
// a later unpack, and the image config and record are stored. Shared by `docker commit` and
// the builder (every build step is such a child image).
import { randomBytes } from 'node:crypto';
import { chainIds } from './digest.ts';
import { EMPTY_LAYER_DIFF_ID, writeLayer, type WrittenLayer } from './layer-diff.ts';
import type { ImageRecord } from './image-store.ts';
import type { Reference } from './reference.ts';
import type { ImageService } from './service.ts';
import type { MountSpec } from './snapshots.ts';
import { applyLayer, type ApplyLayerResult } from './unpack/index.ts';
import type { Digest, ImageConfig } from './types.ts';

/** A layer taken from a writable snapshot, its snapshot committed, not yet named by any image. */
export interface ChildLayer {
  /** The parent's diff IDs plus this layer's, unless it is empty. */
  diffIds: Digest[];
  chainIds: Digest[];
  /** undefined: the snapshot had no changes (history says empty_layer). */
  diffId?: Digest;
  layer?: WrittenLayer;
  /** Removes what this created (the committed snapshot, the blob) when no image ends up using it. */
  discard(): Promise<void>;
}

export interface ChildLayerOptions {
  /**
   * The active snapshot `mounts` belongs to, when nothing but the step's changes is in it (no
   * engine mount points): it becomes the layer's snapshot in place instead of a copy unpacked
   * from the tar. The caller must not use it afterwards (removing it is harmless).
   */
  adoptActive?: string;
  /** Paths (relative) left out of the layer: mount points the engine made. */
  exclude?: Iterable<string>;
  /** Clamp mtimes to SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
}

/**
 * Turns the writable snapshot `mounts` (on top of `parent`, or of nothing) into a layer in the
 * content store and a committed snapshot. The caller holds the GC lock (shared) until the image
 * that names the layer is stored.
 */
export async function layerFromSnapshot(images: ImageService, parent: Pick<ImageRecord, 'diffIds' | 'chainIds'> | undefined, mounts: MountSpec, opts: ChildLayerOptions = {}): Promise<ChildLayer> {
  const parentDiffIds = parent?.diffIds ?? [];
  const parentChains = parent?.chainIds ?? [];
  const top = parentChains[parentChains.length - 1];
  // The layer's snapshot is unpacked from the tar while the tar is written (one pass, no re-read
  // of the blob); its chain ID is known only at the end, so it is prepared under a provisional
  // name and published under the real one.
  if (opts.adoptActive) return adoptedLayer(images, parentDiffIds, parentChains, top, mounts, opts, opts.adoptActive);
  const provisional = `sha256:${randomBytes(32).toString('hex')}` as Digest;
  const target = await images.snapshots.prepareLayer(provisional, top ?? null);
  if (!target) throw new Error('a provisional snapshot name collided');
  let layer: WrittenLayer;
  try {
    layer = await writeLayer(images.content, mounts, {
      parent: mounts.type === 'bind' && top ? images.snapshots.dirOf(top) : undefined,
      exclude: opts.exclude,
      sourceDateEpoch: opts.sourceDateEpoch,
      tee: (tar) => applyLayer(tar, { target: target.dir, mode: target.mode, lowers: target.lowers }),
    });
  } catch (err) {
    await target.abort();
    throw err;
  }
  if (layer.diffId === EMPTY_LAYER_DIFF_ID) {
    await target.abort();
    if (layer.created) await images.content.delete(layer.digest).catch(() => {});
    return { diffIds: parentDiffIds, chainIds: parentChains, discard: async () => {} };
  }
  const diffIds = [...parentDiffIds, layer.diffId];
  const chains = chainIds(diffIds);
  const chain = chains[chains.length - 1]!;
  const existed = images.snapshots.has(chain);
  const discard = async (): Promise<void> => {
    if (!existed && images.snapshots.has(chain) && !images.store.usedChainIds().has(chain)) {
      await images.snapshots.remove(chain).catch(() => {});
    }
    if (layer.created && !images.store.usedBlobs().has(layer.digest)) await images.content.delete(layer.digest).catch(() => {});
  };
  try {
    const res = layer.teeResult as ApplyLayerResult;
    await target.commit({ ...res, size: res.contentSize }, { as: chain });
  } catch (err) {
    await discard();
    throw err;
  }
  return { diffIds, chainIds: chains, diffId: layer.diffId, layer, discard };
}

async function adoptedLayer(images: ImageService, parentDiffIds: Digest[], parentChains: Digest[], top: Digest | undefined, mounts: MountSpec,
  opts: ChildLayerOptions, key: string): Promise<ChildLayer> {
  const stats = { contentSize: 0, opaqueDirs: [] as string[] };
  const layer = await writeLayer(images.content, mounts, {
    parent: mounts.type === 'bind' && top ? images.snapshots.dirOf(top) : undefined,
    exclude: opts.exclude, sourceDateEpoch: opts.sourceDateEpoch, stats,
  });
  if (layer.diffId === EMPTY_LAYER_DIFF_ID) {
    if (layer.created) await images.content.delete(layer.digest).catch(() => {});
    return { diffIds: parentDiffIds, chainIds: parentChains, discard: async () => {} };
  }
  const diffIds = [...parentDiffIds, layer.diffId];
  const chains = chainIds(diffIds);
  const chain = chains[chains.length - 1]!;
  let adopted = false;
  const discard = async (): Promise<void> => {
    if (adopted && images.snapshots.has(chain) && !images.store.usedChainIds().has(chain)) await images.snapshots.remove(chain).catch(() => {});
    if (layer.created && !images.store.usedBlobs().has(layer.digest)) await images.content.delete(layer.digest).catch(() => {});
  };
  try {
    adopted = (await images.snapshots.commitActive(key, chain, { diffId: layer.diffId, size: stats.contentSize, opaqueDirs: stats.opaqueDirs })) !== undefined;
  } catch (err) {
    await discard();
    throw err;
  }
  return { diffIds, chainIds: chains, diffId: layer.diffId, layer, discard };
}

/** Stores an image config and its record (with the layer's blob and the tag, if any) in one transaction. */
export async function storeChildImage(images: ImageService, config: ImageConfig, rec: {
  parent?: Digest; layer: Pick<ChildLayer, 'diffIds' | 'chainIds' | 'layer' | 'diffId'>; ref?: Reference; created: string;
}): Promise<ImageRecord> {
  const bytes = Buffer.from(JSON.stringify(config));
  const { digest: id } = await images.content.writeBuffer(bytes);
  const size = rec.layer.chainIds.reduce((n, c) => n + (images.snapshots.get(c)?.size ?? 0), 0);
  return images.store.transaction(() => {
    const stored = images.store.put({
      id, platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
      created: rec.created, size, diffIds: rec.layer.diffIds, chainIds: rec.layer.chainIds, ...(rec.parent ? { parent: rec.parent } : {}),
    });
    const l = rec.layer.layer;
    if (rec.layer.diffId && l) images.store.recordLayerBlob({ diffId: l.diffId, digest: l.digest, mediaType: l.mediaType, size: l.size, source: '' });
    if (rec.ref) images.store.tag(id, rec.ref, { touch: true });
    return stored;
  });
}
