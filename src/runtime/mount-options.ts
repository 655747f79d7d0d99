// OCI mount options → mount(2) flags, propagation changes and fs data (like mount(8)).
import { ConfigError } from './errors.ts';

export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20,
  MANDLOCK: 0x40, DIRSYNC: 0x80, NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800,
  BIND: 0x1000, MOVE: 0x2000, REC: 0x4000, SILENT: 0x8000, UNBINDABLE: 0x20000,
  PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000, STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

interface FlagOption { set: boolean; flag: number }

const FLAG_OPTIONS: Record<string, FlagOption> = {
  async: { set: false, flag: MS.SYNCHRONOUS }, atime: { set: false, flag: MS.NOATIME },
  defaults: { set: false, flag: 0 }, dev: { set: false, flag: MS.NODEV },
  diratime: { set: false, flag: MS.NODIRATIME }, dirsync: { set: true, flag: MS.DIRSYNC },
  exec: { set: false, flag: MS.NOEXEC }, mand: { set: true, flag: MS.MANDLOCK },
  noatime: { set: true, flag: MS.NOATIME }, nodev: { set: true, flag: MS.NODEV },
  nodiratime: { set: true, flag: MS.NODIRATIME }, noexec: { set: true, flag: MS.NOEXEC },
  nomand: { set: false, flag: MS.MANDLOCK }, norelatime: { set: false, flag: MS.RELATIME },
  nostrictatime: { set: false, flag: MS.STRICTATIME }, nosuid: { set: true, flag: MS.NOSUID },
  relatime: { set: true, flag: MS.RELATIME }, ro: { set: true, flag: MS.RDONLY },
  rw: { set: false, flag: MS.RDONLY }, strictatime: { set: true, flag: MS.STRICTATIME },
  suid: { set: false, flag: MS.NOSUID }, sync: { set: true, flag: MS.SYNCHRONOUS },
  lazytime: { set: true, flag: MS.LAZYTIME }, nolazytime: { set: false, flag: MS.LAZYTIME },
  nosymfollow: { set: true, flag: MS.NOSYMFOLLOW }, symfollow: { set: false, flag: MS.NOSYMFOLLOW },
  silent: { set: true, flag: MS.SILENT }, loud: { set: false, flag: MS.SILENT },
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** mount_setattr(2) MOUNT_ATTR_* bits. The atime mode is a 3-bit field (MOUNT_ATTR__ATIME). */
export const MOUNT_ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, _ATIME: 0x70, RELATIME: 0x0, NOATIME: 0x10,
  STRICTATIME: 0x20, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000,
} as const;

/** The recursive ("r"-prefixed) options: which attribute each sets, or clears. */
const RECURSIVE_OPTIONS: Record<string, FlagOption> = {
  rro: { set: true, flag: MOUNT_ATTR.RDONLY }, rrw: { set: false, flag: MOUNT_ATTR.RDONLY },
  rnosuid: { set: true, flag: MOUNT_ATTR.NOSUID }, rsuid: { set: false, flag: MOUNT_ATTR.NOSUID },
  rnodev: { set: true, flag: MOUNT_ATTR.NODEV }, rdev: { set: false, flag: MOUNT_ATTR.NODEV },
  rnoexec: { set: true, flag: MOUNT_ATTR.NOEXEC }, rexec: { set: false, flag: MOUNT_ATTR.NOEXEC },
  rnodiratime: { set: true, flag: MOUNT_ATTR.NODIRATIME }, rdiratime: { set: false, flag: MOUNT_ATTR.NODIRATIME },
  rnosymfollow: { set: true, flag: MOUNT_ATTR.NOSYMFOLLOW }, rsymfollow: { set: false, flag: MOUNT_ATTR.NOSYMFOLLOW },
  // The atime mode is one value: each of these selects a mode (setting the field's bits to it).
  rrelatime: { set: true, flag: MOUNT_ATTR.RELATIME }, rnorelatime: { set: false, flag: MOUNT_ATTR.RELATIME },
  rnoatime: { set: true, flag: MOUNT_ATTR.NOATIME }, ratime: { set: false, flag: MOUNT_ATTR.NOATIME },
  rstrictatime: { set: true, flag: MOUNT_ATTR.STRICTATIME }, rnostrictatime: { set: false, flag: MOUNT_ATTR.STRICTATIME },
};

/** The recursive option names, for `features`. */
export const RECURSIVE_MOUNT_OPTIONS: readonly string[] = Object.keys(RECURSIVE_OPTIONS);

/** Options Berth understands but that change nothing in the mount(2) call itself. */
const IGNORED_OPTIONS = new Set(['tmpcopyup', 'notmpcopyup', 'idmap', 'ridmap', 'copy-symlink']);

export interface ParsedMountOptions {
  flags: number;
  /** Flags that were explicitly cleared (rw, suid, …): needed to decide what a bind remount keeps. */
  cleared: number;
  propagation: number[];
  bind: boolean;
  recursive: boolean;
  data: string[];
  /** mount_setattr(2) "r"-prefixed recursive flags (rro, rnosuid, …) */
  recursiveAttrs: string[];
  /** …as MOUNT_ATTR_* bits to set and to clear on the mount and every mount below it. */
  recAttrSet: number;
  recAttrClr: number;
}

export function parseMountOptions(options: string[] | undefined, where: string): ParsedMountOptions {
  const out: ParsedMountOptions = { flags: 0, cleared: 0, propagation: [], bind: false, recursive: false, data: [], recursiveAttrs: [], recAttrSet: 0, recAttrClr: 0 };
  for (const option of options ?? []) {
    if (option === 'bind' || option === 'rbind') {
      out.bind = true;
      if (option === 'rbind') out.recursive = true;
      continue;
    }
    const flag = FLAG_OPTIONS[option];
    if (flag) {
      if (flag.set) { out.flags |= flag.flag; out.cleared &= ~flag.flag; }
      else { out.flags &= ~flag.flag; out.cleared |= flag.flag; }
      continue;
    }
    const propagation = PROPAGATION_OPTIONS[option];
    if (propagation !== undefined) { out.propagation.push(propagation); continue; }
    if (IGNORED_OPTIONS.has(option)) continue;
    const rec = RECURSIVE_OPTIONS[option];
    if (rec) {
      out.recursiveAttrs.push(option);
      if ((rec.flag & MOUNT_ATTR._ATIME) === rec.flag) {
        // The atime mode is one value, changed only with the whole field in attr_clr
        // (mount_setattr(2)); the last atime option wins, and the "clear" forms (ratime,
        // rnorelatime, rnostrictatime) select relatime, the field's 0 value, as in runc.
        out.recAttrSet = (out.recAttrSet & ~MOUNT_ATTR._ATIME) | (rec.set ? rec.flag : 0);
        out.recAttrClr |= MOUNT_ATTR._ATIME;
      } else if (rec.set) { out.recAttrSet |= rec.flag; out.recAttrClr &= ~rec.flag; }
      else { out.recAttrClr |= rec.flag; out.recAttrSet &= ~rec.flag; }
      continue;
    }
    if (option === '') throw new ConfigError(`${where}: empty mount option`);
    // Anything else is filesystem data (size=, mode=, uid=, …), passed to the kernel verbatim.
    out.data.push(option);
  }
  return out;
}
