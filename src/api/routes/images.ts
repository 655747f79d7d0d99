// The image endpoints of the Engine API (moby swagger 1.47 shapes): /images/create (pull),
// /images/json, /images/{name}/json, /history, /tag, /push, DELETE /images/{name}, and /auth.
// Archive endpoints (/images/get, /images/load, import via fromSrc, /images/prune) live in
// image-archive.ts and reach the same ImageService through daemon.services.images.
//
// Pull and push stream docker's progress messages. As dockerd, an error before the first
// message is a plain HTTP error (so `docker pull nosuch` prints "Error response from daemon: …"),
// and one after it is an error line in the stream.
import { join } from 'node:path';
import type { ApiModule, DaemonContext } from '../context.ts';
import { ApiError, InvalidParameterError, NotFoundError, registerErrorStatus, UnauthorizedError } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import type { ImageSummary } from '../types.ts';
import type { ProgressStream } from '../progress.ts';
import { ImageService, ImageServiceError } from '../../image/service.ts';
import { ImageStoreError, type ImageRecord, type ImageReference } from '../../image/image-store.ts';
import type { ImageConfig, ProgressEvent, ProgressSink } from '../../image/types.ts';
import { ReferenceError, isValidTag, parseNormalizedReference, familiarName, withDigest, withTag } from '../../image/reference.ts';
import { parsePlatform, PlatformError } from '../../image/platform.ts';
import { parseUntil } from '../../image/gc.ts';
import { CredentialsError, CredentialStore, decodeRegistryAuthHeader, RegistryError, type RegistryAuthHeader } from '../../image/registry/index.ts';

declare module '../context.ts' {
  interface Services {
    images: ImageService;
    /** Set by the archive module: `POST /images/create?fromSrc=…` (docker import). */
    imageImport?: (ctx: RequestContext, stream: ProgressStream) => Promise<void>;
  }
}

registerErrorStatus((e) => {
  if (e instanceof ImageServiceError) {
    return { 'not-found': 404, conflict: 409, invalid: 400, unsupported: 501 }[e.code];
  }
  if (e instanceof ImageStoreError) return e.code === 'not-found' ? 404 : 400;
  if (e instanceof ReferenceError || e instanceof PlatformError || e instanceof CredentialsError) return 400;
  if (e instanceof RegistryError) {
    switch (e.code) {
      case 'MANIFEST_UNKNOWN': case 'NAME_UNKNOWN': case 'BLOB_UNKNOWN': return 404;
      case 'UNAUTHORIZED': return 401;
      case 'DENIED': return 403;
      default: return 500;
    }
  }
  return undefined;
});

const ZERO_TIME = '0001-01-01T00:00:00Z';

