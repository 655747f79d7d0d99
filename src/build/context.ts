// The build context both ways, and what the cache knows of it.
//  - packContext: a directory → the tar the docker CLI sends (.dockerignore applied, the
//    Dockerfile and .dockerignore always included, sorted, owners 0:0);
//  - extractContext: the /build body (a tar, maybe gzip/bzip2/xz-compressed) → a directory,
//    refusing names that leave it, never writing through a symlink it made, without devices;
//  - sourcesChecksum: a content digest of what one COPY/ADD would read (names, types, modes,
//    contents, symlink targets; never owners or mtimes).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, createReadStream, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync,
  readSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync, type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { expandSources } from './copy.ts';
import { parseDockerignore, PatternMatcher } from './dockerignore.ts';
import { BuildError } from './types.ts';

// ---- packing (the client side) ---------------------------------------------------------------

interface PackEntry { rel: string; st: Stats; host: string }

function walkContext(dir: string, matcher: PatternMatcher): PackEntry[] {
  const out: PackEntry[] = [];
  const walk = (rel: string) => {
    const host = rel ? join(dir, rel) : dir;
    for (const name of readdirSync(host).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const h = join(dir, r);
      const st = lstatSync(h);
      const excluded = matcher.matches(r);
      if (st.isDirectory()) {
        // With exceptions in force an excluded directory may still hold kept files (docker's
        // walker looks inside too; the directory's own entry stays out).
        if (excluded && !matcher.hasExclusions) continue;
        if (!excluded) out.push({ rel: r, st, host: h });
        walk(r);
        continue;
      }
      if (excluded) continue;
      if (st.isFile() || st.isSymbolicLink()) out.push({ rel: r, st, host: h });
    }
  };
  walk('');
  return out;
}

/** A directory → the tar stream the docker CLI would send. */
export function packContext(dir: string, opts: { dockerfile?: string; dockerfileContent?: string } = {}): { stream: NodeJS.ReadableStream; dockerfileName?: string } {
  let patterns: string[] = [];
  try {
    patterns = parseDockerignore(readFileSync(join(dir, '.dockerignore'), 'utf8'));
  } catch {
    // no .dockerignore
  }
  // The docker CLI always sends .dockerignore and the Dockerfile: when the patterns exclude them,
  // it appends exceptions for them, so a Dockerfile in an excluded directory travels too.
  const keep = ['.dockerignore'];
  if (opts.dockerfileContent === undefined) keep.push(opts.dockerfile ? posix.normalize(opts.dockerfile).replace(/^(\.\/)+/, '').replace(/^\/+/, '') : 'Dockerfile');
  const first = new PatternMatcher(patterns);
  for (const k of keep) if (first.matches(k)) patterns.push(`!${k}`);
  const entries = walkContext(dir, new PatternMatcher(patterns));
  const dockerfileName = opts.dockerfileContent !== undefined ? `.dockerfile.${randomBytes(10).toString('hex')}` : undefined;
  const pack = tar.pack();
  const write = async () => {
    for (const e of entries) {
      const base = { name: e.rel, mode: e.st.mode & 0o7777, mtime: e.st.mtime, uid: 0, gid: 0, uname: '', gname: '' };
      if (e.st.isDirectory()) {
        await new Promise<void>((res, rej) => pack.entry({ ...base, type: 'directory' }, (err) => (err ? rej(err) : res())));
      } else if (e.st.isSymbolicLink()) {
        await new Promise<void>((res, rej) => pack.entry({ ...base, type: 'symlink', linkname: readlinkSync(e.host) }, (err) => (err ? rej(err) : res())));
      } else if (e.st.size < 1 << 20) {
        const data = readFileSync(e.host);
        await new Promise<void>((res, rej) => pack.entry({ ...base, type: 'file', size: data.length }, data, (err) => (err ? rej(err) : res())));
      } else {
        const sink = pack.entry({ ...base, type: 'file', size: e.st.size });
        await pipeline(createReadStream(e.host), sink);
      }
    }
    if (dockerfileName) {
      const data = Buffer.from(opts.dockerfileContent!);
      await new Promise<void>((res, rej) => pack.entry({ name: dockerfileName, mode: 0o600, size: data.length, mtime: new Date(), uid: 0, gid: 0 }, data, (err) => (err ? rej(err) : res())));
    }
    pack.finalize();
  };
  write().catch((err: Error) => pack.destroy(err));
  return { stream: pack as unknown as NodeJS.ReadableStream, dockerfileName };
}

// ---- extraction (the daemon side) ------------------------------------------------------------

function compressionOf(head: Buffer): 'gzip' | 'bzip2' | 'xz' | 'none' {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** Every parent of rel inside dir must be a real directory (created if missing); returns the host path. */
function safePath(dir: string, rel: string): string {
  const parts = rel.split('/');
  let cur = dir;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    let st: Stats | undefined;
    try {
      st = lstatSync(cur);
    } catch {
      st = undefined;
    }
    if (!st) mkdirSync(cur, { mode: 0o755 });
    else if (!st.isDirectory()) throw new BuildError('invalid', `the build context has ${rel} below ${p}, which is not a directory`);
  }
  return join(cur, parts[parts.length - 1]!);
}

