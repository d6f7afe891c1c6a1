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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Reads an object, or a range of it, with ranged GETs. A connection that drops in the middle
 * of the body is resumed from the next byte (up to maxAttempts times in a row, with backoff),
 * so a long restore does not start again from zero. A body shorter than the length the server
 * announced counts as a dropped connection, never as the end.
 */
export function s3ReadStream(src: ReadSource): Readable {
  let offset = src.start;
  let body: Readable | null = null;
  let failures = 0;
  let started = false;
  const out = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (!started) { started = true; void fetchFrom(); return; }
      body?.resume();
    },
    destroy(err, cb) {
      body?.destroy();
      cb(err);
    },
  });

  const retryOrFail = async (err: unknown): Promise<void> => {
    body = null;
    if (out.destroyed) return;
    if (++failures >= src.maxAttempts) { out.destroy(src.describe(err)); return; }
    await sleep(Math.min(10_000, 100 * 2 ** failures) * (0.5 + Math.random() / 2));
    if (!out.destroyed) await fetchFrom();
  };

  async function fetchFrom(): Promise<void> {
    if (src.end !== undefined && offset >= src.end) { out.push(null); return; }
    const range = offset > 0 || src.end !== undefined ? `bytes=${offset}-${src.end !== undefined ? src.end - 1 : ''}` : undefined;
    let res;
    try {
      res = await src.client.send(new GetObjectCommand({ Bucket: src.bucket, Key: src.key, ...(range ? { Range: range } : {}) }));
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      // A range that starts at the object's end: nothing to read.
      if ((e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416) && src.end === undefined) { out.push(null); return; }
      const status = e.$metadata?.httpStatusCode;
      // Missing objects, refused credentials and the like do not get better by asking again (the SDK already retried the rest).
      if (status !== undefined && status < 500) { out.destroy(src.describe(err)); return; }
      await retryOrFail(err);
      return;
    }
    if (out.destroyed) { (res.Body as Readable | undefined)?.destroy(); return; }
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
      if (expected !== undefined && received < expected) { void retryOrFail(new Error(`the connection ended after ${received} of ${expected} bytes`)); return; }
      body = null;
      out.push(null);
    });
    stream.once('error', (err) => { stream.removeAllListeners('end'); void retryOrFail(err); });
  }
  return out;
}
