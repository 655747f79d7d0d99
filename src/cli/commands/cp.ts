// `berth cp`: the client side of GET/PUT/HEAD /containers/{id}/archive with docker's rules
// (moby's pkg/archive copy semantics, learned from its behaviour and docs):
//   - CONTAINER:SRC DEST: the daemon sends a tar rooted at SRC's base name and its stat in the
//     X-Docker-Container-Path-Stat header; DEST an existing directory receives SRC inside it,
//     otherwise SRC is written as DEST (a directory copy creates DEST; "SRC/." copies the
//     contents); a file over a directory and a directory over a file are refused.
//   - SRC CONTAINER:DEST: the same rules decided from HEAD's stat of DEST, the tar built here.
//   - "-" as DEST writes the daemon's tar to stdout; "-" as SRC sends stdin (a tar) to a directory.
//   - -L follows a symlink SRC; -a asks the daemon to keep uid/gid.
// Extraction is confined to the destination: entries that climb out ("../"), and entries that
// would be written through a symlink this same archive created, are refused.
import {
  chmodSync, closeSync, createReadStream, existsSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync,
  readlinkSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeSync, type Stats,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { displaySize } from '../../api/units.ts';
import { writeStderr } from '../../runtime/output.ts';
import { ApiResponseError, readAll, type EngineClient } from '../client.ts';
import { checkArgs } from './common.ts';
import { containerPath, streamToStdout } from './containers-manage.ts';

type Connect = () => Promise<EngineClient>;

// Go's os.FileMode type bits, as the daemon's stat header carries them.
const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;
const MODE_DEVICE = 2 ** 26;
const MODE_IRREGULAR = 2 ** 19;

export interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

const isDirMode = (m: number): boolean => Math.floor(m / MODE_DIR) % 2 === 1;
const hasBit = (m: number, bit: number): boolean => Math.floor(m / bit) % 2 === 1;

/** The X-Docker-Container-Path-Stat header (base64 JSON). */
export function decodePathStat(header: string | string[] | undefined): PathStat | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  return JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat;
}

