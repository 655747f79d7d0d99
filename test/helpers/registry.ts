// Real registries for the image tests: Debian's `docker-registry` (distribution 2.8) on
// 127.0.0.1, each in its own temp dir with a free port, in one of four set-ups:
//   plain    no auth
//   htpasswd HTTP basic auth (bcrypt hashes from `htpasswd -Bbn`)
//   token    bearer tokens: the registry trusts a self-signed certificate (openssl), and a token
//            server in this test process issues JWTs signed with its key (docker's token auth spec)
//   tls      plain, but over HTTPS with a self-signed certificate (for the https-first logic)
//
// distribution reads every REGISTRY_* environment variable as a config override, so the child's
// environment has none. Registries are stopped by the PID started here, and also when the test
// process exits, so a failed test leaves no registry behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runAsync, skopeoEnv } from './images.ts';
import { RegistryError } from '../../src/image/registry/index.ts';

const TMP_BASE = process.env.BERTH_TEST_TMPDIR ?? '/tmp';
export const REGISTRY_BIN = process.env.BERTH_TEST_REGISTRY ?? 'docker-registry';

export const TEST_USER = 'berth';
export const TEST_PASSWORD = 'berth-secret-pw';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  /** Serve HTTPS with a self-signed certificate instead of plain HTTP. */
  tls?: boolean;
  /** Users for htpasswd/token auth; default {berth: berth-secret-pw}. */
  users?: Record<string, string>;
  /** Token set-ups only: how the token server behaves. */
  token?: TokenServerOptions;
  /** Accept Docker schema1 manifests (distribution's compatibility switch), for the schema1 error tests. */
  schema1?: boolean;
  /** The address to listen on (default 127.0.0.1), e.g. a non-loopback one for the insecure-registry tests. */
  address?: string;
}

export interface TokenServerOptions {
  /** Which field carries the token: `token` (docker's), `access_token` (OAuth2), or both (default). */
  field?: 'token' | 'access_token' | 'both';
  /** expires_in of issued tokens, seconds (default 300). */
  expiresIn?: number;
  /** Repositories anonymous clients may pull, by prefix (default ['public/']). */
  anonymousPull?: string[];
  /**
   * Issue this many tokens already expired (their JWT `exp` is in the past while expires_in
   * promises 300 s), as a revoked or clock-skewed token looks to a client: the registry refuses it.
   */
  expireFirst?: number;
}

export interface TokenRequestRecord {
  method: string;
  /** Basic-auth user, the refresh token's user, or undefined for anonymous. */
  user?: string;
  service?: string;
  scopes: string[];
  grantType?: string;
  status: number;
}

export interface TokenServer {
  url: string;
  service: string;
  issuer: string;
  requests: TokenRequestRecord[];
  /** Refresh tokens handed out by the OAuth2 POST flow (identity tokens, in docker's words). */
  refreshTokens: Map<string, string>;
  /** The next n tokens are issued already expired (see TokenServerOptions.expireFirst). */
  expireNextTokens(n: number): void;
  close(): Promise<void>;
}

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:41234 (what goes in image references). */
  host: string;
  /** http://host or https://host */
  url: string;
  port: number;
  dir: string;
  pid: number;
  auth: RegistryAuth;
  users: Record<string, string>;
  tls: boolean;
  /** PEM of the registry's certificate (tls only). */
  certPem?: string;
  tokenServer?: TokenServer;
  /** The registry's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** A TCP port that was free a moment ago (the caller retries if someone takes it meanwhile). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, address, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The environment without REGISTRY_* (distribution would read them as config). */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** A self-signed certificate + key (RSA 2048) for `cn`, with IP SAN 127.0.0.1 and DNS localhost. */
export function makeSelfSignedCert(dir: string, name: string, cn: string): { certPath: string; keyPath: string } {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:TRUE']);
  return { certPath, keyPath };
}

