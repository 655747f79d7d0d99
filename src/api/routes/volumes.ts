// The volume endpoints of the Engine API (moby swagger 1.47 shapes): GET /volumes,
// POST /volumes/create, GET/DELETE /volumes/{name}, POST /volumes/prune, and the volumes part
// of /system/df and /info. The work is VolumeService's (src/engine/volumes.ts), which the
// container service also uses to plan and mount a container's volumes.
import type { ApiModule, DaemonContext } from '../context.ts';
import { ApiError, InvalidParameterError } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import { VolumeService } from '../../engine/volumes.ts';

function service(daemon: DaemonContext): VolumeService {
  const s = daemon.services.volumes;
  if (!s) throw new ApiError(500, 'the volume service is not running');
  return s;
}

function stringMap(v: unknown, field: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidParameterError(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field CreateOptions.${field} of type map[string]string`);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') throw new InvalidParameterError(`json: cannot unmarshal ${typeof x} into Go struct field CreateOptions.${field} of type string (key ${k})`);
  }
  return v as Record<string, string>;
}

function listVolumes(ctx: RequestContext): void {
  const svc = service(ctx.daemon);
  const vols = svc.list(ctx.filters());
  ctx.json({ Volumes: vols.map((v) => svc.toDocker(v)), Warnings: null });
}

async function createVolume(ctx: RequestContext): Promise<void> {
  const svc = service(ctx.daemon);
  const body = (await ctx.readJSON<Record<string, unknown>>()) ?? {};
  const name = body.Name ?? '';
  const driver = body.Driver ?? '';
  if (typeof name !== 'string') throw new InvalidParameterError('json: cannot unmarshal into Go struct field CreateOptions.Name of type string');
  if (typeof driver !== 'string') throw new InvalidParameterError('json: cannot unmarshal into Go struct field CreateOptions.Driver of type string');
  const { volume } = svc.create(name, { driver, options: stringMap(body.DriverOpts, 'DriverOpts'), labels: stringMap(body.Labels, 'Labels') });
  ctx.json(svc.toDocker(volume), 201);
}

function inspectVolume(ctx: RequestContext): void {
  const svc = service(ctx.daemon);
  ctx.json(svc.toDocker(svc.get(ctx.params.name!)));
}

function deleteVolume(ctx: RequestContext): void {
  service(ctx.daemon).remove(ctx.params.name!, { force: ctx.bool('force', false) });
  ctx.noContent();
}

function pruneVolumes(ctx: RequestContext): void {
  const filters = ctx.filters();
  // Before API 1.42 prune removed every unused volume, named ones too.
  if (!ctx.versionAtLeast('1.42') && !filters.contains('all')) filters.add('all', 'true');
  ctx.json(service(ctx.daemon).prune(filters));
}

export const volumesModule: ApiModule = {
  name: 'volumes',
  async init(daemon) {
    const svc = await VolumeService.open(daemon);
    daemon.infoContributors.push((info) => {
      if (!info.Plugins.Volume.includes('local')) info.Plugins.Volume.push('local');
    });
    daemon.diskUsageContributors.push((du, opts) => {
      if (opts.volumes) du.Volumes.push(...svc.diskUsage().map((v) => ({ ...v })));
    });
  },
  routes(router) {
    router.get('/volumes', listVolumes);
    router.post('/volumes/create', createVolume);
    router.post('/volumes/prune', pruneVolumes);
    router.get('/volumes/{name}', inspectVolume);
    router.delete('/volumes/{name}', deleteVolume);
  },
};
