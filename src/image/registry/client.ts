// The OCI distribution client: ping, auth, manifests (resolve a reference + platform to index,
// manifest and config, keeping the exact bytes), blobs (streamed, verified, resumable), push
// (existence checks, cross-repository mounts, monolithic and chunked uploads, manifest PUT) and
// tag listing. One client may serve many concurrent operations: host probes and tokens are
// shared and fetched once; nothing else is stateful.
//
// Transport security (as dockerd): HTTPS with verified certificates, except for "insecure"
// registries — loopback addresses, localhost, and those listed in `insecureRegistries` (host,
// host:port or CIDR) — which are tried over HTTPS without verification first and over plain HTTP
// if that fails at the connection level. The answer is remembered per host for the process.
import { createHash, type Hash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { hasherFor, parseDigest } from '../digest.ts';
import { formatPlatform, hostPlatform, listPlatforms, normalizePlatform, platformMatches, selectManifest } from '../platform.ts';
import { familiarName, familiarString, manifestReference, registryHost, type Reference } from '../reference.ts';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type ImageIndex, type ImageManifest, type Platform } from '../types.ts';
import {
  basicHeader, fetchToken, hasCredentials, parseWWWAuthenticate, repositoryScope, TokenCache, type Challenge, type Credentials,
} from './auth.ts';
import type { CredentialResolver } from './credentials.ts';
import { errorFromResponse, RegistryError, redactUrl, type ErrorSubject } from './errors.ts';
import { discard, headerValue, networkError, readBody, readErrorBody, send, type HttpResponse, type TlsSettings } from './http.ts';

/** Where a repository lives: a normalised Reference satisfies this. */
export interface RepositoryRef {
  /** The registry as references name it: "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** The repository: "library/busybox". */
  path: string;
}

export interface RegistryClientOptions {
  /** Credentials per registry domain (a resolver, e.g. CredentialStore.resolver()), or none. */
  credentials?: CredentialResolver;
  /** Registries where plain HTTP and unverified TLS are allowed: "host", "host:port" or a CIDR. */
  insecureRegistries?: string[];
  /** Extra CA certificates (PEM) for HTTPS registries. */
  ca?: string | Buffer | Array<string | Buffer>;
  userAgent?: string;
  /** Attempts per request for retryable failures (5xx, connection errors), including the first; default 4. */
  attempts?: number;
  /** First backoff delay; it doubles per attempt (with jitter); default 250 ms. */
  retryDelayMs?: number;
  /** Blobs larger than this are uploaded in chunks (PATCH with Content-Range); default 64 MiB. */
  chunkThreshold?: number;
  /** Chunk size for chunked uploads; default 16 MiB. */
  chunkSize?: number;
  /** Socket inactivity limit; default 60 s. */
  idleTimeoutMs?: number;
  /** Times a blob download continues from where a broken connection left it; default 5. */
  maxBlobResumes?: number;
}

/** Media types a manifest GET accepts, in preference order. Schema1 is not among them. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest];
const MANIFEST_SIZE_LIMIT = 4 << 20; // distribution's own limit for a manifest PUT
const CONFIG_SIZE_LIMIT = 64 << 20;
const SCHEMA1_TYPES: readonly string[] = [MediaType.DockerSchema1, MediaType.DockerSchema1Signed, 'application/json'];
const INDEX_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
const MANIFEST_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];
const CONFIG_TYPES: readonly string[] = [MediaType.OciConfig, MediaType.DockerConfig];

export interface FetchedManifest {
  /** The media type the manifest declares (or the response's Content-Type when it declares none). */
  mediaType: string;
  digest: Digest;
  size: number;
  /** The bytes exactly as served: their hash is `digest`. */
  bytes: Buffer;
}

export interface FetchedImageManifest extends FetchedManifest {
  kind: 'manifest';
  manifest: ImageManifest;
}

export interface FetchedIndex extends FetchedManifest {
  kind: 'index';
  index: ImageIndex;
}

export type AnyManifest = FetchedImageManifest | FetchedIndex;

export interface ResolvedImage {
  reference: Reference;
  /** What the reference names: the index's digest for a multi-platform image, else the manifest's. */
  digest: Digest;
  /** The index (or manifest list) the platform was chosen from, if the reference named one. */
  index?: FetchedIndex;
  manifest: FetchedImageManifest;
  config: { descriptor: Descriptor; bytes: Buffer; config: ImageConfig };
  /** The chosen image's platform (from its config). */
  platform: Platform;
  /** Things to tell the user that are not errors (docker prints the platform one as a warning). */
  warnings: string[];
}

export interface ResolveOptions {
  /** The platform to pick from an index; default the host's. An explicit platform must also match a single-platform image. */
  platform?: Platform;
  signal?: AbortSignal;
}

export interface BlobDownload {
  /** The blob's bytes from `offset` to the end. */
  stream: Readable;
  offset: number;
  size: number;
}

export interface OpenBlobOptions {
  /** Start here (`Range: bytes=<offset>-`); the stream yields bytes from offset on. */
  offset?: number;
  /**
   * Hash the bytes and fail the stream if they do not match the digest (default: when offset is 0;
   * from an offset the caller, who has the prefix, must hash). The size is always checked.
   */
  verify?: boolean;
  signal?: AbortSignal;
}

/** Bytes, or something that can produce them from the start again (for retries). */
export type BlobSource = Buffer | Uint8Array | { open(): Readable };

export interface PushBlobOptions {
  /** Repositories on the same registry that may already hold the blob (cross-repository mount). */
  mountFrom?: string[];
  /** Called with the bytes sent so far. */
  onProgress?: (sent: number) => void;
  signal?: AbortSignal;
  /** Override the client's chunk threshold for this blob. */
  chunkThreshold?: number;
  chunkSize?: number;
}

export interface PushBlobResult {
  status: 'exists' | 'mounted' | 'uploaded';
  /** The repository it was mounted from. */
  from?: string;
}

export interface PingResult {
  /** The base URL that answered: "https://host" or "http://host". */
  url: string;
  /** 200 (open) or 401 (authentication required). */
  status: number;
  challenges: Challenge[];
}

interface HostState {
  domain: string;
  base: string;
  tls: TlsSettings;
  challenges: Challenge[];
  /** What GET /v2/ answered when the host was first probed. */
  pingStatus: number;
}

