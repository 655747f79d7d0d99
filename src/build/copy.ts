// COPY and ADD into a build step's rootfs, with docker's rules:
//  - a directory source copies its contents; a file goes into the destination when that ends in
//    '/' or is an existing directory, else becomes it; several sources (or a wildcard) need a
//    directory destination ending in '/';
//  - modes and mtimes are kept, owners become 0:0 unless --chown, --chmod overrides modes;
//    missing parent directories are created 0755 with the step's owner;
//  - symlinks inside a copied directory stay symlinks; a source named directly that is a symlink
//    is followed (inside its root);
//  - ADD extracts local tar archives (plain, gzip, bzip2, xz) into the destination and downloads
//    http(s) URLs (mode 0600, mtime from Last-Modified, --checksum verified).
// Every path in the target rootfs and in the source root is resolved as if chrooted there, so no
// symlink leads a read or a write out of them.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, createReadStream, lchownSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readlinkSync, readSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { applyLayer } from '../image/unpack/index.ts';
import { BuildError } from './types.ts';

export interface CopyRequest {
  kind: 'copy' | 'add';
  /**
   * The sources are the build's private, throw-away copy of the context: files whose owner and
   * mode already match may be hard-linked instead of copied.
   */
  linkSources?: boolean;
  /**
   * With linkSources: called for a file that may be a hard link instead of a copy; true means the
   * caller links it later (the target is an overlay mount, which a link cannot cross).
   */
  deferLink?: (src: string, dst: string) => boolean;
  sourceRoot: string;
  sourceIsContext: boolean;
  sources: string[];
  dest: string;
  workdir: string;
  targetRoot: string;
  uid?: number;
  gid?: number;
  mode?: number;
  checksum?: string;
  heredocs?: Array<{ name: string; content: string }>;
  signal?: AbortSignal;
}

const MAX_SYMLINKS = 255;

