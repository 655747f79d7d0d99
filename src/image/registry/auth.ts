// Registry authentication: WWW-Authenticate challenges (RFC 7235), HTTP Basic, and the bearer
// token flow of docker's token auth spec — GET <realm>?service=…&scope=… (with Basic
// credentials, or none for anonymous access), or the OAuth2 POST form when the caller holds an
// identity (refresh) token. Tokens are cached per (realm, service, scopes, credentials) until a
// little before they expire; concurrent requests for the same token share one fetch.
import { createHash } from 'node:crypto';
import { errorFromResponse, RegistryError, redactUrl } from './errors.ts';
import { readBody, readErrorBody, send, type HttpResponse, type TlsSettings } from './http.ts';

export interface Challenge {
  /** Lower case: "bearer", "basic", … */
  scheme: string;
  /** Parameter names in lower case; values unquoted. */
  params: Record<string, string>;
}

const TOKEN_CHARS = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses WWW-Authenticate values: several challenges may share one header, separated by commas
 * like the parameters inside them, so a new challenge is recognised as a token followed by
 * whitespace (not by "=").
 */
export function parseWWWAuthenticate(value: string | string[] | undefined): Challenge[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  const out: Challenge[] = [];
  for (const v of values) {
    let i = 0;
    const n = v.length;
    const skipWs = (): void => {
      while (i < n && (v[i] === ' ' || v[i] === '\t')) i++;
    };
    const readToken = (): string => {
      const start = i;
      while (i < n && TOKEN_CHARS.test(v[i]!)) i++;
      return v.slice(start, i);
    };
    while (i < n) {
      while (i < n && (v[i] === ' ' || v[i] === '\t' || v[i] === ',')) i++;
      const scheme = readToken();
      if (!scheme) {
        i++; // junk: skip a character and resynchronise
        continue;
      }
      const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
      out.push(challenge);
      skipWs();
      // auth-params until the next challenge
      for (;;) {
        const save = i;
        while (i < n && (v[i] === ' ' || v[i] === '\t' || v[i] === ',')) i++;
        const name = readToken();
        skipWs();
        if (!name || v[i] !== '=') {
          // the next challenge (a token68 credential, which registries do not use, reads as one too)
          i = save;
          break;
        }
        i++; // '='
        skipWs();
        let val = '';
        if (v[i] === '"') {
          i++;
          while (i < n && v[i] !== '"') {
            if (v[i] === '\\' && i + 1 < n) i++;
            val += v[i];
            i++;
          }
          i++; // closing quote
        } else {
          val = readToken();
        }
        challenge.params[name.toLowerCase()] = val;
        skipWs();
        if (i >= n) break;
        if (v[i] !== ',') break;
      }
    }
  }
  return out;
}

/** Credentials for one registry, as docker keeps them. */
export interface Credentials {
  username?: string;
  password?: string;
  /** A refresh token from an earlier login (docker's `identitytoken`): used with the OAuth2 POST flow. */
  identityToken?: string;
  /** A bearer token to send as is (docker's `registrytoken`). */
  registryToken?: string;
}

export function hasCredentials(c: Credentials | undefined): c is Credentials {
  return !!c && !!(c.username || c.password || c.identityToken || c.registryToken);
}

/** `repository:<name>:<actions>` */
export function repositoryScope(name: string, actions: string[]): string {
  return `repository:${name}:${actions.join(',')}`;
}

export interface TokenResult {
  token: string;
  /** ms since the epoch after which the token should not be used. */
  expiresAt: number;
  /** Present when the server issued one (login with offline access): store as the identity token. */
  refreshToken?: string;
}

// docker's token spec: expires_in defaults to 60 s, and shorter values are raised to 60 s.
const MIN_TOKEN_LIFETIME_S = 60;

export interface TokenRequestOptions {
  challenge: Challenge;
  scopes: string[];
  credentials?: Credentials;
  /** Ask for a refresh token (login). */
  offline?: boolean;
  clientId: string;
  userAgent: string;
  tls: TlsSettings;
  signal?: AbortSignal;
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64')}`;
}