interface CallOptions {
  method: string;
  /** Path under the registry ("/v2/…") or an absolute URL (upload locations). */
  path: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: () => Buffer | Readable;
  scopes: string[];
  subject: ErrorSubject;
  /** Statuses that are answers, not errors. */
  ok: number[];
  /** Safe to send again after a failure (GET/HEAD, or a PUT/PATCH whose whole body can be resent). */
  idempotent: boolean;
  followRedirects?: boolean;
  signal?: AbortSignal;
}

// Process-wide: what scheme an insecure registry turned out to speak.
const knownSchemes = new Map<string, 'https' | 'http'>();

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new RegistryError('ABORTED', 'aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new RegistryError('ABORTED', 'aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function hostnameOf(apiHost: string): string {
  if (apiHost.startsWith('[')) return apiHost.slice(1, apiHost.indexOf(']'));
  const colon = apiHost.lastIndexOf(':');
  return colon === -1 ? apiHost : apiHost.slice(0, colon);
}

function isLoopbackAddress(ip: string): boolean {
  if (isIP(ip) === 4) return ip.startsWith('127.');
  if (isIP(ip) === 6) return ip === '::1' || /^::ffff:127\./i.test(ip);
  return false;
}

function digestOf(bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function encodePath(repo: string): string {
  // Repository names are [a-z0-9._-/] by grammar; nothing to escape, but refuse anything else
  // rather than build a URL from it.
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repo)) {
    throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(repo)}`);
  }
  return repo;
}

function describe(repo: RepositoryRef): string {
  return familiarName({ domain: repo.domain, path: repo.path });
}

export class RegistryClient {
  private readonly opts: Required<Pick<RegistryClientOptions, 'attempts' | 'retryDelayMs' | 'chunkThreshold' | 'chunkSize' | 'idleTimeoutMs' | 'maxBlobResumes'>>
    & RegistryClientOptions;
  private readonly userAgent: string;
  private readonly hosts = new Map<string, Promise<HostState>>();
  private readonly creds = new Map<string, Promise<Credentials | undefined>>();
  private readonly tokens = new TokenCache();
  private readonly insecureHosts = new Set<string>();
  private readonly insecureCidrs = new BlockList();
  private hasCidrs = false;

  constructor(options: RegistryClientOptions = {}) {
    this.opts = {
      attempts: 4, retryDelayMs: 250, chunkThreshold: 64 << 20, chunkSize: 16 << 20, idleTimeoutMs: 60_000, maxBlobResumes: 5,
      ...options,
    };
    this.userAgent = options.userAgent ?? `berth/0.1 node/${process.versions.node} (${process.platform}; ${process.arch})`;
    for (const entry of options.insecureRegistries ?? []) {
      const e = entry.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').toLowerCase();
      const slash = e.indexOf('/');
      if (slash !== -1) {
        const ip = e.slice(0, slash);
        const family = isIP(ip);
        const bits = Number(e.slice(slash + 1));
        if (!family || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
          throw new RegistryError('UNSUPPORTED', `invalid insecure registry ${JSON.stringify(entry)}: expected host, host:port or a CIDR such as 10.0.0.0/8`);
        }
        this.insecureCidrs.addSubnet(ip, bits, family === 6 ? 'ipv6' : 'ipv4');
        this.hasCidrs = true;
      } else {
        this.insecureHosts.add(e);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // hosts, auth, requests
  // -------------------------------------------------------------------------------------------

  /** Whether plain HTTP / unverified TLS may be used for this API host (see the header comment). */
  async isInsecure(apiHost: string): Promise<boolean> {
    const host = apiHost.toLowerCase();
    const name = hostnameOf(host);
    if (this.insecureHosts.has(host) || this.insecureHosts.has(name)) return true;
    if (name === 'localhost' || name.endsWith('.localhost') || isLoopbackAddress(name)) return true;
    if (!this.hasCidrs) return false;
    const family = isIP(name);
    if (family) return this.insecureCidrs.check(name, family === 6 ? 'ipv6' : 'ipv4');
    try {
      const addrs = await lookup(name, { all: true });
      return addrs.some((a) => this.insecureCidrs.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
    } catch {
      return false;
    }
  }

  private credentialsFor(domain: string): Promise<Credentials | undefined> {
    let p = this.creds.get(domain);
    if (!p) {
      p = (this.opts.credentials ? this.opts.credentials(domain) : Promise.resolve(undefined));
      p.catch(() => this.creds.delete(domain));
      this.creds.set(domain, p);
    }
    return p;
  }

  private async pingAt(base: string, tls: TlsSettings, signal: AbortSignal | undefined, attempts: number, headers: Record<string, string> = {}): Promise<PingResult> {
    const url = `${base}/v2/`;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await send({ method: 'GET', url, headers: { 'user-agent': this.userAgent, ...headers }, tls, signal, idleTimeoutMs: this.opts.idleTimeoutMs, followRedirects: true });
        const challenges = parseWWWAuthenticate(res.headers['www-authenticate']);
        if (res.status >= 500 && attempt < attempts) {
          discard(res);
          await sleep(this.backoff(attempt), signal);
          continue;
        }
        if (res.status >= 500) {
          const body = await readErrorBody(res);
          throw errorFromResponse({ status: res.status, statusText: res.statusText, body, method: 'GET', url, subject: 'ping' });
        }
        discard(res);
        return { url: base, status: res.status, challenges };
      } catch (err) {
        const e = networkError('GET', url, err);
        if (e.retryable && attempt < attempts) {
          await sleep(this.backoff(attempt), signal);
          continue;
        }
        throw e;
      }
    }
  }

  private async probe(domain: string, signal?: AbortSignal): Promise<HostState> {
    const apiHost = registryHost(domain);
    const insecure = await this.isInsecure(apiHost);
    const secureTls: TlsSettings = { verify: true, ca: this.opts.ca };
    if (!insecure) {
      const r = await this.pingAt(`https://${apiHost}`, secureTls, signal, this.opts.attempts);
      return { domain, base: r.url, tls: secureTls, challenges: r.challenges, pingStatus: r.status };
    }
    const insecureTls: TlsSettings = { verify: false, ca: this.opts.ca };
    const known = knownSchemes.get(apiHost);
    if (known !== 'http') {
      try {
        const r = await this.pingAt(`https://${apiHost}`, insecureTls, signal, known === 'https' ? this.opts.attempts : 1);
        knownSchemes.set(apiHost, 'https');
        return { domain, base: r.url, tls: insecureTls, challenges: r.challenges, pingStatus: r.status };
      } catch (err) {
        if (!(err instanceof RegistryError) || err.code !== 'NETWORK') throw err;
        // Not TLS (or nothing listening): fall back to plain HTTP, as dockerd does for insecure registries.
      }
    }
    const r = await this.pingAt(`http://${apiHost}`, insecureTls, signal, this.opts.attempts);
    knownSchemes.set(apiHost, 'http');
    return { domain, base: r.url, tls: insecureTls, challenges: r.challenges, pingStatus: r.status };
  }

  private host(domain: string, signal?: AbortSignal): Promise<HostState> {
    let p = this.hosts.get(domain);
    if (signal?.aborted) return Promise.reject(new RegistryError('ABORTED', 'aborted'));
    if (!p) {
      // Shared by every caller, so one caller's AbortSignal must not cancel it for the others;
      // it is bounded by the retry limit and the idle timeout instead.
      p = this.probe(domain);
      p.catch(() => this.hosts.delete(domain));
      this.hosts.set(domain, p);
    }
    return p;
  }

  /** GET /v2/: which URL answers and what authentication it asks for. */
  async ping(domain: string, opts: { signal?: AbortSignal } = {}): Promise<PingResult> {
    const known = this.hosts.has(domain);
    const h = await this.host(domain, opts.signal);
    // A first probe has just pinged; later calls ask again (the answer may have changed).
    if (!known) return { url: h.base, status: h.pingStatus, challenges: h.challenges };
    return this.pingAt(h.base, h.tls, opts.signal, this.opts.attempts);
  }

  /** Runs fn again after retryable failures (5xx, connection errors), with backoff. */
  private async retrying<T>(fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof RegistryError) || !err.retryable || attempt >= this.opts.attempts) throw err;
        await sleep(this.backoff(attempt), signal);
      }
    }
  }

  private backoff(attempt: number): number {
    const base = this.opts.retryDelayMs * 2 ** (attempt - 1);
    return base / 2 + Math.random() * base / 2;
  }

  /** The Authorization header value for these scopes, or undefined for none. */
  private async authorization(h: HostState, scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    const creds = await this.credentialsFor(h.domain);
    const bearer = h.challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
      const key = TokenCache.key(bearer, scopes, creds);
      const t = await this.tokens.get(key, () => this.retrying(() => fetchToken({
        challenge: bearer, scopes, credentials: creds, clientId: 'berth', userAgent: this.userAgent, tls: this.tokenTls(h, bearer), signal,
      }), signal));
      return `Bearer ${t.token}`;
    }
    if (h.challenges.some((c) => c.scheme === 'basic') && hasCredentials(creds) && (creds.username || creds.password)) {
      return basicHeader(creds);
    }
    return undefined;
  }

  private tokenTls(h: HostState, bearer: Challenge): TlsSettings {
    // The realm is another server; it is trusted as little as the registry that named it.
    try {
      const realmHost = new URL(bearer.params.realm ?? '').host;
      if (realmHost === new URL(h.base).host) return h.tls;
    } catch {
      // fetchToken reports a bad realm
    }
    return { verify: true, ca: this.opts.ca };
  }

  private async invalidateToken(h: HostState, scopes: string[]): Promise<void> {
    const bearer = h.challenges.find((c) => c.scheme === 'bearer');
    if (!bearer) return;
    this.tokens.invalidate(TokenCache.key(bearer, scopes, await this.credentialsFor(h.domain)));
  }

  private buildUrl(h: HostState, path: string, query?: Record<string, string | string[]>): string {
    const u = /^https?:\/\//.test(path) ? new URL(path) : new URL(path, h.base);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (Array.isArray(v)) for (const x of v) u.searchParams.append(k, x);
      else u.searchParams.set(k, v);
    }
    return u.toString();
  }

  /** One API call with auth, 401 handling (one re-authentication) and retries with backoff. */
  private async call(domain: string, o: CallOptions): Promise<HttpResponse> {
    const h = await this.host(domain, o.signal);
    let reauthenticated = false;
    for (let attempt = 1; ; attempt++) {
      const url = this.buildUrl(h, o.path, o.query);
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers };
      const auth = await this.authorization(h, o.scopes, o.signal);
      if (auth) headers.authorization = auth;
      let res: HttpResponse;
      try {
        res = await send({
          method: o.method, url, headers, body: o.body?.(), tls: h.tls, signal: o.signal, idleTimeoutMs: this.opts.idleTimeoutMs,
          followRedirects: o.followRedirects,
        });
      } catch (err) {
        const e = networkError(o.method, url, err);
        if (e.retryable && o.idempotent && attempt < this.opts.attempts) {
          await sleep(this.backoff(attempt), o.signal);
          continue;
        }
        throw e;
      }
      if (o.ok.includes(res.status)) return res;
      if (res.status === 401 && !reauthenticated) {
        const challenges = parseWWWAuthenticate(res.headers['www-authenticate']);
        const bearer = challenges.find((c) => c.scheme === 'bearer');
        // A token that lacks the scope will not gain it by asking again; anything else (no
        // auth sent yet, an expired or revoked token, a changed realm) is worth one more try.
        if (!(auth && bearer?.params.error === 'insufficient_scope') && challenges.length) {
          reauthenticated = true;
          discard(res);
          await this.invalidateToken(h, o.scopes);
          h.challenges = challenges;
          attempt--;
          continue;
        }
      }
      const body = o.method === 'HEAD' ? '' : await readErrorBody(res);
      const bearer = parseWWWAuthenticate(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
      const err = errorFromResponse({
        status: res.status, statusText: res.statusText, body, method: o.method, url, subject: o.subject,
        bearerError: bearer ? { error: bearer.params.error, error_description: bearer.params.error_description } : undefined,
      });
      if (err.retryable && o.idempotent && attempt < this.opts.attempts) {
        await sleep(this.backoff(attempt), o.signal);
        continue;
      }
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // login
  // -------------------------------------------------------------------------------------------

  /**
   * Checks credentials against a registry (what `docker login` does): for basic auth GET /v2/
   * with them; for token auth get a token with them (asking for a refresh token, which the
   * caller should store as the identity token) and GET /v2/ with it.
   */
  async login(domain: string, creds: Credentials, opts: { signal?: AbortSignal } = {}): Promise<{ identityToken?: string }> {
    const h = await this.host(domain, opts.signal);
    const ping = await this.pingAt(h.base, h.tls, opts.signal, this.opts.attempts);
    if (ping.status === 200) return {};
    const bearer = ping.challenges.find((c) => c.scheme === 'bearer');
    let authorization: string;
    let identityToken: string | undefined;
    if (bearer) {
      let t;
      try {
        t = await fetchToken({
          challenge: bearer, scopes: [], credentials: creds, offline: true, clientId: 'berth', userAgent: this.userAgent,
          tls: this.tokenTls(h, bearer), signal: opts.signal,
        });
      } catch (err) {
        // docker names the registry's /v2/ URL here, not the token server's
        throw err instanceof RegistryError ? err.withMessage(`Get "${h.base}/v2/": ${err.message}`) : err;
      }
      authorization = `Bearer ${t.token}`;
      identityToken = t.refreshToken;
    } else if (creds.registryToken) {
      authorization = `Bearer ${creds.registryToken}`;
    } else {
      authorization = basicHeader(creds);
    }
    const again = await this.pingAt(h.base, h.tls, opts.signal, this.opts.attempts, { authorization });
    if (again.status !== 200) {
      throw new RegistryError('UNAUTHORIZED', `login attempt to ${h.base}/v2/ failed with status: ${again.status} ${again.status === 401 ? 'Unauthorized' : ''}`.trimEnd(),
        { status: again.status, url: `${h.base}/v2/`, method: 'GET' });
    }
    // New credentials: forget what was cached under the old ones.
    this.creds.delete(domain);
    return identityToken ? { identityToken } : {};
  }

  // -------------------------------------------------------------------------------------------
  // manifests
  // -------------------------------------------------------------------------------------------

  /** HEAD of a manifest: its digest, media type and size, or undefined if the registry has none. */
  async headManifest(repo: RepositoryRef, reference: string, opts: { signal?: AbortSignal } = {}): Promise<{ digest?: Digest; mediaType?: string; size?: number } | undefined> {
    const res = await this.call(repo.domain, {
      method: 'HEAD', path: `/v2/${encodePath(repo.path)}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [repositoryScope(repo.path, ['pull'])], subject: 'manifest', ok: [200, 404], idempotent: true, signal: opts.signal,
    });
    discard(res);
    if (res.status === 404) return undefined;
    const len = headerValue(res.headers, 'content-length');
    return {
      digest: headerValue(res.headers, 'docker-content-digest'),
      mediaType: headerValue(res.headers, 'content-type')?.split(';')[0]?.trim(),
      size: len === undefined ? undefined : Number(len),
    };
  }

  /**
   * GET of a manifest or index by tag or digest, verified: by digest, the bytes must hash to it;
   * by tag, to the Docker-Content-Digest the registry reports (when it reports one).
   */
  async getManifest(repo: RepositoryRef, reference: string, opts: { signal?: AbortSignal; expected?: Descriptor } = {}): Promise<AnyManifest> {
    const res = await this.call(repo.domain, {
      method: 'GET', path: `/v2/${encodePath(repo.path)}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [repositoryScope(repo.path, ['pull'])], subject: 'manifest', ok: [200], idempotent: true, followRedirects: true, signal: opts.signal,
    });
    const where = `${describe(repo)}${reference.includes(':') ? '@' : ':'}${reference}`;
    const bytes = await readBody(res, MANIFEST_SIZE_LIMIT);
    const contentType = headerValue(res.headers, 'content-type')?.split(';')[0]?.trim() ?? '';
    // Schema1's digest covers the payload without its signatures, so it would fail the digest
    // check below with a misleading message: say what it is first.
    if (SCHEMA1_TYPES.slice(0, 2).includes(contentType) || looksLikeSchema1(bytes)) parseManifestBytes(bytes, contentType, '', where);
    const byDigest = reference.includes(':');
    let digest: Digest;
    if (byDigest) {
      const { algorithm } = parseDigest(reference);
      digest = digestOf(bytes, algorithm);
      if (digest !== reference) {
        throw new RegistryError('DIGEST_MISMATCH', `manifest for ${where} does not match its digest: the registry sent content with digest ${digest}`);
      }
    } else {
      digest = digestOf(bytes);
      const reported = headerValue(res.headers, 'docker-content-digest');
      if (reported) {
        let alg: 'sha256' | 'sha512' | undefined;
        try {
          alg = parseDigest(reported).algorithm;
        } catch {
          alg = undefined; // an unparseable header is ignored, as docker does
        }
        const computed = alg === 'sha512' ? digestOf(bytes, 'sha512') : digest;
        if (alg && computed !== reported) {
          throw new RegistryError('DIGEST_MISMATCH', `manifest for ${where} does not match the digest the registry reports (${reported}); got ${computed}`);
        }
      }
    }
    if (opts.expected) {
      if (bytes.length !== opts.expected.size) {
        throw new RegistryError('SIZE_MISMATCH', `manifest ${opts.expected.digest} of ${describe(repo)} is ${bytes.length} bytes, but its descriptor says ${opts.expected.size}`);
      }
    }
    return parseManifestBytes(bytes, contentType, digest, where);
  }

  /**
   * Resolves a reference to what a pull needs: the index (if any), the platform's manifest, and
   * the config, all as the registry's exact bytes. Errors read as docker's do.
   */
  async resolve(ref: Reference, opts: ResolveOptions = {}): Promise<ResolvedImage> {
    const want = normalizePlatform(opts.platform ?? hostPlatform());
    const warnings: string[] = [];
    let top: AnyManifest;
    try {
      top = await this.getManifest(ref, manifestReference(ref), { signal: opts.signal });
    } catch (err) {
      throw translatePullError(err, ref);
    }
    let index: FetchedIndex | undefined;
    let manifest: FetchedImageManifest;
    if (top.kind === 'index') {
      index = top;
      const chosen = selectManifest(top.index.manifests, want);
      if (!chosen) {
        const offered = listPlatforms(top.index.manifests);
        throw new RegistryError('NO_MATCHING_MANIFEST',
          `no matching manifest for ${formatPlatform(want)} in the manifest list entries${offered.length ? ` (available: ${[...new Set(offered)].join(', ')})` : ''}`);
      }
      let child: AnyManifest;
      try {
        child = await this.getManifest(ref, chosen.digest, { signal: opts.signal, expected: chosen });
      } catch (err) {
        throw translatePullError(err, ref);
      }
      if (child.kind !== 'manifest') {
        throw new RegistryError('UNSUPPORTED_MANIFEST', `${familiarString(ref)}: the index entry for ${formatPlatform(want)} is itself an index; nested indexes are not supported`);
      }
      manifest = child;
    } else {
      manifest = top;
    }
    const cfgDesc = manifest.manifest.config;
    if (!CONFIG_TYPES.includes(cfgDesc.mediaType)) {
      throw new RegistryError('UNSUPPORTED_MANIFEST',
        `${familiarString(ref)} is not a container image: its config has media type ${cfgDesc.mediaType}${manifest.manifest.artifactType ? ` (artifact type ${manifest.manifest.artifactType})` : ''}`);
    }
    if (cfgDesc.size > CONFIG_SIZE_LIMIT) {
      throw new RegistryError('SIZE_MISMATCH', `${familiarString(ref)}: the image config is ${cfgDesc.size} bytes, more than the ${CONFIG_SIZE_LIMIT} Berth accepts`);
    }
    let configBytes: Buffer;
    try {
      configBytes = await this.fetchBlob(ref, cfgDesc, { signal: opts.signal });
    } catch (err) {
      throw err instanceof RegistryError ? err.withMessage(`error pulling image configuration: ${err.message}`) : err;
    }
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
      if (!config || typeof config !== 'object') throw new Error('not an object');
    } catch (err) {
      throw new RegistryError('INVALID_RESPONSE', `${familiarString(ref)}: the image config ${cfgDesc.digest} is not valid JSON (${(err as Error).message})`);
    }
    const platform: Platform = normalizePlatform({
      os: typeof config.os === 'string' ? config.os : '', architecture: typeof config.architecture === 'string' ? config.architecture : '',
      ...(typeof config.variant === 'string' && config.variant ? { variant: config.variant } : {}),
    });
    if (!index && platform.os && platform.architecture && !platformMatches(want, platform)) {
      if (opts.platform) {
        throw new RegistryError('PLATFORM_MISMATCH',
          `image with reference ${familiarString(ref)} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform(platform)}`);
      }
      warnings.push(`The requested image's platform (${formatPlatform(platform)}) does not match the detected host platform (${formatPlatform(want)}) and no specific platform was requested`);
    }
    return {
      reference: ref,
      digest: (index ?? manifest).digest,
      index,
      manifest,
      config: { descriptor: cfgDesc, bytes: configBytes, config },
      platform,
      warnings,
    };
  }

  /** PUT of a manifest (or index) under a tag or its digest; returns its digest. */
  async putManifest(repo: RepositoryRef, reference: string, bytes: Buffer, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<Digest> {
    const digest = digestOf(bytes);
    if (reference.includes(':') && reference !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', `cannot put a manifest under ${reference}: its bytes have digest ${digest}`);
    }
    const res = await this.call(repo.domain, {
      method: 'PUT', path: `/v2/${encodePath(repo.path)}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: () => bytes,
      scopes: [repositoryScope(repo.path, ['pull', 'push'])], subject: 'manifest', ok: [200, 201, 202], idempotent: true, signal: opts.signal,
    });
    discard(res);
    const reported = headerValue(res.headers, 'docker-content-digest');
    if (reported && reported.startsWith('sha256:') && reported !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', `the registry stored the manifest for ${describe(repo)}:${reference} as ${reported}, but its digest is ${digest}`);
    }
    return digest;
  }

  /** Every tag of a repository, following the Link header's pages. */
  async listTags(repo: RepositoryRef, opts: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    const tags: string[] = [];
    let path: string = `/v2/${encodePath(repo.path)}/tags/list`;
    let query: Record<string, string> | undefined = opts.pageSize ? { n: String(opts.pageSize) } : undefined;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call(repo.domain, {
        method: 'GET', path, query, scopes: [repositoryScope(repo.path, ['pull'])], subject: 'tags', ok: [200], idempotent: true,
        followRedirects: true, signal: opts.signal,
      });
      const link = headerValue(res.headers, 'link');
      let json: { tags?: unknown };
      try {
        json = JSON.parse((await readBody(res, 16 << 20)).toString('utf8')) as { tags?: unknown };
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        throw new RegistryError('INVALID_RESPONSE', `the tag list of ${describe(repo)} is not valid JSON`);
      }
      if (Array.isArray(json.tags)) for (const t of json.tags) if (typeof t === 'string') tags.push(t);
      const next = link && /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
      if (!next) return tags;
      // The next page's URL is relative to the registry (the spec's Link header); it keeps its own query.
      const u = new URL(next[1]!, res.url);
      path = u.toString();
      query = undefined;
    }
    throw new RegistryError('INVALID_RESPONSE', `the tag list of ${describe(repo)} did not end after 10000 pages`);
  }

  // -------------------------------------------------------------------------------------------
  // blobs: download
  // -------------------------------------------------------------------------------------------

  private blobRequest(repo: RepositoryRef, digest: Digest, offset: number, signal: AbortSignal | undefined): Promise<HttpResponse> {
    return this.call(repo.domain, {
      method: 'GET', path: `/v2/${encodePath(repo.path)}/blobs/${digest}`, headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: [repositoryScope(repo.path, ['pull'])], subject: 'blob', ok: [200, 206], idempotent: true, followRedirects: true, signal,
    });
  }

  /**
   * Opens a blob for reading from `offset`. The stream checks the size (and the digest, when
   * verifying) and fails rather than end short; a connection that breaks mid-blob is resumed
   * with a Range request, transparently, up to maxBlobResumes times.
   */
  async openBlob(repo: RepositoryRef, desc: { digest: Digest; size: number }, opts: OpenBlobOptions = {}): Promise<BlobDownload> {
    parseDigest(desc.digest);
    const offset = opts.offset ?? 0;
    const verify = opts.verify ?? offset === 0;
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new RegistryError('SIZE_MISMATCH', `invalid size ${desc.size} for blob ${desc.digest}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw new RegistryError('RANGE_INVALID', `cannot read blob ${desc.digest} from offset ${offset}: it has ${desc.size} bytes`);
    }
    if (verify && offset > 0) {
      throw new TypeError('openBlob: verify needs the whole blob; from an offset, the caller hashes the prefix it has and the rest');
    }
    const where = `${describe(repo)}@${desc.digest}`;
    let res: HttpResponse | undefined;
    if (offset < desc.size) {
      try {
        res = await this.blobRequest(repo, desc.digest, offset, opts.signal);
      } catch (err) {
        throw err instanceof RegistryError && err.code === 'BLOB_UNKNOWN'
          ? err.withMessage(`blob ${desc.digest} not found in ${describe(repo)}: ${err.registryMessage}`) : err;
      }
    }
    const stream = new BlobStream({
      size: desc.size, offset, where, hash: verify ? hasherFor(desc.digest) : undefined, digest: desc.digest,
      maxResumes: this.opts.maxBlobResumes,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      reopen: async (at) => this.blobRequest(repo, desc.digest, at, opts.signal),
      backoff: (n) => sleep(this.backoff(n), opts.signal),
    });
    stream.start(res);
    return { stream, offset, size: desc.size };
  }

  /** A whole blob in memory (configs, small blobs), verified. */
  async fetchBlob(repo: RepositoryRef, desc: { digest: Digest; size: number }, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const { stream } = await this.openBlob(repo, desc, { signal: opts.signal, verify: true });
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** HEAD of a blob: its size, or undefined when the repository does not have it. */
  async blobExists(repo: RepositoryRef, digest: Digest, opts: { signal?: AbortSignal; push?: boolean } = {}): Promise<number | undefined> {
    const res = await this.call(repo.domain, {
      method: 'HEAD', path: `/v2/${encodePath(repo.path)}/blobs/${digest}`,
      scopes: [repositoryScope(repo.path, opts.push ? ['pull', 'push'] : ['pull'])], subject: 'blob', ok: [200, 404], idempotent: true,
      followRedirects: true, signal: opts.signal,
    });
    discard(res);
    if (res.status === 404) return undefined;
    const len = headerValue(res.headers, 'content-length');
    return len === undefined ? -1 : Number(len);
  }

  // -------------------------------------------------------------------------------------------
  // blobs: upload
  // -------------------------------------------------------------------------------------------

  /**
   * Makes `desc` present in `repo`: nothing if it is there, a cross-repository mount if one of
   * `mountFrom` has it, else an upload (monolithic up to chunkThreshold, chunked above). A failed
   * upload is retried from the start while attempts last (the source must be re-readable).
   */
  async pushBlob(repo: RepositoryRef, desc: { digest: Digest; size: number }, source: BlobSource, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    parseDigest(desc.digest);
    const pushScopes = [repositoryScope(repo.path, ['pull', 'push'])];
    if ((await this.blobExists(repo, desc.digest, { signal: opts.signal, push: true })) !== undefined) return { status: 'exists' };

    let location: string | undefined;
    for (const from of opts.mountFrom ?? []) {
      if (from === repo.path) continue;
      const res = await this.call(repo.domain, {
        method: 'POST', path: `/v2/${encodePath(repo.path)}/blobs/uploads/`, query: { mount: desc.digest, from: encodePath(from) },
        scopes: [...pushScopes, repositoryScope(from, ['pull'])], subject: 'upload', ok: [201, 202], idempotent: true, signal: opts.signal,
      });
      discard(res);
      if (res.status === 201) return { status: 'mounted', from };
      // 202: the registry could not mount and opened an upload instead; use it.
      location = this.uploadLocation(res, repo);
      break;
    }

    for (let attempt = 1; ; attempt++) {
      try {
        await this.upload(repo, desc, source, location, opts);
        return { status: 'uploaded' };
      } catch (err) {
        location = undefined;
        if (!(err instanceof RegistryError)) throw err;
        const e = err;
        const reopenable = Buffer.isBuffer(source) || source instanceof Uint8Array || typeof (source as { open?: unknown }).open === 'function';
        if ((e.retryable || e.code === 'BLOB_UPLOAD_UNKNOWN') && reopenable && attempt < this.opts.attempts) {
          await sleep(this.backoff(attempt), opts.signal);
          continue;
        }
        throw e.code === 'DIGEST_INVALID' || e.code === 'SIZE_INVALID'
          ? e.withMessage(`uploading blob ${desc.digest} to ${describe(repo)} failed: ${e.message} (the source does not have the expected content)`)
          : e;
      }
    }
  }

  private uploadLocation(res: HttpResponse, repo: RepositoryRef): string {
    const loc = headerValue(res.headers, 'location');
    if (!loc) throw new RegistryError('INVALID_RESPONSE', `the registry started an upload to ${describe(repo)} without saying where (no Location header)`);
    return new URL(loc, res.url).toString();
  }

  private async startUpload(repo: RepositoryRef, signal?: AbortSignal): Promise<string> {
    const res = await this.call(repo.domain, {
      method: 'POST', path: `/v2/${encodePath(repo.path)}/blobs/uploads/`, scopes: [repositoryScope(repo.path, ['pull', 'push'])],
      subject: 'upload', ok: [202], idempotent: true, signal,
    });
    discard(res);
    return this.uploadLocation(res, repo);
  }

  private async upload(repo: RepositoryRef, desc: { digest: Digest; size: number }, source: BlobSource, location: string | undefined, opts: PushBlobOptions): Promise<void> {
    const scopes = [repositoryScope(repo.path, ['pull', 'push'])];
    const loc = location ?? await this.startUpload(repo, opts.signal);
    const threshold = opts.chunkThreshold ?? this.opts.chunkThreshold;
    const buffer = Buffer.isBuffer(source) ? source : source instanceof Uint8Array ? Buffer.from(source.buffer, source.byteOffset, source.byteLength) : undefined;
    if (buffer && buffer.length !== desc.size) {
      throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest} is ${buffer.length} bytes, but its descriptor says ${desc.size}`);
    }
    const open = (): Readable => (buffer ? Readable.from([buffer]) : sizeChecked((source as { open(): Readable }).open(), desc));

    if (desc.size <= threshold) {
      // Monolithic: the whole blob in the PUT that closes the upload.
      let sent = 0;
      const res = await this.call(repo.domain, {
        method: 'PUT', path: loc, query: { digest: desc.digest },
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => {
          if (buffer) return buffer;
          const s = open();
          s.on('data', (c: Buffer) => opts.onProgress?.((sent += c.length)));
          return s;
        },
        scopes, subject: 'upload', ok: [201, 204], idempotent: false, signal: opts.signal,
      });
      discard(res);
      opts.onProgress?.(desc.size);
      this.checkUploadedDigest(res, desc.digest, repo);
      return;
    }

    // Chunked: PATCH each chunk with its Content-Range, following the Location each answer gives.
    const chunkSize = Math.max(1, opts.chunkSize ?? this.opts.chunkSize);
    let next = loc;
    let offset = 0;
    const sendChunk = async (chunk: Buffer): Promise<void> => {
      const end = offset + chunk.length - 1;
      const res = await this.call(repo.domain, {
        method: 'PATCH', path: next,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}`, 'content-length': String(chunk.length) },
        body: () => chunk, scopes, subject: 'upload', ok: [202, 204], idempotent: false, signal: opts.signal,
      });
      discard(res);
      next = this.uploadLocation(res, repo);
      const range = headerValue(res.headers, 'range');
      const m = range && /^(?:bytes=)?0-(\d+)$/.exec(range);
      if (m && Number(m[1]) !== end) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', `the registry has ${Number(m[1]) + 1} bytes of blob ${desc.digest} after a chunk ending at byte ${end + 1}`);
      }
      offset = end + 1;
      opts.onProgress?.(offset);
    };
    let pending: Buffer[] = [];
    let pendingLength = 0;
    const stream = open();
    try {
      for await (const c of stream) {
        let chunk = c as Buffer;
        while (chunk.length) {
          const take = Math.min(chunk.length, chunkSize - pendingLength);
          pending.push(chunk.subarray(0, take));
          pendingLength += take;
          chunk = chunk.subarray(take);
          if (pendingLength === chunkSize) {
            const full = Buffer.concat(pending, pendingLength);
            pending = [];
            pendingLength = 0;
            if (offset + full.length > desc.size) {
              throw new RegistryError('SIZE_MISMATCH', `the source of blob ${desc.digest} has more than the ${desc.size} bytes its descriptor says`);
            }
            await sendChunk(full);
          }
        }
      }
    } finally {
      stream.destroy();
    }
    if (pendingLength) await sendChunk(Buffer.concat(pending, pendingLength));
    if (offset !== desc.size) {
      throw new RegistryError('SIZE_MISMATCH', `the source of blob ${desc.digest} had ${offset} bytes, but its descriptor says ${desc.size}`);
    }
    const res = await this.call(repo.domain, {
      method: 'PUT', path: next, query: { digest: desc.digest }, scopes, subject: 'upload', ok: [201, 204], idempotent: false, signal: opts.signal,
    });
    discard(res);
    this.checkUploadedDigest(res, desc.digest, repo);
  }

  private checkUploadedDigest(res: HttpResponse, digest: Digest, repo: RepositoryRef): void {
    const reported = headerValue(res.headers, 'docker-content-digest');
    if (reported && reported !== digest && reported.split(':')[0] === digest.split(':')[0]) {
      throw new RegistryError('DIGEST_MISMATCH', `the registry stored blob ${digest} of ${describe(repo)} as ${reported}`);
    }
  }
}

