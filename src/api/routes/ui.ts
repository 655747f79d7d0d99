// The web UI's life in the daemon: started at boot by `--ui ADDR` (daemon.json "ui"), or later by
// `berth ui` through GET/POST /berth/ui on the API socket (root-only, like everything there).
// These two endpoints are Berth's own, outside the Docker Engine API; the UI itself cannot reach
// them (src/api/ui/server.ts hides /berth/ from its pass-through).
import { join } from 'node:path';
import type { ApiModule, DaemonContext } from '../context.ts';
import { InvalidParameterError, UnavailableError } from '../errors.ts';
import { UiServer } from '../ui/server.ts';
import { DaemonConfigError, DEFAULT_UI_PORT, parseUiListen, type UiListen } from '../../engine/config.ts';

declare module '../context.ts' {
  interface Services {
    ui: UiControl;
  }
}

/** Berth's answer to GET /berth/ui. */
export interface UiStatus {
  Enabled: boolean;
  URL?: string;
  /** The sign-in token (the caller already has root-equivalent access to this socket). */
  Token?: string;
  TokenFile?: string;
}

export class UiControl {
  private server?: UiServer;
  private starting?: Promise<UiServer>;

  constructor(private readonly daemon: DaemonContext) {}

  status(): UiStatus {
    const s = this.server;
    if (!s) return { Enabled: false };
    return { Enabled: true, URL: s.url, Token: s.auth.token, TokenFile: s.auth.tokenFile };
  }

  /** Starts the UI on `listen` unless it already runs (then the running one is kept). */
  async start(listen: UiListen): Promise<UiServer> {
    if (this.server) return this.server;
    this.starting ??= (async () => {
      const server = new UiServer({
        listen,
        stateDir: join(this.daemon.config.execRoot, 'ui'),
        serveApi: (socket) => this.daemon.serveApiConnection(socket),
        log: this.daemon.log,
      });
      try {
        await server.start();
      } catch (e) {
        await server.stop().catch(() => {});
        throw e;
      }
      this.server = server;
      return server;
    })().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await s?.stop();
  }
}

export const uiModule: ApiModule = {
  name: 'ui',
  async init(daemon) {
    const control = new UiControl(daemon);
    daemon.services.ui = control;
    daemon.onShutdown(() => control.stop());
    if (daemon.config.ui) await control.start(daemon.config.ui);
  },
  routes(router, daemon) {
    router.get('/berth/ui', (ctx) => ctx.json(daemon.services.ui!.status()));
    router.post('/berth/ui', async (ctx) => {
      let listen: UiListen;
      try {
        listen = parseUiListen(ctx.query.get('listen') || `127.0.0.1:${DEFAULT_UI_PORT}`);
      } catch (e) {
        if (e instanceof DaemonConfigError) throw new InvalidParameterError(e.message);
        throw e;
      }
      try {
        await daemon.services.ui!.start(listen);
      } catch (e) {
        throw new UnavailableError((e as Error).message);
      }
      ctx.json(daemon.services.ui!.status());
    });
  },
};
