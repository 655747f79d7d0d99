// The container lifecycle commands as an Engine API client, with the docker CLI's flags, output
// and exit statuses: run, create, start, attach, exec, logs, wait, stop, kill, restart, rm (also
// as `berth container <cmd>`). Streams (attach, exec) go through stream.ts.
//
// Exit statuses as docker's: 125 for usage errors and for run's daemon errors, 126/127 when the
// command cannot be invoked / is not found (docker reads that from the daemon's error text),
// otherwise the container's (or exec's) exit status; 1 for other errors.
//
// Flags are parsed by flags.ts (pflag's rules) rather than commander: `run -h` is --hostname,
// `rm -v` is --volumes, and everything after the image belongs to the container's command.
// berth.ts hands these commands their arguments unparsed (see rawArgsCommands).
import { closeSync, existsSync, openSync, rmSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { compareVersions } from '../../api/version.ts';
import {
  authConfigKey, DEFAULT_TAG, familiarString, parseAnyReference, parseNormalizedReference, referenceName, type Reference,
} from '../../image/reference.ts';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { ApiResponseError, readAll, type EngineClient } from '../client.ts';
import { displayJSONMessages } from '../format/progress.ts';
import { getTimestamp } from '../format/time.ts';
import {
  EscapeError, hijack, monitorTtySize, proxySignals, streamHijacked, Demuxer, writeFd, type StreamEnd,
} from '../stream.ts';
import { errorMessage, registryAuthHeader } from './common.ts';
import { FlagError, FlagSet, FlagValues, unsupportedFlag, type FlagDef, type ParsedFlags } from './flags.ts';
import {
  ContainerFlagError, containerFlagSet, parseRunArgs, proxyConfigFor, readKVFile, validateEnv, type ProxyConfig, type RunOptions,
} from './run-flags.ts';
import { CredentialStore } from '../../image/registry/credentials.ts';
import { ExitError } from './system.ts';

type Connect = () => Promise<EngineClient>;

const cpath = (id: string): string => `/containers/${encodeURIComponent(id)}`;

interface Spec {
  name: string;
  usage: string;
  short: string;
  flags: FlagDef[];
  interspersed: boolean;
  min?: number;
  max?: number;
  aliases?: string[];
}

/** docker's flag error: the message, the usage line, a pointer to --help; status 125. */
function flagError(path: string, usage: string, message: string): ExitError {
  return new ExitError(125, `${message}\n\nUsage:  berth ${path} ${usage}\n\nRun 'berth ${path} --help' for more information`);
}

/** docker's cli.RequiresMinArgs & co: status 1. */
function argsError(path: string, spec: Spec, n: number): ExitError | undefined {
  const { min = 0, max = Infinity } = spec;
  const plural = (k: number): string => `${k} argument${k === 1 ? '' : 's'}`;
  let what: string | undefined;
  if (min === max && n !== min) what = `requires ${plural(min)}`;
  else if (n < min) what = `requires at least ${plural(min)}`;
  else if (n > max) what = `requires at most ${plural(max)}`;
  if (!what) return undefined;
  const hint = what.startsWith('requires at least') ? 'See' : 'Run';
  return new ExitError(1, `berth: 'berth ${path}' ${what}\n\nUsage:  berth ${path} ${spec.usage}\n\n${hint} 'berth ${path} --help' for more information`);
}

function helpText(path: string, spec: Spec, set: FlagSet): string {
  return `\nUsage:  berth ${path} ${spec.usage}\n\n${spec.short}\n${spec.aliases?.length ? `\nAliases:\n  ${spec.aliases.join(', ')}\n` : ''}\nOptions:\n${set.usage()}\n`;
}

/** Parses a command's raw arguments; undefined when --help was printed. */
function parseCommand(path: string, spec: Spec, argv: string[]): { flags: FlagValues; parsed: ParsedFlags; args: string[]; set: FlagSet } | undefined {
  const set = new FlagSet(spec.flags, { interspersed: spec.interspersed });
  let parsed: ParsedFlags;
  try {
    parsed = set.parse(argv);
  } catch (e) {
    if (e instanceof FlagError) throw flagError(path, spec.usage, e.message);
    throw e;
  }
  if (parsed.help) {
    writeStdout(helpText(path, spec, set));
    return undefined;
  }
  const err = argsError(path, spec, parsed.args.length);
  if (err) throw err;
  return { flags: new FlagValues(parsed), parsed, args: parsed.args, set };
}

/** Several operations' errors, each on its own line, status 1 (docker's errors.Join). */
function joinErrors(errors: unknown[]): ExitError | undefined {
  if (errors.length === 0) return undefined;
  return new ExitError(1, errors.map(errorMessage).join('\n'));
}

/** docker's parallelOperation: all at once (bounded), results reported in argument order. */
async function parallel<T>(items: string[], op: (x: string) => Promise<T>): Promise<Array<{ ok: true; value: T } | { ok: false; error: unknown }>> {
  return Promise.all(items.map(async (x) => {
    try {
      return { ok: true as const, value: await op(x) };
    } catch (error) {
      return { ok: false as const, error };
    }
  }));
}

async function post(client: EngineClient, path: string, query?: Record<string, string | number | undefined>, body?: unknown): Promise<void> {
  const res = await client.request('POST', path, { query, body });
  res.resume();
}

interface InspectInfo {
  Id: string;
  Config: { Tty?: boolean; OpenStdin?: boolean };
  HostConfig: { AutoRemove?: boolean };
  State: { Running?: boolean; Paused?: boolean; Restarting?: boolean };
}

const inspect = (client: EngineClient, id: string): Promise<InspectInfo> => client.get<InspectInfo>(`${cpath(id)}/json`);

/** POST /containers/{id}/wait, sent now; the promise is the exit status (125 when waiting failed, as docker). */
interface WaitResult { code: number; error?: string }

/** Wrapped, because a promise of a promise would flatten: the request is sent, the result comes later. */
async function waitRequest(client: EngineClient, id: string, condition?: string): Promise<{ result: Promise<WaitResult> }> {
  const res = await client.request('POST', `${cpath(id)}/wait`, { query: { condition } });
  const result = (async (): Promise<WaitResult> => {
    try {
      const text = (await readAll(res)).toString('utf8');
      const r = JSON.parse(text) as { StatusCode?: number; Error?: { Message?: string } | null };
      if (r.Error?.Message) return { code: 125, error: r.Error.Message };
      return { code: r.StatusCode ?? 0 };
    } catch (e) {
      return { code: 125, error: (e as Error).message };
    }
  })();
  return { result };
}

function checkTty(attachStdin: boolean, tty: boolean): void {
  if (tty && attachStdin && !process.stdin.isTTY) throw new ExitError(1, 'the input device is not a TTY');
}

function consoleSize(): [number, number] {
  return process.stdout.isTTY ? [process.stdout.rows ?? 0, process.stdout.columns ?? 0] : [0, 0];
}

// ---------------------------------------------------------------------------------------------
// run / create
// ---------------------------------------------------------------------------------------------

const RUN_USAGE = '[OPTIONS] IMAGE [COMMAND] [ARG...]';

/** docker's toStatusError: which exit status a failed create/start of `run` gets. */
export function runErrorStatus(message: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127;
  if (/permission denied|is a directory/.test(message)) return 126;
  return 125;
}

function runError(e: unknown): ExitError {
  const msg = errorMessage(e);
  return new ExitError(runErrorStatus(msg), `berth: ${msg}\n\nRun 'berth run --help' for more information`);
}

async function pullImage(client: EngineClient, image: string, opts: RunOptions): Promise<void> {
  const ref = parseNormalizedReference(image);
  const tag = ref.digest ?? ref.tag ?? DEFAULT_TAG;
  const res = await client.request('POST', '/images/create', {
    query: { fromImage: referenceName(ref), tag, platform: opts.request.platform },
    headers: { 'X-Registry-Auth': await registryAuthHeader(authConfigKey(ref)) },
  });
  // docker shows pull progress on stderr, so stdout stays the container's
  await displayJSONMessages(res, {
    write: opts.quiet ? () => {} : writeStderr,
    isTerminal: !opts.quiet && Boolean(process.stderr.isTTY),
    columns: () => process.stderr.columns || 80,
  });
}

class CidFile {
  private fd?: number;
  private written = false;
  constructor(private readonly path?: string) {
    if (!path) return;
    if (existsSync(path)) throw new Error(`container ID file found, make sure the other container isn't running or delete ${path}`);
    try {
      this.fd = openSync(path, 'w', 0o666);
    } catch (e) {
      throw new Error(`failed to create the container ID file: ${(e as Error).message}`);
    }
  }
  write(id: string): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, id);
    this.written = true;
  }
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    if (!this.written && this.path) rmSync(this.path, { force: true });
  }
}

