// Image archive and housekeeping endpoints: save (GET /images/get, /images/{name}/get), load
// (POST /images/load), import (POST /images/create?fromSrc=…, dispatched here by the images
// module), prune (POST /images/prune; POST /build/prune is the build module's)
// and the image part of GET /system/df.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ArchiveError, ImageNotFoundError, importImage, loadImages, prepareSave, writeArchive, type ArchiveFormat, type ArchiveStores } from '../../image/archive.ts';
import { diskUsage, GcError, gcLockFor, noImagesInUse, parseUntil, pruneImages, type ImagesInUse } from '../../image/gc.ts';
import type { ImageService } from '../../image/service.ts';
import { parseNormalizedReference, ReferenceError, withTag, type Reference } from '../../image/reference.ts';
import { parsePlatform, PlatformError } from '../../image/platform.ts';
import type { ImageConfig } from '../../image/types.ts';
import type { ApiModule, DaemonContext, DiskUsageOptions } from '../context.ts';
import { InvalidParameterError, registerErrorStatus, UnavailableError } from '../errors.ts';
import type { ProgressStream } from '../progress.ts';
import type { RequestContext } from '../router.ts';
import type { DiskUsage, ImageSummary } from '../types.ts';

registerErrorStatus((e) => {
  if (e instanceof ImageNotFoundError) return 404;
  if (e instanceof ArchiveError || e instanceof GcError) return 400;
  return undefined;
});

/**
 * The image IDs containers use (and how many use each). Containers do not exist yet: the
 * container module will replace this through `setImagesInUse` so prune -a keeps their images and
 * df counts them.
 */
let imagesInUse: ImagesInUse = noImagesInUse;
export function setImagesInUse(fn: ImagesInUse): void {
  imagesInUse = fn;
}

function storesOf(daemon: DaemonContext): ArchiveStores {
  const svc = (daemon.services as { images?: ImageService }).images;
  if (!svc) throw new UnavailableError('the image service is not running');
  return {
    content: svc.content,
    snapshots: svc.snapshots,
    images: svc.store,
    lock: gcLockFor(svc.content),
    event: (action, id, attributes) => { daemon.events.log('image', action, { ID: id, Attributes: attributes ?? { name: id } }); },
  };
}

async function save(ctx: RequestContext, names: string[]): Promise<void> {
  if (names.length === 0) throw new InvalidParameterError('no image names given (names=…)');
  const formatParam = ctx.query.get('format') ?? 'docker';
  if (formatParam !== 'docker' && formatParam !== 'oci') throw new InvalidParameterError(`invalid format ${JSON.stringify(formatParam)}: "docker" or "oci"`);
  const stores = storesOf(ctx.daemon);
  // Under the shared lock from name resolution to the last byte, so a prune cannot remove what
  // is being read; names are resolved before answering, so an unknown one is a plain 404.
  await stores.lock.shared(async () => {
    const images = await prepareSave(stores, names);
    ctx.res.statusCode = 200;
    ctx.res.setHeader('Content-Type', 'application/x-tar');
    try {
      await writeArchive(stores.content, images, ctx.res, {
        format: formatParam as ArchiveFormat, signal: ctx.signal, onImageSaved: (id) => stores.event?.('save', id),
      });
    } catch (err) {
      if (!ctx.res.headersSent) throw err;
      // A cut connection tells the client the archive is incomplete; a clean end would not.
      ctx.log.warn(`image save failed while streaming: ${(err as Error).message}`);
      ctx.res.destroy(err as Error);
    }
  });
}

/** The `platform` query parameter, parsed; a malformed one is the client's error (400). */
function platformQuery(ctx: RequestContext): ReturnType<typeof parsePlatform> | undefined {
  const text = ctx.query.get('platform');
  if (!text) return undefined;
  try {
    return parsePlatform(text);
  } catch (err) {
    throw new InvalidParameterError((err as PlatformError).message);
  }
}

async function load(ctx: RequestContext): Promise<void> {
  const quiet = ctx.bool('quiet', false);
  const platform = platformQuery(ctx);
  const stores = storesOf(ctx.daemon);
  const stream = ctx.progress();
  let lines: string[];
  try {
    lines = await loadImages(stores, ctx.req, { signal: ctx.signal, platform, onProgress: quiet ? undefined : stream.sink() });
  } catch (err) {
    if (!stream.headersSent) throw err;
    stream.error(err);
    stream.end();
    return;
  }
  for (const line of lines) stream.stream(`${line}\n`);
  stream.end();
}

/** The name `docker import` gives: repo (which may carry a tag) plus an optional separate tag. */
function importRef(repo: string | null, tag: string | null): Reference | undefined {
  if (!repo) return undefined;
  let ref: Reference;
  try {
    ref = parseNormalizedReference(repo);
    if (ref.digest !== undefined) throw new InvalidParameterError('cannot import digest reference');
    ref = tag ? withTag(ref, tag) : ref.tag === undefined ? withTag(ref, 'latest') : ref;
  } catch (err) {
    if (err instanceof ReferenceError) throw new InvalidParameterError(err.message);
    throw err;
  }
  return ref;
}

