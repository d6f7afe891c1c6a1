import fs from 'node:fs';
import type { Destination, FileReader } from '../destinations/types.js';
import type { Structure } from '../store/jobs.js';
import type { Entry } from './format/entry.js';
import { layout } from './snapshot-layout.js';
import { shortContentError, SnapshotInputError } from './untrusted-input.js';
import { closeQuietly } from '../util/close-fd.js';

/** Content is handed on in pieces of at most this size (each a new Buffer the consumer may keep). */
const PIECE = 1 << 20;

/**
 * Content of a snapshot's files through Destination.openForReads: each blob (incremental)
 * opened, read and closed synchronously, or the archive's tar opened once and read by range.
 * The same refusals as the streamed path: a blob that is missing is damage, one that is not
 * a regular file (a link, a fifo, a device) is refused and never opened.
 */
export class DirectReads {
  private archive: FileReader | null = null;
  private readonly lent: number[] = [];

  constructor(
    private readonly openForReads: NonNullable<Destination['openForReads']>,
    private readonly dir: string,
    private readonly structure: Structure,
    private readonly what: (rel: string) => string,
    private readonly openManyForReads: Destination['openManyForReads'] = undefined,
  ) {}

  private open(rel: string): FileReader {
    const opened = this.openForReads(`${this.dir}/${rel}`);
    if (opened.type === 'file') return opened.reader;
    throw this.refusal(rel, opened.type);
  }

  /** Why a stored file that is not a regular file is not read: missing is damage, anything else refused. */
  private refusal(rel: string, type: 'dir' | 'link' | 'other' | 'missing'): Error {
    if (type === 'missing') return new Error(`${this.what(rel)}: not found on the destination: the destination copy is damaged`);
    return new SnapshotInputError(`${this.what(rel)} is not a regular file on the destination (${type}): refused`);
  }

  /**
   * descriptor() for the blobs of many files of an incremental snapshot, with their folders'
   * files opened in one job each (Destination.openManyForReads, off the event loop), with the
   * same refusals and the same length check. In order: the descriptors of the files before the
   * first that fails (`error`, null when none did), each the caller's to close; the others'
   * are closed here. Where the driver cannot, the blobs are opened one by one (descriptor()).
   */
  async blobDescriptors(sources: readonly Entry[]): Promise<{ fds: number[]; error: Error | null }> {
    const fds: number[] = [];
    const many = this.openManyForReads;
    // Runs of consecutive sources whose blobs share a folder: one call each, all at once.
    const runs: { folder: string; from: number; names: string[] }[] = [];
    for (let i = 0; i < sources.length; i++) {
      const blob = layout.blob(sources[i]!.dataRef);
      const cut = blob.lastIndexOf('/');
      const folder = blob.slice(0, cut);
      const last = runs[runs.length - 1];
      if (last && last.folder === folder) last.names.push(blob.slice(cut + 1));
      else runs.push({ folder, from: i, names: [blob.slice(cut + 1)] });
    }
    const opened = many ? await Promise.allSettled(runs.map((r) => many(`${this.dir}/${r.folder}`, r.names))) : null;
    let error: Error | null = null;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      const got = opened?.[r];
      for (let k = 0; k < run.names.length; k++) {
        const source = sources[run.from + k]!;
        const o = got?.status === 'fulfilled' ? got.value?.[k] : undefined;
        if (error) {
          if (o?.type === 'file') closeQuietly(o.fd);
          continue;
        }
        if (got?.status === 'rejected') { error = got.reason as Error; continue; }
        if (!o) {
          // The driver could not: one by one, with the same checks.
          try {
            const d = this.descriptor(source, 0);
            if (d) fds.push(d.fd);
            else error = new Error('descriptor reads are not supported by this destination');
          } catch (err) {
            error = err as Error;
          }
          continue;
        }
        const rel = layout.blob(source.dataRef);
        if (o.type === 'file') {
          if (o.size < source.size) {
            closeQuietly(o.fd);
            error = shortContentError(source.path);
          } else {
            fds.push(o.fd);
          }
        } else if (o.type === 'error') {
          error = o.error;
        } else {
          error = this.refusal(rel, o.type);
        }
      }
    }
    return { fds, error };
  }

  /** The `source.size` bytes at `start` of the file's blob (or of the archive). */
  *content(source: Entry, start: number): Generator<{ type: 'data'; chunk: Buffer }> {
    const blob = this.structure === 'incremental';
    const reader = blob ? this.open(layout.blob(source.dataRef)) : (this.archive ??= this.open(layout.data(this.structure)));
    try {
      let got = 0;
      while (got < source.size) {
        const chunk = reader.read(start + got, Math.min(PIECE, source.size - got));
        if (chunk.length === 0) throw shortContentError(source.path);
        got += chunk.length;
        yield { type: 'data', chunk };
      }
    } finally {
      if (blob) reader.close();
    }
  }

  /**
   * A descriptor of the stored file that holds `source`'s content, checked to hold at least
   * its `source.size` bytes from `start` (else the copy is short: damaged). A blob's is the
   * caller's to close (`owned`); the archive's stays this reader's, and is given only the
   * first time (`fd` -1 after: the receiver keeps the first). null: this driver cannot.
   */
  descriptor(source: Entry, start: number): { fd: number; owned: boolean } | null {
    if (this.structure === 'incremental') {
      const reader = this.open(layout.blob(source.dataRef));
      if (!reader.release) { reader.close(); return null; }
      if (reader.size < start + source.size) { reader.close(); throw shortContentError(source.path); }
      return { fd: reader.release(), owned: true };
    }
    const first = this.archive === null;
    const reader = (this.archive ??= this.open(layout.data(this.structure)));
    if (first && !reader.release) return null;
    // Compressed: `start` is in the inflated stream (the reader checks the length as it inflates).
    if (this.structure !== 'compressed' && reader.size < start + source.size) throw shortContentError(source.path);
    if (!first) return { fd: -1, owned: false };
    // Kept open here (closed by close()); the descriptor is only lent.
    const fd = reader.release!();
    this.archive = { size: reader.size, read: () => { throw new Error('lent'); }, close: () => fs.closeSync(fd) };
    return { fd, owned: false };
  }

  /**
   * A descriptor of the snapshot's file `rel`, opened with the same refusals as content
   * (a regular file, no link followed), kept open here until close(): it is only lent.
   * null: this driver cannot.
   */
  lend(rel: string): number | null {
    const reader = this.open(rel);
    if (!reader.release) { reader.close(); return null; }
    const fd = reader.release();
    this.lent.push(fd);
    return fd;
  }

  close(): void {
    this.archive?.close();
    this.archive = null;
    for (const fd of this.lent.splice(0)) fs.closeSync(fd);
  }
}
