import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';

const WORKER = new URL('./tar-hash-worker.js', import.meta.url);
/** Bytes handed to the thread at once (one copy into a batch, then transferred, not copied). */
const BATCH = 1 << 20;
/** At most this much waits for the thread before the stream stops taking more. */
const IN_FLIGHT = 8 << 20;

interface Reply { ack: number; hashes: [number, Uint8Array][]; whole?: string | null; done?: boolean }

/**
 * The per-file SHA-256 of a tar stream (TarContentHashes), and with `whole` the SHA-256 of the
 * whole stream, computed in a worker thread of root: the main thread only copies the bytes
 * into batches and goes on reading and writing while a second core hashes. The hashes are
 * still root's, of the bytes root stores. `stream()` is the stage to put in the pipeline;
 * `finished()` resolves once every byte is hashed, with the whole stream's hash.
 */
export class TarHashThread {
  private readonly worker: Worker;
  private readonly hashes = new Map<number, Buffer>();
  private batch = Buffer.allocUnsafe(BATCH);
  private used = 0;
  private inFlight = 0;
  private wakeUp: (() => void) | null = null;
  private failure: Error | null = null;
  private complete = false;
  private readonly done: Promise<string | null>;

  constructor(opts: { whole: boolean }) {
    this.worker = new Worker(WORKER, { workerData: { whole: opts.whole } });
    this.done = new Promise<string | null>((resolve, reject) => {
      this.worker.on('message', (m: Reply) => {
        this.inFlight -= m.ack;
        for (const [offset, hash] of m.hashes) this.hashes.set(offset, Buffer.from(hash));
        if (m.done) { this.complete = true; resolve(m.whole ?? null); void this.worker.terminate(); }
        this.wake();
      });
      this.worker.on('error', (err) => { this.failure = err; reject(err); this.wake(); });
      this.worker.on('exit', () => {
        if (this.complete) return;
        this.failure ??= new Error('the hashing thread stopped');
        reject(this.failure);
        this.wake();
      });
    });
    this.done.catch(() => undefined);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private send(): void {
    if (this.used === 0) return;
    const full = this.batch.buffer.slice(this.batch.byteOffset, this.batch.byteOffset + this.used);
    this.worker.postMessage(full, [full]);
    this.inFlight += this.used;
    this.batch = Buffer.allocUnsafe(BATCH);
    this.used = 0;
  }

  private add(chunk: Buffer): void {
    let o = 0;
    while (o < chunk.length) {
      const n = chunk.copy(this.batch, this.used, o);
      this.used += n;
      o += n;
      if (this.used === BATCH) this.send();
    }
  }

  /** The hash of the file whose headers start at `offset`, once the thread has passed its content; forgotten once taken. */
  takeHash(offset: number): Buffer | undefined {
    const h = this.hashes.get(offset);
    if (h) this.hashes.delete(offset);
    return h;
  }

  stream(): Transform {
    const self = this;
    const wait = async (): Promise<void> => {
      while (self.inFlight > IN_FLIGHT && !self.failure) await new Promise<void>((r) => { self.wakeUp = r; });
      if (self.failure) throw self.failure;
    };
    return new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        self.add(chunk);
        if (self.inFlight <= IN_FLIGHT) { cb(null, chunk); return; }
        wait().then(() => cb(null, chunk), cb);
      },
      flush(cb: TransformCallback) {
        self.send();
        self.worker.postMessage(null);
        cb();
      },
    });
  }

  /** Every byte hashed: the whole stream's SHA-256 (hex) when asked for, else null. */
  finished(): Promise<string | null> {
    return this.done;
  }

  stop(): void {
    void this.worker.terminate();
  }
}
