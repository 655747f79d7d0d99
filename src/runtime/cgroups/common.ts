// Helpers shared by the v1 and v2 cgroup managers: file I/O with actionable errors, sync sleeps,
// recursive pid collection and removal of cgroup directories.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, RuntimeError, StateError } from '../errors.ts';
import type { SavedCgroup } from './index.ts';

/** What a v1/v2 manager keeps for one hierarchy: exactly its persisted form. */
export type DirEntry = SavedCgroup['dirs'][number];

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Formats an integer value for a cgroup file; rejects fractions, NaN and exponent forms. */
export function fmtInt(value: number | bigint, what: string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value)) {
    throw new ConfigError(`${what}: ${JSON.stringify(value)} is not an integer`);
  }
  return BigInt(value).toString();
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

export function exists(p: string): boolean {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes one value to a cgroup file in a single write(2), as the kernel wants.
 * `what` names the config field (e.g. "linux.resources.memory.limit") for the error message.
 */
export function writeCg(dir: string, file: string, value: string, what: string): void {
  const p = path.join(dir, file);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY);
  } catch (e) {
    throw fileError(e, p, value, what);
  }
  try {
    fs.writeSync(fd, Buffer.from(value));
  } catch (e) {
    throw fileError(e, p, value, what);
  } finally {
    fs.closeSync(fd);
  }
}

export function fileError(e: unknown, p: string, value: string, what: string): RuntimeError {
  const code = errno(e);
  const v = JSON.stringify(value);
  switch (code) {
    case 'ENOENT':
      if (!exists(path.dirname(p))) {
        return new StateError(`cannot set ${what}: cgroup directory ${path.dirname(p)} does not exist`);
      }
      return new ConfigError(`cannot set ${what}: ${p} does not exist on this host (the kernel or cgroup setup lacks this feature)`);
    case 'EINVAL':
    case 'ERANGE':
      return new ConfigError(`cannot set ${what}: the kernel rejected ${v} for ${p} (${code})`);
    case 'ENODEV':
      return new ConfigError(`cannot set ${what}: no such device for ${v} in ${p} (ENODEV)`);
    case 'EBUSY':
      return new ConfigError(`cannot set ${what}: ${p} refused ${v} because the cgroup is busy (EBUSY)`);
    case 'ENOSPC':
      return new ConfigError(`cannot set ${what}: ${p} refused ${v} (ENOSPC: no CPUs/memory nodes or over a parent's limit)`);
    case 'EPERM':
    case 'EACCES':
      return new RuntimeError(`cannot set ${what}: permission denied writing ${v} to ${p} (${code})`);
    default:
      return new RuntimeError(`cannot set ${what}: writing ${v} to ${p} failed: ${(e as Error).message}`);
  }
}

export function readCg(dir: string, file: string): string {
  const p = path.join(dir, file);
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    throw new RuntimeError(`cannot read ${p}: ${(e as Error).message}`);
  }
}

/** The file's trimmed content, or undefined when it does not exist. */
export function readCgOpt(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw new RuntimeError(`cannot read ${path.join(dir, file)}: ${(e as Error).message}`);
  }
}

/** Parses "key value" lines (memory.stat, cpu.stat, cgroup.events). */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!text) return out;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = parseNum(v);
  }
  return out;
}

/** A number from a cgroup file; "max" is reported as v1's "unlimited" value. */
export const UNLIMITED = 9223372036854771712;
export function parseNum(v: string | undefined): number {
  if (v === undefined) return 0;
  const t = v.trim();
  if (t === 'max') return UNLIMITED;
  const n = Number(t);
  return Number.isFinite(n) ? n : 0;
}

/** Every pid in cgroup.procs of `dir` and its descendants; missing dirs are skipped. */
export function collectPids(dir: string, out: Set<number>): void {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENODEV') return;
    throw new RuntimeError(`cannot read ${path.join(dir, 'cgroup.procs')}: ${(e as Error).message}`);
  }
  for (const l of text.split('\n')) {
    const n = Number.parseInt(l, 10);
    if (Number.isInteger(n) && n > 0) out.add(n);
  }
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  for (const d of ents) if (d.isDirectory()) collectPids(path.join(dir, d.name), out);
}

/**
 * rmdir `dir` and its child cgroups, deepest first, retrying EBUSY (a cgroup whose last tasks are
 * still exiting) until `deadline` (ms since the epoch; shared by all hierarchies of one destroy).
 * Missing is fine.
 */
