import { HASH_BYTES } from './format/entry.js';
import { growBytes, growColumn } from '../util/walk-order.js';

const EMPTY = -1;

/** A slot for a whole non-negative number (blob numbers are safe integers, index-checked). */
const mix = (n: number): number => {
  const lo = n >>> 0;
  const hi = (n / 0x100000000) >>> 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  return Math.imul(h, 0xc2b2ae35) ^ (h >>> 16);
};

/**
 * The previous snapshot's blob numbers and, for each, the content hash its index gave (an
 * unchanged file's hash is carried over with its blob) and whether the new snapshot has
 * taken it (each at most once), in typed arrays: an open-addressing table from number to
 * row, the numbers, flags and hashes packed by row. For 200,000 files this is a few MiB
 * where two Sets, a Map and a Buffer per hash took tens.
 */
export class PreviousBlobs {
  private refs = new Float64Array(0);
  private hashes: Buffer = Buffer.alloc(0);
  private hashed = new Uint8Array(0);
  private taken = new Uint8Array(0);
  private table = new Int32Array(1024).fill(EMPTY);
  private rows = 0;

  get size(): number {
    return this.rows;
  }

  private slotOf(n: number): number {
    const mask = this.table.length - 1;
    for (let s = mix(n) & mask; ; s = (s + 1) & mask) {
      const r = this.table[s]!;
      if (r === EMPTY || this.refs[r] === n) return s;
    }
  }

  /** A file's blob and its hash, if the index has one; a number given twice keeps the later hash. */
  add(n: number, hash: Buffer | undefined): void {
    let s = this.slotOf(n);
    let r = this.table[s]!;
    if (r === EMPTY) {
      if ((this.rows + 1) * 2 > this.table.length) {
        this.rehash(this.table.length * 2);
        s = this.slotOf(n);
      }
      r = this.rows++;
      this.table[s] = r;
      this.refs = growColumn(this.refs, r);
      this.refs[r] = n;
      this.hashed = growColumn(this.hashed, r);
      this.taken = growColumn(this.taken, r);
      this.taken[r] = 0;
      this.hashes = growBytes(this.hashes, (r + 1) * HASH_BYTES);
    }
    this.hashed[r] = hash && hash.length === HASH_BYTES ? 1 : 0;
    if (hash && hash.length === HASH_BYTES) hash.copy(this.hashes, r * HASH_BYTES);
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size).fill(EMPTY);
    for (let r = 0; r < this.rows; r++) this.table[this.slotOf(this.refs[r]!)] = r;
  }

  has(n: number): boolean {
    return this.table[this.slotOf(n)] !== EMPTY;
  }

  /** Takes blob `n` for the new snapshot: false when the previous index has no such blob or it was taken already. */
  take(n: number): boolean {
    const r = this.table[this.slotOf(n)]!;
    if (r === EMPTY || this.taken[r] === 1) return false;
    this.taken[r] = 1;
    return true;
  }

  /** The blobs no file of the new snapshot took. */
  *untaken(): Generator<number> {
    for (let r = 0; r < this.rows; r++) if (this.taken[r] !== 1) yield this.refs[r]!;
  }

  /** The hash the previous index gave blob `n` (a copy), if any. */
  hashOf(n: number): Buffer | undefined {
    const r = this.table[this.slotOf(n)]!;
    if (r === EMPTY || this.hashed[r] !== 1) return undefined;
    return Buffer.from(this.hashes.subarray(r * HASH_BYTES, (r + 1) * HASH_BYTES));
  }

  *[Symbol.iterator](): Iterator<number> {
    for (let r = 0; r < this.rows; r++) yield this.refs[r]!;
  }
}
