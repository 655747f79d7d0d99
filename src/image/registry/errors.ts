// Errors from registries, in the shape users of Docker know: the distribution spec's error codes
// (the JSON body `{"errors":[{"code","message","detail"}]}`), rendered as docker renders them —
// "<code in lower case, _ as space>: <message>", e.g. "manifest unknown: manifest unknown",
// "unauthorized: authentication required", "denied: requested access to the resource is denied" —
// wrapped with what was being done ("manifest for localhost:5000/x:nope not found: …").

/** Codes the distribution spec defines, plus the client's own (below the blank line). */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_UNVERIFIED'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'PAGINATION_NUMBER_INVALID'
  | 'RANGE_INVALID'
  | 'UNKNOWN'

  | 'NETWORK' // no HTTP answer: connection refused/reset, DNS, TLS, timeout
  | 'HTTP_ERROR' // an HTTP status with no distribution error body that maps to a code
  | 'INVALID_RESPONSE' // an answer that breaks the protocol (bad JSON, missing Location, …)
  | 'DIGEST_MISMATCH' // content does not hash to the digest it was asked for
  | 'SIZE_MISMATCH' // content is longer or shorter than its descriptor says
  | 'UNSUPPORTED_MANIFEST' // schema1, or a media type that is not an image
  | 'NO_MATCHING_MANIFEST' // an index without an entry for the wanted platform
  | 'PLATFORM_MISMATCH' // a single-platform image that is not the platform asked for
  | 'ABORTED'; // the caller's AbortSignal fired

/** One entry of the distribution error JSON. */
export interface DistributionError {
  code: string;
  message: string;
  detail?: unknown;
}

/** The default message of each code (the spec's descriptions, used when a registry sends none). */
const CODE_MESSAGES: Record<string, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown',
  MANIFEST_UNVERIFIED: 'manifest failed signature verification',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  TAG_INVALID: 'manifest tag did not match URI',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'The operation is unsupported.',
  TOOMANYREQUESTS: 'too many requests',
  UNAVAILABLE: 'service unavailable',
  PAGINATION_NUMBER_INVALID: 'invalid number of results requested',
  RANGE_INVALID: 'invalid content range',
  UNKNOWN: 'unknown error',
};

export function isDistributionCode(code: string): boolean {
  return Object.hasOwn(CODE_MESSAGES, code);
}

/** docker's rendering of one registry error: "manifest unknown: manifest unknown". */
export function formatDistributionError(e: DistributionError): string {
  const code = isDistributionCode(e.code) ? e.code : 'UNKNOWN';
  const message = e.message || CODE_MESSAGES[code]!;
  return `${code.toLowerCase().replace(/_/g, ' ')}: ${message}`;
}

export interface RegistryErrorInit {
  status?: number;
  /** Every entry of the registry's error JSON (the first decides `code`). */
  errors?: DistributionError[];
  method?: string;
  url?: string;
  /** Worth trying again (5xx, connection errors); set by the transport. */
  retryable?: boolean;
  cause?: unknown;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status?: number;
  readonly errors: DistributionError[];
  readonly method?: string;
  readonly url?: string;
  readonly retryable: boolean;

  constructor(readonly code: RegistryErrorCode, message: string, init: RegistryErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.errors = init.errors ?? [];
    this.method = init.method;
    this.url = init.url;
    this.retryable = init.retryable ?? false;
  }

  /** The registry's own words for the first error ("manifest unknown: manifest unknown"), or the message. */
  get registryMessage(): string {
    return this.errors.length ? formatDistributionError(this.errors[0]!) : this.message;
  }

  /** The same error with a message that says what was being done; code and details are kept. */
  withMessage(message: string): RegistryError {
    const e = new RegistryError(this.code, message, {
      status: this.status, errors: this.errors, method: this.method, url: this.url, retryable: this.retryable, cause: this.cause,
    });
    return e;
  }
}

export function isRegistryError(err: unknown, code?: RegistryErrorCode): err is RegistryError {
  return err instanceof RegistryError && (code === undefined || err.code === code);
}

