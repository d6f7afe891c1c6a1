import type { Destination } from '../destinations/types.js';
import type { Structure } from '../store/jobs.js';
import { STRUCTURES } from '../store/jobs.js';
import { layout, type Manifest } from './snapshot-layout.js';
import { isHomeRelative, MAX_SITES } from './sites/site-record.js';
import { SAFE_PREFIX } from './sites/wp-config.js';
import { BINLOG_FILE_NAME } from './database/dump-coordinates.js';
import { limits, parseJson, readBounded, SnapshotInputError } from './untrusted-input.js';

/** The folder names `newSnapshotId` makes: 20261122T210503Z-3fa9. */
export const SNAPSHOT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;

/** Built on first use: loading zod costs every command otherwise. */
async function buildSchema() {
  const { z } = await import('zod');
  const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
  const timestamp = z.string().max(64).refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date and time');
  const name = z.string().min(1).max(255);
  const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex');
  return z.object({
    format: z.literal('tidemark-snapshot', { message: 'format must be "tidemark-snapshot"' }),
    version: z.literal(1, { message: 'version must be 1' }),
    id: z.string().max(64),
    account: z.string().max(64),
    structure: z.enum(STRUCTURES as [Structure, ...Structure[]], { message: `structure must be one of: ${STRUCTURES.join(', ')}` }),
    status: z.enum(['completed', 'partial'], { message: 'status must be completed or partial' }),
    startedAt: timestamp,
    finishedAt: timestamp,
    items: z.array(z.string().max(64)).max(64),
    previous: z.string().regex(SNAPSHOT_ID, 'must be a snapshot id').nullable().optional(),
    stats: z.object({ files: count, bytes: count, storedBytes: count }).passthrough(),
    // The file of a database is always the one the layout names: a manifest cannot point a
    // restore or a download at another file (`../../other/…`, `/etc/shadow`).
    databases: z.array(z.object({
      name, file: z.string().optional(), bytes: count.optional(), sha256: sha256.optional(),
      binlog: z.object({
        file: z.string().regex(BINLOG_FILE_NAME, 'must be a binary log file name'), position: count, at: timestamp,
        gtid: z.string().max(2048).regex(/^[0-9,-]+$/).optional(),
      }).optional(),
    }).passthrough()
      .refine((d) => d.file === undefined || d.file === layout.database(d.name), { message: 'file must be databases/<name>.sql.gz', path: ['file'] }))
      .max(100_000),
    grants: z.literal(layout.grants).nullable().optional(),
    job: z.string().max(255).nullable(),
    // Compared with the account's uid when a reindex finds the snapshot (see reindex.ts).
    accountInfo: z.object({ uid: z.number().int().nonnegative() }).passthrough().optional(),
    content: z.literal('objects', { message: 'content must be "objects" when present' }).optional(),
    // Read back by a restore: a path outside the home or a prefix with SQL in it is refused here.
    sites: z.array(z.object({
      folder: z.string().max(4096).refine((p) => isHomeRelative(p, true), 'must be a path inside the home'),
      config: z.string().max(4096).refine((p) => isHomeRelative(p, false), 'must be a path inside the home'),
      database: z.string().min(1).max(64).nullable(),
      prefix: z.string().regex(SAFE_PREFIX, 'must be letters, digits and _').nullable(),
      problem: z.string().max(1000).nullable(),
    }).passthrough()).max(MAX_SITES).optional(),
    integrity: z.object({
      algorithm: z.literal('sha256', { message: 'algorithm must be sha256' }),
      // Absent: version 1. A version this reader does not know would be checked wrongly: refused.
      version: z.union([z.literal(1), z.literal(2)], { message: 'integrity version must be 1 or 2' }).optional(),
      index: sha256.nullable(), data: sha256.nullable(), tar: sha256.nullable().optional(), grants: sha256.nullable().optional(),
    }).passthrough().optional(),
  }).passthrough();
}

let schema: Awaited<ReturnType<typeof buildSchema>> | null = null;

/**
 * Checks a manifest read from a destination: its shape, and that it is the one of snapshot
 * `id` of `account` (or of a name the account had before a rename). `what` names the file
 * in errors.
 */
export async function validateManifest(doc: unknown, what: string): Promise<Manifest> {
  schema ??= await buildSchema();
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    throw new SnapshotInputError(`${what}: invalid manifest: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data as unknown as Manifest;
}

/** Reads and validates `<account>/<id>/manifest.json` (bounded, see limits.manifestBytes). */
export async function readManifestFile(dest: Destination, account: string, id: string): Promise<Manifest> {
  const rel = `${layout.snapshotDir(account, id)}/${layout.manifest}`;
  const what = `snapshot ${id} of ${account}: ${layout.manifest}`;
  return validateManifest(parseJson(await readBounded(dest, rel, limits.manifestBytes, what), what), what);
}
