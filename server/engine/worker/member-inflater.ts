import fs from 'node:fs';
import zlib from 'node:zlib';
import type { GzipMember } from '../format/parallel-gzip.js';
import { inflateMemberOffLoop, inflateMemberSupported } from '../../native/inflate-member.js';
import { pageAlignedBuffer } from '../../native/aligned-buffer.js';

/** Inflated bytes of one member at most (backups write 1 MiB members): a larger one is damage, not a reason to use memory. */
const MAX_MEMBER = 64 << 20;
/** Compressed bytes of one member at most: stored blocks add 5 bytes per 64 KiB, gzip 18 per member. */
const MAX_COMPRESSED = MAX_MEMBER + (MAX_MEMBER >> 10) + 4096;
/** Members read and inflated ahead of the one being read: the pool's four threads stay busy. */
const AHEAD = 4;

/** Inflated members go into Buffers of at least this size, reused once read past (a backup's members are 1 MiB). */
const OUT_SIZE = (1 << 20) + (64 << 10);
/** Spare Buffers kept for the next members: the ones read ahead, and one more. */
const SPARE = AHEAD + 2;

/** The stored archive does not give the bytes its member list promises (`message`: what went wrong, in zlib's words where zlib found it). */
export class ArchiveDamage extends Error {}

/**
 * The inflated bytes of a compressed snapshot's .tar.gz, read through the descriptor `fd` by
 * gzip member (`members`: the snapshot's list, gzip-members.ts). Every member is independent
 * (parallel-gzip.ts), so each is read and inflated whole by jobs on libuv's pool, several ahead
 * of the one being read: inflating uses every core, and nothing crosses a pipe. A member whose
 * inflated length differs from what the list says, or that does not inflate, is damage: the
 * caller stops (the content of every file is still checked against its SHA-256).
 */
export class MemberInflater {
  private readonly cache = new Map<number, Promise<Inflated>>();
  /** The members of the cache whose inflate is done, for readNow. */
  private readonly ready = new Map<number, Inflated>();
  /** Reads and inflates not finished yet, forgotten by the cache or not: the descriptor stays open until they are. */
  private readonly running = new Set<Promise<unknown>>();

  /** requireCrc() was called: members of stored blocks are inflated (and checked) too, not taken as they are. */
  private crcRequired = false;

  /**
   * `crc` false: the native inflater does not compute the members' CRC-32 (only checks their
   * length), for a reader that checks every byte it uses against a SHA-256: it was about a
   * quarter of libdeflate's time on a backup's archive. requireCrc() turns it on.
   */
  constructor(private readonly fd: number, private readonly members: readonly GzipMember[], private readonly compressedSize: number, private crc = true) {}

  /**
   * From now on every member is checked against its CRC-32 (stored ones included); the
   * members inflated or under way before are forgotten, so that a read of them inflates them
   * again with it (their Buffers are taken again once done). For content no SHA-256 covers (an
   * index written before hashes), which the CRC is the only check of.
   */
  requireCrc(): void {
    if (this.crcRequired) return;
    this.crc = true;
    this.crcRequired = true;
    this.forget(() => true);
  }

  /** Buffers of members read past, for the next ones (the native inflater's, inflateMemberOffLoop). */
  private readonly spare: Buffer[] = [];

  /**
   * The `size` bytes at `offset` of the inflated stream, in pieces (views into inflated
   * members). A piece is valid only until a read goes past its member (the next member of
   * this read, or a later read): its memory is then reused for a member further on, so the
   * caller copies or writes it before it takes the next piece.
   */
  async *read(offset: number, size: number): AsyncGenerator<Buffer> {
    const end = offset + size;
    let at = offset;
    let i = this.indexOf(offset);
    while (at < end) {
      if (i < 0 || i >= this.members.length) throw new ArchiveDamage('unexpected end of file');
      this.ahead(i);
      const data = await this.member(i);
      const start = this.members[i]!.uOffset;
      if (at - start >= data.length) {
        if (i === this.members.length - 1) throw new ArchiveDamage('unexpected end of file');
        i++;
        continue;
      }
      const to = Math.min(data.length, end - start);
      yield* data.pieces(at - start, to);
      at = start + to;
      i++;
    }
  }