function cleanName(name: string): string | undefined {
  const n = posix.normalize(`/${name}`).replace(/^\/+/, '').replace(/\/+$/, '');
  if (n === '' || n === '.') return undefined;
  if (posix.normalize(name.replace(/^\/+/, '')).startsWith('../')) throw new BuildError('invalid', `the build context has an entry outside it: ${name}`);
  return n;
}

const CACHED_FILE_MAX = 4 << 20;
const MAX_BARE_DOCKERFILE = 1 << 20;

/**
 * Writes a context file through the context cache: a file with the same path, mode, mtime and
 * content as one sent before is a hard link to that one's inode (creating inodes dominates
 * unpacking a context of many small files; a link costs a tenth). Inodes are shared only by
 * identical entries and never written after creation, so sharing is invisible.
 */
function writeCachedFile(cacheDir: string, rel: string, host: string, data: Buffer, mode: number, mtime: Date): void {
  const key = createHash('sha256').update(`${rel}\0${mode}\0${Math.floor(mtime.getTime() / 1000)}\0`).update(data).digest('hex');
  const cached = join(cacheDir, key.slice(0, 2), key);
  try {
    linkSync(cached, host);
    return;
  } catch {
    // not cached yet
  }
  const fd = openSync(host, 'wx', 0o600);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off);
  } finally {
    closeSync(fd);
  }
  chmodSync(host, mode);
  utimesSync(host, mtime, mtime);
  try {
    mkdirSync(join(cacheDir, key.slice(0, 2)), { recursive: true, mode: 0o700 });
    const tmp = `${cached}.${randomBytes(4).toString('hex')}`;
    linkSync(host, tmp);
    renameSync(tmp, cached);
  } catch {
    // the cache is an optimisation only
  }
}

/** Empties the context cache (docker builder prune). */
export function clearContextCache(cacheDir: string): void {
  rmSync(cacheDir, { recursive: true, force: true });
}

