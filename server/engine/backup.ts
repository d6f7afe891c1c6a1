import fs from 'node:fs';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Account } from '../panels/types.js';
import type { Destination } from '../destinations/types.js';
import { describeFsError } from '../destinations/errors.js';
import type { Item, Structure } from '../store/jobs.js';
import { BatchedWriter, StreamWriter } from '../util/stream-writer.js';
import { toDisplay, type BytePath } from '../util/byte-path.js';
import { encodeEntry, eventBatches, NO_REF, type Entry, type StreamEvent } from './format/entry.js';
import { TarHasher } from './format/tar-hasher.js';
import { spawnAccountWorker, type WorkerHandle } from './worker/spawn-worker.js';
import { BlobSink, type ContentSink } from './files-sink.js';
import { ObjectSink } from './object-sink.js';
import { FlushAheadPolicy } from './flush-ahead-policy.js';
import { OrderedRecords } from './ordered-records.js';
import { streamHash } from '../native/hash-off-loop.js';
import { pumpTar, tarPumpAvailable } from '../native/tar-pump.js';
import { closeQuietly } from '../util/close-fd.js';
import { ObjectLease, takeBackupLease } from './object-lease.js';
import { readManifestFile } from './manifest.js';
import { layout, newSnapshotId, type Manifest, type ManifestDatabase } from './snapshot-layout.js';
import { eachIndexEntry } from './snapshot-index.js';
import { createParallelGzip } from './format/parallel-gzip.js';
import type { MysqlCredentials } from '../panels/types.js';
import type { Politeness } from '../util/politeness.js';
import type { DatabaseOwnership } from '../panels/database-owner.js';
import type { SiteRecord } from './sites/site-record.js';
import { ChangeTracker, type SnapshotChanges } from './catalog/snapshot-changes.js';
import { PreviousBlobs } from './previous-blobs.js';
import { readDescriptorContent, SHRANK_REASON } from './descriptor-content.js';
import { holdLargeBufferReuse } from '../native/malloc-policy.js';

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
  /** Something the run worked around (a previous snapshot it could not use, databases it could not list). */
  onWarning?: (message: string) => void;
  /** Which account owns which database: the WordPress sites found are checked with it. */
  databaseOwnership?: () => Promise<DatabaseOwnership>;
  /**
   * Called once the snapshot is committed with what changed against the previous snapshot
   * (incremental with a previous snapshot only, and not when much changed): the path catalog
   * adds the snapshot from it without reading the index again.
   */
  onChanges?: (changes: SnapshotChanges) => void;
  /**
   * Runs while the snapshot's data is flushed, before its manifest is written (files only):
   * the new snapshot, a reader of its index and what changed (as onChanges) are handed over
   * so that the path catalog does its work during the flush instead of after the run. Must
   * not reject; the commit waits for it.
   */
  beforeCommit?: (snap: { id: string; finishedAt: string }, readIndex: (onEntry: (e: Entry) => void) => Promise<void>,
    changes: SnapshotChanges | null) => Promise<void>;
  /**
   * Files: called with the new snapshot before its walk; what it returns is handed every record
   * as it goes into the index, so that the path catalog writes the snapshot's rows during the
   * run (a first snapshot), not after the last file. It must not throw.
   */
  onIndexStart?: (snap: { id: string; startedAt: string }) => ((e: Entry) => void) | null;
}

const MAX_SKIPPED_LISTED = 500;
/**
 * Inflated previous index root may hold for the worker before it reads on: the worker reads it
 * as fast as it comes, and without a bound a slow start left most of the index queued in root.
 */
const TO_WORKER_AHEAD = 4 << 20;
/** How often a run asks the destination to start writing out what it wrote (Destination.flushAhead). */
const FLUSH_AHEAD_MS = 500;
/** How long a failed run waits for the destination's writes in flight before removing its partial folder. */
const ABORT_SETTLE_MS = 60_000;

/** Resolves when `w` has written what it holds, or can write no more (the worker died). */
const drained = (w: Writable): Promise<void> => new Promise((resolve) => {
  if (w.destroyed) { resolve(); return; }
  const done = (): void => { w.off('drain', done); w.off('close', done); w.off('error', done); resolve(); };
  w.on('drain', done);
  w.on('close', done);
  w.on('error', done);
});

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
 * The commit order (docs/snapshot-format.md): everything a power cut could lose is flushed
 * before what says it is there. Data, index, dumps and their folders first (one flush, which
 * the drivers batch); then the manifest, written to a temporary name, flushed, renamed, and
 * its folder flushed; then the folder's final name and the account folder. The caller writes
 * the catalog row only after this returns, so the catalog never lists what the destination
 * could lose.
 */
