import os from 'node:os';
import zlib from 'node:zlib';
import { Duplex, PassThrough, Readable, Transform, pipeline } from 'node:stream';
import { promisify } from 'node:util';
import { nativeAddon } from '../../native/addon.js';

/**
 * pigz-like gzip compression on libuv's thread pool. The input is cut into blocks (1 MiB by
 * default) and every block becomes an independent gzip member; their concatenation is
 * one valid .gz file for gzip, gunzip, pigz, `tar xz` and Node's zlib. Because members
 * are independent, inflating can start at any member boundary (see `members()`,
 * `findMember` and `inflateFrom`).
 *
 * Inside a member, already-compressed data is detected cheaply (order-0 entropy of a
 * sample of each 16 KiB cell, with a level-1 trial on doubtful or long stored runs)
 * and written as stored deflate blocks instead of spending level-6 effort on it.
 *
 * With the native addon built against libdeflate, a block is made by one job on the pool
 * (native/gzip-block.c: the same plan, libdeflate's deflate, 2-3 times zlib's speed at the same
 * level and size); each run of compressible or stored cells is then a gzip member of its own.
 */

export interface GzipMember {
  /** Offset of the member's first byte in the uncompressed stream. */
  uOffset: number;
  /** Offset of the member's first byte in the compressed stream. */
  cOffset: number;
}

export interface ParallelGzipOptions {
  /** zlib level 0-9; default 6. 0 stores everything. */
  level?: number;
  /** Uncompressed bytes per gzip member; default 1 MiB. */
  blockSize?: number;
  /** Blocks compressed at the same time; default os.availableParallelism(). */
  workers?: number;
  /** Blocks dispatched but not yet handed to the reader; default 2 * workers + 1. */
  maxInFlight?: number;
}

// ---------------------------------------------------------------------------
// One member

const CELL = 16 * 1024;
const STORED_MAX = 65535;
/** 1f 8b, deflate, no flags, mtime 0, no extra flags, OS = Unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

const LOG2 = new Float64Array(4097);
for (let i = 1; i < LOG2.length; i++) LOG2[i] = Math.log2(i);
const hist = new Uint32Array(256);

const STORE = 0;
const COMPRESS = 1;

/** Order-0 entropy (bits per byte) of every 4th byte of data[start, end). */
function sampledEntropy(data: Uint8Array, start: number, end: number): number {
  hist.fill(0);
  let n = 0;
  for (let i = start; i < end; i += 4) { hist[data[i]!]!++; n++; }
  // H = log2(n) - sum(c * log2(c)) / n
  let s = 0;
  for (let k = 0; k < 256; k++) {
    const c = hist[k]!;
    if (c > 1) s += c * (c < LOG2.length ? LOG2[c]! : Math.log2(c));
  }
  return Math.log2(n) - s / n;
}

/** True when a level-1 trial of the sample saves less than 3 %. */
function trialSaysStore(sample: Uint8Array): boolean {
  return zlib.deflateRawSync(sample, { level: 1, chunkSize: sample.length + 1024 }).length > sample.length * 0.97;
}

function classify(data: Uint8Array, start: number, end: number): number {
  const h = sampledEntropy(data, start, end);
  if (h < 7.2) return COMPRESS;
  if (h >= 7.8) return STORE;
  return trialSaysStore(data.subarray(start, end)) ? STORE : COMPRESS;
}

function storedBlocks(pieces: Uint8Array[], data: Uint8Array, start: number, end: number, final: boolean): number {
  let total = 0;
  if (start === end) {
    pieces.push(Buffer.from([final ? 1 : 0, 0, 0, 0xff, 0xff]));
    return 5;
  }
  for (let o = start; o < end; o += STORED_MAX) {
    const n = Math.min(STORED_MAX, end - o);
    const last = final && o + n === end;
    pieces.push(Buffer.from([last ? 1 : 0, n & 0xff, n >>> 8, ~n & 0xff, (~n >>> 8) & 0xff]));
    pieces.push(data.subarray(o, o + n));
    total += 5 + n;
  }
  return total;
}

