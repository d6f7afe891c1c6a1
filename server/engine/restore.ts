import fs from 'node:fs';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { Account, MysqlCredentials } from '../panels/types.js';
import type { DatabaseOwnership } from '../panels/database-owner.js';
import type { Destination } from '../destinations/types.js';
import type { BytePath } from '../util/byte-path.js';
import { encodeEntry } from './format/entry.js';
import { spawnAccountWorker } from './worker/spawn-worker.js';
import type { RestoreResult, RestoreWriterOptions } from './worker/restore-writer.js';
import { ACCOUNT_NAME, layout, type Manifest } from './snapshot-layout.js';
import { readManifestFile } from './manifest.js';
import { ownerMapping } from './restore-owner.js';
import { limits, parseJson, readBounded, requireRegularFile } from './untrusted-input.js';
import { readIndex } from './snapshot-index.js';
import { selectEntries, type Selected } from './selection.js';
import { contentLayout, snapshotContentBatches, snapshotContentSync, type ContentEvent } from './snapshot-content.js';
import { descriptorMode, fromIndex, fromList, sendByDescriptors, type DescriptorMode, type EntrySource } from './restore-descriptors.js';
import { spawnOnSocketPair, startStreamedWriter } from './writer-stream.js';
import { holdLargeBufferReuse } from '../native/malloc-policy.js';
import { noOptimizingCompilerForDescriptorRestore } from '../util/batch-gc.js';