/** docker's createContainer: create, pulling the image first or on "No such image" per --pull. */
async function createContainer(client: EngineClient, opts: RunOptions): Promise<string> {
  const cid = new CidFile(opts.cidfile);
  try {
    let named: Reference | undefined;
    try {
      const any = parseAnyReference(opts.image);
      if (any.kind === 'reference') {
        named = any.reference;
        if (named.tag === undefined && named.digest === undefined) named = { ...named, tag: DEFAULT_TAG };
      }
    } catch (e) {
      throw new Error(`invalid reference format: ${(e as Error).message}`);
    }
    if (opts.pull === 'always') await pullImage(client, opts.image, opts);
    const doCreate = (): Promise<{ Id: string; Warnings?: string[] | null }> =>
      client.json('POST', '/containers/create', { query: { name: opts.request.name, platform: opts.request.platform }, body: opts.request.body });
    let created: { Id: string; Warnings?: string[] | null };
    try {
      created = await doCreate();
    } catch (e) {
      // As docker: any "not found" answer to a named image with --pull missing means a pull.
      if (!(e instanceof ApiResponseError && e.statusCode === 404 && named && opts.pull === 'missing')) throw e;
      if (!opts.quiet) writeStderr(`Unable to find image '${familiarString(named)}' locally\n`);
      await pullImage(client, opts.image, opts);
      created = await doCreate();
    }
    const dns = (opts.request.body.HostConfig as { Dns?: string[] }).Dns ?? [];
    const warnings = [...(created.Warnings ?? [])];
    for (const d of dns) if (/^127\.|^::1$/.test(d)) { warnings.push(`Localhost DNS (${d}) may fail in containers.`); break; }
    for (const w of warnings) writeStderr(`WARNING: ${w}\n`);
    cid.write(created.Id);
    return created.Id;
  } finally {
    cid.close();
  }
}

