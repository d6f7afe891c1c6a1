import { Writable, type Readable } from 'node:stream';
import type { Destination, DirEntry, SpaceInfo } from '../../server/destinations/types.js';

/**
 * A destination with the hard-link capability taken away, counting what is written through it
 * (content bytes, and the writing requests an object store would receive). A unit-level
 * stand-in only: the object layout's proof runs against a real Ceph Object Gateway
 * (test/object-incremental.test.ts).
 */
export class LinkFree implements Destination {
  readonly type: string;
  readonly parallelism: number;
  readonly sent = { writes: 0, bytes: 0, renames: 0, removes: 0 };

  constructor(private readonly inner: Destination) {
    this.type = inner.type;
    this.parallelism = inner.parallelism;
  }

  open(): Promise<void> { return this.inner.open(); }
  close(): Promise<void> { return this.inner.close(); }
  mkdir(rel: string): Promise<void> { return this.inner.mkdir(rel); }
  writeFile(rel: string, data: Buffer | string): Promise<void> {
    this.sent.writes++;
    this.sent.bytes += Buffer.byteLength(data);
    return this.inner.writeFile(rel, data);
  }
  createWriteStream(rel: string): Writable {
    this.sent.writes++;
    const target = this.inner.createWriteStream(rel);
    const sent = this.sent;
    // Finishes only once the driver's own stream has: the file is then complete.
    const w = new Writable({
      write(chunk: Buffer, _e, done) {
        sent.bytes += chunk.length;
        if (target.write(chunk)) done(); else target.once('drain', () => done());
      },
      final(done) {
        target.once('finish', () => done());
        target.once('error', (err) => done(err));
        target.end();
      },
      destroy(err, done) {
        target.destroy(err ?? undefined);
        done(err);
      },
    });
    target.on('error', (err) => w.destroy(err));
    return w;
  }
  readFile(rel: string): Promise<Buffer> { return this.inner.readFile(rel); }
  createReadStream(rel: string, range?: { start: number; end?: number }): Readable { return this.inner.createReadStream(rel, range); }
  exists(rel: string): Promise<boolean> { return this.inner.exists(rel); }
  list(rel: string): Promise<DirEntry[]> { return this.inner.list(rel); }
  rename(from: string, to: string): Promise<void> { this.sent.renames++; return this.inner.rename(from, to); }
  remove(rel: string): Promise<void> { this.sent.removes++; return this.inner.remove(rel); }
  space(): Promise<SpaceInfo> { return this.inner.space(); }
  flush(dirs: string[]): Promise<void> { return this.inner.flush(dirs); }
}
