// Copy-up: the content an image has at a volume's mount point goes into a fresh (empty) volume
// the first time it is mounted there, as dockerd populates volumes: the tree is copied with its
// ownership, modes, times, symlinks (as links), hard links, devices and FIFOs.
//
// The rootfs is the image's, so it may be hostile: a path like /data may be a symlink to
// /etc, or to "../../../../etc" meaning the host's /etc if followed naively. The mount point is
// resolved as the container will see it, with rootfs as "/": symlinks are followed but their
// targets are re-rooted and ".." stops at the root. Each step goes through a directory fd
// (`/proc/self/fd/N/name`, Node's stand-in for openat) and opens directories with
// O_NOFOLLOW|O_DIRECTORY, so a component swapped for a symlink between check and open fails
// instead of leading out. Below the mount point nothing is followed: symlinks are copied as
// symlinks and files are opened with O_NOFOLLOW and checked with fstat.
//
// Extended attributes are not copied (Node can read none; dockerd skips unsupported ones too).
import {
  closeSync, constants, copyFileSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync,
  readlinkSync, symlinkSync, type BigIntStats,
} from 'node:fs';
import { join } from 'node:path';
import { FsOpsBatch } from '../image/unpack/fsops.ts';

const MAX_SYMLINKS = 40;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export class CopyUpError extends Error {
  override name = 'CopyUpError';
}

const fdPath = (fd: number, name?: string): string => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

export type ResolvedPath =
  | { kind: 'missing' }
  | { kind: 'dir'; fd: number }
  | { kind: 'other'; type: 'file' | 'device' | 'fifo' | 'socket' };

/**
 * Resolves a container path inside rootfs (symlinks re-rooted, ".." clamped at the root).
 * A directory comes back as an open fd the caller must close.
 */
export function resolveInRoot(rootfs: string, ctrPath: string): ResolvedPath {
  const rootFd = openSync(rootfs, constants.O_RDONLY | constants.O_DIRECTORY);
  const stack: number[] = [rootFd];
  const closeAbove = (depth: number): void => {
    while (stack.length > depth) closeSync(stack.pop()!);
  };
  let parts = ctrPath.split('/');
  let links = 0;
  try {
    while (parts.length > 0) {
      const c = parts.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (stack.length > 1) closeSync(stack.pop()!);
        continue;
      }
      const top = stack[stack.length - 1];
      const p = fdPath(top, c);
      let st;
      try {
        st = lstatSync(p);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
        throw e;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw new CopyUpError(`too many levels of symbolic links resolving ${ctrPath} in the image`);
        const target = readlinkSync(p);
        if (target.startsWith('/')) closeAbove(1);
        parts = [...target.split('/'), ...parts];
        continue;
      }
      const last = !parts.some((x) => x !== '' && x !== '.');
      if (st.isDirectory()) {
        let fd: number;
        try {
          fd = openSync(p, DIR_FLAGS);
        } catch (e) {
          // Swapped for a symlink or a file since the lstat: refuse rather than follow.
          throw new CopyUpError(`${ctrPath} changed while it was resolved in the image: ${(e as Error).message}`);
        }
        stack.push(fd);
        continue;
      }
      if (!last) return { kind: 'missing' };
      return { kind: 'other', type: st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'device' };
    }
    const fd = stack.pop()!;
    return { kind: 'dir', fd };
  } finally {
    closeAbove(0);
  }
}

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}
const nsTime = (ns: bigint): { sec: number; nsec: number } => ({ sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) });

/** True when the directory has no entries. */
export function isEmptyDir(dir: string): boolean {
  return readdirSync(dir).length === 0;
}

/** Opens dir/rel one component at a time, never following a symlink (the volume may be shared). */
function openDirBeneath(dirFd: number, rel: string): number {
  // The fd's own /proc link is followed on purpose: it names exactly that directory.
  let fd = openSync(fdPath(dirFd), constants.O_RDONLY | constants.O_DIRECTORY);
  for (const c of rel.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') { closeSync(fd); throw new CopyUpError(`unexpected ".." in ${rel}`); }
    let next: number;
    try {
      next = openSync(fdPath(fd, c), DIR_FLAGS);
    } finally {
      closeSync(fd);
    }
    fd = next;
  }
  return fd;
}