async function configProxies(host: string): Promise<ProxyConfig | undefined> {
  try {
    return proxyConfigFor(await new CredentialStore().read() as { proxies?: Record<string, ProxyConfig> }, host);
  } catch {
    return undefined; // an unreadable config.json is reported where credentials are needed
  }
}

function parseRun(command: 'run' | 'create', path: string, argv: string[], apiVersion: string, proxies?: ProxyConfig): RunOptions | undefined {
  const set = containerFlagSet(command);
  const spec: Spec = { name: command, usage: RUN_USAGE, short: command === 'run' ? 'Create and run a new container from an image' : 'Create a new container', flags: set.defs, interspersed: false, min: 1 };
  const p = parseCommand(path, spec, argv);
  if (!p) return undefined;
  const refused = unsupportedFlag(p.set, p.parsed, apiVersion, compareVersions);
  if (refused) throw new ExitError(1, refused);
  try {
    return parseRunArgs(command, p.parsed, { apiVersion, consoleSize: consoleSize(), proxies });
  } catch (e) {
    if (e instanceof ContainerFlagError) throw new ExitError(125, `berth: ${e.message}\n\nRun 'berth ${command} --help' for more information`);
    throw e;
  }
}

/** Flags are checked before the daemon is asked anything, as docker (it needs only the API version). */
async function clientAndVersion(connect: Connect): Promise<EngineClient> {
  const client = await connect();
  await client.negotiate();
  return client;
}

export async function createCommand(argv: string[], connect: Connect, path = 'create'): Promise<void> {
  // Usage errors and --help first: they need no daemon (and must not start one).
  if (!preParse('create', path, argv)) return;
  const client = await clientAndVersion(connect);
  const opts = parseRun('create', path, argv, client.version, await configProxies(client.host));
  if (!opts) return;
  const id = await createContainer(client, opts);
  writeStdout(`${id}\n`);
}

/** Flag syntax and argument count, checked without a daemon (docker reports them before connecting); false when --help was printed. */
function preParse(command: 'run' | 'create', path: string, argv: string[]): boolean {
  const set = containerFlagSet(command);
  const spec: Spec = { name: command, usage: RUN_USAGE, short: '', flags: set.defs, interspersed: false, min: 1 };
  let parsed: ParsedFlags;
  try {
    parsed = set.parse(argv);
  } catch (e) {
    if (e instanceof FlagError) throw flagError(path, RUN_USAGE, e.message);
    throw e;
  }
  if (parsed.help) {
    spec.short = command === 'run' ? 'Create and run a new container from an image' : 'Create a new container';
    writeStdout(helpText(path, spec, set));
    return false;
  }
  const err = argsError(path, spec, parsed.args.length);
  if (err) throw err;
  return true;
}