export function removeCgroupTree(dir: string, deadline = Date.now() + 1000): void {
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw new RuntimeError(`cannot list ${dir}: ${(e as Error).message}`);
  }
  for (const d of ents) if (d.isDirectory()) removeCgroupTree(path.join(dir, d.name), deadline);
  let delay = 5;
  for (;;) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOENT') return;
      if (code === 'EBUSY' && Date.now() < deadline) {
        sleepSync(Math.min(delay, Math.max(1, deadline - Date.now())));
        delay = Math.min(delay * 2, 100);
        continue;
      }
      const pids = new Set<number>();
      try {
        collectPids(dir, pids);
      } catch {
        /* reported below anyway */
      }
      const still = pids.size ? `; it still holds processes ${[...pids].join(', ')}` : '';
      throw new RuntimeError(`cannot remove cgroup ${dir}: ${(e as Error).message}${still}`);
    }
  }
}

/** The directories from `mountpoint` (exclusive) down to `dir` (inclusive). */
export function pathChain(mountpoint: string, dir: string): string[] {
  const rel = path.relative(mountpoint, dir);
  if (!rel || rel.startsWith('..')) return [];
  const out: string[] = [];
  let cur = mountpoint;
  for (const part of rel.split('/')) {
    cur = path.join(cur, part);
    out.push(cur);
  }
  return out;
}

/**
 * mkdir -p of `dir` below `mountpoint`; returns the directories it created (outermost first)
 * so that a failed create can take them away again.
 */
export function mkdirChain(mountpoint: string, dir: string): string[] {
  const made: string[] = [];
  for (const d of pathChain(mountpoint, dir)) {
    try {
      fs.mkdirSync(d, { mode: 0o755 });
      made.push(d);
    } catch (e) {
      if (errno(e) === 'EEXIST') continue;
      for (const m of made.reverse()) {
        try {
          fs.rmdirSync(m);
        } catch {
          /* best effort */
        }
      }
      throw new RuntimeError(`cannot create cgroup directory ${d}: ${(e as Error).message}`);
    }
  }
  return made;
}

export function rmdirQuiet(dirs: string[]): void {
  for (const d of [...dirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* best effort */
    }
  }
}

/** Parses blkio/io "MAJ:MIN" device keys. */
export function devKey(major: number, minor: number, what: string): string {
  return `${fmtInt(major, `${what}.major`)}:${fmtInt(minor, `${what}.minor`)}`;
}

/** Sizes the kernel offers for huge pages, as cgroup files spell them ("2MB", "1GB"). */
export function hugePageSizes(): string[] {
  let ents: string[] = [];
  try {
    ents = fs.readdirSync('/sys/kernel/mm/hugepages');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of ents) {
    const m = /^hugepages-(\d+)kB$/.exec(e);
    if (!m) continue;
    let kb = Number(m[1]);
    let unit = 'KB';
    if (kb % 1024 === 0) {
      kb /= 1024;
      unit = 'MB';
      if (kb % 1024 === 0) {
        kb /= 1024;
        unit = 'GB';
      }
    }
    out.push(`${kb}${unit}`);
  }
  return out;
}

export function checkPageSize(pageSize: string, file: string, dir: string): void {
  if (typeof pageSize !== 'string' || !/^\d+(KB|MB|GB|TB)$/.test(pageSize)) {
    throw new ConfigError(`linux.resources.hugepageLimits: invalid pageSize ${JSON.stringify(pageSize)} (expected e.g. "2MB" or "1GB")`);
  }
  if (!exists(path.join(dir, file))) {
    const sizes = hugePageSizes();
    throw new ConfigError(
      `linux.resources.hugepageLimits: ${path.join(dir, file)} does not exist: huge page size ${pageSize} is not supported here` +
        (sizes.length ? ` (available: ${sizes.join(', ')})` : ' (no huge page sizes available)'),
    );
  }
}

/**
 * A device rule's access as the v1 devices.allow/deny files spell it: its r, w and m, once each.
 * Other letters mean nothing to the kernel and are left out, as runc does (configs in the wild say
 * "rwa"); an access with none of r, w, m is an error.
 */
export function checkAccess(access: string | undefined, i: number): string {
  const a = access ?? 'rwm';
  const known = [...'rwm'].filter((c) => a.includes(c)).join('');
  if (known === '') {
    throw new ConfigError(`linux.resources.devices[${i}].access: ${JSON.stringify(access)} must contain r, w or m`);
  }
  return known;
}

/**
 * Removes the default parent ("/berth") of a container cgroup once its last container is gone, so
 * nothing Berth made outlives its containers. A concurrent create re-creates it (mkdir -p retries).
 */
export function removeEmptyParent(dir: string): void {
  try {
    fs.rmdirSync(path.dirname(dir));
  } catch {
    /* still in use by other containers, or already gone */
  }
}
