import { PassThrough, Writable } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DestinationError } from './types.js';

export interface UploadTarget {
  client: S3Client;
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
  /** Told of the completion of a stream its writer has ended (for the driver's flush). */
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
  private readonly upload: Upload;
  private readonly done: Promise<void>;
  private written = 0;
  private failure: DestinationError | null = null;
  private waitingForDrain: ((err?: Error | null) => void) | null = null;
  private completed = false;
  /** The stored object's ETag, once finished. */
  etag: string | null = null;

  constructor(private readonly target: UploadTarget) {
    super({ highWaterMark: 1 << 20 });
    this.upload = new Upload({
      client: target.client,
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
      const head = await this.target.client.send(new HeadObjectCommand({ Bucket: this.target.bucket, Key: this.target.key }))
        .catch((err: unknown) => { throw this.target.describe(err); });
      if (head.ContentLength !== this.written) {
        throw new DestinationError(`the object stored for ${this.target.what} has ${String(head.ContentLength)} bytes, ${this.written} were sent`, 'io');
      }
      this.etag = head.ETag ?? null;
      this.completed = true;
    });
    this.target.completing(completed);
    completed.then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.completed) { cb(err); return; }
    // Nothing written so far may become an object: stop feeding the upload with an error (a
    // clean end would complete it with what it has), abort it, and clean up after it.
    void this.upload.abort();
    this.body.destroy(err ?? new Error(`the write of ${this.target.what} was stopped`));
    this.done.catch(() => undefined).finally(() => { void this.target.cleanUp().catch(() => undefined); });
    cb(err ?? this.failure);
  }
}
