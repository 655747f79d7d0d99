// A scripted Engine API on a unix socket, for comparing what the docker CLI and `berth` print
// for the same daemon answers (and what they send). Only for rendering tests: the real daemon's
// behaviour is tested against `berth daemon`.
//
//   const fake = await FakeEngine.start();
//   fake.on('GET', '/images/json', (req) => ({ json: [...] }));
//   const [docker, berth] = await fake.both(['images', '-q']);
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DOCKER_BIN, REPO_ROOT, run, type RunResult } from '../helpers/daemon.ts';

export interface FakeRequest {
  method: string;
  /** Path without the /vX.Y prefix. */
  path: string;
  query: Array<[string, string]>;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface FakeAnswer {
  status?: number;
  json?: unknown;
  /** JSON-lines progress stream (application/json). */
  lines?: unknown[];
  raw?: string | Buffer;
  contentType?: string;
}

type Handler = (req: FakeRequest) => FakeAnswer;

export class FakeEngine {
  readonly requests: FakeRequest[] = [];
  private readonly routes: Array<{ method: string; path: string | RegExp; handler: Handler }> = [];

  private constructor(readonly dir: string, readonly socket: string, private readonly server: Server) {}

  static async start(): Promise<FakeEngine> {
    const dir = mkdtempSync('/tmp/berth-fake-engine-');
    const socket = join(dir, 'engine.sock');
    let self: FakeEngine | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => self!.answer(req, Buffer.concat(chunks), res));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    self = new FakeEngine(dir, socket, server);
    return self;
  }

  get host(): string { return `unix://${this.socket}`; }

  on(method: string, path: string | RegExp, handler: Handler): this {
    this.routes.unshift({ method, path, handler });
    return this;
  }

  reset(): void {
    this.routes.length = 0;
    this.requests.length = 0;
  }

  private answer(req: IncomingMessage, body: Buffer, res: import('node:http').ServerResponse): void {
    res.setHeader('Api-Version', '1.47');
    res.setHeader('Ostype', 'linux');
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname.replace(/^\/v\d+\.\d+/, ''));
    if (path === '/_ping') { res.end(req.method === 'HEAD' ? undefined : 'OK'); return; }
    const r: FakeRequest = { method: req.method ?? '', path, query: [...url.searchParams.entries()], headers: req.headers, body };
    this.requests.push(r);
    const route = this.routes.find((x) => x.method === r.method && (typeof x.path === 'string' ? x.path === path : x.path.test(path)));
    const a: FakeAnswer = route ? route.handler(r) : { status: 404, json: { message: `page not found: ${r.method} ${path}` } };
    res.statusCode = a.status ?? 200;
    if (a.lines) {
      res.setHeader('Content-Type', 'application/json');
      res.end(a.lines.map((l) => `${JSON.stringify(l)}\r\n`).join(''));
    } else if (a.json !== undefined) {
      res.setHeader('Content-Type', a.contentType ?? 'application/json');
      res.end(`${JSON.stringify(a.json)}\n`);
    } else {
      if (a.contentType) res.setHeader('Content-Type', a.contentType);
      res.end(a.raw ?? '');
    }
  }

  /** An environment for either CLI: this engine, a private docker config dir. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const cfg = join(this.dir, 'docker-config');
    mkdirSync(cfg, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.host, DOCKER_CONFIG: cfg, BERTH_AUTOSTART: '0', TZ: 'UTC', ...extra };
    for (const k of ['DOCKER_CONTEXT', 'DOCKER_API_VERSION', 'BERTH_HOST', 'DOCKER_CONTENT_TRUST']) delete env[k];
    return env;
  }

  docker(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
    return run(DOCKER_BIN, args, { env: this.env(opts.env), input: opts.input, cwd: opts.cwd });
  }

  /** berth from source (tsx), so rendering tests need no build. */
  berth(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<RunResult> {
    return run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'berth.ts'), '-H', this.host, ...args],
      { env: this.env(opts.env), input: opts.input, cwd: opts.cwd ?? REPO_ROOT, timeoutMs: 60_000 });
  }

  /** Runs docker then berth with the same arguments; returns both results and the requests each made. */
  async both(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; berthArgs?: string[] } = {}): Promise<{ docker: RunResult; berth: RunResult; dockerRequests: FakeRequest[]; berthRequests: FakeRequest[] }> {
    this.requests.length = 0;
    const docker = await this.docker(args, opts);
    const dockerRequests = this.requests.splice(0);
    const berth = await this.berth(opts.berthArgs ?? args, opts);
    const berthRequests = this.requests.splice(0);
    return { docker, berth, dockerRequests, berthRequests };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** docker's text with berth's name, for comparing messages that name the program. */
export function asBerth(text: string): string {
  // Only the CLI's own usage lines: daemon messages ("may require 'docker login'") stay as they are.
  return text.split('\n').map((l) => (/^(docker: 'docker |Usage: {2}docker |(Run|See) 'docker )/.test(l) ? l.replace(/\bdocker\b/g, 'berth') : l)).join('\n');
}

/** A request as both CLIs should send it: method, path, sorted query, auth header, body. */
export function requestKey(r: FakeRequest): string {
  const q = [...r.query].sort((a, b) => (a[0] === b[0] ? a[1].localeCompare(b[1]) : a[0].localeCompare(b[0])));
  const auth = r.headers['x-registry-auth'];
  let authJSON = '';
  if (typeof auth === 'string' && auth) {
    const o = JSON.parse(Buffer.from(auth.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')) as Record<string, unknown>;
    authJSON = JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));
  }
  return `${r.method} ${r.path} ${JSON.stringify(q)} auth=${authJSON} body=${r.body.length > 200 ? `${r.body.length} bytes` : r.body.toString('utf8')}`;
}
