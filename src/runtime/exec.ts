// `berth-runtime exec`: a new process inside an existing container, as runc's exec.
//
// The process joins every namespace of the container's init that differs from the runtime's own
// (/proc/<init>/ns/<type>, user first, mnt last), the container's cgroup, and runs with the
// process settings of --process (an OCI process object) or of the container's config.json process
// overridden by the flags. The container's seccomp filter and rlimits apply to it as well.
// The plan uses the same opcodes as create (native/PLAN.md), without FIFO/WAIT_START: the
// process starts at once.
import { readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadCgroup } from './cgroups/index.ts';
import type { Runtime } from './container.ts';
import { ConfigError, RuntimeError, StateError } from './errors.ts';
import { Op, Plan } from './plan.ts';
import { addLateSeccomp, addPersonality, addPrivilegeDrop, addProcessSetup, addSeccompListener, personalityValue, prepareProcess } from './compile.ts';
import { loadSpec, validateSpec } from './spec.ts';
import type { Process, Spec, State } from './spec-types.ts';
import { runStage, type StageLauncher } from './stage.ts';
import { initAlive, stateJson, statusOf, type ContainerRecord } from './state.ts';


/** setns(2) type names in the order they are joined: user first (it grants the capabilities the
 * others need), mnt last (after it the host's paths are no longer visible). */
const JOIN_ORDER = ['user', 'ipc', 'uts', 'net', 'pid', 'cgroup', 'time', 'mnt'] as const;
type NsName = (typeof JOIN_ORDER)[number];

export interface ExecOptions {
  /** An OCI `process` object (JSON file) to run instead of config.json's process plus the flags. */
  processFile?: string;
  /** The command and its arguments (ignored with processFile). */
  args?: string[];
  tty?: boolean;
  consoleSocket?: string;
  cwd?: string;
  /** K=V entries appended to the environment (a later entry overrides an earlier one). */
  env?: string[];
  /** "uid[:gid]" */
  user?: string;
  additionalGids?: number[];
  /** Capabilities added to the bounding, effective, permitted and ambient sets. */
  caps?: string[];
  noNewPrivs?: boolean;
  detach?: boolean;
  pidFile?: string;
  preserveFds?: number;
  apparmor?: string;
  processLabel?: string;
  ignorePaused?: boolean;
  /** See StageOptions.launch (the engine runs exec'd processes under a monitor, detached). */
  launch?: StageLauncher;
}

/** What the plan needs to know about the container it enters. */
export interface ExecTarget {
  id: string;
  /** The container's rootfs on the host (used when it has no mount namespace of its own). */
  rootfs: string;
  /** cgroup.procs files of the container's cgroup. */
  cgroupProcs: string[];
  /** Namespaces to join, in JOIN_ORDER: [setns type, path, the link it must read (e.g. "net:[4026532201]")]. */
  namespaces: [NsName, string, string][];
  /** The joined user namespace denies setgroups(2). */
  setgroupsDenied: boolean;
  /** The container's state, for a seccomp listener (SCMP_ACT_NOTIFY). */
  state?: State;
}

export interface ExecPlanOptions {
  consoleSocket?: string;
  /** Foreground: the stage stays as the process's parent and reports its exit status. */
  stay: boolean;
  preserveFds?: number;
}

// ---- the process -----------------------------------------------------------------------------

