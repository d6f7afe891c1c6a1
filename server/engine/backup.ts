import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { Account } from '../panels/types.js';
import type { Destination } from '../destinations/types.js';
import { describeFsError } from '../destinations/errors.js';
import type { Item, Structure } from '../store/jobs.js';
import { BatchedWriter, StreamWriter } from '../util/stream-writer.js';
import { toDisplay, type BytePath } from '../util/byte-path.js';
import { encodeEntry, NO_REF, parseEntryStream, type Entry } from './format/entry.js';
import { TarHasher } from './format/tar-hasher.js';
import { spawnAccountWorker } from './worker/spawn-worker.js';
import { BlobSink } from './files-sink.js';
import { layout, newSnapshotId, type Manifest, type ManifestDatabase } from './snapshot-layout.js';
import { eachIndexEntry } from './snapshot-index.js';
import { createParallelGzip } from './format/parallel-gzip.js';
import type { MysqlCredentials } from '../panels/types.js';
import type { Politeness } from '../util/politeness.js';

export interface BackupProgress {
  phase: 'files' | 'databases' | 'finishing';
  files: number;
  bytes: number;
}

export interface BackupRequest {
  account: Account;
  destination: Destination;
  structure: Structure;
  items: Item[];
  excludes: string[];
  jobName: string | null;
  /** Latest complete incremental snapshot of this account on this destination, if any. */
  previousId: string | null;
  mysql: () => Promise<MysqlCredentials>;
  onProgress?: (p: BackupProgress) => void;
  /** Lower CPU and disk priority for the account worker and the dump tools. */
  politeness?: Politeness;
  /** Aborting stops the run; nothing of it is listed and the reason is what it throws. */
  signal?: AbortSignal;
}

const MAX_SKIPPED_LISTED = 500;

const validRelative = (p: BytePath): boolean =>
  p === '' || (!p.startsWith('/') && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && !c.includes('\0')));

/**
 * Folders of runs that were killed. Only called under the account lock, so none of
 * them belongs to a run still going.
 */
async function removeLeftovers(dest: Destination, account: string): Promise<void> {
  if (!(await dest.exists(layout.accountDir(account)))) return;
  for (const e of await dest.list(layout.accountDir(account))) {
    if (e.type === 'dir' && e.name.startsWith('.partial-')) await dest.remove(`${layout.accountDir(account)}/${e.name}`);
  }
}

/**
 * Backs up one account to one destination. Everything is written under a hidden
 * `.partial-<id>` folder; the manifest is written last and the folder is renamed to
 * its final name only then, so an interrupted run never looks complete and never
 * touches an older snapshot.
 */
