// The image commands as an Engine API client, with the docker CLI's flags, output and exit
// codes: images (image ls), pull, push, tag, rmi (image rm), image inspect, history, save,
// load, import. Prune lives in prune.ts, login/logout in login.ts.
//
// What docker prints is derived from the same API answers, so these functions only turn JSON
// into docker's text; every decision about images is the daemon's.
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { displaySize, humanDuration, humanSize } from '../../api/units.ts';
import {
  parseAnyReference, parseNormalizedReference, referenceName, referenceString, familiarName,
  authConfigKey, DEFAULT_TAG, type Reference,
} from '../../image/reference.ts';
import { CredentialStore, CredentialsError } from '../../image/registry/credentials.ts';
import { writeStderr, writeStdout } from '../../runtime/output.ts';
import { readAll, type EngineClient } from '../client.ts';
import { parseTemplate, renderList, shortId } from '../format/output.ts';
import { displayJSONMessages, printProgress } from '../format/progress.ts';
import { checkArgs, encodeFilters, errorMessage, parseFilterFlags, goRFC3339, goTimeString, imagePath, jsonIndent, withLoginRetry, inspectTemplate, writeAtomically, writeStreamToStdout } from './common.ts';
import { ExitError } from './system.ts';

export type Connect = () => Promise<EngineClient>;

/** GET /images/json items (the fields docker's formatter reads). */
export interface ImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  SharedSize?: number;
  VirtualSize?: number;
  Labels?: Record<string, string> | null;
  Containers?: number;
}

export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags?: string[] | null;
  Size: number;
  Comment: string;
}

export interface DeleteItem { Untagged?: string; Deleted?: string }

/** Progress output that is thrown away (-q) but still checked for an error line. */
async function drainProgress(res: AsyncIterable<Buffer | string>): Promise<void> {
  await displayJSONMessages(res, { write: () => {}, isTerminal: false });
}

// ---------------------------------------------------------------------------------------------
// images / image ls
// ---------------------------------------------------------------------------------------------

/** One row of `docker images` (formatter.imageContext): one per repository:tag (or digest). */
export class ImageRow {
  static goType = 'formatter.imageContext';
  constructor(
    private readonly img: ImageSummary,
    private readonly repo: string,
    private readonly tag: string,
    private readonly digest: string,
    private readonly trunc: boolean,
    private readonly now: number,
  ) {}

  get ID(): string { return this.trunc ? shortId(this.img.Id) : this.img.Id; }
  get Repository(): string { return this.repo; }
  get Tag(): string { return this.tag; }
  get Digest(): string { return this.digest; }
  get CreatedSince(): string {
    // Go's time.Unix(0,0).IsZero() is false, so docker prints "56 years ago" for a zero date too.
    return `${humanDuration(this.now - this.img.Created * 1000)} ago`;
  }
  get CreatedAt(): string { return goTimeString(this.img.Created); }
  get Size(): string { return displaySize(this.img.Size); }
  get Containers(): string { return (this.img.Containers ?? -1) === -1 ? 'N/A' : String(this.img.Containers); }
  get VirtualSize(): string { return humanSize(this.img.Size); }
  get SharedSize(): string { return (this.img.SharedSize ?? -1) === -1 ? 'N/A' : humanSize(this.img.SharedSize ?? 0); }
  get UniqueSize(): string {
    const shared = this.img.SharedSize ?? -1;
    return this.img.Size === -1 || shared === -1 ? 'N/A' : humanSize(this.img.Size - shared);
  }

  /** docker marshals a formatter context as a map of its fields: keys sorted. */
  toJSON(): Record<string, string> {
    return {
      Containers: this.Containers, CreatedAt: this.CreatedAt, CreatedSince: this.CreatedSince, Digest: this.Digest,
      ID: this.ID, Repository: this.Repository, SharedSize: this.SharedSize, Size: this.Size, Tag: this.Tag,
      UniqueSize: this.UniqueSize, VirtualSize: this.VirtualSize,
    };
  }

  /** `{{json .}}`: docker's MarshalJSON goes through json.Marshal, which escapes <, > and &. */
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

/** Go's json.Marshal of a string map: HTML characters escaped as \u003c etc. */
export function goMarshal(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT', Size: 'SIZE', Containers: 'CONTAINERS', VirtualSize: 'SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE',
};
const IMAGE_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}';
const IMAGE_TABLE_DIGESTS = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}';

