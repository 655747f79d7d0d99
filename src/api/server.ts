// The Engine API's HTTP layer: version prefix and negotiation, routing, errors, upgrades.
//
// As dockerd: every route answers with and without `/vX.Y`; a version above API_VERSION or below
// MIN_API_VERSION is a 400 with dockerd's message; matched routes get the Server, Api-Version
// and Ostype headers; anything unmatched (path or method) is 404 {"message":"page not found"}.
// Handler errors become {"message": …} with the status from errors.ts, unless the handler has
// already started streaming, in which case the connection is simply ended.
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { DaemonContext } from './context.ts';
import { errorMessage, errorStatus } from './errors.ts';
import { hijack, type HijackOptions } from './hijack.ts';
import { boolValue, boolValueOr, intValue, readJSON, writeJSON, type ReadJSONOptions } from './http.ts';
import { JsonLineWriter, ProgressStream } from './progress.ts';
import { RouteTable, type HttpMethod, type RequestContext } from './router.ts';
import { API_VERSION, BERTH_VERSION, MIN_API_VERSION, compareVersions } from './version.ts';
import { FilterArgs } from '../engine/filters.ts';

const VERSION_PREFIX = /^\/v([0-9.]+)(\/.*)$/;
const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

export const SERVER_HEADER = `Berth/${BERTH_VERSION} (linux)`;

export class ApiServer {
  readonly routes = new RouteTable();
  readonly http: Server;
  private readonly active = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly daemon: DaemonContext) {
    // No request timeout: events, logs -f and attach stay open as long as the client wants.
    this.http = createServer({ requestTimeout: 0, keepAlive: true });
    // Every socket, hijacked ones (attach, exec) included: the HTTP layer forgets those, and a
    // shutdown must still be able to end them.
    this.http.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.http.on('request', (req, res) => { void this.dispatch(req, res, undefined); });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // Node hands upgrades over without a response object; make one on the raw socket so
      // ordinary answers (errors, a route that does not hijack) still work.
      const res = new ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.on('finish', () => { if (!socket.destroyed) socket.end(); });
      socket.on('error', () => socket.destroy());
      // Node does not parse the body of an upgrade request (exec start sends {"Detach":…,"Tty":…}):
      // it is the start of `head`, and must not reach the process as stdin.
      const length = Number(req.headers['content-length'] ?? 0);
      if (Number.isFinite(length) && length > 0 && length <= 1 << 20) {
        const collect = (have: Buffer): void => {
          if (have.length >= length) {
            socket.pause();
            void this.dispatch(req, res, { head: have.subarray(length), body: have.subarray(0, length) });
            return;
          }
          socket.once('data', (more: Buffer) => collect(Buffer.concat([have, more])));
        };
        collect(head);
        return;
      }
      void this.dispatch(req, res, { head });
    });
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request');
    });
  }

  /** Open streaming answers (events, progress) still running. */
  get activeRequests(): number {
    return this.active.size;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, upgrade: { head: Buffer; body?: Buffer } | undefined): Promise<void> {
    const log = this.daemon.log;
    const url = req.url ?? '/';
    const qIndex = url.indexOf('?');
    let path = qIndex < 0 ? url : url.slice(0, qIndex);
    const query = new URLSearchParams(qIndex < 0 ? '' : url.slice(qIndex + 1));
    let requested: string | undefined;
    const vm = VERSION_PREFIX.exec(path);
    if (vm) {
      requested = vm[1];
      path = vm[2];
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const match = METHODS.has(method) ? this.routes.find(method, path) : undefined;
    if (!match) {
      log.debug('no route', { method, path: url });
      writeJSON(res, 404, { message: 'page not found' });
      return;
    }
    res.setHeader('Server', SERVER_HEADER);
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('Ostype', 'linux');
    const apiVersion = requested ?? API_VERSION;
    log.debug(`Calling ${method} ${url}`);
    if (compareVersions(apiVersion, MIN_API_VERSION) < 0) {
      writeJSON(res, 400, { message: `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version` });
      return;
    }
    if (compareVersions(apiVersion, API_VERSION) > 0) {
      writeJSON(res, 400, { message: `client version ${apiVersion} is too new. Maximum supported API version is ${API_VERSION}` });
      return;
    }

    const abort = new AbortController();
    const onClose = (): void => { if (!res.writableFinished) abort.abort(new Error('client disconnected')); };
    res.on('close', onClose);
    this.active.add(res);
    let streamed = false;
    let hijacked = false;
    const ctx: RequestContext = {
      req, res, method: method as HttpMethod, path, params: match.params, query, apiVersion,
      daemon: this.daemon, log, signal: abort.signal, upgrade: upgrade !== undefined,
      versionAtLeast: (v) => compareVersions(apiVersion, v) >= 0,
      json: (body, status = 200) => writeJSON(res, status, body),
      noContent: (status = 204) => { res.statusCode = status; res.end(); },
      text: (body, status = 200) => {
        res.statusCode = status;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('Content-Length', Buffer.byteLength(body));
        res.end(body);
      },
      readJSON: (async (opts?: ReadJSONOptions) => readJSON(req, opts, upgrade ? (upgrade.body ?? Buffer.alloc(0)) : undefined)) as RequestContext['readJSON'],
      bool: (name, dflt) => (dflt === undefined ? boolValue(query, name) : boolValueOr(query, name, dflt)),
      int: (name, dflt) => intValue(query, name, dflt),
      filters: (accepted) => {
        const f = FilterArgs.fromJSON(query.get('filters'));
        if (accepted) f.validate(accepted);
        return f;
      },
      jsonStream: () => { streamed = true; return new JsonLineWriter(res); },
      progress: () => { streamed = true; return new ProgressStream(res); },
      hijack: (opts?: HijackOptions) => { hijacked = true; return hijack(req, res, upgrade, opts); },
      rawUpgrade: () => {
        if (!upgrade) throw new Error('rawUpgrade() on a request without Connection: Upgrade');
        hijacked = true;
        const socket = req.socket as Socket;
        res.detachSocket(socket);
        return { socket, head: upgrade.head };
      },
    };
    try {
      await match.handler(ctx);
    } catch (err) {
      const status = errorStatus(err);
      const message = errorMessage(err);
      if (status >= 500) log.error(`Handler for ${method} ${path} returned error: ${message}`);
      else log.debug(`Handler for ${method} ${path} returned error: ${message}`);
      if (hijacked) {
        req.socket.destroy();
      } else if (!res.headersSent && !res.writableEnded) {
        writeJSON(res, status, { message });
      } else if (!res.writableEnded) {
        // Mid-stream: a progress stream reports errors in-band itself; anything else just ends.
        if (!streamed) log.warn(`Handler for ${method} ${path} failed after answering: ${message}`);
        res.end();
      }
    } finally {
      this.active.delete(res);
      // A handler that returned without answering would leave the client hanging.
      if (!hijacked && !res.headersSent && !res.writableEnded) {
        log.error(`Handler for ${method} ${path} returned without an answer`);
        writeJSON(res, 500, { message: 'internal error: no response' });
      }
    }
  }

  /** Stops accepting; idle keep-alive connections close at once, busy ones after `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const timer = setTimeout(() => {
      this.http.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}