/**
 * Fails a source stream that is longer or shorter than its descriptor: the request promised
 * that many bytes (Content-Length), and a short body would leave the registry waiting.
 */
function sizeChecked(src: Readable, desc: { digest: Digest; size: number }): Readable {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > desc.size) cb(new RegistryError('SIZE_MISMATCH', `the source of blob ${desc.digest} has more than the ${desc.size} bytes its descriptor says`));
      else cb(null, chunk);
    },
    flush(cb) {
      if (n === desc.size) cb();
      else cb(new RegistryError('SIZE_MISMATCH', `the source of blob ${desc.digest} had ${n} bytes, but its descriptor says ${desc.size}`));
    },
  });
  src.once('error', (err) => t.destroy(err));
  t.once('close', () => src.destroy());
  return src.pipe(t);
}

// ---------------------------------------------------------------------------------------------
// manifest parsing
// ---------------------------------------------------------------------------------------------

/** Parses manifest bytes; schema1 and non-manifest content are errors with a way forward. */
export function parseManifestBytes(bytes: Buffer, contentType: string, digest: Digest, where: string): AnyManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('not a JSON object');
  } catch (err) {
    throw new RegistryError('INVALID_RESPONSE', `manifest for ${where} is not valid JSON (${(err as Error).message})`);
  }
  const declared = typeof json.mediaType === 'string' ? json.mediaType : '';
  if (json.schemaVersion === 1 || SCHEMA1_TYPES.slice(0, 2).includes(declared) || SCHEMA1_TYPES.slice(0, 2).includes(contentType)) {
    throw new RegistryError('UNSUPPORTED_MANIFEST',
      `unsupported manifest format: ${where} is a Docker image manifest version 2, schema 1, which Berth does not support; `
      + 're-push the image with a newer client (Docker ≥ 1.10, skopeo, crane, …) to store it as a Docker schema 2 or OCI manifest');
  }
  if (json.schemaVersion !== 2) {
    throw new RegistryError('UNSUPPORTED_MANIFEST', `unsupported manifest format: ${where} has schemaVersion ${JSON.stringify(json.schemaVersion)}`);
  }
  // The declared media type wins; Content-Type is the fallback; the shape is the last resort.
  const mediaType = declared || (contentType && contentType !== 'application/json' && contentType !== 'text/plain' ? contentType : '')
    || (Array.isArray(json.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  const base = { mediaType, digest, size: bytes.length, bytes };
  if (INDEX_TYPES.includes(mediaType) || (!declared && Array.isArray(json.manifests))) {
    if (!Array.isArray(json.manifests)) throw new RegistryError('INVALID_RESPONSE', `index ${where} has no "manifests" list`);
    for (const d of json.manifests as unknown[]) checkDescriptor(d, where);
    return { ...base, kind: 'index', index: json as unknown as ImageIndex };
  }
  if (MANIFEST_TYPES.includes(mediaType) || (!declared && json.config)) {
    checkDescriptor(json.config, where);
    if (!Array.isArray(json.layers)) throw new RegistryError('INVALID_RESPONSE', `manifest ${where} has no "layers" list`);
    for (const d of json.layers as unknown[]) checkDescriptor(d, where);
    return { ...base, kind: 'manifest', manifest: json as unknown as ImageManifest };
  }
  throw new RegistryError('UNSUPPORTED_MANIFEST', `unsupported manifest media type ${mediaType} for ${where}`);
}

function looksLikeSchema1(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { schemaVersion?: unknown })?.schemaVersion === 1;
  } catch {
    return false;
  }
}

