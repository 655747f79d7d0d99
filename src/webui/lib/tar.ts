// Streaming tar reading (headers, and data when asked) and a small tar writer, for the browser:
// the file browser lists and downloads through GET /containers/{id}/archive and uploads through
// PUT; the layer explorer reads the layers inside GET /images/{name}/get. Pure; unit-tested.
//
// Formats read: ustar, GNU long names/links ('L'/'K'), PAX extended headers ('x', path/linkpath/
// size) and global ones ('g', ignored). Entries are reported as their headers arrive; data is
// skipped unless the consumer asks for it (then delivered in chunks).

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarEntry {
  name: string;
  size: number;
  mode: number;
  type: TarEntryType;
  linkname: string;
  mtime: number;
  uid: number;
  gid: number;
}

export interface TarHandlers {
  /** Return true to receive this entry's data through onData. */
  onEntry(entry: TarEntry): boolean | void;
  onData?(entry: TarEntry, chunk: Uint8Array): void;
  onEntryEnd?(entry: TarEntry): void;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink', '3': 'char', '4': 'block', '6': 'fifo',
};

const latin = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

function str(b: Uint8Array, off: number, len: number, decoder = utf8): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return decoder.decode(b.subarray(off, end));
}

function num(b: Uint8Array, off: number, len: number): number {
  // Base-256 (GNU) for large values: high bit of the first byte set.
  if (b[off] & 0x80) {
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = latin.decode(b.subarray(off, off + len)).replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = utf8.decode(data);
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    // The length counts bytes; records are ASCII-keyed, so slicing the decoded text by the
    // record's newline is safe even with UTF-8 values.
    const nl = text.indexOf('\n', sp);
    if (nl < 0) break;
    const rec = text.slice(sp + 1, nl);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i = nl + 1;
  }
  return out;
}

/** Feed chunks with push(); headers and (requested) data are reported as soon as they are complete. */
export class TarReader {
  private buf = new Uint8Array(0);
  private entry?: TarEntry;
  private wantData = false;
  /** Data bytes of the current entry still to come, then padding to 512. */
  private remaining = 0;
  private padding = 0;
  private meta?: { kind: 'pax' | 'global' | 'longname' | 'longlink'; parts: Uint8Array[] };
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  private zeroBlocks = 0;
  ended = false;

  constructor(private readonly h: TarHandlers) {}

