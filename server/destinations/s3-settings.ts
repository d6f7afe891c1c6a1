/**
 * The settings of an S3-compatible destination, as the driver gets them (the secret already
 * decrypted by the service). Where objects go: `<prefix>/<serverFolder>/<path>` in `bucket`,
 * so that many servers share one bucket, each under a folder of its own.
 */
export interface S3Settings {
  /** https://s3.example.com, or http:// for a gateway on a private network. */
  endpoint: string;
  region: string;
  bucket: string;
  /** A folder in the bucket shared by the servers (may be empty). */
  prefix: string;
  /** This server's folder under the prefix: its snapshots, its tidemark.json. */
  serverFolder: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style (endpoint/bucket/key) or virtual-host (bucket.endpoint/key) addressing. */
  addressing: 'path' | 'virtual-host';
  /** STANDARD, STANDARD_IA, …: sent with every object written; absent: the bucket's default. */
  storageClass?: string;
  /** Objects (and parts of one archive) in transfer at once. */
  parallelTransfers: number;
  /** A request that neither sends nor receives a byte for this long has failed (and is retried). */
  timeoutMs: number;
  /** Attempts per request, with exponential backoff and jitter between them. */
  maxAttempts: number;
  /** Size of the parts of a multipart upload, in MiB (5 to 512). */
  partSizeMb: number;
  /** The quota of the bucket or user in GB when the provider states it: space() then reports it. */
  quotaGb?: number;
}

export const S3_DEFAULTS = {
  region: 'us-east-1',
  prefix: '',
  addressing: 'path' as const,
  parallelTransfers: 8,
  timeoutMs: 60_000,
  maxAttempts: 5,
  partSizeMb: 8,
};

/** Bucket names as S3 allows them for new buckets (3-63 lower-case letters, digits, dots, dashes). */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A folder name chosen by a person: no slash, no dot-dot, nothing a shell or URL would mangle. */
export const FOLDER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The prefix: folder names joined by '/'. */
export const PREFIX = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})(\/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){0,7}$/;
export const STORAGE_CLASS = /^[A-Z][A-Z0-9_]{0,31}$/;

/** The key prefix of everything this destination holds, ending in '/'. */
export function rootKey(s: Pick<S3Settings, 'prefix' | 'serverFolder'>): string {
  return `${[s.prefix, s.serverFolder].filter((p) => p !== '').join('/')}/`;
}

/** The folder a server uses by default: its host name, reduced to what a folder name allows. */
export function defaultServerFolder(hostname: string): string {
  const cleaned = hostname.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64);
  return cleaned || 'server';
}
