// The container inspection and management commands as an Engine API client, with the docker
// CLI's (28.x) flags, output and exit codes: ps (container ls/list), inspect (container inspect
// and the generic `inspect` over containers, images, networks and volumes), top, stats, port,
// rename, pause, unpause, update, diff, export, commit, container prune. cp lives in cp.ts.
//
// Every decision about containers is the daemon's; these functions turn JSON into docker's text.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

import { bytesSize, displaySize, humanSize, ramInBytes } from '../../api/units.ts';
import { CredentialStore, CredentialsError } from '../../image/registry/credentials.ts';
import { parseNormalizedReference, familiarName } from '../../image/reference.ts';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { ApiResponseError, readAll, type EngineClient } from '../client.ts';
import { renderList, shortId } from '../format/output.ts';
import { DOCKER_TABLE, tabwrite } from '../format/table.ts';
import { Template, TemplateError } from '../format/template.ts';
import {
  CONTAINER_HEADERS, ContainerRow, containerFormat, headerLabel, joinHostPort, type ContainerSummary,
} from '../format/containers.ts';
import { checkArgs, encodeFilters, errorMessage, imagePath, jsonIndent, parseFilterFlags, promptForConfirmation, writeAtomically, writeStreamToStdout } from './common.ts';
import { goMarshal, parseBoolFlag } from './images.ts';
import { ExitError } from './system.ts';

export type Connect = () => Promise<EngineClient>;

/** A container id or name as a path segment. */
export function containerPath(idOrName: string): string {
  return encodeURIComponent(idOrName);
}

/** A string key of docker's config.json (psFormat, statsFormat), ignoring an unreadable file as docker does. */
async function configFormat(key: 'psFormat' | 'statsFormat'): Promise<string | undefined> {
  try {
    const cfg = await new CredentialStore().read() as Record<string, unknown>;
    return typeof cfg[key] === 'string' && cfg[key] ? cfg[key] as string : undefined;
  } catch (e) {
    if (e instanceof CredentialsError) return undefined;
    throw e;
  }
}

/** A bad flag value as docker 28 reports it: status 125, the reason, the command's usage. */
function flagValueError(value: string, flag: string, why: string, command: string, usage: string): ExitError {
  return new ExitError(125, `invalid argument "${value}" for "${flag}" flag: ${why}\n\nUsage:  berth ${command} ${usage}\n\nRun 'berth ${command} --help' for more information`);
}

/** pflag's int parsing of a flag value. */
function parseIntFlag(value: string | undefined, flag: string, fallback: number, command: string, usage: string): number {
  if (value === undefined) return fallback;
  if (!/^[+-]?\d+$/.test(value)) throw flagValueError(value, flag, `strconv.ParseInt: parsing "${value}": invalid syntax`, command, usage);
  return Number(value);
}

// ---------------------------------------------------------------------------------------------
// ps / container ls
// ---------------------------------------------------------------------------------------------

export interface PsOptions {
  quiet?: boolean;
  size?: boolean;
  all?: boolean;
  noTrunc?: boolean;
  latest?: boolean;
  last?: string;
  format?: string;
  filter?: string[];
}

/** The headers of `ps` tables, with docker's header Label method. */
function psHeaders(): Record<string, string> {
  return { ...CONTAINER_HEADERS, Label: headerLabel as unknown as string };
}

/** Renders `ps` output from GET /containers/json (exported for tests). */
export function renderContainers(containers: ContainerSummary[], opts: { format?: string; quiet?: boolean; size?: boolean; noTrunc?: boolean; now?: number }): string {
  const format = containerFormat(opts.format ?? '', Boolean(opts.quiet), Boolean(opts.size));
  const rows = containers.map((c) => new ContainerRow(c, !opts.noTrunc, opts.now));
  return renderList(rows, { format, defaultTable: containerFormat('table', false, Boolean(opts.size)), headers: psHeaders() });
}

