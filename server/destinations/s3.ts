import crypto from 'node:crypto';
import { PassThrough, Readable, type Writable } from 'node:stream';
import type { StorageClass } from '@aws-sdk/client-s3';
import { DestinationError, type DirEntry, type Destination, type SpaceInfo } from './types.js';
import { FORMAT_VERSION } from './local.js';
import { describeS3Error, loadS3, type S3Kit, type S3Traffic } from './s3-client.js';
import { rootKey, type S3Settings } from './s3-settings.js';
import { S3UploadStream } from './s3-upload-stream.js';
import { s3ReadStream } from './s3-read-stream.js';
import { InFlight } from '../util/in-flight.js';

/** S3 deletes at most this many keys per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** CopyObject copies at most 5 GiB; larger objects are copied in parts of this size. */
const COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART = 512 * 1024 ** 2;
/** A multipart upload under this destination left unfinished this long belongs to a run that died. */
export const STALE_UPLOAD_MS = 24 * 3600_000;
const MANIFEST = 'manifest.json';

/**
 * A folder of an S3-compatible bucket (AWS S3, Ceph RGW, MinIO, Backblaze B2, Wasabi…):
 * objects under `<prefix>/<serverFolder>/`. An object store has no folders, no renames and
 * no hard links; each method says what it does instead:
 *
 * - mkdir: writes an empty marker object `<folder>/`, so that an empty folder lists;
 *   folders with objects in them exist without it.
 * - writeFile: one PUT, atomic by nature (an object appears only once complete).
 * - createWriteStream: one PUT, or a multipart upload whose parts go out while the stream is
 *   written (memory about partSize × (parallel parts + 1) per stream); aborted on error.
 * - createReadStream: GET with a Range, resumed from the next byte when a connection drops.
 * - list: ListObjectsV2 with delimiter '/'; a missing folder (no object under it) is not-found.
 * - rename: server-side copy of every object, then deletion of the sources. Not atomic: the
 *   manifests are copied last, so a copy cut short holds no manifest and never looks complete.
 * - remove: deletes the object and every object under `<rel>/` (DeleteObjects, 1000 a request).
 * - flush: waits for the uploads still completing; an object S3 acknowledged is stored, so
 *   there is nothing else to flush. Throws when an upload of this driver failed.
 * - space: the stated quota (settings.quotaGb) minus what the bucket holds; without a quota,
 *   unknown (Infinity).
 * - no hardLinks capability: incremental snapshots use the object layout (engine/object-sink.ts).
 */
export class S3Destination implements Destination {
  readonly type = 's3';
  readonly parallelism: number;
  /** The SDK and its client, loaded at the first request (see loadS3). */
  private loading: Promise<S3Kit> | null = null;
  private readonly root: string;
  private readonly traffic: S3Traffic = { requests: 0, bytesSent: 0 };
  /** Uploads whose stream has ended and that are completing. */
  private readonly completing = new Set<Promise<void>>();
  private failure: DestinationError | null = null;
  private closed = false;

  constructor(private readonly settings: S3Settings) {
    this.root = rootKey(settings);
    this.parallelism = settings.parallelTransfers;
  }

  private kit(): Promise<S3Kit> {
    this.loading ??= loadS3(this.settings, this.traffic);
    return this.loading;
  }

  /** The object key of `rel`; relative paths are Tidemark's own, anything else is refused. */
  private key(rel: string): string {
    if (rel.startsWith('/') || rel.endsWith('/') || rel.split('/').some((p) => p === '..' || p === '.' || (p === '' && rel !== '')) || rel.includes('\0')) {
      throw new DestinationError(`invalid path on destination: ${rel}`, 'invalid');
    }
    return rel === '' ? this.root : this.root + rel;
  }

  /** The prefix of everything inside folder `rel`. */
  private folder(rel: string): string {
    return rel === '' ? this.root : `${this.key(rel)}/`;
  }

  private describe(err: unknown, rel: string): DestinationError {
    return describeS3Error(err, this.settings, rel || '(root)');
  }

  private get storageClass(): StorageClass | undefined {
    return this.settings.storageClass as StorageClass | undefined;
  }