function checkDescriptor(d: unknown, where: string): void {
  const x = d as Partial<Descriptor> | null;
  if (!x || typeof x !== 'object' || typeof x.digest !== 'string' || typeof x.size !== 'number' || typeof x.mediaType !== 'string'
    || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw new RegistryError('INVALID_RESPONSE', `manifest ${where} has an invalid descriptor: ${JSON.stringify(d)?.slice(0, 200)}`);
  }
  try {
    parseDigest(x.digest);
  } catch (err) {
    throw new RegistryError('INVALID_RESPONSE', `manifest ${where} has an invalid descriptor: ${(err as Error).message}`);
  }
}

/** docker's wording for pull failures (moby's translatePullError). */
export function translatePullError(err: unknown, ref: Reference): unknown {
  if (!(err instanceof RegistryError)) return err;
  switch (err.code) {
    case 'DENIED':
      return err.withMessage(`pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': ${err.registryMessage}`);
    case 'MANIFEST_UNKNOWN':
      return err.withMessage(`manifest for ${familiarString(ref)} not found: ${err.registryMessage}`);
    case 'NAME_UNKNOWN':
      return err.withMessage(`repository ${familiarName(ref)} not found: ${err.registryMessage}`);
    default:
      return err;
  }
}

// ---------------------------------------------------------------------------------------------
// the blob stream
// ---------------------------------------------------------------------------------------------