/** Parses a distribution error body; undefined if it is not one. */
export function parseDistributionErrors(body: string): DistributionError[] | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!json || typeof json !== 'object') return undefined;
  const errors = (json as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  const out: DistributionError[] = [];
  for (const e of errors) {
    if (!e || typeof e !== 'object') continue;
    const { code, message, detail } = e as Record<string, unknown>;
    if (typeof code !== 'string') continue;
    out.push({ code: code.toUpperCase(), message: typeof message === 'string' ? message : '', detail });
  }
  return out.length ? out : undefined;
}

/** What an error status means when the body says nothing useful. */
export type ErrorSubject = 'manifest' | 'blob' | 'upload' | 'repository' | 'tags' | 'ping' | 'token';

function codeForStatus(status: number, subject: ErrorSubject): RegistryErrorCode {
  switch (status) {
    case 401: return 'UNAUTHORIZED';
    case 403: return 'DENIED';
    case 404:
      return subject === 'manifest' ? 'MANIFEST_UNKNOWN' : subject === 'blob' ? 'BLOB_UNKNOWN'
        : subject === 'upload' ? 'BLOB_UPLOAD_UNKNOWN' : subject === 'tags' || subject === 'repository' ? 'NAME_UNKNOWN' : 'HTTP_ERROR';
    case 416: return 'RANGE_INVALID';
    case 429: return 'TOOMANYREQUESTS';
    case 503: return 'UNAVAILABLE';
    default: return 'HTTP_ERROR';
  }
}

/** A RegistryError from an error response (status, headers' challenge, body text). */
export function errorFromResponse(opts: {
  status: number; statusText?: string; body: string; method: string; url: string; subject: ErrorSubject;
  /** Parameters of a Bearer challenge in the response, if any (RFC 6750 error codes). */
  bearerError?: { error?: string; error_description?: string };
}): RegistryError {
  const { status, body, method, url, subject } = opts;
  const retryable = status >= 500 && status !== 501 && status !== 505;
  let errors = parseDistributionErrors(body);
  // RFC 6750: a token that lacks the scope is "denied", an invalid or expired one "unauthorized"
  // (docker reads these from WWW-Authenticate before looking at the body).
  if ((status === 401 || status === 403) && opts.bearerError?.error) {
    const be = opts.bearerError;
    const code = be.error === 'insufficient_scope' ? 'DENIED' : be.error === 'invalid_token' ? 'UNAUTHORIZED' : undefined;
    if (code) errors = [{ code, message: be.error_description || CODE_MESSAGES[code]! }, ...(errors ?? [])];
  }
  if (!errors) {
    // Token servers (Docker Hub's among them) answer {"details": "..."}.
    let details: string | undefined;
    try {
      const j = JSON.parse(body) as Record<string, unknown>;
      details = typeof j.details === 'string' ? j.details : typeof j.error_description === 'string' ? j.error_description
        : typeof j.error === 'string' ? j.error : typeof j.message === 'string' ? j.message : undefined;
    } catch {
      // not JSON
    }
    const code = codeForStatus(status, subject);
    if (code !== 'HTTP_ERROR') {
      errors = [{ code, message: details ?? CODE_MESSAGES[code]! }];
    } else {
      const snippet = body.trim().replace(/\s+/g, ' ').slice(0, 200);
      const what = `${status}${opts.statusText ? ` ${opts.statusText}` : ''}`;
      return new RegistryError('HTTP_ERROR',
        `unexpected HTTP status ${what} from ${method} ${redactUrl(url)}${details ? `: ${details}` : snippet ? `: ${snippet}` : ''}`,
        { status, method, url, retryable });
    }
  }
  const first = errors[0]!;
  const code = (isDistributionCode(first.code) ? first.code : 'UNKNOWN') as RegistryErrorCode;
  return new RegistryError(code, formatDistributionError(first), { status, errors, method, url, retryable });
}

/** A URL for messages: no credentials, no upload state tokens. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const k of [...u.searchParams.keys()]) {
      if (/^_state$|token|signature|credential|secret|^x-amz-|^sig$|^se$|^sp$/i.test(k)) u.searchParams.set(k, 'REDACTED');
    }
    return u.toString();
  } catch {
    return url;
  }
}