  /** Checks that the bucket answers to these credentials, then writes tidemark.json when missing and sweeps stale uploads. */
  async open(): Promise<void> {
    const { client, sdk } = await this.kit();
    try {
      await client.send(new sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.root, MaxKeys: 1 }));
    } catch (err) {
      throw this.describe(err, '');
    }
    if (!(await this.exists('tidemark.json'))) {
      const meta = { format: 'tidemark', version: FORMAT_VERSION, serverId: crypto.randomUUID(), createdAt: new Date().toISOString() };
      await this.writeFile('tidemark.json', JSON.stringify(meta, null, 2) + '\n');
    }
    await this.abortStaleUploads(STALE_UPLOAD_MS).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.completing]);
    if (this.loading) (await this.loading.catch(() => null))?.client.destroy();
  }

  async mkdir(rel: string): Promise<void> {
    const { client, sdk } = await this.kit();
    const clean = rel.split('/').filter(Boolean).join('/');
    if (clean === '') return;
    const key = `${this.key(clean)}/`;
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: Buffer.alloc(0), StorageClass: this.storageClass }));
    } catch (err) {
      throw this.describe(err, rel);
    }
  }

  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    const { client, sdk } = await this.kit();
    const key = this.key(rel);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: body, ContentLength: body.length, StorageClass: this.storageClass }));
    } catch (err) {
      throw this.describe(err, rel);
    }
  }

  createWriteStream(rel: string): Writable {
    let key: string;
    try {
      key = this.key(rel);
    } catch (err) {
      return failedWritable(err as Error);
    }
    const stream = new S3UploadStream({
      kit: this.kit(), bucket: this.settings.bucket, key, storageClass: this.settings.storageClass,
      partSize: this.settings.partSizeMb * 1024 * 1024,
      queueSize: Math.max(1, Math.min(4, this.settings.parallelTransfers)),
      what: rel,
      describe: (err) => this.describe(err, rel),
      cleanUp: () => this.abortUploadsOf(key),
      // flush() waits for the streams their writers ended, and reports a failure even to a writer that did not wait.
      completing: (done) => {
        const settled = done.then(() => undefined, (err: unknown) => { this.failure ??= this.describe(err, rel); });
        this.completing.add(settled);
        void settled.then(() => this.completing.delete(settled));
      },
    });
    return stream;
  }

  async readFile(rel: string): Promise<Buffer> {
    const { client, sdk } = await this.kit();
    const key = this.key(rel);
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      throw this.describe(err, rel);
    }
  }

  createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    let key: string;
    try {
      key = this.key(rel);
    } catch (err) {
      return failedReadable(err as Error);
    }
    return s3ReadStream({
      kit: this.kit(), bucket: this.settings.bucket, key, start: range?.start ?? 0, end: range?.end,
      maxAttempts: this.settings.maxAttempts, describe: (err) => this.describe(err, rel),
    });
  }

  async exists(rel: string): Promise<boolean> {
    const { client, sdk } = await this.kit();
    const key = this.key(rel);
    try {
      if (rel !== '') {
        try {
          await client.send(new sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
          return true;
        } catch (err) {
          const e = this.describe(err, rel);
          if (e.code !== 'not-found') throw e;
        }
      }
      const res = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.folder(rel), MaxKeys: 1 }));
      return (res.KeyCount ?? res.Contents?.length ?? 0) > 0;
    } catch (err) {
      throw this.describe(err, rel);
    }
  }

  /**
   * One folder's entries, sorted by name. Names come from the bucket, which is untrusted: a
   * name that is empty, `.` or `..` (keys such as `a//b` or `a/../b`) is left out.
   */
  async list(rel: string): Promise<DirEntry[]> {
    const { client, sdk } = await this.kit();
    const prefix = this.folder(rel);
    const entries = new Map<string, DirEntry>();
    let any = false;
    try {
      let token: string | undefined;
      do {
        const res = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
        for (const p of res.CommonPrefixes ?? []) {
          any = true;
          const name = (p.Prefix ?? '').slice(prefix.length, -1);
          if (acceptableName(name)) entries.set(name, { name, type: 'dir', size: 0, mtimeMs: 0 });
        }
        for (const o of res.Contents ?? []) {
          any = true;
          const name = (o.Key ?? '').slice(prefix.length);
          // The folder's own marker (written by mkdir).
          if (name === '' || !acceptableName(name) || entries.has(name)) continue;
          entries.set(name, { name, type: 'file', size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 });
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.describe(err, rel);
    }
    if (!any && rel !== '') throw new DestinationError(`not found on the destination: ${rel}`, 'not-found');
    return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every object under `prefix`, with its size. */
  private async *objectsUnder(prefix: string): AsyncGenerator<{ key: string; size: number }> {
    const { client, sdk } = await this.kit();
    let token: string | undefined;
    do {
      const res = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of res.Contents ?? []) if (o.Key) yield { key: o.Key, size: o.Size ?? 0 };
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  private async headSize(key: string): Promise<number | null> {
    const { client, sdk } = await this.kit();
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      const e = this.describe(err, key);
      if (e.code === 'not-found') return null;
      throw e;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    const src = this.key(from);
    const dst = this.key(to);
    try {
      const size = await this.headSize(src);
      if (size !== null) {
        await this.copy(src, dst, size);
        await this.deleteKeys([src]);
        return;
      }
      const objects: { key: string; size: number }[] = [];
      for await (const o of this.objectsUnder(`${src}/`)) objects.push(o);
      if (objects.length === 0) throw new DestinationError(`not found on the destination: ${from}`, 'not-found');
      if (await this.exists(to)) throw new DestinationError(`cannot rename ${from}: ${to} exists on the destination`, 'invalid');
      // Manifests last: a copy cut short leaves a folder without one, which is never taken for a snapshot.
      const isManifest = (k: string): boolean => k.endsWith(`/${MANIFEST}`);
      const pool = new InFlight(this.parallelism);
      for (const round of [objects.filter((o) => !isManifest(o.key)), objects.filter((o) => isManifest(o.key))]) {
        for (const o of round) await pool.add(this.copy(o.key, dst + o.key.slice(src.length), o.size));
        await pool.drain();
      }
      await this.deleteKeys(objects.map((o) => o.key));
    } catch (err) {
      throw this.describe(err, to);
    }
  }

  /** A server-side copy; objects over 5 GiB are copied in parts (UploadPartCopy). */
  private async copy(src: string, dst: string, size: number): Promise<void> {
    const { client, sdk } = await this.kit();
    const Bucket = this.settings.bucket;
    const CopySource = `${encodeURIComponent(Bucket)}/${src.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= COPY_LIMIT) {
      await client.send(new sdk.CopyObjectCommand({ Bucket, Key: dst, CopySource, StorageClass: this.storageClass }));
      return;
    }
    const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key: dst, StorageClass: this.storageClass }));
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART, n++) {
        const end = Math.min(size, start + COPY_PART) - 1;
        const r = await client.send(new sdk.UploadPartCopyCommand({ Bucket, Key: dst, UploadId, PartNumber: n, CopySource, CopySourceRange: `bytes=${start}-${end}` }));
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag ?? '' });
      }
      await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key: dst, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key: dst, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    const { client, sdk } = await this.kit();
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const res = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new DestinationError(`could not delete ${failed.length} object(s), the first ${String(first.Key).slice(this.root.length)}: ${String(first.Code)} ${String(first.Message ?? '')}`, first.Code === 'AccessDenied' ? 'not-writable' : 'io');
      }
    }
  }

  async remove(rel: string): Promise<void> {
    if (rel === '') throw new DestinationError('refusing to remove the destination root', 'invalid');
    const key = this.key(rel);
    try {
      const keys = [key];
      for await (const o of this.objectsUnder(`${key}/`)) keys.push(o.key);
      await this.deleteKeys(keys);
    } catch (err) {
      throw this.describe(err, rel);
    }
  }

  /**
   * With a stated quota: the quota less what the whole bucket holds (every server's folders
   * count against it), which takes one listing request per 1000 objects. Without: unknown,
   * reported as Infinity (no free-space limit can be checked).
   */
  async space(): Promise<SpaceInfo> {
    const quota = this.settings.quotaGb;
    if (!quota) return { totalBytes: Number.POSITIVE_INFINITY, freeBytes: Number.POSITIVE_INFINITY };
    const total = quota * 1e9;
    let used = 0;
    try {
      for await (const o of this.objectsUnder('')) used += o.size;
    } catch (err) {
      throw this.describe(err, '');
    }
    return { totalBytes: total, freeBytes: Math.max(0, total - used) };
  }

  /**
   * Waits for the uploads still completing. S3 acknowledges an object only once stored, so
   * no folder needs flushing. Throws when an upload of this driver failed since the last
   * flush, so that nothing is committed on top of it.
   */
  async flush(_dirs: string[]): Promise<void> {
    await Promise.all([...this.completing]);
    const failure = this.failure;
    this.failure = null;
    if (failure) throw failure;
  }

  bytesSent(): number {
    return this.traffic.bytesSent;
  }

  /** HTTP requests sent so far (each retry counts), for reports and tests. */
  requestsSent(): number {
    return this.traffic.requests;
  }

  /** Aborts the unfinished multipart uploads of exactly `key` (a stream of this driver that failed). */
  private async abortUploadsOf(key: string): Promise<void> {
    for (const u of await this.uploadsUnder(key)) if (u.key === key) await this.abortUpload(u.key, u.uploadId);
  }

  /**
   * Aborts the multipart uploads under this server's folder started more than `olderThanMs`
   * ago: what a run that died (power cut, kill) left behind, which the bucket would otherwise
   * keep, and bill, forever. Returns how many were aborted. Other servers' folders are theirs.
   */
  async abortStaleUploads(olderThanMs: number): Promise<number> {
    const now = Date.now();
    let n = 0;
    try {
      for (const u of await this.uploadsUnder(this.root)) {
        if (now - u.initiated >= olderThanMs) { await this.abortUpload(u.key, u.uploadId); n++; }
      }
    } catch (err) {
      throw this.describe(err, '');
    }
    return n;
  }

  private async uploadsUnder(prefix: string): Promise<{ key: string; uploadId: string; initiated: number }[]> {
    const { client, sdk } = await this.kit();
    const out: { key: string; uploadId: string; initiated: number }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const res = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: this.settings.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }));
      for (const u of res.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 });
      if (!res.IsTruncated) return out;
      keyMarker = res.NextKeyMarker;
      idMarker = res.NextUploadIdMarker;
    }
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    const { client, sdk } = await this.kit();
    try {
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.settings.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
    }
  }
}

function acceptableName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('\0');
}


function failedWritable(err: Error): Writable {
  const s = new PassThrough();
  process.nextTick(() => s.destroy(err));
  return s;
}

function failedReadable(err: Error): Readable {
  const s = new Readable({ read() { /* never */ } });
  process.nextTick(() => s.destroy(err));
  return s;
}
