// Tar fixtures for the image tests: a byte-exact tar writer (for binary PAX values, GNU long
// names and hostile headers that well-behaved writers refuse to produce), tar-stream's packer,
// GNU tar as an independent oracle, and a tree snapshot to compare extractions with.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack, type Header as TarHeader } from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';

const PYTHON = process.env.BERTH_TEST_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export type RawType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

export interface RawEntry {
  /** Bytes of the name (a string is taken as UTF-8). */
  name: string | Buffer;
  type?: RawType | { flag: string };
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch (header field). */
  mtime?: number;
  linkname?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an 'x' header before this entry (values as raw bytes when Buffers). */
  pax?: Record<string, string | Buffer>;
  /** Write the name (and link name) in GNU 'L'/'K' records instead of the header. */
  gnuLong?: boolean;
  /** Override the header's size field (for corrupt archives). */
  headerSize?: number;
}

const FLAGS: Record<RawType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function bytes(v: string | Buffer | undefined): Buffer {
  return v === undefined ? Buffer.alloc(0) : Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new Error(`value ${value} too large for a ${len}-byte field`);
  buf.write(`${s}\0`, off, 'latin1');
}

function header(fields: { name: Buffer; flag: string; size: number; mode: number; uid: number; gid: number; mtime: number; linkname: Buffer; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(512);
  if (fields.name.length > 100) throw new Error('name longer than 100 bytes: use pax or gnuLong');
  fields.name.copy(b, 0);
  octal(b, 100, 8, fields.mode);
  octal(b, 108, 8, fields.uid);
  octal(b, 116, 8, fields.gid);
  octal(b, 124, 12, fields.size);
  octal(b, 136, 12, fields.mtime);
  b.write(fields.flag, 156, 'latin1');
  fields.linkname.subarray(0, 100).copy(b, 157);
  b.write('ustar\0' + '00', 257, 'latin1');
  b.write('root', 265, 'latin1');
  b.write('root', 297, 'latin1');
  octal(b, 329, 8, fields.devmajor);
  octal(b, 337, 8, fields.devminor);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

function pad(data: Buffer): Buffer[] {
  const rest = (512 - (data.length % 512)) % 512;
  return rest ? [data, Buffer.alloc(rest)] : [data];
}

/** One PAX record, `<len> <key>=<value>\n`, where len counts itself. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), bytes(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function special(flag: string, name: string, data: Buffer): Buffer[] {
  return [header({ name: Buffer.from(name), flag, size: data.length, mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0 }), ...pad(data)];
}

/** A tar archive written byte by byte as the entries say (ends with two zero blocks unless end=false). */
export function rawTar(entries: RawEntry[], opts: { end?: boolean; globalPax?: Record<string, string | Buffer> } = {}): Buffer {
  const out: Buffer[] = [];
  if (opts.globalPax) {
    out.push(...special('g', 'pax_global_header', Buffer.concat(Object.entries(opts.globalPax).map(([k, v]) => paxRecord(k, v)))));
  }
  for (const e of entries) {
    const type = e.type ?? 'file';
    const flag = typeof type === 'string' ? FLAGS[type] : type.flag;
    let name = bytes(e.name);
    let linkname = bytes(e.linkname);
    const data = bytes(e.data);
    if (e.pax) out.push(...special('x', 'PaxHeaders/x', Buffer.concat(Object.entries(e.pax).map(([k, v]) => paxRecord(k, v)))));
    if (e.gnuLong) {
      if (name.length > 100) {
        out.push(...special('L', '././@LongLink', Buffer.concat([name, Buffer.alloc(1)])));
        name = name.subarray(0, 100);
      }
      if (linkname.length > 100) {
        out.push(...special('K', '././@LongLink', Buffer.concat([linkname, Buffer.alloc(1)])));
        linkname = linkname.subarray(0, 100);
      }
    }
    if (name.length > 100 && e.pax?.path !== undefined) name = name.subarray(0, 100);
    out.push(header({
      name, flag, size: e.headerSize ?? data.length, mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0,
      mtime: e.mtime ?? 1_700_000_000, linkname, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0,
    }));
    if (data.length) out.push(...pad(data));
  }
  if (opts.end !== false) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** The same through tar-stream's packer (an independent writer for ordinary entries). */
export async function packTar(entries: Array<Partial<TarHeader> & { name: string; data?: string | Buffer }>): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const { data: given, ...h } of entries) {
    const data = given ?? (h.type === undefined || h.type === 'file' ? '' : undefined);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data !== undefined) pack.entry(h, data, cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function gzip(data: Buffer): Buffer {
  return gzipSync(data);
}

export function zstd(data: Buffer): Buffer {
  return zstdCompress(data);
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function tempDir(prefix = 'berth-test-'): string {
  return mkdtempSync(join(process.env.BERTH_TEST_TMP ?? tmpdir(), prefix));
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = tempDir();
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs GNU tar; throws with its stderr on failure. */
export function gnuTar(args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  const r = spawnSync('tar', args, { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** Sets xattrs with python3 (an implementation independent of Berth's helper). */
export function setXattr(path: string, name: string, value: Buffer): void {
  execFileSync(PYTHON, ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)', path, name, value.toString('hex')]);
}

/** Every xattr under dir, read with python3: relative path → name → hex value. */
export function readXattrs(dir: string): Map<string, Map<string, string>> {
  const script = `
import os, sys, json
root = os.fsencode(sys.argv[1])
out = {}
def visit(p):
    rel = os.path.relpath(p, root).decode('latin1')
    names = os.listxattr(p, follow_symlinks=False)
    if names:
        out[rel] = {n: os.getxattr(p, n, follow_symlinks=False).hex() for n in names}
visit(root)
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        visit(os.path.join(d, n))
print(json.dumps(out))
`;
  const json = JSON.parse(execFileSync(PYTHON, ['-c', script, dir]).toString()) as Record<string, Record<string, string>>;
  return new Map(Object.entries(json).map(([k, v]) => [k, new Map(Object.entries(v))]));
}

export interface TreeNode {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: [number, number];
  /** The first path (in sorted order) of the same inode, for hard links. */
  linkOf?: string;
  xattrs?: Record<string, string>;
}

/**
 * lstat of every entry under dir (relative names as latin1 strings), with contents hashed,
 * symlink targets, device numbers, hard-link groups and (optionally) xattrs.
 */
export function tree(dir: string, opts: { xattrs?: boolean; mtimes?: boolean } = {}): Map<string, TreeNode> {
  const out = new Map<string, TreeNode>();
  const inodes = new Map<bigint, string>();
  const walk = (rel: string) => {
    const path = Buffer.from(`${Buffer.from(dir).toString('latin1')}${rel ? `/${rel}` : ''}`, 'latin1');
    const st = lstatSync(path, { bigint: true });
    const type: TreeNode['type'] = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char'
      : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'file';
    const node: TreeNode = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtimeNs: opts.mtimes === false ? 0n : st.mtimeNs };
    if (type === 'symlink') node.mode = 0;
    if (type === 'file') {
      node.size = Number(st.size);
      node.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
    if (type === 'symlink') node.target = readlinkSync(path, { encoding: 'buffer' }).toString('latin1');
    if (type === 'char' || type === 'block') node.rdev = [Number(st.rdev) >> 8 & 0xfff, (Number(st.rdev) & 0xff) | ((Number(st.rdev) >> 12) & 0xfff00)];
    if (type !== 'dir' && st.nlink > 1n) {
      const first = inodes.get(st.ino);
      if (first !== undefined) node.linkOf = first;
      else inodes.set(st.ino, rel);
    }
    if (rel) out.set(rel, node);
    if (type === 'dir') {
      const names = readdirSync(path, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
      for (const n of names) walk(rel ? `${rel}/${n}` : n);
    }
    if (!rel) out.set('.', node);
  };
  walk('');
  if (opts.xattrs) {
    for (const [rel, attrs] of readXattrs(dir)) {
      const node = out.get(rel);
      if (node) node.xattrs = Object.fromEntries([...attrs].sort());
    }
  }
  return out;
}

/** Lists differences between two trees (empty when equal), for assertion messages. */
export function diffTrees(a: Map<string, TreeNode>, b: Map<string, TreeNode>, ignore: (rel: string) => boolean = () => false): string[] {
  const diffs: string[] = [];
  const show = (v: unknown) => JSON.stringify(v, (_k, x) => typeof x === 'bigint' ? x.toString() : x);
  for (const [rel, na] of a) {
    if (ignore(rel)) continue;
    const nb = b.get(rel);
    if (!nb) { diffs.push(`only in first: ${rel}`); continue; }
    if (show(na) !== show(nb)) diffs.push(`${rel}: ${show(na)} != ${show(nb)}`);
  }
  for (const rel of b.keys()) if (!a.has(rel) && !ignore(rel)) diffs.push(`only in second: ${rel}`);
  return diffs;
}
