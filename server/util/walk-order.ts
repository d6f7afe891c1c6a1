import type { BytePath } from './byte-path.js';

/**
 * The order of a snapshot's index and of the account worker's walk: a folder, then what it
 * holds, names in byte order (the walk sorts each folder's names). That is byte order with
 * '/' below every other byte: "a", "a/b", "a.c". Two lists in this order can be joined by
 * walking both at once, with no map of either.
 */
export function compareWalkOrder(a: BytePath, b: BytePath): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return orderOf(x) - orderOf(y);
  }
  return a.length - b.length;
}

/** A byte's rank in walk order: '/' before every other. */
const orderOf = (c: number): number => (c === 0x2f ? -1 : c);

/** A growable packed buffer: `b`, or a copy at least twice as long, with room for `need` bytes. */
export function growBytes(b: Buffer, need: number): Buffer {
  if (need <= b.length) return b;
  const next = Buffer.allocUnsafe(Math.max(need, b.length * 2));
  b.copy(next);
  return next;
}

function writeVarint(b: Buffer, o: number, n: number): number {
  while (n >= 0x80) { b[o++] = (n & 0x7f) | 0x80; n >>>= 7; }
  b[o++] = n;
  return o;
}

/**
 * Paths kept in the order they came, packed: each as the length it shares with the one
 * before and the bytes that follow (front coding). Siblings share their folder, so a path
 * takes a few bytes where a string and a map entry take a hundred. Read back in order only
 * (cursor()).
 */
export class PathSequence {
  private bytes: Buffer = Buffer.allocUnsafe(1 << 14);
  private used = 0;
  private last: BytePath = '';
  private count = 0;
  /** False once a path did not come strictly after the one before it in walk order. */
  ordered = true;

  get length(): number {
    return this.count;
  }

  push(path: BytePath): void {
    const last = this.last;
    const max = Math.min(last.length, path.length);
    let shared = 0;
    while (shared < max && last.charCodeAt(shared) === path.charCodeAt(shared)) shared++;
    // Strictly after the one before: longer with it as prefix, or greater at the first difference.
    if (this.count > 0 && this.ordered && (shared === path.length
      || (shared < last.length && orderOf(path.charCodeAt(shared)) < orderOf(last.charCodeAt(shared))))) this.ordered = false;
    const suffix = path.length - shared;
    this.bytes = growBytes(this.bytes, this.used + 10 + suffix);
    this.used = writeVarint(this.bytes, this.used, shared);
    this.used = writeVarint(this.bytes, this.used, suffix);
    const b = this.bytes;
    if (suffix > 64) {
      this.used += b.write(path.slice(shared), this.used, 'latin1');
    } else {
      // Short tails (most): copied here, cheaper than a call into the runtime.
      let o = this.used;
      for (let i = shared; i < path.length; i++) b[o++] = path.charCodeAt(i);
      this.used = o;
    }
    this.last = path;
    this.count++;
  }

  /** Reads the paths from the first, one at a time. */
  cursor(): PathCursor {
    return new PathCursor(this.bytes, this.count);
  }
}

/** A position in a PathSequence: `path` is the `index`th path (index -1 before the first). */
export class PathCursor {
  index = -1;
  private offset = 0;
  /** The current path's bytes: a string is made of them only when asked for (path). */
  private scratch: Buffer = Buffer.allocUnsafe(4096);
  private length = 0;
  private text: BytePath | null = null;

  constructor(private readonly bytes: Buffer, private readonly count: number) {}

  /** True while the cursor stands on a path of the sequence (after next() has been called once). */
  get valid(): boolean {
    return this.index >= 0 && this.index < this.count;
  }

  get path(): BytePath {
    this.text ??= this.scratch.toString('latin1', 0, this.length);
    return this.text;
  }

  /** Moves to the next path; false past the last. */
  next(): boolean {
    if (this.index + 1 >= this.count) { this.index = this.count; return false; }
    const b = this.bytes;
    let o = this.offset;
    let shared = 0;
    for (let s = 0; ; s += 7) { const c = b[o++]!; shared |= (c & 0x7f) << s; if (c < 0x80) break; }
    let suffix = 0;
    for (let s = 0; ; s += 7) { const c = b[o++]!; suffix |= (c & 0x7f) << s; if (c < 0x80) break; }
    this.scratch = growBytes(this.scratch, shared + suffix);
    const d = this.scratch;
    for (let i = 0; i < suffix; i++) d[shared + i] = b[o + i]!;
    this.length = shared + suffix;
    this.text = null;
    this.offset = o + suffix;
    this.index++;
    return true;
  }

  /** compareWalkOrder(this path, path), from the bytes. */
  compareTo(path: BytePath): number {
    const d = this.scratch;
    const n = Math.min(this.length, path.length);
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      const y = path.charCodeAt(i);
      if (x !== y) return orderOf(x) - orderOf(y);
    }
    return this.length - path.length;
  }

  /**
   * Moves forward to `path` when the sequence holds it at or after the cursor: true when it
   * does (the cursor then stands on it), false when the cursor stands on the first path
   * after it (or past the end). Paths asked for must come in walk order.
   */
  seek(path: BytePath): boolean {
    if (this.index < 0) this.next();
    while (this.index < this.count) {
      const c = this.compareTo(path);
      if (c === 0) return true;
      if (c > 0) return false;
      this.next();
    }
    return false;
  }
}

