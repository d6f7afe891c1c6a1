import { HASH_BYTES, type Entry } from '../format/entry.js';
import { compareWalkOrder, growBytes, growColumn, PathSequence, type PathCursor } from '../../util/walk-order.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import { LARGE_FOLDER } from './path-catalog.js';

/**
 * What a new snapshot changed against the snapshot it was built on, gathered by the backup
 * as it reads the previous index and writes the new one: the path catalog then adds the new
 * snapshot by touching only these paths (appendChanges) instead of reading its whole index
 * again and comparing it with every path the catalog holds.
 *
 * `candidates` are the new entries that may differ from what the base held: every path the
 * base did not have, and every entry not proven identical to the base's (for a file: kind,
 * mode, size, nanosecond time, link target and, when both have one, hash; for a folder also
 * its mode and time, which the catalog keeps per snapshot). The catalog decides each one
 * against its own row, so a candidate that turns out the same costs a lookup, not a version.
 */
export interface SnapshotChanges {
  /** The new snapshot. */
  id: string;
  /** The snapshot it was compared with: the catalog's newest must be this one. */
  baseId: string;
  /** Entries and bytes of the base's index (its '' entry left out), to check the catalog holds the same. */
  baseEntries: number;
  baseBytes: number;
  entries: number;
  bytes: number;
  /** Sum of the base's sizes of the paths both hold (the catalog's removed bytes are the rest). */
  keptBaseBytes: number;
  candidates: Entry[];
  removed: BytePath[];
  /** Folders of LARGE_FOLDER entries or more: [path, entries, folders among them]. */
  largeFolders: [BytePath, number, number][];
}

/**
 * The base's entries, packed in its index order (the walk order): paths front-coded
 * (PathSequence), fields in typed columns, hashes in one buffer, link targets (rare) in a
 * map. The new entries come in the same order, so each is paired with the base's entry of
 * its path by moving one cursor forward: no map of the base's paths, which for 200,000
 * entries took over a hundred MiB of strings and objects.
 */
class PackedBase {
  readonly paths = new PathSequence();
  private kind = new Uint8Array(0);
  private mode = new Uint32Array(0);
  private size = new Float64Array(0);
  private mtimeSec = new Float64Array(0);
  private mtimeNsec = new Uint32Array(0);
  /** Row + 1 of the entry's hash in `hashes`; 0: none. */
  private hashRow = new Uint32Array(0);
  private hashes: Buffer = Buffer.alloc(0);
  private hashCount = 0;
  private readonly links = new Map<number, BytePath>();

  /** False (nothing kept) for an entry the columns cannot hold exactly. */
  add(e: Entry): boolean {
    if ((e.mode >>> 0) !== e.mode || (e.mtimeNsec >>> 0) !== e.mtimeNsec || (e.hash !== undefined && e.hash.length !== HASH_BYTES)) return false;
    const n = this.paths.length;
    this.kind = growColumn(this.kind, n);
    this.mode = growColumn(this.mode, n);
    this.size = growColumn(this.size, n);
    this.mtimeSec = growColumn(this.mtimeSec, n);
    this.mtimeNsec = growColumn(this.mtimeNsec, n);
    this.hashRow = growColumn(this.hashRow, n);
    this.paths.push(e.path);
    this.kind[n] = e.kind.charCodeAt(0);
    this.mode[n] = e.mode;
    this.size[n] = e.size;
    this.mtimeSec[n] = e.mtimeSec;
    this.mtimeNsec[n] = e.mtimeNsec;
    if (e.link !== '') this.links.set(n, e.link);
    this.hashRow[n] = 0;
    if (e.hash !== undefined) {
      this.hashes = growBytes(this.hashes, (this.hashCount + 1) * HASH_BYTES);
      e.hash.copy(this.hashes, this.hashCount * HASH_BYTES);
      this.hashRow[n] = ++this.hashCount;
    }
    return true;
  }

  sizeAt(i: number): number {
    return this.size[i]!;
  }

