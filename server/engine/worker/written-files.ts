import type { Entry } from '../format/entry.js';
import type { BytePath } from '../../util/byte-path.js';
import { growColumn, OrderedPathTable } from '../../util/walk-order.js';

/**
 * The regular files (and hard links) a restore wrote, by path: the only things a hard link in
 * the stream may point at. Every entry of the stream is named in its order; while that order
 * is the walk order (a whole snapshot's index), each path comes once, and the paths are kept
 * packed (OrderedPathTable) with one flag each, set when the entry's file is written: about
 * 20 bytes a path where a Set of strings took over a hundred (at 200,000 files, tens of MiB of
 * the account worker's peak). A stream out of that order (a path named twice) goes on with a
 * Set, exactly as before.
 */
export class WrittenFiles {
  private table: OrderedPathTable | null = new OrderedPathTable();
  private flags = new Uint8Array(0);
  /** Row of each file or hard link named while the table holds the paths. */
  private readonly rows = new WeakMap<Entry, number>();
  private set: Set<BytePath> | null = null;

  /**
   * An entry of the stream, in its order, before anything is put at its path: whatever this
   * restore wrote at that path before no longer counts.
   */
  named(e: Entry): void {
    if (this.table) {
      const row = this.table.length;
      if (this.table.push(e.path, 0)) {
        this.flags = growColumn(this.flags, row);
        this.flags[row] = 0;
        if (e.kind === 'f' || e.kind === 'h') this.rows.set(e, row);
        return;
      }
      this.toSet();
    }
    this.set!.delete(e.path);
  }

  /** `e`, named before, was written (or linked) at its path. */
  add(e: Entry): void {
    if (this.table) {
      const row = this.rows.get(e);
      if (row !== undefined) {
        this.flags[row] = 1;
        return;
      }
      // Not named first: only the Set can say it.
      this.toSet();
    }
    this.set!.add(e.path);
  }

  has(path: BytePath): boolean {
    if (this.table) {
      const row = this.table.rowOf(path);
      return row >= 0 && this.flags[row] === 1;
    }
    return this.set!.has(path);
  }

  private toSet(): void {
    const set = new Set<BytePath>();
    let row = 0;
    for (const [path] of this.table!.entries()) if (this.flags[row++] === 1) set.add(path);
    this.set = set;
    this.table = null;
    this.flags = new Uint8Array(0);
  }
}
