import { StreamWriter } from '../util/stream-writer.js';
import type { Destination } from '../destinations/types.js';
import { NO_REF, type Entry } from './format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from './format/tar.js';
import { layout } from './snapshot-layout.js';

/** Where file content goes while a backup runs: one blob per file, or one tar stream. */
export interface FilesSink {
  /** Called for every entry in walk order; sets entry.dataRef. */
  begin(entry: Entry, hasData: boolean): Promise<void>;
  data(chunk: Buffer): Promise<void>;
  endData(): Promise<void>;
  finish(): Promise<void>;
  abort(): void;
  storedBytes(): number;
}

/**
 * Incremental: new content becomes a new blob; unchanged content is a hard link to the
 * previous snapshot's blob. The worker only names a previous blob by number, and only
 * numbers present in the previous index are accepted, so a worker cannot make root
 * link anything else.
 */
export class BlobSink implements FilesSink {
  private next = 0;
  private readonly dirs = new Set<string>();
  private current: StreamWriter | null = null;
  private stored = 0;
  private readonly pendingLinks: Promise<void>[] = [];

  constructor(
    private readonly dest: Destination,
    private readonly dir: string,
    private readonly previous: { dir: string; blobs: Set<number> } | null,
  ) {}

  private async ensureDir(n: number): Promise<void> {
    const d = layout.blobDir(n);
    if (this.dirs.has(d)) return;
    this.dirs.add(d);
    await this.dest.mkdir(`${this.dir}/${d}`);
  }

  async begin(entry: Entry, hasData: boolean): Promise<void> {
    if (entry.kind !== 'f') return;
    const prevRef = entry.prevRef;
    entry.prevRef = NO_REF;
    if (hasData) {
      const n = this.next++;
      entry.dataRef = n;
      await this.ensureDir(n);
      this.current = new StreamWriter(this.dest.createWriteStream(`${this.dir}/${layout.blob(n)}`));
      return;
    }
    if (prevRef === NO_REF || !this.previous || !this.previous.blobs.has(prevRef)) {
      throw new Error(`the account worker referred to unknown previous content for ${JSON.stringify(entry.path)}`);
    }
    const n = this.next++;
    entry.dataRef = n;
    await this.ensureDir(n);
    const link = this.dest.link(`${this.previous.dir}/${layout.blob(prevRef)}`, `${this.dir}/${layout.blob(n)}`);
    this.pendingLinks.push(link);
    if (this.pendingLinks.length >= 64) await Promise.all(this.pendingLinks.splice(0));
  }

  async data(chunk: Buffer): Promise<void> {
    this.stored += chunk.length;
    await this.current!.write(chunk);
  }

  async endData(): Promise<void> {
    const w = this.current;
    this.current = null;
    if (w) await w.end();
  }

  async finish(): Promise<void> {
    await Promise.all(this.pendingLinks.splice(0));
  }

  abort(): void {
    this.current?.destroy();
  }

  storedBytes(): number {
    return this.stored;
  }
}

/** Archive and compressed: entries written as one GNU tar stream; dataRef = offset of the entry's headers. */
export class TarSink implements FilesSink {
  private offset = 0;
  private pad = 0;

  constructor(private readonly out: StreamWriter, private readonly counted: () => number) {}

  async begin(entry: Entry): Promise<void> {
    entry.prevRef = NO_REF;
    if (entry.kind === 'f' || entry.kind === 'd' || entry.kind === 'l' || entry.kind === 'h' || entry.kind === 'p') {
      entry.dataRef = this.offset;
      const headers = tarHeaders(entry.path === '' ? { ...entry, path: '.' } : entry);
      this.offset += headers.length;
      this.pad = entry.kind === 'f' ? tarPadding(entry.size) : 0;
      await this.out.write(headers);
    }
  }

  async data(chunk: Buffer): Promise<void> {
    this.offset += chunk.length;
    await this.out.write(chunk);
  }

  async endData(): Promise<void> {
    if (this.pad > 0) {
      await this.out.write(Buffer.alloc(this.pad));
      this.offset += this.pad;
      this.pad = 0;
    }
  }

  async finish(): Promise<void> {
    await this.out.write(TAR_END);
    await this.out.end();
  }

  abort(): void {
    this.out.destroy();
  }

  storedBytes(): number {
    return this.counted();
  }
}
