// Request and response helpers shared by the route modules: JSON bodies with a size limit and
// dockerd's 400 messages, docker's boolean/integer query parsing, JSON answers encoded as Go's
// encoder writes them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidParameterError } from './errors.ts';

/** Default cap for JSON request bodies (container create with a large env is a few KB). */
export const DEFAULT_JSON_LIMIT = 4 * 1024 * 1024;

/** Go's json.Encoder escapes these (SetEscapeHTML defaults to true); clients see the same bytes as from dockerd. */
function escapeLikeGo(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** JSON text as dockerd writes it: Go's escaping and a trailing newline. */
export function encodeJSON(value: unknown): string {
  return `${escapeLikeGo(JSON.stringify(value) ?? 'null')}\n`;
}

export function writeJSON(res: ServerResponse, status: number, value: unknown): void {
  const body = encodeJSON(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

/** Reads the whole body, refusing more than `limit` bytes (the rest is not read). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new InvalidParameterError(`request body is too large: ${declared} bytes (limit ${limit})`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new InvalidParameterError(`request body is too large: more than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    req.on('error', (e) => { if (!failed) { failed = true; reject(e); } });
  });
}

export interface ReadJSONOptions {
  limit?: number;
  /** An empty body is allowed and gives undefined (e.g. POST /containers/{id}/start). */
  optional?: boolean;
}

/**
 * Parses a JSON request body with dockerd's checks and messages: Content-Type must be absent or
 * application/json, an empty body is "invalid JSON: got EOF while reading request body", and
 * anything after the value is refused.
 */
export async function readJSON<T = unknown>(req: IncomingMessage, opts: ReadJSONOptions = {}, preread?: Buffer): Promise<T | undefined> {
  const ct = req.headers['content-type'];
  // An upgrade request's body is not parsed by Node: the server cut it from the upgrade head.
  const body = preread ?? await readBody(req, opts.limit ?? DEFAULT_JSON_LIMIT);
  const text = body.toString('utf8');
  if (text.trim() === '') {
    if (opts.optional) return undefined;
    throw new InvalidParameterError('invalid JSON: got EOF while reading request body');
  }
  if (ct !== undefined && ct !== '') {
    const mime = ct.split(';')[0].trim().toLowerCase();
    if (mime !== 'application/json') {
      throw new InvalidParameterError(`unsupported Content-Type header (${ct}): must be 'application/json'`);
    }
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    const msg = (e as Error).message;
    if (/Unexpected non-whitespace character after JSON/.test(msg)) throw new InvalidParameterError('unexpected content after JSON');
    throw new InvalidParameterError(`invalid JSON: ${msg}`);
  }
}

/** docker's httputils.BoolValue: anything but "", "0", "no", "false", "none" is true. */
export function boolValue(query: URLSearchParams, key: string): boolean {
  const v = (query.get(key) ?? '').trim().toLowerCase();
  return !(v === '' || v === '0' || v === 'no' || v === 'false' || v === 'none');
}

/** docker's BoolValueOrDefault: the default when the parameter is absent. */
export function boolValueOr(query: URLSearchParams, key: string, dflt: boolean): boolean {
  return query.has(key) ? boolValue(query, key) : dflt;
}

/** docker's Int64ValueOrDefault: an integer, the default when absent or empty, else 400. */
export function intValue(query: URLSearchParams, key: string, dflt: number): number {
  const raw = query.get(key);
  if (raw === null || raw === '') return dflt;
  if (!/^[+-]?\d+$/.test(raw.trim())) throw new InvalidParameterError(`invalid value for ${key}: "${raw}" is not an integer`);
  return Number(raw.trim());
}
