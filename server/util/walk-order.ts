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

  /**
   * Adds `path`; with `whole`, stored whole (sharing nothing with the one before), so that a
   * cursor can start reading at it (PathCursor.moveTo).
   */
  push(path: BytePath, whole = false): void {
    const last = this.last;
    let shared = sharedLength(last, path);
    if (this.count > 0 && this.ordered && !strictlyAfter(last, path, shared)) this.ordered = false;
    if (whole) shared = 0;
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

  /** Whether `path` comes strictly after the last path added in walk order (any path does when none was). */
  accepts(path: BytePath): boolean {
    return this.count === 0 || strictlyAfter(this.last, path, sharedLength(this.last, path));
  }

  /** Where the next path will be stored (for PathCursor.moveTo). */
  get end(): number {
    return this.used;
  }

  /** Reads the paths from the first, one at a time. */
  cursor(): PathCursor {
    return new PathCursor(this.bytes, this.count);
  }
}

/** How many leading bytes `a` and `b` share. */
function sharedLength(a: BytePath, b: BytePath): number {
  const max = Math.min(a.length, b.length);
  let shared = 0;
  while (shared < max && a.charCodeAt(shared) === b.charCodeAt(shared)) shared++;
  return shared;
}

/** Whether `path` comes strictly after `last` in walk order, given the `shared` bytes they start with: longer with `last` as prefix, or greater at the first difference. */
function strictlyAfter(last: BytePath, path: BytePath, shared: number): boolean {
  return shared < path.length && (shared === last.length || orderOf(path.charCodeAt(shared)) > orderOf(last.charCodeAt(shared)));
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
   * Puts the cursor before the path stored whole (PathSequence.push with `whole`) at byte
   * `offset`, the `index`th of the sequence: next() reads it.
   */
  moveTo(offset: number, index: number): void {
    this.offset = offset;
    this.index = index - 1;
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
 * Paths added in strictly increasing walk order, each with a one-byte tag, packed in a
 * PathSequence with a whole path every RESTART rows, and found again by a binary search over
 * those whole paths: about 20 bytes a path where a Map of strings takes well over a hundred.
 * For the checks that need "was this path listed before" over a whole index (IndexValidator).
 */
export class OrderedPathTable {
  private readonly paths = new PathSequence();
  /** Byte offset of row k * RESTART. */
  private restarts = new Uint32Array(0);
  private tags = new Uint8Array(0);
  /** A cursor over the paths as they are now (made again after a push: the bytes may have moved). */
  private cursor: PathCursor | null = null;

  get length(): number {
    return this.paths.length;
  }

  /** Adds `path` with `tag` (0-255) when it comes strictly after the last one in walk order; false (nothing added) otherwise. */
  push(path: BytePath, tag: number): boolean {
    if (!this.paths.accepts(path)) return false;
    const n = this.paths.length;
    const whole = n % RESTART === 0;
    if (whole) {
      this.restarts = growColumn(this.restarts, n / RESTART);
      this.restarts[n / RESTART] = this.paths.end;
    }
    this.paths.push(path, whole);
    this.tags = growColumn(this.tags, n);
    this.tags[n] = tag;
    this.cursor = null;
    return true;
  }

  /** The tag `path` was added with, or -1 when it was not added. */
  tagOf(path: BytePath): number {
    const row = this.rowOf(path);
    return row < 0 ? -1 : this.tags[row]!;
  }

  /** The row `path` was added at (0 for the first), or -1 when it was not added. */
  rowOf(path: BytePath): number {
    const count = this.paths.length;
    if (count === 0) return -1;
    const cursor = (this.cursor ??= this.paths.cursor());
    const block = (k: number): void => {
      cursor.moveTo(this.restarts[k]!, k * RESTART);
      cursor.next();
    };
    // The last block whose first (whole) path is at or before `path`.
    let lo = 0;
    let hi = Math.ceil(count / RESTART) - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      block(mid);
      if (cursor.compareTo(path) <= 0) lo = mid; else hi = mid - 1;
    }
    block(lo);
    const last = Math.min(count, (lo + 1) * RESTART) - 1;
    for (;;) {
      const c = cursor.compareTo(path);
      if (c === 0) return cursor.index;
      if (c > 0 || cursor.index === last) return -1;
      cursor.next();
    }
  }

  /** Every path with its tag, in order. */
  *entries(): Generator<[BytePath, number]> {
    const cursor = this.paths.cursor();
    while (cursor.next()) yield [cursor.path, this.tags[cursor.index]!];
  }
}
