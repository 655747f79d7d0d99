// The container inspection and management commands on the `berth` command line, at the top level
// (ps, inspect, top, stats, port, rename, pause, unpause, update, cp, diff, export, commit) and
// under `berth container` (ls/list/ps, inspect, …, prune), with docker's flags. Argument counts are
// checked by the commands (docker's exit status 1).
import type { Command } from 'commander';
import type { EngineClient } from '../client.ts';
import {
  commitCommand, containerInspectCommand, containerPruneCommand, diffCommand, exportCommand, inspectAnyCommand, pauseCommand,
  portCommand, psCommand, renameCommand, statsCommand, topCommand, unpauseCommand, updateCommand,
  type CommitOptions, type PsOptions, type UpdateOptions,
} from './containers-manage.ts';
import { cpCommand } from './cp.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
type Connect = () => Promise<EngineClient>;

/** `berth container`, created here unless another module registered it first. */
function containerGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'container') ?? program.command('container').description('manage containers');
}

export function registerContainerManageCommands(program: Command, connect: Connect): void {
  const container = containerGroup(program);

  const addPs = (parent: Command, name: string, path: string, aliases: string[]): void => {
    const c = parent.command(name).description('list containers')
      .argument('[args...]').usage('[options]')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('-f, --filter <filter>', 'filter output based on conditions provided; repeatable', collect)
      .option('--format <template>', 'format output using a Go template ("table", "table TEMPLATE", "json", or a template)')
      .option('-n, --last <n>', 'show n last created containers (includes all states)')
      .option('-l, --latest', 'show the latest created container (includes all states)')
      .option('--no-trunc', "don't truncate output")
      .option('-q, --quiet', 'only display container IDs')
      .option('-s, --size', 'display total file sizes')
      .action((args: string[], o: PsOptions & { trunc?: boolean }) => psCommand(args, { ...o, noTrunc: o.trunc === false }, connect, path));
    for (const a of aliases) c.alias(a);
  };
  addPs(program, 'ps', 'ps', []);
  addPs(container, 'ls', 'container ls', ['list', 'ps']);

  container.command('inspect').description('display detailed information on one or more containers')
    .argument('[args...]', 'CONTAINER [CONTAINER...]').usage('[options] CONTAINER [CONTAINER...]')
    .option('-f, --format <template>', 'format output using a Go template ("json" for compact JSON)')
    .option('-s, --size', 'display total file sizes')
    .action((args: string[], o: { format?: string; size?: boolean }) => containerInspectCommand(args, o, connect));

  program.command('inspect').description('return low-level information on containers, images, networks and volumes')
    .argument('[args...]', 'NAME|ID [NAME|ID...]').usage('[options] NAME|ID [NAME|ID...]')
    .option('-f, --format <template>', 'format output using a Go template ("json" for compact JSON)')
    .option('-s, --size', 'display total file sizes if the type is container')
    .option('--type <type>', 'only inspect objects of the given type')
    .action((args: string[], o: { format?: string; size?: boolean; type?: string }) => inspectAnyCommand(args, o, connect));

  for (const [parent, prefix] of [[program, ''], [container, 'container ']] as const) {
    parent.command('top').description('display the running processes of a container')
      .argument('[args...]', 'CONTAINER [ps OPTIONS]').usage('CONTAINER [ps OPTIONS]')
      // Everything after the container goes to ps, options included (docker's SetInterspersed(false)).
      .allowUnknownOption()
      .helpOption('--help', 'display help for command')
      .action((args: string[]) => topCommand(args, connect, `${prefix}top`));

    parent.command('stats').description('display a live stream of container(s) resource usage statistics')
      .argument('[args...]', '[CONTAINER...]').usage('[options] [CONTAINER...]')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('--format <template>', 'format output using a Go template ("table", "table TEMPLATE", "json", or a template)')
      .option('--no-stream', 'disable streaming stats and only pull the first result')
      .option('--no-trunc', 'do not truncate output')
      .action((args: string[], o: { all?: boolean; format?: string; stream?: boolean; trunc?: boolean }) =>
        statsCommand(args, { all: o.all, format: o.format, noStream: o.stream === false, noTrunc: o.trunc === false }, connect));

    parent.command('port').description('list port mappings or a specific mapping for the container')
      .argument('[args...]', 'CONTAINER [PRIVATE_PORT[/PROTO]]').usage('CONTAINER [PRIVATE_PORT[/PROTO]]')
      .action((args: string[]) => portCommand(args, connect, `${prefix}port`));

    parent.command('rename').description('rename a container')
      .argument('[args...]', 'CONTAINER NEW_NAME').usage('CONTAINER NEW_NAME')
      .action((args: string[]) => renameCommand(args, connect, `${prefix}rename`));

    parent.command('pause').description('pause all processes within one or more containers')
      .argument('[args...]', 'CONTAINER [CONTAINER...]').usage('CONTAINER [CONTAINER...]')
      .action((args: string[]) => pauseCommand(args, connect, `${prefix}pause`));

    parent.command('unpause').description('unpause all processes within one or more containers')
      .argument('[args...]', 'CONTAINER [CONTAINER...]').usage('CONTAINER [CONTAINER...]')
      .action((args: string[]) => unpauseCommand(args, connect, `${prefix}unpause`));

    parent.command('update').description('update configuration of one or more containers')
      .argument('[args...]', 'CONTAINER [CONTAINER...]').usage('[options] CONTAINER [CONTAINER...]')
      .option('--blkio-weight <n>', 'block IO (relative weight), between 10 and 1000, or 0 to disable')
      .option('--cpu-period <n>', 'limit CPU CFS (Completely Fair Scheduler) period')
      .option('--cpu-quota <n>', 'limit CPU CFS (Completely Fair Scheduler) quota')
      .option('--cpu-rt-period <n>', 'limit the CPU real-time period in microseconds')
      .option('--cpu-rt-runtime <n>', 'limit the CPU real-time runtime in microseconds')
      .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
      .option('--cpus <n>', 'number of CPUs')
      .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
      .option('--cpuset-mems <list>', 'MEMs in which to allow execution (0-3, 0,1)')
      .option('-m, --memory <bytes>', 'memory limit')
      .option('--memory-reservation <bytes>', 'memory soft limit')
      .option('--memory-swap <bytes>', 'swap limit equal to memory plus swap: -1 to enable unlimited swap')
      .option('--kernel-memory <bytes>', 'kernel memory limit (deprecated)')
      .option('--pids-limit <n>', 'tune container pids limit (set -1 for unlimited)')
      .option('--restart <policy>', 'restart policy to apply when a container exits')
      .action((args: string[], o: UpdateOptions) => updateCommand(args, o, connect, `${prefix}update`));

    parent.command('cp').description('copy files/folders between a container and the local filesystem')
      .argument('[args...]', 'CONTAINER:SRC_PATH DEST_PATH|- or SRC_PATH|- CONTAINER:DEST_PATH')
      .usage('[options] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [options] SRC_PATH|- CONTAINER:DEST_PATH')
      .option('-a, --archive', 'archive mode (copy all uid/gid information)')
      .option('-L, --follow-link', 'always follow symbol link in SRC_PATH')
      .option('-q, --quiet', 'suppress progress output during copy (automatic without a terminal)')
      .action((args: string[], o: { archive?: boolean; followLink?: boolean; quiet?: boolean }) => cpCommand(args, o, connect, `${prefix}cp`));

    parent.command('diff').description("inspect changes to files or directories on a container's filesystem")
      .argument('[args...]', 'CONTAINER').usage('CONTAINER')
      .action((args: string[]) => diffCommand(args, connect, `${prefix}diff`));

    parent.command('export').description("export a container's filesystem as a tar archive")
      .argument('[args...]', 'CONTAINER').usage('[options] CONTAINER')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action((args: string[], o: { output?: string }) => exportCommand(args, o, connect, `${prefix}export`));

    parent.command('commit').description("create a new image from a container's changes")
      .argument('[args...]', 'CONTAINER [REPOSITORY[:TAG]]').usage('[options] CONTAINER [REPOSITORY[:TAG]]')
      .option('-a, --author <author>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option('-c, --change <instruction>', 'apply Dockerfile instruction to the created image; repeatable', collect)
      .option('-m, --message <message>', 'commit message')
      .option('-p, --pause [bool]', 'pause container during commit (default true; -p=false to not pause)')
      .action((args: string[], o: CommitOptions) => commitCommand(args, o, connect, `${prefix}commit`));
  }

  container.command('prune').description('remove all stopped containers')
    .argument('[args...]').usage('[options]')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>"); repeatable', collect)
    .action((args: string[], o: { force?: boolean; filter?: string[] }) => containerPruneCommand(args, o, connect));
}
