// The content store: blobs addressed by their digest, written atomically and verified on write.
//
// Layout under the store's root:
//   blobs/<alg>/<hex>        committed blobs (read-only to everyone but the store)
//   ingest/<hex>/data        a partial download, kept across crashes so it can resume
//   ingest/<hex>/info.json   what the ingest expects: {digest, size, ref, startedAt}
//   ingest/<hex>/lock        the pid of the process writing it
//   ingest/tmp-<random>      one-shot writes (writeBuffer); garbage after a crash
//
// A blob only ever appears under blobs/ by rename(2) of a fully written, fsynced, verified file,
// so a reader never sees a partial blob and a kill -9 at any point leaves either the old state or
// the new one. Ingests survive a kill -9 with whatever reached the page cache; the next writer
// re-hashes those bytes and continues from their end (the registry client asks for
// `Range: bytes=<offset>-`). If the bytes on disk turn out to be wrong (power loss), the digest
// check at commit fails and the partial data is dropped, so the next attempt starts from zero.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants, createReadStream, existsSync, readFileSync, statSync, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { InvalidDigestError, parseDigest, type DigestAlgorithm } from './digest.ts';
import type { Digest } from './types.ts';

export { InvalidDigestError } from './digest.ts';

export type ContentErrorCode =
  | 'not-found' // no such blob
  | 'digest-mismatch' // the bytes written do not hash to the expected digest
  | 'size-mismatch' // more bytes than expected, or a size that disagrees with the data
  | 'incomplete' // commit before all expected bytes arrived (the partial data is kept)
  | 'locked' // another live process is writing this digest
  | 'invalid-json' // readJSON of a blob that is not JSON
  | 'closed'; // use of an ingest after commit/abort/release

export class ContentError extends Error {
  override name = 'ContentError';
  constructor(readonly code: ContentErrorCode, readonly digest: string, message: string) {
    super(message);
  }
}

export interface BlobInfo {
  digest: Digest;
  size: number;
  /** When the blob was committed (its mtime). */
  modified: Date;
}

export interface IngestStatus {
  digest: Digest;
  expectedSize: number;
  /** Bytes on disk now. */
  offset: number;
  ref?: string;
  startedAt: string;
  updatedAt: Date;
  /** Being written by this process or another live one. */
  active: boolean;
}

export interface IngestExpectation {
  digest: Digest;
  size: number;
  /** Free-form label stored with the partial data (e.g. the repository it comes from). */
  ref?: string;
}

/**
 * One writer of one expected blob. Obtained from ContentStore.ingest(); exactly one is live per
 * digest in a process (a second caller of ingest() waits until this one is finished).
 */
export interface Ingest {
  readonly digest: Digest;
  readonly expectedSize: number;
  /** Bytes already present when the ingest was opened: the resume point (`Range: bytes=<offset>-`). */
  readonly offset: number;
  /** Bytes present now (offset + what was written since). */
  readonly written: number;
  /** The blob is already in the store: there is nothing to write; commit() returns its info. */
  readonly complete: boolean;
  /** Appends bytes; refuses more than expectedSize in total. */
  write(chunk: Uint8Array): Promise<void>;
  /** Verifies size and digest, then publishes the blob atomically. Finishes the ingest either way. */
  commit(): Promise<BlobInfo>;
  /** Forgets the partial data (e.g. the server ignored Range and sent the whole blob: restart()). */
  restart(): Promise<void>;
  /** Stops and deletes the partial data. */
  abort(): Promise<void>;
  /** Stops and keeps the partial data for a later resume (the normal end of a failed download). */
  release(): Promise<void>;
  /** A Writable over write(); it commits when ended and releases (keeping the data) when destroyed. */
  stream(): Writable;
}

interface IngestInfoFile {
  digest: Digest;
  size: number;
  ref?: string;
  startedAt: string;
}

const NO_INGEST_HOLDER = 0;

