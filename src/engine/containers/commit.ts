// `docker commit`: a container's writable layer → a new image on top of the container's image.
//
// Docker's rules (moby daemon/commit.go and image.NewChildImage):
//  - the new config starts from the request's Config, or the container's when none is given;
//    `--change` Dockerfile instructions are applied to it; then every field left empty is filled
//    from the container's config (Env and ExposedPorts and Labels and Volumes merged key by key,
//    Cmd/Entrypoint only when the request sets no Entrypoint);
//  - the image config keeps the container's id (`container`) and config (`container_config`),
//    the author and comment, and one history entry whose created_by is the container's Cmd;
//  - an unchanged container adds no layer (history says empty_layer), as docker does for the
//    empty tar's diff ID;
//  - a running container is frozen while its layer is read unless pause=false.
// The image is recorded with its snapshot committed (unpacked from the new blob right away), so
// it runs at once, and named with the image store's normalisation (docker.io/library/…).
import { applyChanges, ArchiveError } from '../../image/archive.ts';
import { layerFromSnapshot, storeChildImage, type ChildLayer } from '../../image/child-image.ts';
import { parseDigest } from '../../image/digest.ts';
import { gcLockFor } from '../../image/gc.ts';
import { familiarString, isValidTag, parseNormalizedReference, ReferenceError, withTag, type Reference } from '../../image/reference.ts';
import type { ImageService } from '../../image/service.ts';
import type { ContainerConfig, Digest, HistoryEntry, ImageConfig } from '../../image/types.ts';
import type { ContainerAccess, ContainerRecord, DockerContainerConfig } from './types.ts';

export type CommitErrorCode = 'invalid' | 'conflict' | 'not-found';

