import type { Readable } from 'node:stream';
import type { Entry } from './format/entry.js';
import type { Selected } from './selection.js';

/**
 * Files of at most this size are fetched ahead; larger ones are streamed when their turn comes.
 * Over SSH or S3 a small file costs a few round trips (open, read, close; a GET), so fetching
 * them one after the other leaves the connection idle most of the time.
 */
export const READ_AHEAD_MAX_FILE = 1 << 20;
const READ_AHEAD_FILES = 32;
const READ_AHEAD_BYTES = 16 << 20;
/**
 * With a batch reader the window holds more files and is refilled only once a quarter of it
 * is taken, so that one request fetches many files (refilled one file at a time, as the
 * per-file reads are, a batch held one or two files: slower than SFTP, docs/benchmarks.md),
 * while three quarters are still coming: a remote `tar -c` takes a while to start (refilled
 * at half, root waited 8 s of 44 for content; at a quarter, 5.6 s; 32 MiB instead of 16
 * waited 3.3 s but added 15-25 MB to root's peak, which the SSH restore's 300 MB goal has no
 * room for).
 */
const BATCH_FILES = 512;
const BATCH_BYTES = READ_AHEAD_BYTES;

/** Fetches several files at once: one promise per source, in order (as ReadAhead's open gives each). */
export type OpenBatch = (sources: Entry[]) => Promise<Buffer>[];

/** The entry whose content a selected file restores (itself, or the file a hard link points at). */
const sourceOf = (sel: Selected): Entry => sel.contentFrom ?? sel.entry;

const fetched = (sel: Selected): boolean => sel.entry.kind === 'f' && sourceOf(sel).size > 0 && sourceOf(sel).size <= READ_AHEAD_MAX_FILE;

/**
 * Reads the content of the small files of `selected` ahead of the position being consumed, up
 * to 32 files and 16 MiB at once, each with `open(source)` (its first `source.size` bytes,
 * or a stream of at least them); with `openBatch`, up to 512 files and 16 MiB, many at a time
 * in one call. `take(i)` hands the chunks of file `i` over once they are all read;
 * a failed read fails its own `take` only, when its turn comes.
 */
export class ReadAhead {
  private readonly pending = new Map<number, Promise<Buffer[]>>();
  private bytes = 0;
  private scanned = 0;

  private readonly maxFiles: number;
  private readonly maxBytes: number;

  constructor(private readonly selected: readonly Selected[], private readonly open: (source: Entry) => Promise<Buffer | Readable | AsyncIterable<Buffer>>,
    private readonly openBatch: OpenBatch | null = null) {
    this.maxFiles = openBatch ? BATCH_FILES : READ_AHEAD_FILES;
    this.maxBytes = openBatch ? BATCH_BYTES : READ_AHEAD_BYTES;
  }

  /** Whether file `i` is one that is read ahead (take gives its content). */
  covers(i: number): boolean {
    return fetched(this.selected[i]!);
  }

  /** The chunks of file `i` (covers(i) must be true), and more reads started behind it. */
  async take(i: number): Promise<Buffer[]> {
    this.fill(i);
    const p = this.pending.get(i)!;
    try {
      return await p;
    } finally {
      this.pending.delete(i);
      this.bytes -= sourceOf(this.selected[i]!).size;
      this.fill(i + 1);
    }
  }

  private fill(from: number): void {
    if (this.scanned < from) this.scanned = from;
    // A batch starts only where a quarter of the window is free (or nothing is pending).
    if (this.openBatch && this.pending.size > 0 && (this.pending.size > this.maxFiles * 3 / 4 || this.bytes > this.maxBytes * 3 / 4)) return;
    const batch: { i: number; source: Entry }[] = [];
    while (this.scanned < this.selected.length && this.pending.size + batch.length < this.maxFiles && this.bytes < this.maxBytes) {
      const i = this.scanned++;
      const sel = this.selected[i]!;
      if (!fetched(sel)) continue;
      const source = sourceOf(sel);
      this.bytes += source.size;
      if (this.openBatch) { batch.push({ i, source }); continue; }
      this.track(i, this.read(source));
    }
    if (batch.length === 0) return;
    let got: Promise<Buffer>[];
    try {
      got = this.openBatch!(batch.map((b) => b.source));
    } catch (err) {
      got = batch.map(() => Promise.reject(err as Error));
    }
    for (const [k, b] of batch.entries()) this.track(b.i, got[k]!.then((data) => [data]));
  }

  private track(i: number, p: Promise<Buffer[]>): void {
    // Failures are reported by take() when that file's turn comes; one never taken is dropped.
    p.catch(() => undefined);
    this.pending.set(i, p);
  }

  private async read(source: Entry): Promise<Buffer[]> {
    const chunks: Buffer[] = [];
    let got = 0;
    const stream = await this.open(source);
    if (Buffer.isBuffer(stream)) return [stream];
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      // The stream is a range of the file's size, so it normally ends by itself (stopping one
      // early costs an AbortError with its stack); a longer one is never read further.
      if (got > source.size) break;
    }
    return chunks;
  }
}