  push(chunk: Uint8Array): void {
    const data = this.buf.length ? concat(this.buf, chunk) : chunk;
    let off = 0;
    while (!this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length - off);
        if (n === 0) break;
        const part = data.subarray(off, off + n);
        if (this.meta) {
          this.meta.parts.push(part.slice());
        } else if (this.wantData && this.entry) {
          this.h.onData?.(this.entry, part);
        }
        off += n;
        this.remaining -= n;
        if (this.remaining > 0) break;
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, data.length - off);
        off += n;
        this.padding -= n;
        if (this.padding > 0) break;
        this.finishEntry();
        continue;
      }
      if (this.entry || this.meta) this.finishEntry();
      if (data.length - off < 512) break;
      this.header(data.subarray(off, off + 512));
      off += 512;
    }
    this.buf = off < data.length ? data.slice(off) : new Uint8Array(0);
  }

  private finishEntry(): void {
    if (this.meta) {
      const m = this.meta;
      this.meta = undefined;
      const all = concatAll(m.parts);
      if (m.kind === 'global') return;
      if (m.kind === 'pax') this.pax = { ...this.pax, ...parsePax(all) };
      else if (m.kind === 'longname') this.longName = str(all, 0, all.length);
      else this.longLink = str(all, 0, all.length);
      return;
    }
    if (this.entry) {
      const e = this.entry;
      this.entry = undefined;
      this.h.onEntryEnd?.(e);
    }
  }

  private header(b: Uint8Array): void {
    if (b.every((x) => x === 0)) {
      if (++this.zeroBlocks >= 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i];
    if (sum !== num(b, 148, 8)) throw new TarFormatError('not a tar archive (header checksum mismatch)');
    const flag = String.fromCharCode(b[156]);
    const size = num(b, 124, 12);
    const blocks = Math.ceil(size / 512) * 512;
    if (flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g') {
      this.remaining = size;
      this.padding = blocks - size;
      // Global PAX headers ('g', e.g. git archive's commit comment) are read and dropped.
      this.meta = { kind: flag === 'x' ? 'pax' : flag === 'g' ? 'global' : flag === 'L' ? 'longname' : 'longlink', parts: [] };
      if (size === 0) this.finishEntry();
      return;
    }
    const magic = latin.decode(b.subarray(257, 263));
    let name = str(b, 0, 100);
    if (magic.startsWith('ustar')) {
      const prefix = str(b, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const entry: TarEntry = {
      name: this.pax.path ?? this.longName ?? name,
      size: this.pax.size !== undefined ? Number(this.pax.size) : size,
      mode: num(b, 100, 8),
      type: TYPES[flag] ?? 'other',
      linkname: this.pax.linkpath ?? this.longLink ?? str(b, 157, 100),
      mtime: this.pax.mtime !== undefined ? Math.floor(Number(this.pax.mtime)) : num(b, 136, 12),
      uid: num(b, 108, 8),
      gid: num(b, 116, 8),
    };
    this.pax = {};
    this.longName = undefined;
    this.longLink = undefined;
    const dataSize = entry.type === 'file' ? entry.size : entry.type === 'dir' || entry.type === 'symlink' || entry.type === 'hardlink' ? 0 : entry.size;
    this.entry = entry;
    this.wantData = this.h.onEntry(entry) === true;
    this.remaining = dataSize;
    this.padding = Math.ceil(dataSize / 512) * 512 - dataSize;
    if (dataSize === 0) this.finishEntry();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

export interface TarFileInput {
  name: string;
  data: Uint8Array;
  mode?: number;
  mtime?: number;
}

function writeString(b: Uint8Array, off: number, len: number, s: string): void {
  const bytes = new TextEncoder().encode(s);
  b.set(bytes.subarray(0, len), off);
}

function writeOctal(b: Uint8Array, off: number, len: number, v: number): void {
  writeString(b, off, len, `${v.toString(8).padStart(len - 1, '0')}\0`);
}

function paxRecord(key: string, value: string): string {
  // The record's length counts its own digits: grow until it is a fixed point.
  const body = ` ${key}=${value}\n`;
  const bodyLen = new TextEncoder().encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

function headerBlock(name: string, size: number, mode: number, mtime: number, flag: string): Uint8Array {
  const b = new Uint8Array(512);
  writeString(b, 0, 100, name);
  writeOctal(b, 100, 8, mode);
  writeOctal(b, 108, 8, 0);
  writeOctal(b, 116, 8, 0);
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, mtime);
  b.fill(32, 148, 156);
  b[156] = flag.charCodeAt(0);
  writeString(b, 257, 8, 'ustar\u000000');
  let sum = 0;
  for (const x of b) sum += x;
  writeString(b, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return b;
}

/** A tar of regular files (names longer than ustar's 100 bytes get a PAX header). */
export function writeTar(files: TarFileInput[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const pad = (n: number): void => { if (n % 512) parts.push(new Uint8Array(512 - (n % 512))); };
  for (const f of files) {
    const mtime = f.mtime ?? Math.floor(Date.now() / 1000);
    if (new TextEncoder().encode(f.name).length > 100) {
      const pax = new TextEncoder().encode(paxRecord('path', f.name));
      parts.push(headerBlock('././@PaxHeader', pax.length, 0o644, mtime, 'x'), pax);
      pad(pax.length);
    }
    parts.push(headerBlock(f.name.slice(0, 100), f.data.length, f.mode ?? 0o644, mtime, '0'), f.data);
    pad(f.data.length);
  }
  parts.push(new Uint8Array(1024));
  return concatAll(parts);
}
