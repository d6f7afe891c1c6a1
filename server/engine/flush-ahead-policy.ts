/** Incremental: new content stored since the last write-out for the next to start. */
export const FLUSH_AHEAD_BYTES = 32 << 20;
/**
 * Incremental: unchanged files linked since the last write-out for the next to start. Each
 * link changes the previous copy's inode (its link count) and adds a name to a blob folder:
 * a second incremental of 20,000 files, which stores almost nothing new, left all of it to
 * the commit's flush (a syncfs of 0.07-0.25 s after the walk, on this project's machine).
 * Written out while the walk goes on, the commit's flush waited 0.01-0.09 s. Links are made
 * in blob order, which is the order of the previous copies' inodes, so a block of inodes
 * written out ahead is seldom changed again by a later link.
 */
export const FLUSH_AHEAD_LINKS = 4096;

/**
 * When a run asks its destination to start writing out (Destination.flushAhead): once
 * FLUSH_AHEAD_BYTES of new content were stored, or FLUSH_AHEAD_LINKS files were linked, since
 * the last time it did.
 */
export class FlushAheadPolicy {
  private bytesFrom = 0;
  private linksFrom = 0;

  due(storedBytes: number, linkedFiles: number): boolean {
    if (storedBytes - this.bytesFrom < FLUSH_AHEAD_BYTES && linkedFiles - this.linksFrom < FLUSH_AHEAD_LINKS) return false;
    this.bytesFrom = storedBytes;
    this.linksFrom = linkedFiles;
    return true;
  }
}
