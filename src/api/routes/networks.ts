// The network endpoints of the Engine API (moby swagger 1.47): GET /networks, GET /networks/{id},
// POST /networks/create, DELETE /networks/{id}, POST /networks/{id}/connect and /disconnect,
// POST /networks/prune. The work is the NetworkService's (src/engine/network/); this module
// creates it at init, so the container module finds it in daemon.services.networks.
import type { ApiModule } from '../context.ts';
import { InvalidParameterError, registerErrorStatus } from '../errors.ts';
import type { RequestContext } from '../router.ts';
import type { EndpointSettings } from '../../engine/containers/types.ts';
import { NetworkError, NetworkService, type CreateNetworkOptions } from '../../engine/network/index.ts';
import { HostCommandError } from '../../engine/network/host.ts';

registerErrorStatus((e) => {
  if (e instanceof NetworkError) return { 'not-found': 404, conflict: 409, invalid: 400, forbidden: 403, failed: 500 }[e.code];
  if (e instanceof HostCommandError) return 500;
  return undefined;
});

function service(ctx: RequestContext): NetworkService {
  const s = ctx.daemon.services.networks;
  if (!s) throw new Error('the network service is not running');
  return s;
}

async function createNetwork(ctx: RequestContext): Promise<void> {
  const body = await ctx.readJSON<CreateNetworkOptions>();
  if (!body || typeof body !== 'object') throw new InvalidParameterError('invalid JSON body: expected a network configuration object');
  if (typeof body.Name !== 'string' || body.Name === '') throw new InvalidParameterError('network name is required');
  if (body.ConfigOnly || body.ConfigFrom?.Network) throw new InvalidParameterError('config-only networks are not supported by Berth');
  if (body.Scope && body.Scope !== 'local') throw new InvalidParameterError(`invalid scope "${body.Scope}": Berth networks are local`);
  ctx.json(await service(ctx).create(body), 201);
}

async function connect(ctx: RequestContext): Promise<void> {
  const body = await ctx.readJSON<{ Container?: string; EndpointConfig?: EndpointSettings | null }>();
  if (!body?.Container) throw new InvalidParameterError('container is required');
  await service(ctx).connect(ctx.params.id, body.Container, body.EndpointConfig ?? {});
  ctx.noContent(200);
}

async function disconnect(ctx: RequestContext): Promise<void> {
  const body = await ctx.readJSON<{ Container?: string; Force?: boolean }>();
  if (!body?.Container) throw new InvalidParameterError('container is required');
  await service(ctx).disconnect(ctx.params.id, body.Container, Boolean(body.Force));
  ctx.noContent(200);
}

export const networksModule: ApiModule = {
  name: 'networks',
  async init(daemon) {
    await NetworkService.open(daemon);
    daemon.infoContributors.push((info) => { info.Plugins.Network = ['bridge', 'host', 'null']; });
  },
  routes(router) {
    router.get('/networks', (ctx) => ctx.json(service(ctx).list(ctx.filters())));
    router.post('/networks/create', createNetwork);
    router.post('/networks/prune', async (ctx) => ctx.json({ NetworksDeleted: await service(ctx).prune(ctx.filters()) }));
    router.get('/networks/{id}', (ctx) => ctx.json(service(ctx).inspect(ctx.params.id)));
    router.delete('/networks/{id}', async (ctx) => { await service(ctx).remove(ctx.params.id); ctx.noContent(); });
    router.post('/networks/{id}/connect', connect);
    router.post('/networks/{id}/disconnect', disconnect);
  },
};