  /**
   * read() without waiting: the pieces of the `size` bytes at `offset` when they lie in one
   * member that is inflated already (most files), with the same validity; null when they do
   * not (then read() gives them, or the damage).
   */
  readNow(offset: number, size: number): Buffer[] | null {
    const i = this.indexOf(offset);
    const data = i >= 0 ? this.ready.get(i) : undefined;
    if (!data) return null;
    const start = this.members[i]!.uOffset;
    if (offset + size > start + data.length) return null;
    this.ahead(i);
    return [...data.pieces(offset - start, offset + size - start)];
  }

  /** Waits for every read and inflate under way (before the descriptor is closed). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** The last member that starts at or before `offset` (-1: none). */
  private indexOf(offset: number): number {
    let lo = 0;
    let hi = this.members.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.members[mid]!.uOffset <= offset) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  /** Starts members i .. i+AHEAD and forgets those before i (reads go forward), their Buffers kept for the next ones once inflated. */
  private ahead(i: number): void {
    this.forget((k) => k < i);
    for (let k = i; k <= i + AHEAD && k < this.members.length; k++) this.member(k);
  }

  /** Forgets the members of the cache that `which` names, their Buffers kept for the next ones once inflated. */
  private forget(which: (k: number) => boolean): void {
    for (const [k, p] of this.cache) {
      if (!which(k)) continue;
      this.cache.delete(k);
      this.ready.delete(k);
      void p.then((inflated) => { if (inflated.own && this.spare.length < SPARE) this.spare.push(inflated.own); }, () => undefined);
    }
  }

  private member(i: number): Promise<Inflated> {
    let p = this.cache.get(i);
    if (!p) {
      const inflating = this.inflate(i);
      p = inflating;
      // Kept for readNow while the member is in the cache (ahead() forgets both).
      const done = p.then((inflated) => { if (this.cache.get(i) === inflating) this.ready.set(i, inflated); }, () => undefined);
      this.running.add(done);
      void done.then(() => this.running.delete(done));
      this.cache.set(i, p);
    }
    return p;
  }

  private async inflate(i: number): Promise<Inflated> {
    const m = this.members[i]!;
    const next = this.members[i + 1];
    const cEnd = next ? next.cOffset : this.compressedSize;
    const uLength = next ? next.uOffset - m.uOffset : -1;
    if (cEnd < m.cOffset || cEnd - m.cOffset > MAX_COMPRESSED || uLength > MAX_MEMBER) {
      throw new ArchiveDamage(`gzip member ${i} is not within the archive or larger than any member a backup writes`);
    }
    if (uLength > 0 && inflateMemberSupported()) {
      const last = this.spare[this.spare.length - 1];
      const out = last && last.length >= uLength ? this.spare.pop()! : pageAlignedBuffer(Math.max(OUT_SIZE, uLength));
      const native = inflateMemberOffLoop(this.fd, m.cOffset, cEnd - m.cOffset, out, this.crc);
      if (native) {
        let n: number;
        try {
          n = await native;
        } catch (err) {
          this.spare.push(out);
          const e = err as NodeJS.ErrnoException & { damage?: string };
          if (e.damage === 'short') throw new ArchiveDamage('unexpected end of file');
          if (e.damage === 'long') throw new ArchiveDamage(`gzip member ${i} inflates to more than the ${uLength} bytes its list gives`);
          if (e.damage === 'data') throw new ArchiveDamage(`gzip member ${i} is not valid gzip data (or its CRC or length does not match)`);
          throw err;
        }
        if (n !== uLength) {
          this.spare.push(out);
          throw new ArchiveDamage(`gzip member ${i} inflates to ${n} bytes, not the ${uLength} its list gives`);
        }
        return new Inflated([out.subarray(0, n)], out);
      }
    }
    const raw = Buffer.allocUnsafe(cEnd - m.cOffset);
    for (let got = 0; got < raw.length;) {
      const n = await new Promise<number>((resolve, reject) => {
        fs.read(this.fd, raw, got, raw.length - got, m.cOffset + got, (err, bytes) => (err ? reject(err) : resolve(bytes)));
      });
      if (n === 0) throw new ArchiveDamage('unexpected end of file');
      got += n;
    }
    if (uLength === 0 && raw.length === 0) return new Inflated([]);
    const stored = this.crcRequired ? null : storedPieces(raw);
    const out = stored ? new Inflated(stored) : new Inflated([await new Promise<Buffer>((resolve, reject) => {
      // One output chunk a byte larger than the member: one pass on the pool (the default 16 KiB
      // is a hop per chunk, and a chunk filled exactly is one more hop and one more buffer).
      zlib.gunzip(raw, { maxOutputLength: uLength > 0 ? uLength : MAX_MEMBER, chunkSize: Math.max(64 << 10, uLength > 0 ? uLength + 1 : 1 << 20) }, (err, result) => {
        if (err) reject(new ArchiveDamage(err.message));
        else resolve(result);
      });
    })]);
    if (uLength >= 0 && out.length !== uLength) throw new ArchiveDamage(`gzip member ${i} inflates to ${out.length} bytes, not the ${uLength} its list gives`);
    return out;
  }
}

