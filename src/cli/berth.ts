// berth: Docker's command line over the Engine API, and `berth daemon`, which serves it.
//
// Global options (before or after the command, as docker's): -H/--host, --data-root,
// --exec-root, --config-file (the last three matter to an auto-started daemon, see connect.ts),
// -D/--debug. Exit status: 0, 1 for errors, 125 for usage errors (as docker), or the command's.
import { Command, CommanderError, Option } from 'commander';
import { writeStderr, writeStdout } from '../runtime/output.ts';
import { BERTH_VERSION, GIT_COMMIT } from '../api/version.ts';
import { ApiResponseError, DaemonConnectionError } from './client.ts';
import { connectClient, HostError, type GlobalOptions } from './connect.ts';
import { diskUsageCommand, eventsCommand, ExitError, infoCommand, versionCommand } from './commands/system.ts';
import { TemplateError } from './format/template.ts';
import { registerBuildCommands } from './commands/build.ts';
import { registerImageCommands } from './commands/register-images.ts';
import { registerContainerManageCommands } from './commands/register-containers-manage.ts';
import { registerNetworkCommands } from './commands/networks.ts';
import { rewriteHistoryHuman } from './commands/images.ts';
import { protectRawArgs, registerContainerRunCommands } from './commands/containers-run.ts';
import { registerVolumeCommands } from './commands/volumes.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface RawGlobals {
  host?: string[];
  dataRoot?: string;
  execRoot?: string;
  configFile?: string;
  debug?: boolean;
}

export function buildProgram(): Command {
  const program = new Command('berth');
  program
    .description('A container system with Docker\'s commands, served by `berth daemon` over the Docker Engine API')
    .usage('[OPTIONS] COMMAND')
    .option('-H, --host <address>', 'daemon socket to connect to, unix:///path (default unix://<exec-root>/berth.sock; env BERTH_HOST); repeatable for `daemon`', collect)
    .option('--data-root <dir>', 'root of persistent state, for an auto-started daemon (default /var/lib/berth)')
    .option('--exec-root <dir>', 'root of runtime state and the default socket (default /run/berth)')
    .option('--config-file <file>', 'daemon configuration file, for an auto-started daemon (default /etc/berth/daemon.json)')
    .option('-D, --debug', 'enable debug mode')
    .version(`Berth version ${BERTH_VERSION}, build ${GIT_COMMIT}`, '-v, --version', 'print version information and quit')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("See 'berth --help'.")
    .exitOverride();

  const globals = (): GlobalOptions => {
    const g = program.opts<RawGlobals>();
    if (g.host && g.host.length > 1) throw new HostError('specify only one -H (several are for `berth daemon`)');
    return { host: g.host?.[0], dataRoot: g.dataRoot, execRoot: g.execRoot, configFile: g.configFile, debug: g.debug };
  };
  const connect = () => connectClient(globals());

  program.command('daemon')
    .description('run the Berth daemon (the Docker Engine API server) in the foreground')
    .addOption(new Option('-G, --group <name>', 'group that may use the API socket (mode 0660; default root only)'))
    .option('-l, --log-level <level>', 'debug, info, warn, error or fatal (default info)')
    .option('--insecure-registry <host>', 'registry reachable over plain HTTP or untrusted TLS (host[:port] or CIDR); repeatable', collect)
    .option('--registry-mirror <url>', 'preferred Docker Hub mirror; repeatable', collect)
    .option('--default-runtime <name>', 'default OCI runtime for containers (default berth)')
    .option('--ui <address>', 'serve the web UI on HOST:PORT (e.g. 127.0.0.1:7780; off by default; loopback unless you name another address)')
    .action(async (opts: { group?: string; logLevel?: string; insecureRegistry?: string[]; registryMirror?: string[]; defaultRuntime?: string; ui?: string }) => {
      const g = program.opts<RawGlobals>();
      // Lazy: the daemon's modules (SQLite, image store) are not loaded for client commands.
      const { runDaemon } = await import('../api/daemon.ts');
      const code = await runDaemon({
        hosts: g.host,
        dataRoot: g.dataRoot,
        execRoot: g.execRoot,
        configFile: g.configFile,
        debug: g.debug,
        logLevel: opts.logLevel,
        group: opts.group,
        insecureRegistries: opts.insecureRegistry,
        registryMirrors: opts.registryMirror,
        defaultRuntime: opts.defaultRuntime,
        ui: opts.ui,
      });
      if (code !== 0) throw new ExitError(code);
    });

  program.command('ui')
    .description('serve the web UI (starting the daemon if needed) and print its address and sign-in token')
    .option('--listen <address>', 'where to serve it when it is not running yet (default 127.0.0.1:7780)')
    .option('-f, --format <format>', '"json" for machine-readable output')
    .action(async (opts: { listen?: string; format?: string }) => {
      const { uiCommand } = await import('./commands/ui.ts');
      await uiCommand(opts, connect);
    });

  program.command('version')
    .description('show the Berth version information')
    .option('-f, --format <template>', 'format the output using a Go template (or "json")')
    .action((opts: { format?: string }) => versionCommand(globals(), opts, connect));

  const addInfo = (parent: Command): void => {
    parent.command('info')
      .description('display system-wide information')
      .option('-f, --format <template>', 'format the output using a Go template (or "json")')
      .action((opts: { format?: string }) => infoCommand(globals(), opts, connect));
  };
  const addEvents = (parent: Command): void => {
    parent.command('events')
      .description('get real time events from the daemon')
      .option('-f, --filter <filter>', 'filter output based on conditions provided (key=value); repeatable', collect)
      .option('--since <time>', 'show all events created since timestamp (Unix, RFC 3339, or a duration like 10m)')
      .option('--until <time>', 'stream events until this timestamp')
      .option('--format <template>', 'format the output using a Go template (or "json")')
      .action((opts: { filter?: string[]; since?: string; until?: string; format?: string }) => eventsCommand(opts, connect));
  };
  addInfo(program);
  addEvents(program);
  const system = program.command('system').description('manage Berth');
  addInfo(system);
  addEvents(system);
  system.command('df')
    .description('show disk usage')
    .option('--format <template>', 'format the output using a Go template (or "json")')
    .action((opts: { format?: string }) => diskUsageCommand(opts, connect));
  registerImageCommands(program, system, connect);
  registerContainerManageCommands(program, connect);
  registerNetworkCommands(program, connect);
  registerVolumeCommands(program, connect);
  registerContainerRunCommands(program, connect);
  registerBuildCommands(program, connect);
  return program;
}

function errorText(e: unknown): string {
  if (e instanceof ApiResponseError) return `Error response from daemon: ${e.message}`;
  if (e instanceof DaemonConnectionError || e instanceof HostError || e instanceof TemplateError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.configureOutput({ writeOut: writeStdout, writeErr: writeStderr });
  try {
    await program.parseAsync(protectRawArgs(rewriteHistoryHuman(argv)), { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 125;
    }
    if (e instanceof ExitError) {
      if (e.message) writeStderr(`${e.message}\n`);
      return e.code;
    }
    writeStderr(`${errorText(e)}\n`);
    if (process.env.BERTH_DEBUG_STACK && e instanceof Error && e.stack) writeStderr(`${e.stack}\n`);
    return 1;
  }
}

// Run when executed (bundle or tsx), not when imported by tests.
const invoked = process.argv[1] ?? '';
if (/berth(\.cjs|\.ts|\.js)?$/.test(invoked)) {
  // Exit explicitly: output is written synchronously, and idle keep-alive sockets or a
  // finished daemon's leftovers must not hold the process open.
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
