// berth-runtime: runc's command line over the runtime library.
import { Command, Option } from 'commander';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCgroup } from './cgroups/index.ts';
import { DEFAULT_ROOT, Runtime } from './container.ts';
import { defaultSpec } from './default-spec.ts';
import { checkStateRootUsable, defaultStateRoot, parseRootlessFlag, prepareXdgStateRoot, stateOwner } from './rootless.ts';
import { RuntimeError } from './errors.ts';
import { features } from './features.ts';
import { registerEvents } from './events.ts';
import { registerUpdate } from './update.ts';
import { execInContainer } from './exec.ts';
import { parseSignal } from './signals.ts';
import { OCI_VERSION, statusOf } from './state.ts';
import { mark } from './timing.ts';
import { writeStderr, writeStdout } from './output.ts';

const VERSION = '0.1.0';

interface GlobalOptions {
  root: string;
  rootless?: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug?: boolean;
  systemdCgroup?: boolean;
}

function makeLogger(opts: GlobalOptions) {
  return (level: 'debug' | 'info' | 'warning' | 'error', message: string): void => {
    if (opts.log) {
      const time = new Date().toISOString();
      const line = opts.logFormat === 'json'
        ? JSON.stringify({ level: level === 'warning' ? 'warning' : level, msg: message, time })
        : `time="${time}" level=${level} msg=${JSON.stringify(message)}`;
      try { appendFileSync(opts.log, `${line}\n`); } catch { /* logging must not fail the operation */ }
    }
    if (level === 'error' || level === 'warning' || (level === 'debug' && opts.debug && !opts.log)) {
      writeStderr(level === 'error' ? `berth-runtime: ${message}\n` : `berth-runtime: ${level}: ${message}\n`);
    }
  };
}

function intOption(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new RuntimeError(`--${name}: expected a non-negative integer, got "${value}"`);
    return Number(value);
  };
}