async function commit(dest: Destination, partial: string, final: string, folders: string[], manifest: string,
  meanwhile: (() => Promise<void>) | null): Promise<void> {
  const flushing = dest.flush(folders);
  // Both settle before anything else happens: a failed flush removes the folder `meanwhile` may still read.
  const [flushed] = await Promise.allSettled([flushing, meanwhile?.()]);
  if (flushed.status === 'rejected') throw flushed.reason;
  await dest.writeFile(`${partial}/${layout.manifest}`, manifest);
  await dest.flush([partial]);
  await dest.rename(partial, final);
  await dest.flush([final.slice(0, final.lastIndexOf('/'))]);
}

/** Passes bytes through unchanged, adding them to `hash`. */
function hashing(hash: crypto.Hash): Transform {
  return new Transform({ transform(chunk: Buffer, _enc, done) { hash.update(chunk); done(null, chunk); } });
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
  let sites: SiteRecord[] | undefined;
  let changes: SnapshotChanges | null = null;
  /** An incremental run's worker, started before the previous index is read (see below). */
  let early: WorkerHandle | null = null;
  /** Folders of the snapshot whose entries must be flushed before its manifest is written. */
  const folders: string[] = [partial];
  // Whole-file hashes (see docs/snapshot-format.md, "Integrity"): a truncated index or archive is found without parsing it.
  let indexSha256: string | null = null;
  let dataSha256: string | null = null;
  // Archive: the tar digest instead (integrity version 2), made by the parse that hashes each file.
  let tarDigest: string | null = null;
  const listSkipped = (path: BytePath, reason: string): void => {
    if (skipped.length < MAX_SKIPPED_LISTED) skipped.push({ path: toDisplay(path), reason });
  };
  const progress = (phase: BackupProgress['phase']): void => req.onProgress?.({ phase, files: stats.files, bytes: stats.bytes });

  // Without hard links, incremental content is shared between snapshots as objects: the run
  // holds a lease so that no sweep deletes an object it builds on (object-lease.ts).
  const objects = structure === 'incremental' && !dest.hardLinks && req.items.includes('files');
  let lease: ObjectLease | null = null;

  try {
    if (objects) {
      lease = await takeBackupLease(dest, account.username, id, signal);
    }
    // The WordPress sites, read as the run starts: the snapshot knows them, and a restore never
    // reads the live wp-config.php again. Only with files and databases: a site is both.
    if (req.items.includes('files') && req.items.includes('databases') && req.databaseOwnership) {
      try {
        const { discoverSites } = await import('./sites/discover-sites.js');
        const found = await discoverSites(account, {
          excludes: req.excludes, ownership: req.databaseOwnership, ...(req.politeness ? { politeness: req.politeness } : {}),
        });
        sites = found.sites;
        for (const w of found.warnings) req.onWarning?.(w);
      } catch (err) {
        req.onWarning?.(`WordPress sites were not looked for: ${(err as Error).message}`);
      }
    }
    if (req.items.includes('files')) {
      // An unchanged file's blob is the previous one: its hash is carried over with it.
      let prevBlobs: PreviousBlobs | null = null;
      let tracker: ChangeTracker | null = null;
      if (structure === 'incremental' && req.previousId) {
        try {
          // The object layout builds only on a snapshot in that layout (its objects exist).
          if (objects && (await readManifestFile(dest, account.username, req.previousId)).content !== 'objects') {
            throw new Error('it is not in the object layout this destination needs');
          }
          // Streamed: only the files' blob numbers and hashes are kept (packed).
          const blobs = new PreviousBlobs();
          if (req.onChanges) tracker = new ChangeTracker(id, req.previousId);
          // The worker starts now and reads the previous index (inflated, as root reads it) while
          // root checks it: the two parses overlap, and the walk starts as soon as the worker has
          // it. The worker only learns which files look unchanged: root accepts a previous blob
          // only once the whole index has passed its checks (prevBlobs), and otherwise stops this
          // worker and starts one without the index.
          early = spawnAccountWorker(account, { mode: 'backup', excludes: req.excludes, previous: true, tar: false },
            { ...(req.politeness ? { politeness: req.politeness } : {}), descriptors: true });
          const toWorker = early.input;
          await eachIndexEntry(dest, layout.snapshotDir(account.username, req.previousId), (e) => {
            tracker?.addBase(e);
            if (e.kind === 'f' && e.dataRef !== NO_REF) {
              if (objects && e.size > 0 && !e.hash) throw new Error(`${JSON.stringify(toDisplay(e.path))} has no content hash, so no object`);
              blobs.add(e.dataRef, e.hash);
            }
          }, (chunk) => (toWorker.write(chunk) || toWorker.writableLength < TO_WORKER_AHEAD ? undefined : drained(toWorker)));
          // Its stdin is ended only where root starts reading its output (below): a worker that
          // walked a small home and exited before anyone read its pipe would lose every record
          // (Node drains the unread pipes of a child that exits).
          prevBlobs = blobs;
          previous = req.previousId;
        } catch (err) {
          // A damaged or missing previous snapshot is no base: everything is stored anew.
          prevBlobs = null;
          early?.child.kill('SIGKILL');
          if (early?.descriptorFd != null) closeQuietly(early.descriptorFd);
          early = null;
          tracker = null;
          req.onWarning?.(`previous snapshot ${req.previousId} not used as a base (everything is stored again): ${(err as Error).message}`);
        }
      }

      // pipeline, not pipe: a failing destination file must fail the gzip stream that is
      // written to, or the writer waits for a drain that never comes.
      const indexGzip = zlib.createGzip({ level: 1 });
      const indexHash = crypto.createHash('sha256');
      const indexDone = pipeline(indexGzip, hashing(indexHash), dest.createWriteStream(`${partial}/${layout.index}`));
      indexDone.catch(() => undefined);
      const index = new BatchedWriter(new StreamWriter(indexGzip));

      // incremental: content arrives with the records and becomes blobs (BlobSink);
      // archive/compressed: the worker writes the tar to its fd 4, a pipe root hashes and stores.
      const sink: ContentSink | null = structure !== 'incremental' ? null
        : dest.hardLinks
          ? new BlobSink(dest, dest.hardLinks, partial, previous
            ? { dir: layout.snapshotDir(account.username, previous), blobs: prevBlobs!, clone: await dest.hardLinks.cloneIsServerSide() }
            : null)
          : new ObjectSink(dest, account.username, partial, previous ? { blobs: prevBlobs! } : null);
      const tarFile = `${partial}/${layout.data(structure)}`;
      // The tar passes through root (never written by the worker straight to the destination):
      // root hashes each file's content on the way, so a hash in the index is root's, not the account's.
      let tarDone: Promise<void> | null = null;
      let tarBytes = 0;
      // Compressed: hundreds of MiB, hashed on libuv's pool, off the event loop that reads the worker's tar.
      const dataHash = streamHash();
      let tarHasher: { takeHash(offset: number): Buffer | undefined } | null = null;
      let jsTarHasher: TarHasher | null = null;
      let gz: ReturnType<typeof createParallelGzip> | null = null;
      // Archive to a local file: the copy from the worker's pipe to the file, and every hash,
      // run on libuv's pool (native/tar-pump.c), not as a stream of 64 KiB chunks on the event loop.
      const native = structure === 'archive' && sink === null && tarPumpAvailable && dest.openWriteFd !== undefined;
      let pipeRead: number | null = null;
      let fileFd: number | null = null;
      if (native) fileFd = dest.openWriteFd!(tarFile);
      const closeNativeFds = (): void => {
        if (pipeRead !== null) closeQuietly(pipeRead);
        if (fileFd !== null) closeQuietly(fileFd);
        pipeRead = null;
        fileFd = null;
      };

      let worker: ReturnType<typeof spawnAccountWorker>;
      try {
        // native: the worker's fd 4 is a plain pipe whose read end root gets (tarReadFd).
        worker = early ?? spawnAccountWorker(account, { mode: 'backup', excludes: req.excludes, previous: false, tar: sink === null },
          { ...(req.politeness ? { politeness: req.politeness } : {}), ...(sink === null ? { tarFd: native ? 'fd' as const : 'pipe' as const } : { descriptors: true }) });
      } catch (err) {
        closeNativeFds();
        throw err;
      }
      pipeRead = worker.tarReadFd;
      // Large files come as descriptors (descriptor-content.ts): root checks each is on the home's filesystem.
      const descriptors = worker.descriptorFd;
      let homeDev: bigint | null = null;
      const releaseReuse = descriptors !== null ? holdLargeBufferReuse() : null;
      // Cancelling kills the walk; what it wrote so far goes with the partial folder.
      const stopWorker = (): void => { worker.child.kill('SIGKILL'); };
      signal?.addEventListener('abort', stopWorker, { once: true });
      // A destination that fails (full, read-only, I/O error) ends the run: the worker is
      // stopped at once, since it would otherwise wait forever on a pipe nobody reads.
      let tarError: Error | null = null;
      let nativeDone: Promise<{ bytes: number; tarDigest: Buffer }> | null = null;
      if (pipeRead !== null && fileFd !== null) {
        const pump = pumpTar(pipeRead, fileFd, (err) => { tarError ??= err; worker.child.kill('SIGKILL'); });
        tarHasher = pump;
        nativeDone = pump.done.then((r) => { tarBytes = r.bytes; return r; });
        // The descriptors are closed once no job of the pump uses them.
        tarDone = nativeDone.then(() => undefined).finally(closeNativeFds);
        tarDone.catch(() => undefined);
      } else if (worker.tar) {
        const file = dest.createWriteStream(tarFile);
        const hasher = new TarHasher({ digest: structure === 'archive' });
        tarHasher = hasher;
        jsTarHasher = hasher;
        const stored = new Transform({
          highWaterMark: 1 << 20,
          transform(chunk: Buffer, _enc, done) {
            tarBytes += chunk.length;
            const wait = structure === 'compressed' ? dataHash.update(chunk) : undefined;
            if (wait) wait.then(() => done(null, chunk), done);
            else done(null, chunk);
          },
        });
        // One pipeline from the worker's pipe to the file: when the destination fails (ENOSPC,
        // EROFS) every stage is destroyed, and the worker, which may be blocked writing its tar,
        // is stopped so that the run ends with that error instead of waiting forever.
        if (structure === 'compressed') {
          gz = createParallelGzip();
          tarDone = pipeline(worker.tar, hasher, gz, stored, file);
        } else {
          tarDone = pipeline(worker.tar, hasher, stored, file);
        }
        tarDone.catch((err: Error) => { tarError = err; worker.child.kill('SIGKILL'); });
      }
      indexDone.catch((err: Error) => { tarError ??= err; worker.child.kill('SIGKILL'); });
      // The worker walks once it has read the end of its input (the previous index, if any).
      if (!worker.input.writableEnded) worker.input.end();

      // The destination writes while the run goes on, not all at the commit's flush: incremental,
      // once enough new content was stored or enough unchanged files linked (flush-ahead-policy.ts);
      // archive, compressed, its one file as it grows.
      const policy = new FlushAheadPolicy();
      const aheadDue = (): boolean => !sink || policy.due(sink.storedBytes(), sink.linkedFiles?.() ?? 0);
      const ahead = dest.flushAhead ? setInterval(() => { if (aheadDue()) dest.flushAhead!(); }, FLUSH_AHEAD_MS) : null;
      let sawEnd = false;
      let lastReport = 0;
      // Incremental: the file whose content is arriving. Its record goes into the index once
      // the sink has stored and hashed that content (OrderedRecords keeps the walk's order).
      let receiving: Entry | null = null;
      // Archive, compressed: records wait (in order) until the tar has passed their content.
      const waiting: Entry[] = [];
      const onRecord = req.onIndexStart?.({ id, startedAt }) ?? null;
      const writeRecord = (e: Entry): Promise<void> | undefined => {
        e.prevRef = NO_REF;
        tracker?.addNew(e);
        onRecord?.(e);
        return index.write(encodeEntry(e));
      };
      const records = new OrderedRecords(writeRecord);
      /** Writes the waiting records whose content the tar has passed; a promise only when a write must be waited for. */
      const writeWaiting = (atEnd: boolean): Promise<void> | undefined => {
        while (waiting.length > 0) {
          const e = waiting[0]!;
          if (e.kind === 'f') {
            const h = tarHasher!.takeHash(e.dataRef);
            if (!h) {
              if (!atEnd) return undefined;
              throw new Error(`the account worker sent no content for ${JSON.stringify(toDisplay(e.path))} in its tar`);
            }
            e.hash = h;
          }
          waiting.shift();
          const written = writeRecord(e);
          if (written) return written.then(() => writeWaiting(atEnd));
        }
        return undefined;
      };
      const receiveContentEnd = async (): Promise<void> => {
        const { hash } = await sink!.endData();
        await records.push(receiving!, hash);
        receiving = null;
      };
      const receiveByDescriptor = async (e: Entry): Promise<void> => {
        if (!sink || e.kind !== 'f' || descriptors === null) throw new Error('the account worker sent a descriptor where none was asked for');
        await sink.begin(e, true);
        homeDev ??= fs.lstatSync(account.home, { bigint: true }).dev;
        const { shrank } = await readDescriptorContent(descriptors, homeDev, e.size, (piece) => sink.data(piece));
        const { hash } = await sink.endData();
        await records.push(e, hash);
        // Root's own notice, as the worker's would be for a file it read.
        if (shrank) {
          stats.skipped++;
          listSkipped(e.path, SHRANK_REASON);
        }
      };
      /** After the sink took a record: a file whose content follows waits for it, any other record goes to the index. */
      const afterBegin = (e: Entry, hasData: boolean): Promise<void> | undefined => {
        if (e.kind === 'f' && hasData) {
          receiving = e;
          return undefined;
        }
        if (e.kind === 'f') { const h = prevBlobs?.hashOf(e.dataRef); if (h) e.hash = h; }
        return records.push(e, null);
      };
      /**
       * One event of the worker's stream. Returns a promise only when the next event must wait
       * for it: the records of unchanged files and folders (nearly all of a second backup) are
       * taken without a promise each.
       */
      const receiveEvent = (ev: StreamEvent): Promise<void> | undefined => {
        if (ev.type === 'data') {
          if (!receiving) throw new Error('the account worker sent content for an entry that is not a file');
          return sink!.data(ev.chunk);
        }
        if (ev.type === 'data-end') {
          if (!receiving) throw new Error('the account worker sent content for an entry that is not a file');
          return receiveContentEnd();
        }
        if (ev.type === 'notice') {
          if (ev.kind === 'E') { sawEnd = true; return undefined; }
          // 'skipped:' notices are the account's own choice (.donotbackup); others are problems.
          if (ev.text.startsWith('skipped:')) stats.excluded++; else stats.skipped++;
          listSkipped(ev.path, ev.text);
          return undefined;
        }
        const e = ev.entry;
        if (!validRelative(e.path) || (e.kind === 'h' && !validRelative(e.link))) {
          throw new Error('the account worker sent an invalid path');
        }
        // A hash is root's own, never the worker's.
        delete e.hash;
        if (e.kind === 'd') stats.directories++;
        else if (e.kind === 'l') stats.links++;
        else { stats.files++; stats.bytes += e.size; }
        const now = Date.now();
        if (now - lastReport > 1000) { lastReport = now; progress('files'); }
        if (ev.byDescriptor) return receiveByDescriptor(e);
        if (sink) {
          const began = sink.begin(e, ev.hasData);
          return began ? began.then(() => afterBegin(e, ev.hasData)) : afterBegin(e, ev.hasData);
        }
        if (ev.hasData) throw new Error('the account worker sent content outside its tar');
        waiting.push(e);
        return writeWaiting(false);
      };
      // The loop over the worker's records is a function of its own: the hot code V8 optimizes
      // (and optimizes again after each deoptimization) is this loop, not the whole of
      // backupAccount, whose on-stack replacement took 0.2-0.5 CPU-s of compilation per run.
      // The events come by read (eventBatches), each read's in a plain loop.
      const receive = async (): Promise<void> => {
        for await (const events of eventBatches(worker.output)) {
          for (const ev of events) {
            const wait = receiveEvent(ev);
            if (wait) await wait;
          }
        }
      };
      try {
        await receive();
        // When the destination fails, the worker dies of a broken pipe: report the cause.
        await worker.done.catch(async (err: unknown) => {
          if (tarDone) await tarDone;
          throw err;
        });
        if (tarDone) await tarDone;
        if (tarHasher) {
          await writeWaiting(true);
          if (nativeDone) tarDigest = (await nativeDone).tarDigest.toString('hex');
          else if (structure === 'archive') tarDigest = jsTarHasher!.tarDigest().toString('hex');
          else dataSha256 = (await dataHash.digest()).toString('hex');
        }
        if (receiving) throw new Error('the account worker stopped in the middle of a file');
      } catch (err) {
        // The worker's stream ended in the middle: it died, and how it died is the cause.
        const died = worker.output.readableEnded && !tarError
          ? await Promise.race([worker.done.then(() => null, (e: Error) => e), new Promise<null>((r) => setTimeout(() => r(null), 2000).unref())])
          : null;
        worker.child.kill('SIGKILL');
        // The partial folder is removed below: nothing may still be writing into it then. A
        // destination that never answers must not hold the error back for ever; a folder left
        // by a write that outlives the wait goes with the next run's clean-up (removeLeftovers).
        if (sink) await Promise.race([sink.abort(), new Promise((r) => setTimeout(r, ABORT_SETTLE_MS).unref())]);
        // The pump ends once the killed worker's pipe does; its descriptors close then.
        if (tarDone) await tarDone.catch(() => undefined);
        throw tarError ?? died ?? err;
      } finally {
        if (ahead) clearInterval(ahead);
        signal?.removeEventListener('abort', stopWorker);
        if (descriptors !== null) closeQuietly(descriptors);
        releaseReuse?.();
      }
      signal?.throwIfAborted();
      if (!sawEnd) throw new Error('the account worker stopped before the end of the walk');
      await sink?.finish();
      await records.finish();
      await index.end();
      await indexDone;
      indexSha256 = indexHash.digest('hex');
      stats.storedBytes += sink ? sink.storedBytes() : tarBytes;
      if (sink) folders.push(...sink.folders());
      if (gz) await dest.writeFile(`${partial}/${layout.members}`, JSON.stringify(gz.members()));
      changes = tracker?.finish() ?? null;
    }

    signal?.throwIfAborted();
    progress('databases');
    const problems: { item: string; reason: string }[] = [];
    const wantsDatabases = req.items.includes('databases') || req.items.includes('database-users');
    if (wantsDatabases && account.databaseProblem) {
      // The files are kept: the snapshot is partial and says why its databases are missing.
      for (const item of req.items.filter((i) => i === 'databases' || i === 'database-users')) problems.push({ item, reason: account.databaseProblem });
      req.onWarning?.(`${account.databaseProblem}: the snapshot holds no databases`);
    } else if (wantsDatabases) {
      // The MySQL client libraries load only when databases are part of the job.
      const { backupDatabases } = await import('./database-items.js');
      const result = await backupDatabases({
        account, dest, dir: partial, creds: await req.mysql(),
        databases: req.items.includes('databases'), users: req.items.includes('database-users'),
        ...(req.politeness ? { politeness: req.politeness } : {}), ...(signal ? { signal } : {}),
      });
      databases = result.databases;
      grants = result.grants;
      if (databases.length > 0 || grants) folders.push(`${partial}/databases`);
      grantsSha256 = result.grantsSha256;
      stats.storedBytes += databases.reduce((n, d) => n + d.bytes, 0);
    }

    // The last moment a cancellation counts: once the manifest is written, the snapshot stands.
    signal?.throwIfAborted();
    progress('finishing');
    const manifest: Manifest = {
      format: 'tidemark-snapshot', version: 1, id, account: account.username, structure,
      status: stats.skipped > 0 || problems.length > 0 ? 'partial' : 'completed', startedAt, finishedAt: new Date().toISOString(),
      items: req.items, previous, stats, skipped, databases, grants, ...(problems.length > 0 ? { problems } : {}),
      ...(sites ? { sites } : {}),
      accountInfo: { uid: account.uid, gid: account.gid, home: account.home, owner: account.owner, domains: account.domains },
      job: req.jobName,
      integrity: {
        algorithm: 'sha256', version: 2, index: indexSha256, data: dataSha256,
        ...(structure === 'archive' ? { tar: tarDigest } : {}), grants: grantsSha256,
      },
      ...(objects ? { content: 'objects' as const } : {}),
    };
    await lease?.confirm();
    // The index is complete (files item): the catalog reads it from the partial folder while the data is flushed.
    const { beforeCommit } = req;
    const meanwhile = beforeCommit && indexSha256 !== null
      ? () => beforeCommit({ id, finishedAt: manifest.finishedAt }, (onEntry) => eachIndexEntry(dest, partial, onEntry), changes)
      : null;
    await commit(dest, partial, layout.snapshotDir(account.username, id), folders, JSON.stringify(manifest, null, 2) + '\n', meanwhile);
    await lease?.release().catch(() => undefined);
    if (changes) req.onChanges?.(changes);
    return manifest;
  } catch (err) {
    // Started early and never handed to the walk (something failed in between): it goes too.
    early?.child.kill('SIGKILL');
    await dest.remove(partial).catch(() => undefined);
    await lease?.release().catch(() => undefined);
    if (signal?.aborted) throw signal.reason;
    throw (err as NodeJS.ErrnoException).code ? describeFsError(err, `snapshot ${id} of ${account.username}`) : err;
  }
}