type Column = Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;

/** A growable typed column: `a`, or a copy of the same kind twice as long, with room for row `n`. */
export function growColumn<T extends Column>(a: T, n: number): T {
  if (n < a.length) return a;
  const b = new (a.constructor as new (length: number) => T)(Math.max(1024, a.length * 2, n + 1));
  b.set(a);
  return b;
}

/** A whole path is stored every RESTART rows of an OrderedPathTable (the rest front-coded). */
const RESTART = 16;

/**
 * Paths added in strictly increasing walk order, each with a one-byte tag, packed as a
 * PathSequence is (front-coded) with a whole path every RESTART rows, and found again by a
 * binary search over those whole paths: about 20 bytes a path where a Map of strings takes
 * well over a hundred. For the checks that need "was this path listed before" over a whole
 * index (IndexValidator).
 */
export class OrderedPathTable {
  private bytes: Buffer = Buffer.allocUnsafe(1 << 14);
  private used = 0;
  /** Byte offset of row k * RESTART. */
  private restarts = new Uint32Array(0);
  private tags = new Uint8Array(0);
  private last: BytePath = '';
  private count = 0;
  private scratch: Buffer = Buffer.allocUnsafe(4096);

  get length(): number {
    return this.count;
  }

  /** Adds `path` with `tag` (0-255) when it comes strictly after the last one in walk order; false (nothing added) otherwise. */
  push(path: BytePath, tag: number): boolean {
    const last = this.last;
    const n = this.count;
    const max = Math.min(last.length, path.length);
    let shared = 0;
    while (shared < max && last.charCodeAt(shared) === path.charCodeAt(shared)) shared++;
    if (n > 0 && (shared === path.length
      || (shared < last.length && orderOf(path.charCodeAt(shared)) < orderOf(last.charCodeAt(shared))))) return false;
    if (n % RESTART === 0) {
      shared = 0;
      this.restarts = growColumn(this.restarts, n / RESTART);
      this.restarts[n / RESTART] = this.used;
    }
    const suffix = path.length - shared;
    this.bytes = growBytes(this.bytes, this.used + 10 + suffix);
    this.used = writeVarint(this.bytes, this.used, shared);
    this.used = writeVarint(this.bytes, this.used, suffix);
    this.used += this.bytes.write(path.slice(shared), this.used, 'latin1');
    this.tags = growColumn(this.tags, n);
    this.tags[n] = tag;
    this.last = path;
    this.count++;
    return true;
  }

  /** Decodes the row at byte `offset` onto the scratch path of `length` bytes; returns [next offset, new length]. */
  private decode(offset: number): [number, number] {
    const b = this.bytes;
    let o = offset;
    let shared = 0;
    for (let s = 0; ; s += 7) { const c = b[o++]!; shared |= (c & 0x7f) << s; if (c < 0x80) break; }
    let suffix = 0;
    for (let s = 0; ; s += 7) { const c = b[o++]!; suffix |= (c & 0x7f) << s; if (c < 0x80) break; }
    this.scratch = growBytes(this.scratch, shared + suffix);
    b.copy(this.scratch, shared, o, o + suffix);
    return [o + suffix, shared + suffix];
  }

  /** compareWalkOrder(scratch path of `length` bytes, path). */
  private compare(length: number, path: BytePath): number {
    const d = this.scratch;
    const n = Math.min(length, path.length);
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      const y = path.charCodeAt(i);
      if (x !== y) return orderOf(x) - orderOf(y);
    }
    return length - path.length;
  }

  /** The tag `path` was added with, or -1 when it was not added. */
  tagOf(path: BytePath): number {
    const row = this.rowOf(path);
    return row < 0 ? -1 : this.tags[row]!;
  }

  /** The row `path` was added at (0 for the first), or -1 when it was not added. */
  rowOf(path: BytePath): number {
    if (this.count === 0) return -1;
    // The last block whose first (whole) path is at or before `path`.
    let lo = 0;
    let hi = Math.ceil(this.count / RESTART) - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.compare(this.decode(this.restarts[mid]!)[1], path) <= 0) lo = mid; else hi = mid - 1;
    }
    let offset = this.restarts[lo]!;
    for (let row = lo * RESTART; row < Math.min(this.count, (lo + 1) * RESTART); row++) {
      const [next, length] = this.decode(offset);
      const c = this.compare(length, path);
      if (c === 0) return row;
      if (c > 0) return -1;
      offset = next;
    }
    return -1;
  }

  /** Every path with its tag, in order. */
  *entries(): Generator<[BytePath, number]> {
    let offset = 0;
    for (let row = 0; row < this.count; row++) {
      const [next, length] = this.decode(offset);
      yield [this.scratch.toString('latin1', 0, length), this.tags[row]!];
      offset = next;
    }
  }
}
