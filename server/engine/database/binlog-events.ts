/**
 * Reads the events of a MariaDB/MySQL binary log file (format v4), as the server wrote them.
 * Only what a filtered replay needs is decoded: the header of every event, the format
 * description (checksums, post-header lengths), Query events (database, SQL mode, text) and
 * Table_map events (database and table of a table id). Row data is never decoded: it is replayed
 * as the server's own binary image (the `BINLOG` statement), so no value an account stored is
 * ever read as SQL.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';

/** CRC-32 (the binary log's checksum): zlib's (Node 20.15 and later), else a table of our own. */
const crc32: (b: Buffer) => number = typeof (zlib as { crc32?: unknown }).crc32 === 'function'
  ? (b) => zlib.crc32(b)
  : (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return (b: Buffer) => {
      let c = 0xffffffff;
      for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
      return (c ^ 0xffffffff) >>> 0;
    };
  })();

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER = 19;

export const EventType = {
  START_V3: 1, QUERY: 2, STOP: 3, ROTATE: 4, INTVAR: 5, RAND: 13, USER_VAR: 14, FORMAT_DESCRIPTION: 15, XID: 16,
  TABLE_MAP: 19, WRITE_ROWS_V1: 23, UPDATE_ROWS_V1: 24, DELETE_ROWS_V1: 25, INCIDENT: 26, HEARTBEAT: 27,
  WRITE_ROWS_V2: 30, UPDATE_ROWS_V2: 31, DELETE_ROWS_V2: 32,
  ANNOTATE_ROWS: 160, BINLOG_CHECKPOINT: 161, GTID: 162, GTID_LIST: 163, START_ENCRYPTION: 164, QUERY_COMPRESSED: 165,
} as const;

/** Row events: MySQL v1/v2 and MariaDB's compressed ones (166–171). */
export function isRowsEvent(type: number): boolean {
  return (type >= 23 && type <= 25) || (type >= 30 && type <= 32) || (type >= 166 && type <= 171);
}

export interface BinlogEvent {
  /** Offset of the event in its file. */
  pos: number;
  /** Offset just after it. */
  end: number;
  /** Seconds since the epoch (the statement's start on the server). */
  timestamp: number;
  type: number;
  serverId: number;
  /** The whole event, header and checksum included. */
  raw: Buffer;
}

export interface FormatDescription {
  /** 4 with CRC32 checksums, else 0. */
  checksumBytes: number;
  /** Post-header length per event type (index type - 1). */
  postHeader: number[];
  raw: Buffer;
}

export class BinlogFormatError extends Error {}

/** Parses a Format_description event. */
export function parseFormatDescription(raw: Buffer): FormatDescription {
  if (raw.length < HEADER + 2 + 50 + 4 + 1) throw new BinlogFormatError('format description event too short');
  const headerLen = raw[HEADER + 2 + 50 + 4]!;
  if (headerLen !== HEADER) throw new BinlogFormatError(`unsupported event header length ${headerLen}`);
  // Checksum-aware servers end the event with the algorithm (1 byte) and a CRC32 (4 bytes).
  const alg = raw[raw.length - 5]!;
  const checksumBytes = alg === 1 ? 4 : 0;
  const start = HEADER + 2 + 50 + 4 + 1;
  const stop = raw.length - (alg === 0 || alg === 1 ? 5 : 0);
  const postHeader = [...raw.subarray(start, stop)];
  if (checksumBytes && crc32(raw.subarray(0, raw.length - 4)) !== raw.readUInt32LE(raw.length - 4)) {
    throw new BinlogFormatError('format description event: checksum mismatch');
  }
  return { checksumBytes, postHeader, raw };
}

/**
 * The events of a binary log file from `from` (after the magic number when 0), in order.
 * The file's format description comes first even when `from` is past it. Each event's checksum is checked. A cut last event (a log still being written) ends the
 * iteration quietly unless `complete` is set.
 */
export async function* readBinlogFile(file: string, opts: { from?: number; complete?: boolean } = {}): AsyncGenerator<BinlogEvent & { format: FormatDescription | null }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
    if (!magic.equals(BINLOG_MAGIC)) throw new BinlogFormatError(`${file}: not a binary log`);
    let format: FormatDescription | null = null;
    let pos = 4;
    const target = opts.from && opts.from > 4 ? opts.from : 4;
    const head = Buffer.alloc(HEADER);
    while (pos + HEADER <= size) {
      await fh.read(head, 0, HEADER, pos);
      const eventSize = head.readUInt32LE(9);
      if (eventSize < HEADER || eventSize > 1 << 30) throw new BinlogFormatError(`${file}: invalid event size ${eventSize} at ${pos}`);
      if (pos + eventSize > size) break;
      const type = head[4]!;
      // Before the starting position only the format description is needed.
      const needed = pos >= target || type === EventType.FORMAT_DESCRIPTION;
      if (needed) {
        const raw = Buffer.alloc(eventSize);
        await fh.read(raw, 0, eventSize, pos);
        if (type === EventType.FORMAT_DESCRIPTION) format = parseFormatDescription(raw);
        else if (format?.checksumBytes && crc32(raw.subarray(0, eventSize - 4)) !== raw.readUInt32LE(eventSize - 4)) {
          throw new BinlogFormatError(`${file}: checksum mismatch in the event at ${pos}`);
        }
        // The format description is always given: the events after it are read with it.
        if (pos >= target || type === EventType.FORMAT_DESCRIPTION) {
          yield { pos, end: pos + eventSize, timestamp: head.readUInt32LE(0), type, serverId: head.readUInt32LE(5), raw, format };
        }
      }
      pos += eventSize;
    }
    if (opts.complete && pos !== size) throw new BinlogFormatError(`${file}: cut at ${pos} of ${size} bytes`);
    if (target > 4 && target > pos && target !== size) throw new BinlogFormatError(`${file}: position ${target} is past its end`);
  } finally {
    await fh.close();
  }
}

