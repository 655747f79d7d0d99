// What route modules see of the daemon, and how they extend it.
//
// A module (src/api/routes/<area>.ts) is an ApiModule listed in src/api/routes/index.ts:
//   init(daemon)      create its service (open stores, run its DB migrations), register it in
//                     daemon.services, push /info and /system/df contributors, onShutdown hooks;
//   routes(router, daemon)  register its endpoints.
// Services are typed by augmenting `Services` from the module that defines them:
//   declare module '../context.ts' { interface Services { images: ImageService } }
//   daemon.services.images = new ImageService(…);
import type { DaemonConfig } from '../engine/config.ts';
import type { MetadataDb } from '../engine/db.ts';
import type { EventBus } from '../engine/events.ts';
import type { Logger } from '../engine/log.ts';
import type { ApiRouter } from './router.ts';
import type { DiskUsage, SystemInfo } from './types.ts';

/** Filled in by modules through declaration merging (see above). */
export interface Services {}

export interface DiskUsageOptions {
  containers: boolean;
  images: boolean;
  volumes: boolean;
  buildCache: boolean;
  apiVersion: string;
}

export type InfoContributor = (info: SystemInfo, apiVersion: string) => void | Promise<void>;
export type DiskUsageContributor = (du: DiskUsage, opts: DiskUsageOptions) => void | Promise<void>;

export interface DaemonContext {
  /** The current configuration (replaced on a SIGHUP reload; read it per request). */
  readonly config: DaemonConfig;
  readonly db: MetadataDb;
  readonly events: EventBus;
  readonly log: Logger;
  /** Stable across restarts (stored in the DB). */
  readonly id: string;
  readonly startedAt: Date;
  /** `Driver` in /info: the snapshotter sets it ('overlay2' or 'vfs'); a guess from the kernel until then. */
  storageDriver: string;
  /** Storage driver details for /info's DriverStatus ([["Backing Filesystem","extfs"], …]). */
  storageDriverStatus: Array<[string, string]>;
  readonly services: Partial<Services>;
  /** Called in order on every GET /info after the host facts are filled in (push yours at init). */
  readonly infoContributors: InfoContributor[];
  /** Called on every GET /system/df; fill the arrays and LayersSize you own (push yours at init). */
  readonly diskUsageContributors: DiskUsageContributor[];
  /** Run at shutdown, in reverse order of registration, before the DB closes. */
  onShutdown(fn: () => void | Promise<void>): void;
  /**
   * Serves the Engine API on a connection the daemon did not accept itself (the web UI's
   * private socket), exactly as on the API socket.
   */
  serveApiConnection(socket: import('node:net').Socket): void;
}

export interface ApiModule {
  name: string;
  init?(daemon: DaemonContext): void | Promise<void>;
  routes?(router: ApiRouter, daemon: DaemonContext): void;
}