function isDangling(img: ImageSummary): boolean {
  const tags = img.RepoTags ?? [];
  const digests = img.RepoDigests ?? [];
  if (tags.length === 0 && digests.length === 0) return true;
  return tags.length === 1 && tags[0] === '<none>:<none>' && digests.length === 1 && digests[0] === '<none>@<none>';
}

function tryParse(s: string): Reference | undefined {
  try { return parseNormalizedReference(s); } catch { return undefined; }
}

/**
 * docker's imageFormatTaggedAndDigest: a row per repository:tag; with digests shown, one per
 * tag and digest of that repository; repositories known only by digest get a "<none>" tag row.
 * (docker walks Go maps here, so its order among repositories varies; Berth keeps first-seen order.)
 */
export function imageRows(images: ImageSummary[], opts: { digests: boolean; needDigest: boolean; trunc: boolean; now?: number }): ImageRow[] {
  const now = opts.now ?? Date.now();
  const rows: ImageRow[] = [];
  for (const img of images) {
    if (isDangling(img)) {
      rows.push(new ImageRow(img, '<none>', '<none>', '<none>', opts.trunc, now));
      continue;
    }
    const repoTags = new Map<string, string[]>();
    const repoDigests = new Map<string, string[]>();
    for (const s of img.RepoTags ?? []) {
      const ref = tryParse(s);
      if (!ref || ref.tag === undefined || ref.digest !== undefined) continue;
      const name = familiarName(ref);
      repoTags.set(name, [...(repoTags.get(name) ?? []), ref.tag]);
    }
    for (const s of img.RepoDigests ?? []) {
      const ref = tryParse(s);
      if (!ref || ref.digest === undefined) continue;
      const name = familiarName(ref);
      repoDigests.set(name, [...(repoDigests.get(name) ?? []), ref.digest]);
    }
    for (const [repo, tags] of repoTags) {
      let digests = repoDigests.get(repo) ?? [];
      repoDigests.delete(repo);
      if (!opts.needDigest) digests = [];
      for (const tag of tags) {
        if (digests.length === 0) rows.push(new ImageRow(img, repo, tag, '<none>', opts.trunc, now));
        else for (const d of digests) rows.push(new ImageRow(img, repo, tag, d, opts.trunc, now));
      }
    }
    for (const [repo, digests] of repoDigests) {
      if (opts.digests) for (const d of digests) rows.push(new ImageRow(img, repo, '<none>', d, opts.trunc, now));
      else rows.push(new ImageRow(img, repo, '<none>', '', opts.trunc, now));
    }
  }
  return rows;
}

/** docker's NewImageFormat: the table for the flags, or the user's format (a table gets DIGEST added with --digests). */
export function imageFormat(format: string, quiet: boolean, digests: boolean): string {
  if (format === 'table') return quiet ? '{{.ID}}' : digests ? IMAGE_TABLE_DIGESTS : IMAGE_TABLE;
  if (format === 'raw') {
    if (quiet) return 'image_id: {{.ID}}';
    return digests
      ? 'repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n'
      : 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
  }
  if (format.startsWith('table') && digests && !format.includes('{{.Digest}}')) return `${format}\t{{.Digest}}`;
  return format;
}

export function renderImages(images: ImageSummary[], opts: { format?: string; quiet?: boolean; digests?: boolean; noTrunc?: boolean; now?: number }): string {
  const format = imageFormat(opts.format || 'table', Boolean(opts.quiet), Boolean(opts.digests));
  const rows = imageRows(images, {
    digests: Boolean(opts.digests),
    needDigest: Boolean(opts.digests) || format.includes('{{.Digest}}'),
    trunc: !opts.noTrunc,
    now: opts.now,
  });
  return renderList(rows, { format, defaultTable: IMAGE_TABLE, headers: IMAGE_HEADERS });
}

/** config.json's "imagesFormat" (docker reads it for `docker images` without --format). */
async function configImagesFormat(): Promise<string | undefined> {
  try {
    const cfg = await new CredentialStore().read();
    return typeof cfg.imagesFormat === 'string' && cfg.imagesFormat ? cfg.imagesFormat : undefined;
  } catch (e) {
    if (e instanceof CredentialsError) return undefined;
    throw e;
  }
}

