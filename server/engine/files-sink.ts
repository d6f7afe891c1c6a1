import { StreamWriter } from '../util/stream-writer.js';
import type { Destination } from '../destinations/types.js';
import { NO_REF, type Entry } from './format/entry.js';
import { layout } from './snapshot-layout.js';

/**
 * Incremental: new content becomes a new blob; unchanged content is a hard link to the
 * previous snapshot's blob. The worker only names a previous blob by number, and only
 * numbers present in the previous index are accepted, so a worker cannot make root
 * link anything else.
 */
export class BlobSink {
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