interface Run { start: number; end: number; compress: boolean; final: boolean }

/** Which stretches of `data` to deflate and which to store (runs of 16 KiB cells). */
function planMember(data: Uint8Array, level: number): Run[] {
  const len = data.length;
  if (len === 0 || level <= 0) return [{ start: 0, end: len, compress: false, final: true }];
  const nCells = Math.ceil(len / CELL);
  const cls = new Uint8Array(nCells);
  for (let i = 0; i < nCells; i++) {
    const start = i * CELL;
    const end = Math.min(start + CELL, len);
    cls[i] = end - start < 1024 ? (i > 0 ? cls[i - 1]! : COMPRESS) : classify(data, start, end);
  }
  const runs: Run[] = [];
  for (let i = 0; i < nCells;) {
    const c = cls[i]!;
    let j = i + 1;
    while (j < nCells && cls[j] === c) j++;
    const start = i * CELL;
    const end = Math.min(j * CELL, len);
    let compress = c === COMPRESS;
    // A long stored run: one level-1 trial in its middle catches repeated data with
    // high byte entropy (which the entropy estimate cannot see).
    if (!compress && end - start >= 4 * CELL) {
      const mid = start + Math.floor((end - start - CELL) / 2);
      compress = !trialSaysStore(data.subarray(mid, mid + CELL));
    }
    runs.push({ start, end, compress, final: end === len });
    i = j;
  }
  return runs;
}

/**
 * `length`: the run's bytes. The output buffer holds the whole deflated run (deflate's bound
 * plus the flush's few bytes), with room to spare: zlib's default 16 KiB chunks cost one pool
 * job and one callback on the event loop each, and a buffer filled exactly costs one more.
 */
const deflateOptions = (level: number, final: boolean, length: number): zlib.ZlibOptions => ({
  level, finishFlush: final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  chunkSize: Math.max(16 << 10, length + (length >> 10) + 1024),
});

/** Header, the runs' pieces (deflated runs are sync-flushed so they join into one deflate stream), trailer. */
function assembleMember(data: Uint8Array, runs: Run[], deflated: (Buffer | null)[]): Buffer {
  const pieces: Uint8Array[] = [GZIP_HEADER];
  let total = GZIP_HEADER.length;
  runs.forEach((r, k) => {
    const d = deflated[k];
    if (d) { pieces.push(d); total += d.length; } else total += storedBlocks(pieces, data, r.start, r.end, r.final);
  });
  const trailer = Buffer.allocUnsafe(8);
  trailer.writeUInt32LE(zlib.crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length % 0x100000000, 4);
  pieces.push(trailer);
  total += 8;
  const out = Buffer.allocUnsafeSlow(total);
  let o = 0;
  for (const p of pieces) { out.set(p, o); o += p.length; }
  return out;
}

/**
 * One complete gzip member for `data`: compressible runs of cells deflated at `level`,
 * the others stored. Synchronous; used for streams too small to be worth more.
 */
export function compressMember(data: Uint8Array, level = 6): Buffer {
  const runs = planMember(data, level);
  return assembleMember(data, runs, runs.map((r) => (r.compress ? zlib.deflateRawSync(data.subarray(r.start, r.end), deflateOptions(level, r.final, r.end - r.start)) : null)));
}

const deflateRawAsync = promisify(zlib.deflateRaw) as (buf: Uint8Array, opts: zlib.ZlibOptions) => Promise<Buffer>;

/**
 * The same member, deflated on libuv's thread pool: parallel compression without
 * worker threads, whose separate JavaScript heaps cost tens of MB each.
 */
export async function compressMemberAsync(data: Uint8Array, level = 6): Promise<Buffer> {
  const runs = planMember(data, level);
  const deflated = await Promise.all(runs.map((r) => (r.compress ? deflateRawAsync(data.subarray(r.start, r.end), deflateOptions(level, r.final, r.end - r.start)) : null)));
  return assembleMember(data, runs, deflated);
}

interface GzipAddon { gzipBlock(data: Uint8Array, out: Uint8Array, level: number): Promise<number> }
const gzipAddon = nativeAddon<GzipAddon>('gzipBlock');

