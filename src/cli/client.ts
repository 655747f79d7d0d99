// The Engine API client the `berth` CLI uses: node:http over the daemon's unix socket.
//
// Version negotiation as the docker CLI: `HEAD /_ping` once (GET if HEAD is refused), then every
// request goes to /v<min(ours, daemon's)>/…; a daemon without an API-Version header gets 1.24.
// Errors: the daemon's {"message"} becomes ApiResponseError ("Error response from daemon: …" is
// added by the CLI's top level); connection problems become DaemonConnectionError with what to do.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { API_VERSION, compareVersions } from '../api/version.ts';

/** The daemon answered with an error status. */
export class ApiResponseError extends Error {
  override name = 'ApiResponseError';
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/** The daemon could not be reached. */
export class DaemonConnectionError extends Error {
  override name = 'DaemonConnectionError';
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

export interface PingResult {
  apiVersion?: string;
  osType?: string;
  experimental: boolean;
  builderVersion?: string;
  swarm?: string;
}

export type QueryValue = string | number | boolean | undefined | null | string[];

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** An object is sent as JSON; a Buffer/string as is; a stream is piped. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Send without the /vX.Y prefix (only /_ping). */
  unversioned?: boolean;
  signal?: AbortSignal;
}

/** A query object → "?a=1&b=x" with the daemon's boolean form (1/0); '' when empty. */
export function encodeQuery(q: Record<string, QueryValue> | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else if (typeof v === 'boolean') p.append(k, v ? '1' : '0');
    else p.append(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

function isReadable(v: unknown): v is Readable {
  return v !== null && typeof v === 'object' && typeof (v as Readable).pipe === 'function';
}

export async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export class EngineClient {
  /** The version in use after negotiation (ours until then). */
  version: string = API_VERSION;
  private negotiated = false;

  constructor(readonly socketPath: string, readonly host: string, private readonly fixedVersion?: string) {
    if (fixedVersion) {
      this.version = fixedVersion;
      this.negotiated = true;
    }
  }

  /** Sends a request; resolves with the response once headers arrive (status not checked). */
  raw(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const url = (opts.unversioned ? '' : `/v${this.version}`) + path + encodeQuery(opts.query);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    let payload: Buffer | undefined;
    if (opts.body !== undefined && !isReadable(opts.body)) {
      if (Buffer.isBuffer(opts.body) || typeof opts.body === 'string') {
        payload = Buffer.from(opts.body);
      } else {
        payload = Buffer.from(JSON.stringify(opts.body));
        headers['Content-Type'] ??= 'application/json';
      }
      headers['Content-Length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socketPath, path: url, method, headers: { Host: 'api.moby.localhost', ...headers }, signal: opts.signal });
      req.on('response', resolve);
      req.on('error', (e: NodeJS.ErrnoException) => reject(this.connectionError(e)));
      if (isReadable(opts.body)) opts.body.pipe(req);
      else req.end(payload);
    });
  }

  private connectionError(e: NodeJS.ErrnoException): Error {
    if (e.name === 'AbortError') return e;
    switch (e.code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
        return new DaemonConnectionError(`Cannot connect to the Berth daemon at ${this.host}. Is the berth daemon running?`, e.code);
      case 'EACCES':
        return new DaemonConnectionError(
          `permission denied while trying to connect to the Berth daemon socket at ${this.host}: ` +
          `the socket is for root (and the daemon's --group); run berth as root`, e.code);
      default:
        return new DaemonConnectionError(`error during connect to ${this.host}: ${e.message}`, e.code);
    }
  }

  /** Like raw(), but an error status becomes ApiResponseError with the daemon's message. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    await this.negotiate();
    const res = await this.raw(method, path, opts);
    if ((res.statusCode ?? 500) >= 400) {
      const text = (await readAll(res)).toString('utf8');
      let message = text.trim();
      try {
        const parsed = JSON.parse(text) as { message?: unknown };
        if (typeof parsed.message === 'string') message = parsed.message;
      } catch { /* plain text answer */ }
      throw new ApiResponseError(res.statusCode ?? 500, message || `HTTP ${res.statusCode}`);
    }
    return res;
  }

  async json<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const text = (await readAll(res)).toString('utf8');
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiResponseError(res.statusCode ?? 200, `invalid JSON from the daemon for ${method} ${path}: ${text.slice(0, 200)}`);
    }
  }

  get<T = unknown>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.json<T>('GET', path, { query });
  }

  async ping(): Promise<PingResult> {
    let res = await this.raw('HEAD', '/_ping', { unversioned: true });
    if ((res.statusCode ?? 500) >= 400 && res.statusCode !== 500) {
      res.resume();
      res = await this.raw('GET', '/_ping', { unversioned: true });
    }
    res.resume();
    const h: IncomingHttpHeaders = res.headers;
    const header = (k: string): string | undefined => {
      const v = h[k];
      return Array.isArray(v) ? v[0] : v;
    };
    return {
      apiVersion: header('api-version'),
      osType: header('ostype'),
      experimental: header('docker-experimental') === 'true',
      builderVersion: header('builder-version'),
      swarm: header('swarm'),
    };
  }

  /** Agrees on the API version with the daemon (once). */
  async negotiate(): Promise<void> {
    if (this.negotiated) return;
    const p = await this.ping();
    const server = p.apiVersion || '1.24';
    this.version = compareVersions(server, API_VERSION) < 0 ? server : API_VERSION;
    this.negotiated = true;
  }
}
