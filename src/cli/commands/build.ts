// `berth build [OPTIONS] PATH | -`: docker's flags; the context is packed here (.dockerignore
// applied, as the docker CLI does) and sent to POST /build. The daemon answers with the classic
// builder's JSON stream; this renders it per step with timings, as BuildKit's plain progress does:
//   #2 [2/5] RUN make
//   #2 <output lines>
//   #2 DONE 1.3s          (or "#2 CACHED" when the daemon reused the step)
// `--progress=classic` prints the daemon's text as it comes, as `DOCKER_BUILDKIT=0 docker build`.
import type { Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { JSONMessage } from '../../api/jsonmessage.ts';
import { packContext } from '../../build/context.ts';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { readAll, type EngineClient } from '../client.ts';
import { jsonLines, StreamError } from '../format/progress.ts';
import { ExitError } from './system.ts';

type Connect = () => Promise<EngineClient>;

export interface BuildOptions {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  cache?: boolean;
  pull?: boolean;
  network?: string;
  label?: string[];
  iidfile?: string;
  quiet?: boolean;
  platform?: string;
  rm?: boolean;
  forceRm?: boolean;
  progress?: string;
}

/** Turns the classic stream into step-by-step lines with timings. Pure: feed messages, collect text. */
export class BuildRenderer {
  private step = 0;
  private stepStart = 0;
  private cached = false;
  private open = false;
  private lineBuf = '';
  imageId?: string;
  readonly tags: string[] = [];

  constructor(private readonly out: (text: string) => void, private readonly now: () => number = () => Date.now()) {}

  private endStep(): void {
    if (!this.open) return;
    this.flushLine();
    if (this.cached) this.out(`#${this.step} CACHED\n`);
    else this.out(`#${this.step} DONE ${((this.now() - this.stepStart) / 1000).toFixed(1)}s\n`);
    this.open = false;
  }

  private flushLine(): void {
    if (this.lineBuf) {
      this.out(`#${this.step} ${this.lineBuf}\n`);
      this.lineBuf = '';
    }
  }

  private text(t: string): void {
    for (const piece of t.split(/(?<=\n)/)) {
      if (piece === '') continue;
      const line = this.lineBuf + piece;
      if (!line.endsWith('\n')) {
        this.lineBuf = line;
        continue;
      }
      this.lineBuf = '';
      this.handleLine(line.slice(0, -1));
    }
  }

  private handleLine(line: string): void {
    const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
    if (step) {
      this.endStep();
      this.step = Number(step[1]);
      this.stepStart = this.now();
      this.cached = false;
      this.open = true;
      this.out(`#${this.step} [${step[1]}/${step[2]}] ${step[3]}\n`);
      return;
    }
    if (line === ' ---> Using cache') {
      this.cached = true;
      return;
    }
    if (/^ ---> [0-9a-f]{12}$/.test(line) || /^ ---> Running in [0-9a-f]{12}$/.test(line) || /^Removing intermediate container/.test(line) || line === ' ---> ') return;
    const built = /^Successfully built ([0-9a-f]{12})$/.exec(line);
    if (built) {
      this.endStep();
      return;
    }
    const tagged = /^Successfully tagged (.*)$/.exec(line);
    if (tagged) {
      this.tags.push(tagged[1]!);
      return;
    }
    if (this.open) this.out(`#${this.step} ${line}\n`);
    else this.out(`${line}\n`);
  }

  message(m: JSONMessage): void {
    if (m.error || m.errorDetail) {
      this.flushLine();
      if (this.open) this.out(`#${this.step} ERROR\n`);
      this.open = false;
      throw new StreamError(m.errorDetail?.message ?? m.error ?? 'unknown error');
    }
    if (m.aux && typeof m.aux === 'object' && typeof (m.aux as { ID?: unknown }).ID === 'string') {
      this.imageId = (m.aux as { ID: string }).ID;
      return;
    }
    if (m.stream !== undefined) {
      this.text(m.stream);
      return;
    }
    if (m.status) {
      // Base image pulls: one line per status change, without the bars.
      if (m.progressDetail && (m.progressDetail.current || m.progressDetail.total)) return;
      this.text(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
    }
  }

  finish(): void {
    this.flushLine();
    this.endStep();
    if (this.imageId) {
      this.out(`#${this.step + 1} writing image ${this.imageId} done\n`);
      for (const t of this.tags) this.out(`#${this.step + 1} naming to ${fullName(t)} done\n`);
    }
  }
}

/** docker.io/library/foo:latest for "foo:latest", as BuildKit names images. */
function fullName(familiar: string): string {
  const firstSlash = familiar.indexOf('/');
  const domainish = firstSlash > 0 && /[.:]|^localhost$/.test(familiar.slice(0, firstSlash));
  if (domainish) return familiar;
  return firstSlash < 0 ? `docker.io/library/${familiar}` : `docker.io/${familiar}`;
}

function parseKeyValues(list: string[] | undefined, what: string, fromEnv: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i === 0) throw new ExitError(125, `invalid argument "${item}" for "--${what}" flag: invalid key`);
    if (i < 0) {
      // docker: --build-arg KEY takes the value from the environment, or is sent without one.
      out[item] = fromEnv ? (process.env[item] ?? null) : '';
      continue;
    }
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export async function buildCommand(args: string[], opts: BuildOptions, connect: Connect): Promise<void> {
  if (args.length !== 1) {
    throw new ExitError(1, `"berth build" requires exactly 1 argument.\nSee 'berth build --help'.\n\nUsage:  berth build [OPTIONS] PATH | -\n\nBuild an image from a Dockerfile`);
  }
  const target = args[0]!;
  let body: NodeJS.ReadableStream;
  let dockerfileName: string | undefined = opts.file;
  if (target === '-') {
    if (opts.file === '-') throw new ExitError(1, 'invalid argument: can\'t use stdin for both build context and dockerfile');
    // A tar (maybe compressed) or a bare Dockerfile on stdin.
    const input = await readAll(process.stdin as never);
    const isTar = input.length >= 262 && input.subarray(257, 262).toString('latin1') === 'ustar';
    const compressed = (input[0] === 0x1f && input[1] === 0x8b) || input.subarray(0, 3).toString('latin1') === 'BZh' || input.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
    if (isTar || compressed) {
      body = Readable.from([input]);
    } else {
      const { stream, dockerfileName: name } = packContext(emptyDir(), { dockerfileContent: input.toString('utf8') });
      body = stream;
      dockerfileName = name;
    }
  } else {
    const dir = resolve(target);
    let st;
    try {
      st = statSync(dir);
    } catch {
      throw new ExitError(1, `unable to prepare context: path "${target}" not found`);
    }
    if (!st.isDirectory()) throw new ExitError(1, `unable to prepare context: context must be a directory: ${dir}`);
    let dockerfileContent: string | undefined;
    if (opts.file === '-') {
      dockerfileContent = (await readAll(process.stdin as never)).toString('utf8');
    } else {
      const df = resolve(opts.file ?? `${dir}${sep}Dockerfile`);
      if (!existsSync(df)) throw new ExitError(1, `unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${df}: no such file or directory`);
      const rel = relative(dir, df);
      if (rel.startsWith('..') || resolve(dir, rel) !== df) dockerfileContent = readFileSync(df, 'utf8');
      else dockerfileName = rel.split(sep).join('/');
    }
    const packed = packContext(dir, dockerfileContent !== undefined ? { dockerfileContent } : { dockerfile: dockerfileName });
    body = packed.stream;
    if (packed.dockerfileName) dockerfileName = packed.dockerfileName;
  }

  const buildArgs = parseKeyValues(opts.buildArg, 'build-arg', true);
  const labels = parseKeyValues(opts.label, 'label', false);
  const client = await connect();
  const res = await client.request('POST', '/build', {
    query: {
      t: opts.tag?.length ? opts.tag : undefined,
      dockerfile: dockerfileName,
      buildargs: Object.keys(buildArgs).length ? JSON.stringify(buildArgs) : undefined,
      labels: Object.keys(labels).length ? JSON.stringify(labels) : undefined,
      target: opts.target,
      nocache: opts.cache === false ? '1' : undefined,
      pull: opts.pull ? '1' : undefined,
      networkmode: opts.network,
      platform: opts.platform,
      q: opts.quiet ? '1' : undefined,
      rm: opts.rm === false ? '0' : '1',
      forcerm: opts.forceRm ? '1' : undefined,
      version: '1',
    },
    headers: { 'Content-Type': 'application/x-tar' },
    body: body as Readable,
  });
  const classic = opts.progress === 'classic';
  const renderer = new BuildRenderer(opts.quiet ? () => {} : writeStdout);
  let imageId: string | undefined;
  try {
    for await (const m of jsonLines(res)) {
      const msg = m as JSONMessage;
      if (classic && !opts.quiet && msg.stream !== undefined) writeStdout(msg.stream);
      if (classic) {
        if (msg.error || msg.errorDetail) throw new StreamError(msg.errorDetail?.message ?? msg.error ?? 'unknown error');
        const aux = msg.aux as { ID?: string } | undefined;
        if (aux?.ID) imageId = aux.ID;
        continue;
      }
      renderer.message(msg);
    }
  } catch (err) {
    if (err instanceof StreamError) {
      writeStderr(`ERROR: ${err.message}\n`);
      throw new ExitError(1, '');
    }
    throw err;
  }
  if (!classic) {
    renderer.finish();
    imageId = renderer.imageId;
  }
  if (opts.quiet && imageId) writeStdout(`${imageId}\n`);
  if (opts.iidfile && imageId) writeFileSync(opts.iidfile, imageId);
}

let emptyContext: string | undefined;
function emptyDir(): string {
  emptyContext ??= mkdtempSync(join(tmpdir(), 'berth-empty-context-'));
  return emptyContext;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerBuildCommands(program: Command, connect: Connect): void {
  const add = (parent: Command, name: string) => parent.command(name).description('build an image from a Dockerfile')
    .argument('[args...]', 'PATH | -').usage('[OPTIONS] PATH | -')
    .option('-t, --tag <name>', 'name and optionally a tag (format: "name:tag"); repeatable', collect)
    .option('-f, --file <path>', 'name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from stdin)')
    .option('--build-arg <arg>', 'set build-time variables (KEY=VALUE, or KEY to take it from the environment); repeatable', collect)
    .option('--target <stage>', 'set the target build stage to build')
    .option('--no-cache', 'do not use cache when building the image')
    .option('--pull', 'always attempt to pull a newer version of the base images')
    .option('--network <mode>', 'networking mode for the RUN instructions during build (default, none, host)')
    .option('--label <label>', 'set metadata for an image (KEY=VALUE); repeatable', collect)
    .option('--iidfile <file>', 'write the image ID to the file')
    .option('-q, --quiet', 'suppress the build output and print the image ID on success')
    .option('--platform <platform>', 'set the platform (only the host platform is supported)')
    .option('--rm', 'remove intermediate containers after a successful build (default true)', true)
    .option('--no-rm', 'keep intermediate containers')
    .option('--force-rm', 'always remove intermediate containers')
    .option('--progress <type>', 'progress output: auto, plain, tty (step view with timings) or classic (the daemon\'s text)', 'auto')
    .action((args: string[], o: BuildOptions) => buildCommand(args, o, connect));
  add(program, 'build');
  const builder = program.command('builder').description('manage builds');
  add(builder, 'build');
  builder.command('prune').description('remove the build cache')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('-a, --all', 'remove all unused build cache')
    .action(async () => {
      const client = await connect();
      const res = await client.json<{ SpaceReclaimed?: number }>('POST', '/build/prune');
      writeStdout(`Total:\t${res?.SpaceReclaimed ?? 0}B\n`);
    });
}
