import crypto from 'node:crypto';
import { StreamWriter } from '../util/stream-writer.js';
import { InFlight } from '../util/in-flight.js';
import type { Destination, HardLinks } from '../destinations/types.js';
import { NO_REF, type Entry } from './format/entry.js';
import { layout } from './snapshot-layout.js';
import type { PreviousBlobs } from './previous-blobs.js';

/**
 * Where the incremental structure puts content, as the records and content of the account
 * worker arrive: BlobSink (hard links) or ObjectSink (content objects, object-sink.ts).
 */
export interface ContentSink {
  /** A file record; `hasData`: its content follows, else it is unchanged (`entry.prevRef`). Sets `entry.dataRef`. */
  /** Returns a promise when the caller must wait before the next record (a sink may return one always). */
  begin(entry: Entry, hasData: boolean): Promise<void> | undefined;
  data(chunk: Buffer): Promise<void>;
  /**
   * The content is complete. Resolves once the sink has room for more work, with the content's
   * SHA-256, computed by root from the bytes it stores: a promise that settles when they are
   * written (rejected with the write's error).
   */
  endData(): Promise<{ hash: Promise<Buffer> }>;
  /** Waits for everything still in transfer. */
  finish(): Promise<void>;
  /** Stops the file in transfer; resolves once every write, link and removal already started has settled. */
  abort(): Promise<void>;
  /** Folders (from the destination root) whose entries must be flushed before the manifest. */
  folders(): string[];
  /** Bytes actually sent to the destination. */
  storedBytes(): number;
  /** Unchanged files linked to their previous copies so far (given to the destination to link). */
  linkedFiles?(): number;
}

/** Links and removals carry no data: many can be outstanding at once. */
const SMALL_OPERATIONS_IN_FLIGHT = 512;
/** Unchanged files linked by one call where the destination links blobs in batches. */
const LINK_BATCH = 256;
/** Content up to this size is gathered and written at once where the destination can (Destination.writeSmallFile). */
const SMALL_FILE = 1 << 20;
/**
 * Bytes of small files held for their writes at once, whatever their count: a destination may
 * take many small files in flight (Destination.smallFileParallelism), not as many of 1 MiB.
 */
const SMALL_BYTES_IN_FLIGHT = 32 << 20;

/**
 * Incremental content. An unchanged file keeps its blob number from the previous
 * snapshot and its blob is a hard link to the previous one; new content gets a number
 * above every previous one, so a new blob is never written into a shared inode.
 *
 * The links are made one per file, or, where the destination clones a tree on the
 * server in one operation, by cloning the previous `files/` and then removing the
 * blobs of files that changed or went away.
 *
 * The worker only names a previous blob by number, and only numbers present in the
 * previous index (each at most once) are accepted, so a worker cannot make root link
 * anything else.
 */
export class BlobSink implements ContentSink {
  private next: number;
  private readonly dirs = new Set<string>();
  private current: StreamWriter | null = null;
  /** SHA-256 of the content streamed to `current`. */
  private currentHash: crypto.Hash | null = null;
  /** A small file's blob and the content received for it so far. */
  private small: { rel: string; parts: Buffer[]; size: number } | null = null;
  private stored = 0;
  private readonly links = new InFlight(SMALL_OPERATIONS_IN_FLIGHT);
  private readonly writes: InFlight;
  private readonly smallWrites: InFlight;
  private readonly smallBytes = new InFlight(SMALL_BYTES_IN_FLIGHT);
  private readonly cloned: Promise<void> | null;
  /** Unchanged files' blob numbers waiting to be linked as one batch (HardLinks.linkBlobs). */
  private pendingLinks: number[] = [];
  private readonly linkedFolders = new Set<number>();
  private linked = 0;

  constructor(
    private readonly dest: Destination,
    private readonly hardLinks: HardLinks,
    private readonly dir: string,
    private readonly previous: { dir: string; blobs: PreviousBlobs; clone: boolean } | null,
  ) {
    let max = -1;
    for (const n of previous?.blobs ?? []) if (n > max) max = n;
    this.next = max + 1;
    this.writes = new InFlight(Math.max(1, dest.parallelism));
    this.smallWrites = new InFlight(Math.max(1, dest.smallFileParallelism ?? dest.parallelism));
    this.cloned = previous?.clone && previous.blobs.size > 0
      ? hardLinks.cloneTree(`${previous.dir}/${layout.data('incremental')}`, `${dir}/${layout.data('incremental')}`)
      : null;
    this.cloned?.catch(() => undefined);
  }

  private async ensureDir(n: number): Promise<void> {
    const d = layout.blobDir(n);
    if (this.dirs.has(d)) return;
    this.dirs.add(d);
    await this.dest.mkdir(`${this.dir}/${d}`);
  }