export interface ImagesOptions { all?: boolean; quiet?: boolean; digests?: boolean; noTrunc?: boolean; filter?: string[]; format?: string }

export async function imagesCommand(args: string[], opts: ImagesOptions, connect: Connect, command = 'images'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] [REPOSITORY[:TAG]]', short: 'List images', max: 1 });
  const filters = parseFilterFlags(opts.filter ?? [], { command, usage: '[OPTIONS] [REPOSITORY[:TAG]]', flag: '-f, --filter' });
  if (args[0]) filters.add('reference', args[0]);
  let format = opts.format;
  if (!format && !opts.quiet) format = await configImagesFormat();
  // Validate the template before asking the daemon, as docker fails on a bad format up front.
  if (format && !['table', 'raw', 'json'].includes(format)) parseTemplate(format.replace(/^table/, '').trim());
  const client = await connect();
  const images = await client.get<ImageSummary[] | null>('/images/json', {
    all: opts.all ? '1' : undefined,
    filters: encodeFilters(filters) || undefined,
  });
  writeStdout(renderImages(images ?? [], { format, quiet: opts.quiet, digests: opts.digests, noTrunc: opts.noTrunc }));
}

// ---------------------------------------------------------------------------------------------
// pull / push
// ---------------------------------------------------------------------------------------------

function isNameOnly(ref: Reference): boolean {
  return ref.tag === undefined && ref.digest === undefined;
}

export interface PullOptions { quiet?: boolean; platform?: string; allTags?: boolean }

export async function pullCommand(args: string[], opts: PullOptions, connect: Connect, command = 'pull'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] NAME[:TAG|@DIGEST]', short: 'Download an image from a registry', min: 1, max: 1 });
  const ref = parseNormalizedReference(args[0]);
  if (opts.allTags && !isNameOnly(ref)) throw new Error("tag can't be used with --all-tags/-a");
  if (!opts.allTags && isNameOnly(ref)) {
    ref.tag = DEFAULT_TAG;
    if (!opts.quiet) writeStdout(`Using default tag: ${DEFAULT_TAG}\n`);
  }
  const client = await connect();
  const res = await withLoginRetry(authConfigKey(ref), 'pull', (auth) => client.request('POST', '/images/create', {
    query: {
      fromImage: referenceName(ref),
      tag: opts.allTags ? undefined : (ref.digest ?? ref.tag),
      platform: opts.platform ? opts.platform.toLowerCase() : undefined,
    },
    headers: { 'X-Registry-Auth': auth },
  }));
  if (opts.quiet) await drainProgress(res);
  else await printProgress(res);
  writeStdout(`${referenceString(ref)}\n`);
}

export interface PushOptions { quiet?: boolean; allTags?: boolean }

export async function pushCommand(args: string[], opts: PushOptions, connect: Connect, command = 'push'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] NAME[:TAG]', short: 'Upload an image to a registry', min: 1, max: 1 });
  const ref = parseNormalizedReference(args[0]);
  if (opts.allTags && !isNameOnly(ref)) throw new Error("tag can't be used with --all-tags/-a");
  if (!opts.allTags && isNameOnly(ref)) {
    ref.tag = DEFAULT_TAG;
    if (!opts.quiet) writeStdout(`Using default tag: ${DEFAULT_TAG}\n`);
  }
  if (ref.digest !== undefined) throw new Error('cannot push a digest reference');
  const client = await connect();
  const res = await withLoginRetry(authConfigKey(ref), 'push', (auth) => client.request('POST', `/images/${imagePath(referenceName(ref))}/push`, {
    query: { tag: opts.allTags ? undefined : ref.tag },
    headers: { 'X-Registry-Auth': auth },
    body: '',
  }));
  if (opts.quiet) {
    await drainProgress(res);
    writeStdout(`${referenceString(ref)}\n`);
  } else {
    await printProgress(res);
  }
}

// ---------------------------------------------------------------------------------------------
// tag / rmi
// ---------------------------------------------------------------------------------------------

