// A real `berth daemon` for tests, in its own temp dirs:
//   const d = await TestDaemon.start({ config: { 'insecure-registries': ['myreg:5000'] } });
//   await d.docker(['version'])           the docker CLI against it (DOCKER_HOST, private DOCKER_CONFIG)
//   await d.berth(['info'])               the berth CLI against it (-H)
//   await d.request('GET', '/v1.47/info') raw HTTP over the socket
//   await d.restart(); await d.stop(); d.cleanup()
// The daemon runs from dist/berth.cjs (what users get; `npm run build` first — the helper refuses
// a bundle older than src/), or $BERTH_BIN. It is stopped by its PID only; daemons that a test
// had `berth` auto-start are stopped through their pid file (stopDaemonByPidFile).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BERTH_BIN = process.env.BERTH_BIN ?? join(REPO_ROOT, 'dist', 'berth.cjs');
export const DOCKER_BIN = process.env.BERTH_TEST_DOCKER ?? '/usr/local/bin/docker';
const TMP_BASE = process.env.BERTH_TEST_TMPDIR ?? '/tmp';

function newestMtime(dir: string): { mtime: number; file: string } {
  let best = { mtime: 0, file: '' };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = newestMtime(p);
      if (sub.mtime > best.mtime) best = sub;
    } else if (e.name.endsWith('.ts')) {
      const m = statSync(p).mtimeMs;
      if (m > best.mtime) best = { mtime: m, file: p };
    }
  }
  return best;
}

/** Refuses to test a stale bundle: the tests would pass or fail for code that is not in src/. */
export function checkBundleFresh(): void {
  if (process.env.BERTH_BIN) return;
  if (!existsSync(BERTH_BIN)) throw new Error(`${BERTH_BIN} is missing: run \`npm run build\` first`);
  const built = statSync(BERTH_BIN).mtimeMs;
  const newest = newestMtime(join(REPO_ROOT, 'src'));
  if (newest.mtime > built) {
    throw new Error(`${BERTH_BIN} is older than ${newest.file.slice(REPO_ROOT.length + 1)}: run \`npm run build\` first`);
  }
}

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a program to completion (no shell), with a timeout that kills it. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolveRun({ code, signal, stdout, stderr }); });
    child.stdin.end(opts.input ?? '');
  });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json<T = any>(): T;
}

