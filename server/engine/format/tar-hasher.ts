import crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
const TYPE_REGULAR = new Set([0, 0x30, 0x37]);
const TYPE_LONG_NAME = 0x4c; // L
const TYPE_LONG_LINK = 0x4b; // K

/** Octal or GNU base-256 (the two forms tarHeaders writes). */
function readSize(h: Buffer): number {
  if (h[124]! & 0x80) {
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + h[i]!;
    return v;
  }
  let v = 0;
  for (let i = 124; i < 136; i++) {
    const c = h[i]!;
    if (c === 0x20 || c === 0) { if (v > 0) break; continue; }
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return v;
}

export interface TarHasherOptions {
  /** Keep each file's hash for takeHash (default true; a verify needs only the tar digest). */
  keepHashes?: boolean;
  /** Compute the tar digest too (tarDigest()). */
  digest?: boolean;
}

/**
 * Passes a tar stream through unchanged and computes the SHA-256 of each regular file's
 * content on the way, keyed by the offset of the entry's first header block (the `dataRef`
 * the index records). Synchronous and streaming: it holds one header block, never content.
 * The stream comes from an account worker: whatever it holds only yields hashes that do
 * not match (the snapshot then fails to verify), never more memory or an exception.
 *
 * The tar digest (manifest integrity version 2, docs/snapshot-format.md) is the SHA-256 of the
 * stream with each regular file's content replaced by that content's SHA-256, followed, when
 * the stream ends inside such a content, by the SHA-256 of what it had, and then by the
 * stream's length (u64 LE). It covers every byte (headers, padding, the end blocks and
 * whatever follows them directly; file content through the file's hash) and costs no second
 * pass over the content. native/tar-pump.c computes the same.
 */
export class TarHasher extends Transform {
  private readonly hashes = new Map<number, Buffer>();
  private readonly keepHashes: boolean;
  private readonly tar: crypto.Hash | null;
  private total = 0;
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private pos = 0;
  /** Bytes of content (then padding) left in the current entry. */
  private contentLeft = 0;
  private padLeft = 0;
  private skipping = false;
  private entryStart = -1;
  private hash: crypto.Hash | null = null;
  private ended = false;

  constructor(options: TarHasherOptions = {}) {
    // As much in flight as the pipe from the worker holds, so the hashing step never makes it wait.
    super({ highWaterMark: 1 << 20 });
    this.keepHashes = options.keepHashes ?? true;
    this.tar = options.digest ? crypto.createHash('sha256') : null;
  }

  /** The tar digest of everything that passed (see the class); once, after the stream's end. */
  tarDigest(): Buffer {
    const tar = this.tar;
    if (!tar) throw new Error('TarHasher: made without digest');
    if (!this.ended && !this.skipping && this.contentLeft > 0 && this.hash) tar.update(this.hash.digest());
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(this.total));
    return tar.update(length).digest();
  }

  /** The hash of the file whose headers start at `offset`, once its content has passed; forgotten once taken. */
  takeHash(offset: number): Buffer | undefined {
    const h = this.hashes.get(offset);
    if (h) this.hashes.delete(offset);
    return h;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.scan(chunk);
    done(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let o = 0;
    const tar = this.tar;
    this.total += chunk.length;
    while (o < chunk.length && !this.ended) {
      if (this.contentLeft > 0) {
        const n = Math.min(this.contentLeft, chunk.length - o);
        if (!this.skipping) this.hash!.update(chunk.subarray(o, o + n));
        else tar?.update(chunk.subarray(o, o + n));
        o += n; this.pos += n; this.contentLeft -= n;
        if (this.contentLeft === 0) this.endContent();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, chunk.length - o);
        tar?.update(chunk.subarray(o, o + n));
        o += n; this.pos += n; this.padLeft -= n;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - o);
      chunk.copy(this.header, this.headerFill, o, o + n);
      tar?.update(chunk.subarray(o, o + n));
      if (this.headerFill === 0 && this.entryStart < 0) this.entryStart = this.pos;
      this.headerFill += n; o += n; this.pos += n;
      if (this.headerFill === BLOCK) { this.headerFill = 0; this.onHeader(); }
    }
    // After the end-of-archive block: every byte as it is.
    if (o < chunk.length) tar?.update(chunk.subarray(o));
  }

  private onHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) { this.ended = true; return; }
    const type = h[156]!;
    const size = readSize(h);
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === TYPE_LONG_NAME || type === TYPE_LONG_LINK) {
      // Part of the next entry's headers: its start stays where the first block was.
      this.skipping = true;
      this.contentLeft = size;
      return;
    }
    this.skipping = !TYPE_REGULAR.has(type);
    this.hash = this.skipping ? null : crypto.createHash('sha256');
    this.contentLeft = size;
    if (size === 0) this.endContent();
  }

  private endContent(): void {
    if (!this.skipping) {
      const digest = this.hash!.digest();
      this.tar?.update(digest);
      if (this.keepHashes) this.hashes.set(this.entryStart, digest);
      this.hash = null;
    }
    // After a long-name block the real header of the same entry follows.
    if (!this.skipping || this.header[156] !== TYPE_LONG_NAME && this.header[156] !== TYPE_LONG_LINK) this.entryStart = -1;
    this.skipping = false;
  }
}
