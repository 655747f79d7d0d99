// The OCI runtime under a container: Berth's own (the runtime library, in process: no program
// start-up per container) or an external one with runc's command line (`--runtime crun`,
// daemon.json "runtimes"), for comparison and compatibility. Both start the container under the
// same per-container monitor, so logs, attach, exit records and live restore do not depend on
// the runtime: the in-process driver hands the monitor the C stage, the external one hands it
// `<runtime> create` (which forks the init and exits, leaving the init to the monitor).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { Runtime } from '../../runtime/container.ts';
import { loadCgroup, openCgroup, type CgroupManager } from '../../runtime/cgroups/index.ts';
import { execInContainer } from '../../runtime/exec.ts';
import { updateContainer } from '../../runtime/update.ts';
import type { LinuxResources, Process, Spec } from '../../runtime/spec-types.ts';
import { monitorCommand, monitorLauncher, MonitorConnection, type MonitorOptions } from '../monitor.ts';

export interface ExecRequest {
  args: string[];
  tty: boolean;
  env?: string[];
  /** "uid:gid", already resolved. */
  user?: string;
  additionalGids?: number[];
  cwd?: string;
  caps?: string[];
}

export interface OciDriver {
  readonly name: string;
  /** Creates the container under a new monitor (options.dir); afterwards the init waits for start. */
  create(id: string, bundle: string, monitor: MonitorOptions): Promise<void>;
  start(id: string): void;
  /** The init's host pid. */
  pid(id: string): number;
  kill(id: string, signal: number, all?: boolean): void;
  /** Removes the runtime's state (and the cgroup), killing what is left. Idempotent. */
  delete(id: string): void;
  pids(id: string): number[];
  cgroup(id: string): CgroupManager | undefined;
  pause(id: string): void;
  resume(id: string): void;
  update(id: string, delta: LinuxResources): Promise<void>;
  /** Starts a process in the container under a monitor (options.dir, with hold as given); resolves once it runs. */
  exec(id: string, req: ExecRequest, monitor: MonitorOptions, onMonitorReady: () => Promise<void>): Promise<void>;
}

export class DriverError extends Error {
  override name = 'DriverError';
}

/** Berth's own runtime, in process. */
export class BuiltinDriver implements OciDriver {
  readonly name = 'berth';
  constructor(readonly runtime: Runtime) {}

  async create(id: string, bundle: string, monitor: MonitorOptions): Promise<void> {
    const { launch, ready } = monitorLauncher(monitor);
    await this.runtime.create(id, { bundle, consoleSocket: monitor.tty ? join(monitor.dir, 'console.sock') : undefined, launch });
    await ready;
  }

  start(id: string): void { this.runtime.start(id); }
  pid(id: string): number { return this.runtime.state(id).pid ?? 0; }
  kill(id: string, signal: number, all = false): void { this.runtime.kill(id, signal, all); }
  delete(id: string): void { this.runtime.delete(id, true); }
  pids(id: string): number[] { return this.runtime.pids(id); }

  cgroup(id: string): CgroupManager | undefined {
    const st = this.runtime.store.load(id);
    return st.cgroup ? loadCgroup(st.cgroup) : undefined;
  }

  pause(id: string): void {
    const cg = this.cgroup(id);
    if (!cg) throw new DriverError(`container ${id} has no cgroup to freeze`);
    cg.freeze();
  }

  resume(id: string): void {
    const cg = this.cgroup(id);
    if (!cg) throw new DriverError(`container ${id} has no cgroup to thaw`);
    cg.thaw();
  }

  async update(id: string, delta: LinuxResources): Promise<void> {
    await updateContainer(this.runtime, id, delta);
  }

  async exec(id: string, req: ExecRequest, monitor: MonitorOptions, onMonitorReady: () => Promise<void>): Promise<void> {
    const { launch, ready } = monitorLauncher(monitor);
    const started = execInContainer(this.runtime, id, {
      args: req.args, tty: req.tty, consoleSocket: req.tty ? join(monitor.dir, 'console.sock') : undefined,
      env: req.env, user: req.user, additionalGids: req.additionalGids, cwd: req.cwd, caps: req.caps, detach: true, launch,
    });
    started.catch(() => {});
    // The monitor listens before the stage runs (with hold: the stage waits for our connection).
    await Promise.race([ready, started.then(() => ready)]);
    await onMonitorReady();
    await started;
  }
}

