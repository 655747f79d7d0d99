// applyLayer: one layer blob → one directory, in a single streaming pass. The compressed bytes
// are (optionally) hashed against the blob digest, decompressed, hashed again for the diff ID,
// parsed and written, all in the same Writable.write() call per chunk, with no temporary tar.
//
// On failure the target directory is left as it is, partly written: the caller extracts into a
// fresh snapshot directory and discards it (Snapshotter.prepareLayer → abort), so nothing
// partial is ever used.
import { createHash, type Hash } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidDigestError, parseDigest } from '../digest.ts';
import type { Digest } from '../types.ts';
import { createDecompressor, decompressionError, detectCompression, MAGIC_BYTES, type Compression } from './compression.ts';
import { LayerError } from './errors.ts';
import { Extractor, type LowerLayer, type UnpackMode } from './extract.ts';
import { TarReader } from './tar.ts';

export { LayerError, type LayerErrorReason } from './errors.ts';
export { detectCompression, type Compression } from './compression.ts';
export { TarReader, type TarEntry, type TarSink, type TarTime, type EntryType } from './tar.ts';
export type { LowerLayer, UnpackMode } from './extract.ts';

export interface ApplyLayerOptions {
  /** The directory to write into: a fresh snapshot dir (overlay) or a copy of the parent (apply). */
  target: string;
  mode: UnpackMode;
  /** The layer's media type (only consulted for unsupported codecs; the magic bytes decide). */
  mediaType?: string;
  /** The compressed blob's digest: named in errors, and the bytes read are verified against it. */
  digest?: Digest;
  /** The config's diff_id for this layer; a mismatch fails the layer. */
  expectedDiffId?: Digest;
  /** overlay mode: the layers below, topmost first. */
  lowers?: readonly LowerLayer[];
  /** Apply the entries' uid/gid (default: when running as root). */
  chown?: boolean;
  /** Called with the compressed bytes consumed so far (for "Extracting" progress). */
  onProgress?: (compressedBytes: number) => void;
  signal?: AbortSignal;
}

export interface ApplyLayerResult {
  /** The digest of the uncompressed tar (sha256, or the expected diff ID's algorithm). */
  diffId: Digest;
  compression: Compression;
  /** Bytes of the blob as read (compressed). */
  compressedSize: number;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  entries: number;
  /** Regular file bytes plus symlink target lengths: docker's size of a layer directory. */
  contentSize: number;
  /**
   * overlay mode: directories marked opaque in this layer (relative paths, raw bytes as latin1).
   * Kept with the snapshot and passed back in `lowers` when a later layer is unpacked above it.
   */
  opaqueDirs: string[];
}

/** Wraps a failure of the source itself (network, file) so it is rethrown unchanged. */
class SourceFailure {
  constructor(readonly error: unknown) {}
}

export async function applyLayer(source: AsyncIterable<Uint8Array> | Readable, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const layerName = opts.digest ?? opts.expectedDiffId;
  let diffHash: Hash;
  let blobHash: Hash | undefined;
  try {
    diffHash = createHash(opts.expectedDiffId ? parseDigest(opts.expectedDiffId).algorithm : 'sha256');
    if (opts.digest) blobHash = createHash(parseDigest(opts.digest).algorithm);
  } catch (err) {
    if (err instanceof InvalidDigestError) throw new LayerError('format', err.message).withLayer(layerName);
    throw err;
  }

  const iterator = source[Symbol.asyncIterator]();
  let compressedSize = 0;
  const take = (chunk: Uint8Array): Buffer => {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    compressedSize += buf.length;
    blobHash?.update(buf);
    opts.onProgress?.(compressedSize);
    return buf;
  };
  const nextChunk = async (): Promise<Buffer | undefined> => {
    try {
      const r = await iterator.next();
      return r.done ? undefined : take(r.value);
    } catch (err) {
      throw new SourceFailure(err);
    }
  };

  let compression: Compression = 'none';
  let extractor: Extractor | undefined;
  let reader: TarReader | undefined;
  try {
    // Enough of the head to see the magic bytes (chunks can be tiny at the start of a response).
    const headChunks: Buffer[] = [];
    let headLen = 0;
    while (headLen < MAGIC_BYTES) {
      const chunk = await nextChunk();
      if (!chunk) break;
      headChunks.push(chunk);
      headLen += chunk.length;
    }
    const head = Buffer.concat(headChunks);
    compression = detectCompression(head, opts.mediaType);

    const input = Readable.from((async function* () {
      try {
        if (head.length) yield head;
        for (let c = await nextChunk(); c; c = await nextChunk()) yield c;
      } finally {
        // On failure downstream, let the source release its connection or file.
        if (iterator.return) await iterator.return().catch(() => undefined);
      }
    })(), { objectMode: false, highWaterMark: 256 * 1024 });

    extractor = new Extractor({ root: opts.target, mode: opts.mode, lowers: opts.lowers, chown: opts.chown });
    const tar = (reader = new TarReader(extractor));
    const sinkErrors = new WeakSet<object>();
    const sink = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _enc, cb) {
        try {
          diffHash.update(chunk);
          tar.push(chunk);
          cb();
        } catch (err) {
          if (err instanceof Object) sinkErrors.add(err);
          cb(err as Error);
        }
      },
      final(cb) {
        try {
          tar.end();
          cb();
        } catch (err) {
          if (err instanceof Object) sinkErrors.add(err);
          cb(err as Error);
        }
      },
    });
    const decompressor: Transform | undefined = createDecompressor(compression);
    const streams = decompressor ? [input, decompressor, sink] : [input, sink];
    try {
      // pipeline's overloads want a fixed arity; the array form is the same call.
      await (pipeline as (...s: unknown[]) => Promise<void>)(...streams, ...(opts.signal ? [{ signal: opts.signal }] : []));
    } catch (err) {
      if (err instanceof LayerError || err instanceof SourceFailure) throw err;
      if ((err instanceof Object && sinkErrors.has(err)) || (err as Error)?.name === 'AbortError') throw err;
      // What is left came from the decompressor: corrupt or truncated compressed data.
      if (decompressor) throw decompressionError(compression, err as Error);
      throw err;
    }
    extractor.finish();

    if (blobHash) {
      const { algorithm, hex } = parseDigest(opts.digest!);
      const actual = blobHash.digest('hex');
      if (actual !== hex) {
        throw new LayerError('digest', `the blob's ${compressedSize} bytes hash to ${algorithm}:${actual}, not the layer digest`);
      }
    }
    const diffId = `${opts.expectedDiffId ? parseDigest(opts.expectedDiffId).algorithm : 'sha256'}:${diffHash.digest('hex')}`;
    if (opts.expectedDiffId && diffId !== opts.expectedDiffId) {
      throw new LayerError('diffid', `uncompressed content hashes to ${diffId}, but the image config's diff_id is ${opts.expectedDiffId}`);
    }
    return {
      diffId,
      compression,
      compressedSize,
      size: reader.position,
      entries: reader.entries,
      contentSize: extractor.contentSize,
      opaqueDirs: [...extractor.opaqueDirs],
    };
  } catch (err) {
    extractor?.abort();
    if (err instanceof SourceFailure) throw err.error;
    if (err instanceof LayerError) throw err.withLayer(layerName);
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code && typeof code === 'string' && code.startsWith('E') && (err as NodeJS.ErrnoException).syscall) {
      throw new LayerError('io', (err as Error).message, { cause: err }).withLayer(layerName);
    }
    throw err;
  }
}
