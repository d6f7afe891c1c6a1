import type { Structure } from '../store/jobs.js';
import type { SiteRecord } from './sites/site-record.js';

/** Where things live inside a destination (see docs/snapshot-format.md). */
export const layout = {
  accountDir: (account: string) => account,
  snapshotDir: (account: string, id: string) => `${account}/${id}`,
  partialDir: (account: string, id: string) => `${account}/.partial-${id}`,
  /** Written when the account is renamed: `{account, formerNames}` (manifests keep the name they were written under). */
  accountMeta: (account: string) => `${account}/account.json`,
  manifest: 'manifest.json',
  index: 'index.bin.gz',
  members: 'files.members.json',
  grants: 'databases/grants.sql',
  database: (db: string) => `databases/${encodeURIComponent(db)}.sql.gz`,
  data: (structure: Structure) => (structure === 'incremental' ? 'files' : structure === 'archive' ? 'files.tar' : 'files.tar.gz'),
  /** Incremental content: one file per blob, 1024 to a folder. */
  blob: (n: number) => `files/${Math.floor(n / 1024).toString(16).padStart(4, '0')}/${n.toString(16).padStart(8, '0')}`,
  blobDir: (n: number) => `files/${Math.floor(n / 1024).toString(16).padStart(4, '0')}`,
  /**
   * Object layout (destinations without hard links): each content once per account, named
   * by its SHA-256 in hex, 256 folders by the first two digits. The name is made from the
   * 32 bytes of the index entry's hash, never read as a path from the destination.
   */
  objectsDir: (account: string) => `${account}/objects`,
  objectDir: (account: string, hex: string) => `${account}/objects/${hex.slice(0, 2)}`,
  object: (account: string, hex: string) => `${account}/objects/${hex.slice(0, 2)}/${hex}`,
  /** Content larger than what is kept in memory, written here until its hash is known. */
  staging: (partialDir: string, n: number) => `${partialDir}/staging/${n.toString(16).padStart(8, '0')}`,
  /** Leases of object-layout backups in progress and of object sweeps (engine/object-lease.ts). */
  leasesDir: (account: string) => `${account}/.leases`,
};

/** A content object's name: exactly 64 lowercase hex digits. */
export const OBJECT_NAME = /^[0-9a-f]{64}$/;

export const ACCOUNT_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/i;

/** Sortable, unique enough per account: 20261122T210503Z-3fa9. */
export function newSnapshotId(at = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')}`;
}

/**
 * `sha256`: of the stored .sql.gz (absent in snapshots made before hashes were kept).
 * `binlog`: the binary-log position the dump is consistent with (absent: binary logging was off).
 */
export interface ManifestDatabase {
  name: string; file: string; bytes: number; sha256?: string;
  binlog?: { file: string; position: number; at: string; gtid?: string };
}

/**
 * Hashes of what a snapshot stores, all SHA-256 in hex (see docs/snapshot-format.md):
 * the index file, the archive file (archive, compressed; null for incremental), the grants
 * file. The hash of each file's content is in its index entry. Absent: an older snapshot.
 */
/**
 * Version 1 (no `version`): `data` is the SHA-256 of the whole files.tar / files.tar.gz.
 * Version 2: the same for files.tar.gz; an archive's files.tar has `tar`, its tar digest
 * (TarHasher in format/tar-hasher.ts), and `data` null. See docs/snapshot-format.md.
 */
export interface ManifestIntegrity { algorithm: 'sha256'; version?: 1 | 2; index: string | null; data: string | null; tar?: string | null; grants: string | null }

export interface Manifest {
  format: 'tidemark-snapshot';
  version: 1;
  id: string;
  account: string;
  structure: Structure;
  status: 'completed' | 'partial';
  startedAt: string;
  finishedAt: string;
  items: string[];
  previous: string | null;
  stats: { files: number; directories: number; links: number; bytes: number; storedBytes: number; skipped: number; excluded: number };
  skipped: { path: string; reason: string }[];
  databases: ManifestDatabase[];
  grants: string | null;
  /** Items that could not be backed up (e.g. the database server was down), with why: the snapshot is then partial. */
  problems?: { item: string; reason: string }[];
  accountInfo: { uid: number; gid: number; home: string; owner: string; domains: string[] };
  job: string | null;
  integrity?: ManifestIntegrity;
  /**
   * `objects`: an incremental snapshot in the object layout (content in `<account>/objects/`,
   * found by the hash in each index entry). Absent: content in the snapshot's own `files/`.
   */
  content?: 'objects';
  /** The WordPress sites found as the run started (absent: not looked for). */
  sites?: SiteRecord[];
}