export async function psCommand(args: string[], opts: PsOptions, connect: Connect, command = 'ps'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS]', short: 'List containers', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command, usage: '[OPTIONS]', flag: '-f, --filter' });
  let limit = parseIntFlag(opts.last, '-n, --last', -1, command, '[OPTIONS]');
  if (opts.latest && limit === -1) limit = 1;
  let format = opts.format ?? '';
  if (format === '') format = (await configFormat('psFormat')) ?? '';
  else if (opts.quiet) writeStderr('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
  let size = Boolean(opts.size);
  if (format !== '') {
    // docker parses and runs the raw format on an empty row first: errors are reported before
    // any request, and a template that reads .Size turns on --size.
    let tmpl: Template;
    try {
      tmpl = Template.parse(format);
    } catch (e) {
      throw new Error(`failed to parse template: ${(e as Error).message}`);
    }
    const probe = new ContainerRow({ Id: '', Image: '', Command: '', Created: 0, State: '', Status: '' }, false);
    try {
      tmpl.execute(probe);
    } catch (e) {
      if (e instanceof TemplateError) throw new Error(`failed to execute template: ${e.message}`);
      throw e;
    }
    if (!opts.quiet && !size && probe.used.has('Size')) size = true;
  }
  const client = await connect();
  const containers = await client.get<ContainerSummary[] | null>('/containers/json', {
    all: opts.all ? '1' : undefined,
    limit: limit > 0 ? String(limit) : undefined,
    size: size ? '1' : undefined,
    filters: encodeFilters(filters) || undefined,
  });
  writeStdout(renderContainers(containers ?? [], { format, quiet: opts.quiet, size, noTrunc: opts.noTrunc }));
}

// ---------------------------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------------------------

/**
 * The daemon's JSON as docker runs templates over it when the typed struct does not apply:
 * missingkey=error, the daemon's key order kept for {{json}}.
 */
function strictRaw(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strictRaw);
  if (v === null || typeof v !== 'object') return v;
  const source = v as Record<string, unknown>;
  return new Proxy(source, {
    get: (t, k) => (typeof k === 'string' && Object.hasOwn(t, k) ? strictRaw(t[k]) : Reflect.get(t, k)),
    getOwnPropertyDescriptor: (t, k) => {
      if (typeof k === 'string' && !Object.hasOwn(t, k)) throw new Error(`map has no entry for key ${JSON.stringify(k)}`);
      const d = Reflect.getOwnPropertyDescriptor(t, k);
      return d && typeof k === 'string' ? { ...d, value: strictRaw(t[k]) } : d;
    },
  });
}

/** An object to inspect: its raw JSON, or an error to report. */
type Lookup = (ref: string) => Promise<{ raw: string; kind?: string }>;

