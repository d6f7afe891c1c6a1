import type { Entry, EntryKind } from '../format/entry.js';
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

interface BaseEntry {
  kind: EntryKind; mode: number; size: number; mtimeSec: number; mtimeNsec: number; link: BytePath; hash: Buffer | undefined; seen: boolean;
}

const identical = (b: BaseEntry, e: Entry): boolean =>
  b.kind === e.kind && b.mode === e.mode && b.size === e.size && b.mtimeSec === e.mtimeSec && b.mtimeNsec === e.mtimeNsec
  && b.link === e.link && (b.hash === undefined ? e.hash === undefined : e.hash !== undefined && b.hash.equals(e.hash));

/**
 * Gathers SnapshotChanges: `addBase` with every entry of the base's index, then `addNew`
 * with every entry of the new index, in order. Past `limit` candidates and removals (a
 * snapshot that changed much), it gives up and frees what it held: reading the index
 * again is then no dearer than the comparison, and memory stays bounded.
 */
export class ChangeTracker {
  private base: Map<BytePath, BaseEntry> | null = new Map();
  private baseEntries = 0;
  private baseBytes = 0;
  private readonly n = { entries: 0, bytes: 0, keptBaseBytes: 0 };
  private candidates: Entry[] = [];
  private readonly children = new Map<BytePath, { total: number; folders: number }>();
  private limit = Infinity;

  constructor(private readonly id: string, private readonly baseId: string, private readonly maxChanges?: number) {}

  /** One entry of the base's index (validated, in its order). */
  addBase(e: Entry): void {
    if (!this.base || e.path === '') return;
    this.baseEntries++;
    this.baseBytes += e.size;
    this.base.set(e.path, {
      kind: e.kind, mode: e.mode, size: e.size, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, link: e.link, hash: e.hash, seen: false,
    });
  }

  /** One entry of the new index, as it is written. */
  addNew(e: Entry): void {
    if (!this.base || e.path === '') return;
    if (this.limit === Infinity) this.limit = this.maxChanges ?? Math.max(1000, this.baseEntries >> 2);
    this.n.entries++;
    this.n.bytes += e.size;
    const parent = parentOf(e.path);
    const c = this.children.get(parent);
    if (c) { c.total++; if (e.kind === 'd') c.folders++; } else this.children.set(parent, { total: 1, folders: e.kind === 'd' ? 1 : 0 });
    const b = this.base.get(e.path);
    if (b) {
      b.seen = true;
      this.n.keptBaseBytes += b.size;
      if (identical(b, e)) return;
    }
    this.candidates.push({ ...e, prevRef: -1 });
    if (this.candidates.length > this.limit) this.giveUp();
  }

  private giveUp(): void {
    this.base = null;
    this.candidates = [];
    this.children.clear();
  }

  /** The changes, or null when there were too many (or the tracker gave up). */
  finish(): SnapshotChanges | null {
    const base = this.base;
    if (!base) return null;
    const removed: BytePath[] = [];
    for (const [p, b] of base) {
      if (b.seen) continue;
      removed.push(p);
      if (removed.length + this.candidates.length > this.limit) { this.giveUp(); return null; }
    }
    const largeFolders: [BytePath, number, number][] = [];
    for (const [dir, c] of this.children) if (c.total >= LARGE_FOLDER) largeFolders.push([dir, c.total, c.folders]);
    this.base = null;
    return {
      id: this.id, baseId: this.baseId, baseEntries: this.baseEntries, baseBytes: this.baseBytes,
      entries: this.n.entries, bytes: this.n.bytes, keptBaseBytes: this.n.keptBaseBytes,
      candidates: this.candidates, removed, largeFolders,
    };
  }
}
