// The image, login and prune commands on the `berth` command line: docker's top-level forms
// (images, pull, push, tag, rmi, history, save, load, import, login, logout) and the `image`
// group (ls/list, rm/remove, pull, push, tag, inspect, history, save, load, import, prune), with
// docker's flags. Argument counts are checked by the commands (docker's exit status 1).
import type { Command } from 'commander';
import type { EngineClient } from '../client.ts';
import {
  historyCommand, imagesCommand, importCommand, inspectCommand, loadCommand, parseBoolFlag, pullCommand,
  pushCommand, rmiCommand, saveCommand, tagCommand,
} from './images.ts';
import { loginCommand, logoutCommand } from './login.ts';
import { imagePruneCommand, systemPruneCommand } from './prune.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
type Connect = () => Promise<EngineClient>;

export function registerImageCommands(program: Command, system: Command, connect: Connect): void {
  const image = program.command('image').description('manage images');

  const addList = (parent: Command, name: string, path: string, aliases: string[] = []): void => {
    const c = parent.command(name).description('list images')
      .argument('[args...]', 'REPOSITORY[:TAG]').usage('[options] REPOSITORY[:TAG]')
      .option('-a, --all', 'show all images (default hides intermediate images)')
      .option('-q, --quiet', 'only show image IDs')
      .option('--digests', 'show digests')
      .option('--no-trunc', "don't truncate output")
      .option('-f, --filter <filter>', 'filter output based on conditions provided (dangling=, reference=, label=, before=, since=); repeatable', collect)
      .option('--format <template>', 'format output using a Go template ("table", "table TEMPLATE", "json", or a template)')
      .action((args: string[], o: { all?: boolean; quiet?: boolean; digests?: boolean; trunc?: boolean; filter?: string[]; format?: string }) =>
        imagesCommand(args, { ...o, noTrunc: o.trunc === false }, connect, path));
    for (const a of aliases) c.alias(a);
  };
  addList(program, 'images', 'images');
  addList(image, 'ls', 'image ls', ['list']);

  const addPull = (parent: Command, path: string): void => {
    parent.command('pull').description('download an image from a registry')
      .argument('[args...]', 'NAME[:TAG|@DIGEST]').usage('[options] NAME[:TAG|@DIGEST]')
      .option('-a, --all-tags', 'download all tagged images in the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .option('--platform <platform>', 'set platform if server is multi-platform capable (os[/arch[/variant]])')
      .option('--disable-content-trust', 'skip image verification (always: Berth has no content trust)')
      .action((args: string[], o: { allTags?: boolean; quiet?: boolean; platform?: string }) => pullCommand(args, o, connect, path));
  };
  addPull(program, 'pull');
  addPull(image, 'image pull');

  const addPush = (parent: Command, path: string): void => {
    parent.command('push').description('upload an image to a registry')
      .argument('[args...]', 'NAME[:TAG]').usage('[options] NAME[:TAG]')
      .option('-a, --all-tags', 'push all tags of an image to the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .option('--disable-content-trust', 'skip image signing (always: Berth has no content trust)')
      .action((args: string[], o: { allTags?: boolean; quiet?: boolean }) => pushCommand(args, o, connect, path));
  };
  addPush(program, 'push');
  addPush(image, 'image push');

  const addTag = (parent: Command, path: string): void => {
    parent.command('tag').description('create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
      .argument('[args...]', 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]').usage('[options] SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]')
      .action((args: string[]) => tagCommand(args, connect, path));
  };
  addTag(program, 'tag');
  addTag(image, 'image tag');

  const addRm = (parent: Command, name: string, path: string, aliases: string[] = []): void => {
    const c = parent.command(name).description('remove one or more images')
      .argument('[args...]', 'IMAGE [IMAGE...]').usage('[options] IMAGE [IMAGE...]')
      .option('-f, --force', 'force removal of the image')
      .option('--no-prune', 'do not delete untagged parents')
      .action((args: string[], o: { force?: boolean; prune?: boolean }) => rmiCommand(args, o, connect, path));
    for (const a of aliases) c.alias(a);
  };
  addRm(program, 'rmi', 'rmi');
  addRm(image, 'rm', 'image rm', ['remove']);

  image.command('inspect').description('display detailed information on one or more images')
    .argument('[args...]', 'IMAGE [IMAGE...]').usage('[options] IMAGE [IMAGE...]')
    .option('-f, --format <template>', 'format output using a Go template ("json" for compact JSON)')
    .action((args: string[], o: { format?: string }) => inspectCommand(args, o, connect, 'image inspect'));

  const addHistory = (parent: Command, path: string): void => {
    parent.command('history').description('show the history of an image')
      .argument('[args...]', 'IMAGE').usage('[options] IMAGE')
      // -H is rewritten to --human before parsing (the program's -H is --host): see rewriteHistoryHuman.
      .option('--human [bool]', '(or -H) print sizes and dates in human readable format; -H=false for raw (default true)')
      .option('--no-trunc', "don't truncate output")
      .option('-q, --quiet', 'only show image IDs')
      .option('--format <template>', 'format output using a Go template')
      .action((args: string[], o: { human?: string | boolean; trunc?: boolean; quiet?: boolean; format?: string }) =>
        historyCommand(args, { human: parseBoolFlag(o.human, '-H, --human'), noTrunc: o.trunc === false, quiet: o.quiet, format: o.format }, connect, path));
  };
  addHistory(program, 'history');
  addHistory(image, 'image history');

  const addSave = (parent: Command, path: string): void => {
    parent.command('save').description('save one or more images to a tar archive (streamed to STDOUT by default)')
      .argument('[args...]', 'IMAGE [IMAGE...]').usage('[options] IMAGE [IMAGE...]')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .action((args: string[], o: { output?: string }) => saveCommand(args, o, connect, path));
  };
  addSave(program, 'save');
  addSave(image, 'image save');

  const addLoad = (parent: Command): void => {
    parent.command('load').description('load an image from a tar archive or STDIN')
      .option('-i, --input <file>', 'read from tar archive file, instead of STDIN')
      .option('-q, --quiet', 'suppress the load output')
      .action((o: { input?: string; quiet?: boolean }) => loadCommand(o, connect));
  };
  addLoad(program);
  addLoad(image);

  const addImport = (parent: Command, path: string): void => {
    parent.command('import').description('import the contents from a tarball to create a filesystem image')
      .argument('[args...]', 'file|URL|- [REPOSITORY[:TAG]]').usage('[options] file|URL|- [REPOSITORY[:TAG]]')
      .option('-c, --change <instruction>', 'apply Dockerfile instruction to the created image; repeatable', collect)
      .option('-m, --message <message>', 'set commit message for imported image')
      .option('--platform <platform>', 'set platform if server is multi-platform capable')
      .action((args: string[], o: { change?: string[]; message?: string; platform?: string }) => importCommand(args, o, connect, path));
  };
  addImport(program, 'import');
  addImport(image, 'image import');

  image.command('prune').description('remove unused images')
    .argument('[args...]').usage('[options]')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'provide filter values (e.g. "until=<timestamp>"); repeatable', collect)
    .action((args: string[], o: { all?: boolean; force?: boolean; filter?: string[] }) => imagePruneCommand(args, o, connect));

  system.command('prune').description('remove unused data')
    .argument('[args...]').usage('[options]')
    .option('-a, --all', 'remove all unused images not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--volumes', 'prune anonymous volumes')
    .option('--filter <filter>', 'provide filter values (e.g. "label=<key>=<value>"); repeatable', collect)
    .action((args: string[], o: { all?: boolean; force?: boolean; volumes?: boolean; filter?: string[] }) => systemPruneCommand(args, o, connect));

  program.command('login').description('authenticate to a registry (defaults to Docker Hub)')
    .argument('[args...]', 'SERVER').usage('[options] SERVER')
    .option('-u, --username <name>', 'username')
    .option('-p, --password <password>', 'password or personal access token')
    .option('--password-stdin', 'take the password from stdin')
    .action((args: string[], o: { username?: string; password?: string; passwordStdin?: boolean }) => loginCommand(args, o, connect));

  program.command('logout').description('log out from a registry')
    .argument('[args...]', 'SERVER').usage('[options] SERVER')
    .action((args: string[]) => logoutCommand(args, connect));
}
