// The runtime as a library: create, start, state, kill, delete, run, list.
// The CLI (cli.ts) and, later, the engine call these in-process.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, realpathSync, renameSync, unlinkSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadCgroup, openCgroup } from './cgroups/index.ts';
import type { CgroupManager } from './cgroups/index.ts';
import { sleepSync } from './cgroups/common.ts';
import { compileDeviceFilter } from './cgroups/devices-bpf.ts';
import { cgroupResources, compile } from './compile.ts';
import { NotFoundError, RuntimeError, StateError } from './errors.ts';
import { runHooks, runHooksWarn } from './hooks.ts';
import { loadSpec, namespacesOf } from './spec.ts';
import type { ContainerStatus, Spec, State } from './spec-types.ts';
import { runStage, type StageLauncher } from './stage.ts';
import { rootlessSetup } from './rootless.ts';
import { mark } from './timing.ts';
import { initAlive, procStat, stateJson, StateStore, statusOf, type ContainerRecord } from './state.ts';
import { writeStderr } from './output.ts';

export const DEFAULT_ROOT = '/run/berth-runtime';

export interface RuntimeOptions {
  root?: string;
  /** Where warnings and debug lines go (the CLI points this at --log). */
  log?: (level: 'debug' | 'info' | 'warning' | 'error', message: string) => void;
  debug?: boolean;
  /** --rootless: tolerate cgroups this user cannot write (undefined: auto, as runc; see rootless.ts). */
  rootless?: boolean;
}

export interface CreateOptions {
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** See StageOptions.launch: how the stage is started (the engine's monitor). */
  launch?: StageLauncher;
}

export interface ContainerSummary extends State {
  created: string;
  rootfs: string;
}

export class Runtime {
  readonly store: StateStore;
  private readonly logFn: NonNullable<RuntimeOptions['log']>;

  constructor(readonly options: RuntimeOptions = {}) {
    this.store = new StateStore(resolve(options.root ?? DEFAULT_ROOT));
    this.logFn = options.log ?? ((level, message) => { if (level !== 'debug') writeStderr(`${level}: ${message}\n`); });
  }

  private debug(message: string): void {
    if (this.options.debug) this.logFn('debug', message);
  }

  /** Creates the container: after this the init exists, isolated, waiting for start. */
  async create(id: string, opts: CreateOptions): Promise<ContainerRecord> {
    const { record } = await this.createInternal(id, opts, false);
    return record;
  }

