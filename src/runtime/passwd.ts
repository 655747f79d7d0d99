// Reading the image's /etc/passwd and /etc/group from the host side, without ever following a
// symlink: a hostile rootfs could point /etc/passwd (or /etc) at a host file.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

const MAX_ETC_FILE = 1 << 20;

/** The contents of rootfs/etc/<name>, or undefined if any component is a symlink, missing or odd. */
export function readEtcFile(rootfs: string, name: 'passwd' | 'group'): string | undefined {
  let fd = -1;
  try {
    // O_NOFOLLOW covers the last component; the directories are checked one by one.
    for (const dir of [rootfs, join(rootfs, 'etc')]) {
      const d = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      closeSync(d);
    }
    fd = openSync(join(rootfs, 'etc', name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_ETC_FILE) return undefined;
    const buf = Buffer.alloc(st.size);
    const n = readSync(fd, buf, 0, st.size, 0);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** The home directory of `uid` in the image, as runc sets HOME when the process env lacks it. */
export function homeOf(rootfs: string, uid: number): string {
  for (const line of readEtcFile(rootfs, 'passwd')?.split('\n') ?? []) {
    const f = line.split(':');
    if (f.length >= 6 && Number(f[2]) === uid && f[2] !== '' && f[5]) return f[5];
  }
  return '/';
}