/** docker's splitCpArg: "ctr:path" names a container unless the argument is absolute or starts with ".". */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith('/')) return { container: '', path: arg };
  const i = arg.indexOf(':');
  if (i < 0 || arg.startsWith('.')) return { container: '', path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

const assertsDirectory = (p: string): boolean => p.endsWith('/') || p.endsWith('/.') || p === '.';
const specifiesCurrentDir = (p: string): boolean => basename(p) === '.' || p.endsWith('/.');

/** moby's PreserveTrailingDotOrSeparator. */
function preserveTrailing(cleaned: string, original: string): string {
  if (original.endsWith('/.') && !cleaned.endsWith('/.')) return `${cleaned.replace(/\/$/, '')}/.`;
  if (original === '.' && !cleaned.endsWith('/.')) return `${cleaned.replace(/\/$/, '')}/.`;
  if (original.endsWith('/') && !cleaned.endsWith('/')) return `${cleaned}/`;
  return cleaned;
}

/** moby's SplitPathDirEntry: parent and base, "dir/." keeping "." as the base. */
export function splitPathDirEntry(p: string): { dir: string; base: string } {
  let cleaned = posix.normalize(p);
  if (cleaned.length > 1 && cleaned.endsWith('/')) cleaned = cleaned.slice(0, -1);
  if (specifiesCurrentDir(p)) cleaned = `${cleaned === '/' ? '' : cleaned}/.`;
  return { dir: posix.dirname(cleaned), base: posix.basename(cleaned) };
}

function resolveLocalPath(p: string): string {
  return preserveTrailing(resolve(p), p);
}

/** Replaces an entry name's first component `oldBase` with `newBase` (moby's RebaseArchiveEntries). */
export function rebaseName(name: string, oldBase: string, newBase: string): string {
  const trimmed = name.replace(/^\.\/(?=.)/, oldBase === '.' ? './' : '');
  if (oldBase === '.') {
    if (trimmed === '.' || trimmed === './') return `${newBase}/`;
    if (trimmed.startsWith('./')) return `${newBase}/${trimmed.slice(2)}`;
    return `${newBase}/${trimmed}`;
  }
  if (trimmed === oldBase) return newBase;
  if (trimmed.startsWith(`${oldBase}/`)) return newBase + trimmed.slice(oldBase.length);
  return trimmed;
}

interface CopyInfo { path: string; exists: boolean; isDir: boolean; rebaseName?: string }

class CopyError extends Error {
  override name = 'CopyError';
}

/** Where an archive goes and what its entries are renamed to (moby's PrepareArchiveCopy). */
function prepareArchiveCopy(src: CopyInfo, dst: CopyInfo): { dstDir: string; from?: string; to?: string } {
  const { dir: dstDir, base: dstBase } = splitPathDirEntry(dst.path);
  const { base: srcBase } = splitPathDirEntry(src.path);
  if (dst.exists && dst.isDir) {
    return src.rebaseName ? { dstDir: dst.path, from: srcBase, to: src.rebaseName } : { dstDir: dst.path };
  }
  if (dst.exists) {
    if (src.isDir) throw new CopyError('cannot copy directory');
    return { dstDir, from: srcBase, to: dstBase };
  }
  if (src.isDir) return { dstDir, from: srcBase, to: dstBase };
  if (assertsDirectory(dst.path)) throw new CopyError('no such directory');
  return { dstDir, from: srcBase, to: dstBase };
}

// ---------------------------------------------------------------------------------------------
// from the container
// ---------------------------------------------------------------------------------------------

/** docker's ValidateOutputPath for a local destination. */
function validateOutputPath(p: string): void {
  const dir = dirname(posix.normalize(p));
  if (dir !== '' && dir !== '.' && !existsSync(dir)) throw new CopyError(`invalid output path: directory ${JSON.stringify(dir)} does not exist`);
  let st: Stats | undefined;
  try { st = statSync(p); } catch { return; }
  if (st.isDirectory() || st.isFile()) return;
  if (st.isBlockDevice() || st.isCharacterDevice()) throw new CopyError(`invalid output path: ${JSON.stringify(p)} must be a directory or a regular file: got a device`);
  throw new CopyError(`invalid output path: ${JSON.stringify(p)} must be a directory or a regular file: got an irregular file`);
}

/** moby's CopyInfoDestinationPath: a local destination with symlinks at its end followed. */
function localDestination(p: string): CopyInfo {
  let path = p;
  for (let n = 0; ; n++) {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      const parent = dirname(path.replace(/\/\.?$/, ''));
      if (!existsSync(parent)) throw new CopyError(`lstat ${parent}: no such file or directory`);
      return { path, exists: false, isDir: false };
    }
    if (!st.isSymbolicLink()) return { path, exists: true, isDir: st.isDirectory() };
    if (n > 10) throw new CopyError(`too many symlinks in ${p}`);
    const target = readlinkSync(path);
    path = preserveTrailing(isAbsolute(target) ? target : join(dirname(path), target), p);
  }
}

