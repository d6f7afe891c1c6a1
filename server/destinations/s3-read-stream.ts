import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DestinationError } from './types.js';

export interface ReadSource {
  client: S3Client;
  bucket: string;
  key: string;
  /** First byte (inclusive) and end (exclusive, or to the object's end). */
  start: number;
  end?: number;
  maxAttempts: number;
  describe: (err: unknown) => DestinationError;
}

/** The first ranged GET asks for this much; each next one for twice as much, up to MAX_WINDOW. */
const FIRST_WINDOW = 1 << 20;
const MAX_WINDOW = 64 << 20;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Reads an object, or a range of it, as a series of ranged GETs of growing size (1 MiB, 2 MiB,
 * … 64 MiB): a reader that stops early (one file restored from the start of an archive) has
 * fetched little more than it used, and a whole read still takes few requests. A connection
 * that drops in the middle of a body is resumed from the next byte (up to maxAttempts times in
 * a row, with backoff); a body shorter than the server announced counts as dropped, never as
 * the end.
 */
export function s3ReadStream(src: ReadSource): Readable {
  let offset = src.start;
  let window = FIRST_WINDOW;
  /** The object's size, once a response said it. */
  let size: number | null = null;
  let body: Readable | null = null;
  let failures = 0;
  let started = false;
  const out = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (!started) { started = true; void fetchNext(); return; }
      body?.resume();
    },
    destroy(err, cb) {
      body?.destroy();
      body = null;
      cb(err);
    },
  });

  const retryOrFail = async (err: unknown): Promise<void> => {
    body = null;
    if (out.destroyed) return;
    if (++failures >= src.maxAttempts) { out.destroy(src.describe(err)); return; }
    await sleep(Math.min(10_000, 100 * 2 ** failures) * (0.5 + Math.random() / 2));
    if (!out.destroyed) await fetchNext();
  };

  async function fetchNext(): Promise<void> {
    const limit = Math.min(src.end ?? Number.POSITIVE_INFINITY, size ?? Number.POSITIVE_INFINITY);
    if (offset >= limit) { out.push(null); return; }
    const last = Math.min(limit, offset + window) - 1;
    let res;
    try {
      res = await src.client.send(new GetObjectCommand({ Bucket: src.bucket, Key: src.key, Range: `bytes=${offset}-${last}` }));
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      // A range that starts at the object's end: nothing more to read.
      if ((e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) && src.end === undefined) { out.push(null); return; }
      const status = e.$metadata?.httpStatusCode;
      // Missing objects, refused credentials and the like do not get better by asking again (the SDK already retried the rest).
      if (status !== undefined && status < 500) { out.destroy(src.describe(err)); return; }
      await retryOrFail(err);
      return;
    }
    if (out.destroyed) { (res.Body as Readable | undefined)?.destroy(); return; }
    const total = /\/(\d+)$/.exec(res.ContentRange ?? '')?.[1];
    if (total !== undefined) size = Number(total);
    const stream = res.Body as Readable;
    const expected = res.ContentLength;
    let received = 0;
    body = stream;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      offset += chunk.length;
      failures = 0;
      if (!out.push(chunk)) stream.pause();
    });
    stream.once('end', () => {
      body = null;
      if (expected !== undefined && received < expected) { void retryOrFail(new Error(`the connection ended after ${received} of ${expected} bytes`)); return; }
      // A server that ignored the Range sent the whole object.
      if (res.ContentRange === undefined) size = offset;
      window = Math.min(MAX_WINDOW, window * 2);
      void fetchNext();
    });
    stream.once('error', (err) => { stream.removeAllListeners('end'); void retryOrFail(err); });
  }
  return out;
}
