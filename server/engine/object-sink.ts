import crypto from 'node:crypto';
import { StreamWriter } from '../util/stream-writer.js';
import { InFlight } from '../util/in-flight.js';
import type { Destination } from '../destinations/types.js';
import { NO_REF, type Entry } from './format/entry.js';
import type { ContentSink } from './files-sink.js';
import { layout } from './snapshot-layout.js';
import type { PreviousBlobs } from './previous-blobs.js';

/**
 * Content up to this size is held in memory until its hash is known, then written once under
 * its final name; larger content goes to a staging name inside the snapshot's partial folder
 * and is renamed (on an object store: copied on the server) once hashed. Memory stays within
 * `parallelism` times this.
 */
export const SMALL_OBJECT_BYTES = 8 << 20;

/**
 * Incremental content on a destination without hard links (docs/snapshot-format.md, "Object
 * layout"). New content becomes the object `<account>/objects/<hh>/<sha256>` unless the account
 * already has that object (a file copied or moved in the home is not sent again); an unchanged
 * file refers to the object its previous entry names, through the hash carried over with it,
 * and nothing is sent for it at all.
 *
 * Numbering follows BlobSink: an unchanged file keeps its previous entry's number (so the hash
 * that goes with it is found), new content gets a number above every previous one. The worker
 * can only name numbers present in the previous index, each at most once.
 */
export class ObjectSink implements ContentSink {
  private next: number;
  private readonly dirs = new Set<string>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** SHA-256 of the content arriving, computed by root as it passes. */
  private hash: crypto.Hash | null = null;
  private staging: { rel: string; writer: StreamWriter } | null = null;
  private stagings = 0;
  private stored = 0;
  private readonly counts = { written: 0, alreadyStored: 0 };
  private readonly writes: InFlight;

  constructor(
    private readonly dest: Destination,
    private readonly account: string,
    private readonly dir: string,
    private readonly previous: { blobs: PreviousBlobs } | null,
  ) {
    let max = -1;
    for (const n of previous?.blobs ?? []) if (n > max) max = n;
    this.next = max + 1;
    this.writes = new InFlight(Math.max(1, dest.parallelism));
  }

  async begin(entry: Entry, hasData: boolean): Promise<void> {
    if (entry.kind !== 'f') return;
    const prevRef = entry.prevRef;
    entry.prevRef = NO_REF;
    if (hasData) {
      entry.dataRef = this.next++;
      this.chunks = [];
      this.buffered = 0;
      this.hash = crypto.createHash('sha256');
      return;
    }
    if (prevRef === NO_REF || !this.previous || !this.previous.blobs.take(prevRef)) {
      throw new Error(`the account worker referred to unknown previous content for ${JSON.stringify(entry.path)}`);
    }
    entry.dataRef = prevRef;
  }

  async data(chunk: Buffer): Promise<void> {
    this.buffered += chunk.length;
    this.hash!.update(chunk);
    if (this.staging) {
      await this.staging.writer.write(chunk);
      return;
    }
    this.chunks.push(chunk);
    if (this.buffered <= SMALL_OBJECT_BYTES) return;
    const rel = layout.staging(this.dir, this.stagings++);
    this.staging = { rel, writer: new StreamWriter(this.dest.createWriteStream(rel)) };
    const held = this.chunks;
    this.chunks = [];
    for (const c of held) await this.staging.writer.write(c);
  }

  /** The object's name is its content's hash: it is known here, before anything is stored. */
  async endData(): Promise<{ hash: Promise<Buffer> }> {
    const hash = this.hash!.digest();
    this.hash = null;
    await this.store(hash);
    return { hash: Promise.resolve(hash) };
  }

  private async store(hash: Buffer): Promise<void> {
    const hex = hash.toString('hex');
    const key = layout.object(this.account, hex);
    const size = this.buffered;
    const staged = this.staging;
    this.staging = null;
    if (staged) {
      const body = staged.writer.end();
      await this.writes.add(this.place(hex, key, size, async () => { await body; await this.dest.rename(staged.rel, key); },
        async () => { await body; await this.dest.remove(staged.rel); }));
      return;
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    // Empty content needs no object: a restore writes an empty file from the entry alone.
    if (size === 0) return;
    await this.writes.add(this.place(hex, key, size, () => this.dest.writeFile(key, body), null));
  }

  /**
   * An object already there is the same content (its name is the content's hash): it is
   * not sent again. It cannot be swept away before this run commits: no sweep runs while
   * this run holds its lease (object-lease.ts).
   */
  private async place(hex: string, key: string, size: number, write: () => Promise<void>, discard: (() => Promise<void>) | null): Promise<void> {
    if (await this.dest.exists(key)) {
      this.counts.alreadyStored++;
      await discard?.();
      return;
    }
    // Writing makes the folders it needs (no mkdir: on an object store, one request less per folder).
    this.dirs.add(layout.objectDir(this.account, hex));
    await write();
    this.stored += size;
    this.counts.written++;
  }

  async finish(): Promise<void> {
    await this.writes.drain();
    // Every staged content was renamed to its object (or dropped): the folder is empty.
    if (this.stagings > 0) await this.dest.remove(`${this.dir}/staging`);
  }

  async abort(): Promise<void> {
    this.staging?.writer.destroy();
    this.chunks = [];
    await this.writes.settle();
  }

  folders(): string[] {
    if (this.dirs.size === 0) return [];
    return [layout.objectsDir(this.account), ...this.dirs];
  }

  storedBytes(): number {
    return this.stored;
  }

  /** Objects written by this run, and new content found already stored. */
  objectCounts(): { written: number; alreadyStored: number } {
    return { ...this.counts };
  }
}