/** docker's inspect.Inspect: indented JSON array, compact with "json", or a template per object. */
async function runInspect(refs: string[], format: string, lookup: Lookup): Promise<void> {
  let tmpl: Template | undefined;
  if (format !== '' && format !== 'json') {
    try {
      tmpl = Template.parse(format);
    } catch (e) {
      throw new ExitError(64, `template parsing error: ${(e as Error).message}`);
    }
  }
  const raws: string[] = [];
  let templated = '';
  const errors: string[] = [];
  for (const ref of refs) {
    let raw: string;
    try {
      raw = (await lookup(ref)).raw;
    } catch (e) {
      errors.push(errorMessage(e));
      continue;
    }
    if (!tmpl) { raws.push(raw); continue; }
    try {
      templated += `${tmpl.execute(strictRaw(JSON.parse(raw)))}\n`;
    } catch (e) {
      errors.push(`template parsing error: ${(e as Error).message}`);
    }
  }
  if (tmpl) writeStdout(templated || '\n');
  else if (raws.length === 0) writeStdout('[]\n');
  else if (format === 'json') writeStdout(`${jsonIndent(`[${raws.join(',')}]`, '').replace(/\n/g, '').replace(/": /g, '":')}\n`);
  else writeStdout(`${jsonIndent(`[${raws.join(',')}]`)}\n`);
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

async function rawGet(client: EngineClient, path: string, query?: Record<string, string | undefined>): Promise<string> {
  const res = await client.request('GET', path, { query });
  return (await readAll(res)).toString('utf8').trim();
}

export async function containerInspectCommand(args: string[], opts: { format?: string; size?: boolean }, connect: Connect, command = 'container inspect'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Display detailed information on one or more containers', min: 1 });
  const client = await connect();
  await runInspect(args, opts.format ?? '', async (ref) => ({ raw: await rawGet(client, `/containers/${containerPath(ref)}/json`, { size: opts.size ? '1' : undefined }) }));
}

const INSPECT_TYPES = ['config', 'container', 'image', 'network', 'node', 'plugin', 'secret', 'service', 'task', 'volume'];

/** Errors that mean "not this kind of object" while `inspect` looks through the kinds. */
function skippable(e: unknown): boolean {
  if (!(e instanceof ApiResponseError)) return false;
  return e.statusCode === 404 || e.message.includes('not supported') || e.message.includes('invalid reference format');
}

export async function inspectAnyCommand(args: string[], opts: { format?: string; size?: boolean; type?: string }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'inspect', usage: '[OPTIONS] NAME|ID [NAME|ID...]', short: 'Return low-level information on Docker objects', min: 1 });
  const type = opts.type;
  if (type === '') throw new Error(`type is empty: must be one of "${INSPECT_TYPES.join('", "')}"`);
  if (type !== undefined && !INSPECT_TYPES.includes(type)) throw new Error(`unknown type: ${JSON.stringify(type)}: must be one of "${INSPECT_TYPES.join('", "')}"`);
  const client = await connect();
  // Swarm kinds are only tried when asked for by --type: Berth has no swarm mode.
  const kinds: Array<{ kind: string; size: boolean; get: (ref: string) => Promise<string> }> = [
    { kind: 'container', size: true, get: (ref) => rawGet(client, `/containers/${containerPath(ref)}/json`, { size: opts.size ? '1' : undefined }) },
    { kind: 'image', size: false, get: (ref) => rawGet(client, `/images/${imagePath(ref)}/json`) },
    { kind: 'network', size: false, get: (ref) => rawGet(client, `/networks/${encodeURIComponent(ref)}`) },
    { kind: 'volume', size: false, get: (ref) => rawGet(client, `/volumes/${encodeURIComponent(ref)}`) },
    { kind: 'plugin', size: false, get: (ref) => rawGet(client, `/plugins/${encodeURIComponent(ref)}/json`) },
  ];
  const swarmKinds: Record<string, string> = { service: 'services', task: 'tasks', node: 'nodes', secret: 'secrets', config: 'configs' };
  for (const [kind, path] of Object.entries(swarmKinds)) {
    if (type === kind) kinds.push({ kind, size: false, get: (ref) => rawGet(client, `/${path}/${encodeURIComponent(ref)}`) });
  }
  await runInspect(args, opts.format ?? '', async (ref) => {
    for (const k of kinds) {
      if (type !== undefined && k.kind !== type) continue;
      try {
        const raw = await k.get(ref);
        if (opts.size && !k.size) writeStderr(`WARNING: --size ignored for ${k.kind}\n`);
        return { raw, kind: k.kind };
      } catch (e) {
        if (type === undefined && skippable(e)) continue;
        throw e;
      }
    }
    throw new Error(`Error: No such object: ${ref}`);
  });
}

// ---------------------------------------------------------------------------------------------
// top / port / rename / pause / unpause / diff
// ---------------------------------------------------------------------------------------------

export async function topCommand(args: string[], connect: Connect, command = 'top'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER [ps OPTIONS]', short: 'Display the running processes of a container', min: 1 });
  const [ctr, ...psArgs] = args;
  const client = await connect();
  const top = await client.get<{ Titles?: string[] | null; Processes?: string[][] | null }>(`/containers/${containerPath(ctr)}/top`, {
    ps_args: psArgs.length ? psArgs.join(' ') : undefined,
  });
  let text = `${(top.Titles ?? []).join('\t')}\n`;
  for (const p of top.Processes ?? []) text += `${p.join('\t')}\n`;
  writeStdout(tabwrite(text, { minWidth: 20, padding: 3 }));
}

/** sortorder.NaturalLess: digit runs compare as numbers, the rest byte by byte. */
export function naturalLess(a: string, b: string): boolean {
  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const da = isDigit(a[i]);
    const db = isDigit(b[j]);
    if (da !== db) return da; // digits sort before other characters
    if (!da) {
      if (a[i] !== b[j]) return a[i] < b[j];
      i++; j++;
      continue;
    }
    let ei = i; while (isDigit(a[ei])) ei++;
    let ej = j; while (isDigit(b[ej])) ej++;
    // Leading zeros are ignored for the value; with equal values the shorter run comes first.
    let zi = i; while (zi < ei - 1 && a[zi] === '0') zi++;
    let zj = j; while (zj < ej - 1 && b[zj] === '0') zj++;
    const na = a.slice(zi, ei);
    const nb = b.slice(zj, ej);
    if (na.length !== nb.length) return na.length < nb.length;
    if (na !== nb) return na < nb;
    if (ei - i !== ej - j) return ei - i < ej - j;
    i = ei; j = ej;
  }
  return a.length - i < b.length - j;
}

type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;

