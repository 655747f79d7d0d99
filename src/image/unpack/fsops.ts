// The client side of native/fsops.c (dist/berth-fsops): Node has no mknod, mkfifo or setxattr,
// and its utimes goes through a double (sub-microsecond times come out wrong). Those operations
// are queued while a layer is extracted and run in one process per batch (~2 ms), which keeps
// the common entries (files, dirs, symlinks, hard links) on the fast synchronous fs calls.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LayerError } from './errors.ts';
import type { TarTime } from './tar.ts';

let cachedPath: string | undefined;

/** Finds dist/berth-fsops next to the bundle or from the source tree; BERTH_FSOPS overrides. */
export function fsopsPath(): string {
  if (cachedPath) return cachedPath;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.BERTH_FSOPS, join(here, 'berth-fsops'), join(here, '..', '..', '..', 'dist', 'berth-fsops')];
  for (const c of candidates) {
    if (c && existsSync(c)) return (cachedPath = c);
  }
  throw new LayerError('unsupported', `the unpack helper berth-fsops is missing (needed for device nodes, FIFOs, xattrs and whiteouts); run "npm run build" (looked in ${candidates.filter(Boolean).join(', ')})`);
}

export class FsOpsBatch {
  private parts: Buffer[] = [];
  private count = 0;

  get empty(): boolean {
    return this.count === 0;
  }

  get length(): number {
    return this.count;
  }

  private record(op: string, rel: string, tail: Buffer[]): void {
    const path = Buffer.from(rel, 'latin1');
    const head = Buffer.allocUnsafe(5);
    head[0] = op.charCodeAt(0);
    head.writeUInt32LE(path.length, 1);
    this.parts.push(head, path, ...tail);
    this.count++;
  }

  private static u32s(...values: number[]): Buffer {
    const b = Buffer.allocUnsafe(4 * values.length);
    values.forEach((v, i) => b.writeUInt32LE(v >>> 0, 4 * i));
    return b;
  }

  private static bytes(data: Buffer): Buffer[] {
    return [FsOpsBatch.u32s(data.length), data];
  }

  /** mode includes the file type bits (S_IFCHR, S_IFBLK or S_IFIFO). */
  mknod(rel: string, mode: number, major: number, minor: number): void {
    this.record('N', rel, [FsOpsBatch.u32s(mode, major, minor)]);
  }

  /** name: raw bytes as latin1. */
  setxattr(rel: string, name: string, value: Buffer): void {
    this.record('X', rel, [...FsOpsBatch.bytes(Buffer.from(name, 'latin1')), ...FsOpsBatch.bytes(value)]);
  }

  chown(rel: string, uid: number, gid: number): void {
    this.record('O', rel, [FsOpsBatch.u32s(uid, gid)]);
  }

  chmod(rel: string, mode: number): void {
    this.record('M', rel, [FsOpsBatch.u32s(mode)]);
  }

  times(rel: string, atime: TarTime, mtime: TarTime): void {
    const b = Buffer.allocUnsafe(24);
    b.writeBigInt64LE(BigInt(atime.sec), 0);
    b.writeUInt32LE(atime.nsec, 8);
    b.writeBigInt64LE(BigInt(mtime.sec), 12);
    b.writeUInt32LE(mtime.nsec, 20);
    this.record('T', rel, [b]);
  }

  /** Runs the queued operations beneath root and empties the batch. */
  run(root: string): void {
    if (this.count === 0) return;
    const input = Buffer.concat(this.parts);
    this.parts = [];
    this.count = 0;
    const r = spawnSync(fsopsPath(), [root], { input, stdio: ['pipe', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
    if (r.error) throw new LayerError('io', `cannot run berth-fsops: ${r.error.message}`, { cause: r.error });
    if (r.status !== 0) {
      const msg = r.stderr.toString('utf8').trim().replace(/^berth-fsops: /, '') || `exit status ${r.status ?? r.signal}`;
      throw new LayerError('io', msg);
    }
  }
}
