import type { BytePath } from '../../util/byte-path.js';

/**
 * One file-system entry of an account, as stored in a snapshot's index and as sent
 * between the root process and an account worker.
 *  f regular file, d directory, l symlink (link = target), h hard link (link = path of
 *  the first entry sharing the inode), p fifo.
 */
export type EntryKind = 'f' | 'd' | 'l' | 'h' | 'p';

export interface Entry {
  kind: EntryKind;
  path: BytePath;
  /** Permission and special bits (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (regular files only, 0 otherwise). */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  link: BytePath;
  /**
   * Where the content is on the destination: the offset of the entry's first tar header
   * in the uncompressed tar stream (archive, compressed) or the blob number
   * (incremental). -1 when there is no content.
   */
  dataRef: number;
  /** Worker -> root only (incremental): blob number in the previous snapshot to link; -1 otherwise. */
  prevRef: number;
  /**
   * SHA-256 of the content (regular files), computed by root as the bytes were stored.
   * Absent in indexes written before hashes existed, and never trusted from a worker.
   */
  hash?: Buffer;
}

/** Records that are not entries: a skipped path (reason in `link`) and end of stream. */
export type NoticeKind = 'S' | 'E';

export const NO_REF = -1;

const FIXED = 1 + 1 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 4 + 4;
const FLAG_DATA = 1;
/** Restore stream: a directory sent only so that it exists; an existing one is left as it is. */
const FLAG_ANCESTOR = 2;
/** 32 bytes of SHA-256 follow the link target (index format 2; older readers skip them, see docs/snapshot-format.md). */
const FLAG_HASH = 4;
export const HASH_BYTES = 32;
/**
 * Backup stream, worker -> root only, with FLAG_DATA: the content is not in the stream but in
 * the descriptor the worker sent over its descriptor channel before this record (backup-reader.ts).
 */
const FLAG_DESCRIPTOR = 8;

export function makeEntry(partial: Partial<Entry> & Pick<Entry, 'kind' | 'path'>): Entry {
  return {
    mode: 0, uid: 0, gid: 0, size: 0, mtimeSec: 0, mtimeNsec: 0, link: '',
    dataRef: NO_REF, prevRef: NO_REF, ...partial,
  };
}

/**
 * Encodes one record; `withData` says that `entry.size` content bytes follow it in the stream,
 * or, with `byDescriptor`, that they are in the descriptor sent for it instead.
 */
export function encodeEntry(entry: Entry | { kind: NoticeKind; path: BytePath; link: BytePath }, withData = false, ancestor = false, byDescriptor = false): Buffer {
  const e = entry as Entry;
  const pathLen = Buffer.byteLength(e.path, 'latin1');
  const linkLen = Buffer.byteLength(e.link ?? '', 'latin1');
  const hash = e.hash && e.hash.length === HASH_BYTES ? e.hash : null;
  const body = FIXED + pathLen + linkLen + (hash ? HASH_BYTES : 0);
  const b = Buffer.allocUnsafe(4 + body);
  let o = 0;
  b.writeUInt32LE(body, o); o += 4;
  b.writeUInt8(e.kind.charCodeAt(0), o); o += 1;
  b.writeUInt8((withData || byDescriptor ? FLAG_DATA : 0) | (byDescriptor ? FLAG_DESCRIPTOR : 0) | (ancestor ? FLAG_ANCESTOR : 0) | (hash ? FLAG_HASH : 0), o); o += 1;
  b.writeUInt32LE((e.mode ?? 0) >>> 0, o); o += 4;
  b.writeUInt32LE((e.uid ?? 0) >>> 0, o); o += 4;
  b.writeUInt32LE((e.gid ?? 0) >>> 0, o); o += 4;
  b.writeDoubleLE(e.size ?? 0, o); o += 8;
  b.writeDoubleLE(e.mtimeSec ?? 0, o); o += 8;
  b.writeUInt32LE((e.mtimeNsec ?? 0) >>> 0, o); o += 4;
  b.writeDoubleLE(e.dataRef ?? NO_REF, o); o += 8;
  b.writeDoubleLE(e.prevRef ?? NO_REF, o); o += 8;
  b.writeUInt32LE(pathLen, o); o += 4;
  o += b.write(e.path, o, 'latin1');
  b.writeUInt32LE(linkLen, o); o += 4;
  o += b.write(e.link ?? '', o, 'latin1');
  if (hash) hash.copy(b, o);
  return b;
}

export type StreamEvent =
  /** `byDescriptor`: the content (hasData) comes as a descriptor, no 'data' events follow. */
  | { type: 'entry'; entry: Entry; hasData: boolean; ancestor: boolean; byDescriptor: boolean }
  | { type: 'notice'; kind: NoticeKind; path: BytePath; text: string }
  | { type: 'data'; chunk: Buffer }
  | { type: 'data-end' };