/** Writes an archive's entries under `dstDir`, renaming the first component when asked. */
async function extract(source: Readable, dstDir: string, rename?: (name: string) => string): Promise<void> {
  const root = realpathSync(dstDir);
  const createdLinks = new Set<string>();
  const dirTimes: Array<{ path: string; mtime: Date }> = [];
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      let name = h.name;
      if (rename) name = rename(name);
      const target = resolve(root, name);
      const rel = relative(root, target);
      if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) throw new CopyError(`invalid path: ${JSON.stringify(h.name)} climbs out of the destination`);
      for (let p = dirname(target); p.length > root.length; p = dirname(p)) {
        if (createdLinks.has(p)) throw new CopyError(`refusing to write ${JSON.stringify(h.name)} through the symlink ${p} in the same archive`);
      }
      if (rel !== '') mkdirSync(dirname(target), { recursive: true });
      let existing: Stats | undefined;
      try { existing = lstatSync(target); } catch { /* new */ }
      const mtime = h.mtime ?? new Date();
      if (h.type === 'directory') {
        if (existing && !existing.isDirectory()) throw new CopyError(`cannot overwrite non-directory "${target}" with directory "${h.name}"`);
        if (!existing) mkdirSync(target);
        chmodSync(target, (h.mode ?? 0o755) & 0o7777);
        dirTimes.push({ path: target, mtime });
        entry.resume();
        continue;
      }
      if (existing?.isDirectory()) throw new CopyError(`cannot overwrite directory "${target}" with non-directory "${h.name}"`);
      if (existing) rmSync(target, { force: true });
      if (h.type === 'file' || h.type === 'contiguous-file') {
        const fd = openSync(target, 'wx', (h.mode ?? 0o644) & 0o7777);
        try {
          for await (const chunk of entry) {
            let off = 0;
            while (off < (chunk as Buffer).length) off += writeSync(fd, chunk as Buffer, off);
          }
        } finally {
          closeSync(fd);
        }
        chmodSync(target, (h.mode ?? 0o644) & 0o7777);
        utimesSync(target, mtime, mtime);
        continue;
      }
      entry.resume();
      if (h.type === 'symlink') {
        const link = h.linkname ?? '';
        // As moby: a link's target, taken relative to where it sits, must stay inside.
        const resolved = resolve(dirname(target), isAbsolute(link) ? `.${link}` : link);
        if (relative(root, resolved).startsWith('..')) throw new CopyError(`invalid symlink ${JSON.stringify(h.name)} -> ${JSON.stringify(link)}`);
        symlinkSync(link, target);
        createdLinks.add(target);
        try { lutimesSync(target, mtime, mtime); } catch { /* not supported */ }
      } else if (h.type === 'link') {
        let linkName = h.linkname ?? '';
        if (rename) linkName = rename(linkName);
        const from = resolve(root, linkName);
        if (relative(root, from).startsWith('..')) throw new CopyError(`invalid hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)}`);
        linkSync(from, target);
      }
      // Devices and fifos: a user's copy has no use for them and an unprivileged one cannot make them.
    }
  })();
  await Promise.all([pipeline(source, ex), done]);
  for (const d of dirTimes.reverse()) utimesSync(d.path, d.mtime, d.mtime);
}

/** A reader that counts bytes (the "Successfully copied …" line). */
function counting(source: AsyncIterable<Buffer>, total: { n: number }): Readable {
  return Readable.from((async function* () {
    for await (const c of source) { total.n += c.length; yield c; }
  })());
}

