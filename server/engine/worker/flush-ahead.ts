import { syncFilesystem } from '../../native/syncfs.js';

/** Bytes written between two write-outs started while a restore runs. */
export const FLUSH_AHEAD_BYTES = 128 << 20;

/**
 * Starts the write-out of what a restore has written so far (one syncfs(2) on libuv's pool,
 * at most one at a time) each time FLUSH_AHEAD_BYTES more were written, so that the disk
 * writes while the restore still reads, checks and creates files, and the syncfs that ends
 * the restore waits for little. The kernel's flusher does the writing, in large batches; a
 * write-out per file (sync_file_range) cost the writer's threads a device notification each.
 * syncfs reports a write-out error only once per descriptor: the first one any of these
 * meets is kept and thrown by settle(), so the restore still fails on it.
 */
export class FlushAhead {
  private since = 0;
  private running: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(private readonly fd: number, private readonly dir: string, private readonly every = FLUSH_AHEAD_BYTES,
    private readonly sync: (fd: number, dir: string) => Promise<void> = syncFilesystem) {}

  wrote(bytes: number): void {
    this.since += bytes;
    if (this.since < this.every || this.running) return;
    this.since = 0;
    this.running = this.sync(this.fd, this.dir).catch((err: unknown) => { this.failure ??= err as Error; }).finally(() => { this.running = null; });
  }

  /** Waits for the write-out under way; throws the first one that failed. */
  async settle(): Promise<void> {
    await this.running;
    if (this.failure) throw this.failure;
  }
}
