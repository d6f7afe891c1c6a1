import type { BytePath } from '../../util/byte-path.js';
import { NO_REF, type Entry, type EntryKind } from './entry.js';

/**
 * GNU tar headers and a streaming tar parser, byte-exact: names are the raw bytes of
 * the byte-string paths (latin1, one char per byte), never re-encoded.
 *
 * Writing produces GNU format (magic "ustar  \0"): names or link targets longer than
 * 100 bytes get a `././@LongLink` entry (type 'L' / 'K') before the real header, and
 * numbers that do not fit their octal field use GNU base-256.
 *
 * Reading accepts GNU, ustar (with its prefix field), v7 and PAX archives (`x` and `g`
 * headers: path, linkpath, size, mtime with fractions, uid, gid).
 */

const BLOCK = 512;

/** The end of an archive: two zero blocks. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

/** Zero bytes that follow `size` bytes of content to reach the next 512-byte boundary. */
export const tarPadding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

const TYPE_OF: Record<EntryKind, number> = { f: 0x30, d: 0x35, l: 0x32, h: 0x31, p: 0x36 };
const GNU_MAGIC = 'ustar  \0';
/** Paths that are not byte strings (a char above 0xff) or that hold a NUL cannot be written. */
const BAD_NAME = /[\0\u0100-\uffff]/;

/** Byte string into b at off (at most `max` bytes); short ones without a call into C++. */
function writeBytes(b: Buffer, off: number, s: string, max: number): void {
  const n = s.length < max ? s.length : max;
  if (n > 32) { b.write(s.length > max ? s.slice(0, max) : s, off, 'latin1'); return; }
  for (let i = 0; i < n; i++) b[off + i] = s.charCodeAt(i);
}