export async function runCommand(argv: string[], connect: Connect, path = 'run'): Promise<void> {
  if (!preParse('run', path, argv)) return;
  // pull option and flag semantics are usage errors (125) that need no daemon either
  try {
    parseRunArgs('run', containerFlagSet('run').parse(argv), { apiVersion: '1.47', consoleSize: [0, 0] });
  } catch (e) {
    if (e instanceof ContainerFlagError) throw new ExitError(125, `berth: ${e.message}\n\nRun 'berth run --help' for more information`);
    throw e;
  }
  const client = await clientAndVersion(connect);
  const opts = parseRun('run', path, argv, client.version, await configProxies(client.host));
  if (!opts) return;
  const body = opts.request.body as { AttachStdin: boolean; AttachStdout: boolean; AttachStderr: boolean; Tty: boolean };
  if (!opts.detach) checkTty(body.AttachStdin, body.Tty);
  else if (opts.attachGiven) throw new ExitError(1, 'conflicting options: cannot specify both --attach and --detach');

  let id: string;
  try {
    id = await createContainer(client, opts);
  } catch (e) {
    throw runError(e);
  }
  const stopSignals = opts.sigProxy ? proxySignals(client, id) : () => {};
  try {
    const attach = body.AttachStdin || body.AttachStdout || body.AttachStderr;
    let streamDone: Promise<StreamEnd> | undefined;
    let cancel: () => void = () => {};
    const cancelled = new Promise<void>((r) => { cancel = r; });
    if (attach) {
      const h = await hijack(client, `${cpath(id)}/attach`, {
        query: { stream: 1, stdin: body.AttachStdin ? 1 : undefined, stdout: body.AttachStdout ? 1 : undefined, stderr: body.AttachStderr ? 1 : undefined, detachKeys: opts.detachKeys },
      });
      streamDone = streamHijacked(h, { tty: body.Tty, stdin: body.AttachStdin, stdout: body.AttachStdout, stderr: body.AttachStderr, detachKeys: opts.detachKeys, cancel: cancelled });
      streamDone.catch(() => {});
    }
    const status = (await waitRequest(client, id, opts.rm ? 'removed' : 'next-exit')).result;
    try {
      await post(client, `${cpath(id)}/start`);
    } catch (e) {
      if (attach) { cancel(); await streamDone?.catch(() => {}); }
      if (opts.rm) await status;
      throw runError(e);
    }
    if (!attach) {
      writeStdout(`${id}\n`);
      return;
    }
    const stopResize = body.Tty && process.stdout.isTTY ? monitorTtySize(client, id, false) : () => {};
    try {
      // Whichever ends first: the stream (then the status), or the container (then the stream).
      const first = await Promise.race([streamDone!.then((how) => ({ kind: 'stream' as const, how })), status.then((s) => ({ kind: 'status' as const, s }))]);
      if (first.kind === 'stream') {
        if (first.how === 'detached') return;
        const s = await status;
        if (s.code !== 0) throw new ExitError(s.code, s.error ? `Error waiting for container: ${s.error}` : '');
        return;
      }
      if (!body.AttachStdout && !body.AttachStderr) cancel();
      await streamDone!.catch(() => {});
      if (first.s.code !== 0) throw new ExitError(first.s.code, first.s.error ? `Error waiting for container: ${first.s.error}` : '');
    } finally {
      stopResize();
    }
  } finally {
    stopSignals();
  }
}

// ---------------------------------------------------------------------------------------------
// start / attach
// ---------------------------------------------------------------------------------------------

const F = (long: string, type: FlagDef['type'], help: string, extra: Partial<FlagDef> = {}): FlagDef => ({ long, type, help, ...extra });

const START: Spec = {
  name: 'start', usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Start one or more stopped containers', interspersed: true, min: 1,
  flags: [
    F('attach', 'bool', 'Attach STDOUT/STDERR and forward signals', { short: 'a' }),
    F('detach-keys', 'string', 'Override the key sequence for detaching a container'),
    F('interactive', 'bool', "Attach container's STDIN", { short: 'i' }),
    F('checkpoint', 'string', 'Restore from this checkpoint', { hidden: true }),
    F('checkpoint-dir', 'string', 'Use a custom checkpoint storage directory', { hidden: true }),
  ],
};