  private async createInternal(id: string, opts: CreateOptions, stay: boolean): Promise<{ record: ContainerRecord; exited: Promise<number> }> {
    mark('create: begin');
    const bundle = resolve(opts.bundle);
    const spec = loadSpec(bundle);
    this.store.reserve(id);
    mark('config loaded, id reserved');
    let cgroup: CgroupManager | undefined;
    let pid = 0;
    let rootfsBoundOnHost: ContainerRecord['rootfsBoundOnHost'];
    try {
      // cgroup v2 has no device files: the stage attaches an eBPF device program instead
      // (CGROUP_DEVICES), so the v2 manager must not refuse the rules (v1 ignores this option).
      // Rootless (rootless.ts): id maps through newuidmap/newgidmap, only the cgroups this user may use, no device rules.
      const rootless = rootlessSetup(spec, id, this.options.rootless, cgroupResources(spec));
      const cg = rootless?.cgroups ? rootless.cgroups.cgroup : openCgroup({ containerId: id, cgroupsPath: spec.linux?.cgroupsPath, devicesHandledExternally: true });
      const resources = rootless?.cgroups ? rootless.cgroups.resources : cgroupResources(spec);
      const cgroupDevices = cg?.version === 2 && !rootless?.cgroups
        ? { dir: cg.toJSON().dirs[0].dir, program: compileDeviceFilter(resources.devices ?? []) }
        : undefined;
      const { plan } = compile(spec, {
        id,
        bundle,
        fifoPath: this.store.fifoPath(id),
        consoleSocket: opts.consoleSocket,
        noPivot: opts.noPivot,
        noNewKeyring: opts.noNewKeyring,
        preserveFds: opts.preserveFds,
        stay,
        warn: (m) => this.logFn('warning', m),
        ...(rootless?.cgroups ? rootless.cgroups.planInputs : this.cgroupPlanInputs(cg!, spec)),
        cgroupDevices,
        idMaps: rootless?.idMaps,
      });
      cgroup = cg;
      rootfsBoundOnHost = !namespacesOf(spec).has('mount') && spec.root!.readonly
        ? { mountsBefore: mountsAt(resolve(bundle, spec.root!.path)) } : undefined;
      mark('plan compiled');
      cg?.create(resources);
      const base = { id, bundle, annotations: spec.annotations ?? {} };
      // Recorded before anything runs, so that a create that dies halfway can still be deleted.
      const self = procStat(process.pid);
      this.store.write({
        ...this.emptyRecord(), ...base, rootfs: resolve(bundle, spec.root!.path), created: new Date().toISOString(),
        cgroup: cg?.toJSON() ?? null, mountsOnHost: !namespacesOf(spec).has('mount'), rootfsBoundOnHost,
        creator: self ? { pid: process.pid, startTime: self.startTime } : undefined,
      });
      // The config as created: exec and update read it from here, never from a bundle that may
      // have changed since (runc keeps it in its state file for the same reason).
      this.store.writeConfig(id, spec);
      mark('cgroup created');
      this.debug(`plan for ${id}:\n${plan.describe()}`);

      const stateFor = (status: ContainerStatus, p: number): State => stateJson({ ...this.emptyRecord(), ...base, pid: p, startTime: '' }, status);
      const run = runStage(plan, {
        preserveFds: opts.preserveFds,
        launch: opts.launch,
        debug: this.options.debug ? (m) => this.debug(m) : undefined,
        onIdMaps: rootless?.onIdMaps,
        onSync: (name, p) => {
          if (name === 'createRuntime') {
            // prestart is the legacy hook that runtime-spec 1.0 ran at start: it sees "created"
            // (as crun and the runtime-tools suite expect); the newer hooks see "creating".
            runHooks('prestart', spec.hooks?.prestart, stateFor('created', p));
            const state = stateFor('creating', p);
            runHooks('createRuntime', spec.hooks?.createRuntime, state);
            return Buffer.from(JSON.stringify(state));
          }
          return Buffer.from(JSON.stringify(stateFor('created', p)));
        },
      });
      mark('stage spawned');
      try {
        pid = await run.ready;
        mark('init ready');
      } catch (err) {
        pid = run.pid();
        throw err;
      }
      const stat = procStat(pid);
      if (!stat) throw new RuntimeError('the container init exited right after setup');
      const record: ContainerRecord = {
        ...base,
        pid,
        startTime: stat.startTime,
        rootfs: resolve(bundle, spec.root!.path),
        created: new Date().toISOString(),
        hooks: { poststart: spec.hooks?.poststart, poststop: spec.hooks?.poststop },
        cgroup: cg?.toJSON() ?? null,
        ownPidNamespace: namespacesOf(spec).has('pid') && !namespacesOf(spec).get('pid')!.path,
        mountsOnHost: !namespacesOf(spec).has('mount'),
        rootfsBoundOnHost,
      };
      this.store.write(record);
      if (opts.pidFile) writePidFile(opts.pidFile, pid);
      if (!stay) run.detach();
      mark('state written');
      return { record, exited: run.exited };
    } catch (err) {
      if (pid > 0) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        waitGone(pid, 2000);
      }
      try { cgroup?.destroy(); } catch (e) { this.logFn('warning', `removing the cgroup: ${(e as Error).message}`); }
      if (!namespacesOf(spec).has('mount')) unmountUnder(resolve(bundle, spec.root!.path), (m) => this.logFn('warning', m), rootfsBoundOnHost?.mountsBefore);
      this.store.remove(id);
      throw err;
    }
  }

  private emptyRecord(): ContainerRecord {
    return { id: '', pid: 0, startTime: '', bundle: '', rootfs: '', created: '', annotations: {}, hooks: {}, cgroup: null, ownPidNamespace: false, mountsOnHost: false };
  }

  private cgroupPlanInputs(cgroup: CgroupManager, spec: Spec): { cgroupProcs: string[]; cgroupMounts?: ReturnType<CgroupManager['mounts']> } {
    const needsMountInfo = (spec.mounts ?? []).some((m) => m.type === 'cgroup' || m.type === 'cgroup2');
    return { cgroupProcs: cgroup.procsFiles(), cgroupMounts: needsMountInfo ? cgroup.mounts() : undefined };
  }

