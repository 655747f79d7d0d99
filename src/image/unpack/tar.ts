// A push-style tar reader: bytes in (synchronously, in any chunking), entries out to a sink.
//
// Why not tar-stream's extract: it decodes PAX values as UTF-8, which destroys binary xattr values
// (`security.capability`, ACLs) and non-UTF-8 names; and its per-entry streams would force the
// writer into callbacks, while the fast writer is synchronous. This reader keeps every name and
// value as bytes (names as latin1 strings, one char per byte; xattr values as Buffers) and calls
// the sink synchronously, so one Writable.write() of decompressed bytes does all the work.
//
// Formats: POSIX ustar + PAX (per-entry and global records), GNU (long names 'L'/'K', base-256
// numbers, dumpdir 'D'), star's shorter prefix, and pre-POSIX v7 headers. Not supported, with a
// clear error: sparse files, multi-volume archives.
import { LayerError, displayName } from './errors.ts';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarTime {
  sec: number;
  nsec: number;
}

export interface TarEntry {
  type: EntryType;
  /** Path as raw bytes held in a latin1 string (one char per byte). Not normalised. */
  name: string;
  /** Hard-link or symlink target, raw bytes as latin1. */
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content that follow (0 for all but regular files). */
  size: number;
  mtime: TarTime;
  atime: TarTime | undefined;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* / LIBARCHIVE.xattr.*: name (latin1 bytes) → value. */
  xattrs: Map<string, Buffer> | undefined;
  /** Offset of the entry's header in the uncompressed stream (for messages). */
  offset: number;
}

export interface TarSink {
  entry(entry: TarEntry): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

const BLOCK = 512;
/** PAX and GNU long-name records larger than this are refused (as Go's archive/tar does) so a hostile header cannot exhaust memory. */
const MAX_META = 1 << 20;

type State = 'header' | 'data' | 'meta' | 'skip' | 'zero' | 'end';
type MetaKind = 'x' | 'g' | 'L' | 'K';

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** A NUL-terminated header string, raw bytes as latin1. */
function str(b: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  while (end < max && b[end] !== 0) end++;
  return b.toString('latin1', off, end);
}

function parseNumber(b: Buffer, off: number, len: number, field: string, at: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement, the top bit of the first byte marks the form.
    const negative = (first & 0x40) !== 0;
    let v = 0;
    for (let i = 0; i < len; i++) {
      let byte = b[off + i]!;
      if (i === 0) byte &= 0x7f;
      if (negative) byte ^= 0xff;
      v = v * 256 + byte;
      if (!Number.isSafeInteger(v)) throw new LayerError('format', `tar header at byte ${at}: ${field} is too large`);
    }
    return negative ? -(v + 1) : v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new LayerError('format', `tar header at byte ${at}: ${field} is not an octal number`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : v;
}

/** PAX time: decimal seconds with an optional fraction (`1700000000.123456789`, `-1.5`). */
function parsePaxTime(value: string, at: number): TarTime {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value);
  if (!m) throw new LayerError('format', `tar entry at byte ${at}: invalid PAX time ${JSON.stringify(value)}`);
  const whole = Number(m[2]);
  const frac = m[3] ? Number((m[3] + '000000000').slice(0, 9)) : 0;
  if (m[1] !== '-') return { sec: whole, nsec: frac };
  return frac === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - frac };
}