/** Fsyncs a directory so a rename or unlink in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

export class ContentStore {
  readonly root: string;
  private readonly blobsDir: string;
  private readonly ingestDir: string;
  /** digest → the live ingest's completion; later callers of ingest() wait on it. */
  private readonly live = new Map<string, Promise<void>>();
  private ready: Promise<void> | undefined;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'blobs');
    this.ingestDir = join(root, 'ingest');
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.blobsDir, 'sha256'), { recursive: true, mode: 0o755 });
      await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    })();
    return this.ready;
  }

  /** Where the blob lives (whether or not it exists). Throws InvalidDigestError. */
  path(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.blobsDir, algorithm, hex);
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  async info(digest: Digest): Promise<BlobInfo> {
    try {
      const st = await stat(this.path(digest));
      return { digest, size: st.size, modified: st.mtime };
    } catch (err) {
      throw this.mapNotFound(err, digest);
    }
  }

  async size(digest: Digest): Promise<number> {
    return (await this.info(digest)).size;
  }

  async readBuffer(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (err) {
      throw this.mapNotFound(err, digest);
    }
  }

  /** Synchronous read, for small metadata blobs on paths that cannot await. */
  readBufferSync(digest: Digest): Buffer {
    try {
      return readFileSync(this.path(digest));
    } catch (err) {
      throw this.mapNotFound(err, digest);
    }
  }

  async readJSON<T = unknown>(digest: Digest): Promise<T> {
    const buf = await this.readBuffer(digest);
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (err) {
      throw new ContentError('invalid-json', digest, `blob ${digest} is not valid JSON: ${(err as Error).message}`);
    }
  }

  /** A stream of the blob's bytes (inclusive `end`, as fs.createReadStream). Throws at once when absent. */
  createReadStream(digest: Digest, range: { start?: number; end?: number } = {}): ReadStream {
    const path = this.path(digest);
    try {
      if (!statSync(path).isFile()) throw new ContentError('not-found', digest, `blob ${digest} not found in the content store`);
    } catch (err) {
      throw this.mapNotFound(err, digest);
    }
    return createReadStream(path, { start: range.start, end: range.end, highWaterMark: 128 * 1024 });
  }

  /**
   * Stores a whole buffer. With an expected digest (sha256 or sha512) and/or size, refuses data
   * that does not match; without one, computes the sha256. Idempotent: an existing blob is kept.
   */
  async writeBuffer(data: Uint8Array, expected?: Digest | { digest?: Digest; size?: number }): Promise<BlobInfo> {
    const exp = typeof expected === 'string' ? { digest: expected } : (expected ?? {});
    if (exp.size !== undefined && exp.size !== data.length) {
      const what = exp.digest ? `blob ${exp.digest}` : 'blob';
      throw new ContentError('size-mismatch', exp.digest ?? '', `${what}: expected ${exp.size} bytes, got ${data.length}`);
    }
    let digest: Digest;
    if (exp.digest !== undefined) {
      const { algorithm, hex } = parseDigest(exp.digest);
      const actual = createHash(algorithm).update(data).digest('hex');
      if (actual !== hex) {
        throw new ContentError('digest-mismatch', exp.digest, `blob ${exp.digest}: the data hashes to ${algorithm}:${actual}`);
      }
      digest = exp.digest;
    } else {
      digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    }
    await this.init();
    const final = this.path(digest);
    if (existsSync(final)) return this.info(digest);
    const tmp = join(this.ingestDir, `tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await this.publish(tmp, digest);
    return this.info(digest);
  }

  /**
   * Stores a stream whose digest may not be known in advance (a layer inside an uploaded archive,
   * an imported rootfs): written to a one-shot temp file while hashed, verified against
   * `expected` when given, then published. Nothing is left behind on failure. Not resumable.
   */
  async writeStream(source: AsyncIterable<Uint8Array>, expected: { digest?: Digest; size?: number } = {}): Promise<BlobInfo & { created: boolean }> {
    const algorithm = expected.digest ? parseDigest(expected.digest).algorithm : 'sha256';
    await this.init();
    const tmp = join(this.ingestDir, `tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    const hash = createHash(algorithm);
    let size = 0;
    let digest: Digest;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (expected.size !== undefined && size > expected.size) {
          throw new ContentError('size-mismatch', expected.digest ?? '', `blob ${expected.digest ?? ''}: more than the expected ${expected.size} bytes`);
        }
        hash.update(chunk);
        await fh.write(chunk);
      }
      if (expected.size !== undefined && size !== expected.size) {
        throw new ContentError('size-mismatch', expected.digest ?? '', `blob ${expected.digest ?? ''}: expected ${expected.size} bytes, got ${size}`);
      }
      digest = `${algorithm}:${hash.digest('hex')}`;
      if (expected.digest !== undefined && digest !== expected.digest) {
        throw new ContentError('digest-mismatch', expected.digest, `blob ${expected.digest}: the data hashes to ${digest}`);
      }
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    // `created` tells a caller that may have to undo its work whether the blob is its own.
    const created = !existsSync(this.path(digest));
    if (created) await this.publish(tmp, digest);
    else await rm(tmp, { force: true });
    return { ...(await this.info(digest)), created };
  }

  /**
   * Opens (or resumes) the ingest of one expected blob. If this process is already writing the
   * same digest, waits until that writer is finished first. If the blob is present, the returned
   * ingest is `complete` and needs nothing written.
   */
  async ingest(expected: IngestExpectation): Promise<Ingest> {
    const { algorithm, hex } = parseDigest(expected.digest);
    if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
      throw new ContentError('size-mismatch', expected.digest, `blob ${expected.digest}: invalid expected size ${expected.size}`);
    }
    await this.init();
    // Wait for this process's live writer of the digest, if any; loop because several waiters may
    // wake together and only one of them may take over.
    for (let current = this.live.get(expected.digest); current; current = this.live.get(expected.digest)) {
      await current;
    }
    let finish!: () => void;
    this.live.set(expected.digest, new Promise<void>((resolve) => { finish = resolve; }));
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      this.live.delete(expected.digest);
      finish();
    };
    let locked = false;
    try {
      if (await this.has(expected.digest)) {
        const info = await this.info(expected.digest);
        done();
        if (info.size !== expected.size) {
          throw new ContentError('size-mismatch', expected.digest, `blob ${expected.digest} is in the store with ${info.size} bytes, but ${expected.size} were expected`);
        }
        return new CompleteIngest(info);
      }
      const dir = join(this.ingestDir, hex);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await this.takeLock(dir, expected.digest);
      locked = true;
      return await OpenIngest.open(this, dir, algorithm, expected, done);
    } catch (err) {
      if (locked) await rm(join(this.ingestDir, hex, 'lock'), { force: true }).catch(() => {});
      done();
      throw err;
    }
  }

  /** Takes the cross-process lock of an ingest dir; a lock left by a dead process is taken over. */
  private async takeLock(dir: string, digest: Digest): Promise<void> {
    const lock = join(dir, 'lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const holder = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
      // Our own pid in a lock that this process does not hold in `live` is a leftover of an
      // earlier process that had the same pid (common for pid 1 in a container).
      if (holder !== process.pid && processAlive(holder)) {
        throw new ContentError('locked', digest, `blob ${digest} is being written by another process (pid ${holder}); retry when it is done`);
      }
      await rm(lock, { force: true });
    }
    throw new ContentError('locked', digest, `blob ${digest}: could not take the ingest lock in ${dir}`);
  }

  /** Moves a finished, fsynced temp file to its blob path and makes the rename durable. */
  async publish(tmp: string, digest: Digest): Promise<void> {
    const final = this.path(digest);
    const dir = join(this.blobsDir, parseDigest(digest).algorithm);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await rename(tmp, final);
    await syncDir(dir);
  }

  /** Removes a blob; false when it was not there. */
  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Every committed blob (sha256 and sha512). */
  async list(): Promise<BlobInfo[]> {
    await this.init();
    const out: BlobInfo[] = [];
    for (const algorithm of ['sha256', 'sha512'] as DigestAlgorithm[]) {
      let names: string[];
      try {
        names = await readdir(join(this.blobsDir, algorithm));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      for (const hex of names) {
        const digest = `${algorithm}:${hex}`;
        try {
          parseDigest(digest);
        } catch {
          continue; // not ours (an editor's backup file, say); GC leaves it alone
        }
        try {
          const st = await stat(join(this.blobsDir, algorithm, hex));
          if (st.isFile()) out.push({ digest, size: st.size, modified: st.mtime });
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
        }
      }
    }
    return out;
  }

  /** The partial downloads on disk. */
  async listIngests(): Promise<IngestStatus[]> {
    await this.init();
    const out: IngestStatus[] = [];
    for (const name of await readdir(this.ingestDir)) {
      if (name.startsWith('tmp-')) continue;
      const dir = join(this.ingestDir, name);
      let info: IngestInfoFile;
      try {
        info = JSON.parse(await readFile(join(dir, 'info.json'), 'utf8')) as IngestInfoFile;
      } catch {
        continue;
      }
      let offset = 0;
      let updatedAt = new Date(info.startedAt);
      try {
        const st = await stat(join(dir, 'data'));
        offset = st.size;
        updatedAt = st.mtime;
      } catch {
        // no data yet
      }
      out.push({
        digest: info.digest, expectedSize: info.size, offset, ref: info.ref, startedAt: info.startedAt, updatedAt,
        active: this.live.has(info.digest) || (await this.lockHolder(dir)) !== NO_INGEST_HOLDER,
      });
    }
    return out;
  }

  private async lockHolder(dir: string): Promise<number> {
    const holder = Number.parseInt(await readFile(join(dir, 'lock'), 'utf8').catch(() => ''), 10);
    return holder !== process.pid && processAlive(holder) ? holder : NO_INGEST_HOLDER;
  }

  /**
   * Deletes partial downloads and temp files untouched for `olderThanMs` (default 0: all that are
   * not being written). Returns the names removed.
   */
  async removeStaleIngests(olderThanMs = 0): Promise<string[]> {
    await this.init();
    const removed: string[] = [];
    const cutoff = Date.now() - olderThanMs;
    for (const name of await readdir(this.ingestDir)) {
      const path = join(this.ingestDir, name);
      let st;
      try {
        st = await stat(path);
      } catch {
        continue;
      }
      if (name.startsWith('tmp-')) {
        // writeBuffer's temp files live for one call; an old one is a crash leftover.
        if (st.mtimeMs <= cutoff && Date.now() - st.mtimeMs > 60_000) {
          await rm(path, { force: true });
          removed.push(name);
        }
        continue;
      }
      const digest = `${name.length === 128 ? 'sha512' : 'sha256'}:${name}`;
      if (this.live.has(digest) || (await this.lockHolder(path)) !== NO_INGEST_HOLDER) continue;
      const data = await stat(join(path, 'data')).catch(() => st);
      if (data.mtimeMs > cutoff) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }

  private mapNotFound(err: unknown, digest: Digest): unknown {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) {
      return new ContentError('not-found', digest, `blob ${digest} not found in the content store`);
    }
    return err;
  }
}