/**
 * The host path of `path` inside `root`, resolved as if root were '/': '..' stops at the root and
 * symlinks (absolute ones from the root) are followed without leaving it. Components that do not
 * exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string): string {
  const pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const c = pending.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, c);
    let st: Stats | undefined;
    try {
      st = lstatSync(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new BuildError('invalid', `too many levels of symbolic links in ${path}`);
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    done.push(c);
  }
  return join(root, ...done);
}

const hasGlob = (s: string): boolean => /[*?[]/.test(s);

/** Go's filepath.Match for one component. */
function componentRegex(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new BuildError('invalid', `syntax error in pattern: ${pattern}`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** The cleaned source path inside its root ('' = the root itself); refuses paths that leave a context. */
function cleanSource(src: string, isContext: boolean): string {
  // docker drops one leading '/' and joins the rest to the context root: "/../x" leaves it too.
  const norm = posix.normalize(src.startsWith('/') ? src.slice(1) || '.' : src);
  if (isContext && (norm === '..' || norm.startsWith('../'))) {
    throw new BuildError('invalid', `forbidden path outside the build context: ${src} ()`);
  }
  return posix.normalize(`/${norm}`).replace(/^\/+/, '');
}

/** Relative paths in root matching a (cleaned) pattern, sorted. */
export function globSources(root: string, pattern: string): string[] {
  const parts = pattern.split('/').filter(Boolean);
  let current: string[] = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const base of current) {
      if (!hasGlob(part)) {
        next.push(base ? `${base}/${part}` : part);
        continue;
      }
      const re = componentRegex(part);
      let names: string[];
      try {
        names = readdirSync(resolveInRoot(root, base));
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    current = next;
  }
  return current.filter((rel) => {
    try {
      lstatSync(resolveInRoot(root, rel));
      return true;
    } catch {
      return false;
    }
  });
}

export interface SourceEntry {
  /** The name as the user gave it (for messages and the destination's base name). */
  name: string;
  /** Host path, resolved inside the source root. */
  host: string;
}

/** Expands sources (wildcards) into existing entries; docker's errors for missing ones. */
export function expandSources(root: string, sources: string[], isContext: boolean): { entries: SourceEntry[]; wildcard: boolean } {
  const entries: SourceEntry[] = [];
  let wildcard = false;
  for (const src of sources) {
    const clean = cleanSource(src, isContext);
    if (hasGlob(clean)) {
      wildcard = true;
      const matches = globSources(root, clean);
      for (const rel of matches) entries.push({ name: rel, host: resolveInRoot(root, rel) });
      continue;
    }
    const host = resolveInRoot(root, clean);
    try {
      statSync(host);
    } catch {
      throw new BuildError('not-found', isContext
        ? `file not found in build context or excluded by .dockerignore: stat ${clean || '.'}: file does not exist`
        : `stat ${src}: file does not exist`);
    }
    entries.push({ name: clean, host });
  }
  if (entries.length === 0) throw new BuildError('not-found', 'no source files were specified');
  return { entries, wildcard };
}

interface Owner { uid: number; gid: number; mode?: number; link?: boolean; deferLink?: (src: string, dst: string) => boolean }

function applyMeta(path: string, st: Stats, owner: Owner, isLink: boolean): void {
  if (isLink) {
    lchownSync(path, owner.uid, owner.gid);
    try {
      lutimesSync(path, st.atime, st.mtime);
    } catch {
      // some filesystems keep no symlink times
    }
    return;
  }
  lchownSync(path, owner.uid, owner.gid);
  chmodSync(path, owner.mode ?? (st.mode & 0o7777));
  utimesSync(path, st.atime, st.mtime);
}

/** Creates dir and its missing parents (inside root), new ones 0755 with the owner. */
function mkdirInRoot(root: string, path: string, owner: Owner): string {
  const parts = path.split('/').filter(Boolean);
  let cur = '';
  for (const p of parts) {
    cur = `${cur}/${p}`;
    const host = resolveInRoot(root, cur);
    let st: Stats | undefined;
    try {
      st = statSync(host);
    } catch {
      st = undefined;
    }
    if (!st) {
      // recursive: a symlink above may point at a path whose directories do not exist yet.
      mkdirSync(host, { mode: 0o755, recursive: true });
      chmodSync(host, 0o755);
      lchownSync(host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) {
      throw new BuildError('failed', `cannot create directory ${cur}: a file of that name exists`);
    }
  }
  return resolveInRoot(root, path);
}

/** Removes whatever is at host (not following a symlink) unless it is a directory. */
function clearForFile(host: string): void {
  let st: Stats;
  try {
    st = lstatSync(host);
  } catch {
    return;
  }
  if (st.isDirectory()) throw new BuildError('failed', `cannot overwrite directory ${host} with a file`);
  unlinkSync(host);
}

function copyEntry(srcHost: string, dstHost: string, owner: Owner, follow: boolean): void {
  const st = follow ? statSync(srcHost) : lstatSync(srcHost);
  if (st.isDirectory()) {
    let dst: Stats | undefined;
    try {
      dst = lstatSync(dstHost);
    } catch {
      dst = undefined;
    }
    if (dst && !dst.isDirectory()) unlinkSync(dstHost);
    if (!dst || !dst.isDirectory()) mkdirSync(dstHost, { mode: 0o755 });
    for (const n of readdirSync(srcHost).sort()) copyEntry(join(srcHost, n), join(dstHost, n), owner, false);
    applyMeta(dstHost, st, owner, false);
  } else if (st.isSymbolicLink()) {
    clearForFile(dstHost);
    symlinkSync(readlinkSync(srcHost), dstHost);
    applyMeta(dstHost, st, owner, true);
  } else if (st.isFile()) {
    clearForFile(dstHost);
    if (owner.link && st.uid === owner.uid && st.gid === owner.gid && owner.mode === undefined) {
      // The build's own copy of the context already has the owner, mode and mtime the copy needs:
      // a hard link shares it (snapshots are never written in place; containers copy up). The
      // caller makes it: a link cannot cross the mount the target is reached through.
      if (owner.deferLink?.(srcHost, dstHost)) return;
    }
    copyFileSync(srcHost, dstHost);
    applyMeta(dstHost, st, owner, false);
  }
  // Device nodes, fifos and sockets in a context are not copied (docker's context never has them).
}

/** The compression of a file by its magic bytes, and whether its (decompressed) start is a tar. */
async function archiveKind(path: string): Promise<'tar' | 'gzip' | 'bzip2' | 'xz' | undefined> {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(512);
  let n: number;
  try {
    n = readSync(fd, head, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  const isTarHeader = (b: Buffer) => b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar';
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return isTarHeader(await decompressedHead(path, 'gzip')) ? 'gzip' : undefined;
  if (n >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return isTarHeader(await decompressedHead(path, 'bzip2')) ? 'bzip2' : undefined;
  if (n >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return isTarHeader(await decompressedHead(path, 'xz')) ? 'xz' : undefined;
  return isTarHeader(head.subarray(0, n)) ? 'tar' : undefined;
}

function decompressor(path: string, kind: 'gzip' | 'bzip2' | 'xz'): Readable {
  if (kind === 'gzip') return createReadStream(path).pipe(createGunzip());
  const child = spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc', path], { stdio: ['ignore', 'pipe', 'ignore'] });
  child.on('error', (err) => child.stdout.destroy(new BuildError('failed', `${kind === 'bzip2' ? 'bzip2' : 'xz'} is needed to extract ${path}: ${err.message}`)));
  return child.stdout;
}

async function decompressedHead(path: string, kind: 'gzip' | 'bzip2' | 'xz'): Promise<Buffer> {
  const stream = decompressor(path, kind);
  const chunks: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      len += (c as Buffer).length;
      if (len >= 512) break;
    }
  } catch {
    return Buffer.alloc(0);
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

async function extractArchive(path: string, kind: 'tar' | 'gzip' | 'bzip2' | 'xz', dstHost: string): Promise<void> {
  const source = kind === 'tar' || kind === 'gzip' ? createReadStream(path) : decompressor(path, kind);
  try {
    await applyLayer(source, { target: dstHost, mode: 'apply' });
  } catch (err) {
    throw new BuildError('failed', `extracting ${posix.basename(path)}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<{ file: string; mtime?: Date; name: string }> {
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    throw new BuildError('failed', `failed to GET ${url}: ${(err as Error).message}`);
  }
  if (!res.ok) throw new BuildError('failed', `failed to GET ${url} with status ${res.status} ${res.statusText}`.trim());
  const buf = Buffer.from(await res.arrayBuffer());
  if (checksum) {
    const m = /^(sha256|sha384|sha512):([0-9a-f]+)$/.exec(checksum);
    if (!m) throw new BuildError('invalid', `invalid checksum ${checksum}: expected sha256:<hex>`);
    const got = createHash(m[1]!).update(buf).digest('hex');
    if (got !== m[2]) throw new BuildError('failed', `checksum mismatch for ${url}: expected ${checksum}, got ${m[1]}:${got}`);
  }
  const file = join(dir, 'download');
  writeFileSync(file, buf);
  const lm = res.headers.get('last-modified');
  const mtime = lm ? new Date(lm) : undefined;
  const name = posix.basename(new URL(url).pathname);
  return { file, mtime: mtime && !Number.isNaN(mtime.getTime()) ? mtime : undefined, name };
}

export async function copyInto(req: CopyRequest): Promise<void> {
  const owner: Owner = { uid: req.uid ?? 0, gid: req.gid ?? 0, mode: req.mode, link: req.linkSources === true && req.sourceIsContext, deferLink: req.deferLink };
  const destPath = posix.resolve(req.workdir || '/', req.dest);
  const destIsDirSyntax = req.dest.endsWith('/') || req.dest.endsWith('/.') || req.dest === '.';
  const heredocs = new Map((req.heredocs ?? []).map((h) => [h.name, h.content]));
  const isUrl = (s: string) => /^https?:\/\//i.test(s);
  const heredocName = (s: string) => /^<<-?["']?([A-Za-z0-9_][A-Za-z0-9_.-]*)["']?$/.exec(s)?.[1];

  const urls = req.sources.filter((s) => req.kind === 'add' && isUrl(s));
  const docs = req.sources.filter((s) => heredocName(s) !== undefined && heredocs.has(heredocName(s)!));
  const locals = req.sources.filter((s) => !urls.includes(s) && !docs.includes(s));
  const { entries, wildcard } = locals.length ? expandSources(req.sourceRoot, locals, req.sourceIsContext) : { entries: [], wildcard: false };
  const count = entries.length + urls.length + docs.length;

  let existingDir = false;
  try {
    existingDir = statSync(resolveInRoot(req.targetRoot, destPath)).isDirectory();
  } catch {
    existingDir = false;
  }
  // The classic builder counts the sources after wildcard expansion, and an existing directory
  // does not excuse a missing '/'; one match of a wildcard may go to a file name.
  if (count > 1 && !destIsDirSyntax) {
    throw new BuildError('invalid', `When using ${req.kind.toUpperCase()} with more than one source file, the destination must be a directory and end with a /`);
  }
  const intoDir = destIsDirSyntax || existingDir;
  const tmp = mkdtempSync(join(tmpdir(), 'berth-copy-'));
  try {
    const fileTarget = (base: string): string => {
      if (intoDir) {
        const dir = mkdirInRoot(req.targetRoot, destPath, owner);
        return join(dir, base);
      }
      mkdirInRoot(req.targetRoot, posix.dirname(destPath), owner);
      const parent = resolveInRoot(req.targetRoot, posix.dirname(destPath));
      return join(parent, posix.basename(destPath));
    };
    for (const doc of docs) {
      const name = heredocName(doc)!;
      const target = fileTarget(name);
      clearForFile(target);
      writeFileSync(target, heredocs.get(name)!);
      lchownSync(target, owner.uid, owner.gid);
      chmodSync(target, owner.mode ?? 0o644);
    }
    for (const url of urls) {
      const got = await download(url, tmp, req.checksum, req.signal);
      if (intoDir && !got.name) throw new BuildError('invalid', `cannot determine a file name from ${url}; give a destination file name`);
      const target = fileTarget(got.name);
      clearForFile(target);
      copyFileSync(got.file, target);
      lchownSync(target, owner.uid, owner.gid);
      chmodSync(target, owner.mode ?? 0o600);
      if (got.mtime) utimesSync(target, got.mtime, got.mtime);
    }
    for (const e of entries) {
      const st = statSync(e.host); // a named symlink is followed (inside its root)
      if (st.isDirectory()) {
        const dir = mkdirInRoot(req.targetRoot, destPath, owner);
        for (const n of readdirSync(e.host).sort()) copyEntry(join(e.host, n), join(dir, n), owner, false);
        continue;
      }
      if (req.kind === 'add') {
        const kind = await archiveKind(e.host);
        if (kind) {
          const dir = mkdirInRoot(req.targetRoot, destPath, owner);
          await extractArchive(e.host, kind, dir);
          continue;
        }
      }
      copyEntry(e.host, fileTarget(posix.basename(e.name)), owner, true);
    }
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError('failed', (err as Error).message, undefined, { cause: err });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