export function buildProgram(): Command {
  const program = new Command('berth-runtime');
  let globals!: GlobalOptions;
  let runtime!: Runtime;
  let log!: ReturnType<typeof makeLogger>;
  // As runc: an unprivileged caller's state goes to $XDG_RUNTIME_DIR/berth (rootless.ts).
  const stateRoot = defaultStateRoot(DEFAULT_ROOT);

  program
    .description('Berth\'s OCI runtime: runs OCI bundles with runc\'s command line')
    .option('--root <dir>', 'directory for container state (tmpfs recommended)', stateRoot.root)
    .option('--log <file>', 'write log lines to this file (default: stderr only)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
    .option('--debug', 'verbose logging')
    .option('--systemd-cgroup', 'use systemd to manage cgroups (not supported)')
    .option('--criu <path>', 'ignored (checkpointing is not supported)')
    .option('--rootless <value>', 'ignore cgroup permission errors: true, false or auto (auto: when not root, as runc)')
    .version(`berth-runtime version ${VERSION}\nspec: ${OCI_VERSION}`, '-v, --version')
    .showHelpAfterError(false)
    // Global options go before the command (as runc's); `exec` passes everything after its id through.
    .enablePositionalOptions()
    .hook('preAction', (_program, action) => {
      globals = program.opts<GlobalOptions>();
      const rootless = parseRootlessFlag(globals.rootless);
      if (program.getOptionValueSource('root') === 'default') {
        if (stateRoot.xdg) prepareXdgStateRoot(globals.root);
        else if (action.name() === 'create' || action.name() === 'run') checkStateRootUsable(globals.root);
      }
      log = makeLogger(globals);
      if (globals.systemdCgroup) throw new RuntimeError('--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths');
      runtime = new Runtime({ root: globals.root, debug: globals.debug, log, rootless });
    });

  program.command('spec')
    .description('write a default config.json into the bundle')
    .option('-b, --bundle <dir>', 'bundle directory', '.')
    .option('--rootless', 'a spec for running as an unprivileged user')
    .action((opts: { bundle: string; rootless?: boolean }) => {
      const path = join(resolve(opts.bundle), 'config.json');
      if (existsSync(path)) throw new RuntimeError(`${path} already exists; remove it first`);
      writeFileSync(path, `${JSON.stringify(defaultSpec({ rootless: opts.rootless }), null, '\t')}\n`);
    });

  const createOptions = (cmd: Command) => cmd
    .option('-b, --bundle <dir>', 'bundle directory (holding config.json)', '.')
    .option('--console-socket <path>', 'unix socket that receives the pty master when process.terminal is true')
    .option('--pid-file <path>', 'write the init\'s pid to this file')
    .option('--no-pivot', 'use chroot instead of pivot_root (for ramdisk roots)')
    .option('--no-new-keyring', 'keep the caller\'s session keyring')
    .option('--preserve-fds <n>', 'pass this many extra fds (from 3) to the container', intOption('preserve-fds'), 0)
    .argument('<id>', 'container id');

  type CreateFlags = { bundle: string; consoleSocket?: string; pidFile?: string; pivot: boolean; newKeyring: boolean; preserveFds: number; detach?: boolean };
  const toCreate = (o: CreateFlags) => ({
    bundle: o.bundle,
    consoleSocket: o.consoleSocket,
    pidFile: o.pidFile,
    noPivot: o.pivot === false,
    noNewKeyring: o.newKeyring === false,
    preserveFds: o.preserveFds,
  });

  createOptions(program.command('create').description('create a container (its process waits for start)'))
    .action(async (id: string, o: CreateFlags) => {
      await runtime.create(id, toCreate(o));
    });

  createOptions(program.command('run').description('create and start a container; waits for it unless --detach'))
    .option('-d, --detach', 'return after start')
    .option('--keep', 'keep the stopped container (its state) after it exits, for delete later')
    .action(async (id: string, o: CreateFlags & { keep?: boolean }) => {
      const code = await runtime.run(id, { ...toCreate(o), detach: o.detach, keep: o.keep });
      process.exitCode = code;
    });

  const collect = (v: string, prev: string[]) => [...prev, v];
  program.command('exec').description('run a new process inside a container')
    .option('-p, --process <file>', 'an OCI process object (JSON) to run instead of the container\'s process and the flags')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--console-socket <path>', 'unix socket that receives the pty master (with --tty)')
    .option('--cwd <dir>', 'working directory in the container')
    .option('-e, --env <K=V>', 'set an environment variable (repeatable)', collect, [])
    .option('-u, --user <uid[:gid]>', 'user (and group) to run as')
    .option('-g, --additional-gids <gid>', 'an additional group (repeatable)', collect, [])
    .option('-c, --cap <cap>', 'add a capability (repeatable)', collect, [])
    .option('--no-new-privs', 'set no_new_privs for the process')
    .option('-d, --detach', 'return once the process has started')
    .option('--pid-file <path>', 'write the process\'s pid to this file')
    .option('--preserve-fds <n>', 'pass this many extra fds (from 3) to the process', intOption('preserve-fds'), 0)
    .option('--apparmor <profile>', 'AppArmor profile (not supported)')
    .option('--process-label <label>', 'SELinux label (not supported)')
    .option('--ignore-paused', 'allow exec in a paused container')
    .option('--cgroup <path>', 'sub-cgroup to run in (not supported)')
    .argument('<id>', 'container id').argument('[command...]', 'the command and its arguments')
    .passThroughOptions()
    .action(async (id: string, command: string[], o: {
      process?: string; tty?: boolean; consoleSocket?: string; cwd?: string; env: string[]; user?: string; additionalGids: string[];
      cap: string[]; newPrivs: boolean; detach?: boolean; pidFile?: string; preserveFds: number; apparmor?: string; processLabel?: string;
      ignorePaused?: boolean; cgroup?: string;
    }) => {
      try {
        if (o.cgroup !== undefined) throw new RuntimeError('--cgroup: running in a sub-cgroup is not supported');
        const gids = o.additionalGids.map((g) => {
          if (!/^\d+$/.test(g)) throw new RuntimeError(`--additional-gids: expected a non-negative integer, got "${g}"`);
          return Number(g);
        });
        if (!o.process && command.length === 0) throw new RuntimeError('exec: name the command to run (or pass --process)');
        process.exitCode = await execInContainer(runtime, id, {
          processFile: o.process, args: command, tty: o.tty, consoleSocket: o.consoleSocket, cwd: o.cwd, env: o.env,
          user: o.user, additionalGids: gids, caps: o.cap, noNewPrivs: o.newPrivs === false, detach: o.detach,
          pidFile: o.pidFile, preserveFds: o.preserveFds, apparmor: o.apparmor, processLabel: o.processLabel,
          ignorePaused: o.ignorePaused,
        });
      } catch (err) {
        // As runc: a failed exec exits 255, so it is told apart from the process's own status.
        throw err instanceof RuntimeError ? new RuntimeError(err.message, 255) : err;
      }
    });

  program.command('start').description('start a created container').argument('<id>')
    .action((id: string) => runtime.start(id));

  program.command('state').description('print the state of a container as JSON').argument('<id>')
    .action((id: string) => {
      writeStdout(`${JSON.stringify(runtime.state(id), null, '  ')}\n`);
    });

  program.command('kill').description('send a signal to the container\'s init (default SIGTERM)')
    .option('-a, --all', 'send it to every process in the container')
    .argument('<id>').argument('[signal]', 'signal name or number', 'SIGTERM')
    .action((id: string, signal: string, o: { all?: boolean }) => runtime.kill(id, parseSignal(signal), o.all));

  program.command('delete').description('delete a container (and its resources)')
    .option('-f, --force', 'kill it first if it is running')
    .argument('<id...>')
    .action((ids: string[], o: { force?: boolean }) => {
      let failed: Error | undefined;
      for (const id of ids) {
        try { runtime.delete(id, o.force); } catch (err) { failed = err as Error; if (ids.length > 1) log('error', (err as Error).message); }
      }
      if (failed) { if (ids.length > 1) throw new RuntimeError('some containers could not be deleted'); throw failed; }
    });

  program.command('list').alias('ls').description('list containers')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'only ids')
    .action((o: { format: string; quiet?: boolean }) => {
      const list = runtime.list();
      if (o.quiet) { for (const c of list) writeStdout(`${c.id}\n`); return; }
      if (o.format === 'json') {
        writeStdout(`${JSON.stringify(list.map((c) => ({ ociVersion: c.ociVersion, id: c.id, pid: c.pid ?? 0, status: c.status, bundle: c.bundle, rootfs: c.rootfs, created: c.created, owner: stateOwner(join(globals.root, c.id)), annotations: c.annotations })))}\n`);
        return;
      }
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...list.map((c) => [c.id, String(c.pid ?? 0), c.status, c.bundle, c.created, stateOwner(join(globals.root, c.id))])];
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows) writeStdout(`${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] + 3))).join('')}\n`);
    });

  program.command('ps').description('list the processes in a container')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .argument('<id>').argument('[ps-args...]', 'arguments for ps(1)')
    .passThroughOptions()
    .action(async (id: string, psArgs: string[], o: { format: string }) => {
      const pids = runtime.pids(id);
      if (o.format === 'json') { writeStdout(`${JSON.stringify(pids)}\n`); return; }
      const { execFileSync } = await import('node:child_process');
      const out = execFileSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' }).split('\n');
      const header = out[0];
      const pidCol = header.trim().split(/\s+/).indexOf('PID');
      writeStdout(`${header}\n`);
      for (const line of out.slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (pidCol >= 0 && pids.includes(Number(cols[pidCol]))) writeStdout(`${line}\n`);
      }
    });

  for (const [name, freeze] of [['pause', true], ['resume', false]] as const) {
    program.command(name).description(freeze ? 'freeze every process of a container' : 'thaw a paused container').argument('<id>')
      .action((id: string) => {
        const record = runtime.store.load(id);
        if (statusOf(runtime.store, record) === 'stopped') throw new RuntimeError(`container "${id}" is not running`);
        if (!record.cgroup) throw new RuntimeError(`container "${id}" has no cgroup to freeze`);
        const cgroup = loadCgroup(record.cgroup);
        if (freeze) cgroup.freeze(); else cgroup.thaw();
      });
  }

  registerUpdate(program, () => ({ runtime, log }));
  registerEvents(program, () => ({ runtime, log }));

  program.command('features').description('print what this runtime supports (runtime-spec features JSON)')
    .action(() => { writeStdout(`${JSON.stringify(features(), null, '    ')}\n`); });

  program.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  mark('cli loaded');
  const program = buildProgram();
  const globalsForLog = (): GlobalOptions => program.opts<GlobalOptions>();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as Error & { code?: string; exitCode?: number };
    if (e.code?.startsWith('commander.')) {
      // --help and --version exit 0; usage errors were already printed by commander.
      process.exitCode = e.exitCode ?? 1;
      return;
    }
    const message = e instanceof RuntimeError ? e.message : `${e.message}${process.env.BERTH_DEBUG ? `\n${e.stack}` : ''}`;
    makeLogger(globalsForLog())('error', message);
    process.exitCode = e instanceof RuntimeError ? e.exitCode : 1;
  }
}

void main(process.argv);
