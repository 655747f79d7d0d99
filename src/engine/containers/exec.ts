// Exec instances (POST /containers/{id}/exec, /exec/{id}/start|json|resize). Like dockerd, the
// instances live in memory: they belong to a running container and go with it. Each process
// runs under a monitor of its own (the same binary as the container's), which holds its pty or
// pipes and reports its exit status.
import { randomBytes } from 'node:crypto';
import { MonitorConnection } from '../monitor.ts';
import { ContainerError, type ContainerService } from './service.ts';

export interface ExecConfig {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  DetachKeys?: string;
  Tty?: boolean;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Privileged?: boolean;
  User?: string;
  WorkingDir?: string;
  ConsoleSize?: [number, number] | null;
}

export interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  started: boolean;
  conn?: MonitorConnection;
}

export class ExecService {
  private readonly instances = new Map<string, ExecInstance>();

  constructor(private readonly containers: ContainerService) {}

  create(containerIdOrName: string, config: ExecConfig): string {
    const rec = this.containers.get(containerIdOrName);
    if (!rec.State.Running) throw new ContainerError('conflict', `Container ${rec.Id} is not running`);
    if (rec.State.Paused) throw new ContainerError('conflict', `Container ${rec.Id} is paused, unpause the container before exec`);
    if (!config.Cmd || config.Cmd.length === 0) throw new ContainerError('invalid', 'No exec command specified');
    const id = randomBytes(32).toString('hex');
    this.instances.set(id, { id, containerId: rec.Id, config, running: false, exitCode: null, pid: 0, started: false });
    rec.ExecIDs = [...(rec.ExecIDs ?? []), id];
    this.forget(rec.Id);
    return id;
  }

  get(id: string): ExecInstance {
    const inst = this.instances.get(id);
    if (!inst) throw new ContainerError('not-found', `No such exec instance: ${id}`);
    return inst;
  }

  /** Keeps the list bounded: instances of containers that are gone, and finished ones beyond 100. */
  private forget(containerId: string): void {
    const finished = [...this.instances.values()].filter((i) => i.containerId === containerId && i.exitCode !== null);
    for (const i of finished.slice(0, Math.max(0, finished.length - 100))) this.instances.delete(i.id);
    for (const i of this.instances.values()) if (!this.containers.find(i.containerId)) this.instances.delete(i.id);
  }

  /**
   * Starts the process. Attached (detach=false): resolves with a connection to its stdio once it
   * is running; the caller pipes it and learns the exit from `conn.exited`.
   */
  async start(id: string, opts: { detach: boolean; tty?: boolean; consoleSize?: [number, number] | null }): Promise<MonitorConnection | undefined> {
    const inst = this.get(id);
    if (inst.started) throw new ContainerError('conflict', `Error: Exec command ${id} has already run`);
    const rec = this.containers.get(inst.containerId);
    inst.started = true;
    const tty = opts.tty ?? inst.config.Tty === true;
    let conn: MonitorConnection | undefined;
    try {
      await this.containers.execProcess(rec, {
        execId: id,
        cmd: inst.config.Cmd ?? [],
        tty,
        stdin: inst.config.AttachStdin === true && !opts.detach,
        env: inst.config.Env ?? undefined,
        user: inst.config.User || undefined,
        workingDir: inst.config.WorkingDir || undefined,
        privileged: inst.config.Privileged,
        hold: !opts.detach,
      }, async (dir) => {
        conn = await MonitorConnection.connect(dir);
        inst.conn = conn;
        // Before the process runs (the monitor applies it when the pty arrives): `stty size` as the first command must see it.
        const size = opts.consoleSize ?? inst.config.ConsoleSize;
        if (tty && size && size[0] > 0 && size[1] > 0) conn.resize(size[0], size[1]);
      });
    } catch (err) {
      conn?.close();
      inst.exitCode = exitCodeFor((err as Error).message);
      if (err instanceof ContainerError) throw err;
      throw new ContainerError('invalid', (err as Error).message);
    }
    const c: MonitorConnection | undefined = conn;
    if (!c) throw new ContainerError('unavailable', 'the exec monitor did not start');
    inst.running = true;
    void c.exited.then((code) => { inst.exitCode = code; }, () => { inst.exitCode = inst.exitCode ?? 126; }).finally(() => {
      inst.running = false;
      if (opts.detach) c.close();
    });
    return opts.detach ? undefined : c;
  }

  resize(id: string, rows: number, cols: number): void {
    const inst = this.get(id);
    if (!inst.conn || !inst.running) throw new ContainerError('conflict', `Exec ${id} is not running`);
    inst.conn.resize(rows, cols);
  }

  inspect(id: string): Record<string, unknown> {
    const inst = this.get(id);
    const cmd = inst.config.Cmd ?? [];
    return {
      ID: inst.id,
      Running: inst.running,
      ExitCode: inst.exitCode,
      ProcessConfig: { tty: inst.config.Tty === true, entrypoint: cmd[0] ?? '', arguments: cmd.slice(1), privileged: inst.config.Privileged === true, user: inst.config.User ?? '' },
      OpenStdin: inst.config.AttachStdin === true,
      OpenStderr: inst.config.AttachStderr === true,
      OpenStdout: inst.config.AttachStdout === true,
      CanRemove: false,
      ContainerID: inst.containerId,
      DetachKeys: inst.config.DetachKeys ?? '',
      Pid: inst.pid,
    };
  }
}

function exitCodeFor(message: string): number {
  if (/executable file not found|no such file or directory/i.test(message)) return 127;
  if (/permission denied/i.test(message)) return 126;
  return 126;
}
