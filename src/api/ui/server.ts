// The web UI's HTTP server (`berth daemon --ui ADDR`): static files, sign-in, and a guarded
// pass-through to the Engine API.
//
// The UI speaks only the Engine API. Its requests (/api/<engine path>) are forwarded over a
// private unix socket (<exec-root>/ui/api.sock, root only) that the daemon serves exactly like its
// API socket, so the UI gets the same answers the docker CLI gets. Terminals and attach use
// websockets (/ui/ws/exec/<id>, /ui/ws/attach/<id>) bridged to the API's hijacked streams.
//
// Checks on every request, in order: the Host header (an IP literal or localhost: a DNS
// rebinding page's own host name is refused); for everything but the sign-in page and static
// files, a live session cookie; for state-changing requests and websockets, a same-origin Origin
// and the session's CSRF token. No CORS headers are ever sent; every answer carries a strict
// Content-Security-Policy.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import {
  Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse,
} from 'node:http';
import { createServer as createNetServer, isIP, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { UiAssets } from './assets.ts';
import { readBody } from '../http.ts';
import { UiAuth, clearedSessionCookie, sessionCookie } from './auth.ts';
import type { UiListen } from '../../engine/config.ts';
import type { Logger } from '../../engine/log.ts';

export class UiServerError extends Error {
  override name = 'UiServerError';
}

export interface UiServerOptions {
  listen: UiListen;
  /** <exec-root>/ui: token file and the private API socket. */
  stateDir: string;
  /** Serves the Engine API on a connection (DaemonContext.serveApiConnection). */
  serveApi: (socket: Socket) => void;
  log: Logger;
  assets?: UiAssets;
}

/** Request headers the Engine API needs; cookies, Origin and the like stay at the UI's edge. */
const FORWARDED_HEADERS = ['content-type', 'content-length', 'transfer-encoding', 'accept', 'x-registry-auth', 'x-registry-config'];
/** Engine API paths the UI may not reach: Berth's own control of the UI (the token). */
const HIDDEN_API = /^(\/v[0-9.]+)?\/berth(\/|$)/;
const LOGIN_FAILURE_DELAY_MS = 400;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The host part of a Host header (brackets dropped), or undefined when malformed. */
function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(header.trim());
  if (!m) return undefined;
  return m[1].startsWith('[') ? m[1].slice(1, -1) : m[1].toLowerCase();
}