function unixSeconds(iso: string | undefined): number {
  if (!iso) return 0;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

function apiBelow(ctx: RequestContext, v: string): boolean {
  return !ctx.versionAtLeast(v);
}

/** Progress to the HTTP stream, started only at the first event (see the header). */
function lazyProgress(ctx: RequestContext): { sink: ProgressSink & { aux: (v: unknown) => void }; stream: () => ProgressStream | undefined } {
  let stream: ProgressStream | undefined;
  const get = (): ProgressStream => (stream ??= ctx.progress());
  const sink = ((ev: ProgressEvent) => { get().progress(ev); }) as ProgressSink & { aux: (v: unknown) => void };
  sink.aux = (v) => { get().aux(v); };
  return { sink, stream: () => stream };
}

async function runStreamed(ctx: RequestContext, fn: (sink: ProgressSink, aux: (v: unknown) => void) => Promise<void>): Promise<void> {
  const p = lazyProgress(ctx);
  try {
    await fn(p.sink, p.sink.aux);
  } catch (err) {
    const s = p.stream();
    if (!s) throw err;
    ctx.log.info('image operation failed', { error: (err as Error).message });
    s.error(err);
  }
  p.stream()?.end();
}

function authFrom(ctx: RequestContext): RegistryAuthHeader | undefined {
  const h = ctx.req.headers['x-registry-auth'];
  return decodeRegistryAuthHeader(Array.isArray(h) ? h[0] : h);
}

function service(daemon: DaemonContext): ImageService {
  const s = daemon.services.images;
  if (!s) throw new ApiError(500, 'the image service is not running');
  return s;
}

/** docker's ImageSummary of one image (also used by /system/df). */
export async function imageSummary(svc: ImageService, image: ImageRecord, opts: {
  digests?: boolean; sharedSize?: Map<string, number>; apiVersion?: string; refFilter?: (r: ImageReference) => boolean;
} = {}): Promise<ImageSummary> {
  const refs = svc.store.references(image.id).filter(opts.refFilter ?? (() => true));
  let config: ImageConfig | undefined;
  try {
    config = await svc.config(image.id);
  } catch { /* a missing config blob: shown without labels */ }
  let shared = -1;
  if (opts.sharedSize) {
    shared = 0;
    image.chainIds.forEach((c) => {
      if ((opts.sharedSize!.get(c) ?? 0) > 1) shared += svc.snapshots.get(c)?.size ?? 0;
    });
  }
  const s: ImageSummary = {
    Containers: -1,
    Created: unixSeconds(image.created),
    Id: image.id,
    Labels: (config?.config?.Labels as Record<string, string> | undefined) ?? {},
    ParentId: image.parent ?? '',
    RepoDigests: refs.filter((r) => r.digest !== undefined).map((r) => r.familiar),
    RepoTags: refs.filter((r) => r.tag !== undefined).map((r) => r.familiar),
    SharedSize: shared,
    Size: image.size,
  };
  if (opts.apiVersion && compareVersions(opts.apiVersion, '1.44') < 0) s.VirtualSize = image.size;
  return s;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** distribution's path.Match-style glob ('*' within a path segment, '?'). */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  return re.test(s);
}

async function listImages(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const filters = ctx.filters(['dangling', 'label', 'before', 'since', 'reference', 'until']);
  const digests = ctx.bool('digests', false);
  const sharedSize = ctx.bool('shared-size', false);
  let images = svc.store.list();
  const dangling = filters.boolValue('dangling');
  const refsOf = (id: string) => svc.store.references(id);
  if (dangling !== undefined) images = images.filter((i) => (refsOf(i.id).some((r) => r.tag !== undefined)) !== dangling);
  // dockerd hides intermediate images (untagged, with child images) unless all=1.
  if (!ctx.bool('all', false)) images = images.filter((i) => refsOf(i.id).length > 0 || svc.store.children(i.id).length === 0);
  const createdOf = (input: string): number => {
    const i = svc.get(input);
    return Date.parse(i.created ?? '') || 0;
  };
  for (const b of filters.get('before')) {
    const t = createdOf(b);
    images = images.filter((i) => (Date.parse(i.created ?? '') || 0) < t);
  }
  for (const b of filters.get('since')) {
    const t = createdOf(b);
    images = images.filter((i) => (Date.parse(i.created ?? '') || 0) > t);
  }
  for (const u of filters.get('until')) {
    const t = parseUntil(u).getTime();
    images = images.filter((i) => (Date.parse(i.created ?? '') || 0) < t);
  }
  const references = filters.get('reference');
  // docker's FamiliarMatch: a pattern matches the familiar string or just the familiar name; an
  // image is listed when one of its names matches, and only the matching names are shown.
  const refFilter = references.length === 0 ? undefined : (r: ImageReference): boolean => {
    const name = r.familiar.replace(/@.*$/, '').replace(/:[^:/]*$/, '');
    return references.some((p) => globMatch(p, r.familiar) || globMatch(p, name));
  };
  if (refFilter) images = images.filter((i) => refsOf(i.id).some(refFilter));
  const out: ImageSummary[] = [];
  const usage = sharedSize ? svc.store.chainIdUsage() : undefined;
  for (const image of images) {
    const s = await imageSummary(svc, image, { digests, sharedSize: usage, apiVersion: ctx.apiVersion, refFilter });
    if (filters.contains('label') && !filters.matchKVList('label', s.Labels)) continue;
    out.push(s);
  }
  ctx.json(out);
}

async function inspectImage(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const image = svc.get(ctx.params.name!);
  const config = await svc.config(image.id);
  const refs = svc.store.references(image.id);
  const c = config.config ?? {};
  const containerConfig = {
    Hostname: '', Domainname: '', User: c.User ?? '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    Tty: false, OpenStdin: false, StdinOnce: false, Env: c.Env ?? null, Cmd: c.Cmd ?? null,
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    ...(c.ArgsEscaped ? { ArgsEscaped: c.ArgsEscaped } : {}),
    Image: '', Volumes: c.Volumes ?? null, WorkingDir: c.WorkingDir ?? '', Entrypoint: c.Entrypoint ?? null,
    OnBuild: c.OnBuild ?? null, Labels: c.Labels ?? null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.Shell ? { Shell: c.Shell } : {}),
  };
  const snaps = svc.snapshots;
  let graph: { Data: Record<string, string> | null; Name: string };
  const top = image.chainIds[image.chainIds.length - 1];
  if (snaps.driver === 'overlay' && top && snaps.has(top)) {
    const dirs = [...image.chainIds].reverse().filter((ch) => snaps.has(ch)).map((ch) => snaps.dirOf(ch));
    const data: Record<string, string> = {};
    if (dirs.length > 1) data.LowerDir = dirs.slice(1).join(':');
    data.MergedDir = join(dirs[0]!, '..', 'merged');
    data.UpperDir = dirs[0]!;
    data.WorkDir = join(dirs[0]!, '..', 'work');
    graph = { Data: data, Name: 'overlay2' };
  } else {
    graph = { Data: null, Name: snaps.driver === 'overlay' ? 'overlay2' : 'vfs' };
  }
  const body: Record<string, unknown> = {
    Id: image.id,
    RepoTags: refs.filter((r) => r.tag !== undefined).map((r) => r.familiar),
    RepoDigests: refs.filter((r) => r.digest !== undefined).map((r) => r.familiar),
    Parent: image.parent ?? '',
    Comment: typeof config.comment === 'string' ? config.comment : '',
    Created: config.created ?? ZERO_TIME,
  };
  if (apiBelow(ctx, '1.45')) {
    body.Container = typeof config.container === 'string' ? config.container : '';
    body.ContainerConfig = (config.container_config as object | undefined) ?? { ...containerConfig, Cmd: null, Env: null, Entrypoint: null, Labels: null };
  }
  Object.assign(body, {
    DockerVersion: typeof config.docker_version === 'string' ? config.docker_version : '',
    Author: config.author ?? '',
    Config: containerConfig,
    Architecture: config.architecture ?? '',
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os ?? '',
    ...(typeof config['os.version'] === 'string' ? { OsVersion: config['os.version'] } : {}),
    Size: image.size,
  });
  if (apiBelow(ctx, '1.44')) body.VirtualSize = image.size;
  Object.assign(body, {
    GraphDriver: graph,
    RootFS: { Type: 'layers', Layers: image.diffIds },
    Metadata: { LastTagTime: image.lastTagTime ?? ZERO_TIME },
  });
  ctx.json(body);
}