/**
 * POST /images/create with `fromSrc`: `docker import`. The body is the tarball when fromSrc is
 * "-", else fromSrc is a URL to fetch it from. Answers docker's progress stream ending with the
 * new image ID as a status line, which `docker import` prints.
 */
export async function handleImport(ctx: RequestContext, stream: ProgressStream): Promise<void> {
  const src = ctx.query.get('fromSrc') ?? '-';
  const ref = importRef(ctx.query.get('repo'), ctx.query.get('tag'));
  const platform = platformQuery(ctx);
  const changes = ctx.query.getAll('changes');
  const stores = storesOf(ctx.daemon);
  let source: AsyncIterable<Uint8Array>;
  if (src === '-') {
    source = ctx.req;
  } else {
    let url: URL;
    try {
      url = new URL(src.includes('://') ? src : `http://${src}`);
    } catch {
      throw new InvalidParameterError(`invalid fromSrc ${JSON.stringify(src)}: "-" (the request body) or a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidParameterError(`fromSrc: only http and https URLs can be imported, not ${url.protocol}`);
    const res = await fetch(url, { signal: ctx.signal, redirect: 'follow' });
    if (!res.ok || !res.body) throw new InvalidParameterError(`fetching ${url.href}: ${res.status} ${res.statusText}`);
    stream.progress({ status: 'Downloading from', id: url.href });
    source = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  }
  try {
    const id = await importImage(stores, source, { source: src, message: ctx.query.get('message') ?? undefined, changes, platform, ref, signal: ctx.signal });
    stream.status(id);
  } catch (err) {
    if (src === '-') ctx.req.resume();
    if (!stream.headersSent) throw err;
    stream.error(err);
  }
  stream.end();
}

async function prune(ctx: RequestContext): Promise<void> {
  const f = ctx.filters(['dangling', 'until', 'label', 'label!']);
  const dangling = f.boolValue('dangling');
  const untils = f.get('until');
  if (untils.length > 1) throw new InvalidParameterError('more than one until filter specified');
  let until;
  try {
    until = untils[0] ? parseUntil(untils[0]) : undefined;
  } catch (err) {
    throw new InvalidParameterError((err as Error).message);
  }
  const report = await pruneImages(storesOf(ctx.daemon), { all: dangling === false, until, labels: f.get('label'), notLabels: f.get('label!') }, imagesInUse);
  ctx.json({ ImagesDeleted: report.ImagesDeleted.length ? report.ImagesDeleted : null, SpaceReclaimed: report.SpaceReclaimed });
}

async function dfContributor(daemon: DaemonContext, du: DiskUsage, opts: DiskUsageOptions): Promise<void> {
  if (!opts.images) return;
  const svc = (daemon.services as { images?: ImageService }).images;
  if (!svc) return;
  const stores = storesOf(daemon);
  const usage = await diskUsage(stores, imagesInUse);
  du.LayersSize = usage.layersSize;
  for (const u of usage.images) {
    const refs = stores.images.references(u.id);
    const rec = stores.images.get(u.id);
    let labels: Record<string, string> = {};
    try {
      labels = (await stores.content.readJSON<ImageConfig>(u.id)).config?.Labels ?? {};
    } catch {
      // config blob lost: the image still shows, without labels
    }
    const created = rec?.created ? Math.floor(Date.parse(rec.created) / 1000) : 0;
    const summary: ImageSummary = {
      Id: u.id,
      ParentId: rec?.parent ?? '',
      RepoTags: refs.filter((r) => r.tag !== undefined).map((r) => r.familiar),
      RepoDigests: refs.filter((r) => r.digest !== undefined).map((r) => r.familiar),
      Created: Number.isFinite(created) ? created : 0,
      Size: u.size,
      SharedSize: u.sharedSize,
      Labels: labels,
      Containers: u.containers,
    };
    if (!versionAtLeast(opts.apiVersion, '1.44')) summary.VirtualSize = u.size;
    du.Images.push(summary);
  }
}

function versionAtLeast(v: string, min: string): boolean {
  const [a = 0, b = 0] = v.split('.').map(Number);
  const [c = 0, d = 0] = min.split('.').map(Number);
  return a !== c ? a > c : b >= d;
}

export const imageArchiveModule: ApiModule = {
  name: 'image-archive',
  init(daemon) {
    daemon.diskUsageContributors.push((du, opts) => dfContributor(daemon, du, opts));
    // The images module's POST /images/create hands `fromSrc` requests (docker import) to this.
    daemon.services.imageImport = handleImport;
  },
  routes(router) {
    router.get('/images/get', (ctx) => save(ctx, ctx.query.getAll('names').filter(Boolean)));
    router.get('/images/{name:.*}/get', (ctx) => save(ctx, [ctx.params.name!]));
    router.post('/images/load', load);
    router.post('/images/prune', prune);
    // No builder yet: nothing to prune, in the shape `docker builder prune` expects.
  },
};