function decodeBody(b: Buffer, start: number, end: number): { record: Entry | { kind: NoticeKind; path: BytePath; link: BytePath }; hasData: boolean; ancestor: boolean; byDescriptor: boolean } {
  let o = start;
  const kind = String.fromCharCode(b.readUInt8(o)); o += 1;
  const flags = b.readUInt8(o); o += 1;
  const mode = b.readUInt32LE(o); o += 4;
  const uid = b.readUInt32LE(o); o += 4;
  const gid = b.readUInt32LE(o); o += 4;
  const size = b.readDoubleLE(o); o += 8;
  let mtimeSec = b.readDoubleLE(o); o += 8;
  let mtimeNsec = b.readUInt32LE(o); o += 4;
  if (mtimeNsec > LEGACY_NSEC_BASE) { mtimeSec -= 1; mtimeNsec -= LEGACY_NSEC_BASE; }
  const dataRef = b.readDoubleLE(o); o += 8;
  const prevRef = b.readDoubleLE(o); o += 8;
  const pathLen = b.readUInt32LE(o); o += 4;
  const path = b.toString('latin1', o, o + pathLen); o += pathLen;
  const linkLen = b.readUInt32LE(o); o += 4;
  const link = b.toString('latin1', o, o + linkLen); o += linkLen;
  if (!'fdlhpSE'.includes(kind) || kind.length !== 1) throw new Error(`corrupt entry record (kind ${JSON.stringify(kind)})`);
  if (o > end || ((flags & FLAG_HASH) !== 0 && o + HASH_BYTES > end)) throw new Error('corrupt entry record (lengths)');
  const record: Entry = { kind: kind as EntryKind, path, mode, uid, gid, size, mtimeSec, mtimeNsec, link, dataRef, prevRef };
  if (flags & FLAG_HASH) record.hash = Buffer.from(b.subarray(o, o + HASH_BYTES));
  const hasData = (flags & FLAG_DATA) !== 0;
  return { record, hasData, ancestor: (flags & FLAG_ANCESTOR) !== 0, byDescriptor: hasData && (flags & FLAG_DESCRIPTOR) !== 0 };
}

const MAX_RECORD = 1 << 20;

/**
 * Until 2026-12-02 a time before 1970 was kept as its seconds rounded toward zero and a
 * negative nanosecond part, written as 32 bits (2^32 - n): such a record is read back as the
 * kernel keeps the time (seconds down, nanoseconds from 0 to 999,999,999), or its file could
 * not be restored. A valid nanosecond part never comes near these values.
 */
const LEGACY_NSEC_BASE = 2 ** 32 - 1_000_000_000;

/**
 * Parses a stream of records, each optionally followed by its content bytes, pushed in
 * chunks as they are read: the events of each chunk are handed to a callback at once,
 * with no promise per record (an index of 20,000 entries is read in a few hundred chunks).
 * A record split between chunks is kept until the rest arrives.
 */
export class EntryScanner {
  private pending: Buffer = Buffer.alloc(0);
  private dataLeft = 0;

  /** Hands each event of `incoming` to `on`, in order; stops (returning false) when `on` returns false. */
  feed(incoming: Buffer, on: (ev: StreamEvent) => boolean | void): boolean {
    return this.drive(incoming, (chunk) => this.scan(chunk, on));
  }

  /**
   * For a stream of records without content (an index): hands each record's body (its
   * bytes from `start` to `end` in `b`) to `on` undecoded, for a reader that needs a few
   * fields of some records only (fileFieldsOf). A record announcing content is refused.
   */
  feedRecords(incoming: Buffer, on: (b: Buffer, start: number, end: number) => void): void {
    this.drive(incoming, (chunk) => {
      let o = 0;
      while (chunk.length - o >= 4) {
        const body = chunk.readUInt32LE(o);
        if (body > MAX_RECORD || body < FIXED) throw new Error('corrupt entry stream (record length)');
        if (chunk.length - o - 4 < body) break;
        if ((chunk[o + 5]! & FLAG_DATA) !== 0) throw new Error('corrupt entry stream (content in an index)');
        on(chunk, o + 4, o + 4 + body);
        o += 4 + body;
      }
      return o;
    });
  }

  private drive(incoming: Buffer, scan: (chunk: Buffer) => number | false): boolean {
    let chunk: Buffer = incoming;
    if (this.pending.length) {
      // A record split between reads: joined from the bytes it still needs only, not by
      // copying the whole (up to 1 MiB) read behind it.
      const pending = this.pending;
      const head = Buffer.concat([pending, incoming.subarray(0, Math.max(0, 4 - pending.length))]);
      const need = head.length < 4 ? Infinity : 4 + head.readUInt32LE(0) - pending.length;
      this.pending = Buffer.alloc(0);
      if (need <= incoming.length && head.readUInt32LE(0) <= MAX_RECORD) {
        const record = Buffer.concat([pending, incoming.subarray(0, need)]);
        if (scan(record) === false) return false;
        chunk = incoming.subarray(need);
      } else {
        chunk = Buffer.concat([pending, incoming]);
      }
    }
    const stop = scan(chunk);
    if (stop === false) return false;
    if (stop < chunk.length) this.pending = Buffer.from(chunk.subarray(stop));
    return true;
  }

