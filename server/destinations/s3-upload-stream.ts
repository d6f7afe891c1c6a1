import { PassThrough, Writable } from 'node:stream';
import type { Upload } from '@aws-sdk/lib-storage';
import { DestinationError } from './types.js';
import type { S3Kit } from './s3-client.js';
import { reportingPartFailures } from './s3-part-failures.js';

export interface UploadTarget {
  /** The client, once the SDK is loaded. */
  kit: Promise<S3Kit>;
  bucket: string;
  key: string;
  storageClass?: string;
  partSize: number;
  /** Parts of this object in transfer at once: memory use is about partSize × (queueSize + 1). */
  queueSize: number;
  /** For messages: the path relative to the destination. */
  what: string;
  describe: (err: unknown) => DestinationError;
  /** Called when a stream that failed or was destroyed may have left an incomplete multipart upload. */
  cleanUp: () => Promise<void>;
  /** Given, when the writer ends the stream, a promise of its completion (for the driver's flush). */
  completing: (done: Promise<void>) => void;
}

/**
 * A Writable whose bytes go to one object while they are written: one PUT when the whole
 * object fits in a part, otherwise a multipart upload whose parts are sent as they fill, so
 * memory stays bounded whatever the size. The object exists only once the stream has
 * finished (S3 makes an object visible only when its upload completes), which makes every
 * write atomic. On an error, or when destroyed before finishing, the multipart upload is
 * aborted, and nothing is left under the key.
 *
 * When finished, the object's size is checked with HeadObject and its ETag taken from there:
 * Ceph 16.2 answers CompleteMultipartUpload with an empty ETag.
 */
export class S3UploadStream extends Writable {
  private readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  private upload!: Upload;
  private done!: Promise<void>;
  private kit!: S3Kit;
  private written = 0;
  private failure: DestinationError | null = null;
  private waitingForDrain: ((err?: Error | null) => void) | null = null;
  private completed = false;
  /** The stored object's ETag, once finished. */
  etag: string | null = null;

  /** Settles when the stream has finished (the object is stored) or failed. */
  private readonly settled: Promise<void>;
  private announced = false;

  constructor(private readonly target: UploadTarget) {
    super({ highWaterMark: 1 << 20 });
    this.settled = new Promise<void>((resolve, reject) => {
      this.once('finish', () => resolve());
      this.once('error', reject);
      this.once('close', () => (this.writableFinished ? resolve() : reject(this.failure ?? new Error(`the write of ${target.what} was stopped`))));
    });
    this.settled.catch(() => { /* the driver's flush reports it */ });
  }

  /** Ending the stream tells the driver, whose flush then waits for it (the SDK may still be loading). */
  override end(...args: unknown[]): this {
    if (!this.announced) {
      this.announced = true;
      this.target.completing(this.settled);
    }
    return (Writable.prototype.end as (...a: unknown[]) => this).apply(this, args);
  }

  /** Runs before the first write (the stream buffers what is written meanwhile): loads the SDK and starts the upload. */
  override _construct(cb: (err?: Error | null) => void): void {
    this.target.kit.then((kit) => { this.start(kit); cb(); }, (err: Error) => cb(err));
  }

  private start(kit: S3Kit): void {
    const target = this.target;
    this.kit = kit;
    // A part that failed for good stops the upload now, not once the rest of the stream was sent.
    const client = reportingPartFailures(kit.client, kit.sdk, (err) => {
      this.failure ??= target.describe(err);
      void this.upload.abort();
    });
    this.upload = new kit.storage.Upload({
      client,
      params: { Bucket: target.bucket, Key: target.key, Body: this.body, ...(target.storageClass ? { StorageClass: target.storageClass as never } : {}) },
      partSize: target.partSize,
      queueSize: target.queueSize,
      leavePartsOnError: false,
    });
    this.done = this.upload.done().then(() => undefined, (err: unknown) => {
      this.failure ??= target.describe(err);
      const waiting = this.waitingForDrain;
      this.waitingForDrain = null;
      waiting?.(this.failure);
      throw this.failure;
    });
    this.done.catch(() => { /* reported through write, final or destroy */ });
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.written;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure) { cb(this.failure); return; }
    this.written += chunk.length;
    if (this.body.write(chunk)) { cb(); return; }
    this.waitingForDrain = cb;
    this.body.once('drain', () => {
      const waiting = this.waitingForDrain;
      this.waitingForDrain = null;
      waiting?.();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.body.end();
    const completed = this.done.then(async () => {
      const head = await this.kit.client.send(new this.kit.sdk.HeadObjectCommand({ Bucket: this.target.bucket, Key: this.target.key }))
        .catch((err: unknown) => { throw this.target.describe(err); });
      if (head.ContentLength !== this.written) {
        throw new DestinationError(`the object stored for ${this.target.what} has ${String(head.ContentLength)} bytes, ${this.written} were sent`, 'io');
      }
      this.etag = head.ETag ?? null;
      this.completed = true;
    });
    completed.then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.completed || !this.upload) { cb(err); return; }
    // Nothing written so far may become an object: stop feeding the upload with an error (a
    // clean end would complete it with what it has), abort it, and clean up after it.
    void this.upload.abort();
    this.body.destroy(err ?? new Error(`the write of ${this.target.what} was stopped`));
    this.done.catch(() => undefined).finally(() => { void this.target.cleanUp().catch(() => undefined); });
    cb(err ?? this.failure);
  }
}