export async function portCommand(args: string[], connect: Connect, command = 'port'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]', short: 'List port mappings or a specific mapping for the container', min: 1, max: 2 });
  const [ctr, spec] = args;
  const client = await connect();
  const info = await client.get<{ NetworkSettings?: { Ports?: PortMap | null } }>(`/containers/${containerPath(ctr)}/json`);
  const ports = info.NetworkSettings?.Ports ?? {};
  const out: string[] = [];
  if (spec !== undefined) {
    const slash = spec.indexOf('/');
    const port = slash >= 0 ? spec.slice(0, slash) : spec;
    const proto = (slash >= 0 ? spec.slice(slash + 1) : '') || 'tcp';
    if (!/^\d+$/.test(port) || Number(port) > 65535) {
      const why = /^\d+$/.test(port) ? 'value out of range' : 'invalid syntax';
      throw new Error(`Error: invalid port (${port}): strconv.ParseUint: parsing ${JSON.stringify(port)}: ${why}`);
    }
    const frontends = ports[`${port}/${proto}`];
    if (!frontends || frontends.length === 0) throw new Error(`Error: No public port '${spec}' published for ${ctr}`);
    for (const f of frontends) out.push(joinHostPort(f.HostIp ?? '', f.HostPort ?? ''));
  } else {
    for (const [from, frontends] of Object.entries(ports)) {
      for (const f of frontends ?? []) out.push(`${from} -> ${joinHostPort(f.HostIp ?? '', f.HostPort ?? '')}`);
    }
  }
  if (out.length === 0) return;
  out.sort((a, b) => (naturalLess(a, b) ? -1 : naturalLess(b, a) ? 1 : 0));
  writeStdout(`${out.join('\n')}\n`);
}

export async function renameCommand(args: string[], connect: Connect, command = 'rename'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER NEW_NAME', short: 'Rename a container', min: 2, max: 2 });
  const oldName = args[0].trim();
  const newName = args[1].trim();
  if (oldName === '' || newName === '') throw new Error('Error: Neither old nor new names may be empty');
  const client = await connect();
  try {
    (await client.request('POST', `/containers/${containerPath(oldName)}/rename`, { query: { name: newName } })).resume();
  } catch (e) {
    writeStderr(`${errorMessage(e)}\n`);
    throw new Error(`Error: failed to rename container named ${oldName}`);
  }
}