export async function tagCommand(args: string[], connect: Connect, command = 'tag'): Promise<void> {
  checkArgs(args, { command, usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', short: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', min: 2, max: 2 });
  const [source, target] = args;
  try {
    parseAnyReference(source);
  } catch (e) {
    throw new Error(`Error parsing reference: ${JSON.stringify(source)} is not a valid repository/tag: ${(e as Error).message}`);
  }
  let ref: Reference;
  try {
    ref = parseNormalizedReference(target);
  } catch (e) {
    throw new Error(`Error parsing reference: ${JSON.stringify(target)} is not a valid repository/tag: ${(e as Error).message}`);
  }
  if (ref.digest !== undefined) throw new Error('refusing to create a tag with a digest reference');
  const client = await connect();
  const res = await client.request('POST', `/images/${imagePath(source)}/tag`, { query: { repo: referenceName(ref), tag: ref.tag ?? DEFAULT_TAG } });
  res.resume();
}

export interface RmiOptions { force?: boolean; prune?: boolean }

export async function rmiCommand(args: string[], opts: RmiOptions, connect: Connect, command = 'rmi'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] IMAGE [IMAGE...]', short: 'Remove one or more images', min: 1 });
  const client = await connect();
  const errors: string[] = [];
  let fatal = false;
  for (const name of args) {
    try {
      const dels = await client.json<DeleteItem[] | null>('DELETE', `/images/${imagePath(name)}`, {
        query: { force: opts.force ? '1' : undefined, noprune: opts.prune === false ? '1' : undefined },
      });
      for (const d of dels ?? []) writeStdout(d.Deleted ? `Deleted: ${d.Deleted}\n` : `Untagged: ${d.Untagged ?? ''}\n`);
    } catch (e) {
      if (!(e instanceof Error) || !('statusCode' in e) || (e as { statusCode: number }).statusCode !== 404) fatal = true;
      errors.push(errorMessage(e));
    }
  }
  if (errors.length === 0) return;
  // With -f, images that were already gone are not a failure (docker prints them and exits 0).
  if (!opts.force || fatal) throw new ExitError(1, errors.join('\n'));
  writeStderr(`${errors.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// image inspect / history
// ---------------------------------------------------------------------------------------------

export async function inspectCommand(args: string[], opts: { format?: string }, connect: Connect, command = 'image inspect'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] IMAGE [IMAGE...]', short: 'Display detailed information on one or more images', min: 1 });
  const format = opts.format ?? '';
  const tmpl = inspectTemplate(format);
  const client = await connect();
  const raws: string[] = [];
  let templated = '';
  const errors: string[] = [];
  for (const name of args) {
    try {
      const res = await client.request('GET', `/images/${imagePath(name)}/json`);
      const raw = (await readAll(res)).toString('utf8').trim();
      if (!tmpl) {
        raws.push(raw);
        continue;
      }
      try {
        templated += `${tmpl.execute(strictMap(JSON.parse(raw)))}\n`;
      } catch (e) {
        errors.push(`template parsing error: ${(e as Error).message}`);
      }
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (tmpl) writeStdout(templated || '\n');
  else if (raws.length === 0) writeStdout('[]\n');
  else if (format === 'json') writeStdout(`[${raws.map((r) => jsonIndent(r, '').replace(/\n/g, '').replace(/": /g, '":')).join(',')}]\n`);
  else writeStdout(`${jsonIndent(`[${raws.join(',')}]`)}\n`);
  if (errors.length) throw new ExitError(1, errors.join('\n'));
}

/**
 * The daemon's JSON for templates as docker runs them on inspect output (Go maps with
 * missingkey=error): a field the object lacks is an error, not "<no value>", and objects list
 * their keys sorted (`{{json .RootFS}}` is {"Layers":…,"Type":…} in docker's output too).
 */
function strictMap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strictMap);
  if (v === null || typeof v !== 'object') return v;
  const source = v as Record<string, unknown>;
  const target: Record<string, unknown> = {};
  for (const k of Object.keys(source).sort()) target[k] = source[k];
  return new Proxy(target, {
    get: (t, k) => (typeof k === 'string' && Object.hasOwn(t, k) ? strictMap(t[k]) : Reflect.get(t, k)),
    getOwnPropertyDescriptor: (t, k) => {
      if (typeof k === 'string' && !Object.hasOwn(t, k)) throw new Error(`map has no entry for key ${JSON.stringify(k)}`);
      const d = Reflect.getOwnPropertyDescriptor(t, k);
      return d && typeof k === 'string' ? { ...d, value: strictMap(t[k]) } : d;
    },
  });
}

/** One row of `docker history` (formatter's historyContext). */
export class HistoryRow {
  static goType = 'image.historyContext';
  constructor(private readonly h: HistoryItem, private readonly trunc: boolean, private readonly human: boolean, private readonly now: number) {}
  get ID(): string { return this.trunc ? shortId(this.h.Id) : this.h.Id; }
  get CreatedAt(): string { return goRFC3339(this.h.Created); }
  get CreatedSince(): string {
    if (!this.human) return this.CreatedAt;
    // Layers without a real date (imported, reproducible builds) are "N/A", not "56 years ago".
    return this.h.Created <= HISTORY_EPOCH ? 'N/A' : `${humanDuration(this.now - this.h.Created * 1000)} ago`;
  }
  get CreatedBy(): string {
    const s = this.h.CreatedBy.replace(/\t/g, ' ');
    return this.trunc ? ellipsis(s, 45) : s;
  }
  get Size(): string { return this.human ? displaySize(this.h.Size) : String(this.h.Size); }
  get Comment(): string { return this.h.Comment; }
  toJSON(): Record<string, string> {
    return { Comment: this.Comment, CreatedAt: this.CreatedAt, CreatedBy: this.CreatedBy, CreatedSince: this.CreatedSince, ID: this.ID, Size: this.Size };
  }
  marshalJSON(): string { return goMarshal(this.toJSON()); }
}

/** 2000-01-01: earlier history dates are not shown as durations (docker's rule). */
const HISTORY_EPOCH = Date.UTC(2000, 0, 1) / 1000;

/** docker's formatter.Ellipsis for text of single-width characters: cut to width-1 plus "…". */
export function ellipsis(s: string, width: number): string {
  const chars = [...s];
  if (chars.length <= width) return s;
  return `${chars.slice(0, width - 1).join('')}…`;
}

export const HISTORY_HEADERS: Record<string, string> = {
  ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT',
};

export function renderHistory(items: HistoryItem[], opts: { human?: boolean; noTrunc?: boolean; quiet?: boolean; format?: string; now?: number }): string {
  const human = opts.human !== false;
  const now = opts.now ?? Date.now();
  const defaultTable = human
    ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'
    : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
  // -q only replaces the default table; an explicit --format wins (docker's NewHistoryFormat).
  let format = opts.format || 'table';
  if (format === 'table') format = opts.quiet ? '{{.ID}}' : defaultTable;
  const rows = items.map((h) => new HistoryRow(h, !opts.noTrunc, human, now));
  return renderList(rows, { format, defaultTable, headers: HISTORY_HEADERS });
}

export async function historyCommand(args: string[], opts: { human?: boolean; noTrunc?: boolean; quiet?: boolean; format?: string }, connect: Connect, command = 'history'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] IMAGE', short: 'Show the history of an image', min: 1, max: 1 });
  const client = await connect();
  const items = await client.get<HistoryItem[] | null>(`/images/${imagePath(args[0])}/history`);
  writeStdout(renderHistory(items ?? [], opts));
}

/**
 * Commander gives the program's -H (host) precedence anywhere on the line, but docker's
 * `history -H` is --human. After the history command, -H/-H=… becomes --human/--human=….
 */
export function rewriteHistoryHuman(argv: string[]): string[] {
  const out = [...argv];
  let i = 0;
  // Skip global options (those with a value take the next word unless written as -H=x / --host=x).
  const valued = new Set(['-H', '--host', '--data-root', '--exec-root', '--config-file']);
  while (i < out.length && out[i].startsWith('-')) i += valued.has(out[i]) ? 2 : 1;
  let j = i;
  if (out[j] === 'image') j++;
  if (out[j] !== 'history') return out;
  for (let k = j + 1; k < out.length; k++) {
    if (out[k] === '--') break;
    if (out[k] === '-H') out[k] = '--human';
    else if (out[k].startsWith('-H=')) out[k] = `--human=${out[k].slice(3)}`;
  }
  return out;
}

/** docker's bool flag values (strconv.ParseBool). */
export function parseBoolFlag(value: string | boolean | undefined, flag: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new ExitError(125, `invalid argument "${value}" for "${flag}" flag: strconv.ParseBool: parsing "${value}": invalid syntax\nSee 'berth --help'.`);
}

// ---------------------------------------------------------------------------------------------
// save / load / import
// ---------------------------------------------------------------------------------------------

/** docker's ValidateOutputPath: the directory must exist; the path may be a new or regular file. */
function validateOutputPath(path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new Error(`failed to save image: invalid output path: stat ${dirname(path)}: no such file or directory`);
  if (existsSync(path)) {
    const st = statSync(path);
    if (!st.isFile() && !st.isDirectory() && !st.isCharacterDevice() && !st.isFIFO()) {
      throw new Error(`failed to save image: invalid output path: ${JSON.stringify(path)} must be a directory or a regular file`);
    }
  }
}

/** Writes a stream to a file through a temporary file beside it, so a failed save leaves no partial tar. */
async function copyToFile(path: string, source: Readable): Promise<void> {
  const st = existsSync(path) ? statSync(path) : undefined;
  if (st && (st.isCharacterDevice() || st.isFIFO())) {
    await pipeline(source, createWriteStream(path));
    return;
  }
  await writeAtomically(path, source, (base) => `.berth_temp_${base}.${randomBytes(4).toString('hex')}`);
}

export async function saveCommand(args: string[], opts: { output?: string }, connect: Connect, command = 'save'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] IMAGE [IMAGE...]', short: 'Save one or more images to a tar archive (streamed to STDOUT by default)', min: 1 });
  if (!opts.output && process.stdout.isTTY) throw new Error('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  if (opts.output) validateOutputPath(opts.output);
  const client = await connect();
  const res = await client.request('GET', '/images/get', { query: { names: args } });
  if (opts.output) {
    await copyToFile(opts.output, res);
    return;
  }
  await writeStreamToStdout(res);
}


function isJSON(res: IncomingMessage): boolean {
  return String(res.headers['content-type'] ?? '').startsWith('application/json');
}

export async function loadCommand(opts: { input?: string; quiet?: boolean }, connect: Connect): Promise<void> {
  if (!opts.input && process.stdin.isTTY) throw new Error('requested load from stdin, but stdin is empty');
  let body: Readable;
  if (opts.input) {
    // Opened before connecting, so a missing file is reported as docker reports it.
    try {
      closeSync(openSync(opts.input, 'r'));
    } catch (e) {
      throw new Error(`open ${opts.input}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    body = createReadStream(opts.input);
  } else {
    body = process.stdin;
  }
  const client = await connect();
  const res = await client.request('POST', '/images/load', {
    query: { quiet: opts.quiet || !process.stdout.isTTY ? '1' : undefined },
    headers: { 'Content-Type': 'application/x-tar' },
    body,
  });
  if (isJSON(res)) await printProgress(res);
  else await writeStreamToStdout(res);
}

export interface ImportOptions { change?: string[]; message?: string; platform?: string }

export async function importCommand(args: string[], opts: ImportOptions, connect: Connect, command = 'import'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]', short: 'Import the contents from a tarball to create a filesystem image', min: 1 });
  const [source, repo] = args;
  let body: Readable | undefined;
  let fromSrc: string;
  if (source === '-') {
    body = process.stdin;
    fromSrc = '-';
  } else if (/^https?:\/\//.test(source)) {
    fromSrc = source; // fetched by the daemon
  } else {
    try {
      closeSync(openSync(source, 'r'));
    } catch (e) {
      throw new Error(`open ${source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    body = createReadStream(source);
    fromSrc = '-';
  }
  if (repo) parseNormalizedReference(repo);
  const client = await connect();
  const res = await client.request('POST', '/images/create', {
    query: {
      fromSrc,
      repo: repo || undefined,
      message: opts.message || undefined,
      platform: opts.platform || undefined,
      changes: opts.change?.length ? opts.change : undefined,
    },
    body: body ?? '',
    headers: body ? { 'Content-Type': 'application/x-tar' } : {},
  });
  await printProgress(res);
}