/** One HTTP request over a unix socket; resolves with the complete answer. */
export function httpRequest(socketPath: string, method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolveReq, reject) => {
    const req = request({ socketPath, method, path, headers: { Host: 'localhost', ...(opts.headers ?? {}) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolveReq({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    // A zombie (child of someone else not yet reaped) counts as gone.
    try { if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return true; } catch { return true; }
    await sleep(25);
  }
  return !alive(pid);
}

/**
 * Stops the daemon whose pid file is in `execRoot` (one `berth` auto-started), after checking the
 * pid really is a berth daemon. Returns whether one was stopped.
 */
export async function stopDaemonByPidFile(execRoot: string, timeoutMs = 10_000): Promise<boolean> {
  const pidFile = join(execRoot, 'berth.pid');
  let pid: number;
  try { pid = parseInt(readFileSync(pidFile, 'utf8'), 10); } catch { return false; }
  let cmdline = '';
  try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return false; }
  if (!cmdline.split('\0').includes('daemon') || !cmdline.includes('berth')) return false;
  process.kill(pid, 'SIGTERM');
  if (!(await waitGone(pid, timeoutMs))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 2000);
  }
  return true;
}

/** Removes a (now empty) cgroup parent from every hierarchy: v2's and each v1 controller's. */
export function removeCgroupParent(parent: string): void {
  const roots = ['/sys/fs/cgroup'];
  try {
    for (const e of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) if (e.isDirectory()) roots.push(join('/sys/fs/cgroup', e.name));
  } catch { /* no cgroupfs */ }
  for (const root of roots) {
    const dir = join(root, parent);
    if (dir === root || !existsSync(dir)) continue;
    spawnSync('find', [dir, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';'], { stdio: 'ignore' });
  }
}

export interface TestDaemonOptions {
  /** daemon.json content (written to <dir>/daemon.json and passed with --config-file). */
  config?: Record<string, unknown>;
  /** Extra `berth daemon` arguments. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse this directory (e.g. a second daemon over the same data root). */
  dir?: string;
  /** Do not wait for the socket (for start-up failure tests; use waitExit()). */
  noWait?: boolean;
}

export class TestDaemon {
  readonly dir: string;
  readonly socket: string;
  readonly host: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly configFile: string;
  readonly logFile: string;
  /** daemon.json "bridge-suffix": each test daemon's bridges, veths and firewall chains are its own. */
  readonly bridgeSuffix: string;
  /** daemon.json "cgroup-parent": its containers' cgroups, removed with the daemon. */
  get cgroupParent(): string {
    const given = this.opts.config?.['cgroup-parent'];
    return typeof given === 'string' ? given : `/berth-test-${this.bridgeSuffix || 'x'}`;
  }
  private child?: ChildProcess;
  private exit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pid = 0;

  private constructor(readonly opts: TestDaemonOptions) {
    this.dir = opts.dir ?? mkdtempSync(join(TMP_BASE, 'berth-daemon-'));
    this.socket = join(this.dir, 'berth.sock');
    this.host = `unix://${this.socket}`;
    this.dataRoot = join(this.dir, 'data');
    this.execRoot = join(this.dir, 'run');
    this.configFile = join(this.dir, 'daemon.json');
    this.logFile = join(this.dir, 'daemon.log');
    const given = opts.config?.['bridge-suffix'];
    this.bridgeSuffix = typeof given === 'string' ? given : `d${Math.random().toString(36).slice(2, 6)}`;
  }

  static async start(opts: TestDaemonOptions = {}): Promise<TestDaemon> {
    checkBundleFresh();
    const d = new TestDaemon(opts);
    try {
      await d.launch();
    } catch (err) {
      // Nobody gets the object to clean up: a daemon that failed to start leaves no temp dir.
      await d.stop().catch(() => {});
      if (!opts.dir) rmSync(d.dir, { recursive: true, force: true });
      throw err;
    }
    return d;
  }

  /** The arguments the daemon is started with. */
  get args(): string[] {
    return ['daemon', '--host', this.host, '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--config-file', this.configFile, ...(this.opts.args ?? [])];
  }

  private async launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.configFile, JSON.stringify({ 'bridge-suffix': this.bridgeSuffix, 'cgroup-parent': this.cgroupParent, ...(this.opts.config ?? {}) }, null, 2));
    const logFd = openSync(this.logFile, 'a');
    // Own process group: a Ctrl-C aimed at the test runner must not reach the daemon first.
    const child = spawn(process.execPath, [BERTH_BIN, ...this.args], { stdio: ['ignore', logFd, logFd], env: this.opts.env ?? process.env, detached: true });
    closeSync(logFd);
    this.child = child;
    this.pid = child.pid ?? 0;
    this.exit = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    if (this.opts.noWait) return;
    const deadline = Date.now() + 20_000;
    let exited = false;
    void this.exit.then(() => { exited = true; });
    while (Date.now() < deadline) {
      if (exited) throw new Error(`berth daemon exited during start-up:\n${this.log()}`);
      if (existsSync(this.socket)) {
        try {
          const r = await httpRequest(this.socket, 'GET', '/_ping', { timeoutMs: 2000 });
          if (r.status === 200) return;
        } catch { /* not yet */ }
      }
      await sleep(25);
    }
    throw new Error(`berth daemon did not answer on ${this.socket} within 20s:\n${this.log()}`);
  }

  /** The daemon's log so far. */
  log(): string {
    try { return readFileSync(this.logFile, 'utf8'); } catch { return ''; }
  }

  /** Resolves when the daemon process exits. */
  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exit ?? Promise.resolve({ code: null, signal: null });
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig);
  }

  /** SIGTERM (or `sig`) and wait; SIGKILL after the timeout. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.waitExit();
    process.kill(this.pid, sig);
    const timer = setTimeout(() => { if (this.running) process.kill(this.pid, 'SIGKILL'); }, timeoutMs);
    const r = await this.waitExit();
    clearTimeout(timer);
    return r;
  }

  /** Stops (gracefully unless `kill9`) and starts again over the same directories. */
  async restart(opts: { kill9?: boolean } = {}): Promise<void> {
    await this.stop(opts.kill9 ? 'SIGKILL' : 'SIGTERM');
    await this.launch();
  }

  /** Environment for the docker CLI: this daemon, and a private config dir (no user contexts/plugins). */
  dockerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const cfg = join(this.dir, 'docker-config');
    mkdirSync(cfg, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.host, DOCKER_CONFIG: cfg, ...extra };
    for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete env[k];
    if (!('DOCKER_API_VERSION' in extra)) delete env.DOCKER_API_VERSION;
    return env;
  }

  docker(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    return run(DOCKER_BIN, args, { env: this.dockerEnv(opts.env), timeoutMs: opts.timeoutMs, input: opts.input });
  }

  /** The berth CLI against this daemon (no auto-start: a stopped daemon is an error here). */
  berth(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, BERTH_AUTOSTART: '0', ...(opts.env ?? {}) };
    delete env.BERTH_HOST;
    return run(process.execPath, [BERTH_BIN, '-H', this.host, ...args], { env, timeoutMs: opts.timeoutMs, input: opts.input });
  }

  /** DELETE ?force=1&v=1 of every container the daemon knows (no-op when it is not running). */
  async removeAllContainers(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      const list = await this.request('GET', '/containers/json?all=1', { timeoutMs: 10_000 });
      if (list.status !== 200) return;
      for (const c of list.json<Array<{ Id: string }>>()) await this.request('DELETE', `/containers/${c.Id}?force=1&v=1`, { timeoutMs: 30_000 });
    } catch { /* the daemon is gone */ }
  }

  request(method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpResult> {
    return httpRequest(this.socket, method, path, opts);
  }

  /** Removes every container (they outlive the daemon: live restore), stops the daemon, removes its directory. */
  async cleanup(): Promise<void> {
    await this.removeAllContainers();
    await this.stop();
    removeCgroupParent(this.cgroupParent);
    // Rootfs mounts of containers a crashed daemon left behind.
    for (const line of (() => { try { return readFileSync('/proc/self/mountinfo', 'utf8').split('\n'); } catch { return []; } })().reverse()) {
      const target = line.split(' ')[4];
      if (target && target.startsWith(`${this.dir}/`)) spawnSync('umount', ['-l', target]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