/** The body of an event without its checksum. */
function body(e: { raw: Buffer }, f: FormatDescription): Buffer {
  return e.raw.subarray(HEADER, e.raw.length - f.checksumBytes);
}

export interface QueryEvent {
  db: string;
  /** The statement's text, as bytes. */
  query: Buffer;
  /** The session's sql_mode when it ran (a bit mask), when the event carries it. */
  sqlMode: bigint | null;
  errorCode: number;
}

export function parseQueryEvent(e: { raw: Buffer }, f: FormatDescription): QueryEvent {
  const b = body(e, f);
  const postLen = f.postHeader[EventType.QUERY - 1] ?? 13;
  if (b.length < postLen) throw new BinlogFormatError('query event too short');
  const dbLen = b[8]!;
  const errorCode = b.readUInt16LE(9);
  const statusLen = postLen >= 13 ? b.readUInt16LE(11) : 0;
  const status = b.subarray(postLen, postLen + statusLen);
  let sqlMode: bigint | null = null;
  // The server writes the status variables in order of their code: flags2 (0, 4 bytes) then sql_mode (1, 8 bytes).
  let i = 0;
  while (i < status.length) {
    const code = status[i]!;
    if (code === 0) { i += 5; continue; }
    if (code === 1 && i + 9 <= status.length) sqlMode = status.readBigUInt64LE(i + 1);
    break;
  }
  const dbStart = postLen + statusLen;
  const db = b.subarray(dbStart, dbStart + dbLen).toString('utf8');
  const query = b.subarray(dbStart + dbLen + 1);
  return { db, query, sqlMode, errorCode };
}

export interface TableMap { tableId: bigint; db: string; table: string; dbOffset: number }

export function parseTableMap(e: { raw: Buffer }, f: FormatDescription): TableMap {
  const b = body(e, f);
  const postLen = f.postHeader[EventType.TABLE_MAP - 1] ?? 8;
  const tableId = postLen === 6 ? BigInt(b.readUInt32LE(0)) : BigInt(b.readUIntLE(0, 6));
  const dbLen = b[postLen]!;
  const db = b.subarray(postLen + 1, postLen + 1 + dbLen).toString('utf8');
  const tStart = postLen + 1 + dbLen + 1;
  const tLen = b[tStart]!;
  const table = b.subarray(tStart + 1, tStart + 1 + tLen).toString('utf8');
  return { tableId, db, table, dbOffset: HEADER + postLen };
}

/** The table id a rows event applies to. */
export function rowsTableId(e: { raw: Buffer }, f: FormatDescription): bigint {
  const postLen = f.postHeader[e.raw[4]! - 1] ?? 8;
  return postLen === 6 ? BigInt(e.raw.readUInt32LE(HEADER)) : BigInt(e.raw.readUIntLE(HEADER, 6));
}

/** The event with a new checksum (after its bytes were changed). */
function resum(raw: Buffer, f: FormatDescription): Buffer {
  raw.writeUInt32LE(raw.length, 9);
  if (f.checksumBytes) raw.writeUInt32LE(crc32(raw.subarray(0, raw.length - 4)), raw.length - 4);
  return raw;
}

/** A Table_map event naming database `db` (and table `table`) instead of its own. */
export function retargetTableMap(e: { raw: Buffer }, f: FormatDescription, db: string, table?: string): Buffer {
  const m = parseTableMap(e, f);
  const dbBytes = Buffer.from(db, 'utf8');
  const tBytes = Buffer.from(table ?? m.table, 'utf8');
  if (dbBytes.length > 255 || tBytes.length > 255) throw new BinlogFormatError('name too long for a table map');
  const oldDbLen = e.raw[m.dbOffset]!;
  const tStart = m.dbOffset + 1 + oldDbLen + 1;
  const oldTLen = e.raw[tStart]!;
  const rest = e.raw.subarray(tStart + 1 + oldTLen);
  const out = Buffer.concat([
    e.raw.subarray(0, m.dbOffset), Buffer.from([dbBytes.length]), dbBytes, Buffer.from([0]),
    Buffer.from([tBytes.length]), tBytes, rest,
  ]);
  return resum(out, f);
}

/** A rows event with its "end of statement" flag set (its statement's last event was left out). */
export function withStatementEnd(e: { raw: Buffer }, f: FormatDescription): Buffer {
  const postLen = f.postHeader[e.raw[4]! - 1] ?? 8;
  const out = Buffer.from(e.raw);
  const at = HEADER + (postLen === 6 ? 4 : 6);
  out.writeUInt16LE(out.readUInt16LE(at) | 1, at);
  return resum(out, f);
}

/** Whether a rows event ends its statement. */
export function endsStatement(e: { raw: Buffer }, f: FormatDescription): boolean {
  const postLen = f.postHeader[e.raw[4]! - 1] ?? 8;
  return (e.raw.readUInt16LE(HEADER + (postLen === 6 ? 4 : 6)) & 1) === 1;
}

/** The GTID event's flags: standalone (no BEGIN/COMMIT around it). */
export function gtidIsStandalone(e: { raw: Buffer }): boolean {
  // MariaDB GTID event: seq_no (8), domain_id (4), flags2 (1).
  return (e.raw[HEADER + 12]! & 1) === 1;
}