/**
 * Room for any block gzipBlock makes of `length` bytes: deflate's worst case (5 bytes per
 * 5,000-byte block, libdeflate's bound) plus a member's header, trailer and padding per run of
 * cells (a run per 16 KiB cell at most).
 */
export const gzipBlockBound = (length: number): number => length + Math.ceil(length / 200) + 4096;

/** The block's gzip members, by the native addon when it has libdeflate, else by compressMemberAsync. */
export async function compressBlock(data: Uint8Array, level = 6): Promise<Buffer> {
  if (!gzipAddon) return compressMemberAsync(data, level);
  const out = Buffer.allocUnsafeSlow(gzipBlockBound(data.length));
  const n = await gzipAddon.gzipBlock(data, out, level);
  return out.subarray(0, n);
}

// ---------------------------------------------------------------------------
// The parallel stream

interface Job { seq: number; uOffset: number; buf: ArrayBuffer; len: number; out: Buffer | null }

/** Below this, a stream that is a single small block is compressed on the calling thread. */
const INLINE_LIMIT = 64 * 1024;

/**
 * A Duplex: write the uncompressed bytes, read the gzip stream. Writes are acknowledged
 * only while fewer than `maxInFlight` blocks are being compressed or waiting to be
 * read, so memory stays bounded and a slow reader slows the writer. Output order is
 * input order.
 */
export class ParallelGzip extends Duplex {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly maxWorkers: number;
  private readonly maxInFlight: number;
  private block: Buffer | null = null;
  private fill = 0;
  private readonly spare: ArrayBuffer[] = [];
  private uIn = 0;
  private cOut = 0;
  private seq = 0;
  private nextOut = 0;
  private readonly jobs = new Map<number, Job>();
  private readonly waiting: Job[] = [];
  private running = 0;
  private pendingWrite: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  private finalCb: ((err?: Error | null) => void) | null = null;
  private readonly table: GzipMember[] = [];
  /** push() said the reader is full: take no more input until _read() is called. */
  private readerFull = false;