  /** Returns a promise only when there is something to wait for: an unchanged file is noted for its batch of links. */
  begin(entry: Entry, hasData: boolean): Promise<void> | undefined {
    if (entry.kind !== 'f') return undefined;
    const prevRef = entry.prevRef;
    entry.prevRef = NO_REF;
    // The clone makes `files/`: nothing may be written there before it is complete.
    if (this.cloned) return this.cloned.then(() => this.beginFile(entry, hasData, prevRef));
    return this.beginFile(entry, hasData, prevRef);
  }

  private beginFile(entry: Entry, hasData: boolean, prevRef: number): Promise<void> | undefined {
    if (hasData) return this.beginContent(entry);
    if (prevRef === NO_REF || !this.previous || !this.previous.blobs.take(prevRef)) {
      throw new Error(`the account worker referred to unknown previous content for ${JSON.stringify(entry.path)}`);
    }
    entry.dataRef = prevRef;
    if (this.cloned) return undefined;
    if (this.hardLinks.linkBlobs && prevRef < 2 ** 32) {
      // The folder is made by linkBlobs: only noted here for the flush (by number: no string per file).
      this.linkedFolders.add(Math.floor(prevRef / 1024));
      this.pendingLinks.push(prevRef);
      return this.pendingLinks.length >= LINK_BATCH ? this.linkPending() : undefined;
    }
    return this.linkOne(prevRef);
  }

  private async beginContent(entry: Entry): Promise<void> {
    const n = this.next++;
    entry.dataRef = n;
    await this.ensureDir(n);
    const rel = `${this.dir}/${layout.blob(n)}`;
    if (this.dest.writeSmallFile && entry.size <= SMALL_FILE) {
      this.small = { rel, parts: [], size: entry.size };
    } else {
      this.current = new StreamWriter(this.dest.createWriteStream(rel));
      this.currentHash = crypto.createHash('sha256');
    }
  }

  private async linkOne(prevRef: number): Promise<void> {
    await this.ensureDir(prevRef);
    this.linked++;
    await this.links.add(this.hardLinks.link(`${this.previous!.dir}/${layout.blob(prevRef)}`, `${this.dir}/${layout.blob(prevRef)}`));
  }

  async data(chunk: Buffer): Promise<void> {
    this.stored += chunk.length;
    // The worker sends exactly the size it announced (entry.ts): a small file stays small.
    if (this.small) {
      this.small.parts.push(chunk);
    } else {
      this.currentHash!.update(chunk);
      await this.current!.write(chunk);
    }
  }

  /** The file's write is not awaited here: the next files open and fill while it completes. */
  async endData(): Promise<{ hash: Promise<Buffer> }> {
    if (this.small) {
      const { rel, parts, size } = this.small;
      this.small = null;
      const written = this.dest.writeSmallFile!(rel, parts);
      await this.smallWrites.add(written);
      await this.smallBytes.add(written, size);
      return { hash: written };
    }
    const w = this.current!;
    const hash = this.currentHash!.digest();
    this.current = null;
    this.currentHash = null;
    const written = w.end().then(() => hash);
    await this.writes.add(written);
    return { hash: written };
  }

  private async linkPending(): Promise<void> {
    if (this.pendingLinks.length === 0) return;
    const blobs = Uint32Array.from(this.pendingLinks);
    this.pendingLinks = [];
    this.linked += blobs.length;
    const data = layout.data('incremental');
    await this.links.add(this.hardLinks.linkBlobs!(`${this.previous!.dir}/${data}`, `${this.dir}/${data}`, blobs));
  }

  async finish(): Promise<void> {
    await this.linkPending();
    if (this.cloned) {
      await this.cloned;
      for (const n of this.previous!.blobs.untaken()) await this.links.add(this.dest.remove(`${this.dir}/${layout.blob(n)}`));
    }
    await this.writes.drain();
    await this.smallWrites.drain();
    await this.smallBytes.drain();
    await this.links.drain();
  }

  async abort(): Promise<void> {
    this.small = null;
    this.pendingLinks = [];
    this.current?.destroy();
    await Promise.all([this.cloned?.catch(() => undefined), this.writes.settle(), this.smallWrites.settle(), this.smallBytes.settle(), this.links.settle()]);
  }

  /** The folders this sink made or filled: the snapshot's `files/` and its buckets. */
  folders(): string[] {
    // An account without files has no `files/` folder at all.
    for (const f of this.linkedFolders) this.dirs.add(layout.blobDir(f * 1024));
    if (this.dirs.size === 0 && !this.cloned) return [];
    return [layout.data('incremental'), ...this.dirs].map((f) => `${this.dir}/${f}`);
  }

  storedBytes(): number {
    return this.stored;
  }

  /** Links handed to the destination (a batch counts once it is), not those gathered for the next batch. */
  linkedFiles(): number {
    return this.linked;
  }
}
