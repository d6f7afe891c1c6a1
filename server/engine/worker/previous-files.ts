import type { BytePath } from '../../util/byte-path.js';
import { growColumn, PathSequence, type PathCursor } from '../../util/walk-order.js';

export interface PreviousFile { size: number; mtimeSec: number; mtimeNsec: number; dataRef: number }

/**
 * The previous snapshot's files (with content), as the worker compares the walk with them:
 * paths packed (PathSequence) and the fields in typed columns, so that 200,000 files take a
 * few MiB instead of a map of strings and objects. The index and the walk are in the same
 * order, so the walk finds each path by moving one cursor forward (find is asked in walk
 * order). An index out of that order (not written by this walk) is looked up through a map.
 */
export class PreviousFiles {
  private readonly paths = new PathSequence();
  private size = new Float64Array(0);
  private mtimeSec = new Float64Array(0);
  private mtimeNsec = new Uint32Array(0);
  private dataRef = new Float64Array(0);
  private cursor: PathCursor | null = null;
  private byPath: Map<BytePath, number> | null = null;

  add(path: BytePath, f: PreviousFile): void {
    const n = this.paths.length;
    this.size = growColumn(this.size, n);
    this.mtimeSec = growColumn(this.mtimeSec, n);
    this.mtimeNsec = growColumn(this.mtimeNsec, n);
    this.dataRef = growColumn(this.dataRef, n);
    this.paths.push(path);
    this.size[n] = f.size;
    this.mtimeSec[n] = f.mtimeSec;
    this.mtimeNsec[n] = f.mtimeNsec;
    this.dataRef[n] = f.dataRef;
  }

  /** The row of `path`, or -1. */
  private find(path: BytePath): number {
    if (this.paths.ordered) {
      this.cursor ??= this.paths.cursor();
      return this.cursor.seek(path) ? this.cursor.index : -1;
    }
    if (!this.byPath) {
      this.byPath = new Map();
      for (const c = this.paths.cursor(); c.next();) this.byPath.set(c.path, c.index);
    }
    return this.byPath.get(path) ?? -1;
  }

  get(path: BytePath): PreviousFile | undefined {
    const i = this.find(path);
    if (i < 0) return undefined;
    return { size: this.size[i]!, mtimeSec: this.mtimeSec[i]!, mtimeNsec: this.mtimeNsec[i]!, dataRef: this.dataRef[i]! };
  }
}