async function copyFromContainer(client: EngineClient, ctr: string, srcPathIn: string, dstIn: string, opts: { followLink?: boolean; quiet: boolean }): Promise<void> {
  const dstPath = dstIn === '-' ? '-' : resolveLocalPath(dstIn);
  if (dstPath !== '-') validateOutputPath(dstPath);
  let srcPath = srcPathIn;
  let rebase: string | undefined;
  if (opts.followLink) {
    const st = await statPath(client, ctr, srcPath);
    if (st && hasBit(st.mode, MODE_SYMLINK)) {
      let target = st.linkTarget;
      if (!target.startsWith('/')) target = posix.join(splitPathDirEntry(srcPath).dir, target);
      // moby's GetRebaseName: the copy keeps the link's name (and a trailing "/." or "/").
      const { base } = splitPathDirEntry(srcPath);
      rebase = base;
      srcPath = preserveTrailing(target, srcPathIn);
      if (specifiesCurrentDir(srcPathIn)) rebase = undefined;
    }
  }
  const res = await client.request('GET', `/containers/${containerPath(ctr)}/archive`, { query: { path: srcPath } });
  if (dstPath === '-') {
    await streamToStdout(res);
    return;
  }
  const stat = decodePathStat(res.headers['x-docker-container-path-stat']);
  const src: CopyInfo = { path: srcPath, exists: true, isDir: stat ? isDirMode(stat.mode) : false, rebaseName: rebase };
  const total = { n: 0 };
  const body = counting(res, total);
  // docker 28 never draws its progress bar (its terminal check sees a wrapped stream), but on a
  // terminal it says what was copied, also when the copy then fails.
  const report = (): void => { if (!opts.quiet) writeStderr(`Successfully copied ${displaySize(total.n)} to ${dstPath}\n`); };
  let plan: ReturnType<typeof prepareArchiveCopy>;
  try {
    plan = prepareArchiveCopy(src, localDestination(dstPath));
  } catch (e) {
    report();
    throw e;
  }
  // A followed link keeps the link's name first (moby's GetRebaseName), then the destination's.
  const srcBase = splitPathDirEntry(src.path).base;
  const afterLink = (n: string): string => (src.rebaseName ? rebaseName(n, srcBase, src.rebaseName) : n);
  const from = src.rebaseName ?? srcBase;
  const rename = plan.from !== undefined && plan.to !== undefined ? (n: string): string => rebaseName(afterLink(n), from, plan.to!) : afterLink;
  try {
    await extract(body, plan.dstDir, rename);
  } finally {
    report();
  }
}

// ---------------------------------------------------------------------------------------------
// to the container
// ---------------------------------------------------------------------------------------------

/** HEAD /containers/{id}/archive: the path's stat, or undefined when it does not exist. */
async function statPath(client: EngineClient, ctr: string, path: string): Promise<PathStat | undefined> {
  const res = await client.request('HEAD', `/containers/${containerPath(ctr)}/archive`, { query: { path } }).catch((e: unknown) => {
    if (e instanceof ApiResponseError && e.statusCode === 404) return undefined;
    throw e;
  });
  if (!res) return undefined;
  res.resume();
  return decodePathStat(res.headers['x-docker-container-path-stat']);
}

/** moby's CopyInfoSourcePath for a local source. */
function localSource(p: string, followLink: boolean): CopyInfo {
  let path = p;
  let rebase: string | undefined;
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    throw new CopyError(`lstat ${path.replace(/\/\.?$/, '')}: no such file or directory`);
  }
  if (followLink && st.isSymbolicLink()) {
    const target = realpathSync(path);
    const { base } = splitPathDirEntry(p);
    if (!specifiesCurrentDir(p)) rebase = base;
    path = preserveTrailing(target, p);
    st = statSync(path);
  }
  return { path, exists: true, isDir: st.isDirectory(), rebaseName: rebase };
}

/** A tar of a local file or directory tree, entries named `<base>/…` (moby's TarResource). */
function tarResource(src: CopyInfo, name: (n: string) => string): Readable {
  const { dir, base } = splitPathDirEntry(src.path);
  const pack = tar.pack();
  const add = async (abs: string, entryName: string): Promise<void> => {
    const st = lstatSync(abs);
    const common = { name: name(entryName), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      await new Promise<void>((r, j) => pack.entry({ ...common, type: 'directory', name: `${common.name.replace(/\/$/, '')}/` }, (e) => (e ? j(e) : r())));
      for (const e of readdirSync(abs).sort()) await add(join(abs, e), `${entryName === '.' ? '.' : entryName}/${e}`);
    } else if (st.isSymbolicLink()) {
      await new Promise<void>((r, j) => pack.entry({ ...common, type: 'symlink', linkname: readlinkSync(abs) }, (e) => (e ? j(e) : r())));
    } else if (st.isFile()) {
      await new Promise<void>((r, j) => {
        const s = pack.entry({ ...common, type: 'file', size: st.size }, (e) => (e ? j(e) : r()));
        createReadStream(abs).pipe(s);
      });
    }
    // Sockets, fifos and devices are left out, as a copy of them would mean nothing in the container.
  };
  void add(join(dir, base), base).then(() => pack.finalize(), (e: Error) => pack.destroy(e));
  return pack as unknown as Readable;
}