async function imageHistory(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const image = svc.get(ctx.params.name!);
  const config = await svc.config(image.id);
  const history = config.history ?? [];
  const tags = svc.store.references(image.id).filter((r) => r.tag !== undefined).map((r) => r.familiar);
  const out: Array<{ Comment: string; Created: number; CreatedBy: string; Id: string; Size: number; Tags: string[] | null }> = [];
  let layer = 0;
  const entries = history.length > 0 ? history : image.diffIds.map(() => ({} as NonNullable<ImageConfig['history']>[number]));
  for (const h of entries) {
    let size = 0;
    if (!h.empty_layer) {
      const ch = image.chainIds[layer];
      size = ch ? svc.snapshots.get(ch)?.size ?? 0 : 0;
      layer++;
    }
    out.push({ Comment: h.comment ?? '', Created: unixSeconds(h.created), CreatedBy: h.created_by ?? '', Id: '<missing>', Size: size, Tags: null });
  }
  out.reverse();
  if (out[0]) {
    out[0].Id = image.id;
    out[0].Tags = tags.length ? tags : null;
  }
  // dockerd's field order.
  ctx.json(out.map((e) => ({ Comment: e.Comment, Created: e.Created, CreatedBy: e.CreatedBy, Id: e.Id, Size: e.Size, Tags: e.Tags })));
}