/** Validates an OCI process object with config.json's rules (messages name process.<field>). */
export function validateProcess(value: unknown, where: string): asserts value is Process {
  try {
    validateSpec({ ociVersion: '1.0.0', root: { path: 'rootfs' }, process: value }, where);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where}: process must be a JSON object`);
}

/** Environment with later entries overriding earlier ones of the same name (first position kept). */
export function mergeEnv(...lists: (string[] | undefined)[]): string[] {
  const byName = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list ?? []) {
      const eq = entry.indexOf('=');
      const name = eq < 0 ? entry : entry.slice(0, eq);
      byName.set(name, entry);
    }
  }
  return [...byName.values()];
}

function parseId(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 4294967294) throw new RuntimeError(`--user: invalid ${what} "${text}" (expected uid[:gid], numeric)`);
  return Number(text);
}

/**
 * The process to run: --process's object (settings it leaves out — capabilities, rlimits — come
 * from the container's config, as in runc), or config.json's process with the flags applied.
 */
export function execProcess(config: Spec, opts: ExecOptions): Process {
  if (opts.apparmor) throw new ConfigError('--apparmor: AppArmor is not available on this host');
  if (opts.processLabel) throw new ConfigError('--process-label: SELinux is not available on this host');
  let p: Process;
  if (opts.processFile) {
    const file = resolve(opts.processFile);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--process ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    validateProcess(value, `--process ${file}`);
    p = { ...value };
    if (p.capabilities === undefined && config.process?.capabilities) p.capabilities = config.process.capabilities;
    if (!p.rlimits?.length && config.process?.rlimits) p.rlimits = config.process.rlimits;
    p.env = mergeEnv(p.env);
  } else {
    if (!config.process) throw new ConfigError('config.json has no process to base the exec on: pass --process');
    const base = config.process;
    p = {
      ...base,
      user: { ...base.user, additionalGids: [...(base.user.additionalGids ?? []), ...(opts.additionalGids ?? [])] },
      args: opts.args ?? [],
      env: mergeEnv(base.env, opts.env),
      cwd: opts.cwd ?? base.cwd,
      terminal: opts.tty ?? false,
    };
    if (opts.user) {
      const [uid, gid] = opts.user.split(':', 2) as [string, string | undefined];
      p.user.uid = parseId(uid, 'uid');
      if (gid !== undefined) p.user.gid = parseId(gid, 'gid');
    }
    if (opts.caps?.length) {
      const c = base.capabilities ?? {};
      p.capabilities = {
        ...c,
        bounding: [...(c.bounding ?? []), ...opts.caps],
        effective: [...(c.effective ?? []), ...opts.caps],
        permitted: [...(c.permitted ?? []), ...opts.caps],
        ambient: [...(c.ambient ?? []), ...opts.caps],
      };
    }
    if (opts.noNewPrivs) p.noNewPrivileges = true;
    validateProcess(p, 'exec');
  }
  if (!p.args || p.args.length === 0) throw new ConfigError('exec: process args cannot be empty (name the command to run)');
  if (p.apparmorProfile) throw new ConfigError('process.apparmorProfile: AppArmor is not available on this host');
  if (p.selinuxLabel) throw new ConfigError('process.selinuxLabel: SELinux is not available on this host');
  return p;
}

// ---- the plan --------------------------------------------------------------------------------

/** Compiles the exec plan: join cgroup and namespaces, then set the process up and exec it. */
export function compileExec(config: Spec, p: Process, target: ExecTarget, opts: ExecPlanOptions): Plan {
  const plan = new Plan();
  if (p.terminal && !opts.consoleSocket && !opts.stay) {
    throw new ConfigError('--tty with --detach needs --console-socket to receive the pty');
  }
  if (!p.terminal && opts.consoleSocket) throw new ConfigError('--console-socket: only used with --tty (or process.terminal)');
  // Checked before anything runs.
  const prepared = prepareProcess(p, config.linux?.seccomp, target.state);
  const personality = personalityValue(config.linux?.personality);

  // ---- parent: everything that names a host path comes before the namespaces are joined ----
  if (p.oomScoreAdj !== undefined) plan.add(Op.OOM_SCORE_ADJ, p.oomScoreAdj);
  for (const procs of target.cgroupProcs) plan.add(Op.CGROUP_JOIN, procs);
  if (p.terminal && opts.consoleSocket) plan.add(Op.CONSOLE_SOCKET, resolve(opts.consoleSocket));
  else if (p.terminal) plan.add(Op.CONSOLE_PROXY);
  addSeccompListener(plan, prepared);
  let joinsMnt = false;
  for (const [type, path] of target.namespaces) {
    plan.add(Op.SETNS, type, path);
    if (type === 'mnt') joinsMnt = true;
  }
  plan.add(Op.CLONE, 0, opts.stay ? 1 : 0);

  // ---- child ----
  plan.add(Op.SESSION_KEYRING, `_ses.${target.id}`);
  // After setns(mnt) the root is the container's (the mount namespace's root, which the init
  // pivoted into); chroot there all the same so that every later path (cwd, /dev/ptmx, the
  // program) is resolved inside it. Without a mount namespace: chroot into the rootfs, as create.
  plan.add(Op.ROOTFS, joinsMnt ? '/' : target.rootfs);
  plan.add(Op.PIVOT, 2);
  if (p.terminal) plan.add(Op.CONSOLE, p.consoleSize?.height ?? 0, p.consoleSize?.width ?? 0, '');
  addPersonality(plan, personality);
  addProcessSetup(plan, p, prepared, target.rootfs);
  addPrivilegeDrop(plan, p, prepared, target.setgroupsDenied ? '-' : (p.user.additionalGids ?? []).join(','));
  addLateSeccomp(plan, p, prepared);
  plan.add(Op.EXEC, opts.preserveFds ?? 0);
  return plan;
}

// ---- the container ---------------------------------------------------------------------------

function nsLink(pid: number | 'self', type: NsName): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${type}`);
  } catch {
    return undefined;
  }
}

/** The init's namespaces that are not the runtime's own (same inode = same namespace: skipped). */
export function namespacesToJoin(initPid: number): [NsName, string, string][] {
  const out: [NsName, string, string][] = [];
  for (const type of JOIN_ORDER) {
    const theirs = nsLink(initPid, type);
    if (theirs === undefined) {
      if (nsLink('self', type) === undefined) continue;   // the kernel has no such namespace
      throw new StateError(`cannot read the ${type} namespace of the container's init (pid ${initPid}): it has exited`);
    }
    if (theirs !== nsLink('self', type)) out.push([type, `/proc/${initPid}/ns/${type}`, theirs]);
  }
  return out;
}