export class CommitError extends Error {
  override name = 'CommitError';
  constructor(readonly code: CommitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface CommitRequest {
  /** Repository to tag the image with (may carry a tag); none leaves it untagged. */
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Freeze a running container while its layer is read (default true, as docker's API ≥ 1.13). */
  pause?: boolean;
  /** Dockerfile instructions (`--change`). */
  changes?: string[];
  /** The request body: a container Config that replaces the container's (fields left empty are merged from it). */
  config?: DockerContainerConfig | null;
}

export interface CommitDeps {
  containers: ContainerAccess;
  images: ImageService;
  /** Freezes / thaws the container's cgroup (the container service's pause and unpause). */
  pause?: (id: string) => Promise<void>;
  unpause?: (id: string) => Promise<void>;
  /** Paths the engine itself created in the writable layer (mount points), left out of the layer. */
  engineFiles?: (rec: ContainerRecord) => string[];
  /** `docker_version` in the image config. */
  dockerVersion?: string;
  /** Events: ('container', 'commit', id, {comment, imageID, imageRef}) and ('image', 'tag', …). */
  event?: (type: 'container' | 'image', action: string, id: string, attributes: Record<string, string>) => void;
}

export interface CommitResult {
  id: Digest;
  /** The familiar name it was tagged with, if any. */
  ref?: string;
}

/** The name `docker commit REPO[:TAG]` gives (moby's RepoTagReference). */
export function commitReference(repo: string | undefined, tag: string | undefined): Reference | undefined {
  if (!repo) return undefined;
  let ref: Reference;
  try {
    ref = parseNormalizedReference(repo);
  } catch (err) {
    if (err instanceof ReferenceError) throw new CommitError('invalid', err.message);
    throw err;
  }
  if (ref.digest !== undefined) throw new CommitError('invalid', 'cannot create a tag for a digested reference');
  if (tag) {
    if (!isValidTag(tag)) throw new CommitError('invalid', `invalid tag format`);
    return withTag(ref, tag);
  }
  return ref.tag === undefined ? withTag(ref, 'latest') : ref;
}

const isEmpty = (v: unknown): boolean => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)
  || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

/** moby's merge(userConf, imageConf): what the request left empty comes from the container's config. */
export function mergeCommitConfig(user: DockerContainerConfig, base: DockerContainerConfig): DockerContainerConfig {
  const out: DockerContainerConfig = structuredClone(user);
  if (!out.User) out.User = base.User;
  if (isEmpty(out.ExposedPorts)) out.ExposedPorts = base.ExposedPorts;
  else if (base.ExposedPorts) for (const p of Object.keys(base.ExposedPorts)) out.ExposedPorts![p] ??= {};
  if (isEmpty(out.Env)) {
    out.Env = base.Env;
  } else {
    const keys = new Set(out.Env!.map((e) => e.split('=')[0]));
    for (const e of base.Env ?? []) if (!keys.has(e.split('=')[0]!)) out.Env!.push(e);
  }
  out.Labels ??= {};
  for (const [k, v] of Object.entries(base.Labels ?? {})) if (!(k in out.Labels)) out.Labels[k] = v;
  if (isEmpty(out.Entrypoint)) {
    if (isEmpty(out.Cmd)) out.Cmd = base.Cmd;
    if (out.Entrypoint === undefined || out.Entrypoint === null) out.Entrypoint = base.Entrypoint;
  }
  if (base.Healthcheck) {
    if (!out.Healthcheck) {
      out.Healthcheck = base.Healthcheck;
    } else {
      const h = out.Healthcheck;
      if (isEmpty(h.Test)) h.Test = base.Healthcheck.Test;
      if (!h.Interval) h.Interval = base.Healthcheck.Interval;
      if (!h.Timeout) h.Timeout = base.Healthcheck.Timeout;
      if (!h.StartPeriod) h.StartPeriod = base.Healthcheck.StartPeriod;
      if (!h.Retries) h.Retries = base.Healthcheck.Retries;
    }
  }
  if (!out.WorkingDir) out.WorkingDir = base.WorkingDir;
  if (isEmpty(out.Volumes)) out.Volumes = base.Volumes;
  else for (const [k, v] of Object.entries(base.Volumes ?? {})) out.Volumes![k] = v;
  if (!out.StopSignal) out.StopSignal = base.StopSignal;
  return out;
}

/** A container Config in the shape Go writes it (every non-omitempty field present). */
export function goContainerConfig(c: DockerContainerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Hostname: c.Hostname ?? '',
    Domainname: c.Domainname ?? '',
    User: c.User ?? '',
    AttachStdin: c.AttachStdin ?? false,
    AttachStdout: c.AttachStdout ?? false,
    AttachStderr: c.AttachStderr ?? false,
  };
  if (!isEmpty(c.ExposedPorts)) out.ExposedPorts = c.ExposedPorts;
  Object.assign(out, { Tty: c.Tty ?? false, OpenStdin: c.OpenStdin ?? false, StdinOnce: c.StdinOnce ?? false, Env: c.Env ?? null, Cmd: c.Cmd ?? null });
  if (c.Healthcheck) out.Healthcheck = c.Healthcheck;
  if (c.ArgsEscaped) out.ArgsEscaped = true;
  Object.assign(out, { Image: c.Image ?? '', Volumes: c.Volumes ?? null, WorkingDir: c.WorkingDir ?? '', Entrypoint: c.Entrypoint ?? null });
  if (c.NetworkDisabled) out.NetworkDisabled = true;
  if (c.MacAddress) out.MacAddress = c.MacAddress;
  Object.assign(out, { OnBuild: c.OnBuild ?? null, Labels: c.Labels ?? null });
  if (c.StopSignal) out.StopSignal = c.StopSignal;
  if (c.StopTimeout !== undefined && c.StopTimeout !== null) out.StopTimeout = c.StopTimeout;
  if (c.Shell && c.Shell.length) out.Shell = c.Shell;
  return out;
}

/** The new image's config (top-level keys sorted, as moby's Image.MarshalJSON writes them). */
export function childImageConfig(parent: ImageConfig, opts: {
  config: DockerContainerConfig; containerId: string; containerConfig: DockerContainerConfig; author?: string; comment?: string;
  diffId?: Digest; created: string; dockerVersion?: string;
}): ImageConfig {
  const history: HistoryEntry = { created: opts.created };
  if (opts.author) history.author = opts.author;
  history.created_by = (opts.containerConfig.Cmd ?? []).join(' ');
  if (opts.comment) history.comment = opts.comment;
  if (!opts.diffId) history.empty_layer = true;
  const img: Record<string, unknown> = {
    architecture: parent.architecture,
    config: goContainerConfig(opts.config),
    container: opts.containerId,
    container_config: goContainerConfig(opts.containerConfig),
    created: opts.created,
    history: [...(parent.history ?? []), history],
    os: parent.os,
    rootfs: { type: 'layers', diff_ids: [...parent.rootfs.diff_ids, ...(opts.diffId ? [opts.diffId] : [])] },
  };
  if (opts.author) img.author = opts.author;
  if (opts.comment) img.comment = opts.comment;
  if (opts.dockerVersion) img.docker_version = opts.dockerVersion;
  if (parent.variant) img.variant = parent.variant;
  for (const k of ['os.version', 'os.features'] as const) if (parent[k] !== undefined) img[k] = parent[k];
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(img).sort()) sorted[k] = img[k];
  return sorted as ImageConfig;
}