  constructor(opts: ParallelGzipOptions = {}) {
    super({ writableHighWaterMark: 64 * 1024, readableHighWaterMark: 64 * 1024 });
    this.level = opts.level ?? 6;
    this.blockSize = opts.blockSize ?? 1 << 20;
    this.maxWorkers = Math.max(1, opts.workers ?? os.availableParallelism());
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 2 * this.maxWorkers + 1);
    if (!(this.level >= 0 && this.level <= 9)) throw new RangeError('gzip level must be 0-9');
    if (!(this.blockSize >= 1024)) throw new RangeError('gzip block size must be at least 1 KiB');
  }

  /** The member table; complete once the readable side has ended. */
  members(): GzipMember[] {
    return this.table.slice();
  }

  /** Uncompressed bytes written so far. */
  get uncompressedBytes(): number { return this.uIn + this.fill; }

  /** Compressed bytes produced so far. */
  get compressedBytes(): number { return this.cOut; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.consume(chunk, 0, cb);
  }

  override _read(): void {
    this.readerFull = false;
    this.resume_();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.seq === 0 && this.fill <= INLINE_LIMIT) {
      // A tiny stream: compressed at once on this thread.
      const data = this.block ? this.block.subarray(0, this.fill) : Buffer.alloc(0);
      const out = compressMember(data, this.level);
      this.table.push({ uOffset: 0, cOffset: 0 });
      this.uIn = this.fill;
      this.fill = 0;
      this.block = null;
      this.cOut = out.length;
      this.seq = this.nextOut = 1;
      this.push(out);
      this.push(null);
      cb();
      return;
    }
    if (this.fill > 0) this.dispatch();
    this.finalCb = cb;
    this.checkDone();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.jobs.clear();
    this.waiting.length = 0;
    this.block = null;
    this.pendingWrite = null;
    this.finalCb = null;
    cb(err);
  }

  private canAccept(): boolean {
    return this.jobs.size < this.maxInFlight && !this.readerFull;
  }

  private consume(chunk: Buffer, off: number, cb: (err?: Error | null) => void): void {
    const bs = this.blockSize;
    while (off < chunk.length) {
      if (!this.block) this.block = Buffer.from(this.spare.pop() ?? new ArrayBuffer(bs), 0, bs);
      const take = Math.min(bs - this.fill, chunk.length - off);
      chunk.copy(this.block, this.fill, off, off + take);
      this.fill += take;
      off += take;
      if (this.fill === bs) {
        this.dispatch();
        if (!this.canAccept()) { this.pendingWrite = { chunk, off, cb }; return; }
      }
    }
    cb();
  }

  private resume_(): void {
    if (this.pendingWrite && this.canAccept()) {
      const { chunk, off, cb } = this.pendingWrite;
      this.pendingWrite = null;
      this.consume(chunk, off, cb);
    }
  }

  private dispatch(): void {
    const block = this.block!;
    const job: Job = { seq: this.seq++, uOffset: this.uIn, buf: block.buffer as ArrayBuffer, len: this.fill, out: null };
    this.uIn += this.fill;
    this.block = null;
    this.fill = 0;
    this.jobs.set(job.seq, job);
    this.waiting.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.running < this.maxWorkers) {
      const job = this.waiting.shift()!;
      this.running++;
      compressBlock(new Uint8Array(job.buf, 0, job.len), this.level).then(
        (out) => { this.running--; this.onResult({ seq: job.seq, out, buf: job.buf }); },
        (err: unknown) => { this.running--; if (!this.destroyed) this.destroy(new Error(`gzip failed: ${(err as Error).message ?? String(err)}`)); },
      );
    }
  }

  private onResult(m: { seq: number; out: Buffer; buf: ArrayBuffer }): void {
    if (this.destroyed) return;
    if (this.spare.length < this.maxInFlight && m.buf.byteLength === this.blockSize) this.spare.push(m.buf);
    const job = this.jobs.get(m.seq);
    if (!job) return;
    job.out = m.out;
    while (true) {
      const next = this.jobs.get(this.nextOut);
      if (!next || !next.out) break;
      this.jobs.delete(this.nextOut);
      this.nextOut++;
      this.table.push({ uOffset: next.uOffset, cOffset: this.cOut });
      this.cOut += next.out.length;
      if (!this.push(next.out)) this.readerFull = true;
    }
    this.pump();
    this.resume_();
    this.checkDone();
  }

  private checkDone(): void {
    if (!this.finalCb || this.jobs.size > 0) return;
    const cb = this.finalCb;
    this.finalCb = null;
    this.push(null);
    cb();
  }

}

export const createParallelGzip = (opts?: ParallelGzipOptions): ParallelGzip => new ParallelGzip(opts);

// ---------------------------------------------------------------------------
// Reading

/** The member that holds uncompressed offset `offset` (the last with uOffset <= offset). */
export function findMember(members: readonly GzipMember[], offset: number): GzipMember {
  let lo = 0;
  let hi = members.length - 1;
  let found: GzipMember = { uOffset: 0, cOffset: 0 };
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = members[mid]!;
    if (m.uOffset <= offset) { found = m; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

/**
 * Inflates concatenated gzip members read from a member boundary (e.g. a file stream
 * opened at `member.cOffset`) and drops the first `skip` uncompressed bytes. Node's
 * gunzip continues across member boundaries. Destroying the result closes `compressed`.
 */
export function inflateFrom(compressed: Readable | AsyncIterable<Buffer>, skip = 0): Readable {
  const source = compressed instanceof Readable ? compressed : Readable.from(compressed, { objectMode: false });
  let left = skip;
  const dropper = skip > 0
    ? new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (left >= chunk.length) { left -= chunk.length; cb(); return; }
        const out = left > 0 ? chunk.subarray(left) : chunk;
        left = 0;
        cb(null, out);
      },
    })
    : new PassThrough();
  pipeline(source, zlib.createGunzip({ chunkSize: 256 << 10 }), dropper, () => undefined);
  return dropper;
}