/** Finds a program in PATH (runtimes are configured by name, as docker's "runtimes"). */
export function lookPath(name: string): string | undefined {
  if (isAbsolute(name)) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** An external runtime with runc's command line (runc, crun, youki, berth-runtime itself). */
export class ExternalDriver implements OciDriver {
  private readonly path: string;

  constructor(readonly name: string, path: string, private readonly args: string[], private readonly root: string, private readonly bundleDir: (id: string) => string,
    private readonly cgroupsPath: (id: string) => string) {
    const found = lookPath(path);
    if (!found) throw new DriverError(`the OCI runtime "${name}" (${path}) was not found in PATH`);
    this.path = found;
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  private base(): string[] {
    return [...this.args, '--root', this.root];
  }

  private run(args: string[], what: string): string {
    const r = spawnSync(this.path, [...this.base(), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    if (r.status !== 0) {
      const msg = (r.stderr || r.stdout || '').trim().split('\n').pop() || `exit status ${r.status ?? r.signal}`;
      throw new DriverError(`${this.name} ${what}: ${msg}`);
    }
    return r.stdout;
  }

  private lastLogError(logFile: string): string | undefined {
    let text = '';
    try { text = readFileSync(logFile, 'utf8'); } catch { return undefined; }
    const lines = text.trim().split('\n').filter(Boolean);
    for (const line of lines.reverse()) {
      try {
        const e = JSON.parse(line) as { level?: string; msg?: string };
        if (e.level === 'error' || e.level === 'fatal') return e.msg;
      } catch {
        return line;
      }
    }
    return undefined;
  }

  async create(id: string, bundle: string, monitor: MonitorOptions): Promise<void> {
    const logFile = join(monitor.dir, 'runtime.log');
    const argv = [this.path, ...this.base(), '--log', logFile, '--log-format', 'json', 'create', '--bundle', bundle,
      ...(monitor.tty ? ['--console-socket', join(monitor.dir, 'console.sock')] : []), id];
    await monitorCommand(monitor, argv);
    const conn = await MonitorConnection.connect(monitor.dir);
    try {
      conn.onOutput(() => {});
      const status = await conn.setupDone;
      if (status !== 0) throw new DriverError(`${this.name} create: ${this.lastLogError(logFile) ?? `exit status ${status}`}`);
    } finally {
      conn.close();
    }
  }

  start(id: string): void { this.run(['start', id], 'start'); }

  pid(id: string): number {
    const st = JSON.parse(this.run(['state', id], 'state')) as { pid?: number };
    return st.pid ?? 0;
  }

  kill(id: string, signal: number, all = false): void {
    this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)], 'kill');
  }

  delete(id: string): void {
    const r = spawnSync(this.path, [...this.base(), 'delete', '--force', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    if (r.status !== 0 && !/not exist|does not exist|not found|no such/i.test(r.stderr ?? '')) {
      throw new DriverError(`${this.name} delete: ${(r.stderr ?? '').trim()}`);
    }
  }

  pids(id: string): number[] {
    const out = this.run(['ps', '--format', 'json', id], 'ps');
    return (JSON.parse(out) as number[] | null) ?? [];
  }

  cgroup(id: string): CgroupManager | undefined {
    // The engine gives every container cgroupsPath <cgroup parent>/<id> (cgroupfs); the runtime made it there.
    return openCgroup({ containerId: id, cgroupsPath: this.cgroupsPath(id) });
  }

  pause(id: string): void { this.run(['pause', id], 'pause'); }
  resume(id: string): void { this.run(['resume', id], 'resume'); }

  async update(id: string, delta: LinuxResources): Promise<void> {
    const r = spawnSync(this.path, [...this.base(), 'update', '--resources', '-', id], { input: JSON.stringify(delta), encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new DriverError(`${this.name} update: ${(r.stderr ?? '').trim()}`);
  }

  async exec(id: string, req: ExecRequest, monitor: MonitorOptions, onMonitorReady: () => Promise<void>): Promise<void> {
    const bundleSpec = JSON.parse(readFileSync(join(this.bundleDir(id), 'config.json'), 'utf8')) as Spec;
    const base = bundleSpec.process!;
    const [uid, gid] = (req.user ?? `${base.user.uid}:${base.user.gid}`).split(':').map(Number);
    const env = [...(base.env ?? [])];
    for (const e of req.env ?? []) {
      const k = e.split('=', 1)[0];
      const i = env.findIndex((x) => x.split('=', 1)[0] === k);
      if (i >= 0) env[i] = e; else env.push(e);
    }
    const caps = base.capabilities ? { ...base.capabilities } : undefined;
    if (caps && req.caps?.length) {
      for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...new Set([...(caps[set] ?? []), ...req.caps])];
    }
    const p: Process = {
      ...base, terminal: req.tty, args: req.args, env, cwd: req.cwd || base.cwd,
      user: { uid: uid!, gid: gid ?? uid!, additionalGids: req.additionalGids ?? base.user.additionalGids },
      capabilities: caps,
    };
    const processFile = join(monitor.dir, 'process.json');
    mkdirSync(monitor.dir, { recursive: true, mode: 0o700 });
    writeFileSync(processFile, JSON.stringify(p));
    const logFile = join(monitor.dir, 'runtime.log');
    const argv = [this.path, ...this.base(), '--log', logFile, '--log-format', 'json', 'exec', '--detach', '--process', processFile,
      ...(req.tty ? ['--console-socket', join(monitor.dir, 'console.sock')] : []), id];
    await monitorCommand(monitor, argv);
    await onMonitorReady();
    const probe = await MonitorConnection.connect(monitor.dir);
    try {
      probe.onOutput(() => {});
      const status = await probe.setupDone;
      if (status !== 0) throw new DriverError(`${this.name} exec: ${this.lastLogError(logFile) ?? `exit status ${status}`}`);
    } finally {
      probe.close();
    }
  }
}

