import { pageAlignedBuffer } from '../../native/aligned-buffer.js';

/** Arenas are this large; a file larger than ARENA / 4 gets memory of its own (not reused). */
const ARENA = 4 << 20;
const OWN_ABOVE = ARENA >> 2;
/** Arenas kept for reuse besides the one being filled. */
const SPARE = 4;
/** Slots start on a page of a page-aligned arena: a write from elsewhere in a page was the pool's main cost (aligned-buffer.c). */
const ALIGN = 4096;

/** One arena: the files gathered into it that are not written yet hold it (`refs`). */
export interface Arena { buf: Buffer; used: number; refs: number }

/**
 * Memory for the content of gathered files (NewFiles) whose chunks are only lent (a compressed
 * snapshot's inflated members, which MemberInflater reuses): each file is copied into a slot
 * of a reused arena as it comes, instead of its chunks being kept, or a new Buffer made per
 * file. An arena is filled from its start again once every file in it is written (release),
 * so the bytes the pool writes are mostly still in the processor's cache.
 */
export class GatherArenas {
  private current: Arena | null = null;
  private readonly spare: Buffer[] = [];

  /** A slot of `size` bytes, and the arena to release once its file is written (null: its own memory). */
  reserve(size: number): { slot: Buffer; arena: Arena | null } {
    if (size === 0) return { slot: Buffer.alloc(0), arena: null };
    if (size > OWN_ABOVE) return { slot: pageAlignedBuffer(size), arena: null };
    let a = this.current;
    if (!a || a.used + size > ARENA) {
      // The full arena is left to the files in it; the last one's release makes it spare.
      if (a && a.refs === 0 && this.spare.length < SPARE) this.spare.push(a.buf);
      a = this.current = { buf: this.spare.pop() ?? pageAlignedBuffer(ARENA), used: 0, refs: 0 };
    }
    const slot = a.buf.subarray(a.used, a.used + size);
    a.used = Math.min(ARENA, a.used + Math.ceil(size / ALIGN) * ALIGN);
    a.refs++;
    return { slot, arena: a };
  }

  /** The file in a slot of `arena` is written (or dropped): its bytes are no longer needed. */
  release(arena: Arena | null): void {
    if (!arena || --arena.refs > 0) return;
    if (arena === this.current) arena.used = 0;
    else if (this.spare.length < SPARE) this.spare.push(arena.buf);
  }
}
