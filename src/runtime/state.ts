// Per-container state on disk: <root>/<id>/state.json and the exec fifo.
// A container's status is derived from its init process, never trusted from the file.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCgroup, type SavedCgroup } from './cgroups/index.ts';
import { NotFoundError, RuntimeError } from './errors.ts';
import type { ContainerStatus, Hooks, Spec, State } from './spec-types.ts';

export const OCI_VERSION = '1.2.0';
const ID_PATTERN = /^[\w+\-.]+$/;

export interface ContainerRecord {
  id: string;
  pid: number;
  /** Start time of the init (field 22 of /proc/<pid>/stat): guards against pid reuse. */
  startTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  annotations: Record<string, string>;
  /** Hooks that run after create: poststart on start, poststop on delete. */
  hooks: Pick<Hooks, 'poststart' | 'poststop'>;
  cgroup: SavedCgroup | null;
  /** Whether the init has its own pid namespace (then killing it kills every process). */
  ownPidNamespace: boolean;
  /** No mount namespace of its own: its mounts are in the host's table, under the rootfs. */
  mountsOnHost?: boolean;
  /** …and the runtime binds the rootfs onto itself (root.readonly without a mount ns): how many
   * mounts the rootfs path had before, so that delete removes only the runtime's own. */
  rootfsBoundOnHost?: { mountsBefore: number };
  /** Set while `create` runs (pid is 0 then): the creating process, so that a crashed create is
   * seen as stopped and `delete --force` can remove what it left (cgroup, stage processes). */
  creator?: { pid: number; startTime: string };
}

export function validateId(id: string): void {
  if (!id) throw new RuntimeError('container id cannot be empty');
  if (!ID_PATTERN.test(id) || id === '.' || id === '..') throw new RuntimeError(`invalid container id "${id}": use letters, digits, _ + - .`);
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  fifoPath(id: string): string {
    return join(this.dir(id), 'exec.fifo');
  }

  /** Reserves the id: fails if a container with this id exists. */
  reserve(id: string): string {
    validateId(id);
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dir(id);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError(`container with id "${id}" already exists`);
      throw err;
    }
    return dir;
  }

  write(record: ContainerRecord): void {
    const dir = this.dir(record.id);
    const tmp = join(dir, 'state.json.tmp');
    // The state root is runtime state (tmpfs by default, gone at reboot): rename makes the update
    // atomic; an fsync would only add latency to every create.
    writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
    renameSync(tmp, join(dir, 'state.json'));
  }

  /** The container's config.json as it was at create. */
  writeConfig(id: string, spec: Spec): void {
    writeFileSync(join(this.dir(id), 'config.json'), JSON.stringify(spec), { mode: 0o600 });
  }

  /** Where `writeConfig` put it: a directory `loadSpec` can read (falls back to the bundle). */
  configDir(record: Pick<ContainerRecord, 'id' | 'bundle'>): string {
    return existsSync(join(this.dir(record.id), 'config.json')) ? this.dir(record.id) : record.bundle;
  }

  load(id: string): ContainerRecord {
    validateId(id);
    let text: string;
    try {
      text = readFileSync(join(this.dir(id), 'state.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`container "${id}" does not exist`);
      throw err;
    }
    return JSON.parse(text) as ContainerRecord;
  }

  list(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(join(this.root, e.name, 'state.json')))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}

function isFrozen(saved: SavedCgroup): boolean {
  try {
    return loadCgroup(saved).frozen();
  } catch {
    return false; // no freezer on this host: it cannot be paused either
  }
}

/** Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat, or null if the process is gone. */
export function procStat(pid: number): { startTime: string; state: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], startTime: rest[19] };
}

/** Whether the recorded init is alive (a zombie or a reused pid counts as dead). */
export function initAlive(record: Pick<ContainerRecord, 'pid' | 'startTime'>): boolean {
  if (record.pid <= 0) return false;
  const stat = procStat(record.pid);
  return stat !== null && stat.startTime === record.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

export function statusOf(store: StateStore, record: ContainerRecord): ContainerStatus {
  if (record.pid === 0) return record.creator && initAlive(record.creator) ? 'creating' : 'stopped';
  if (!initAlive(record)) return 'stopped';
  if (existsSync(store.fifoPath(record.id))) return 'created';
  return record.cgroup && isFrozen(record.cgroup) ? 'paused' : 'running';
}

export function stateJson(record: ContainerRecord, status: ContainerStatus): State {
  const state: State = { ociVersion: OCI_VERSION, id: record.id, status, bundle: record.bundle };
  state.pid = status === 'stopped' ? 0 : record.pid;
  if (Object.keys(record.annotations).length > 0) state.annotations = record.annotations;
  return state;
}
