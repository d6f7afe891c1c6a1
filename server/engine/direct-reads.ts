import type { Destination, FileReader } from '../destinations/types.js';
import type { Structure } from '../store/jobs.js';
import type { Entry } from './format/entry.js';
import { layout } from './snapshot-layout.js';
import { SnapshotInputError } from './untrusted-input.js';

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

  constructor(
    private readonly openForReads: NonNullable<Destination['openForReads']>,
    private readonly dir: string,
    private readonly structure: Structure,
    private readonly what: (rel: string) => string,
  ) {}

  private open(rel: string): FileReader {
    const opened = this.openForReads(`${this.dir}/${rel}`);
    if (opened.type === 'file') return opened.reader;
    if (opened.type === 'missing') throw new Error(`${this.what(rel)}: not found on the destination: the destination copy is damaged`);
    throw new SnapshotInputError(`${this.what(rel)} is not a regular file on the destination (${opened.type}): refused`);
  }

  /** The `source.size` bytes at `start` of the file's blob (or of the archive). */
  *content(source: Entry, start: number): Generator<{ type: 'data'; chunk: Buffer }> {
    const blob = this.structure === 'incremental';
    const reader = blob ? this.open(layout.blob(source.dataRef)) : (this.archive ??= this.open(layout.data(this.structure)));
    try {
      let got = 0;
      while (got < source.size) {
        const chunk = reader.read(start + got, Math.min(PIECE, source.size - got));
        if (chunk.length === 0) throw new Error(`snapshot content is short for ${JSON.stringify(source.path)}: the destination copy is damaged`);
        got += chunk.length;
        yield { type: 'data', chunk };
      }
    } finally {
      if (blob) reader.close();
    }
  }

  close(): void {
    this.archive?.close();
    this.archive = null;
  }
}