export class UiServer {
  readonly auth: UiAuth;
  private readonly assets: UiAssets;
  private readonly http: Server;
  private readonly apiListener: NetServer;
  private readonly apiSocketPath: string;
  private readonly agent: Agent;
  private readonly ws = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: false });
  private readonly sockets = new Set<Socket>();
  private address?: { host: string; port: number };

  constructor(private readonly opts: UiServerOptions) {
    this.assets = opts.assets ?? new UiAssets();
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(opts.stateDir, 0o700);
    this.auth = new UiAuth(opts.stateDir);
    this.apiSocketPath = join(opts.stateDir, 'api.sock');
    this.apiListener = createNetServer((socket) => opts.serveApi(socket));
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: 8 });
    this.http = createServer({ requestTimeout: 0, keepAlive: true });
    this.http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.http.on('request', (req, res) => {
      this.handle(req, res).catch((e: Error) => {
        opts.log.warn(`web UI: ${req.method} ${req.url}: ${e.message}`);
        if (!res.headersSent) this.sendText(res, 500, 'internal error');
        else res.destroy();
      });
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
    this.http.on('clientError', (_e, socket: Socket) => socket.destroy());
  }

  /** The URL users open (with the real port when 0 was asked for). */
  get url(): string {
    const a = this.address ?? this.opts.listen;
    const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
    return `http://${isIP(host) === 6 ? `[${host}]` : host}:${a.port}/`;
  }

  async start(): Promise<void> {
    rmSync(this.apiSocketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      const old = process.umask(0o177);
      this.apiListener.once('error', (e) => { process.umask(old); reject(new UiServerError(`web UI: cannot listen on ${this.apiSocketPath}: ${e.message}`)); });
      this.apiListener.listen(this.apiSocketPath, () => { process.umask(old); resolve(); });
    });
    const { host, port } = this.opts.listen;
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'EADDRINUSE' ? 'the address is in use (another program, or another daemon\'s UI)'
          : e.code === 'EADDRNOTAVAIL' ? 'no interface has this address' : e.message;
        reject(new UiServerError(`web UI: cannot listen on ${host}:${port}: ${why}`));
      });
      this.http.listen(port, host, () => resolve());
    });
    const a = this.http.address();
    if (a && typeof a === 'object') this.address = { host, port: a.port };
    if (!isLoopback(host)) this.opts.log.warn(`web UI listens on ${host}, not loopback: anyone who can reach it and has the token controls this host`);
    this.opts.log.info(`web UI listening on ${this.url}`);
  }

  async stop(): Promise<void> {
    for (const client of this.ws.clients) client.terminate();
    const closed = new Promise<void>((r) => this.http.close(() => r()));
    this.http.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
    await new Promise<void>((r) => this.apiListener.close(() => r()));
    this.agent.destroy();
    this.auth.clear();
    rmSync(this.apiSocketPath, { force: true });
    rmSync(this.auth.tokenFile, { force: true });
  }

  private securityHeaders(res: ServerResponse, nonce?: string): void {
    const style = nonce ? `'self' 'nonce-${nonce}'` : `'self'`;
    res.setHeader('Content-Security-Policy',
      `default-src 'none'; script-src 'self'; style-src ${style}; img-src 'self' data: blob:; font-src 'self'; ` +
      `connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  }

  private sendText(res: ServerResponse, status: number, text: string): void {
    this.securityHeaders(res);
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(text);
  }

  private sendJson(res: ServerResponse, status: number, body: unknown): void {
    this.securityHeaders(res);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(body));
  }

  private sendHtml(res: ServerResponse, status: number, make: (nonce: string) => string): void {
    const nonce = randomBytes(16).toString('base64');
    this.securityHeaders(res, nonce);
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(make(nonce));
  }

  /** DNS rebinding: a page served from evil.example that resolves to 127.0.0.1 sends Host: evil.example. */
  private hostAllowed(req: IncomingMessage): boolean {
    const host = hostName(req.headers.host);
    if (!host) return false;
    if (isIP(host)) return true;
    return host === 'localhost' && isLoopback(this.opts.listen.host);
  }

  /** A browser's Origin must be this very origin; requests without one (curl) pass. */
  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    if (origin === undefined) return true;
    if (origin === 'null') return site === 'same-origin';
    return origin === `http://${req.headers.host}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    const path = url.pathname;
    if (!this.hostAllowed(req)) {
      this.sendText(res, 421, `Host "${req.headers.host ?? ''}" is not allowed: open the UI by IP address or localhost (this blocks DNS rebinding)`);
      return;
    }
    if (method === 'OPTIONS') {
      // No CORS: a preflight is always refused, so no other origin can send custom headers.
      this.sendText(res, 403, 'cross-origin requests are not allowed');
      return;
    }
    const session = this.auth.session(req.headers.cookie);

    if (path.startsWith('/assets/') && (method === 'GET' || method === 'HEAD')) {
      this.serveAsset(req, res, path);
      return;
    }
    if (path === '/login') {
      if (method === 'POST') { await this.login(req, res); return; }
      if (method === 'GET') { this.sendHtml(res, 200, (n) => this.assets.loginPage(n)); return; }
    }
    if (path === '/logout' && method === 'POST') {
      if (session && this.originAllowed(req)) this.auth.signOut(session.id);
      res.setHeader('Set-Cookie', clearedSessionCookie());
      this.redirect(res, '/login');
      return;
    }
    if (path === '/' || path === '/index.html') {
      if (method !== 'GET' && method !== 'HEAD') { this.sendText(res, 405, 'method not allowed'); return; }
      if (!session) { this.redirect(res, '/login'); return; }
      this.sendHtml(res, 200, (n) => this.assets.appPage(n, session.csrf));
      return;
    }
    if (path.startsWith('/api/')) {
      if (!session) { this.sendJson(res, 401, { message: 'not signed in to the Berth UI (session missing or expired)' }); return; }
      const safe = method === 'GET' || method === 'HEAD';
      if (!safe && (!this.originAllowed(req) || req.headers['x-berth-csrf'] !== session.csrf)) {
        this.sendJson(res, 403, { message: 'request refused: missing or wrong CSRF token, or cross-origin' });
        return;
      }
      const target = path.slice(4) + url.search;
      if (HIDDEN_API.test(path.slice(4))) { this.sendJson(res, 404, { message: 'page not found' }); return; }
      this.proxy(req, res, target);
      return;
    }
    this.sendText(res, 404, 'not found');
  }

  private redirect(res: ServerResponse, to: string): void {
    this.securityHeaders(res);
    res.statusCode = 303;
    res.setHeader('Location', to);
    res.setHeader('Cache-Control', 'no-store');
    res.end();
  }

  private serveAsset(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = this.assets.get(path);
    if (!asset) { this.sendText(res, 404, 'not found'); return; }
    this.securityHeaders(res);
    const accept = String(req.headers['accept-encoding'] ?? '');
    let body = asset.raw;
    if (asset.br && /\bbr\b/.test(accept)) { body = asset.br; res.setHeader('Content-Encoding', 'br'); }
    else if (asset.gzip && /\bgzip\b/.test(accept)) { body = asset.gzip; res.setHeader('Content-Encoding', 'gzip'); }
    res.setHeader('Vary', 'Accept-Encoding');
    res.setHeader('Content-Type', asset.type);
    res.setHeader('Content-Length', body.length);
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    res.statusCode = 200;
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.originAllowed(req)) { this.sendText(res, 403, 'cross-origin sign-in refused'); return; }
    const body = (await readBody(req, 4096)).toString('utf8');
    const type = String(req.headers['content-type'] ?? '');
    let token = '';
    if (type.startsWith('application/json')) {
      try { token = String((JSON.parse(body) as { token?: unknown }).token ?? ''); } catch { token = ''; }
    } else {
      token = new URLSearchParams(body).get('token') ?? '';
    }
    const session = token ? this.auth.signIn(token) : undefined;
    const wantsJson = type.startsWith('application/json');
    if (!session) {
      // A pause on every failure makes guessing slow even for a patient script.
      await new Promise((r) => setTimeout(r, LOGIN_FAILURE_DELAY_MS));
      this.opts.log.warn('web UI: sign-in with a wrong token', { from: req.socket.remoteAddress });
      if (wantsJson) this.sendJson(res, 401, { message: 'wrong token' });
      else this.sendHtml(res, 401, (n) => this.assets.loginPage(n, 'Wrong token. Run "berth ui" on the host to see the current one.'));
      return;
    }
    res.setHeader('Set-Cookie', sessionCookie(session.id));
    if (wantsJson) this.sendJson(res, 200, { ok: true });
    else this.redirect(res, '/');
  }

  private proxy(req: IncomingMessage, res: ServerResponse, target: string): void {
    const headers: Record<string, string | string[]> = { host: 'berth-ui' };
    for (const h of FORWARDED_HEADERS) {
      const v = req.headers[h];
      if (v !== undefined) headers[h] = v;
    }
    const upstream = httpRequest({ socketPath: this.apiSocketPath, path: target, method: req.method, headers, agent: this.agent }, (answer) => {
      this.securityHeaders(res);
      res.statusCode = answer.statusCode ?? 502;
      copyResponseHeaders(answer.headers, res);
      res.setHeader('Cache-Control', 'no-store');
      res.flushHeaders();
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (e) => {
      if (!res.headersSent) this.sendJson(res, 502, { message: `the Berth daemon did not answer: ${e.message}` });
      else res.destroy();
    });
    // A closed browser tab ends the upstream request (a followed log, the event stream).
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (status: number, why: string): void => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    const m = /^\/ui\/ws\/(exec|attach)\/([A-Za-z0-9_.-]+)$/.exec(url.pathname);
    if (!m) { refuse(404, 'Not Found'); return; }
    if (!this.hostAllowed(req)) { refuse(421, 'Misdirected Request'); return; }
    const session = this.auth.session(req.headers.cookie);
    // Browsers always send Origin on websockets; a missing one is not a browser on our page.
    if (!session || req.headers.origin !== `http://${req.headers.host}` || url.searchParams.get('csrf') !== session.csrf) {
      refuse(403, 'Forbidden');
      return;
    }
    const [, kind, id] = m;
    this.ws.handleUpgrade(req, socket, head, (client) => this.bridge(client, kind as 'exec' | 'attach', id, url.searchParams));
  }

  /** Joins a browser websocket to the API's hijacked exec/attach stream (raw bytes both ways). */
  private bridge(client: WebSocket, kind: 'exec' | 'attach', id: string, params: URLSearchParams): void {
    let path: string;
    let body = '';
    if (kind === 'exec') {
      path = `/exec/${encodeURIComponent(id)}/start`;
      body = JSON.stringify({ Detach: false, Tty: params.get('tty') !== '0' });
    } else {
      const logs = params.get('logs') === '1' ? '1' : '0';
      path = `/containers/${encodeURIComponent(id)}/attach?stream=1&stdin=1&stdout=1&stderr=1&logs=${logs}`;
    }
    const upstream = httpRequest({
      socketPath: this.apiSocketPath, path, method: 'POST',
      headers: { 'host': 'berth-ui', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'connection': 'Upgrade', 'upgrade': 'tcp' },
    });
    const pending: Buffer[] = [];
    let stream: Socket | undefined;
    const onClientMessage = (data: Buffer | ArrayBuffer | Buffer[]): void => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (stream) stream.write(buf); else pending.push(buf);
    };
    client.on('message', onClientMessage);
    client.on('close', () => { if (stream) stream.end(); else upstream.destroy(); });
    client.on('error', () => client.terminate());
    upstream.on('upgrade', (_res, sock: Socket, upHead: Buffer) => {
      stream = sock;
      if (upHead.length) client.send(upHead);
      for (const b of pending.splice(0)) sock.write(b);
      sock.on('data', (chunk: Buffer) => {
        client.send(chunk);
        // Backpressure: a slow browser pauses the container's output instead of growing memory.
        if (client.bufferedAmount > 1 << 20) {
          sock.pause();
          const resume = setInterval(() => { if (client.bufferedAmount < 1 << 18 || client.readyState !== client.OPEN) { clearInterval(resume); sock.resume(); } }, 20);
        }
      });
      sock.on('end', () => client.close(1000, 'ended'));
      sock.on('close', () => { if (client.readyState === client.OPEN) client.close(1000, 'ended'); });
      sock.on('error', () => client.close(1011, 'stream error'));
    });
    upstream.on('response', (res) => {
      // Not upgraded: the API refused (no such exec, container not running); pass its message on.
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (text.length < 2048) text += c; });
      res.on('end', () => {
        let message = text;
        try { message = String((JSON.parse(text) as { message?: string }).message ?? text); } catch { /* plain text */ }
        client.close(4000 + Math.min(999, res.statusCode ?? 500) % 1000, message.slice(0, 120));
      });
    });
    upstream.on('error', (e) => client.close(1011, e.message.slice(0, 120)));
    upstream.end(body);
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'server', 'content-security-policy', 'set-cookie']);

function copyResponseHeaders(headers: IncomingHttpHeaders, res: ServerResponse): void {
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith('access-control-')) continue;
    res.setHeader(name, value);
  }
}