/** The /build body → a fresh directory. `cacheDir`: the context cache (see writeCachedFile). */
export async function extractContext(body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, dir: string, opts: { signal?: AbortSignal; cacheDir?: string } = {}): Promise<{ bytes: number }> {
  const source = Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
  let bytes = 0;
  // Peek at the first bytes for the compression.
  const first: Buffer[] = [];
  let firstLen = 0;
  const iterator = source[Symbol.asyncIterator]();
  while (firstLen < 512) {
    const r = await iterator.next();
    if (r.done) break;
    first.push(Buffer.from(r.value as Uint8Array));
    firstLen += (r.value as Uint8Array).length;
    bytes += (r.value as Uint8Array).length;
  }
  const head = Buffer.concat(first);
  if (head.length === 0) return { bytes: 0 }; // an empty body: an empty context
  const rest = async function* () {
    yield head;
    for (;;) {
      const r = await iterator.next();
      if (r.done) return;
      bytes += (r.value as Uint8Array).length;
      yield Buffer.from(r.value as Uint8Array);
    }
  };
  const kind = compressionOf(head);
  if (kind === 'none' && !(head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar')) {
    // Not an archive: the body is the Dockerfile itself (dockerd accepts that too).
    const parts = [head];
    let size = head.length;
    if (size > MAX_BARE_DOCKERFILE) throw new BuildError('invalid', 'the build context is neither a tar archive nor a Dockerfile');
    for (;;) {
      const r = await iterator.next();
      if (r.done) break;
      const b = Buffer.from(r.value as Uint8Array);
      size += b.length;
      bytes += b.length;
      if (size > MAX_BARE_DOCKERFILE) throw new BuildError('invalid', 'the build context is neither a tar archive nor a Dockerfile');
      parts.push(b);
    }
    writeFileSync(join(dir, 'Dockerfile'), Buffer.concat(parts), { mode: 0o644 });
    return { bytes };
  }
  let tarStream: Readable;
  if (kind === 'gzip') tarStream = Readable.from(rest()).pipe(createGunzip());
  else if (kind === 'none') tarStream = Readable.from(rest());
  else {
    const child = spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
    Readable.from(rest()).pipe(child.stdin);
    child.stdin.on('error', () => {});
    tarStream = child.stdout;
  }
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      // A failure destroys the entry stream too; the extractor's error is the one reported.
      stream.on('error', () => {});
      const fail = (err: unknown) => {
        stream.resume();
        extract.destroy(err as Error);
      };
      try {
        if (opts.signal?.aborted) throw new BuildError('cancelled', 'the build was cancelled');
        const rel = cleanName(header.name);
        if (rel === undefined) {
          stream.resume();
          stream.on('end', next);
          return;
        }
        const host = safePath(dir, rel);
        const mode = (header.mode ?? 0o644) & 0o7777;
        const mtime = header.mtime ?? new Date();
        switch (header.type) {
          case 'directory': {
            let st: Stats | undefined;
            try {
              st = lstatSync(host);
            } catch {
              st = undefined;
            }
            if (st && !st.isDirectory()) throw new BuildError('invalid', `the build context has ${rel} as both a file and a directory`);
            if (!st) mkdirSync(host, { mode: 0o755 });
            chmodSync(host, mode || 0o755);
            stream.resume();
            stream.on('end', next);
            return;
          }
          case 'file':
          case 'contiguous-file': {
            if (opts.cacheDir && (header.size ?? 0) <= CACHED_FILE_MAX) {
              const chunks: Buffer[] = [];
              stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
              stream.on('end', () => {
                try {
                  writeCachedFile(opts.cacheDir!, rel, host, Buffer.concat(chunks), mode, mtime);
                } catch (err) {
                  fail(err);
                  return;
                }
                next();
              });
              return;
            }
            const fd = openSync(host, 'wx', 0o600);
            stream.on('data', (chunk: unknown) => {
              const c = chunk as Buffer;
              let off = 0;
              while (off < c.length) off += writeSync(fd, c, off);
            });
            stream.on('end', () => {
              closeSync(fd);
              try {
                chmodSync(host, mode);
                utimesSync(host, mtime, mtime);
              } catch (err) {
                fail(err);
                return;
              }
              next();
            });
            stream.on('error', (err) => { closeSync(fd); fail(err); });
            return;
          }
          case 'symlink':
            symlinkSync(header.linkname ?? '', host);
            stream.resume();
            stream.on('end', next);
            return;
          case 'link': {
            const target = cleanName(header.linkname ?? '');
            if (!target) throw new BuildError('invalid', `the build context has a hard link with no target: ${rel}`);
            const st = lstatSync(join(dir, target));
            if (!st.isFile()) throw new BuildError('invalid', `the build context has a hard link to something not a regular file: ${rel}`);
            linkSync(safePath(dir, target), host);
            stream.resume();
            stream.on('end', next);
            return;
          }
          default:
            // Devices, fifos: never part of a context.
            stream.resume();
            stream.on('end', next);
        }
      } catch (err) {
        fail(err);
      }
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  // The docker CLI's context with a Dockerfile added from outside ends right after the last
  // file's data, without padding or end blocks (Go's reader accepts that): pad it.
  const padded = Readable.from((async function* () {
    let total = 0;
    for await (const c of tarStream) {
      total += (c as Buffer).length;
      yield c as Buffer;
    }
    yield Buffer.alloc(((512 - (total % 512)) % 512) + 1024);
  })());
  padded.on('error', (err) => extract.destroy(err));
  padded.pipe(extract);
  try {
    await done;
  } catch (err) {
    if (err instanceof BuildError) throw err;
    throw new BuildError('invalid', `the build context is not a valid tar archive: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { bytes };
}

// ---- checksums for the cache -----------------------------------------------------------------

function hashTree(h: ReturnType<typeof createHash>, host: string, name: string): void {
  // Sources were resolved inside their root (a named symlink followed); below, links are content.
  const st = lstatSync(host);
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
  h.update(`${type} ${name} ${(st.mode & 0o7777).toString(8)}\0`);
  if (st.isDirectory()) {
    for (const n of readdirSync(host).sort()) hashTree(h, join(host, n), `${name}/${n}`);
  } else if (st.isSymbolicLink()) {
    h.update(`${readlinkSync(host)}\0`);
  } else if (st.isFile()) {
    h.update(`${st.size}\0`);
    const fd = openSync(host, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 16);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** A content checksum of what a COPY/ADD of these sources would read. */
export async function sourcesChecksum(root: string, patterns: string[], opts: { isContext?: boolean } = {}): Promise<string> {
  const { entries } = expandSources(root, patterns, opts.isContext ?? true);
  const h = createHash('sha256');
  for (const e of entries) hashTree(h, e.host, e.name);
  return `sha256:${h.digest('hex')}`;
}

/**
 * What dockerd does once it has read the Dockerfile: when the context's .dockerignore excludes
 * .dockerignore or the Dockerfile itself, they are removed, so `COPY . /app` does not copy them
 * (the CLI had to send them; only the daemon drops them). Call it after reading the Dockerfile.
 * Nothing happens without a .dockerignore; a path below a symlink is left alone.
 */
export function removeIgnoredBuildFiles(dir: string, dockerfile: string): void {
  let patterns: string[];
  try {
    patterns = parseDockerignore(readFileSync(join(dir, '.dockerignore'), 'utf8'));
  } catch {
    return;
  }
  const matcher = new PatternMatcher(patterns);
  for (const name of ['.dockerignore', dockerfile]) {
    const rel = posix.normalize(name).replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    if (!rel || rel === '.' || rel === '..' || rel.startsWith('../') || !matcher.matches(rel)) continue;
    const parts = rel.split('/');
    let safe = true;
    for (let i = 1; i < parts.length && safe; i++) {
      try {
        safe = lstatSync(join(dir, ...parts.slice(0, i))).isDirectory();
      } catch {
        safe = false;
      }
    }
    if (!safe) continue;
    try {
      if (!lstatSync(join(dir, rel)).isDirectory()) rmSync(join(dir, rel));
    } catch {
      // already gone
    }
  }
}