function parsePaxInt(value: string, key: string, at: number): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new LayerError('format', `tar entry at byte ${at}: invalid PAX ${key} ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** PAX records (`<len> <key>=<value>\n`), keys as latin1, values as the raw bytes. */
function parsePax(buf: Buffer, at: number, into: Map<string, Buffer | null>): void {
  let off = 0;
  while (off < buf.length) {
    // Some writers pad the record block with NULs.
    if (buf[off] === 0) break;
    let sp = off;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = Number(buf.toString('latin1', off, sp));
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) {
      throw new LayerError('format', `tar entry at byte ${at}: malformed PAX record`);
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= off + len) throw new LayerError('format', `tar entry at byte ${at}: malformed PAX record (no "=")`);
    const key = buf.toString('latin1', sp + 1, eq);
    // An empty value deletes the key (it cancels a global record for this entry).
    into.set(key, eq + 1 === off + len - 1 ? null : Buffer.from(buf.subarray(eq + 1, off + len - 1)));
    off += len;
  }
}

/** libarchive writes xattr names URL-encoded and values base64-encoded. */
function decodeUrlName(raw: string): string {
  return raw.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

export class TarReader {
  private state: State = 'header';
  /** Partial header or meta record collected across chunks. */
  private partial: Buffer | undefined;
  private partialLen = 0;
  private remaining = 0; // data, meta or skip bytes left
  private padding = 0; // after data/meta: zero bytes up to the block boundary
  private skippingPadding = false; // 'skip' is a finished entry's padding, not a payload
  private metaKind: MetaKind = 'x';
  private metaBuf: Buffer | undefined;
  private metaLen = 0;
  private pax: Map<string, Buffer | null> | undefined;
  private globalPax: Map<string, Buffer | null> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private inEntry = false;
  private headerAt = 0;
  /** Bytes consumed so far. */
  position = 0;
  entries = 0;

  constructor(private readonly sink: TarSink) {}

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case 'header':
        case 'zero': {
          let block: Buffer;
          if (this.partialLen === 0 && n - i >= BLOCK) {
            block = chunk.subarray(i, i + BLOCK);
            i += BLOCK;
          } else {
            this.partial ??= Buffer.allocUnsafe(BLOCK);
            const take = Math.min(BLOCK - this.partialLen, n - i);
            chunk.copy(this.partial, this.partialLen, i, i + take);
            this.partialLen += take;
            i += take;
            if (this.partialLen < BLOCK) break;
            block = this.partial;
            this.partialLen = 0;
          }
          this.headerAt = this.position;
          this.position += BLOCK;
          this.block(block);
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, n - i);
          this.sink.data(chunk.subarray(i, i + take));
          this.remaining -= take;
          this.position += take;
          i += take;
          if (this.remaining === 0) this.endData();
          break;
        }
        case 'meta': {
          const take = Math.min(this.remaining, n - i);
          chunk.copy(this.metaBuf!, this.metaLen, i, i + take);
          this.metaLen += take;
          this.remaining -= take;
          this.position += take;
          i += take;
          if (this.remaining === 0) {
            this.endMeta();
            this.afterPayload();
          }
          break;
        }
        case 'skip': {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          this.position += take;
          i += take;
          if (this.remaining === 0) this.afterPayload();
          break;
        }
        case 'end':
          // After the end-of-archive blocks: the writer's blocking padding. It is part of the
          // diff ID (the caller hashes every byte) but carries no entries.
          this.position += n - i;
          i = n;
          break;
      }
    }
  }

  /** Declares the end of the stream; throws if the archive was cut short. */
  end(): void {
    if (this.state === 'end' || this.state === 'zero') return; // a lone zero block at EOF is accepted, as GNU tar does
    // An archive that stops right after an entry, without the end-of-archive blocks or even the
    // last entry's padding, is accepted as Go's reader (docker, containerd) accepts it: some
    // writers (umoci 0.4) produce such layers, and the diff ID, not the tar framing, is what
    // proves a layer complete.
    if (this.state === 'header' && this.partialLen === 0 && !this.inEntry && !this.pax && this.longName === undefined && this.longLink === undefined) return;
    if (this.state === 'skip' && this.skippingPadding) return;
    throw new LayerError('truncated', `tar stream truncated at byte ${this.position}, inside ${this.state === 'header' ? 'a header' : 'an entry'}`);
  }

  private endData(): void {
    this.inEntry = false;
    this.sink.entryEnd();
    this.afterPayload();
  }

  private afterPayload(): void {
    if (this.padding > 0) {
      this.state = 'skip';
      this.skippingPadding = true;
      this.remaining = this.padding;
      this.padding = 0;
    } else {
      this.state = 'header';
    }
  }

  private block(b: Buffer): void {
    if (isZeroBlock(b)) {
      if (this.state === 'zero') {
        this.state = 'end';
        return;
      }
      if (this.pax || this.longName !== undefined || this.longLink !== undefined) {
        throw new LayerError('format', `tar stream: end-of-archive at byte ${this.headerAt} right after an extended header`);
      }
      this.state = 'zero';
      return;
    }
    if (this.state === 'zero') {
      // Go's reader (docker, containerd) rejects this too: one zero block, then more entries.
      throw new LayerError('format', `tar stream: a header follows a lone zero block at byte ${this.headerAt}`);
    }
    const at = this.headerAt;
    this.checkChecksum(b, at);
    const flag = b[156]!;
    const size = parseNumber(b, 124, 12, 'size', at);
    if (size < 0) throw new LayerError('format', `tar header at byte ${at}: negative size`);
    const typeChar = flag === 0 ? '0' : String.fromCharCode(flag);
    switch (typeChar) {
      case 'x':
      case 'g':
      case 'L':
      case 'K':
        if (size > MAX_META) throw new LayerError('format', `tar header at byte ${at}: ${typeChar} record of ${size} bytes is larger than ${MAX_META}`);
        this.metaKind = typeChar;
        this.metaBuf = Buffer.allocUnsafe(size);
        this.metaLen = 0;
        this.remaining = size;
        this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
        if (size === 0) {
          this.endMeta();
          this.afterPayload();
        } else {
          this.state = 'meta';
        }
        return;
      case 'S':
        throw new LayerError('unsupported', `tar entry ${displayName(this.nameOf(b))} at byte ${at} is a GNU sparse file, which Berth does not unpack`);
      case 'M':
      case 'N':
        throw new LayerError('unsupported', `tar entry at byte ${at}: GNU ${typeChar === 'M' ? 'multi-volume continuation' : 'old long-name'} entries are not supported`);
      case 'V': // volume label: no file
        this.resetEntryMeta();
        this.skipPayload(size);
        return;
    }
    let type: EntryType;
    switch (typeChar) {
      case '0':
      case '7':
        type = 'file';
        break;
      case '1': type = 'link'; break;
      case '2': type = 'symlink'; break;
      case '3': type = 'char'; break;
      case '4': type = 'block'; break;
      case '5':
      case 'D': // GNU dumpdir: a directory whose data lists its contents (not needed here)
        type = 'dir';
        break;
      case '6': type = 'fifo'; break;
      default:
        throw new LayerError('format', `tar entry ${displayName(this.nameOf(b))} at byte ${at}: unknown entry type ${JSON.stringify(typeChar)}`);
    }
    const pax = this.mergedPax();
    const name = this.longName ?? this.paxString(pax, 'path') ?? this.nameOf(b);
    const linkname = this.longLink ?? this.paxString(pax, 'linkpath') ?? str(b, 157, 100);
    // Pre-POSIX archives mark directories with a trailing slash only.
    if (type === 'file' && typeChar === '0' && name.endsWith('/')) type = 'dir';
    if (name.includes('\0') || linkname.includes('\0')) throw new LayerError('format', `tar entry at byte ${at}: name contains a NUL byte`);
    let dataSize = size;
    const mtime: TarTime = { sec: parseNumber(b, 136, 12, 'mtime', at), nsec: 0 };
    const entry: TarEntry = {
      type,
      name,
      linkname,
      mode: parseNumber(b, 100, 8, 'mode', at) & 0o7777,
      uid: parseNumber(b, 108, 8, 'uid', at),
      gid: parseNumber(b, 116, 8, 'gid', at),
      size: 0,
      mtime,
      atime: undefined,
      devmajor: type === 'char' || type === 'block' ? parseNumber(b, 329, 8, 'devmajor', at) : 0,
      devminor: type === 'char' || type === 'block' ? parseNumber(b, 337, 8, 'devminor', at) : 0,
      xattrs: undefined,
      offset: at,
    };
    if (pax) {
      for (const [key, value] of pax) {
        if (value === null) continue;
        switch (key) {
          case 'size': dataSize = parsePaxInt(value.toString('latin1'), key, at); break;
          case 'uid': entry.uid = parsePaxInt(value.toString('latin1'), key, at); break;
          case 'gid': entry.gid = parsePaxInt(value.toString('latin1'), key, at); break;
          case 'mtime': entry.mtime = parsePaxTime(value.toString('latin1'), at); break;
          case 'atime': entry.atime = parsePaxTime(value.toString('latin1'), at); break;
          case 'SCHILY.devmajor': entry.devmajor = parsePaxInt(value.toString('latin1'), key, at); break;
          case 'SCHILY.devminor': entry.devminor = parsePaxInt(value.toString('latin1'), key, at); break;
          default:
            if (key.startsWith('SCHILY.xattr.')) {
              (entry.xattrs ??= new Map()).set(key.slice(13), value);
            } else if (key.startsWith('LIBARCHIVE.xattr.')) {
              (entry.xattrs ??= new Map()).set(decodeUrlName(key.slice(17)), Buffer.from(value.toString('latin1'), 'base64'));
            } else if (key.startsWith('GNU.sparse.')) {
              throw new LayerError('unsupported', `tar entry ${displayName(name)} at byte ${at} is a GNU sparse file (PAX), which Berth does not unpack`);
            }
          // Others (uname, gname, ctime, comment, charset, SCHILY.acl.*, …) carry nothing Berth applies.
        }
      }
    }
    if (entry.xattrs?.has('')) throw new LayerError('format', `tar entry ${displayName(name)} at byte ${at}: empty xattr name`);
    this.resetEntryMeta();
    if (type === 'file') entry.size = dataSize;
    this.entries++;
    this.inEntry = true;
    this.sink.entry(entry);
    if (type === 'file' && dataSize > 0) {
      this.state = 'data';
      this.remaining = dataSize;
      this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    } else {
      this.inEntry = false;
      this.sink.entryEnd();
      // Header-only types carry no data whatever their size field says (as Go's reader, which
      // produced most layers, assumes); a GNU dumpdir's listing is skipped.
      this.skipPayload(typeChar === 'D' ? size : 0);
    }
  }

  private skipPayload(size: number): void {
    const total = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (total === 0) {
      this.state = 'header';
    } else {
      this.state = 'skip';
      this.skippingPadding = false;
      this.remaining = total;
      this.padding = 0;
    }
  }

  private checkChecksum(b: Buffer, at: number): void {
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
      unsigned += c;
      signed += c > 127 ? c - 256 : c;
    }
    let stored: number;
    try {
      stored = parseNumber(b, 148, 8, 'checksum', at);
    } catch {
      stored = -1;
    }
    if (stored !== unsigned && stored !== signed) {
      throw new LayerError('format', `not a valid tar stream: bad header checksum at byte ${at} (is the layer compressed with something other than gzip or zstd, or corrupt?)`);
    }
  }

  /** The header's own name: ustar prefix + name (star's prefix is shorter), or just name. */
  private nameOf(b: Buffer): string {
    const name = str(b, 0, 100);
    const ustar = b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72;
    if (!ustar || b[262] !== 0) return name; // v7 or GNU ("ustar  \0"): no prefix field
    const star = b[508] === 0x74 && b[509] === 0x61 && b[510] === 0x72 && b[511] === 0;
    const prefix = str(b, 345, star ? 131 : 155);
    return prefix ? `${prefix}/${name}` : name;
  }

  private mergedPax(): Map<string, Buffer | null> | undefined {
    if (!this.globalPax) return this.pax;
    if (!this.pax) return this.globalPax;
    const merged = new Map(this.globalPax);
    for (const [k, v] of this.pax) merged.set(k, v);
    return merged;
  }

  private paxString(pax: Map<string, Buffer | null> | undefined, key: string): string | undefined {
    const v = pax?.get(key);
    return v ? v.toString('latin1') : undefined;
  }

  private endMeta(): void {
    const buf = this.metaBuf!.subarray(0, this.metaLen);
    this.metaBuf = undefined;
    const at = this.headerAt;
    switch (this.metaKind) {
      case 'x':
        parsePax(buf, at, (this.pax ??= new Map()));
        break;
      case 'g':
        parsePax(buf, at, (this.globalPax ??= new Map()));
        break;
      case 'L':
      case 'K': {
        let end = buf.indexOf(0);
        if (end < 0) end = buf.length;
        const value = buf.toString('latin1', 0, end);
        if (this.metaKind === 'L') this.longName = value;
        else this.longLink = value;
        break;
      }
    }
  }

  private resetEntryMeta(): void {
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
  }

  /** True while the sink is between entry() and entryEnd() (for cleanup on errors). */
  get busy(): boolean {
    return this.inEntry;
  }
}