/** One member's inflated bytes, as pieces (views into the read member, or one inflated buffer); `own`: the reusable Buffer they are in. */
class Inflated {
  readonly length: number;
  private readonly starts: number[] = [];

  constructor(private readonly parts: Buffer[], readonly own: Buffer | null = null) {
    let n = 0;
    for (const p of parts) { this.starts.push(n); n += p.length; }
    this.length = n;
  }

  /** Views of the bytes [from, to) of the member, in order. */
  *pieces(from: number, to: number): Generator<Buffer> {
    let k = 0;
    while (k + 1 < this.parts.length && this.starts[k + 1]! <= from) k++;
    for (let at = from; at < to; k++) {
      const start = this.starts[k]!;
      const part = this.parts[k]!;
      const end = Math.min(part.length, to - start);
      if (end > at - start) yield part.subarray(at - start, end);
      at = start + end;
    }
  }
}

/** The gzip header a backup writes (parallel-gzip.ts): deflate, no flags, no optional fields. */
const HEADER = 10;
const TRAILER = 8;

/**
 * A member that is nothing but stored deflate blocks (a backup stores data that does not
 * compress this way) is its own content: the views of its blocks' bytes, without inflating or
 * copying them. null for any other member, and for one not laid out exactly so (a block of
 * another kind, bytes after the final block, a length that disagrees with the trailer's):
 * zlib inflates those and names what is wrong. The CRC-32 is not computed here: every file's
 * content is checked against its SHA-256, which a changed byte cannot pass.
 */
export function storedPieces(raw: Buffer): Buffer[] | null {
  if (raw.length < HEADER + TRAILER + 5 || raw[0] !== 0x1f || raw[1] !== 0x8b || raw[2] !== 8 || raw[3] !== 0) return null;
  const end = raw.length - TRAILER;
  const pieces: Buffer[] = [];
  let total = 0;
  for (let at = HEADER; ;) {
    if (at + 5 > end) return null;
    const head = raw[at]!;
    // BTYPE 00 (stored); the other bits of the byte are the padding to the byte boundary.
    if (((head >> 1) & 3) !== 0) return null;
    const len = raw.readUInt16LE(at + 1);
    if ((len ^ raw.readUInt16LE(at + 3)) !== 0xffff || at + 5 + len > end) return null;
    if (len > 0) pieces.push(raw.subarray(at + 5, at + 5 + len));
    total += len;
    at += 5 + len;
    if (head & 1) {
      if (at !== end || raw.readUInt32LE(end + 4) !== total % 0x100000000) return null;
      return pieces;
    }
  }
}