/** Commits a container; returns the new image id (and the name it was tagged with). */
export async function commitContainer(deps: CommitDeps, idOrName: string, req: CommitRequest = {}): Promise<CommitResult> {
  const rec = deps.containers.get(idOrName);
  if (rec.State.Dead || rec.State.Status === 'dead') throw new CommitError('conflict', `You cannot commit container ${rec.Id} which is Dead`);
  if (rec.State.Status === 'removing') throw new CommitError('conflict', `You cannot commit container ${rec.Id} which is being removed`);
  const ref = commitReference(req.repo, req.tag);
  const images = deps.images;
  const parentRec = images.store.get(rec.Image);
  if (!parentRec) throw new CommitError('not-found', `the image of container ${rec.Id.slice(0, 12)} (${rec.Image}) is no longer in the image store`);
  const parentConfig = await images.config(rec.Image);

  let userConfig: DockerContainerConfig = structuredClone(req.config ?? rec.Config);
  if (req.changes?.length) {
    try {
      userConfig = applyChanges(userConfig as ContainerConfig, req.changes) as DockerContainerConfig;
    } catch (err) {
      if (err instanceof ArchiveError) throw new CommitError('invalid', err.message.replace('invalid --change', 'invalid change'), { cause: err });
      throw err;
    }
  }
  const config = mergeCommitConfig(userConfig, rec.Config);

  const freeze = req.pause !== false && rec.State.Running && !rec.State.Paused && deps.pause !== undefined;
  const lock = gcLockFor(images.content);
  return lock.shared(async () => {
    let layer: ChildLayer;
    if (freeze) await deps.pause!(rec.Id);
    try {
      layer = await layerFromSnapshot(images, parentRec, deps.containers.snapshotMounts(rec.Id), { exclude: deps.engineFiles?.(rec) });
    } finally {
      if (freeze) await deps.unpause!(rec.Id).catch(() => {});
    }
    try {
      const created = new Date().toISOString();
      const image = childImageConfig(parentConfig, {
        config, containerId: rec.Id, containerConfig: rec.Config, author: req.author, comment: req.comment,
        diffId: layer.diffId, created, dockerVersion: deps.dockerVersion,
      });
      const { id } = await storeChildImage(images, image, { parent: rec.Image, layer, ref, created });
      const name = ref ? familiarString(ref) : undefined;
      if (name) deps.event?.('image', 'tag', id, { name });
      deps.event?.('container', 'commit', rec.Id, { comment: req.comment ?? '', imageID: id, imageRef: name ?? '' });
      return { id, ref: name };
    } catch (err) {
      await layer.discard();
      throw err;
    }
  });
}

/** Short form for messages. */
export function shortImageId(id: Digest): string {
  return parseDigest(id).hex.slice(0, 12);
}