export async function startCommand(argv: string[], connect: Connect, path = 'start'): Promise<void> {
  const p = parseCommand(path, START, argv);
  if (!p) return;
  const attach = p.flags.bool('attach');
  const openStdin = p.flags.bool('interactive');
  const client = await connect();
  if (!attach && !openStdin) {
    const failed: string[] = [];
    for (const c of p.args) {
      try {
        await post(client, `${cpath(c)}/start`);
        writeStdout(`${c}\n`);
      } catch (e) {
        writeStderr(`${errorMessage(e)}\n`);
        failed.push(c);
      }
    }
    if (failed.length) throw new ExitError(1, `Error: failed to start containers: ${failed.join(', ')}`);
    return;
  }
  if (p.args.length > 1) throw new Error('you cannot start and attach multiple containers at once');
  const c = await inspect(client, p.args[0]);
  const tty = Boolean(c.Config.Tty);
  const stopSignals = !tty ? proxySignals(client, c.Id) : () => {};
  try {
    const detachKeys = p.flags.str('detach-keys') || undefined;
    const stdin = openStdin && Boolean(c.Config.OpenStdin);
    const h = await hijack(client, `${cpath(c.Id)}/attach`, { query: { stream: 1, stdin: stdin ? 1 : undefined, stdout: 1, stderr: 1, detachKeys } });
    let cancel: () => void = () => {};
    const cancelled = new Promise<void>((r) => { cancel = r; });
    const streamDone = streamHijacked(h, { tty, stdin, stdout: true, stderr: true, detachKeys, cancel: cancelled });
    streamDone.catch(() => {});
    const status = (await waitRequest(client, c.Id, c.HostConfig.AutoRemove ? 'removed' : 'next-exit')).result;
    try {
      await post(client, `${cpath(c.Id)}/start`);
    } catch (e) {
      cancel();
      await streamDone.catch(() => {});
      if (c.HostConfig.AutoRemove) await status;
      throw e;
    }
    const stopResize = tty && process.stdout.isTTY ? monitorTtySize(client, c.Id, false) : () => {};
    try {
      const how = await streamDone;
      if (how === 'detached') return;
      const s = await status;
      if (s.code !== 0) throw new ExitError(s.code, s.error ? `Error waiting for container: ${s.error}` : '');
    } finally {
      stopResize();
    }
  } finally {
    stopSignals();
  }
}

const ATTACH: Spec = {
  name: 'attach', usage: '[OPTIONS] CONTAINER', short: 'Attach local standard input, output, and error streams to a running container', interspersed: true, min: 1, max: 1,
  flags: [
    F('detach-keys', 'string', 'Override the key sequence for detaching a container'),
    F('no-stdin', 'bool', 'Do not attach STDIN'),
    F('sig-proxy', 'bool', 'Proxy all received signals to the process (default true)'),
  ],
};

async function checkAttachable(client: EngineClient, id: string): Promise<InspectInfo> {
  const c = await inspect(client, id);
  if (!c.State.Running) throw new Error('You cannot attach to a stopped container, start it first');
  if (c.State.Paused) throw new Error('You cannot attach to a paused container, unpause it first');
  if (c.State.Restarting) throw new Error('You cannot attach to a restarting container, wait until it is running');
  return c;
}

export async function attachCommand(argv: string[], connect: Connect, path = 'attach'): Promise<void> {
  const p = parseCommand(path, ATTACH, argv);
  if (!p) return;
  const client = await connect();
  const id = p.args[0];
  // The wait is registered first so an exit during attach is not missed.
  const status = (await waitRequest(client, id)).result;
  const c = await checkAttachable(client, id);
  const noStdin = p.flags.bool('no-stdin');
  const tty = Boolean(c.Config.Tty);
  checkTty(!noStdin, tty);
  const stdin = !noStdin && Boolean(c.Config.OpenStdin);
  const detachKeys = p.flags.str('detach-keys') || undefined;
  const stopSignals = p.flags.bool('sig-proxy', true) && !tty ? proxySignals(client, c.Id) : () => {};
  try {
    const h = await hijack(client, `${cpath(id)}/attach`, { query: { stream: 1, stdin: stdin ? 1 : undefined, stdout: 1, stderr: 1, detachKeys } });
    await checkAttachable(client, id);
    let stopResize = (): void => {};
    if (tty && process.stdout.isTTY) {
      // As docker: a size one larger first, so the program sees a change (SIGWINCH) and redraws
      // when the real size follows.
      await post(client, `${cpath(c.Id)}/resize`, { h: (process.stdout.rows ?? 0) + 1, w: (process.stdout.columns ?? 0) + 1 }).catch(() => {});
      stopResize = monitorTtySize(client, c.Id, false);
    }
    try {
      const how = await streamHijacked(h, { tty, stdin, stdout: true, stderr: true, detachKeys });
      if (how === 'detached') return;
    } finally {
      stopResize();
    }
    const s = await status;
    if (s.error) throw new Error(s.error);
    if (s.code !== 0) throw new ExitError(s.code);
  } finally {
    stopSignals();
  }
}

// ---------------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------------

