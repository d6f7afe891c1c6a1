import os from 'node:os';
import type { z as Zod } from 'zod';
import { BUCKET_NAME, defaultServerFolder, FOLDER_NAME, PREFIX, S3_DEFAULTS, STORAGE_CLASS, type S3Settings } from '../destinations/s3-settings.js';

/** The settings an s3 destination stores (beyond name, hidden, freeSpaceLimitMb), as the services and the API name them. */
export const S3_FIELDS = ['endpoint', 'region', 'bucket', 'prefix', 'serverFolder', 'accessKeyId', 'secretAccessKey', 'addressing', 'storageClass',
  'parallelTransfers', 'timeoutMs', 'maxAttempts', 'partSizeMb', 'quotaGb'] as const;

/** An endpoint is a bare origin: http(s), a host, maybe a port; no credentials, path, query or fragment. */
export function endpointProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL (https://host[:port])';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must start with https:// (or http://)';
  if (url.username || url.password) return 'may not hold credentials (give them as the access key and secret)';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return 'is the server alone (https://host[:port]), without a path: the bucket and prefix are settings of their own';
  return null;
}

/** The fields of an s3 destination's zod schema (beside name, type, hidden and freeSpaceLimitMb). */
export function s3Shape(z: typeof Zod) {
  const whole = (what: string, min: number, max: number) =>
    z.number({ message: `${what} must be a number` }).int(`${what} must be a whole number`).min(min, `${what} must be ${min}-${max}`).max(max, `${what} must be ${min}-${max}`);
  return {
    endpoint: z.string({ message: 'endpoint is required' }).min(1, 'endpoint is required').max(2048).superRefine((v, c) => {
      const problem = endpointProblem(v);
      if (problem) c.addIssue({ code: 'custom', message: problem });
    }).transform((v) => new URL(v).origin),
    region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'region is lower-case letters, digits and dashes (us-east-1)').default(S3_DEFAULTS.region),
    bucket: z.string({ message: 'bucket is required' }).regex(BUCKET_NAME, 'a bucket name is 3-63 lower-case letters, digits, dots or dashes'),
    prefix: z.string().refine((v) => v === '' || PREFIX.test(v), 'a prefix is folder names (letters, digits, . _ -) joined by /, without a leading or trailing /').default(S3_DEFAULTS.prefix),
    serverFolder: z.string().regex(FOLDER_NAME, "a server folder is 1-64 letters, digits, dots, dashes or underscores (default: this server's host name)")
      .default(() => defaultServerFolder(os.hostname())),
    accessKeyId: z.string({ message: 'access key is required' }).regex(/^[\x21-\x7e]{1,256}$/, 'an access key is 1-256 visible ASCII characters'),
    secretAccessKey: z.string({ message: 'secret is required' }).regex(/^[\x21-\x7e]{1,1024}$/, 'a secret is 1-1024 visible ASCII characters'),
    addressing: z.enum(['path', 'virtual-host'], { message: 'addressing is path or virtual-host' }).default(S3_DEFAULTS.addressing),
    storageClass: z.string().regex(STORAGE_CLASS, 'storage class is a name such as STANDARD or STANDARD_IA').optional(),
    parallelTransfers: whole('parallel transfers', 1, 64).default(S3_DEFAULTS.parallelTransfers),
    timeoutMs: whole('timeout', 1000, 600_000).default(S3_DEFAULTS.timeoutMs),
    maxAttempts: whole('attempts', 1, 10).default(S3_DEFAULTS.maxAttempts),
    partSizeMb: whole('part size', 5, 512).default(S3_DEFAULTS.partSizeMb),
    quotaGb: z.number({ message: 'quota must be a number' }).positive('quota must be above 0').max(1e9).optional(),
  };
}

/** The driver's settings from a stored record (its secret already opened). */
export function s3SettingsOf(s: Record<string, unknown>): S3Settings {
  const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  return {
    endpoint: String(s.endpoint), region: String(s.region ?? S3_DEFAULTS.region), bucket: String(s.bucket),
    prefix: typeof s.prefix === 'string' ? s.prefix : '', serverFolder: String(s.serverFolder),
    accessKeyId: String(s.accessKeyId), secretAccessKey: String(s.secretAccessKey),
    addressing: s.addressing === 'virtual-host' ? 'virtual-host' : 'path',
    ...(typeof s.storageClass === 'string' ? { storageClass: s.storageClass } : {}),
    parallelTransfers: num(s.parallelTransfers, S3_DEFAULTS.parallelTransfers), timeoutMs: num(s.timeoutMs, S3_DEFAULTS.timeoutMs),
    maxAttempts: num(s.maxAttempts, S3_DEFAULTS.maxAttempts), partSizeMb: num(s.partSizeMb, S3_DEFAULTS.partSizeMb),
    ...(typeof s.quotaGb === 'number' ? { quotaGb: s.quotaGb } : {}),
  };
}