/** Octal in len-1 digits plus NUL when it fits, GNU base-256 otherwise. */
function writeNumber(b: Buffer, off: number, len: number, value: number): void {
  if (value >= 0 && value < 8 ** (len - 1) && Number.isInteger(value)) {
    let v = value;
    b[off + len - 1] = 0;
    for (let i = off + len - 2; i >= off; i--) {
      const d = v % 8;
      b[i] = 0x30 + d;
      v = (v - d) / 8;
    }
    return;
  }
  if (!Number.isInteger(value)) throw new RangeError(`tar number must be an integer: ${value}`);
  // GNU base-256: leading byte 0x80 then big-endian (positive), or two's complement
  // over the whole field with leading byte 0xff (negative).
  let v = BigInt(value);
  const limit = 1n << BigInt(8 * (len - 1));
  if (v >= limit || v < -limit) throw new RangeError(`number ${value} does not fit a ${len}-byte tar field`);
  const negative = v < 0n;
  if (negative) v += 1n << BigInt(8 * len);
  for (let i = len - 1; i >= 1; i--) {
    b[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[off] = negative ? 0xff : 0x80;
}

function writeChecksum(b: Buffer, off: number): void {
  let sum = 8 * 0x20; // the checksum field itself counts as spaces
  for (let i = off, end = off + 148; i < end; i++) sum += b[i]!;
  for (let i = off + 156, end = off + BLOCK; i < end; i++) sum += b[i]!;
  b[off + 154] = 0;
  b[off + 155] = 0x20;
  for (let i = off + 153; i >= off + 148; i--) {
    b[i] = 0x30 + (sum & 7);
    sum >>>= 3;
  }
}

const MAGIC = Buffer.from(GNU_MAGIC, 'latin1');

/** Fills the common fields of a header block at `off` (the buffer is zero-filled). */
function fillHeader(b: Buffer, off: number, name: string, type: number, mode: number, uid: number, gid: number, size: number, mtime: number, link: string): void {
  writeBytes(b, off, name, 100);
  writeNumber(b, off + 100, 8, mode);
  writeNumber(b, off + 108, 8, uid);
  writeNumber(b, off + 116, 8, gid);
  writeNumber(b, off + 124, 12, size);
  writeNumber(b, off + 136, 12, mtime);
  b[off + 156] = type;
  if (link) writeBytes(b, off + 157, link, 100);
  for (let i = 0; i < 8; i++) b[off + 257 + i] = MAGIC[i]!;
  writeChecksum(b, off);
}

const longLinkBlocks = (len: number): number => (len > 100 ? BLOCK + len + 1 + tarPadding(len + 1) : 0);

function writeLongLink(b: Buffer, off: number, type: number, value: string): number {
  fillHeader(b, off, '././@LongLink', type, 0o644, 0, 0, value.length + 1, 0, '');
  b.write(value, off + BLOCK, 'latin1');
  return off + BLOCK + value.length + 1 + tarPadding(value.length + 1);
}

/** The name and link target an entry's header holds; refused when tar cannot hold them. */
function headerNames(entry: Entry): { name: BytePath; link: BytePath } {
  let name: BytePath = entry.path === '' ? '.' : entry.path;
  if (entry.kind === 'd' && !name.endsWith('/')) name += '/';
  const link: BytePath = entry.kind === 'l' || entry.kind === 'h' ? entry.link : '';
  if (BAD_NAME.test(name) || BAD_NAME.test(link)) throw new Error(`path cannot be stored in tar (NUL or non-byte char): ${JSON.stringify(name)}`);
  return { name, link };
}

/** tarHeaders(entry).length, without making the headers (where a file's content starts after its header's offset). */
export function tarHeadersLength(entry: Entry): number {
  const { name, link } = headerNames(entry);
  return longLinkBlocks(name.length) + longLinkBlocks(link.length) + BLOCK;
}

/**
 * The header block(s) of one entry: [L entry] [K entry] header. Regular files are
 * followed by `entry.size` content bytes and `tarPadding(entry.size)` zero bytes.
 * Directories are named with a trailing '/'; the path '' is written as "./".
 */
export function tarHeaders(entry: Entry): Buffer {
  const { name, link } = headerNames(entry);
  const type = TYPE_OF[entry.kind];
  if (entry.kind === 'f' && !(Number.isSafeInteger(entry.size) && entry.size >= 0)) throw new RangeError(`bad file size ${entry.size}`);
  if (type === undefined) throw new Error(`entry kind ${JSON.stringify(entry.kind)} cannot be stored in tar`);
  const total = longLinkBlocks(name.length) + longLinkBlocks(link.length) + BLOCK;
  // Small headers come from Buffer's pool (much cheaper than Buffer.alloc); zero them.
  const b = Buffer.allocUnsafe(total).fill(0);
  let off = 0;
  if (name.length > 100) off = writeLongLink(b, off, 0x4c /* L */, name);
  if (link.length > 100) off = writeLongLink(b, off, 0x4b /* K */, link);
  fillHeader(b, off, name, type, entry.mode & 0o7777, entry.uid, entry.gid,
    entry.kind === 'f' ? entry.size : 0, Math.floor(entry.mtimeSec), link);
  return b;
}

// ---------------------------------------------------------------------------
// Parsing

export type TarEvent =
  | { type: 'entry'; entry: Entry; offset: number }
  | { type: 'data'; chunk: Buffer }
  | { type: 'data-end' };

/** Reads an octal (optionally space/NUL padded) or base-256 number field. */
function readNumber(b: Buffer, off: number, len: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    let v = first & 0x7f;
    if (v & 0x40) v -= 0x80; // negative: two's complement
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

/** A NUL-terminated (or field-filling) byte string. */
function readString(b: Buffer, off: number, len: number): string {
  let end = b.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return b.toString('latin1', off, end);
}

function checksumOk(h: Buffer): boolean {
  const stored = readNumber(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 4) if (h.readUInt32LE(i) !== 0) return false;
  return true;
}

/** PAX records: "<len> <key>=<value>\n"; values kept as raw bytes (latin1 byte strings). */
function parsePax(data: Buffer, into: Map<string, string>): void {
  let o = 0;
  while (o < data.length) {
    if (data[o] === 0) break;
    const sp = data.indexOf(0x20, o);
    if (sp < 0) throw new Error('corrupt PAX header (no length)');
    const len = Number(data.toString('latin1', o, sp));
    if (!Number.isInteger(len) || len <= sp - o || o + len > data.length) throw new Error('corrupt PAX header (bad record length)');
    const rec = data.toString('latin1', sp + 1, o + len - 1); // without the trailing '\n'
    const eq = rec.indexOf('=');
    if (eq < 0) throw new Error('corrupt PAX header (no "=")');
    const key = rec.slice(0, eq);
    const value = rec.slice(eq + 1);
    if (value === '') into.delete(key); else into.set(key, value);
    o += len;
  }
}

/** "sec[.frac]" (maybe negative) to whole seconds (floor) and nanoseconds. */
function parsePaxTime(s: string): { sec: number; nsec: number } | null {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return null;
  let sec = Number(m[2]);
  let nsec = Number((m[3] ?? '').padEnd(9, '0').slice(0, 9));
  if (m[1] === '-') {
    sec = -sec;
    if (nsec > 0) { sec -= 1; nsec = 1e9 - nsec; }
  }
  return { sec, nsec };
}

function paxNumber(pax: Map<string, string> | null, global: Map<string, string>, key: string): number | undefined {
  const s = pax?.get(key) ?? global.get(key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`corrupt PAX header (${key}=${JSON.stringify(s)})`);
  return n;
}

const MAX_META = 16 << 20;

const enum State { Header, Data, Skip, Meta }

/**
 * Parses a tar stream into entries, each regular file ('f') followed by its content as
 * 'data' chunks (subarrays of the incoming chunks, never copies) and a 'data-end'
 * (also for empty files). `offset` is where the entry's first header block (counting
 * L/K/PAX blocks) starts in the stream. Directory paths come without their trailing
 * '/' ("./" becomes "."); other names are the raw bytes of the archive.
 *
 * Stops at the first zero block (end of archive) without reading further. Throws on a
 * bad checksum, a stream ending inside an entry or without the end blocks, and on
 * sparse files. Device entries, volume labels and GNU dumpdirs are skipped.
 *
 * Pull-based: the source is read only when the consumer asks for the next event.
 * `startOffset`: where in the archive `source` starts (a header's offset) when it is read
 * from the middle; the offsets of the events are then the archive's.
 */
export async function* parseTar(source: AsyncIterable<Buffer>, startOffset = 0): AsyncGenerator<TarEvent> {
  const hdr = Buffer.allocUnsafe(BLOCK);
  let hdrFill = 0;
  let pos = startOffset; // archive offset of the current chunk's first byte
  let state = State.Header;
  let left = 0; // bytes left of Data / Skip / Meta
  let pad = 0; // padding after the current Data / Meta
  let meta: Buffer = Buffer.alloc(0);
  let metaFill = 0;
  let metaType = 0;
  let entryStart = -1;
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax: Map<string, string> | null = null;
  const globalPax = new Map<string, string>();
  let sawAnything = false;

  for await (const chunk of source) {
    const n = chunk.length;
    let o = 0;
    while (o < n) {
      if (state === State.Data) {
        const take = left < n - o ? left : n - o;
        const part = chunk.subarray(o, o + take);
        o += take;
        left -= take;
        yield { type: 'data', chunk: part };
        if (left === 0) {
          yield { type: 'data-end' };
          left = pad;
          state = left > 0 ? State.Skip : State.Header;
        }
        continue;
      }
      if (state === State.Skip) {
        const take = left < n - o ? left : n - o;
        o += take;
        left -= take;
        if (left === 0) state = State.Header;
        continue;
      }
      if (state === State.Meta) {
        const take = left < n - o ? left : n - o;
        chunk.copy(meta, metaFill, o, o + take);
        metaFill += take;
        o += take;
        left -= take;
        if (left === 0) {
          if (metaType === 0x4c || metaType === 0x4b) {
            const value = readString(meta, 0, meta.length);
            if (metaType === 0x4c) longName = value; else longLink = value;
          } else if (metaType === 0x67) {
            parsePax(meta, globalPax);
          } else {
            pax ??= new Map();
            parsePax(meta, pax);
          }
          left = pad;
          state = left > 0 ? State.Skip : State.Header;
        }
        continue;
      }

      // State.Header
      let h: Buffer;
      const hOff = pos + o - hdrFill;
      if (hdrFill === 0 && n - o >= BLOCK) {
        h = chunk.subarray(o, o + BLOCK);
        o += BLOCK;
      } else {
        const take = Math.min(BLOCK - hdrFill, n - o);
        chunk.copy(hdr, hdrFill, o, o + take);
        hdrFill += take;
        o += take;
        if (hdrFill < BLOCK) continue;
        hdrFill = 0;
        h = hdr;
      }
      sawAnything = true;
      if (isZeroBlock(h)) {
        if (entryStart >= 0) throw new Error(`tar archive ends after extended headers at offset ${entryStart}`);
        return;
      }
      if (!checksumOk(h)) throw new Error(`corrupt tar header at offset ${hOff} (checksum)`);
      const type = h[156]!;
      const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
      const paxSize = paxNumber(pax, globalPax, 'size');
      const size = paxSize ?? readNumber(h, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw new Error(`corrupt tar header at offset ${hOff} (size)`);

      if (type === 0x4c /* L */ || type === 0x4b /* K */ || type === 0x78 /* x */ || type === 0x67 /* g */ || type === 0x58 /* X, old Solaris pax */) {
        const realSize = readNumber(h, 124, 12); // a PAX size never applies to the next meta header
        if (realSize > MAX_META) throw new Error(`tar extended header too large at offset ${hOff}`);
        if (type !== 0x67 && entryStart < 0) entryStart = hOff;
        metaType = type === 0x58 ? 0x78 : type;
        meta = Buffer.allocUnsafe(realSize);
        metaFill = 0;
        left = realSize;
        pad = tarPadding(realSize);
        state = left > 0 ? State.Meta : pad > 0 ? State.Skip : State.Header;
        if (left === 0) {
          if (metaType === 0x4c) longName = ''; else if (metaType === 0x4b) longLink = '';
        }
        continue;
      }

      let path = longName ?? pax?.get('path') ?? globalPax.get('path');
      if (path === undefined) {
        path = readString(h, 0, 100);
        if (ustar) {
          const prefix = readString(h, 345, 155);
          if (prefix) path = `${prefix}/${path}`;
        }
      }
      const link = longLink ?? pax?.get('linkpath') ?? globalPax.get('linkpath') ?? readString(h, 157, 100);
      if (pax && (pax.has('GNU.sparse.major') || pax.has('GNU.sparse.size') || pax.has('GNU.sparse.map'))) {
        throw new Error(`sparse file in tar archive at offset ${hOff} is not supported: ${JSON.stringify(path)}`);
      }
      let kind: EntryKind | null;
      switch (type) {
        case 0x30: case 0x00: case 0x37: kind = path.endsWith('/') ? 'd' : 'f'; break;
        case 0x35: kind = 'd'; break;
        case 0x32: kind = 'l'; break;
        case 0x31: kind = 'h'; break;
        case 0x36: kind = 'p'; break;
        case 0x53: throw new Error(`sparse file in tar archive at offset ${hOff} is not supported: ${JSON.stringify(path)}`);
        default: kind = null; // devices, volume labels, dumpdirs, unknown: skipped
      }
      const offset = entryStart >= 0 ? entryStart : hOff;
      entryStart = -1;
      longName = null;
      longLink = null;
      const entryPax = pax;
      pax = null;

      if (kind === null) {
        left = size + tarPadding(size);
        state = left > 0 ? State.Skip : State.Header;
        continue;
      }
      if (kind === 'd') {
        let end = path.length;
        while (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
        path = path.slice(0, end);
      }
      let mtimeSec: number;
      let mtimeNsec = 0;
      const paxTime = entryPax?.get('mtime') ?? globalPax.get('mtime');
      const t = paxTime !== undefined ? parsePaxTime(paxTime) : null;
      if (t) { mtimeSec = t.sec; mtimeNsec = t.nsec; } else mtimeSec = readNumber(h, 136, 12);
      const isFile = kind === 'f';
      const entry: Entry = {
        kind,
        path,
        mode: readNumber(h, 100, 8) & 0o7777,
        uid: paxNumber(entryPax, globalPax, 'uid') ?? readNumber(h, 108, 8),
        gid: paxNumber(entryPax, globalPax, 'gid') ?? readNumber(h, 116, 8),
        size: isFile ? size : 0,
        mtimeSec,
        mtimeNsec,
        link: kind === 'l' || kind === 'h' ? link : '',
        dataRef: isFile ? offset : NO_REF,
        prevRef: NO_REF,
      };
      yield { type: 'entry', entry, offset };
      if (isFile) {
        if (size === 0) {
          yield { type: 'data-end' };
        } else {
          state = State.Data;
          left = size;
          pad = tarPadding(size);
        }
      } else if (size > 0) {
        // Hard links (PAX) and others may carry data that belongs to no entry here.
        left = size + tarPadding(size);
        state = State.Skip;
      }
    }
    pos += n;
  }
  if (state !== State.Header || hdrFill > 0 || entryStart >= 0) throw new Error('tar archive is truncated (it ends inside an entry)');
  if (sawAnything) throw new Error('tar archive is truncated (no end-of-archive blocks)');
}
