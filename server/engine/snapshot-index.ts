import zlib from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';
import { EntryScanner, type Entry, type EntryKind, type StreamEvent } from './format/entry.js';
import type { Destination } from '../destinations/types.js';
import { layout } from './snapshot-layout.js';
import { isSafeRelative, limits, MAX_PATH_BYTES, requireRegularFile, SnapshotInputError } from './untrusted-input.js';
import { parentOf, toDisplay, type BytePath } from '../util/byte-path.js';
import { OrderedPathTable } from '../util/walk-order.js';

/**
 * Counts inflated bytes and stops the stream past `limit` (a gzip bomb never fills memory).
 * `onChunk` may return a promise: the next chunk is inflated only once it settles.
 */
class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number, private readonly onExceeded: () => Error, private readonly onChunk?: (chunk: Buffer) => Promise<void> | void) { super(); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) { done(this.onExceeded()); return; }
    const wait = this.onChunk?.(chunk);
    if (wait) wait.then(() => done(null, chunk), done);
    else done(null, chunk);
  }
}

/**
 * Checks entries one by one as they stream in: every path relative and normalised, every
 * entry below a directory listed before it (the walk order), hard links only to a file
 * listed before, sizes and offsets whole non-negative numbers, modes permission bits only.
 * So nothing later (restore, download, browse) meets `..`, an absolute path, a file under
 * a symlink, or a link to a file outside the snapshot.
 */
export class IndexValidator {
  private count = 0;
  /**
   * Every path listed so far, with its kind, packed (OrderedPathTable), while the entries come
   * in walk order, as every index this project writes does: then no path can come twice, an
   * entry's parent listed before is the innermost folder still open (`open`), and only a hard
   * link's target is looked up. At 200,000 entries a Map of the paths took tens of MiB of root's
   * heap in every index read (second incremental, restore, catalog).
   */
  private table: OrderedPathTable | null = new OrderedPathTable();
  /** The folders listed that hold the last entry, outermost first (walk order only). */
  private open: BytePath[] = [];
  /** An index out of walk order: every path listed so far with its kind, in one map for the duplicate, parent and hard-link checks. */
  private seen: Map<string, EntryKind> | null = null;

  constructor(private readonly what: string, private readonly maxEntries = limits.indexEntries) {}

  private fail(e: Entry | null, why: string): never {
    const at = e ? ` (entry ${this.count}${e.path.length <= MAX_PATH_BYTES ? ` ${JSON.stringify(toDisplay(e.path))}` : ''})` : '';
    throw new SnapshotInputError(`${this.what}: ${why}${at}: refused as damaged or hostile`);
  }

  check(e: Entry): void {
    this.count++;
    if (this.count > this.maxEntries) this.fail(null, `more than ${this.maxEntries} entries`);
    if (!'fdlhp'.includes(e.kind)) this.fail(e, `unknown entry type ${JSON.stringify(e.kind)}`);
    if (e.path === '') {
      if (e.kind !== 'd' || this.count !== 1) this.fail(e, 'the home folder entry must come first and be a directory');
    } else {
      if (!isSafeRelative(e.path)) this.fail(e, 'a path that is absolute, holds "..", "." or an empty part, or is too long');
      if (this.table && this.count > 1 && !this.table.push(e.path, KIND_CODE[e.kind]!)) this.toMap();
      if (this.table) {
        // In walk order a folder's entries follow it, all together: the folders still open that
        // do not hold this entry are done.
        const open = this.open;
        while (open.length > 0 && !holds(open[open.length - 1]!, e.path)) open.pop();
        if (open[open.length - 1] !== parentOf(e.path)) this.fail(e, 'an entry that is not inside a directory listed before it');
      } else {
        if (this.seen!.get(parentOf(e.path)) !== 'd') this.fail(e, 'an entry that is not inside a directory listed before it');
        if (this.seen!.has(e.path)) this.fail(e, 'a path listed twice');
      }
    }
    if (!Number.isSafeInteger(e.size) || e.size < 0) this.fail(e, `an invalid size (${e.size})`);
    if (e.kind !== 'f' && e.size !== 0) this.fail(e, 'content on an entry that is not a regular file');
    if (e.kind === 'f' && e.size > 0 && (!Number.isSafeInteger(e.dataRef) || e.dataRef < 0)) this.fail(e, `an invalid content offset (${e.dataRef})`);
    if (e.mode > 0o7777) this.fail(e, 'an invalid mode');
    if (!Number.isFinite(e.mtimeSec)) this.fail(e, 'an invalid time');
    if (e.kind === 'l' && (e.link === '' || e.link.length > MAX_PATH_BYTES || e.link.includes('\0'))) this.fail(e, 'an invalid symlink target');
    if (e.kind === 'h' && (!isSafeRelative(e.link) || this.kindOf(e.link) !== 'f')) this.fail(e, 'a hard link to something that is not a file listed before it');
    if (e.kind !== 'l' && e.kind !== 'h' && e.link !== '') this.fail(e, 'a link target on an entry that is not a link');
    if (this.table) {
      // The home's entry is the table's first row (the others were added above, before the checks that need them listed).
      if (e.path === '') this.table.push('', KIND_CODE.d!);
      if (e.kind === 'd') this.open.push(e.path);
    } else {
      this.seen!.set(e.path, e.kind);
    }
  }

