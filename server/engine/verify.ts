import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DestinationError, type Destination } from '../destinations/types.js';
import { toDisplay } from '../util/byte-path.js';
import { layout, type Manifest } from './snapshot-layout.js';
import { readManifest, hashStoredFile } from './restore.js';
import { TarHasher } from './format/tar-hasher.js';
import { readIndex } from './snapshot-index.js';
import { selectEntries } from './selection.js';
import { contentLayout, snapshotContent } from './snapshot-content.js';
import { requireRegularFile } from './untrusted-input.js';


/** The tar digest (integrity version 2, TarHasher) of a stored archive, in hex; refused like hashStoredFile when it is not a regular file. */
async function tarDigestOfStoredFile(dest: Destination, rel: string, what: string): Promise<string> {
  const slash = rel.lastIndexOf('/');
  await requireRegularFile(dest, rel.slice(0, slash), rel.slice(slash + 1), what);
  const hasher = new TarHasher({ keepHashes: false, digest: true });
  await pipeline(dest.createReadStream(rel), hasher, new Writable({ write: (_c, _e, cb) => cb() }));
  return hasher.tarDigest().toString('hex');
}

/** One thing found wrong: `file` is the stored file (relative to the snapshot folder); `path` the account's file, when one is concerned. */
export interface Damage { file: string; path?: string; problem: string }

export interface VerifyResult {
  /** False: the snapshot was written before hashes were kept; only its structure (gzip, tar, sizes) was checked. */
  hashes: boolean;
  damaged: Damage[];
  checked: { files: number; bytes: number; databases: number };
  /** Files whose index entry holds no hash (older snapshots; their content was read but not compared). */
  filesWithoutHash: number;
  /** The status the manifest gives (a verify that finds nothing wrong puts it back). */
  manifestStatus: 'completed' | 'partial' | null;
}

const MAX_DAMAGES = 1000;

/**
 * A failure of the destination itself (unreachable, a path no longer secure, refused access, no
 * space) says nothing about what the snapshot stores: it fails the verify instead of marking
 * the snapshot damaged (which would also keep it from being the base of the next incremental run).
 */
function rethrowDestinationFailure(err: unknown): void {
  if (err instanceof DestinationError && ['unreachable', 'insecure', 'not-writable', 'no-space'].includes(err.code)) throw err;
}

/**
 * Reads back everything a snapshot stores and compares it with the hashes its manifest and
 * index hold: the index and archive files whole, every file's content, every database dump
 * and the grants. Damage is collected (not thrown), each naming the stored file concerned,
 * so one run names every damaged file. Read-only: nothing on the destination changes.
 */
export async function verifySnapshotData(dest: Destination, account: string, id: string): Promise<VerifyResult> {
  const dir = layout.snapshotDir(account, id);
  const result: VerifyResult = { hashes: false, damaged: [], checked: { files: 0, bytes: 0, databases: 0 }, filesWithoutHash: 0, manifestStatus: null };
  const damage = (d: Damage): void => { if (result.damaged.length < MAX_DAMAGES) result.damaged.push(d); };
  let manifest: Manifest;
  try {
    manifest = await readManifest(dest, account, id);
  } catch (err) {
    rethrowDestinationFailure(err);
    damage({ file: layout.manifest, problem: (err as Error).message });
    return result;
  }
  const integrity = manifest.integrity;
  result.hashes = integrity !== undefined;
  result.manifestStatus = manifest.status;

  /** Compares a whole stored file with its hash (or `digest`); false when it is missing or differs. */
  const wholeFile = async (rel: string, expected: string | null | undefined, digest = hashStoredFile): Promise<boolean> => {
    if (!expected) return true;
    try {
      const got = await digest(dest, `${dir}/${rel}`, `snapshot ${id} of ${account}: ${rel}`);
      if (got === expected) return true;
      damage({ file: rel, problem: 'does not match its hash (changed or truncated on the destination)' });
    } catch (err) {
      rethrowDestinationFailure(err);
      damage({ file: rel, problem: (err as Error).message });
    }
    return false;
  };

  if (manifest.items.includes('files')) {
    const indexOk = await wholeFile(layout.index, integrity?.index);
    // Integrity version 2 keeps an archive's tar digest instead of its SHA-256 (snapshot-layout.ts).
    if (manifest.structure === 'archive' && integrity?.version === 2) await wholeFile(layout.data('archive'), integrity.tar, tarDigestOfStoredFile);
    else if (manifest.structure !== 'incremental') await wholeFile(layout.data(manifest.structure), integrity?.data);
    if (indexOk) {
      try {
        const index = await readIndex(dest, dir);
        for (const e of index) if (e.kind === 'f' && e.size > 0 && !e.hash) result.filesWithoutHash++;
        const selected = selectEntries(index, []);
        for await (const ev of snapshotContent(dest, dir, manifest.structure, selected, {
          ...contentLayout(manifest),
          onDamage: (err) => damage({ file: err.storedIn, path: toDisplay(err.path), problem: 'content does not match its hash' }),
        })) {
          if (ev.type === 'entry' && ev.sel.entry.kind === 'f') result.checked.files++;
          else if (ev.type === 'data') result.checked.bytes += ev.chunk.length;
        }
      } catch (err) {
        rethrowDestinationFailure(err);
        const message = (err as Error).message;
        const file = message.includes(layout.index) ? layout.index : manifest.content === 'objects' ? 'objects' : layout.data(manifest.structure);
        damage({ file, problem: message });
      }
    }
  }

  for (const db of manifest.databases) {
    const rel = layout.database(db.name);
    result.checked.databases++;
    if (db.sha256) { await wholeFile(rel, db.sha256); continue; }
    // No hash (an older snapshot): at least the gzip stream and its CRC must be whole.
    try {
      await requireRegularFile(dest, `${dir}/databases`, rel.slice('databases/'.length), `snapshot ${id} of ${account}: ${rel}`);
      await pipeline(dest.createReadStream(`${dir}/${rel}`), zlib.createGunzip(), new Writable({ write: (_c, _e, cb) => cb() }));
    } catch (err) {
      rethrowDestinationFailure(err);
      damage({ file: rel, problem: (err as Error).message });
    }
  }
  if (manifest.grants) await wholeFile(layout.grants, integrity?.grants);
  return result;
}

