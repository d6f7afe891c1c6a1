import type { Readable } from 'node:stream';
import type { Entry } from './format/entry.js';
import type { Selected } from './selection.js';
import type { ReadFlow } from '../destinations/types.js';

/**
 * Files of at most this size are fetched ahead; larger ones are streamed when their turn comes.
 * Over SSH or S3 a small file costs a few round trips (open, read, close; a GET), so fetching
 * them one after the other leaves the connection idle most of the time.
 */
export const READ_AHEAD_MAX_FILE = 1 << 20;
const READ_AHEAD_FILES = 32;
const READ_AHEAD_BYTES = 16 << 20;
/**
 * With a batch reader, one call asks for up to this many files (a remote `tar -c` of them all,
 * one stream) and the next call is made once the last one's files have all come: no gap of a
 * command's start per few megabytes (with batches of 16 MiB refilled at a quarter, a restore
 * over SSH ran about 100 remote tars, and root waited for content most of the time). The
 * memory is not the batch's: the driver reads on only while fewer than BATCH_READY_BYTES of
 * fetched files wait to be taken (ReadFlow).
 */
const BATCH_FILES = 2048;
/**
 * Fetched and not yet taken, at most (one file more may come): files held longer than two
 * young-generation collections reach the old generation, which only a full collection frees
 * (with 16 MiB held, root's peak over SSH was about 200 MiB, with 15-22 full collections for
 * external memory per restore).
 */
const BATCH_READY_BYTES = 4 << 20;

/**
 * Fetches several files at once: one promise per source, in order (as ReadAhead's open gives
 * each); reads on only while `flow.room()` says so.
 */
export type OpenBatch = (sources: Entry[], flow: ReadFlow) => Promise<Buffer | Buffer[]>[];

/** The entry whose content a selected file restores (itself, or the file a hard link points at). */
const sourceOf = (sel: Selected): Entry => sel.contentFrom ?? sel.entry;

const fetched = (sel: Selected): boolean => sel.entry.kind === 'f' && sourceOf(sel).size > 0 && sourceOf(sel).size <= READ_AHEAD_MAX_FILE;

/**
 * Reads the content of the small files of `selected` ahead of the position being consumed, up
 * to 32 files and 16 MiB at once, each with `open(source)` (its first `source.size` bytes,
 * or a stream of at least them); with `openBatch`, up to 2048 files in one call, read on while
 * fewer than 4 MiB of them wait to be taken. `take(i)` hands the chunks of file `i` over once
 * they are all read; a failed read fails its own `take` only, when its turn comes.
 */
export class ReadAhead implements ReadFlow {
  private readonly pending = new Map<number, Promise<Buffer[]>>();
  /** Per-file reads: bytes asked for and not taken. */
  private bytes = 0;
  private scanned = 0;
  /** Batch reads: files asked for and not come yet (the next call waits for 0). */
  private coming = 0;
  /** Batch reads: files come and not taken, and their bytes. */
  private readonly ready = new Map<number, number>();
  private readyBytes = 0;
  /** Batch reads: take() waits for a file not come yet (the driver must read on then, whatever is held). */
  private waiting = false;
  private gate: { promise: Promise<void>; open: () => void; stop: (err: Error) => void } | null = null;
  private closed = false;

  constructor(private readonly selected: readonly Selected[], private readonly open: (source: Entry) => Promise<Buffer | Readable | AsyncIterable<Buffer>>,
    private readonly openBatch: OpenBatch | null = null) {}

  /** Whether file `i` is one that is read ahead (take gives its content). */
  covers(i: number): boolean {
    return fetched(this.selected[i]!);
  }

  /** ReadFlow: whether a batch read may go on now, else when (rejected once the reader is closed). */
  room(): Promise<void> | null {
    if (this.closed) return Promise.reject(new Error('the restore stopped reading'));
    if (this.waiting || this.readyBytes < BATCH_READY_BYTES) return null;
    if (!this.gate) {
      let open!: () => void;
      let stop!: (err: Error) => void;
      const promise = new Promise<void>((resolve, reject) => { open = resolve; stop = reject; });
      promise.catch(() => undefined);
      this.gate = { promise, open, stop };
    }
    return this.gate.promise;
  }

  private openGate(): void {
    if (this.gate && (this.waiting || this.readyBytes < BATCH_READY_BYTES)) {
      const g = this.gate;
      this.gate = null;
      g.open();
    }
  }

  /**
   * Nothing more will be taken (the restore ended or stopped): batch reads held back stop
   * instead of waiting for room for ever (a remote tar would wait with them).
   */
  close(): void {
    this.closed = true;
    const g = this.gate;
    this.gate = null;
    g?.stop(new Error('the restore stopped reading'));
  }

  /** The chunks of file `i` (covers(i) must be true), and more reads started behind it. */
  async take(i: number): Promise<Buffer[]> {
    this.fill(i);
    const p = this.pending.get(i)!;
    if (this.openBatch && !this.ready.has(i)) {
      this.waiting = true;
      this.openGate();
    }
    try {
      return await p;
    } finally {
      this.waiting = false;
      this.pending.delete(i);
      const held = this.ready.get(i);
      if (held !== undefined) {
        this.ready.delete(i);
        this.readyBytes -= held;
        this.openGate();
      }
      if (!this.openBatch) this.bytes -= sourceOf(this.selected[i]!).size;
      this.fill(i + 1);
    }
  }

  private fill(from: number): void {
    if (this.scanned < from) this.scanned = from;
    if (this.openBatch) { this.fillBatch(); return; }
    while (this.scanned < this.selected.length && this.pending.size < READ_AHEAD_FILES && this.bytes < READ_AHEAD_BYTES) {
      const i = this.scanned++;
      const sel = this.selected[i]!;
      if (!fetched(sel)) continue;
      this.bytes += sourceOf(sel).size;
      this.track(i, this.read(sourceOf(sel)));
    }
  }

  /** The next batch, once the last one has all come. */
  private fillBatch(): void {
    if (this.coming > 0 || this.closed) return;
    const batch: { i: number; source: Entry }[] = [];
    while (this.scanned < this.selected.length && batch.length < BATCH_FILES) {
      const i = this.scanned++;
      const sel = this.selected[i]!;
      if (fetched(sel)) batch.push({ i, source: sourceOf(sel) });
    }
    if (batch.length === 0) return;
    let got: Promise<Buffer | Buffer[]>[];
    try {
      got = this.openBatch!(batch.map((b) => b.source), this);
    } catch (err) {
      got = batch.map(() => Promise.reject(err as Error));
    }
    this.coming = batch.length;
    for (const [k, b] of batch.entries()) {
      const p = got[k]!;
      const came = (): void => { if (--this.coming === 0) this.fillBatch(); };
      const parts = p.then((data) => (Array.isArray(data) ? data : [data]));
      parts.then((data) => {
        // Counted until taken (a file taken already, as soon as it came, is not).
        if (this.pending.has(b.i)) {
          let n = 0;
          for (const d of data) n += d.length;
          this.ready.set(b.i, n);
          this.readyBytes += n;
        }
        came();
      }, came);
      this.track(b.i, parts);
    }
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