export interface RestoreRequest {
  account: Account;
  destination: Destination;
  snapshotId: string;
  /** Paths inside the home to restore; empty with `files` = the whole home. */
  paths: BytePath[];
  files: boolean;
  databases: { name: string; as?: string }[];
  /** Restore files into a new folder inside the home instead of into place. */
  intoFolder: boolean;
  /** Paths below the chosen ones that are left out with all they hold (another site nested in a site's folder). */
  excludePaths?: BytePath[];
  /** Into place: what the chosen paths hold now and the snapshot does not is moved into a new folder of the home (see restore-writer.ts). */
  moveAsideExtra?: boolean;
  mysql: () => Promise<MysqlCredentials>;
  /** The panel's rule of which account owns which database (and database user) name. */
  databaseOwnership: () => Promise<DatabaseOwnership>;
  /** Called now and then while files are written, and once when they all are. */
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreProgress {
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
}

/** Pieces of the stream to the restore writer smaller than this are gathered into one write. */
const GATHER_BELOW = 64 << 10;
/**
 * The same from a remote destination, whose content comes in pieces of at most one SSH
 * packet (32 KiB) instead of whole files: gathered into writes as large as a file's were.
 */
const REMOTE_GATHER_BELOW = 256 << 10;

/** At most this often: every call is a write to the state store. */
const PROGRESS_EVERY_MS = 500;

export interface RestoreOutcome {
  files: RestoreResult | null;
  folder: string | null;
  databases: { name: string; restoredAs: string }[];
  /** Grant statements of the snapshot that were not run (they reach beyond the account). */
  databaseWarnings: string[];
}

/** The manifest of a snapshot, validated and bounded (see manifest.ts), and checked to be this account's. */
export async function readManifest(dest: Destination, account: string, id: string): Promise<Manifest> {
  const m = await readManifestFile(dest, account, id);
  if (m.id !== id || (m.account !== account && !(await formerNames(dest, account)).includes(m.account))) {
    throw new Error(`snapshot ${id} of ${account}: the manifest does not match`);
  }
  return m;
}

/** Names the account had before a rename (see layout.accountMeta): their manifests are still its own. */
async function formerNames(dest: Destination, account: string): Promise<string[]> {
  try {
    const what = `${layout.accountMeta(account)}`;
    const meta = parseJson(await readBounded(dest, layout.accountMeta(account), limits.accountMetaBytes, what), what) as { formerNames?: unknown };
    return Array.isArray(meta.formerNames) ? meta.formerNames.filter((n): n is string => typeof n === 'string' && ACCOUNT_NAME.test(n)) : [];
  } catch {
    return [];
  }
}

/**
 * Restores files (written by an account worker as the account) and databases (through
 * the MySQL server) from one snapshot.
 */
export async function restoreSnapshot(req: RestoreRequest): Promise<RestoreOutcome> {
  const { account, destination: dest } = req;
  const dir = layout.snapshotDir(account.username, req.snapshotId);
  const manifest = await readManifest(dest, account.username, req.snapshotId);
  const outcome: RestoreOutcome = { files: null, folder: null, databases: [], databaseWarnings: [] };

  // One rule with discovery: the target must be a name of this account (the longest account
  // prefix wins, a name the panel lists for another account is that account's), whether it exists or not.
  const ownership = req.databases.length > 0 ? await req.databaseOwnership() : null;
  for (const db of req.databases) {
    if (!manifest.databases.some((d) => d.name === db.name)) throw new Error(`database ${db.name} is not in snapshot ${req.snapshotId}`);
    const target = db.as ?? db.name;
    if (!ownership!.owns(account.username, 'database', target)) {
      throw new Error(`database ${target} is not a database name of account ${account.username} (its names start with ${account.username}_ and are no other account's)`);
    }
  }

  if (req.files) {
    if (!manifest.items.includes('files')) throw new Error(`snapshot ${req.snapshotId} holds no files`);
    const folder = req.intoFolder ? `tidemark-restore-${req.snapshotId}-${Date.now().toString(36)}` : '';
    // Content by descriptor: the writer starts now, so that its start-up overlaps reading the
    // index (it makes the folder only once the first record comes).
    const prune = req.moveAsideExtra && !req.intoFolder
      ? { roots: req.paths, keep: req.excludePaths ?? [], aside: `tidemark-moved-aside-${req.snapshotId}-${Date.now().toString(36)}` }
      : undefined;
    const byFd = descriptorMode(dest, dir, manifest.structure, contentLayout(manifest).objects === true);
    const early = byFd ? startDescriptorWriter(account, folder, byFd, dir, prune) : null;
    if (byFd) noOptimizingCompilerForDescriptorRestore();
    // The whole home by descriptor: the index goes to the writer as it is read, never held
    // whole (every entry is selected as it is; see selectEntries). The totals shown while it
    // runs are the backup's own; the last report gives what was restored.
    const streamed = early !== null && req.paths.length === 0 && (req.excludePaths ?? []).length === 0;
    let selected: Selected[] = [];
    if (!streamed) {
      try {
        selected = withoutPaths(selectEntries(await readIndex(dest, dir), req.paths), req.excludePaths ?? []);
      } catch (err) {
        await early?.abandon();
        throw err;
      }
    }
    const progress: RestoreProgress = { files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
    if (streamed) { progress.totalFiles = manifest.stats.files; progress.totalBytes = manifest.stats.bytes; }
    for (const sel of selected) if (sel.entry.kind === 'f' && !sel.ancestor) { progress.totalFiles++; progress.totalBytes += sel.entry.size; }
    let reportedAt = 0;
    const report = (force: boolean): void => {
      if (!req.onProgress || (!force && Date.now() - reportedAt < PROGRESS_EVERY_MS)) return;
      reportedAt = Date.now();
      req.onProgress({ ...progress });
    };
    report(true);
    const asAccountNow = ownerMapping(manifest.accountInfo, account);
    if (early) {
      const entries = streamed ? fromIndex(dest, dir) : fromList(selected);
      outcome.files = await restoreByDescriptors(early, dest, dir, manifest.structure, entries, folder, (sel, source) => {
        const e = asAccountNow(sel.entry);
        if (e.kind === 'f' && !sel.ancestor) { progress.files++; progress.bytes += source.size; }
        report(false);
        return e.kind === 'f' ? { ...e, hash: source.hash } : { ...e, hash: undefined };
      });
      if (streamed) { progress.totalFiles = progress.files; progress.totalBytes = progress.bytes; }
      report(true);
      outcome.folder = req.intoFolder ? folder : null;
      return restoreDatabases(req, manifest, dir, ownership, outcome);
    }
    // From a remote destination all the content passes through the writer's stream (see
    // RestoreWriterOptions.remoteContent), and the writer checks it against the hashes where it
    // writes it (most files in its pool's jobs), not root: root's main thread, which decrypts,
    // parses and forwards every byte, is what such a restore waits for.
    const remote = !dest.openForReads;
    const { worker, input } = startStreamedWriter(account, { mode: 'restore', intoFolder: folder, ...(prune ? { prune } : {}), contentChecked: !remote, ...(remote ? { remoteContent: true } : {}) });
    const chunks: Buffer[] = [];
    worker.output.on('data', (c: Buffer) => chunks.push(c));
    // The pieces go out in one writev (corked), not copied into one buffer first.
    const write = async (parts: Buffer[]): Promise<void> => {
      if (parts.length > 1) input.cork();
      let room = true;
      for (const p of parts) room = input.write(p);
      if (parts.length > 1) input.uncork();
      if (!room || input.writableNeedDrain) {
        await new Promise<void>((resolve, reject) => {
          input.once('drain', resolve);
          worker.done.catch(reject);
        });
      }
    };
    // Records and pieces of content are gathered into larger writes to the pipe (a system
    // call and a write request cost the same whatever their size).
    let gathered: Buffer[] = [];
    let gatheredBytes = 0;
    const gatherBelow = dest.openForReads ? GATHER_BELOW : REMOTE_GATHER_BELOW;
    const flush = async (): Promise<void> => {
      if (gatheredBytes === 0) return;
      const parts = gathered;
      gathered = [];
      gatheredBytes = 0;
      await write(parts);
    };
    // A promise only when something is written: most pieces are only gathered, and an
    // await per piece costs more than gathering it.
    const send = (b: Buffer): Promise<void> | undefined => {
      gathered.push(b);
      gatheredBytes += b.length;
      return gatheredBytes >= gatherBelow ? flush() : undefined;
    };
    // Every byte from a remote destination passes through root in short-lived Buffers (64 KiB
    // socket reads, the pieces cut from them): glibc keeps the memory they free instead of
    // handing back the top of its heap and faulting it in again (see holdLargeBufferReuse).
    const releaseReuse = remote ? holdLargeBufferReuse() : null;
    try {
      const handle = (ev: ContentEvent): Promise<void> | undefined => {
        if (ev.type === 'entry') {
          const e = asAccountNow(ev.sel.entry);
          // The expected hash goes with the entry (the writer keeps an existing file that
          // already holds it); root checks the content as it sends it (snapshotContent), or,
          // from a remote destination, the writer checks it (checkedByConsumer).
          const hash = e.kind === 'f' ? (ev.sel.contentFrom ?? e).hash : undefined;
          if (e.kind === 'f' && !ev.sel.ancestor) progress.files++;
          report(false);
          return send(encodeEntry(hash ? { ...e, hash } : { ...e, hash: undefined }, e.kind === 'f', ev.sel.ancestor));
        } else if (ev.type === 'data') {
          progress.bytes += ev.chunk.length;
          report(false);
          return send(ev.chunk);
        }
        return undefined;
      };
      // Local destinations read synchronously: no promise per event, only where a write waits.
      const events = await snapshotContentSync(dest, dir, manifest.structure, selected, contentLayout(manifest));
      if (events) {
        for (const ev of events) { const sent = handle(ev); if (sent) await sent; }
      } else {
        for await (const batch of snapshotContentBatches(dest, dir, manifest.structure, selected, { ...contentLayout(manifest), ...(remote ? { checkedByConsumer: true } : {}) })) {
          for (const ev of batch) { const sent = handle(ev); if (sent) await sent; }
        }
      }
      await flush();
      input.end();
      await worker.done;
      report(true);
    } catch (err) {
      // What was gathered is complete and checked: those files are restored. The writer is
      // then told the stream ended, so it removes the file it was writing; killed only if it
      // does not stop by itself.
      await flush().catch(() => undefined);
      input.end();
      const stopped = await Promise.race([worker.done.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
      if (!stopped) { worker.child.kill('SIGKILL'); await worker.done.catch(() => undefined); }
      // What was written stays where the account can see it: the message says where.
      if (req.intoFolder) (err as Error).message += ` (the files restored so far are in the folder ${folder} of the home)`;
      throw err;
    } finally {
      input.destroy();
      releaseReuse?.();
    }
    outcome.files = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RestoreResult;
    outcome.folder = req.intoFolder ? folder : null;
  }
  return restoreDatabases(req, manifest, dir, ownership, outcome);
}

async function restoreDatabases(req: RestoreRequest, manifest: Manifest, dir: string, ownership: DatabaseOwnership | null, outcome: RestoreOutcome): Promise<RestoreOutcome> {
  const { account, destination: dest } = req;
  if (req.databases.length > 0) {
    const { restoreDatabaseGrants, restoreDatabaseItem } = await import('./database-items.js');
    const creds = await req.mysql();
    const renames = new Map<string, string>();
    for (const db of req.databases) if (db.as && db.as !== db.name) renames.set(db.name, db.as);
    // Users first: views, triggers and routines name them as definers.
    if (manifest.grants) {
      const raw = await readBounded(dest, `${dir}/${layout.grants}`, limits.grantsBytes, `snapshot ${req.snapshotId} of ${account.username}: ${layout.grants}`);
      const expected = manifest.integrity?.grants;
      if (expected && crypto.createHash('sha256').update(raw).digest('hex') !== expected) {
        throw new Error(`snapshot ${req.snapshotId} of ${account.username}: ${layout.grants} does not match its hash: the destination copy is damaged; nothing was restored from it`);
      }
      const grantsSql = raw.toString('utf8');
      const { skipped } = await restoreDatabaseGrants(creds, grantsSql, renames, { account: account.username, ownership: ownership! });
      outcome.databaseWarnings.push(...skipped);
    }
    // Every dump is checked whole before any statement of it runs: a damaged dump is refused, not half-applied.
    for (const db of req.databases) {
      const item = manifest.databases.find((d) => d.name === db.name)!;
      if (item.sha256) await checkStoredHash(dest, `${dir}/${layout.database(db.name)}`, item.sha256, `snapshot ${req.snapshotId} of ${account.username}: ${layout.database(db.name)}`);
    }
    for (const db of req.databases) {
      // The layout names the file, never the manifest (see manifest.ts).
      const sql = dest.createReadStream(`${dir}/${layout.database(db.name)}`).pipe(zlib.createGunzip());
      await restoreDatabaseItem(creds, db.as ?? db.name, sql);
      outcome.databases.push({ name: db.name, restoredAs: db.as ?? db.name });
    }
  }
  return outcome;
}

interface DescriptorWriter {
  worker: ReturnType<typeof spawnAccountWorker>;
  sock: number;
  chunks: Buffer[];
  closeSock: () => void;
  /** Nothing is sent after all: the writer ends without making its folder. */
  abandon: () => Promise<void>;
}

/** The account's writer for a restore by descriptor, its stdin one end of a new socket pair. */
function startDescriptorWriter(account: Account, folder: string, mode: DescriptorMode, snapshot: string,
  prune: RestoreWriterOptions['prune']): DescriptorWriter {
  const { worker, sock } = spawnOnSocketPair(account, { mode: 'restore', intoFolder: folder, ...(prune ? { prune } : {}), contentFds: mode, snapshot });
  const chunks: Buffer[] = [];
  worker.output.on('data', (c: Buffer) => chunks.push(c));
  let open = true;
  const closeSock = (): void => { if (open) { open = false; fs.closeSync(sock); } };
  const abandon = async (): Promise<void> => {
    closeSock();
    await worker.done.catch(() => undefined);
  };
  return { worker, sock, chunks, closeSock, abandon };
}

/**
 * A restore (into the new folder `folder`, or in place when it is '') whose content the
 * writer reads itself from descriptors root hands it (restore-descriptors.ts) over a socket
 * pair that is the writer's stdin. On failure the message says where the files restored so
 * far are (a new folder).
 */
async function restoreByDescriptors(started: DescriptorWriter, dest: Destination, dir: string, structure: Manifest['structure'], entries: EntrySource,
  folder: string, record: Parameters<typeof sendByDescriptors>[5]): Promise<RestoreResult> {
  const { worker, sock, chunks, closeSock } = started;
  const sent = { any: false };
  const sending = sendByDescriptors(sock, dest, dir, structure, entries, record, sent);
  sending.catch(() => undefined);
  const settled = (p: Promise<unknown>): Promise<boolean> => Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
  try {
    // A writer that fails stops reading: its exit is the error, not sends left waiting.
    await Promise.race([sending, worker.done.then(() => new Promise<never>(() => undefined))]);
    closeSock();
    await worker.done;
  } catch (err) {
    // The socket is closed only once no send uses it (a pool thread may still be in one);
    // with the writer gone they fail at once.
    if (!(await settled(sending))) { worker.child.kill('SIGKILL'); await sending.catch(() => undefined); }
    closeSock();
    if (!(await settled(worker.done))) { worker.child.kill('SIGKILL'); await worker.done.catch(() => undefined); }
    // The writer's own failure (a damaged copy it found) says more than a broken socket.
    const own = await worker.done.then(() => null, (e: unknown) => e as Error);
    const code = (err as NodeJS.ErrnoException).code;
    const shown = own && (err === own || code === 'EPIPE' || code === 'ECONNRESET') ? own : err as Error;
    // Nothing sent (a streamed index refused at its start): the writer made no folder.
    if (sent.any && folder !== '') shown.message += ` (the files restored so far are in the folder ${folder} of the home)`;
    throw shown;
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as RestoreResult;
}

/** The selection without the entries at or below `excluded`. */
export function withoutPaths<T extends { entry: { path: BytePath } }>(selected: T[], excluded: readonly BytePath[]): T[] {
  if (excluded.length === 0) return selected;
  return selected.filter((s) => !excluded.some((x) => s.entry.path === x || s.entry.path.startsWith(`${x}/`)));
}

/** Reads a stored file whole and compares its SHA-256 with `expected`; throws naming `what` when it differs or is missing. */
export async function checkStoredHash(dest: Destination, rel: string, expected: string, what: string): Promise<void> {
  const got = await hashStoredFile(dest, rel, what);
  if (got !== expected) throw new Error(`${what} does not match its hash: the destination copy is damaged; nothing was restored from it`);
}

export async function hashStoredFile(dest: Destination, rel: string, what: string): Promise<string> {
  const slash = rel.lastIndexOf('/');
  await requireRegularFile(dest, rel.slice(0, slash), rel.slice(slash + 1), what);
  const hash = crypto.createHash('sha256');
  for await (const chunk of dest.createReadStream(rel) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}
