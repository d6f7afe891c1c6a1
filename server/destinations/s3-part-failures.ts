import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Sdk } from './s3-client.js';

/**
 * The client given to one upload (lib-storage's Upload), telling `onPartFailure` at once when
 * one of its parts fails for good (after the SDK's retries). Upload itself reports such a
 * failure only once each of its other part uploaders has run out of data: they go on reading
 * the stream and sending its parts, so a backup whose part 2 failed still sent the rest of
 * its archive before failing. The caller aborts the upload, which stops them at the next part.
 */
export function reportingPartFailures(client: S3Client, sdk: Pick<S3Sdk, 'UploadPartCommand'>, onPartFailure: (err: unknown) => void): S3Client {
  const send = (command: unknown, ...rest: unknown[]): Promise<unknown> =>
    (client.send as (c: unknown, ...r: unknown[]) => Promise<unknown>)(command, ...rest).catch((err: unknown) => {
      if (command instanceof sdk.UploadPartCommand) onPartFailure(err);
      throw err;
    });
  return new Proxy(client, { get: (target, prop, receiver) => (prop === 'send' ? send : Reflect.get(target, prop, receiver)) });
}
