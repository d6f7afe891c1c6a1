import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { DestinationError } from './types.js';
import type { S3Settings } from './s3-settings.js';

/** What went over the network, counted per HTTP attempt (a retried request counts again). */
export interface S3Traffic {
  requests: number;
  bytesSent: number;
}

/**
 * A client for one destination. Checksums only when the operation requires one: with the SDK's
 * default, a streamed body goes out as aws-chunked with a trailing checksum, which Ceph (16.2)
 * and other S3-compatible servers answer with 411 MissingContentLength. Retries: the SDK's
 * standard mode (exponential backoff with jitter) for throttling, 5xx and dropped connections.
 */
export function makeS3Client(s: S3Settings, traffic: S3Traffic): S3Client {
  const client = new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: s.addressing === 'path',
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: s.maxAttempts,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: Math.min(s.timeoutMs, 15_000), requestTimeout: s.timeoutMs },
    // The SDK logs nothing unless given a logger; none is given: requests carry signed credentials.
  });
  // The innermost step runs once per attempt, so retries are counted as the bytes they resend.
  client.middlewareStack.add((next) => async (args) => {
    const request = args.request as { headers?: Record<string, string> };
    traffic.requests++;
    const length = Number(request.headers?.['content-length'] ?? 0);
    if (Number.isFinite(length)) traffic.bytesSent += length;
    return next(args);
  }, { step: 'deserialize', name: 'tidemarkTraffic', priority: 'low' });
  return client;
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the endpoint right, and the server running?)',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed by the server',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'host name lookup failed',
};

const CREDENTIAL_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'AuthorizationHeaderMalformed']);

/**
 * Turns an SDK error into a DestinationError a provider can act on. The message names the
 * endpoint, bucket and object, never a credential (the SDK's own messages hold none either).
 */
export function describeS3Error(err: unknown, s: Pick<S3Settings, 'endpoint' | 'bucket'>, what: string): DestinationError {
  if (err instanceof DestinationError) return err;
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number; attempts?: number }; Code?: string };
  const name = (err instanceof S3ServiceException ? err.name : e?.Code ?? e?.name) ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const attempts = e?.$metadata?.attempts;
  const where = `${s.endpoint} bucket ${s.bucket}`;
  const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  if (name === 'NoSuchBucket') return new DestinationError(`the bucket "${s.bucket}" does not exist at ${s.endpoint} (create it first, or correct the bucket name)`, 'unreachable');
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchUpload')) return new DestinationError(`not found on the destination: ${what}`, 'not-found');
  if (CREDENTIAL_ERRORS.has(name)) return new DestinationError(`the S3 endpoint ${s.endpoint} refused the credentials (${name}): check the access key and the secret, and that they have not expired`, 'unreachable');
  if (name === 'RequestTimeTooSkewed') return new DestinationError(`the S3 endpoint ${s.endpoint} refused the request: this server's clock is too far from the endpoint's (RequestTimeTooSkewed)`, 'unreachable');
  if (name === 'AccessDenied' || status === 403) return new DestinationError(`access denied by ${where} at ${what} (the key may not write or read there)`, 'not-writable');
  if (name === 'QuotaExceeded' || name === 'EntityTooLarge') return new DestinationError(`no space left in ${where} while writing ${what} (${name})`, 'no-space');
  if (status !== undefined && status >= 500) return new DestinationError(`the S3 endpoint ${s.endpoint} failed at ${what}: ${status} ${name}${tries}`, 'io');
  const netCode = e?.code ?? (e as { errno?: string })?.errno;
  if (netCode && NETWORK_CODES[netCode]) return new DestinationError(`could not reach the S3 endpoint ${s.endpoint} at ${what}: ${NETWORK_CODES[netCode]}${tries}`, 'unreachable');
  if (name === 'TimeoutError' || name === 'RequestTimeout') return new DestinationError(`the S3 endpoint ${s.endpoint} did not answer in time at ${what}${tries}`, 'unreachable');
  if (name === 'AbortError') return new DestinationError(`the transfer of ${what} was stopped`, 'io');
  return new DestinationError(`S3 error at ${what} (${where}): ${status ? `${status} ` : ''}${name}: ${e?.message ?? String(err)}${tries}`, 'io');
}