  /** Row `i` holds what `e` holds: kind, mode, size, nanosecond time, link target and (both or neither) hash. */
  identical(i: number, e: Entry): boolean {
    if (this.kind[i] !== e.kind.charCodeAt(0) || this.mode[i] !== e.mode || this.size[i] !== e.size
      || this.mtimeSec[i] !== e.mtimeSec || this.mtimeNsec[i] !== e.mtimeNsec || (this.links.get(i) ?? '') !== e.link) return false;
    const h = this.hashRow[i]!;
    if (h === 0) return e.hash === undefined;
    return e.hash !== undefined && this.hashes.compare(e.hash, 0, e.hash.length, (h - 1) * HASH_BYTES, h * HASH_BYTES) === 0;
  }
}

/**
 * Gathers SnapshotChanges: `addBase` with every entry of the base's index, then `addNew`
 * with every entry of the new index, in order. Past `limit` candidates and removals (a
 * snapshot that changed much), it gives up and frees what it held: reading the index
 * again is then no dearer than the comparison, and memory stays bounded. It gives up too
 * when either index is not in walk order (compareWalkOrder): the entries could not be
 * paired as they come.
 */
export class ChangeTracker {
  private base: PackedBase | null = new PackedBase();
  private cursor: PathCursor | null = null;
  private lastNew: BytePath | null = null;
  private baseEntries = 0;
  private baseBytes = 0;
  private readonly n = { entries: 0, bytes: 0, keptBaseBytes: 0 };
  private candidates: Entry[] = [];
  private removed: BytePath[] = [];
  private readonly children = new Map<BytePath, { total: number; folders: number }>();
  private limit = Infinity;

  constructor(private readonly id: string, private readonly baseId: string, private readonly maxChanges?: number) {}

  /** One entry of the base's index (validated, in its order). */
  addBase(e: Entry): void {
    if (!this.base || e.path === '') return;
    this.baseEntries++;
    this.baseBytes += e.size;
    if (!this.base.add(e) || !this.base.paths.ordered) this.giveUp();
  }

  /** One entry of the new index, as it is written. */
  addNew(e: Entry): void {
    const base = this.base;
    if (!base || e.path === '') return;
    if (this.limit === Infinity) this.limit = this.maxChanges ?? Math.max(1000, this.baseEntries >> 2);
    if (this.lastNew !== null && compareWalkOrder(this.lastNew, e.path) >= 0) { this.giveUp(); return; }
    this.lastNew = e.path;
    this.n.entries++;
    this.n.bytes += e.size;
    const parent = parentOf(e.path);
    const c = this.children.get(parent);
    if (c) { c.total++; if (e.kind === 'd') c.folders++; } else this.children.set(parent, { total: 1, folders: e.kind === 'd' ? 1 : 0 });
    const cursor = this.cursor ??= base.paths.cursor();
    if (cursor.index < 0) cursor.next();
    // Base entries before this path are gone from the new snapshot.
    let order = 1;
    while (cursor.valid && (order = cursor.compareTo(e.path)) < 0) {
      this.removed.push(cursor.path);
      cursor.next();
    }
    if (cursor.valid && order === 0) {
      const i = cursor.index;
      cursor.next();
      this.n.keptBaseBytes += base.sizeAt(i);
      if (base.identical(i, e)) return;
    }
    this.candidates.push({ ...e, prevRef: -1 });
    if (this.candidates.length + this.removed.length > this.limit) this.giveUp();
  }

  private giveUp(): void {
    this.base = null;
    this.cursor = null;
    this.candidates = [];
    this.removed = [];
    this.children.clear();
  }

  /** The changes, or null when there were too many (or the tracker gave up). */
  finish(): SnapshotChanges | null {
    const base = this.base;
    if (!base) return null;
    const cursor = this.cursor ?? base.paths.cursor();
    if (cursor.index < 0) cursor.next();
    for (; cursor.valid; cursor.next()) {
      this.removed.push(cursor.path);
      if (this.removed.length + this.candidates.length > this.limit) { this.giveUp(); return null; }
    }
    const largeFolders: [BytePath, number, number][] = [];
    for (const [dir, c] of this.children) if (c.total >= LARGE_FOLDER) largeFolders.push([dir, c.total, c.folders]);
    this.base = null;
    this.cursor = null;
    return {
      id: this.id, baseId: this.baseId, baseEntries: this.baseEntries, baseBytes: this.baseBytes,
      entries: this.n.entries, bytes: this.n.bytes, keptBaseBytes: this.n.keptBaseBytes,
      candidates: this.candidates, removed: this.removed, largeFolders,
    };
  }
}
