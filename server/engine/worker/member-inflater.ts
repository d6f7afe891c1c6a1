import fs from 'node:fs';
import zlib from 'node:zlib';
import type { GzipMember } from '../format/parallel-gzip.js';

/** Inflated bytes of one member at most (backups write 1 MiB members): a larger one is damage, not a reason to use memory. */
const MAX_MEMBER = 64 << 20;
/** Compressed bytes of one member at most: stored blocks add 5 bytes per 64 KiB, gzip 18 per member. */
const MAX_COMPRESSED = MAX_MEMBER + (MAX_MEMBER >> 10) + 4096;
/** Members read and inflated ahead of the one being read: the pool's four threads stay busy. */
const AHEAD = 4;

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
  private readonly cache = new Map<number, Promise<Buffer>>();
  /** Reads and inflates not finished yet, forgotten by the cache or not: the descriptor stays open until they are. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly fd: number, private readonly members: readonly GzipMember[], private readonly compressedSize: number) {}

  /** The `size` bytes at `offset` of the inflated stream, in pieces (views into inflated members). */
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
      yield data.subarray(at - start, to);
      at = start + to;
      i++;
    }
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

  /** Starts members i .. i+AHEAD and forgets those before i (reads go forward). */
  private ahead(i: number): void {
    for (const k of this.cache.keys()) if (k < i) this.cache.delete(k);
    for (let k = i; k <= i + AHEAD && k < this.members.length; k++) this.member(k);
  }

  private member(i: number): Promise<Buffer> {
    let p = this.cache.get(i);
    if (!p) {
      p = this.inflate(i);
      const done = p.then(() => undefined, () => undefined);
      this.running.add(done);
      void done.then(() => this.running.delete(done));
      this.cache.set(i, p);
    }
    return p;
  }

  private async inflate(i: number): Promise<Buffer> {
    const m = this.members[i]!;
    const next = this.members[i + 1];
    const cEnd = next ? next.cOffset : this.compressedSize;
    const uLength = next ? next.uOffset - m.uOffset : -1;
    if (cEnd < m.cOffset || cEnd - m.cOffset > MAX_COMPRESSED || uLength > MAX_MEMBER) {
      throw new ArchiveDamage(`gzip member ${i} is not within the archive or larger than any member a backup writes`);
    }
    const raw = Buffer.allocUnsafe(cEnd - m.cOffset);
    for (let got = 0; got < raw.length;) {
      const n = await new Promise<number>((resolve, reject) => {
        fs.read(this.fd, raw, got, raw.length - got, m.cOffset + got, (err, bytes) => (err ? reject(err) : resolve(bytes)));
      });
      if (n === 0) throw new ArchiveDamage('unexpected end of file');
      got += n;
    }
    if (uLength === 0 && raw.length === 0) return Buffer.alloc(0);
    const out = await new Promise<Buffer>((resolve, reject) => {
      // One output chunk the member's size: one pass on the pool (the default 16 KiB is a hop per chunk).
      zlib.gunzip(raw, { maxOutputLength: uLength > 0 ? uLength : MAX_MEMBER, chunkSize: Math.max(64 << 10, uLength > 0 ? uLength : 1 << 20) }, (err, result) => {
        if (err) reject(new ArchiveDamage(err.message));
        else resolve(result);
      });
    });
    if (uLength >= 0 && out.length !== uLength) throw new ArchiveDamage(`gzip member ${i} inflates to ${out.length} bytes, not the ${uLength} its list gives`);
    return out;
  }
}