async function createImage(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const fromSrc = ctx.query.get('fromSrc');
  if (fromSrc !== null) {
    const imp = ctx.daemon.services.imageImport;
    if (!imp) throw new ApiError(501, 'importing images (fromSrc) is not supported by this daemon yet');
    await imp(ctx, ctx.progress());
    return;
  }
  const fromImage = ctx.query.get('fromImage');
  if (!fromImage) throw new InvalidParameterError('fromImage or fromSrc is required');
  const tag = ctx.query.get('tag') ?? '';
  let ref = parseNormalizedReference(fromImage);
  if (tag !== '') {
    // dockerd: a tag that parses as a digest pins the digest.
    if (/^[a-z0-9]+:[a-f0-9]{32,}$/.test(tag)) ref = withDigest(ref, tag);
    else if (isValidTag(tag)) ref = withTag(ref, tag);
    else throw new InvalidParameterError(`invalid tag format`);
  }
  const platformText = ctx.query.get('platform') ?? '';
  const platform = platformText ? parsePlatform(platformText) : undefined;
  const auth = authFrom(ctx);
  const allTags = ref.tag === undefined && ref.digest === undefined;
  await runStreamed(ctx, async (sink) => {
    await svc.pull(ref, { platform, auth, progress: sink, signal: ctx.signal, allTags });
  });
}

async function pushImage(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const name = ctx.params.name!;
  const tag = ctx.query.get('tag') || undefined;
  const auth = authFrom(ctx);
  // Local checks first so they come back as HTTP errors.
  const ref = parseNormalizedReference(name);
  if (tag !== undefined && !isValidTag(tag)) throw new InvalidParameterError('invalid tag format');
  if (tag !== undefined || ref.tag !== undefined) {
    const full = tag !== undefined ? withTag(ref, tag) : ref;
    if (!svc.store.byReference(full)) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarName(full)}`);
  }
  await runStreamed(ctx, (sink, aux) => svc.push(name, tag, { auth, progress: sink, aux, signal: ctx.signal }));
}

async function tagImage(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const repo = ctx.query.get('repo') ?? '';
  const tag = ctx.query.get('tag') ?? '';
  if (repo === '') throw new InvalidParameterError('repository name must have at least one component');
  svc.tag(ctx.params.name!, repo, tag || undefined);
  ctx.noContent(201);
}

async function deleteImage(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const out = await svc.remove(ctx.params.name!, { force: ctx.bool('force', false), noPrune: ctx.bool('noprune', false) });
  ctx.json(out);
}

async function auth(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const body = (await ctx.readJSON<Record<string, unknown>>()) ?? {};
  const get = (k: string): string | undefined => {
    for (const [key, v] of Object.entries(body)) if (key.toLowerCase() === k && typeof v === 'string' && v !== '') return v;
    return undefined;
  };
  const username = get('username');
  const password = get('password');
  const identityToken = get('identitytoken');
  const server = get('serveraddress') ?? '';
  try {
    const r = await svc.login(server, { ...(username ? { username } : {}), ...(password ? { password } : {}), ...(identityToken ? { identityToken } : {}) }, ctx.signal);
    ctx.json({ IdentityToken: r.identityToken ?? '', Status: 'Login Succeeded' });
  } catch (err) {
    if (err instanceof RegistryError && (err.code === 'UNAUTHORIZED' || err.status === 401)) throw new UnauthorizedError(err.message);
    throw err;
  }
}

export const imagesModule: ApiModule = {
  name: 'images',
  async init(daemon) {
    const svc = await ImageService.open({
      dataRoot: daemon.config.dataRoot,
      db: daemon.db,
      insecureRegistries: () => daemon.config.insecureRegistries,
      credentials: new CredentialStore(),
      onEvent: (action, id, attributes) => { daemon.events.log('image', action, { ID: id, Attributes: attributes }); },
    });
    daemon.services.images = svc;
    daemon.storageDriver = svc.snapshots.driver === 'overlay' ? 'overlay2' : 'vfs';
    daemon.infoContributors.push((info) => { info.Images = svc.store.list().length; });
  },
  routes(router) {
    router.post('/images/create', createImage);
    router.get('/images/json', listImages);
    router.post('/auth', auth);
    router.get('/images/{name:.*}/json', inspectImage);
    router.get('/images/{name:.*}/history', imageHistory);
    router.post('/images/{name:.*}/push', pushImage);
    router.post('/images/{name:.*}/tag', tagImage);
    router.delete('/images/{name:.*}', deleteImage);
  },
};