async function eachContainer(args: string[], connect: Connect, op: (client: EngineClient, ctr: string) => Promise<void>): Promise<void> {
  const client = await connect();
  const errors: string[] = [];
  for (const ctr of args) {
    try {
      await op(client, ctr);
      writeStdout(`${ctr}\n`);
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

export async function pauseCommand(args: string[], connect: Connect, command = 'pause'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER [CONTAINER...]', short: 'Pause all processes within one or more containers', min: 1 });
  await eachContainer(args, connect, async (client, ctr) => { (await client.request('POST', `/containers/${containerPath(ctr)}/pause`)).resume(); });
}

export async function unpauseCommand(args: string[], connect: Connect, command = 'unpause'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER [CONTAINER...]', short: 'Unpause all processes within one or more containers', min: 1 });
  await eachContainer(args, connect, async (client, ctr) => { (await client.request('POST', `/containers/${containerPath(ctr)}/unpause`)).resume(); });
}

const CHANGE_KINDS = ['C', 'A', 'D'];

export async function diffCommand(args: string[], connect: Connect, command = 'diff'): Promise<void> {
  checkArgs(args, { command, usage: 'CONTAINER', short: "Inspect changes to files or directories on a container's filesystem", min: 1, max: 1 });
  if (args[0] === '') throw new Error('Container name cannot be empty');
  const client = await connect();
  const changes = await client.get<Array<{ Path: string; Kind: number }> | null>(`/containers/${containerPath(args[0])}/changes`);
  let out = '';
  for (const c of changes ?? []) out += `${CHANGE_KINDS[c.Kind] ?? ''} ${c.Path}\n`;
  writeStdout(out);
}

// ---------------------------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------------------------

export interface UpdateOptions {
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuShares?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  kernelMemory?: string;
  restart?: string;
  pidsLimit?: string;
  cpus?: string;
}

function flagError(value: string, flag: string, why: string): ExitError {
  return flagValueError(value, flag, why, 'update', '[OPTIONS] CONTAINER [CONTAINER...]');
}

function memFlag(value: string | undefined, flag: string, swap = false): number {
  if (value === undefined || value === '') return 0;
  if (swap && value === '-1') return -1;
  try {
    return ramInBytes(value);
  } catch (e) {
    // go-units names the unknown suffix when the value starts with a number.
    const m = /^\d+(?:\.\d+)? ?(.+)$/.exec(value);
    throw flagError(value, flag, m ? `invalid suffix: '${m[1]}'` : `invalid size: '${value}'`);
  }
}

function intFlag(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  if (!/^[+-]?\d+$/.test(value)) throw flagError(value, flag, `strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

/** docker's NanoCPUs flag: a decimal number of CPUs, kept exact to the nanocpu. */
export function parseNanoCpus(value: string): number {
  const m = /^(\d*)(?:\.(\d*))?$/.exec(value.trim());
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) throw new Error(`failed to parse ${value} as a rational number`);
  const frac = (m[2] ?? '').padEnd(9, '0');
  if (/[1-9]/.test(frac.slice(9))) throw new Error('value is too precise');
  return Number(m[1] || '0') * 1e9 + Number(frac.slice(0, 9));
}

/** docker's opts.ParseRestartPolicy. */
export function parseRestartPolicy(policy: string): { Name: string; MaximumRetryCount: number } {
  const i = policy.indexOf(':');
  const name = i >= 0 ? policy.slice(0, i) : policy;
  const count = i >= 0 ? policy.slice(i + 1) : '';
  if (i >= 0 && name === '') throw new Error('invalid restart policy format: no policy provided before colon');
  let max = 0;
  if (count !== '') {
    if (!/^[+-]?\d+$/.test(count)) throw new Error('invalid restart policy format: maximum retry count must be an integer');
    max = Number(count);
  }
  return { Name: name, MaximumRetryCount: max };
}

export async function updateCommand(args: string[], opts: UpdateOptions, connect: Connect, command = 'update'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] CONTAINER [CONTAINER...]', short: 'Update configuration of one or more containers', min: 1 });
  if (Object.values(opts).every((v) => v === undefined)) throw new Error('you must provide one or more flags when using this command');
  let nanoCpus = 0;
  if (opts.cpus !== undefined) {
    try { nanoCpus = parseNanoCpus(opts.cpus); } catch (e) { throw flagError(opts.cpus, '--cpus', (e as Error).message); }
  }
  const blkio = intFlag(opts.blkioWeight, '--blkio-weight');
  const restart = opts.restart ? parseRestartPolicy(opts.restart) : { Name: '', MaximumRetryCount: 0 };
  const pids = intFlag(opts.pidsLimit, '--pids-limit');
  const body: Record<string, unknown> = {
    BlkioWeight: blkio,
    CpuShares: intFlag(opts.cpuShares, '-c, --cpu-shares'),
    Memory: memFlag(opts.memory, '-m, --memory'),
    NanoCpus: nanoCpus,
    CpuPeriod: intFlag(opts.cpuPeriod, '--cpu-period'),
    CpuQuota: intFlag(opts.cpuQuota, '--cpu-quota'),
    CpuRealtimePeriod: intFlag(opts.cpuRtPeriod, '--cpu-rt-period'),
    CpuRealtimeRuntime: intFlag(opts.cpuRtRuntime, '--cpu-rt-runtime'),
    CpusetCpus: opts.cpusetCpus ?? '',
    CpusetMems: opts.cpusetMems ?? '',
    KernelMemory: memFlag(opts.kernelMemory, '--kernel-memory'),
    MemoryReservation: memFlag(opts.memoryReservation, '--memory-reservation'),
    MemorySwap: memFlag(opts.memorySwap, '--memory-swap', true),
    RestartPolicy: restart,
  };
  if (pids !== 0) body.PidsLimit = pids;
  const client = await connect();
  const warnings: string[] = [];
  const errors: string[] = [];
  for (const ctr of args) {
    try {
      const r = await client.json<{ Warnings?: string[] | null }>('POST', `/containers/${containerPath(ctr)}/update`, { body });
      writeStdout(`${ctr}\n`);
      warnings.push(...(r?.Warnings ?? []));
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (warnings.length) writeStdout(`${warnings.join('\n')}\n`);
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// export / commit / container prune
// ---------------------------------------------------------------------------------------------

/** Copies a stream to fd 1 (kept under this name for cp.ts). */
export const streamToStdout = writeStreamToStdout;

/** docker's atomicwriter: a temp file beside the target, renamed over it when complete (mode 0600). */
async function writeFileAtomic(path: string, source: AsyncIterable<Buffer>): Promise<void> {
  const abs = resolve(path);
  const st = existsSync(abs) ? statSync(abs) : undefined;
  if (st && !st.isFile()) throw new Error(`failed to export container: ${path} is not a regular file`);
  if (!existsSync(dirname(abs))) throw new Error(`failed to export container: stat ${dirname(path)}: no such file or directory`);
  await writeAtomically(path, source, (base) => `.${base}.${randomBytes(4).toString('hex')}.tmp`);
}

export async function exportCommand(args: string[], opts: { output?: string }, connect: Connect, command = 'export'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] CONTAINER', short: "Export a container's filesystem as a tar archive", min: 1, max: 1 });
  if (!opts.output && process.stdout.isTTY) throw new Error('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const client = await connect();
  const res = await client.request('GET', `/containers/${containerPath(args[0])}/export`);
  if (opts.output) await writeFileAtomic(opts.output, res);
  else await streamToStdout(res);
}

export interface CommitOptions { author?: string; message?: string; change?: string[]; pause?: string | boolean }

export async function commitCommand(args: string[], opts: CommitOptions, connect: Connect, command = 'commit'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]', short: "Create a new image from a container's changes", min: 1, max: 2 });
  // "-p=false" reaches commander as the short flag with the value "=false".
  const pauseFlag = typeof opts.pause === 'string' && opts.pause.startsWith('=') ? opts.pause.slice(1) : opts.pause;
  const pause = parseBoolFlag(pauseFlag, '-p, --pause') ?? true;
  const [ctr, refText] = args;
  let repo = '';
  let tag = '';
  if (refText) {
    const ref = parseNormalizedReference(refText);
    if (ref.digest !== undefined) throw new Error('refusing to create a tag with a digest reference');
    tag = ref.tag ?? 'latest';
    repo = familiarName(ref);
  }
  const client = await connect();
  const r = await client.json<{ Id: string }>('POST', '/commit', {
    query: {
      container: ctr, repo, tag, comment: opts.message ?? '', author: opts.author ?? '',
      changes: opts.change?.length ? opts.change : undefined,
      pause: pause ? undefined : '0',
    },
  });
  writeStdout(`${r.Id}\n`);
}

/** A declined prompt: docker exits 0 without a message. */
class Cancelled extends ExitError {
  constructor() { super(0); }
}

export async function containerPruneCommand(args: string[], opts: { force?: boolean; filter?: string[] }, connect: Connect): Promise<void> {
  checkArgs(args, { command: 'container prune', usage: '[OPTIONS]', short: 'Remove all stopped containers', max: 0 });
  const filters = parseFilterFlags(opts.filter ?? [], { command: 'container prune', usage: '[OPTIONS]', flag: '--filter' });
  if (!opts.force && !promptForConfirmation('WARNING! This will remove all stopped containers.\nAre you sure you want to continue?')) throw new Cancelled();
  const client = await connect();
  const report = await client.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/containers/prune', {
    query: { filters: encodeFilters(filters) },
  });
  const deleted = report?.ContainersDeleted ?? [];
  let space = 0;
  if (deleted.length) {
    writeStdout(`Deleted Containers:\n${deleted.map((id) => `${id}\n`).join('')}\n`);
    space = report.SpaceReclaimed ?? 0;
  }
  writeStdout(`Total reclaimed space: ${humanSize(space)}\n`);
}

// ---------------------------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------------------------

/** The parts of GET /containers/{id}/stats that docker's table reads. */
export interface StatsSample {
  id?: string;
  name?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null }; system_cpu_usage?: number; online_cpus?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> | null };
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }> | null;
  pids_stats?: { current?: number };
}

export interface StatsEntry {
  Container: string;
  Name: string;
  ID: string;
  CPUPercentage: number;
  Memory: number;
  MemoryLimit: number;
  MemoryPercentage: number;
  NetworkRx: number;
  NetworkTx: number;
  BlockRead: number;
  BlockWrite: number;
  PidsCurrent: number;
  IsInvalid: boolean;
}

/** CPU % as the docker CLI computes it: the container's share of the host's CPU time since the previous sample, times the CPUs. */
export function cpuPercent(s: StatsSample): number {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  let online = s.cpu_stats?.online_cpus ?? 0;
  if (online === 0) online = s.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 0;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
}

/** Memory in use without the page cache docker leaves out (cgroup v1 total_inactive_file, v2 inactive_file). */
export function memoryUsage(m: StatsSample['memory_stats']): number {
  const usage = m?.usage ?? 0;
  const stats = m?.stats ?? {};
  if ('total_inactive_file' in stats && stats.total_inactive_file < usage) return usage - stats.total_inactive_file;
  const inactive = stats.inactive_file ?? 0;
  if (inactive < usage) return usage - inactive;
  return usage;
}

export function statsEntry(container: string, s: StatsSample): StatsEntry {
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const c = e.op[0];
    if (c === 'r' || c === 'R') read += e.value;
    else if (c === 'w' || c === 'W') write += e.value;
  }
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) { rx += n.rx_bytes ?? 0; tx += n.tx_bytes ?? 0; }
  const mem = memoryUsage(s.memory_stats);
  const limit = s.memory_stats?.limit ?? 0;
  return {
    Container: container, Name: s.name ?? '', ID: s.id ?? '', CPUPercentage: cpuPercent(s), Memory: mem, MemoryLimit: limit,
    MemoryPercentage: limit !== 0 ? (mem / limit) * 100 : 0, NetworkRx: rx, NetworkTx: tx, BlockRead: read, BlockWrite: write,
    PidsCurrent: s.pids_stats?.current ?? 0, IsInvalid: false,
  };
}

const pct = (v: number): string => `${v.toFixed(2)}%`;

/** One row of `docker stats` (docker's statsContext). */
export class StatsRow {
  static goType = '*container.statsContext';
  constructor(private readonly s: StatsEntry, private readonly trunc: boolean) {}
  get Container(): string { return this.s.Container; }
  get Name(): string { return this.s.Name.length > 1 ? this.s.Name.slice(1) : '--'; }
  get ID(): string { return this.trunc ? shortId(this.s.ID) : this.s.ID; }
  get CPUPerc(): string { return this.s.IsInvalid ? '--' : pct(this.s.CPUPercentage); }
  get MemUsage(): string { return this.s.IsInvalid ? '-- / --' : `${bytesSize(this.s.Memory)} / ${bytesSize(this.s.MemoryLimit)}`; }
  get MemPerc(): string { return this.s.IsInvalid ? '--' : pct(this.s.MemoryPercentage); }
  get NetIO(): string { return this.s.IsInvalid ? '--' : `${displaySize(this.s.NetworkRx)} / ${displaySize(this.s.NetworkTx)}`; }
  get BlockIO(): string { return this.s.IsInvalid ? '--' : `${displaySize(this.s.BlockRead)} / ${displaySize(this.s.BlockWrite)}`; }
  get PIDs(): string { return this.s.IsInvalid ? '--' : String(this.s.PidsCurrent); }
  toJSON(): Record<string, string> {
    return {
      BlockIO: this.BlockIO, CPUPerc: this.CPUPerc, Container: this.Container, ID: this.ID, MemPerc: this.MemPerc,
      MemUsage: this.MemUsage, Name: this.Name, NetIO: this.NetIO, PIDs: this.PIDs,
    };
  }
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

export const STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const STATS_HEADERS: Record<string, string> = {
  Container: 'CONTAINER', Name: 'NAME', ID: 'CONTAINER ID', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

export function renderStats(entries: StatsEntry[], format: string, trunc: boolean): string {
  const f = format === 'table' ? STATS_TABLE : format;
  return renderList(entries.map((e) => new StatsRow(e, trunc)), { format: f, defaultTable: STATS_TABLE, headers: { ...STATS_HEADERS, Label: headerLabel as unknown as string } });
}

/**
 * A streaming frame as docker writes it: cursor home, the table, then (docker appends to the
 * buffer it is splitting) every line of that text again followed by " ESC[K", then ESC[J.
 */
export function streamFrame(table: string): string {
  const first = `\x1b[H${table}`;
  let out = first;
  for (const line of first.split('\n')) out += `${line} \x1b[K\n`;
  return `${out}\x1b[J`;
}

/** Reads a stream of concatenated JSON values (the stats and events streams). */
async function* jsonValues(res: AsyncIterable<Buffer>): AsyncGenerator<unknown> {
  let buf = '';
  for await (const chunk of res) {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buf.trim()) yield JSON.parse(buf);
}

class Collector {
  entry: StatsEntry;
  error: Error | undefined;
  private gotFirst = false;
  readonly first: Promise<void>;
  private resolveFirst!: () => void;
  private abort = new AbortController();

  constructor(readonly container: string) {
    this.entry = { Container: container, Name: '', ID: '', CPUPercentage: 0, Memory: 0, MemoryLimit: 0, MemoryPercentage: 0, NetworkRx: 0, NetworkTx: 0, BlockRead: 0, BlockWrite: 0, PidsCurrent: 0, IsInvalid: false };
    this.first = new Promise((r) => { this.resolveFirst = r; });
  }

  private markFirst(): void {
    if (this.gotFirst) return;
    this.gotFirst = true;
    this.resolveFirst();
  }

  private setErrorAndReset(e: Error): void {
    this.entry = { ...this.entry, CPUPercentage: 0, Memory: 0, MemoryPercentage: 0, MemoryLimit: 0, NetworkRx: 0, NetworkTx: 0, BlockRead: 0, BlockWrite: 0, PidsCurrent: 0, IsInvalid: true };
    this.error = e;
  }

  /** Samples until the stream ends (or the first one when not streaming); 2 s without one marks the row invalid. */
  async run(client: EngineClient, stream: boolean): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.setErrorAndReset(new Error('timeout waiting for stats')); this.markFirst(); arm(); }, 2000);
      timer.unref();
    };
    arm();
    try {
      const res = await client.request('GET', `/containers/${containerPath(this.container)}/stats`, { query: { stream: stream ? '1' : '0' }, signal: this.abort.signal });
      for await (const v of jsonValues(res)) {
        this.entry = statsEntry(this.container, v as StatsSample);
        this.error = undefined;
        this.markFirst();
        arm();
        if (!stream) break;
      }
    } catch (e) {
      if ((e as Error).name !== 'AbortError') {
        this.error = e as Error;
        this.entry = { ...this.entry, IsInvalid: true };
      }
    } finally {
      clearTimeout(timer);
      this.markFirst();
    }
  }

  stop(): void { this.abort.abort(); }
}

export interface StatsOptions { all?: boolean; noStream?: boolean; noTrunc?: boolean; format?: string }

export async function statsCommand(args: string[], opts: StatsOptions, connect: Connect): Promise<void> {
  const client = await connect();
  const stream = !opts.noStream;
  const collectors: Collector[] = [];
  const add = (id: string): Collector | undefined => {
    if (collectors.some((c) => c.container === id)) return undefined;
    const c = new Collector(id);
    collectors.push(c);
    void c.run(client, stream);
    return c;
  };
  const showAll = args.length === 0;
  let eventsAbort: AbortController | undefined;
  let fatal: Error | undefined;
  if (showAll) {
    // Containers that start (or, with --all, are created) while the table is shown join it.
    eventsAbort = new AbortController();
    const events = await client.request('GET', '/events', { query: { filters: JSON.stringify({ type: { container: true } }) }, signal: eventsAbort.signal });
    void (async () => {
      try {
        for await (const ev of jsonValues(events)) {
          const e = ev as { Action?: string; Actor?: { ID?: string } };
          const id = (e.Actor?.ID ?? '').slice(0, 12);
          if (!id) continue;
          if (e.Action === 'start' || (opts.all && e.Action === 'create')) add(id);
          else if (!opts.all && e.Action === 'die') {
            const i = collectors.findIndex((c) => c.container === id);
            if (i >= 0) collectors.splice(i, 1)[0].stop();
          }
        }
      } catch (e) {
        if ((e as Error).name !== 'AbortError') fatal = e as Error;
      }
    })();
    const list = await client.get<ContainerSummary[] | null>('/containers/json', { all: opts.all ? '1' : undefined });
    for (const c of list ?? []) add(c.Id.slice(0, 12));
    await Promise.all(collectors.map((c) => c.first));
  } else {
    for (const a of args) add(a);
    await Promise.all(collectors.map((c) => c.first));
    const errors = collectors.filter((c) => c.error).map((c) => errorMessage(c.error));
    if (errors.length) {
      for (const c of collectors) c.stop();
      throw new ExitError(1, errors.join('\n'));
    }
  }
  let format = opts.format ?? '';
  if (format === '') format = (await configFormat('statsFormat')) ?? 'table';
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const table = renderStats(collectors.map((c) => c.entry), format, !opts.noTrunc);
      writeStdout(stream ? streamFrame(table) : table);
      if (collectors.length === 0 && !showAll) break;
      if (!stream) break;
      if (fatal) throw fatal;
    }
  } finally {
    eventsAbort?.abort();
    for (const c of collectors) c.stop();
  }
}