/** Fetches one token from the challenge's realm. */
export async function fetchToken(o: TokenRequestOptions): Promise<TokenResult> {
  const realm = o.challenge.params.realm;
  if (!realm) throw new RegistryError('INVALID_RESPONSE', 'the registry asked for a bearer token but named no realm to get it from');
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm);
  } catch {
    throw new RegistryError('INVALID_RESPONSE', `the registry's token realm is not a URL: ${JSON.stringify(realm)}`);
  }
  const service = o.challenge.params.service;
  const headers: Record<string, string> = { 'user-agent': o.userAgent, accept: 'application/json' };
  let res: HttpResponse;
  let method: string;
  if (o.credentials?.identityToken) {
    // OAuth2 refresh-token grant (docker's token spec, oauth.md): the identity token from login.
    method = 'POST';
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', o.credentials.identityToken);
    if (service) form.set('service', service);
    if (o.scopes.length) form.set('scope', o.scopes.join(' '));
    form.set('client_id', o.clientId);
    if (o.offline) form.set('access_type', 'offline');
    headers['content-type'] = 'application/x-www-form-urlencoded';
    res = await send({ method, url: realmUrl.toString(), headers, body: Buffer.from(form.toString()), tls: o.tls, signal: o.signal });
  } else {
    method = 'GET';
    const u = new URL(realmUrl);
    if (service) u.searchParams.set('service', service);
    for (const s of o.scopes) u.searchParams.append('scope', s);
    if (o.credentials?.username) {
      headers.authorization = basicHeader(o.credentials);
      u.searchParams.set('account', o.credentials.username);
      if (o.offline) {
        u.searchParams.set('offline_token', 'true');
        u.searchParams.set('client_id', o.clientId);
      }
    }
    res = await send({ method, url: u.toString(), headers, tls: o.tls, signal: o.signal, followRedirects: true });
  }
  if (res.status !== 200) {
    const body = await readErrorBody(res);
    const err = errorFromResponse({ status: res.status, statusText: res.statusText, body, method, url: res.url, subject: 'token' });
    throw err.code === 'HTTP_ERROR'
      ? err.withMessage(`getting a token from ${redactUrl(realmUrl.toString())} failed: ${err.message}`)
      : err;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse((await readBody(res, 1 << 20)).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new RegistryError('INVALID_RESPONSE', `the token server ${redactUrl(realmUrl.toString())} answered with something that is not JSON`);
  }
  // `token` is docker's field, `access_token` OAuth2's; servers may send either or both.
  const token = typeof json.token === 'string' && json.token ? json.token : typeof json.access_token === 'string' ? json.access_token : '';
  if (!token) throw new RegistryError('INVALID_RESPONSE', `the token server ${redactUrl(realmUrl.toString())} answered without a token`);
  let lifetime = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : MIN_TOKEN_LIFETIME_S;
  if (lifetime < MIN_TOKEN_LIFETIME_S) lifetime = MIN_TOKEN_LIFETIME_S;
  let issued = Date.now();
  if (typeof json.issued_at === 'string') {
    const t = Date.parse(json.issued_at);
    // A server clock far from ours must not make every token look expired (or immortal).
    if (!Number.isNaN(t) && Math.abs(t - issued) < 5 * 60_000) issued = t;
  }
  // Renew a little early so a token does not expire between being chosen and being checked.
  const margin = Math.min(10_000, (lifetime * 1000) / 10);
  const result: TokenResult = { token, expiresAt: issued + lifetime * 1000 - margin };
  if (typeof json.refresh_token === 'string' && json.refresh_token) result.refreshToken = json.refresh_token;
  return result;
}

/**
 * The Authorization header for requests to one registry, given what it challenged with.
 * Safe for concurrent use: one token fetch per key at a time.
 */
export class TokenCache {
  private readonly tokens = new Map<string, TokenResult>();
  private readonly inflight = new Map<string, Promise<TokenResult>>();

  static key(challenge: Challenge, scopes: string[], credentials: Credentials | undefined): string {
    const who = credentials?.identityToken ? `id:${createHash('sha256').update(credentials.identityToken).digest('hex')}`
      : credentials?.username ? `user:${credentials.username}:${createHash('sha256').update(credentials.password ?? '').digest('hex')}`
        : 'anonymous';
    return JSON.stringify([challenge.params.realm ?? '', challenge.params.service ?? '', [...scopes].sort(), who]);
  }

  async get(key: string, fetch: () => Promise<TokenResult>): Promise<TokenResult> {
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached;
    let p = this.inflight.get(key);
    if (!p) {
      p = fetch().then((t) => {
        this.tokens.set(key, t);
        return t;
      }).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  invalidate(key: string): void {
    this.tokens.delete(key);
  }
}

export { basicHeader };