class CompleteIngest implements Ingest {
  readonly digest: Digest;
  readonly expectedSize: number;
  readonly offset: number;
  readonly written: number;
  readonly complete = true;
  constructor(private readonly blob: BlobInfo) {
    this.digest = blob.digest;
    this.expectedSize = this.offset = this.written = blob.size;
  }
  async write(): Promise<void> {
    throw new ContentError('closed', this.digest, `blob ${this.digest} is already in the store; nothing to write`);
  }
  async commit(): Promise<BlobInfo> { return this.blob; }
  async restart(): Promise<void> {}
  async abort(): Promise<void> {}
  async release(): Promise<void> {}
  stream(): Writable {
    return new Writable({ write: (_c, _e, cb) => cb(new ContentError('closed', this.digest, `blob ${this.digest} is already in the store; nothing to write`)) });
  }
}

class OpenIngest implements Ingest {
  readonly complete = false;
  written: number;
  private finished = false;
  private pending: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: ContentStore,
    private readonly dir: string,
    private readonly algorithm: DigestAlgorithm,
    readonly digest: Digest,
    readonly expectedSize: number,
    readonly offset: number,
    private fh: FileHandle,
    private hash: Hash,
    private readonly onDone: () => void,
  ) {
    this.written = offset;
  }

  static async open(store: ContentStore, dir: string, algorithm: DigestAlgorithm, expected: IngestExpectation, onDone: () => void): Promise<OpenIngest> {
    const infoPath = join(dir, 'info.json');
    const dataPath = join(dir, 'data');
    let info: IngestInfoFile | undefined;
    try {
      info = JSON.parse(await readFile(infoPath, 'utf8')) as IngestInfoFile;
    } catch {
      info = undefined;
    }
    // Partial data is only trusted for the same expectation; a different expected size means
    // another manifest claims this digest, and one of them is wrong: start clean.
    const reuse = info !== undefined && info.digest === expected.digest && info.size === expected.size;
    if (!reuse) {
      const fresh: IngestInfoFile = { digest: expected.digest, size: expected.size, ref: expected.ref, startedAt: new Date().toISOString() };
      await writeFile(`${infoPath}.tmp`, JSON.stringify(fresh));
      await rename(`${infoPath}.tmp`, infoPath);
    }
    const fh = await open(dataPath, constants.O_RDWR | constants.O_CREAT, 0o644);
    let offset = (await fh.stat()).size;
    if (!reuse || offset > expected.size) {
      await fh.truncate(0);
      offset = 0;
    }
    const hash = createHash(algorithm);
    // Re-hash what survived: the digest is computed over the whole blob, and hash state cannot
    // be saved portably across processes.
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < offset;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, offset - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return new OpenIngest(store, dir, algorithm, expected.digest, expected.size, offset, fh, hash, onDone);
  }

  private check(): void {
    if (this.finished) throw new ContentError('closed', this.digest, `ingest of ${this.digest} is already finished`);
  }

  /** Runs one operation after the previous ones (writes must land in order). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.pending.then(fn);
    this.pending = run.then(() => {}, () => {});
    return run;
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.serial(async () => {
      this.check();
      if (this.written + chunk.length > this.expectedSize) {
        const got = this.written + chunk.length;
        await this.finish(true);
        throw new ContentError('size-mismatch', this.digest, `blob ${this.digest}: received more than the expected ${this.expectedSize} bytes (at least ${got})`);
      }
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, this.written + done);
        done += bytesWritten;
      }
      this.hash.update(chunk);
      this.written += chunk.length;
    });
  }

  commit(): Promise<BlobInfo> {
    return this.serial(async () => {
      this.check();
      if (this.written < this.expectedSize) {
        await this.finish(false);
        throw new ContentError('incomplete', this.digest, `blob ${this.digest}: only ${this.written} of ${this.expectedSize} bytes arrived (kept for resuming)`);
      }
      const actual = this.hash.digest('hex');
      const { hex } = parseDigest(this.digest);
      if (actual !== hex) {
        await this.finish(true);
        throw new ContentError('digest-mismatch', this.digest, `blob ${this.digest}: the ${this.expectedSize} bytes received hash to ${this.algorithm}:${actual}`);
      }
      await this.fh.sync();
      await this.fh.close();
      this.finished = true;
      try {
        if (!(await this.store.has(this.digest))) await this.store.publish(join(this.dir, 'data'), this.digest);
        await rm(this.dir, { recursive: true, force: true });
      } finally {
        this.onDone();
      }
      return this.store.info(this.digest);
    });
  }

  restart(): Promise<void> {
    return this.serial(async () => {
      this.check();
      await this.fh.truncate(0);
      this.hash = createHash(this.algorithm);
      this.written = 0;
    });
  }

  abort(): Promise<void> {
    return this.serial(async () => {
      if (!this.finished) await this.finish(true);
    });
  }

  release(): Promise<void> {
    return this.serial(async () => {
      if (!this.finished) await this.finish(false);
    });
  }

  /** Closes the data file and drops the lock; with `discard`, deletes the partial data too. */
  private async finish(discard: boolean): Promise<void> {
    this.finished = true;
    try {
      await this.fh.close().catch(() => {});
      if (discard) await rm(this.dir, { recursive: true, force: true });
      else await rm(join(this.dir, 'lock'), { force: true });
    } finally {
      this.onDone();
    }
  }

  stream(): Writable {
    return new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => { this.write(chunk).then(() => cb(), cb); },
      final: (cb) => { this.commit().then(() => cb(), cb); },
      destroy: (err, cb) => {
        if (this.finished) { cb(err); return; }
        this.release().then(() => cb(err), () => cb(err));
      },
    });
  }
}

export function isContentError(err: unknown, code?: ContentErrorCode): err is ContentError {
  return err instanceof ContentError && (code === undefined || err.code === code);
}

// Re-exported so callers can tell malformed digests apart without importing digest.ts.
export function isInvalidDigestError(err: unknown): err is InvalidDigestError {
  return err instanceof InvalidDigestError;
}