async function copyToContainer(client: EngineClient, ctr: string, srcIn: string, dstPath: string, opts: { followLink?: boolean; archive?: boolean; quiet: boolean }): Promise<void> {
  const srcPath = srcIn === '-' ? '-' : resolveLocalPath(srcIn);
  const dst: CopyInfo = { path: dstPath, exists: false, isDir: false };
  let st = await statPath(client, ctr, dstPath);
  if (st && hasBit(st.mode, MODE_SYMLINK)) {
    let target = st.linkTarget;
    if (!target.startsWith('/')) target = posix.join(splitPathDirEntry(dstPath).dir, target);
    dst.path = target;
    st = await statPath(client, ctr, target);
  }
  if (st && hasBit(st.mode, MODE_DEVICE)) throw new CopyError(`destination "${ctr}:${dstPath}" must be a directory or a regular file: got a device`);
  if (st && hasBit(st.mode, MODE_IRREGULAR)) throw new CopyError(`destination "${ctr}:${dstPath}" must be a directory or a regular file: got an irregular file`);
  if (st) { dst.exists = true; dst.isDir = isDirMode(st.mode); }
  let body: Readable;
  let dstDir: string;
  const total = { n: 0 };
  if (srcPath === '-') {
    if (!dst.isDir) throw new CopyError(`destination "${ctr}:${dstPath}" must be a directory`);
    body = process.stdin;
    dstDir = dst.path;
  } else {
    const src = localSource(srcPath, Boolean(opts.followLink));
    const plan = prepareArchiveCopy(src, dst);
    const srcBase = splitPathDirEntry(src.path).base;
    const afterLink = (n: string): string => (src.rebaseName ? rebaseName(n, srcBase, src.rebaseName) : n);
    const from = src.rebaseName ?? srcBase;
    const rename = plan.from !== undefined && plan.to !== undefined
      ? (n: string): string => rebaseName(afterLink(n), from, plan.to!)
      : afterLink;
    body = counting(tarResource(src, rename), total);
    dstDir = plan.dstDir;
  }
  try {
    const res = await client.request('PUT', `/containers/${containerPath(ctr)}/archive`, {
      query: { path: dstDir, noOverwriteDirNonDir: 'true', copyUIDGID: opts.archive ? 'true' : undefined },
      headers: { 'Content-Type': 'application/x-tar' },
      body,
    });
    await readAll(res);
  } finally {
    if (!opts.quiet) writeStderr(`Successfully copied ${displaySize(total.n)} to ${ctr}:${dst.path}\n`);
  }
}

export async function cpCommand(args: string[], opts: { archive?: boolean; followLink?: boolean; quiet?: boolean }, connect: Connect, command = 'cp'): Promise<void> {
  checkArgs(args, { command, usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH', short: 'Copy files/folders between a container and the local filesystem', min: 2, max: 2 });
  if (args[0] === '') throw new Error('source can not be empty');
  if (args[1] === '') throw new Error('destination can not be empty');
  const quiet = opts.quiet ?? !process.stdout.isTTY;
  const src = splitCpArg(args[0]);
  const dst = splitCpArg(args[1]);
  if (src.container && dst.container) throw new Error('copying between containers is not supported');
  if (!src.container && !dst.container) throw new Error('must specify at least one container source');
  const client = await connect();
  if (src.container) await copyFromContainer(client, src.container, src.path, dst.path, { followLink: opts.followLink, quiet });
  else await copyToContainer(client, dst.container, src.path, dst.path, { followLink: opts.followLink, archive: opts.archive, quiet });
}