export async function backupAccount(req: BackupRequest): Promise<Manifest> {
  const { account, destination: dest, structure, signal } = req;
  signal?.throwIfAborted();
  const id = newSnapshotId();
  const startedAt = new Date().toISOString();
  const partial = layout.partialDir(account.username, id);
  await removeLeftovers(dest, account.username);
  await dest.mkdir(partial);
  const stats = { files: 0, directories: 0, links: 0, bytes: 0, storedBytes: 0, skipped: 0, excluded: 0 };
  const skipped: { path: string; reason: string }[] = [];
  let databases: ManifestDatabase[] = [];
  let grants: string | null = null;
  let grantsSha256: string | null = null;
  let previous: string | null = null;
  // Whole-file hashes (see docs/snapshot-format.md, "Integrity"): a truncated index or archive is found without parsing it.
  let indexSha256: string | null = null;
  let dataSha256: string | null = null;
  const progress = (phase: BackupProgress['phase']): void => req.onProgress?.({ phase, files: stats.files, bytes: stats.bytes });

  try {
    if (req.items.includes('files')) {
      let prevBlobs: Set<number> | null = null;
      let prevIndex: Buffer[] = [];
      // An unchanged file's blob is the previous one: its hash is carried over with it.
      let prevHashes = new Map<number, Buffer>();
      if (structure === 'incremental' && req.previousId) {
        try {
          // Streamed: only the files (their blob numbers and records) are kept.
          const blobs = new Set<number>();
          const hashes = new Map<number, Buffer>();
          await eachIndexEntry(dest, layout.snapshotDir(account.username, req.previousId), (e) => {
            if (e.kind === 'f' && e.dataRef !== NO_REF) {
              blobs.add(e.dataRef);
              if (e.hash) hashes.set(e.dataRef, e.hash);
              delete e.hash;
              prevIndex.push(encodeEntry(e));
            }
          });
          prevBlobs = blobs;
          prevHashes = hashes;
          previous = req.previousId;
        } catch {
          prevBlobs = null;
          prevIndex = [];
          prevHashes = new Map();
        }
      }

      const indexOut = new StreamWriter(dest.createWriteStream(`${partial}/${layout.index}`));
      const indexGzip = zlib.createGzip({ level: 1 });
      const indexHash = crypto.createHash('sha256');
      indexGzip.on('data', (c: Buffer) => { indexHash.update(c); });
      indexGzip.pipe(indexOut.stream);
      const index = new BatchedWriter(new StreamWriter(indexGzip));

      // incremental: content arrives with the records and becomes blobs (BlobSink);
      // archive/compressed: the worker writes the tar itself to its fd 4.
      const sink: BlobSink | null = structure === 'incremental'
        ? new BlobSink(dest, partial, previous
          ? { dir: layout.snapshotDir(account.username, previous), blobs: prevBlobs!, clone: await dest.cloneIsServerSide() }
          : null)
        : null;
      const tarFile = `${partial}/${layout.data(structure)}`;
      // The tar passes through root (never written by the worker straight to the destination):
      // root hashes each file's content on the way, so a hash in the index is root's, not the account's.
      let tarDone: Promise<void> | null = null;
      let tarError: unknown = null;
      let tarBytes = 0;
      const dataHash = crypto.createHash('sha256');
      let tarHasher: TarHasher | null = null;
      let gz: ReturnType<typeof createParallelGzip> | null = null;

      const worker = spawnAccountWorker(account, { mode: 'backup', excludes: req.excludes, previous: previous !== null, tar: sink === null },
        { ...(req.politeness ? { politeness: req.politeness } : {}), ...(sink === null ? { tarFd: 'pipe' as const } : {}) });
      // Cancelling kills the walk; what it wrote so far goes with the partial folder.
      const stopWorker = (): void => { worker.child.kill('SIGKILL'); };
      signal?.addEventListener('abort', stopWorker, { once: true });
      if (worker.tar) {
        const file = dest.createWriteStream(tarFile);
        tarHasher = new TarHasher();
        const stored = new Transform({
          highWaterMark: 1 << 20,
          transform(chunk: Buffer, _enc, done) { tarBytes += chunk.length; dataHash.update(chunk); done(null, chunk); },
        });
        // One pipeline from the worker's pipe to the file: when the destination fails (ENOSPC,
        // EROFS) every stage is destroyed, and the worker, which may be blocked writing its tar,
        // is stopped so that the run ends with that error instead of waiting forever.
        if (structure === 'compressed') {
          gz = createParallelGzip();
          tarDone = pipeline(worker.tar, tarHasher, gz, stored, file);
        } else {
          tarDone = pipeline(worker.tar, tarHasher, stored, file);
        }
        tarDone.catch((err: unknown) => { tarError = err; worker.child.kill('SIGKILL'); });
      }
      if (previous) {
        for (const rec of prevIndex) if (!worker.input.write(rec)) await new Promise((r) => worker.input.once('drain', r));
      }
      worker.input.end();

      let sawEnd = false;
      let lastReport = 0;
      // Incremental: the file whose content is arriving, and the hash of that content. Its
      // record goes into the index once the content (and so the hash) is complete.
      let receiving: Entry | null = null;
      let contentHash: crypto.Hash | null = null;
      // Archive, compressed: records wait (in order) until the tar has passed their content.
      const waiting: Entry[] = [];
      const writeRecord = async (e: Entry): Promise<void> => {
        e.prevRef = NO_REF;
        await index.write(encodeEntry(e));
      };
      const writeWaiting = async (atEnd: boolean): Promise<void> => {
        while (waiting.length > 0) {
          const e = waiting[0]!;
          if (e.kind === 'f') {
            const h = tarHasher!.takeHash(e.dataRef);
            if (!h) {
              if (!atEnd) return;
              throw new Error(`the account worker sent no content for ${JSON.stringify(toDisplay(e.path))} in its tar`);
            }
            e.hash = h;
          }
          waiting.shift();
          await writeRecord(e);
        }
      };
      try {
        for await (const ev of parseEntryStream(worker.output)) {
          if (ev.type === 'data') {
            contentHash?.update(ev.chunk);
            await sink!.data(ev.chunk);
          } else if (ev.type === 'data-end') {
            await sink!.endData();
            if (receiving) {
              receiving.hash = contentHash!.digest();
              await writeRecord(receiving);
              receiving = null;
              contentHash = null;
            }
          } else if (ev.type === 'notice') {
            if (ev.kind === 'E') { sawEnd = true; continue; }
            // 'skipped:' notices are the account's own choice (.donotbackup); others are problems.
            if (ev.text.startsWith('skipped:')) stats.excluded++; else stats.skipped++;
            if (skipped.length < MAX_SKIPPED_LISTED) skipped.push({ path: toDisplay(ev.path), reason: ev.text });
          } else {
            const e = ev.entry;
            if (!validRelative(e.path) || (e.kind === 'h' && !validRelative(e.link))) {
              throw new Error('the account worker sent an invalid path');
            }
            // A hash is root's own, never the worker's.
            delete e.hash;
            if (sink) {
              await sink.begin(e, ev.hasData);
              if (e.kind === 'f' && ev.hasData) {
                receiving = e;
                contentHash = crypto.createHash('sha256');
              } else {
                if (e.kind === 'f') { const h = prevHashes.get(e.dataRef); if (h) e.hash = h; }
                await writeRecord(e);
              }
            } else {
              if (ev.hasData) throw new Error('the account worker sent content outside its tar');
              waiting.push(e);
              await writeWaiting(false);
            }
            if (e.kind === 'd') stats.directories++;
            else if (e.kind === 'l') stats.links++;
            else { stats.files++; stats.bytes += e.size; }
            const now = Date.now();
            if (now - lastReport > 1000) { lastReport = now; progress('files'); }
          }
        }
        // When the destination fails, the worker dies of a broken pipe: report the cause.
        await worker.done.catch(async (err: unknown) => {
          if (tarDone) await tarDone;
          throw err;
        });
        if (tarDone) await tarDone;
        if (tarHasher) {
          await writeWaiting(true);
          dataSha256 = dataHash.digest('hex');
        }
        if (receiving) throw new Error('the account worker stopped in the middle of a file');
      } catch (err) {
        worker.done.catch(() => undefined);
        worker.child.kill('SIGKILL');
        sink?.abort();
        // The destination's own error (no space, read-only) rather than the broken stream it caused.
        throw tarError ?? err;
      } finally {
        signal?.removeEventListener('abort', stopWorker);
      }
      signal?.throwIfAborted();
      if (!sawEnd) throw new Error('the account worker stopped before the end of the walk');
      await sink?.finish();
      await index.end();
      await finished(indexOut.stream);
      indexSha256 = indexHash.digest('hex');
      stats.storedBytes += sink ? sink.storedBytes() : tarBytes;
      if (gz) await dest.writeFile(`${partial}/${layout.members}`, JSON.stringify(gz.members()));
    }

    signal?.throwIfAborted();
    progress('databases');
    if (req.items.includes('databases') || req.items.includes('database-users')) {
      // The MySQL client libraries load only when databases are part of the job.
      const { backupDatabases } = await import('./database-items.js');
      const result = await backupDatabases({
        account, dest, dir: partial, creds: await req.mysql(),
        databases: req.items.includes('databases'), users: req.items.includes('database-users'),
        ...(req.politeness ? { politeness: req.politeness } : {}), ...(signal ? { signal } : {}),
      });
      databases = result.databases;
      grants = result.grants;
      grantsSha256 = result.grantsSha256;
      stats.storedBytes += databases.reduce((n, d) => n + d.bytes, 0);
    }

    // The last moment a cancellation counts: once the manifest is written, the snapshot stands.
    signal?.throwIfAborted();
    progress('finishing');
    const manifest: Manifest = {
      format: 'tidemark-snapshot', version: 1, id, account: account.username, structure,
      status: stats.skipped > 0 ? 'partial' : 'completed', startedAt, finishedAt: new Date().toISOString(),
      items: req.items, previous, stats, skipped, databases, grants,
      accountInfo: { uid: account.uid, gid: account.gid, home: account.home, owner: account.owner, domains: account.domains },
      job: req.jobName,
      integrity: { algorithm: 'sha256', index: indexSha256, data: dataSha256, grants: grantsSha256 },
    };
    await dest.writeFile(`${partial}/${layout.manifest}`, JSON.stringify(manifest, null, 2) + '\n');
    await dest.rename(partial, layout.snapshotDir(account.username, id));
    return manifest;
  } catch (err) {
    await dest.remove(partial).catch(() => undefined);
    if (signal?.aborted) throw signal.reason;
    throw (err as NodeJS.ErrnoException).code ? describeFsError(err, `snapshot ${id} of ${account.username}`) : err;
  }
}