  /** The stream ended: throws when it ended in the middle of a record or of its content. */
  finish(): void {
    if (this.pending.length || this.dataLeft > 0) throw new Error('entry stream ended in the middle of a record');
  }

  /** The events of `chunk` from its start; returns where an incomplete record begins, or false when `on` stopped. */
  private scan(chunk: Buffer, on: (ev: StreamEvent) => boolean | void): number | false {
    let o = 0;
    while (o < chunk.length) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, chunk.length - o);
        const piece = chunk.subarray(o, o + n);
        o += n; this.dataLeft -= n;
        if (on({ type: 'data', chunk: piece }) === false) return false;
        if (this.dataLeft === 0 && on({ type: 'data-end' }) === false) return false;
        continue;
      }
      if (chunk.length - o < 4) break;
      const body = chunk.readUInt32LE(o);
      if (body > MAX_RECORD || body < FIXED) throw new Error('corrupt entry stream (record length)');
      if (chunk.length - o - 4 < body) break;
      const { record, hasData, ancestor, byDescriptor } = decodeBody(chunk, o + 4, o + 4 + body);
      o += 4 + body;
      if (record.kind === 'S' || record.kind === 'E') {
        if (on({ type: 'notice', kind: record.kind, path: record.path, text: Buffer.from(record.link, 'latin1').toString('utf8') }) === false) return false;
        continue;
      }
      const entry = record as Entry;
      if (byDescriptor) {
        if (on({ type: 'entry', entry, hasData, ancestor, byDescriptor }) === false) return false;
        continue;
      }
      if (hasData) this.dataLeft = entry.size;
      if (on({ type: 'entry', entry, hasData, ancestor, byDescriptor }) === false) return false;
      if (hasData && entry.size === 0 && on({ type: 'data-end' }) === false) return false;
    }
    return o;
  }
}

/**
 * A regular file's record body (EntryScanner.feedRecords) read for what an incremental run
 * compares: path, size, time and blob; null for any other record. Offsets as encodeEntry writes them.
 */
export function fileFieldsOf(b: Buffer, start: number, end: number): { path: BytePath; size: number; mtimeSec: number; mtimeNsec: number; dataRef: number } | null {
  if (b[start] !== 0x66 /* 'f' */) return null;
  const pathLen = b.readUInt32LE(start + 50);
  if (start + 54 + pathLen > end) throw new Error('corrupt entry record (lengths)');
  let mtimeSec = b.readDoubleLE(start + 22);
  let mtimeNsec = b.readUInt32LE(start + 30);
  if (mtimeNsec > LEGACY_NSEC_BASE) { mtimeSec -= 1; mtimeNsec -= LEGACY_NSEC_BASE; }
  return { path: b.toString('latin1', start + 54, start + 54 + pathLen), size: b.readDoubleLE(start + 14), mtimeSec, mtimeNsec, dataRef: b.readDoubleLE(start + 34) };
}

/**
 * Parses a stream of records, each optionally followed by its content bytes. Yields
 * events in order; content arrives as 'data' chunks closed by 'data-end'. Pulling is
 * the backpressure: nothing more is read until the consumer has taken the events of
 * what was read.
 */
export async function* parseEntryStream(source: AsyncIterable<Buffer>): AsyncGenerator<StreamEvent> {
  for await (const events of eventBatches(source)) yield* events;
}

/**
 * The events of each read of `source` as one array, so that the consumer takes a read's
 * events in a plain loop instead of one async generator step (its promises and result
 * objects) per event (parseEntryStream). A read that completes no event gives none; the
 * events before a corrupt record are still handed over, then the error is thrown; a stream
 * that ends inside a record or its content throws.
 */
export async function* eventBatches(source: AsyncIterable<Buffer>): AsyncGenerator<StreamEvent[]> {
  const scanner = new EntryScanner();
  for await (const incoming of source) {
    const events: StreamEvent[] = [];
    let failure: { error: unknown } | null = null;
    try {
      scanner.feed(incoming, (ev) => { events.push(ev); });
    } catch (error) {
      failure = { error };
    }
    if (events.length > 0) yield events;
    if (failure) throw failure.error;
  }
  scanner.finish();
}

export const noticeRecord = (kind: NoticeKind, path: BytePath, text: string): Buffer =>
  encodeEntry({ kind, path, link: Buffer.from(text, 'utf8').toString('latin1') });
