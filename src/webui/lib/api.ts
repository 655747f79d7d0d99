// The UI's Engine API client. Every call goes to /api/<engine path> on the UI's own origin; the
// daemon's UI server forwards it (src/api/ui/server.ts). State-changing calls carry the session's
// CSRF token. Errors carry the daemon's own message, which the pages show as is.
//
// Pure (no DOM): the unit tests run it in Node against a fetch they provide.

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The session ended (daemon restarted, signed out): the page should go to the sign-in page. */
export class SignedOutError extends ApiError {
  override name = 'SignedOutError';
}

export type QueryValue = string | number | boolean | undefined | null | Record<string, unknown>;
export type Query = Record<string, QueryValue>;

/** docker's query encoding: booleans as 1/0, objects (filters) as JSON, undefined left out. */
export function encodeQuery(query: Query | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    const text = typeof v === 'boolean' ? (v ? '1' : '0') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(text)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless it is a Blob, ArrayBuffer, Uint8Array or string. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  /** '/api' in the browser. */
  base?: string;
  csrf?: string;
  fetch?: FetchLike;
}

/** The message of an error answer: dockerd's {"message": …}, or the text itself. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = '';
  try { text = await res.text(); } catch { /* body unreadable */ }
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (parsed && typeof parsed.message === 'string') message = parsed.message;
  } catch { /* not JSON */ }
  if (!message) message = `${res.status} ${res.statusText || 'error'}`;
  return res.status === 401 ? new SignedOutError(401, message) : new ApiError(res.status, message);
}

export class ApiClient {
  readonly base: string;
  readonly csrf: string;
  private readonly fetchFn: FetchLike;

  constructor(opts: ApiClientOptions = {}) {
    this.base = opts.base ?? '/api';
    this.csrf = opts.csrf ?? '';
    this.fetchFn = opts.fetch ?? ((url, init) => fetch(url, init));
  }

  url(path: string, query?: Query): string {
    return `${this.base}${path}${encodeQuery(query)}`;
  }

  /** The raw response of a successful call; an ApiError otherwise. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (method !== 'GET' && method !== 'HEAD') headers['X-Berth-CSRF'] = this.csrf;
    let body: BodyInit | undefined;
    const b = opts.body;
    if (b !== undefined) {
      if (typeof b === 'string' || b instanceof Uint8Array || b instanceof ArrayBuffer || (typeof Blob !== 'undefined' && b instanceof Blob)) {
        body = b as BodyInit;
      } else {
        body = JSON.stringify(b);
        headers['Content-Type'] ??= 'application/json';
      }
    }
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), { method, headers, body, signal: opts.signal, credentials: 'same-origin' });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError(0, `cannot reach the Berth daemon: ${(e as Error).message}`);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  /** A JSON answer (undefined for an empty one, e.g. 204). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.json<T>('GET', path, { query, signal });
  }

  post<T = unknown>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.json<T>('POST', path, { body, query });
  }

  del<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.json<T>('DELETE', path, { query });
  }

  /**
   * Reads a streaming answer chunk by chunk (logs, events, stats, pull/push/build progress).
   * Resolves when the stream ends or `signal` aborts it.
   */
  async stream(method: string, path: string, opts: RequestOptions, onChunk: (chunk: Uint8Array) => void): Promise<void> {
    const res = await this.request(method, path, opts);
    if (!res.body) return;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value) onChunk(value);
      }
    } catch (e) {
      if (opts.signal?.aborted) return;
      throw e;
    } finally {
      reader.releaseLock();
    }
  }
}
