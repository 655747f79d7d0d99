// The container page's file browser logic: a directory listing built from the tar that
// GET /containers/{id}/archive?path=<dir> streams (the Engine API has no "list directory" call;
// the archive of a directory is the only way to see inside it), and path helpers. Pure; unit-tested.
import type { TarEntry, TarEntryType } from './tar.ts';

export interface DirEntry {
  name: string;
  type: TarEntryType;
  size: number;
  /** Permission bits (and setuid/setgid/sticky). */
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink or hard link target. */
  linkname: string;
}

/** '/a//b/../c/' → '/a/c'; always absolute, no trailing slash except the root. */
export function normalizePath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

export function joinPath(dir: string, name: string): string {
  return normalizePath(`${dir}/${name}`);
}

export function parentPath(p: string): string {
  return normalizePath(`${p}/..`);
}

export function baseName(p: string): string {
  const n = normalizePath(p);
  return n === '/' ? '/' : n.slice(n.lastIndexOf('/') + 1);
}

/** The breadcrumb of a path: '/', then each directory down to it. */
export function breadcrumbs(p: string): Array<{ name: string; path: string }> {
  const parts = normalizePath(p).split('/').filter(Boolean);
  const crumbs = [{ name: '/', path: '/' }];
  let cur = '';
  for (const part of parts) {
    cur += `/${part}`;
    crumbs.push({ name: part, path: cur });
  }
  return crumbs;
}

/**
 * Collects the direct children of one directory from the headers of its archive. The archive
 * names entries after the directory's base name ('bin/', 'bin/ls', 'bin/sub/x'); the archive of
 * '/' has no such root entry ('bin/', 'etc/passwd', …). Deeper entries are only counted: the tar
 * carries the whole subtree, so a big one is cut at `limit` entries and the listing is partial.
 */
export class DirListing {
  readonly entries: DirEntry[] = [];
  /** Tar entries seen, deeper ones included. */
  seen = 0;
  /** The scan stopped at `limit` entries: children after that point are missing. */
  partial = false;
  private prefix?: string;

  constructor(readonly path: string, readonly limit = 20000) {
    if (normalizePath(path) === '/') this.prefix = '';
  }

  /** Takes one header; false once the limit is reached (the caller should stop reading). */
  add(e: TarEntry): boolean {
    if (this.partial) return false;
    this.seen++;
    const name = e.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (this.prefix === undefined) {
      // The first entry is the directory itself; its name is the prefix of everything else
      // (normally the base name, but a path that went through a symlink can be named otherwise).
      if (e.type === 'dir' && name && !name.includes('/')) {
        this.prefix = `${name}/`;
        return this.checkLimit();
      }
      this.prefix = `${baseName(this.path)}/`;
    }
    if (name && name.startsWith(this.prefix)) {
      const rest = name.slice(this.prefix.length);
      if (rest && !rest.includes('/')) {
        this.entries.push({ name: rest, type: e.type, size: e.type === 'file' ? e.size : 0, mode: e.mode & 0o7777, mtime: e.mtime, linkname: e.linkname });
      }
    }
    return this.checkLimit();
  }

  private checkLimit(): boolean {
    if (this.seen >= this.limit) {
      this.partial = true;
      return false;
    }
    return true;
  }

  /** Directories first, then by name. */
  sorted(): DirEntry[] {
    return [...this.entries].sort((a, b) => (a.type === 'dir' ? 0 : 1) - (b.type === 'dir' ? 0 : 1) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

const TYPE_CHAR: Record<TarEntryType, string> = { file: '-', dir: 'd', symlink: 'l', hardlink: '-', char: 'c', block: 'b', fifo: 'p', other: '?' };

/** 'drwxr-xr-x', as ls -l shows it. */
export function modeString(type: TarEntryType, mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string): string =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return TYPE_CHAR[type] + rwx(mode >> 6, (mode & 0o4000) !== 0, 's') + rwx(mode >> 3, (mode & 0o2000) !== 0, 's') + rwx(mode, (mode & 0o1000) !== 0, 't');
}

export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits: directory is 1<<31, symlink 1<<27. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** The X-Docker-Container-Path-Stat header of HEAD/GET …/archive (base64 of JSON). */
export function decodePathStat(header: string | null | undefined): PathStat | undefined {
  if (!header) return undefined;
  try {
    const bin = atob(header);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) as PathStat;
  } catch {
    return undefined;
  }
}

export function statIsDir(s: PathStat): boolean {
  return (s.mode & 0x80000000) !== 0 || s.mode < 0;
}