  state(id: string): State {
    const record = this.store.load(id);
    return stateJson(record, statusOf(this.store, record));
  }

  /** Lets the user process run. */
  start(id: string): void {
    const record = this.store.load(id);
    const status = statusOf(this.store, record);
    if (status === 'stopped') throw new StateError(`cannot start container "${id}": it has stopped`);
    if (status === 'creating') throw new StateError(`cannot start container "${id}": it is still being created`);
    if (status === 'running' || status === 'paused') throw new StateError(`cannot start container "${id}": it is already running`);
    const fifo = this.store.fifoPath(id);
    let fd: number;
    try {
      // Non-blocking: fails at once (ENXIO) if the init is no longer waiting on the fifo.
      fd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENXIO') throw new StateError(`cannot start container "${id}": its init process is not waiting (it has exited)`);
      if (code === 'ENOENT') throw new StateError(`cannot start container "${id}": it is already running`);
      throw err;
    }
    try {
      writeSync(fd, '1');
    } finally {
      closeSync(fd);
    }
    try { unlinkSync(fifo); } catch { /* a concurrent start removed it */ }
    // poststart hooks run after the user process has started: wait until the init has exec'd
    // (its startContainer hooks run in between).
    if (record.hooks.poststart?.length) waitExec(record);
    runHooksWarn('poststart', record.hooks.poststart, stateJson(record, 'running'), (m) => this.logFn('warning', m));
  }