function setgroupsDenied(initPid: number): boolean {
  try {
    return readFileSync(`/proc/${initPid}/setgroups`, 'utf8').trim() === 'deny';
  } catch {
    return false;
  }
}

function writePidFile(path: string, pid: number): void {
  const target = resolve(path);
  const tmp = join(dirname(target), `.${Date.now()}.${process.pid}.pid`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, target);
}

/** Runs a process in container `id`. Foreground: resolves with its exit status; --detach: with 0
 * once it has started. */
export async function execInContainer(runtime: Runtime, id: string, opts: ExecOptions): Promise<number> {
  const record: ContainerRecord = runtime.store.load(id);
  const status = statusOf(runtime.store, record);
  if (status === 'stopped') throw new StateError(`cannot exec in a stopped container ("${id}")`);
  if (status === 'creating') throw new StateError(`cannot exec in container "${id}": it is still being created`);
  const cgroup = record.cgroup ? loadCgroup(record.cgroup) : undefined;
  if (cgroup && !opts.ignorePaused) {
    let paused = false;
    try { paused = cgroup.frozen(); } catch { /* no freezer */ }
    if (paused) throw new StateError(`cannot exec in a paused container ("${id}"; use --ignore-paused to override)`);
  }

  // The process to base the exec on comes from the bundle's config.json as it is now (runc does
  // the same); the container's confinement (seccomp, namespaces) from the config as created.
  const config = loadSpec(runtime.store.configDir(record));
  const bundleConfig = runtime.store.configDir(record) === record.bundle ? config : loadBundleSpecOr(record.bundle, config);
  const p = execProcess(bundleConfig, opts);
  const target: ExecTarget = {
    id,
    rootfs: record.rootfs,
    cgroupProcs: cgroup ? cgroup.procsFiles() : [],
    namespaces: namespacesToJoin(record.pid),
    setgroupsDenied: false,
    state: stateJson(record, status),
  };
  target.setgroupsDenied = target.namespaces.some(([t]) => t === 'user') && setgroupsDenied(record.pid);
  // As runc: groups that cannot be set are an error, not silently dropped (rootless, own gid only).
  if (target.setgroupsDenied && (p.user.additionalGids ?? []).length > 0) {
    throw new RuntimeError('cannot set additional groups: the container\'s user namespace denies setgroups (a rootless container that maps only your own gid)');
  }
  const stay = !opts.detach;
  const plan = compileExec(config, p, target, { consoleSocket: opts.consoleSocket, stay, preserveFds: opts.preserveFds });
  if (runtime.options.debug) runtime.options.log?.('debug', `exec plan for ${id}:\n${plan.describe()}`);

  // The namespaces are joined through /proc/<init pid>: make sure that pid still is the init.
  if (!initAlive(record)) throw new StateError(`cannot exec in a stopped container ("${id}")`);
  let pidFileError: Error | undefined;
  let wrongNamespaces: Error | undefined;
  const run = runStage(plan, {
    preserveFds: opts.preserveFds,
    launch: opts.launch,
    debug: runtime.options.debug ? (m) => runtime.options.log?.('debug', m) : undefined,
    onPid: (pid) => {
      // Had the init died and its pid been reused meanwhile, the process would be in someone
      // else's namespaces: check them (a process already gone has no links left to compare).
      const wrong = target.namespaces.filter(([type, , link]) => {
        const now = nsLink(pid, type);
        return now !== undefined && now !== link;
      });
      if (wrong.length > 0 || !initAlive(record)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        wrongNamespaces = new StateError(`cannot exec in container "${id}": its init exited while the process was starting`);
        return;
      }
      // Foreground: the pid is all there is to report before the exit; detached: written below,
      // once the process has started.
      if (stay && opts.pidFile) {
        try {
          writePidFile(opts.pidFile, pid);
        } catch (err) {
          pidFileError = err as Error;
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
      }
    },
  });

  if (!stay) {
    const failure = await run.closed;
    if (wrongNamespaces) throw wrongNamespaces;
    if (failure) throw failure;
    const pid = run.pid();
    if (!pid) throw new RuntimeError('the exec stage ended without starting the process');
    if (opts.pidFile) {
      try {
        writePidFile(opts.pidFile, pid);
      } catch (err) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        throw err;
      }
    }
    return 0;
  }

  const forward = (sig: NodeJS.Signals) => {
    const pid = run.pid();
    if (pid > 0) try { process.kill(pid, sig); } catch { /* exited */ }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  try {
    const code = await run.exited;
    if (wrongNamespaces) throw wrongNamespaces;
    if (pidFileError) throw new RuntimeError(`writing the pid file ${opts.pidFile}: ${pidFileError.message}`);
    return code;
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

/** The bundle's config.json, or `fallback` when the bundle is gone or no longer valid. */
function loadBundleSpecOr(bundle: string, fallback: Spec): Spec {
  try {
    return loadSpec(bundle);
  } catch {
    return fallback;
  }
}
