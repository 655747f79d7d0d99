// POST /build (docker's classic builder API, what `DOCKER_BUILDKIT=0 docker build` and the SDKs
// call) and POST /build/prune. The body is the context as a tar (maybe compressed); the answer is
// docker's JSON-lines stream: {"stream"} lines, pull progress, {"aux":{"ID"}} and, on failure,
// an {"errorDetail"} line (the status is already 200 by then, as with dockerd).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Builder, cleanupBuildLeftovers } from '../../build/builder.ts';
import { BuildCache } from '../../build/cache.ts';
import { clearContextCache, extractContext } from '../../build/context.ts';
import { BuildError } from '../../build/types.ts';
import type { ContainerService } from '../../engine/containers/service.ts';
import type { ApiModule, DaemonContext } from '../context.ts';
import { InvalidParameterError, registerErrorStatus, UnavailableError } from '../errors.ts';
import { ProgressStream } from '../progress.ts';
import type { RequestContext } from '../router.ts';
import { BERTH_VERSION } from '../version.ts';

declare module '../context.ts' {
  interface Services {
    builder: Builder;
    buildCache: BuildCache;
  }
}

registerErrorStatus((e) => {
  if (e instanceof BuildError) return { invalid: 400, 'not-found': 404, failed: 500, cancelled: 499 }[e.code];
  return undefined;
});

function jsonParam<T>(ctx: RequestContext, name: string): T | undefined {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new InvalidParameterError(`invalid ${name} parameter: not valid JSON`);
  }
}

const contextCacheDir = (daemon: DaemonContext): string => join(daemon.config.dataRoot, 'build', 'context-cache');
/** Contexts, mount points and temporary files of running builds; emptied at daemon start. */
const scratchDir = (daemon: DaemonContext): string => join(daemon.config.dataRoot, 'build', 'scratch');

function builderOf(daemon: DaemonContext): Builder {
  const b = daemon.services.builder;
  if (!b) throw new UnavailableError('the builder is not running');
  return b;
}

async function postBuild(ctx: RequestContext): Promise<void> {
  const builder = builderOf(ctx.daemon);
  const version = ctx.query.get('version') ?? '1';
  if (version === '2') throw new InvalidParameterError('BuildKit (version=2) is not supported by this daemon; use the classic builder (DOCKER_BUILDKIT=0)');
  if (ctx.query.get('remote')) throw new InvalidParameterError('remote build contexts (URLs, git repositories) are not supported; send the context as a tar');
  const buildArgs = jsonParam<Record<string, string | null>>(ctx, 'buildargs') ?? {};
  const labels = jsonParam<Record<string, string>>(ctx, 'labels') ?? {};
  const tags = ctx.query.getAll('t');
  const quiet = ctx.bool('q', false);
  const sdeText = buildArgs.SOURCE_DATE_EPOCH ?? undefined;
  const sourceDateEpoch = sdeText !== undefined && sdeText !== null && /^\d+$/.test(sdeText) ? Number(sdeText) : undefined;

  mkdirSync(scratchDir(ctx.daemon), { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(scratchDir(ctx.daemon), 'context-'));
  const stream = new ProgressStream(ctx.res);
  try {
    try {
      await extractContext(ctx.req, dir, { signal: ctx.signal, cacheDir: contextCacheDir(ctx.daemon) });
    } catch (err) {
      throw new BuildError('invalid', `error reading the build context: ${(err as Error).message}`, undefined, { cause: err });
    }
    stream.start();
    await builder.build({
      contextDir: dir,
      contextIsPrivate: true,
      dockerfile: ctx.query.get('dockerfile') || 'Dockerfile',
      tags, buildArgs, labels, quiet, sourceDateEpoch,
      target: ctx.query.get('target') || undefined,
      noCache: ctx.bool('nocache', false),
      pull: ctx.bool('pull', false),
      networkMode: ctx.query.get('networkmode') || undefined,
      platform: ctx.query.get('platform') || undefined,
      remove: ctx.bool('rm', true),
      forceRemove: ctx.bool('forcerm', false),
      signal: ctx.signal,
    }, {
      stream: (text) => { stream.stream(text); },
      progress: (ev) => { stream.progress(ev); },
      aux: (value) => { stream.aux(value); },
    });
  } catch (err) {
    if (!stream.headersSent) throw err;
    ctx.log.info('build failed', { error: (err as Error).message });
    stream.error(err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  stream.end();
}

async function pruneBuildCache(ctx: RequestContext): Promise<void> {
  const cache = ctx.daemon.services.buildCache;
  if (!cache) throw new UnavailableError('the builder is not running');
  cache.clear();
  clearContextCache(contextCacheDir(ctx.daemon));
  ctx.json({ CachesDeleted: [], SpaceReclaimed: 0 });
}

export const buildModule: ApiModule = {
  name: 'build',
  async init(daemon) {
    const images = daemon.services.images;
    const containers = (daemon.services as { containers?: ContainerService }).containers;
    if (!images || !containers) throw new Error('the build module needs the images and containers modules');
    const cache = new BuildCache(daemon.db, (id) => images.store.has(id));
    daemon.services.buildCache = cache;
    await cleanupBuildLeftovers(images, scratchDir(daemon));
    daemon.services.builder = new Builder({
      images, containers, cache, scratchDir: scratchDir(daemon),
      dockerVersion: BERTH_VERSION,
      event: (type, action, id, attributes) => daemon.events.log(type, action, { ID: id, Attributes: attributes }),
    });
  },
  routes(router) {
    router.post('/build', postBuild);
    router.post('/build/prune', pruneBuildCache);
  },
};