const EXEC: Spec = {
  name: 'exec', usage: '[OPTIONS] CONTAINER COMMAND [ARG...]', short: 'Execute a command in a running container', interspersed: false, min: 2,
  flags: [
    F('detach', 'bool', 'Detached mode: run command in the background', { short: 'd' }),
    F('detach-keys', 'string', 'Override the key sequence for detaching a container'),
    F('env', 'list', 'Set environment variables', { short: 'e', validate: (v) => validateEnv(v), minVersion: '1.25' }),
    F('env-file', 'list', 'Read in a file of environment variables', { minVersion: '1.25' }),
    F('interactive', 'bool', 'Keep STDIN open even if not attached', { short: 'i' }),
    F('privileged', 'bool', 'Give extended privileges to the command'),
    F('tty', 'bool', 'Allocate a pseudo-TTY', { short: 't' }),
    F('user', 'string', 'Username or UID (format: "<name|uid>[:<group|gid>]")', { short: 'u' }),
    F('workdir', 'string', 'Working directory inside the container', { short: 'w', minVersion: '1.35' }),
  ],
};

export async function execCommand(argv: string[], connect: Connect, path = 'exec'): Promise<void> {
  const p = parseCommand(path, EXEC, argv);
  if (!p) return;
  const f = p.flags;
  const [container, ...cmd] = p.args;
  const client = await connect();
  await client.negotiate();
  const refused = unsupportedFlag(p.set, p.parsed, client.version, compareVersions);
  if (refused) throw new ExitError(1, refused);
  const env: string[] = [];
  for (const file of f.list('env-file')) {
    try { env.push(...readKVFile(file, (k) => process.env[k])); } catch (e) { throw new Error((e as Error).message); }
  }
  env.push(...f.list('env'));
  const detach = f.bool('detach');
  const tty = f.bool('tty');
  const attachStdin = !detach && f.bool('interactive');
  await inspect(client, container);
  if (!detach) checkTty(attachStdin, tty);
  const size = tty ? consoleSize() : undefined;
  const config: Record<string, unknown> = {
    User: f.str('user'), Privileged: f.bool('privileged'), Tty: tty,
    ...(size ? { ConsoleSize: size } : {}),
    AttachStdin: attachStdin, AttachStderr: !detach, AttachStdout: !detach, Detach: detach,
    DetachKeys: f.str('detach-keys'), Env: env.length ? env : null, WorkingDir: f.str('workdir'), Cmd: cmd,
  };
  const created = await client.json<{ Id: string }>('POST', `${cpath(container)}/exec`, { body: config });
  if (!created?.Id) throw new Error('exec ID empty');
  const execId = created.Id;
  if (detach) {
    await post(client, `/exec/${encodeURIComponent(execId)}/start`, undefined, { Detach: true, Tty: tty, ...(size ? { ConsoleSize: size } : {}) });
    return;
  }
  const h = await hijack(client, `/exec/${encodeURIComponent(execId)}/start`, { body: { Detach: false, Tty: tty, ...(size ? { ConsoleSize: size } : {}) } });
  const stopResize = tty && process.stdin.isTTY ? monitorTtySize(client, execId, true) : () => {};
  try {
    const how = await streamHijacked(h, { tty, stdin: attachStdin, stdout: true, stderr: true, detachKeys: f.str('detach-keys') || undefined });
    if (how === 'detached') throw new EscapeError();
  } catch (e) {
    if (e instanceof EscapeError) throw new ExitError(1, e.message);
    throw e;
  } finally {
    stopResize();
  }
  const info = await client.get<{ ExitCode?: number | null }>(`/exec/${encodeURIComponent(execId)}/json`);
  const code = info.ExitCode ?? 0;
  if (code !== 0) throw new ExitError(code);
}

// ---------------------------------------------------------------------------------------------
// logs / wait / stop / kill / restart / rm
// ---------------------------------------------------------------------------------------------

const LOGS: Spec = {
  name: 'logs', usage: '[OPTIONS] CONTAINER', short: 'Fetch the logs of a container', interspersed: true, min: 1, max: 1,
  flags: [
    F('details', 'bool', 'Show extra details provided to logs'),
    F('follow', 'bool', 'Follow log output', { short: 'f' }),
    F('since', 'string', 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)'),
    F('tail', 'string', 'Number of lines to show from the end of the logs (default "all")', { short: 'n' }),
    F('timestamps', 'bool', 'Show timestamps', { short: 't' }),
    F('until', 'string', 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)', { minVersion: '1.35' }),
  ],
};

