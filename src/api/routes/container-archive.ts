// Files in and out of containers, and containers into images: `docker cp` (HEAD/GET/PUT
// /containers/{id}/archive), `docker export`, `docker diff` (/changes) and `docker commit`
// (POST /commit). The work is in src/engine/containers/archive.ts and commit.ts; this module
// maps requests and errors, and streams the tars.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError } from '../../image/archive.ts';
import { changes } from '../../image/layer-diff.ts';
import type { ImageService } from '../../image/service.ts';
import { readEtcFile } from '../../runtime/passwd.ts';
import {
  archivePath, ContainerFsError, exportRootfs, extractToContainer, statPath, viewMounts, type ContainerView,
} from '../../engine/containers/archive.ts';
import { commitContainer, CommitError } from '../../engine/containers/commit.ts';
import type { ContainerAccess, ContainerRecord, DockerContainerConfig } from '../../engine/containers/types.ts';
import type { ApiModule, DaemonContext } from '../context.ts';
import { InvalidParameterError, registerErrorStatus, UnavailableError } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import { BERTH_VERSION } from '../version.ts';

registerErrorStatus((e) => {
  if (e instanceof ContainerFsError) return { 'not-found': 404, invalid: 400, 'read-only': 403, escape: 400, conflict: 400 }[e.code];
  if (e instanceof CommitError) return { invalid: 400, conflict: 409, 'not-found': 404 }[e.code];
  return undefined;
});

/**
 * What this module needs of the container service: ContainerAccess, plus (when the service has
 * them) pause/unpause for `commit --pause` and the paths the engine itself creates in a
 * container's writable layer (mount points), which are not the container's changes.
 */
export type ArchiveContainers = ContainerAccess & {
  pause?(id: string): Promise<void>;
  unpause?(id: string): Promise<void>;
  engineFiles?(rec: ContainerRecord): string[];
};

function containersOf(daemon: DaemonContext): ArchiveContainers {
  const svc = (daemon.services as { containers?: ArchiveContainers }).containers;
  if (!svc) throw new UnavailableError('the container service is not running');
  return svc;
}

function imagesOf(daemon: DaemonContext): ImageService {
  const svc = (daemon.services as { images?: ImageService }).images;
  if (!svc) throw new UnavailableError('the image service is not running');
  return svc;
}

/**
 * Files the engine creates in every container's writable layer as mount points for the files it
 * bind-mounts (docker keeps them in a separate "-init" layer, so they are never a container's
 * changes and never committed), plus whatever else the container service names.
 */
const ENGINE_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];
function engineFiles(svc: ArchiveContainers, rec: ContainerRecord): string[] {
  return [...ENGINE_FILES, ...(svc.engineFiles?.(rec) ?? [])];
}

function viewOf(rec: ContainerRecord, rootfs: string): ContainerView {
  return { name: rec.Id, rootfs, mounts: viewMounts(rec.Mounts ?? []), readonlyRootfs: rec.HostConfig?.ReadonlyRootfs === true };
}

function pathParam(ctx: RequestContext): string {
  const path = ctx.query.get('path');
  if (!path) throw new InvalidParameterError('path is required'); // wording of moby's router
  return path;
}

const statHeader = (stat: object): string => Buffer.from(JSON.stringify(stat)).toString('base64');

function event(ctx: RequestContext, rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
  ctx.daemon.events.log('container', action, {
    ID: rec.Id, Attributes: { ...(rec.Config?.Labels ?? {}), image: rec.ImageRef, name: rec.Name.replace(/^\//, ''), ...extra },
  });
}

/** Streams a tar to the client; a failure after the headers cuts the connection (an incomplete tar must not look complete). */
async function sendTar(ctx: RequestContext, tar: AsyncIterable<Buffer>, what: string): Promise<void> {
  ctx.res.statusCode = 200;
  ctx.res.setHeader('Content-Type', 'application/x-tar');
  try {
    await pipeline(Readable.from(tar), ctx.res);
  } catch (err) {
    if (!ctx.res.headersSent) throw err;
    ctx.log.warn(`${what} failed while streaming: ${(err as Error).message}`);
    ctx.res.destroy(err as Error);
  }
}

async function headArchive(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const rec = svc.get(ctx.params.id!);
  const path = pathParam(ctx);
  const stat = await svc.withRootfs(rec.Id, (rootfs) => statPath({ ...viewOf(rec, rootfs), name: ctx.params.id! }, path));
  ctx.res.setHeader('X-Docker-Container-Path-Stat', statHeader(stat));
  ctx.res.statusCode = 200;
  ctx.res.end();
}

async function getArchive(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const rec = svc.get(ctx.params.id!);
  const path = pathParam(ctx);
  await svc.withRootfs(rec.Id, async (rootfs) => {
    const { stat, tar } = await archivePath({ ...viewOf(rec, rootfs), name: ctx.params.id! }, path);
    ctx.res.setHeader('X-Docker-Container-Path-Stat', statHeader(stat));
    await sendTar(ctx, tar, 'container archive');
  });
  event(ctx, rec, 'archive-path');
}

/** copyUIDGID: the container's configured user, looked up in its own /etc/passwd and /etc/group. */
function containerUser(rootfs: string, spec: string): { uid: number; gid: number } | undefined {
  if (!spec) return undefined;
  const [user = '', group] = spec.split(':', 2);
  const passwd = (readEtcFile(rootfs, 'passwd') ?? '').split('\n').map((l) => l.split(':'));
  let uid: number;
  let gid = 0;
  const byName = passwd.find((f) => f.length >= 4 && f[0] === user);
  if (byName) {
    uid = Number(byName[2]);
    gid = Number(byName[3]);
  } else if (/^\d+$/.test(user)) {
    uid = Number(user);
    const byId = passwd.find((f) => f.length >= 4 && f[2] === user);
    if (byId) gid = Number(byId[3]);
  } else {
    throw new ContainerFsError('not-found', `unable to find user ${user}: no matching entries in passwd file`);
  }
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) {
      gid = Number(group);
    } else {
      const g = (readEtcFile(rootfs, 'group') ?? '').split('\n').map((l) => l.split(':')).find((f) => f.length >= 3 && f[0] === group);
      if (!g) throw new ContainerFsError('not-found', `unable to find group ${group}: no matching entries in group file`);
      gid = Number(g[2]);
    }
  }
  return { uid, gid };
}

