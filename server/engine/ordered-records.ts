import type { Entry } from './format/entry.js';

/**
 * The index records of a backup, in walk order, while the hashes of the files among them are
 * still on their way (the content is being written and hashed off the event loop). A record
 * is written once its hash has arrived and every record before it is written; at most `limit`
 * wait. A write that failed fails the run when its record's turn comes (or sooner, through
 * the sink).
 */
export class OrderedRecords {
  private readonly queue: { entry: Entry; hash: Promise<Buffer> | null; ready: boolean }[] = [];

  /** `write` returns a promise only when the caller must wait (a buffer being sent on). */
  constructor(private readonly write: (e: Entry) => Promise<void> | undefined, private readonly limit = 256) {}

  /**
   * `hash`: the file's content hash to come; null when the record is complete as it is.
   * Returns a promise only when there is something to wait for: a complete record with none
   * before it (an unchanged file, a folder: nearly every record of a second backup) is
   * written at once, without a promise of its own.
   */
  push(entry: Entry, hash: Promise<Buffer> | null): Promise<void> | undefined {
    if (hash === null && this.queue.length === 0) return this.write(entry);
    const item = { entry, hash, ready: hash === null };
    // A rejection is handled here and thrown again when the record's turn comes.
    hash?.then(() => { item.ready = true; }, () => { item.ready = true; });
    this.queue.push(item);
    // Waiting for the first's hash, with room for more: nothing to write yet, nothing to wait for.
    if (!this.queue[0]!.ready && this.queue.length < this.limit) return undefined;
    return this.writeReady();
  }

  private async writeReady(): Promise<void> {
    while (this.queue.length > 0 && (this.queue[0]!.ready || this.queue.length >= this.limit)) await this.writeFirst();
  }

  /** Writes every record still waiting, in order. */
  async finish(): Promise<void> {
    while (this.queue.length > 0) await this.writeFirst();
  }

  private async writeFirst(): Promise<void> {
    const item = this.queue.shift()!;
    if (item.hash) item.entry.hash = await item.hash;
    await this.write(item.entry);
  }
}