export async function logsCommand(argv: string[], connect: Connect, path = 'logs'): Promise<void> {
  const p = parseCommand(path, LOGS, argv);
  if (!p) return;
  const f = p.flags;
  const client = await connect();
  const c = await inspect(client, p.args[0]);
  const ts = (name: string): string | undefined => {
    if (!f.str(name)) return undefined;
    try {
      return getTimestamp(f.str(name));
    } catch (e) {
      throw new Error(`invalid value for ${JSON.stringify(name)}: ${(e as Error).message}`);
    }
  };
  const since = ts('since');
  const until = ts('until');
  const res = await client.request('GET', `${cpath(c.Id)}/logs`, {
    query: {
      stdout: '1', stderr: '1', since, until,
      timestamps: f.bool('timestamps') ? '1' : undefined,
      details: f.bool('details') ? '1' : undefined,
      follow: f.bool('follow') ? '1' : undefined,
      tail: f.str('tail', 'all'),
    },
  });
  if (c.Config.Tty) {
    for await (const chunk of res) writeFd(1, chunk as Buffer);
    return;
  }
  const d = new Demuxer({ stdout: (b) => writeFd(1, b), stderr: (b) => writeFd(2, b) });
  for await (const chunk of res) d.push(chunk as Buffer);
}

const WAIT: Spec = { name: 'wait', usage: 'CONTAINER [CONTAINER...]', short: 'Block until one or more containers stop, then print their exit codes', interspersed: true, min: 1, flags: [] };

export async function waitCommand(argv: string[], connect: Connect, path = 'wait'): Promise<void> {
  const p = parseCommand(path, WAIT, argv);
  if (!p) return;
  const client = await connect();
  const errors: unknown[] = [];
  for (const c of p.args) {
    try {
      const res = await client.request('POST', `${cpath(c)}/wait`);
      const r = JSON.parse((await readAll(res)).toString('utf8')) as { StatusCode: number };
      writeStdout(`${r.StatusCode}\n`);
    } catch (e) {
      errors.push(e);
    }
  }
  const err = joinErrors(errors);
  if (err) throw err;
}