/**
 * Copies the directory open as srcFd into dst (an existing, empty directory), dst's own owner,
 * mode and times included. Returns the number of entries copied.
 *
 * The destination is written through directory fds as well: a volume can be shared with a
 * running container that could swap a directory for a symlink while the copy runs. New
 * entries are created with O_EXCL-like calls (mkdir, symlink, exclusive copy, mknod), which
 * never follow a symlink in their last component.
 */
export function copyTree(srcFd: number, dst: string): number {
  const batch = new FsOpsBatch();
  const inodes = new Map<bigint, string>();
  let count = 0;
  const meta = (rel: string, st: BigIntStats, symlink: boolean): void => {
    batch.chown(rel, Number(st.uid), Number(st.gid));
    // After chown: chown clears set-id bits.
    if (!symlink) batch.chmod(rel, Number(st.mode) & 0o7777);
    batch.times(rel, nsTime(st.atimeNs), nsTime(st.mtimeNs));
  };
  const dstRoot = openSync(dst, DIR_FLAGS);
  const walk = (fd: number, dfd: number, rel: string): void => {
    for (const name of readdirSync(fdPath(fd))) {
      const p = fdPath(fd, name);
      const target = fdPath(dfd, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p, { bigint: true });
      count++;
      if (st.isDirectory()) {
        let sub: number;
        try {
          sub = openSync(p, DIR_FLAGS);
        } catch (e) {
          throw new CopyUpError(`${childRel} changed while it was copied: ${(e as Error).message}`);
        }
        try {
          mkdirSync(target, { mode: 0o700 });
          const dsub = openSync(target, DIR_FLAGS);
          try {
            walk(sub, dsub, childRel);
          } finally {
            closeSync(dsub);
          }
        } finally {
          closeSync(sub);
        }
        meta(childRel, st, false);
        continue;
      }
      if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(p), target);
        meta(childRel, st, true);
        continue;
      }
      if (st.isFile()) {
        const seen = st.nlink > 1n ? inodes.get(st.ino) : undefined;
        if (seen !== undefined) {
          const slash = seen.lastIndexOf('/');
          const parent = openDirBeneath(dstRoot, slash < 0 ? '' : seen.slice(0, slash));
          try {
            linkSync(fdPath(parent, seen.slice(slash + 1)), target);
          } finally {
            closeSync(parent);
          }
          continue;
        }
        const f = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          const fst = fstatSync(f, { bigint: true });
          if (!fst.isFile() || fst.ino !== st.ino) throw new CopyUpError(`${childRel} changed while it was copied`);
          copyFileSync(fdPath(f), target, constants.COPYFILE_EXCL);
        } finally {
          closeSync(f);
        }
        if (st.nlink > 1n) inodes.set(st.ino, childRel);
        meta(childRel, st, false);
        continue;
      }
      if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
        batch.mknod(childRel, Number(st.mode), major(st.rdev), minor(st.rdev));
        meta(childRel, st, false);
        continue;
      }
      count--; // sockets: nothing to copy (as dockerd, which cannot recreate them either)
    }
  };
  try {
    walk(srcFd, dstRoot, '');
  } finally {
    closeSync(dstRoot);
  }
  meta('', fstatSync(srcFd, { bigint: true }), false);
  batch.run(dst);
  return count;
}

/**
 * Copies what rootfs has at ctrPath into volumeDir if volumeDir is empty and the path is a
 * directory in the image. Returns whether anything was copied. With refuseFile (an image's
 * VOLUME), a path that is not a directory in the image is an error, as in dockerd.
 */
export function copyUp(rootfs: string, ctrPath: string, volumeDir: string, opts: { refuseFile?: boolean } = {}): boolean {
  const r = resolveInRoot(rootfs, ctrPath);
  if (r.kind === 'missing') return false;
  if (r.kind === 'other') {
    if (opts.refuseFile) throw new CopyUpError(`cannot mount volume over existing file, file exists ${join(rootfs, ctrPath)}`);
    return false;
  }
  try {
    if (!isEmptyDir(volumeDir)) return false;
    copyTree(r.fd, volumeDir);
    return true;
  } finally {
    closeSync(r.fd);
  }
}