async function putArchive(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const rec = svc.get(ctx.params.id!);
  const path = pathParam(ctx);
  const noOverwriteDirNonDir = ctx.bool('noOverwriteDirNonDir', false);
  const copyUIDGID = ctx.bool('copyUIDGID', false);
  try {
    await svc.withRootfs(rec.Id, async (rootfs) => {
      const chown = copyUIDGID ? containerUser(rootfs, rec.Config?.User ?? '') : undefined;
      await extractToContainer({ ...viewOf(rec, rootfs), name: ctx.params.id! }, path, ctx.req, { noOverwriteDirNonDir, chown, signal: ctx.signal });
    });
  } catch (err) {
    ctx.req.resume(); // drain what is left, so the error answer reaches the client
    throw err;
  }
  event(ctx, rec, 'extract-to-dir');
  ctx.res.statusCode = 200;
  ctx.res.end();
}

async function getExport(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const rec = svc.get(ctx.params.id!);
  await svc.withRootfs(rec.Id, async (rootfs) => {
    await sendTar(ctx, await exportRootfs(rootfs, ctx.signal), 'container export');
  });
  event(ctx, rec, 'export');
}

/** The parent snapshot's directory for the copying driver (its diff is a comparison). */
function parentDir(images: ImageService, rec: ContainerRecord): string | undefined {
  if (images.snapshots.driver !== 'vfs') return undefined;
  const top = images.store.get(rec.Image)?.chainIds.at(-1);
  return top ? images.snapshots.dirOf(top) : undefined;
}

async function getChanges(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const rec = svc.get(ctx.params.id!);
  const images = imagesOf(ctx.daemon);
  const list = await changes(svc.snapshotMounts(rec.Id), { parent: parentDir(images, rec), exclude: engineFiles(svc, rec) });
  ctx.json(list);
}

async function postCommit(ctx: RequestContext): Promise<void> {
  const svc = containersOf(ctx.daemon);
  const images = imagesOf(ctx.daemon);
  const name = ctx.query.get('container') ?? '';
  const body = await ctx.readJSON<DockerContainerConfig | null>({ optional: true });
  try {
    const result = await commitContainer({
      containers: svc, images,
      pause: svc.pause ? (id) => svc.pause!(id) : undefined,
      unpause: svc.unpause ? (id) => svc.unpause!(id) : undefined,
      engineFiles: (rec) => engineFiles(svc, rec),
      dockerVersion: BERTH_VERSION,
      event: (type, action, id, attributes) => {
        if (type === 'container') {
          const rec = svc.get(id);
          event(ctx, rec, action, attributes);
        } else {
          ctx.daemon.events.log('image', action, { ID: id, Attributes: attributes });
        }
      },
    }, name, {
      repo: ctx.query.get('repo') ?? undefined,
      tag: ctx.query.get('tag') ?? undefined,
      comment: ctx.query.get('comment') ?? undefined,
      author: ctx.query.get('author') ?? undefined,
      pause: ctx.bool('pause', true),
      changes: ctx.query.getAll('changes').filter(Boolean),
      config: body ?? undefined,
    });
    ctx.json({ Id: result.id }, 201);
  } catch (err) {
    if (err instanceof ArchiveError) throw new InvalidParameterError(err.message);
    throw err;
  }
}

export const containerArchiveModule: ApiModule = {
  name: 'container-archive',
  routes(router) {
    router.head('/containers/{id}/archive', headArchive);
    router.get('/containers/{id}/archive', getArchive);
    router.put('/containers/{id}/archive', putArchive);
    router.get('/containers/{id}/export', getExport);
    router.get('/containers/{id}/changes', getChanges);
    router.post('/commit', postCommit);
  },
};