  kill(id: string, signal: number, all = false): void {
    const record = this.store.load(id);
    const status = statusOf(this.store, record);
    if (status === 'stopped' || status === 'creating') throw new StateError(`cannot kill container "${id}": it is ${status === 'creating' ? 'still being created' : 'not running'}`);
    if (all && record.cgroup) {
      const cgroup = loadCgroup(record.cgroup);
      for (const p of cgroup.pids()) {
        try { process.kill(p, signal); } catch { /* exited meanwhile */ }
      }
      return;
    }
    try {
      process.kill(record.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new StateError(`cannot kill container "${id}": it is not running`);
      throw err;
    }
  }

  delete(id: string, force = false): void {
    let record: ContainerRecord;
    try {
      record = this.store.load(id);
    } catch (err) {
      if (force && err instanceof NotFoundError) {
        // As runc: a forced delete of a missing container succeeds, and removes half-created leftovers.
        if (existsSync(this.store.dir(id))) this.store.remove(id);
        return;
      }
      throw err;
    }
    const status = statusOf(this.store, record);
    if ((status === 'running' || status === 'paused' || status === 'creating') && !force) {
      throw new StateError(`cannot delete container "${id}" that is not stopped: ${status} (use --force)`);
    }
    if (status === 'created' || status === 'running' || status === 'paused') this.killEverything(record);
    this.destroy(record);
  }

  private killEverything(record: ContainerRecord): void {
    const cgroup = record.cgroup ? loadCgroup(record.cgroup) : undefined;
    // A frozen process cannot act on SIGKILL until it is thawed.
    try { if (cgroup?.frozen()) cgroup.thaw(); } catch { /* no freezer */ }
    // (never pid 0: kill(0) would signal our own process group)
    if (record.pid > 0) try { process.kill(record.pid, 'SIGKILL'); } catch { /* gone */ }
    if (!record.ownPidNamespace && cgroup) {
      for (const p of cgroup.pids()) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    waitGone(record.pid, 5000, record.startTime);
  }

  private destroy(record: ContainerRecord): void {
    if (record.cgroup) {
      const cgroup = loadCgroup(record.cgroup);
      // Processes left in a shared pid namespace would keep the cgroup busy.
      for (const p of cgroup.pids()) {
        try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      }
      try {
        if (cgroup.frozen()) cgroup.thaw();
      } catch { /* no freezer */ }
      try {
        cgroup.destroy();
      } catch (err) {
        this.logFn('warning', `removing the cgroup of "${record.id}": ${(err as Error).message}`);
      }
    }
    if (record.mountsOnHost) unmountUnder(record.rootfs, (m) => this.logFn('warning', m), record.rootfsBoundOnHost?.mountsBefore);
    this.store.remove(record.id);
    runHooksWarn('poststop', record.hooks.poststop, stateJson(record, 'stopped'), (m) => this.logFn('warning', m));
  }

  /** create + start in the foreground: resolves with the container's exit status. */
  async run(id: string, opts: CreateOptions & { detach?: boolean; keep?: boolean }): Promise<number> {
    if (opts.detach) {
      await this.create(id, opts);
      this.start(id);
      return 0;
    }
    const { record, exited } = await this.createInternal(id, opts, true);
    const forward = (sig: NodeJS.Signals) => {
      try { process.kill(record.pid, sig); } catch { /* exited */ }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
    for (const s of signals) process.on(s, forward);
    try {
      this.start(id);
      mark('started');
      const code = await exited;
      mark('init exited');
      return code;
    } finally {
      for (const s of signals) process.off(s, forward);
      try {
        const latest = this.store.load(id);
        if (statusOf(this.store, latest) !== 'stopped') this.killEverything(latest);
        // --keep: the stopped container stays (state, cgroup) until `delete`, as with runc.
        if (!opts.keep) this.destroy(latest);
        mark('deleted');
      } catch (err) {
        this.logFn('warning', `cleaning up "${id}": ${(err as Error).message}`);
      }
    }
  }

  list(): ContainerSummary[] {
    const out: ContainerSummary[] = [];
    for (const id of this.store.list()) {
      try {
        const record = this.store.load(id);
        out.push({ ...stateJson(record, statusOf(this.store, record)), created: record.created, rootfs: record.rootfs });
      } catch { /* deleted meanwhile */ }
    }
    return out;
  }

  /** Pids of every process in the container (its cgroup). */
  pids(id: string): number[] {
    const record = this.store.load(id);
    if (!record.cgroup) return initAlive(record) ? [record.pid] : [];
    return loadCgroup(record.cgroup).pids();
  }
}

/** Waits until the process is gone or a zombie (its reaper may not be us). */
function waitGone(pid: number, timeoutMs: number, startTime?: string): void {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const stat = procStat(pid);
    if (!stat || stat.state === 'Z' || stat.state === 'X' || (startTime && stat.startTime !== startTime)) return;
    sleepSync(2);
  }
}

/** Waits until the init no longer runs the stage (it exec'd the user process, or it died). */
function waitExec(record: ContainerRecord, timeoutMs = 10000): void {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && initAlive(record)) {
    let exe = '';
    try { exe = readlinkSync(`/proc/${record.pid}/exe`); } catch { return; }
    if (!exe.startsWith('/memfd:berth-stage')) return;
    sleepSync(1);
  }
}

/**
 * Unmounts everything mounted below `dir` in our mount namespace, deepest first: what a
 * container without a mount namespace of its own mounted into its rootfs on the host.
 */
const decodeMountPoint = (p: string) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
const mountPoints = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => decodeMountPoint(line.split(' ')[4] ?? ''));

/** The path as mountinfo spells it (symlinks resolved). */
function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

/** How many mounts are stacked on `dir`. */
function mountsAt(dir: string): number {
  const real = realDir(dir);
  return mountPoints().filter((m) => m === real).length;
}

/** Unmounts what the container mounted below `dir` (deepest first), and with `keep` the mounts on
 * `dir` itself above the first `keep` (the rootfs bind the runtime made; never the owner's). */
function unmountUnder(given: string, warn: (message: string) => void, keep?: number): void {
  const dir = realDir(given);
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const targets = mountPoints()
    // Strictly below: the rootfs itself may be a mount its owner made (an engine's overlay).
    .filter((m) => m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
  for (const target of targets) {
    const r = spawnSync('umount', ['-l', '-n', target], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) warn(`unmounting ${target}: ${r.stderr?.toString().trim() || `umount exited with ${r.status}`}`);
  }
  for (let extra = keep === undefined ? 0 : mountsAt(dir) - keep; extra > 0; extra--) {
    const r = spawnSync('umount', ['-l', '-n', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) {
      warn(`unmounting ${dir}: ${r.stderr?.toString().trim() || `umount exited with ${r.status}`}`);
      break;
    }
  }
}

function writePidFile(path: string, pid: number): void {
  const target = resolve(path);
  const tmp = join(dirname(target), `.${Date.now()}.${process.pid}.pid`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, target);
}