const STOP_FLAGS: FlagDef[] = [
  F('signal', 'string', 'Signal to send to the container', { short: 's' }),
  F('timeout', 'int', 'Seconds to wait before killing the container', { short: 't', validate: (v) => {
    if (!/^[+-]?\d+$/.test(v)) throw new Error(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
    return String(Number(v));
  } }),
  F('time', 'int', 'Seconds to wait before killing the container (deprecated: use --timeout)', { hidden: true, alias: 'timeout', deprecated: 'use --timeout instead' }),
];

const STOP: Spec = { name: 'stop', usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Stop one or more running containers', interspersed: true, min: 1, flags: STOP_FLAGS };
const RESTART: Spec = { name: 'restart', usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Restart one or more containers', interspersed: true, min: 1, flags: STOP_FLAGS };

export async function stopCommand(argv: string[], connect: Connect, path = 'stop'): Promise<void> {
  const p = parseCommand(path, STOP, argv);
  if (!p) return;
  const client = await connect();
  const t = p.flags.changed('timeout') ? p.flags.num('timeout') : undefined;
  const sig = p.flags.str('signal') || undefined;
  const results = await parallel(p.args, (c) => post(client, `${cpath(c)}/stop`, { signal: sig, t }));
  const errors: unknown[] = [];
  results.forEach((r, i) => { if (r.ok) writeStdout(`${p.args[i]}\n`); else errors.push(r.error); });
  const err = joinErrors(errors);
  if (err) throw err;
}

export async function restartCommand(argv: string[], connect: Connect, path = 'restart'): Promise<void> {
  const p = parseCommand(path, RESTART, argv);
  if (!p) return;
  const client = await connect();
  const t = p.flags.changed('timeout') ? p.flags.num('timeout') : undefined;
  const sig = p.flags.str('signal') || undefined;
  const errors: unknown[] = [];
  for (const c of p.args) {
    try {
      await post(client, `${cpath(c)}/restart`, { signal: sig, t });
      writeStdout(`${c}\n`);
    } catch (e) {
      errors.push(e);
    }
  }
  const err = joinErrors(errors);
  if (err) throw err;
}

const KILL: Spec = {
  name: 'kill', usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Kill one or more running containers', interspersed: true, min: 1,
  flags: [F('signal', 'string', 'Signal to send to the container', { short: 's' })],
};

export async function killCommand(argv: string[], connect: Connect, path = 'kill'): Promise<void> {
  const p = parseCommand(path, KILL, argv);
  if (!p) return;
  const client = await connect();
  const sig = p.flags.str('signal') || undefined;
  const results = await parallel(p.args, (c) => post(client, `${cpath(c)}/kill`, { signal: sig }));
  const errors: unknown[] = [];
  results.forEach((r, i) => { if (r.ok) writeStdout(`${p.args[i]}\n`); else errors.push(r.error); });
  const err = joinErrors(errors);
  if (err) throw err;
}

const RM: Spec = {
  name: 'rm', usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Remove one or more containers', interspersed: true, min: 1, aliases: ['berth container rm', 'berth container remove', 'berth rm'],
  flags: [
    F('force', 'bool', 'Force the removal of a running container (uses SIGKILL)', { short: 'f' }),
    F('link', 'bool', 'Remove the specified link', { short: 'l' }),
    F('volumes', 'bool', 'Remove anonymous volumes associated with the container', { short: 'v' }),
  ],
};

export async function rmCommand(argv: string[], connect: Connect, path = 'rm'): Promise<void> {
  const p = parseCommand(path, RM, argv);
  if (!p) return;
  const client = await connect();
  const force = p.flags.bool('force');
  const results = await parallel(p.args, async (c0) => {
    const c = c0.replace(/^\/+|\/+$/g, '');
    if (c === '') throw new Error('container name cannot be empty');
    const res = await client.request('DELETE', cpath(c), {
      query: { v: p.flags.bool('volumes') ? '1' : undefined, link: p.flags.bool('link') ? '1' : undefined, force: force ? '1' : undefined },
    });
    res.resume();
  });
  const errors: unknown[] = [];
  results.forEach((r, i) => {
    if (r.ok) { writeStdout(`${p.args[i]}\n`); return; }
    if (force && r.error instanceof ApiResponseError && r.error.statusCode === 404) { writeStderr(`${errorMessage(r.error)}\n`); return; }
    errors.push(r.error);
  });
  const err = joinErrors(errors);
  if (err) throw err;
}

// ---------------------------------------------------------------------------------------------
// registration
// ---------------------------------------------------------------------------------------------

type Handler = (argv: string[], connect: Connect, path: string) => Promise<void>;

const COMMANDS: Array<{ name: string; short: string; handler: Handler; aliases?: string[] }> = [
  { name: 'run', short: 'Create and run a new container from an image', handler: runCommand },
  { name: 'create', short: 'Create a new container', handler: createCommand },
  { name: 'start', short: 'Start one or more stopped containers', handler: startCommand },
  { name: 'attach', short: 'Attach local standard input, output, and error streams to a running container', handler: attachCommand },
  { name: 'exec', short: 'Execute a command in a running container', handler: execCommand },
  { name: 'logs', short: 'Fetch the logs of a container', handler: logsCommand },
  { name: 'wait', short: 'Block until one or more containers stop, then print their exit codes', handler: waitCommand },
  { name: 'stop', short: 'Stop one or more running containers', handler: stopCommand },
  { name: 'kill', short: 'Kill one or more running containers', handler: killCommand },
  { name: 'restart', short: 'Restart one or more containers', handler: restartCommand },
  { name: 'rm', short: 'Remove one or more containers', handler: rmCommand, aliases: ['remove'] },
];

/** The command names whose arguments berth.ts must pass through unparsed (top level and under `container`). */
export const RAW_ARGS_COMMANDS = new Set(COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]));

/** `container` may be registered by another module too: one group, shared. */
export function containerGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'container') ?? program.command('container').description('manage containers');
}

export function registerContainerRunCommands(program: Command, connect: Connect): void {
  const container = containerGroup(program);
  for (const c of COMMANDS) {
    const add = (parent: Command, path: string, aliases: string[]): void => {
      const cmd = parent.command(c.name).description(c.short)
        .argument('[args...]').usage('[OPTIONS] …')
        .helpOption(false).allowUnknownOption().allowExcessArguments()
        .action((args: string[]) => c.handler(args ?? [], connect, path));
      for (const a of aliases) cmd.alias(a);
    };
    // docker has `rm` at the top level and `rm`/`remove` under container
    add(program, c.name, []);
    add(container, `container ${c.name}`, c.aliases ?? []);
  }
}

/**
 * argv as berth.ts gets it → argv for commander: the arguments of these commands are put
 * behind "--" so neither the program's options (-v is --version there, -H --host, -h --help)
 * nor commander's option parsing touch them; the commands parse them with docker's rules.
 */
export function protectRawArgs(argv: string[]): string[] {
  const globalsWithValue = new Set(['-H', '--host', '--data-root', '--exec-root', '--config-file', '-l', '--log-level']);
  let i = 0;
  while (i < argv.length && argv[i].startsWith('-') && argv[i] !== '--') {
    i += globalsWithValue.has(argv[i]) ? 2 : 1;
  }
  if (i >= argv.length) return argv;
  let j = i;
  if (argv[j] === 'container') j++;
  if (j >= argv.length || !RAW_ARGS_COMMANDS.has(argv[j])) return argv;
  return [...argv.slice(0, j + 1), '--', ...argv.slice(j + 1)];
}