/** Any HTTP answer from GET /v2/ (200 or 401) means the registry is serving. */
async function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(`${url}/v2/`, { method: 'GET', rejectUnauthorized: false, timeout: 1000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

function parseScope(scope: string): TokenAccess | undefined {
  // repository:name:actions — the name may itself contain ':' only for a port-qualified name,
  // which registries never put in scopes, so split at the first and last colon.
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

async function startTokenServer(dir: string, users: Record<string, string>, opts: TokenServerOptions): Promise<TokenServer & { certPath: string }> {
  const { certPath, keyPath } = makeSelfSignedCert(dir, 'token', 'berth-test-token-issuer');
  const key = readFileSync(keyPath, 'utf8');
  const certDer = new X509Certificate(readFileSync(certPath)).raw;
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const field = opts.field ?? 'both';
  const expiresIn = opts.expiresIn ?? 300;
  const anonymousPull = opts.anonymousPull ?? ['public/'];
  const requests: TokenRequestRecord[] = [];
  const refreshTokens = new Map<string, string>();

  const grant = (user: string | undefined, scopes: string[]): TokenAccess[] => {
    const out: TokenAccess[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a || a.type !== 'repository') continue;
      const allowed = user !== undefined ? a.actions.filter((x) => x === 'pull' || x === 'push' || x === 'delete')
        : anonymousPull.some((p) => a.name.startsWith(p)) ? a.actions.filter((x) => x === 'pull') : [];
      // Like Docker Hub: a token is issued even when nothing is granted; the registry then refuses.
      out.push({ type: a.type, name: a.name, actions: allowed });
    }
    return out;
  };

  let toExpire = opts.expireFirst ?? 0;
  const sign = (user: string | undefined, access: TokenAccess[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const expired = toExpire > 0;
    if (expired) toExpire--;
    const claims = {
      iss: issuer, sub: user ?? '', aud: service, exp: expired ? now - 120 : now + expiresIn, nbf: now - (expired ? 600 : 10),
      iat: expired ? now - 600 : now, jti: randomBytes(8).toString('hex'), access,
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${base64url(signature)}`;
  };

  const reply = (res: ServerResponse, status: number, body: object): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const tokenBody = (token: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
    const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date().toISOString(), ...extra };
    if (field !== 'access_token') body.token = token;
    if (field !== 'token') body.access_token = token;
    return body;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token') return reply(res, 404, { details: 'not found' });
    if (req.method === 'GET') {
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      let user: string | undefined;
      const authz = req.headers.authorization;
      if (authz) {
        const m = /^Basic\s+(.+)$/i.exec(authz);
        const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        const u = decoded.slice(0, colon);
        if (colon < 0 || users[u] === undefined || users[u] !== decoded.slice(colon + 1)) {
          requests.push({ method: 'GET', user: u || undefined, service: url.searchParams.get('service') ?? undefined, scopes, status: 401 });
          return reply(res, 401, { details: 'incorrect username or password' });
        }
        user = u;
      }
      requests.push({ method: 'GET', user, service: url.searchParams.get('service') ?? undefined, scopes, status: 200 });
      const extra: Record<string, unknown> = {};
      // docker's token spec: offline_token=true asks for a refresh token beside the bearer token
      if (user !== undefined && url.searchParams.get('offline_token') === 'true') {
        const refresh = randomBytes(16).toString('hex');
        refreshTokens.set(refresh, user);
        extra.refresh_token = refresh;
      }
      return reply(res, 200, tokenBody(sign(user, grant(user, scopes)), extra));
    }
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const scopes = form.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const grantType = form.get('grant_type') ?? undefined;
      let user: string | undefined;
      if (grantType === 'password') {
        const u = form.get('username') ?? '';
        if (users[u] === undefined || users[u] !== form.get('password')) {
          requests.push({ method: 'POST', user: u, grantType, service: form.get('service') ?? undefined, scopes, status: 401 });
          return reply(res, 401, { error: 'invalid_grant', details: 'incorrect username or password' });
        }
        user = u;
      } else if (grantType === 'refresh_token') {
        user = refreshTokens.get(form.get('refresh_token') ?? '');
        if (user === undefined) {
          requests.push({ method: 'POST', grantType, service: form.get('service') ?? undefined, scopes, status: 401 });
          return reply(res, 401, { error: 'invalid_grant', details: 'invalid refresh token' });
        }
      } else {
        requests.push({ method: 'POST', grantType, scopes, status: 400 });
        return reply(res, 400, { error: 'unsupported_grant_type' });
      }
      requests.push({ method: 'POST', user, grantType, service: form.get('service') ?? undefined, scopes, status: 200 });
      const extra: Record<string, unknown> = {};
      if (grantType === 'password' && form.get('access_type') === 'offline') {
        const refresh = randomBytes(16).toString('hex');
        refreshTokens.set(refresh, user);
        extra.refresh_token = refresh;
      }
      const token = sign(user, grant(user, scopes));
      // The OAuth2 endpoint answers with access_token only (docker's token spec, oauth.md).
      return reply(res, 200, { access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString(), ...extra });
    }
    reply(res, 405, { details: 'method not allowed' });
  };

  const server: Server = createHttpServer((req, res) => {
    handle(req, res).catch((err) => reply(res, 500, { details: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    requests,
    refreshTokens,
    certPath,
    expireNextTokens: (n: number) => {
      toExpire = n;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function registryConfig(o: { data: string; addr: string; auth: RegistryAuth; htpasswd?: string; tls?: { cert: string; key: string };
  token?: { realm: string; service: string; issuer: string; bundle: string }; schema1?: boolean }): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.data}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${o.addr}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (o.tls) lines.push('  tls:', `    certificate: ${o.tls.cert}`, `    key: ${o.tls.key}`);
  if (o.auth === 'htpasswd') lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${o.htpasswd}`);
  if (o.auth === 'token' && o.token) {
    lines.push('auth:', '  token:', `    realm: ${o.token.realm}`, `    service: ${o.token.service}`, `    issuer: ${o.token.issuer}`,
      `    rootcertbundle: ${o.token.bundle}`);
  }
  if (o.schema1) lines.push('compatibility:', '  schema1:', '    enabled: true');
  return `${lines.join('\n')}\n`;
}

/** Starts a registry; resolves once /v2/ answers. Always pair with stop() (or use withRegistry). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? { [TEST_USER]: TEST_PASSWORD };
  const dir = mkdtempSync(join(TMP_BASE, 'berth-registry-'));
  let tokenServer: (TokenServer & { certPath: string }) | undefined;
  try {
    mkdirSync(join(dir, 'data'));
    let htpasswd: string | undefined;
    if (auth === 'htpasswd') {
      htpasswd = join(dir, 'htpasswd');
      // bcrypt: the only hash distribution's htpasswd backend accepts
      writeFileSync(htpasswd, Object.entries(users).map(([u, p]) => run('htpasswd', ['-Bbn', u, p]).trim()).join('\n') + '\n');
    }
    let tls: { cert: string; key: string } | undefined;
    let certPem: string | undefined;
    if (opts.tls) {
      const c = makeSelfSignedCert(dir, 'registry', '127.0.0.1');
      tls = { cert: c.certPath, key: c.keyPath };
      certPem = readFileSync(c.certPath, 'utf8');
    }
    if (auth === 'token') tokenServer = await startTokenServer(dir, users, opts.token ?? {});

    for (let attempt = 1; ; attempt++) {
      const port = await freePort(opts.address);
      const host = `${opts.address ?? '127.0.0.1'}:${port}`;
      const url = `${tls ? 'https' : 'http'}://${host}`;
      const config = join(dir, 'config.yml');
      writeFileSync(config, registryConfig({
        data: join(dir, 'data'), addr: host, auth, htpasswd, tls, schema1: opts.schema1,
        token: tokenServer && { realm: tokenServer.url, service: tokenServer.service, issuer: tokenServer.issuer, bundle: tokenServer.certPath },
      }));
      const logPath = join(dir, 'registry.log');
      const logFd = openSync(logPath, 'a');
      const child = spawn(REGISTRY_BIN, ['serve', config], { env: registryEnv(), stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      running.add(child);
      let exited = false;
      const exitedP = new Promise<void>((resolve) => child.once('exit', () => { exited = true; running.delete(child); resolve(); }));
      child.once('error', () => { exited = true; });
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline && !(await answers(url))) await sleep(25);
      const log = () => {
        try {
          return readFileSync(logPath, 'utf8');
        } catch {
          return '';
        }
      };
      if (exited || Date.now() >= deadline) {
        if (!exited) child.kill('SIGKILL');
        await exitedP;
        if (attempt < 3 && /address already in use/.test(log())) continue;
        throw new Error(`docker-registry did not start on ${host}:\n${log()}`);
      }
      const ts = tokenServer;
      const registry: TestRegistry = {
        host, url, port, dir, pid: child.pid!, auth, users, tls: !!tls, certPem, tokenServer: ts, log,
        stop: async () => {
          if (!exited) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exitedP;
            clearTimeout(timer);
          }
          await ts?.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return registry;
    }
  } catch (err) {
    await tokenServer?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function withRegistry<T>(opts: RegistryOptions, fn: (r: TestRegistry) => Promise<T>): Promise<T> {
  const r = await startRegistry(opts);
  try {
    return await fn(r);
  } finally {
    await r.stop();
  }
}

/** `skopeo inspect` of an image in a test registry (raw manifest with `raw: true`). */
export async function skopeoInspect(registry: TestRegistry, image: string, opts: { raw?: boolean; config?: boolean; creds?: string } = {}): Promise<string> {
  const args = ['inspect', '--tls-verify=false'];
  if (opts.raw) args.push('--raw');
  if (opts.config) args.push('--config');
  if (opts.creds) args.push('--creds', opts.creds);
  args.push(`docker://${registry.host}/${image}`);
  return runAsync('skopeo', args, { env: skopeoEnv() });
}

// ---------------------------------------------------------------------------------------------
// A proxy in front of a registry: records requests and injects faults the registry cannot
// produce by itself (a connection cut mid-blob, 5xx answers). Everything else goes through to
// the real registry unchanged (the Host header too, so upload Locations point back here).
// ---------------------------------------------------------------------------------------------

export interface ProxiedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export type ProxyAction =
  | { kind: 'pass' }
  /** Answer without asking the registry. */
  | { kind: 'respond'; status: number; body?: string; headers?: Record<string, string> }
  /** Forward, then close the connection after this many bytes of the response body. */
  | { kind: 'cut'; afterBytes: number }
  /** Forward, then stop sending after this many bytes of the body, keeping the connection open (a stalled download). */
  | { kind: 'hold'; afterBytes: number }
  /** Close the connection without any answer. */
  | { kind: 'reset' };

export interface RegistryProxy {
  host: string;
  url: string;
  requests: ProxiedRequest[];
  /** Decides per request (n counts from 0 over the proxy's life); undefined means pass. */
  handler: (req: ProxiedRequest, n: number) => ProxyAction | undefined;
  close(): Promise<void>;
}

export async function startProxy(target: TestRegistry): Promise<RegistryProxy> {
  if (target.tls) throw new Error('startProxy: plain-HTTP registries only');
  const proxy: RegistryProxy = {
    host: '', url: '', requests: [], handler: () => undefined,
    close: async () => {},
  };
  const server = createHttpServer((req, res) => {
    const info: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    const n = proxy.requests.length;
    proxy.requests.push(info);
    const action = proxy.handler(info, n) ?? { kind: 'pass' };
    if (action.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action.kind === 'respond') {
      req.resume();
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body ?? '');
      return;
    }
    const upstream = httpRequest({
      host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers,
    }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (action.kind === 'hold') {
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= action.afterBytes) return;
          const part = chunk.subarray(0, action.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= action.afterBytes) up.destroy();
        });
      } else if (action.kind === 'cut') {
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= action.afterBytes) return;
          const part = chunk.subarray(0, action.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= action.afterBytes) {
            up.destroy();
            // flush what was written, then drop the connection mid-body
            setTimeout(() => res.socket?.destroy(), 20);
          }
        });
        up.on('end', () => res.end());
      } else {
        up.pipe(res);
      }
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.host = `127.0.0.1:${port}`;
  proxy.url = `http://${proxy.host}`;
  proxy.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return proxy;
}

/** Awaits `p` and checks it failed with a RegistryError of this code and message. */
export async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp | string): Promise<RegistryError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
  assert.equal(caught.code, code, `code of: ${caught.message}`);
  if (typeof message === 'string') assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}
