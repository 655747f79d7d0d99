// Routing for the Engine API: paths as in moby's swagger, handlers get a RequestContext.
//
// Patterns: `/containers/{id}/json` (one segment, via find-my-way) and `/images/{name:.*}/json`
// (a parameter that may contain slashes — image names do — matched by a regular expression,
// tried after the static and one-segment routes, in registration order, as dockerd's router
// tries its routes). Every route also answers under a `/vX.Y` prefix; the server strips it.
import FindMyWay from 'find-my-way';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DaemonContext } from './context.ts';
import type { Logger } from '../engine/log.ts';
import type { FilterArgs } from '../engine/filters.ts';
import type { HijackedConnection, HijackOptions } from './hijack.ts';
import type { JsonLineWriter, ProgressStream } from './progress.ts';
import type { ReadJSONOptions } from './http.ts';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: HttpMethod;
  /** The path without the /vX.Y prefix. */
  readonly path: string;
  /** Path parameters, URL-decoded. */
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  /** The version the client asked for (its /vX.Y prefix), or the daemon's when none. */
  readonly apiVersion: string;
  readonly daemon: DaemonContext;
  readonly log: Logger;
  /** Aborted when the client disconnects before the answer is complete. */
  readonly signal: AbortSignal;
  /** The client sent `Connection: Upgrade` (attach/exec: reply with hijack()). */
  readonly upgrade: boolean;
  versionAtLeast(version: string): boolean;
  /** Sends a JSON answer (status 200 unless given). */
  json(body: unknown, status?: number): void;
  /** Sends an empty answer (204 unless given). */
  noContent(status?: number): void;
  /** Sends text/plain. */
  text(body: string, status?: number): void;
  /** The request body as JSON (dockerd's checks; 400 on failure). */
  readJSON<T = unknown>(opts?: ReadJSONOptions & { optional?: false }): Promise<T>;
  readJSON<T = unknown>(opts: ReadJSONOptions & { optional: true }): Promise<T | undefined>;
  /** docker's BoolValue / BoolValueOrDefault for a query parameter. */
  bool(name: string, dflt?: boolean): boolean;
  /** An integer query parameter (400 if malformed). */
  int(name: string, dflt: number): number;
  /** The `filters` parameter; refuses keys outside `accepted` when given. */
  filters(accepted?: Iterable<string>): FilterArgs;
  /** Starts a JSON-lines answer (events, stats). */
  jsonStream(): JsonLineWriter;
  /** Starts docker's progress stream (pull, push, load). */
  progress(): ProgressStream;
  /** Takes over the connection (attach, exec): 101 UPGRADED when the client asked for it. */
  hijack(opts?: HijackOptions): HijackedConnection;
  /**
   * For other upgrade protocols (websockets: ws's handleUpgrade(req, socket, head, …)): the raw
   * socket and the bytes read past the request, with nothing written yet. Only when `upgrade`.
   */
  rawUpgrade(): { socket: import('node:net').Socket; head: Buffer };
}

export type RouteHandler = (ctx: RequestContext) => unknown | Promise<unknown>;

export interface ApiRouter {
  get(path: string, handler: RouteHandler): void;
  head(path: string, handler: RouteHandler): void;
  post(path: string, handler: RouteHandler): void;
  put(path: string, handler: RouteHandler): void;
  delete(path: string, handler: RouteHandler): void;
  route(method: HttpMethod, path: string, handler: RouteHandler): void;
}

export interface RouteMatch {
  handler: RouteHandler;
  params: Record<string, string>;
  /** The pattern as registered, for logs. */
  pattern: string;
}

interface GreedyRoute { method: HttpMethod; pattern: string; regex: RegExp; names: string[]; handler: RouteHandler }

const PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;

export class RouteTable implements ApiRouter {
  private readonly fmw = FindMyWay({ ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 1024 });
  private readonly greedy: GreedyRoute[] = [];
  private readonly patterns = new Set<string>();

  get(path: string, handler: RouteHandler): void { this.route('GET', path, handler); }
  head(path: string, handler: RouteHandler): void { this.route('HEAD', path, handler); }
  post(path: string, handler: RouteHandler): void { this.route('POST', path, handler); }
  put(path: string, handler: RouteHandler): void { this.route('PUT', path, handler); }
  delete(path: string, handler: RouteHandler): void { this.route('DELETE', path, handler); }

  route(method: HttpMethod, path: string, handler: RouteHandler): void {
    if (!path.startsWith('/')) throw new Error(`route path must start with '/': ${path}`);
    const key = `${method} ${path}`;
    if (this.patterns.has(key)) throw new Error(`route registered twice: ${key}`);
    this.patterns.add(key);
    const names: string[] = [];
    let isGreedy = false;
    for (const m of path.matchAll(PARAM)) {
      names.push(m[1]);
      if (m[2] !== undefined) {
        if (m[2] !== '.*') throw new Error(`unsupported parameter pattern {${m[1]}:${m[2]}} in ${path} (only {name} and {name:.*})`);
        isGreedy = true;
      }
    }
    if (isGreedy) {
      let source = '';
      let last = 0;
      for (const m of path.matchAll(PARAM)) {
        source += escapeRegex(path.slice(last, m.index)) + (m[2] === '.*' ? '(.+)' : '([^/]+)');
        last = (m.index ?? 0) + m[0].length;
      }
      source += escapeRegex(path.slice(last));
      this.greedy.push({ method, pattern: path, regex: new RegExp(`^${source}$`), names, handler });
      return;
    }
    const fmwPath = path.replace(PARAM, (_all, name: string) => `:${name}`);
    this.fmw.on(method, fmwPath, () => undefined, { handler, pattern: path });
  }

  /** The route for a method and a (prefix-free, query-free) path. */
  find(method: string, path: string): RouteMatch | undefined {
    const hit = this.fmw.find(method as FindMyWay.HTTPMethod, path);
    if (hit) {
      const store = hit.store as { handler: RouteHandler; pattern: string };
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(hit.params)) if (v !== undefined) params[k] = v;
      return { handler: store.handler, params, pattern: store.pattern };
    }
    for (const r of this.greedy) {
      if (r.method !== method) continue;
      const m = r.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      try {
        r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      } catch {
        continue; // malformed %-escape: not this route
      }
      return { handler: r.handler, params, pattern: r.pattern };
    }
    return undefined;
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