  /** The kind a path was listed with before this entry (this entry's own path is not asked for). */
  private kindOf(path: BytePath): EntryKind | undefined {
    if (!this.seen) return KINDS[this.table!.tagOf(path)];
    return this.seen.get(path);
  }

  /** An entry out of walk order: the checks go on with a map of every path listed before it. */
  private toMap(): void {
    const seen = new Map<string, EntryKind>();
    for (const [path, tag] of this.table!.entries()) seen.set(path, KINDS[tag]!);
    this.seen = seen;
    this.table = null;
    this.open = [];
  }
}

const KINDS: (EntryKind | undefined)[] = [];
const KIND_CODE: Record<string, number> = {};
for (const k of ['f', 'd', 'l', 'h', 'p'] as EntryKind[]) { KIND_CODE[k] = KINDS.length; KINDS.push(k); }
/** `dir` (a folder's path, '' for the home) holds `path` at some depth. */
const holds = (dir: BytePath, path: BytePath): boolean => dir === '' || (path.length > dir.length && path.charCodeAt(dir.length) === 0x2f && path.startsWith(dir));

const INFLATED_PIECE = 256 << 10;

/**
 * Streams a snapshot's index (entries in walk order) to `onEntry`, validated entry by entry
 * and bounded in entries and inflated bytes (see limits): a crafted index is refused with
 * an error naming the snapshot, never allowed to fill memory. `onEntry` may return false
 * to stop early. `onInflated` receives the inflated bytes as they are read: they are the
 * validated index only once this resolves. It may return a promise to hold the reading back.
 */
export async function eachIndexEntry(dest: Destination, snapshotDir: string, onEntry: (e: Entry) => boolean | void,
  onInflated?: (chunk: Buffer) => Promise<void> | void): Promise<void> {
  const what = `snapshot ${snapshotDir}: ${layout.index}`;
  await requireRegularFile(dest, snapshotDir, layout.index, what);
  const validator = new IndexValidator(what);
  const maxBytes = limits.indexBytes;
  const raw = dest.createReadStream(`${snapshotDir}/${layout.index}`);
  // Inflated in pieces of 256 KiB, not zlib's 16 KiB: each piece is a round trip to libuv's pool,
  // and an incremental run's worker waits for the whole previous index (20,000 entries: 137 ->
  // 117 ms from the start of the read to its end, 5 interleaved pairs).
  const gunzip = zlib.createGunzip({ chunkSize: INFLATED_PIECE });
  const bounded = new ByteLimit(maxBytes, () => new SnapshotInputError(`${what}: more than ${maxBytes} bytes once inflated: refused as damaged or hostile`), onInflated);
  raw.on('error', (err) => gunzip.destroy(err));
  gunzip.on('error', (err) => bounded.destroy(err));
  raw.pipe(gunzip).pipe(bounded);
  // Each inflated chunk's records are checked and handed on at once (EntryScanner): no promise per entry.
  const scanner = new EntryScanner();
  const take = (ev: StreamEvent): boolean => {
    if (ev.type === 'notice') throw new SnapshotInputError(`${what}: a record that is not an entry: refused as damaged or hostile`);
    if (ev.type !== 'entry') throw new SnapshotInputError(`${what}: content inside the index: refused as damaged or hostile`);
    validator.check(ev.entry);
    return onEntry(ev.entry) !== false;
  };
  try {
    let stopped = false;
    for await (const chunk of bounded) {
      if (!scanner.feed(chunk as Buffer, take)) { stopped = true; break; }
    }
    if (!stopped) scanner.finish();
  } catch (err) {
    if (err instanceof SnapshotInputError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code?.startsWith('Z_') || /entry stream|corrupt entry/.test(e.message)) throw new SnapshotInputError(`${what}: ${e.message}: refused as damaged`);
    throw err;
  } finally {
    raw.destroy();
    gunzip.destroy();
    bounded.destroy();
  }
}

/** The whole index in memory (restore and download select from it), within the same bounds. */
export async function readIndex(dest: Destination, snapshotDir: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  await eachIndexEntry(dest, snapshotDir, (e) => { entries.push(e); });
  return entries;
}

/**
 * Browsing one folder: only the folder's own entry and its direct children are kept while
 * the index streams by (null when `dir` is not in the snapshot).
 */
export async function readIndexChildren(dest: Destination, snapshotDir: string, dir: BytePath): Promise<{ parent: Entry; children: Entry[] } | null> {
  let parent: Entry | null = null;
  const children: Entry[] = [];
  await eachIndexEntry(dest, snapshotDir, (e) => {
    if (e.path === dir) parent = e;
    else if (e.path !== '' && parentOf(e.path) === dir) children.push(e);
  });
  return parent ? { parent, children } : null;
}