interface BlobStreamInit {
  size: number;
  offset: number;
  digest: Digest;
  where: string;
  hash?: Hash;
  maxResumes: number;
  idleTimeoutMs: number;
  reopen(at: number): Promise<HttpResponse>;
  backoff(n: number): Promise<void>;
}

class BlobStream extends Readable {
  private pos: number;
  private res?: IncomingMessage;
  /** Bytes of the current response to drop (a server that ignored Range sends from 0). */
  private skip = 0;
  private resumes = 0;
  private finished = false;

  constructor(private readonly init: BlobStreamInit) {
    super({ highWaterMark: 1 << 20 });
    this.pos = init.offset;
  }

  start(res: HttpResponse | undefined): void {
    if (!res) {
      // Nothing left to read (offset === size).
      this.finish();
      return;
    }
    this.attach(res);
  }

  private fail(code: 'SIZE_MISMATCH' | 'DIGEST_MISMATCH' | 'INVALID_RESPONSE', message: string): void {
    this.finished = true;
    this.res?.destroy();
    this.destroy(new RegistryError(code, message));
  }

  private attach(res: HttpResponse): void {
    const body = res.body;
    const requested = this.pos;
    if (res.status === 206) {
      const cr = headerValue(res.headers, 'content-range');
      const m = cr && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
      if (m && Number(m[1]) !== requested) {
        body.destroy();
        this.fail('INVALID_RESPONSE', `blob ${this.init.where}: asked for bytes from ${requested}, the registry sent from ${m[1]}`);
        return;
      }
      if (m && m[3] !== '*' && Number(m[3]) !== this.init.size) {
        body.destroy();
        this.fail('SIZE_MISMATCH', `blob ${this.init.where} is ${m[3]} bytes on the registry, but its descriptor says ${this.init.size}`);
        return;
      }
      this.skip = 0;
    } else {
      // 200: the whole blob, whatever was asked.
      const len = headerValue(res.headers, 'content-length');
      if (len !== undefined && Number(len) !== this.init.size) {
        body.destroy();
        this.fail('SIZE_MISMATCH', `blob ${this.init.where} is ${len} bytes on the registry, but its descriptor says ${this.init.size}`);
        return;
      }
      this.skip = requested;
    }
    this.res = body;
    body.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      if (this.skip > 0) {
        if (chunk.length <= this.skip) {
          this.skip -= chunk.length;
          return;
        }
        chunk = chunk.subarray(this.skip);
        this.skip = 0;
      }
      if (this.pos + chunk.length > this.init.size) {
        this.fail('SIZE_MISMATCH', `blob ${this.init.where} is longer than the ${this.init.size} bytes its descriptor says`);
        return;
      }
      this.pos += chunk.length;
      this.init.hash?.update(chunk);
      if (!this.push(chunk)) {
        body.pause();
        // A consumer that is slow to drain (a busy disk) is not a dead connection.
        body.socket?.setTimeout(0);
      }
    });
    body.once('end', () => {
      if (this.finished || this.res !== body) return;
      if (this.pos === this.init.size) this.finish();
      else this.resume_(new Error(`the connection ended after ${this.pos} of ${this.init.size} bytes`), true);
    });
    body.once('error', (err) => {
      if (this.finished || this.res !== body) return;
      this.resume_(err, (err as NodeJS.ErrnoException).code === 'ECONNRESET' || networkError('GET', this.init.where, err).retryable);
    });
    body.once('aborted', () => {
      if (this.finished || this.res !== body) return;
      this.resume_(new Error('the connection was aborted'), true);
    });
  }

  /** Continues after a broken connection from the current position. */
  private resume_(cause: unknown, retryable: boolean): void {
    this.res = undefined;
    if (!retryable || this.resumes >= this.init.maxResumes) {
      this.finished = true;
      const e = cause instanceof RegistryError ? cause
        : new RegistryError('NETWORK', `downloading blob ${this.init.where} failed at byte ${this.pos} of ${this.init.size}: ${(cause as Error)?.message ?? String(cause)}`,
          { retryable: true, cause });
      this.destroy(e);
      return;
    }
    this.resumes++;
    void (async () => {
      try {
        await this.init.backoff(this.resumes);
        if (this.destroyed) return;
        const res = await this.init.reopen(this.pos);
        if (this.destroyed) {
          res.body.destroy();
          return;
        }
        this.attach(res);
      } catch (err) {
        this.resume_(err, err instanceof RegistryError && err.retryable);
      }
    })();
  }

  private finish(): void {
    this.finished = true;
    if (this.init.hash) {
      const got = `${this.init.digest.split(':')[0]}:${this.init.hash.digest('hex')}`;
      if (got !== this.init.digest) {
        this.destroy(new RegistryError('DIGEST_MISMATCH', `blob ${this.init.where} does not match its digest: the registry sent content with digest ${got}`));
        return;
      }
    }
    this.push(null);
  }

  override _read(): void {
    if (this.res?.isPaused()) {
      this.res.socket?.setTimeout(this.init.idleTimeoutMs);
      this.res.resume();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.finished = true;
    this.res?.destroy();
    cb(err);
  }
}

