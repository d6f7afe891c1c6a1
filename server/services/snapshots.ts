import type { LogAudience } from '../store/tasks.js';
import type { Writable } from 'node:stream';
import type { SnapshotRecord } from '../store/snapshots.js';
import { isUtf8, toDisplay, type BytePath } from '../util/byte-path.js';
import type { Entry } from '../engine/format/entry.js';
import { layout } from '../engine/snapshot-layout.js';
import { listChildren, NotInSnapshotError } from '../engine/selection.js';
import { readManifest, restoreSnapshot, type RestoreOutcome } from '../engine/restore.js';
import { restoreSiteFromSnapshot } from '../engine/sites/restore-site.js';
import { downloadSite } from '../engine/sites/download-site.js';
import type { SiteRecord } from '../engine/sites/site-record.js';
import type { LoadedDump } from '../engine/database/table-swap.js';
import { downloadFile, downloadSnapshot, openDownloadFile } from '../engine/download.js';
import { ContentDamagedError } from '../engine/snapshot-content.js';
import { AccountBusyError, lockAccount, lockAccountWhenFree } from '../engine/account-lock.js';
import { freeUnusedObjects, removeSnapshotData } from './retention.js';
import type { SweepOutcome } from '../engine/object-sweep.js';
import { queueOf, TaskCancelled } from '../queue/task-queue.js';
import { PRIORITIES } from '../queue/priority.js';
import { runAsTask } from '../queue/run-task.js';
import { UserError, type Context } from './context.js';
import { getDestination, withDriver } from './destinations.js';
import type { DestinationRecord } from '../store/destinations.js';
import { isAccountOwned, mayActOnAccount, maySeeSnapshotsOn, ownerOf, PROVIDER, ROOT, type Actor } from './actor.js';
import { checkMay } from './permissions.js';
import { runHooks, type HookInput } from '../hooks/runner.js';
import { holderSafeMessage, logDetailForProvider } from './holder-message.js';
import { notifyRestoreResult } from '../notify/restore-result.js';
import { currentIdentityId } from './account-identity.js';
import { bytePathProblem, localPathProblem, quoteInput } from '../util/input-checks.js';

/**
 * Whose a snapshot is, for the rules below: the account now of its name (`current`), a
 * former account of that name (`former`, the provider's now), or nobody's but the provider's.
 */
export type SnapshotHolder = 'current' | 'former' | 'provider';

/** Caches, within one question, the identity each account name stands for now. */
export type IdentityCache = Map<string, Promise<number | null>>;

export async function holderOf(ctx: Context, s: Pick<SnapshotRecord, 'account' | 'accountId'>, cache: IdentityCache = new Map()): Promise<SnapshotHolder> {
  if (s.accountId === null || s.accountId === undefined) return 'provider';
  let p = cache.get(s.account);
  if (!p) { p = currentIdentityId(ctx, s.account); cache.set(s.account, p); }
  return (await p) === s.accountId ? 'current' : 'former';
}

/**
 * Keeps the snapshots `actor` may see: for an account holder its own account's, on its own
 * destinations and on the provider's whose snapshots are visible; for a reseller those of
 * its accounts on the provider's visible destinations. "Its own account" is the account as
 * it is now: the snapshots of a removed account of the same name are the provider's, and
 * only the reseller that owned that account still sees them.
 */
async function visibleTo(ctx: Context, actor: Actor, snapshots: SnapshotRecord[]): Promise<SnapshotRecord[]> {
  if (actor.role === 'admin') return snapshots;
  const destinations = new Map<number, boolean>();
  const accounts = new Map<string, boolean>();
  const identities: IdentityCache = new Map();
  const out: SnapshotRecord[] = [];
  for (const s of snapshots) {
    if (!destinations.has(s.destinationId)) {
      const d = ctx.store.destinations.byId(s.destinationId);
      destinations.set(s.destinationId, d !== null && maySeeSnapshotsOn(actor, d));
    }
    if (!destinations.get(s.destinationId)) continue;
    const holder = await holderOf(ctx, s, identities);
    if (holder === 'current') {
      if (!accounts.has(s.account)) accounts.set(s.account, await mayActOnAccount(ctx, actor, s.account));
      if (accounts.get(s.account)) out.push(s);
    } else if (holder === 'former' && actor.role === 'reseller' && ctx.store.accounts.byId(s.accountId!)?.owner === actor.name) {
      out.push(s);
    }
  }
  return out;
}

/** Refuses, as "not found", a snapshot `actor` may not see. */
async function checkMaySee(ctx: Context, actor: Actor, s: SnapshotRecord): Promise<void> {
  if ((await visibleTo(ctx, actor, [s])).length === 0) throw new UserError(`no snapshot ${s.id}`);
}

/**
 * A destination named to filter snapshots by. An account holder may name its own
 * destinations and the provider's whose snapshots it sees (its own first).
 */
function destinationForSnapshots(ctx: Context, name: string, actor: Actor, owner?: string): DestinationRecord {
  if (actor.role === 'admin') return getDestination(ctx, name, actor, owner);
  const seen = ctx.store.destinations.allNamed(name).filter((d) => maySeeSnapshotsOn(actor, d) && (owner === undefined || d.owner === owner));
  const d = seen.find((x) => x.owner === ownerOf(actor)) ?? seen.find((x) => x.owner === PROVIDER);
  if (!d) throw new UserError(`no destination named "${name}"`);
  return d;
}

export interface SnapshotFilter {
  account?: string;
  /** A destination name; `owner` picks an account's destination of that name. */
  destination?: string;
  owner?: string;
}

/** The snapshots `actor` may see, newest first. */
export async function listSnapshots(ctx: Context, filter: SnapshotFilter = {}, actor: Actor = ROOT): Promise<SnapshotRecord[]> {
  const where: { account?: string; destinationId?: number } = {};
  if (filter.account !== undefined) where.account = filter.account;
  if (actor.role === 'user') {
    if (filter.account !== undefined && filter.account !== actor.name) return [];
    where.account = actor.name;
  }
  if (filter.destination !== undefined) where.destinationId = destinationForSnapshots(ctx, filter.destination, actor, filter.owner).id;
  return visibleTo(ctx, actor, ctx.store.snapshots.list(where));
}

/** The snapshot of this id that `actor` may see; `destinationName` tells apart equal ids on several destinations. */
export async function findSnapshot(ctx: Context, id: string, destinationName?: string, actor: Actor = ROOT, owner?: string): Promise<SnapshotRecord> {
  let found = await visibleTo(ctx, actor, ctx.store.snapshots.byId(id));
  if (destinationName !== undefined) {
    const d = destinationForSnapshots(ctx, destinationName, actor, owner);
    found = found.filter((s) => s.destinationId === d.id);
  }
  if (found.length === 0) throw new UserError(`no snapshot ${id}`);
  if (found.length > 1) throw new UserError(`snapshot ${id} exists on several destinations; add --destination`);
  return found[0]!;
}

export function describeSnapshot(ctx: Context, s: SnapshotRecord): Record<string, unknown> {
  return {
    id: s.id, account: s.account, destination: ctx.store.destinations.byId(s.destinationId)?.name ?? null,
    job: s.jobId === null ? null : ctx.store.jobs.byId(s.jobId)?.name ?? null, structure: s.structure, status: s.status,
    startedAt: s.startedAt, finishedAt: s.finishedAt, items: s.items, files: s.files, bytes: s.bytes, storedBytes: s.storedBytes,
    databases: s.databases, locked: s.locked, note: s.note, schedule: s.schedule ?? 'manual',
    // Taken of an account since removed (or of nobody known): the provider's, see `account identities`.
    formerAccount: s.accountId === null || s.accountId === undefined || ctx.store.accounts.byId(s.accountId)?.removedAt !== null,
  };
}

const TYPE_NAMES: Record<Entry['kind'], string> = { f: 'file', d: 'directory', l: 'symlink', h: 'hardlink', p: 'fifo' };

/** How a path appears in JSON: `path` is exact when it is UTF-8; otherwise `pathBase64` holds the bytes. */
export function describeEntry(e: Entry): Record<string, unknown> {
  const out: Record<string, unknown> = {
    path: toDisplay(e.path), name: toDisplay(e.path.slice(e.path.lastIndexOf('/') + 1)), type: TYPE_NAMES[e.kind],
    size: e.size, mode: (e.mode & 0o7777).toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid,
    mtime: new Date(e.mtimeSec * 1000 + Math.floor(e.mtimeNsec / 1e6)).toISOString(),
  };
  if (!isUtf8(e.path)) out.pathBase64 = Buffer.from(e.path, 'latin1').toString('base64');
  if (e.kind === 'l' || e.kind === 'h') out.target = toDisplay(e.link);
  return out;
}

export async function snapshotFiles(ctx: Context, s: SnapshotRecord, dir: BytePath, actor: Actor = ROOT): Promise<Entry[]> {
  await checkMaySee(ctx, actor, s);
  try {
    return await withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (dest) => listChildren(dest, layout.snapshotDir(s.account, s.id), dir));
  } catch (err) {
    if (err instanceof NotInSnapshotError) throw new UserError((err as Error).message, 'not-found');
    if ((err as Error).message.startsWith('path may not contain')) throw new UserError((err as Error).message, 'invalid-input');
    throw err;
  }
}

export async function snapshotManifest(ctx: Context, s: SnapshotRecord, actor: Actor = ROOT): Promise<unknown> {
  await checkMaySee(ctx, actor, s);
  return withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (dest) => readManifest(dest, s.account, s.id));
}

export interface RestoreInput {
  paths: BytePath[];
  databases: { name: string; as?: string }[];
  intoFolder: boolean;
  /**
   * A WordPress site's folder (services/sites.ts): restore that site as the snapshot recorded it,
   * its files and the tables of its prefix; `paths` and `databases` then name what it covers.
   */
  site?: string;
  /**
   * With `site`: restore the site to this moment (ISO): the snapshot gives the files, its tables
   * come from the point-in-time restore of its database; `siteRecord` is the site as the newest
   * snapshot that records it says (services/sites.ts).
   */
  moment?: string;
  siteRecord?: SiteRecord;
}

/** `onTask` learns the task's id as soon as it runs, so a page can show its progress while it works. */
export interface RestoreHooks {
  onTask?: (taskId: number) => void;
}

/**
 * The paths chosen for a restore or download, checked as given: an empty path (which would
 * select the whole home), `..`, or the home spelled out is refused, never normalised.
 */
function checkChosenPaths(paths: readonly BytePath[]): void {
  for (const p of paths) {
    const problem = bytePathProblem(p);
    if (problem !== null) throw new UserError(problem);
  }
}

export async function restore(ctx: Context, s: SnapshotRecord, input: RestoreInput, actor: Actor = ROOT, hooks: RestoreHooks = {}): Promise<RestoreOutcome & { task: number }> {
  checkChosenPaths(input.paths);
  await checkMaySee(ctx, actor, s);
  // A former account's snapshot would land in the home of whoever holds the name now.
  if (actor.role !== 'admin' && (await holderOf(ctx, s)) !== 'current') {
    throw new UserError(`snapshot ${s.id} is of a former account named ${s.account}: only the provider restores it (or hands it over: snapshot assign)`);
  }
  const withDb = input.databases.length > 0;
  checkMayRestore(ctx, actor, s, input);
  const destRecord = ctx.store.destinations.byId(s.destinationId)!;
  // The account controls what its own destination holds, and a dump is run with the
  // server's database administrator rights: it could do anything to any database.
  if (withDb && isAccountOwned(destRecord)) {
    throw new UserError(`databases are not restored from destination "${destRecord.name}" of account ${destRecord.owner}: the account controls what it holds; download the dump (download --database) and import it with the account's own database user`);
  }
  const account = await ctx.panel(withDb).getAccount(s.account);
  if (!account) throw new UserError(`account "${s.account}" does not exist on this server (restore it as a new account first)`);
  if (withDb) {
    // Refused before a task exists; the engine checks again with the same rule.
    const ownership = await ctx.panel(false).databaseOwnership();
    const foreign = input.databases.map((d) => d.as ?? d.name).find((name) => !ownership.owns(account.username, 'database', name));
    if (foreign !== undefined) throw new UserError(`database ${foreign} is not a database name of account ${account.username} (its names start with ${account.username}_ and are no other account's)`);
  }
  const files = input.paths.length > 0 || input.databases.length === 0;
  // Someone is waiting for it: a restore goes before the queue's backups.
  const task = ctx.store.tasks.create({
    type: 'restore', account: s.account, jobId: null, destinationId: s.destinationId, snapshotId: s.id, priority: PRIORITIES.high,
    params: { ...input, paths: input.paths.map(toDisplay), requestedBy: actor.name, accountIdentity: s.accountId ?? null },
  });
  hooks.onTask?.(task.id);
  const queue = queueOf(ctx);
  let unlock: (() => void) | null = null;
  const hookInput: HookInput = {
    job: null, account: s.account, destination: destRecord.name, snapshot: s.id, actor, task: task.id,
    paths: input.paths.map(toDisplay), databases: input.databases, intoFolder: input.intoFolder,
  };
  const taskLog = (level: 'info' | 'warn' | 'error', message: string, audience: LogAudience = 'all'): void => ctx.store.tasks.log(task.id, level, message, audience);
  let started = false;
  let outcomeForHook: unknown = null;
  let failure: string | null = null;
  try {
    await queue.waitForTurn(task.id);
    await runHooks(ctx.config, 'preRestore', hookInput, taskLog);
    started = true;
    unlock = await lockAccountWhenFree(ctx.dataDir, s.account, `restore task ${task.id}`);
    const loadAtMoment = input.site !== undefined && input.moment !== undefined && input.siteRecord ? await siteTablesAt(ctx, s.account, new Date(input.moment)) : null;
    const outcome: RestoreOutcome = await withDriver(ctx, ctx.store.destinations.byId(s.destinationId)!, (destination) => input.site !== undefined ? restoreSiteFromSnapshot({
      account, destination, snapshotId: s.id, folder: input.site,
      mysql: () => ctx.panel(true).mysqlCredentials(),
      databaseOwnership: () => ctx.panel(false).databaseOwnership(),
      otherSites: ctx.store.snapshots.list({ account: s.account }).flatMap((x) => x.sites ?? []),
      ...(loadAtMoment && input.siteRecord ? { atMoment: { site: input.siteRecord, load: loadAtMoment } } : {}),
      onProgress: (p) => ctx.store.tasks.progress(task.id, { ...ctx.store.tasks.byId(task.id)?.progress, phase: 'restoring', ...p }),
    }) : restoreSnapshot({
      account, destination, snapshotId: s.id, paths: input.paths, files, databases: input.databases, intoFolder: input.intoFolder,
      mysql: () => ctx.panel(true).mysqlCredentials(),
      databaseOwnership: () => ctx.panel(false).databaseOwnership(),
      onProgress: (p) => ctx.store.tasks.progress(task.id, { ...ctx.store.tasks.byId(task.id)?.progress, phase: 'restoring', ...p }),
    }));
    const status = (outcome.files && outcome.files.warningCount > 0) || outcome.databaseWarnings.length > 0 ? 'partial' : 'completed';
    for (const w of outcome.files?.warnings ?? []) ctx.store.tasks.log(task.id, 'warn', `${w.path}: ${w.message}`);
    for (const w of outcome.databaseWarnings) ctx.store.tasks.log(task.id, 'warn', w);
    ctx.store.tasks.finish(task.id, status, { ...outcome }, null);
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore', target: `${s.account} ${s.id}`, result: status, detail: '' });
    outcomeForHook = { status, ...outcome };
    return { ...outcome, task: task.id };
  } catch (err) {
    failure = (err as Error).message;
    const cancelled = err instanceof TaskCancelled;
    // Stored content that does not match its hash: the snapshot is marked, and no longer a base for backups.
    if (err instanceof ContentDamagedError || / does not match its hash/.test(failure)) {
      ctx.store.snapshots.setStatus(s.destinationId, s.account, s.id, 'damaged');
      ctx.store.tasks.log(task.id, 'error', `snapshot ${s.id} is marked damaged`);
    }
    // The task, the activity entry of the snapshot and the mail about it are the account
    // holder's to read too: a provider's restore stopped by its hook names no script there, nor
    // one whose destination failed its host or path (the provider's log line keeps that).
    const shown = holderSafeMessage(err, destRecord);
    logDetailForProvider(ctx.store.tasks, task.id, err, failure, shown, cancelled ? 'warn' : 'error');
    ctx.store.tasks.finish(task.id, cancelled ? 'cancelled' : 'failed', {}, shown);
    // A cancellation is in the log as the 'cancel' of whoever asked for it.
    if (!cancelled) ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore', target: `${s.account} ${s.id}`, result: 'failed', detail: shown });
    if (err instanceof UserError) throw err;
    // Root is told why; an account holder or reseller who asked, only what it may read (a
    // UserError's words reach it as they are).
    throw new UserError(cancelled ? `restore task ${task.id} was ${failure}` : `restore failed: ${actor.role === 'admin' ? failure : shown}`);
  } finally {
    unlock?.();
    queue.nudge();
    if (started) await runHooks(ctx.config, 'postRestore', { ...hookInput, result: outcomeForHook, error: failure }, taskLog);
    // Never throws: a mail that cannot go out is a warning in the task's log.
    await notifyRestoreResult(ctx, s, actor, task.id);
  }
}

/**
 * Loads a database as it was at `moment` (engine/database/point-in-time.ts) into a new database
 * of the account (`<account>_tmsite_<random>`: the point-in-time engine writes only names the
 * account owns), for a site's tables to be taken from; dropped afterwards.
 */
async function siteTablesAt(ctx: Context, account: string, moment: Date): Promise<(database: string) => Promise<LoadedDump>> {
  const { restoreDatabaseAt } = await import('../engine/database/point-in-time.js');
  const { pointInTimeEnv } = await import('./point-in-time.js');
  const { quoteIdent, withConnection } = await import('../engine/database/connection.js');
  const crypto = await import('node:crypto');
  return async (database) => {
    const into = `${account}_tmsite_${crypto.randomBytes(4).toString('hex')}`;
    const env = pointInTimeEnv(ctx);
    const drop = async (): Promise<void> => {
      await withConnection(await env.mysql(), (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(into)}`));
    };
    try {
      await restoreDatabaseAt(env, { account, database, moment, into });
    } catch (err) {
      await drop().catch(() => undefined);
      throw err;
    }
    return { database: into, drop };
  };
}

/** The provider's permissions for what a restore asks for (files, databases, or both). */
export function checkMayRestore(ctx: Context, actor: Actor, s: SnapshotRecord, input: { paths: readonly unknown[]; databases: readonly unknown[] }): void {
  if (input.paths.length > 0 || input.databases.length === 0) checkMay(ctx, actor, 'restoreFiles', s.account);
  if (input.databases.length > 0) checkMay(ctx, actor, 'restoreDatabases', s.account);
}

export interface DownloadInput {
  paths: BytePath[];
  databases: string[];
  /** A WordPress site's folder: its files and a dump of its tables only (services/sites.ts). */
  site?: string;
  /** One regular file (the only path) sent as itself, not in a .tar.gz; `maxBytes` stops it early (a preview). */
  single?: { maxBytes?: number };
}

/**
 * Checks what a download needs (the snapshot visible, the provider's permission, the
 * pre-download hooks) before anything is sent, then gives the function that writes the
 * .tar.gz into `out`: a refusal becomes an error answer, never a broken file.
 */
export async function prepareDownload(ctx: Context, s: SnapshotRecord, input: DownloadInput, actor: Actor = ROOT): Promise<(out: Writable) => Promise<{ files: number; bytes: number }>> {
  checkChosenPaths(input.paths);
  if (input.single && (input.paths.length !== 1 || input.databases.length > 0)) throw new UserError('a single-file download takes exactly one path');
  await checkMaySee(ctx, actor, s);
  checkMay(ctx, actor, 'download', s.account);
  const destRecord = ctx.store.destinations.byId(s.destinationId)!;
  // A site's table dump is made by loading the snapshot's dump into the server: never one the account controls.
  if (input.site !== undefined && isAccountOwned(destRecord)) {
    throw new UserError(`a site is not downloaded from destination "${destRecord.name}" of account ${destRecord.owner}: its dump would be loaded into the database server; download the files and the whole dump instead (download --path, --database)`);
  }
  const target = `${s.account} ${s.id}`;
  const hookInput: HookInput = {
    job: null, account: s.account, destination: destRecord.name, snapshot: s.id, actor, paths: input.paths.map(toDisplay), databases: input.databases,
  };
  // The pre-download hook runs before the download's task exists: what it prints is kept
  // and written into that task's log, for the provider only, once the task is made.
  const notes: { level: 'info' | 'warn' | 'error'; message: string }[] = [];
  let downloadTask: number | null = null;
  const note = (level: 'info' | 'warn' | 'error', message: string): void => {
    if (downloadTask === null) notes.push({ level, message });
    else ctx.store.tasks.log(downloadTask, level, message, 'provider');
  };
  try {
    await runHooks(ctx.config, 'preDownload', hookInput, note);
  } catch (err) {
    // An entry of the snapshot, which its account holder reads: no script path there.
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'download', target, result: 'failed', detail: holderSafeMessage(err, destRecord) });
    throw err;
  }
  const site = input.site;
  return async (out) => {
    let result: { files: number; bytes: number } | null = null;
    let failure: string | null = null;
    let failureShown: string | null = null;
    try {
      result = await runAsTask(ctx, {
        type: 'download', account: s.account, destinationId: destRecord.id, snapshotId: s.id, priority: PRIORITIES.high,
        params: {
          paths: input.paths.map(toDisplay), databases: input.databases, requestedBy: actor.name, accountIdentity: s.accountId ?? null,
          ...(input.site !== undefined ? { site: input.site } : {}),
          ...(input.single ? { single: true, ...(input.single.maxBytes !== undefined ? { preview: true } : {}) } : {}),
        },
      }, () => withDriver(ctx, destRecord, async (destination): Promise<{ files: number; bytes: number }> => {
        if (input.single) return downloadFile({ destination, account: s.account, snapshotId: s.id, path: input.paths[0]!, out, maxBytes: input.single.maxBytes });
        if (site === undefined) return downloadSnapshot({ destination, account: s.account, snapshotId: s.id, paths: input.paths, databases: input.databases, out });
        const r = await downloadSite({ destination, account: s.account, snapshotId: s.id, folder: site, out, mysql: () => ctx.panel(true).mysqlCredentials() });
        return { files: r.files, bytes: r.bytes };
      }), {
        summary: (r) => ({ ...r }),
        onTask: (id) => { downloadTask = id; for (const n of notes.splice(0)) ctx.store.tasks.log(id, n.level, n.message, 'provider'); },
      });
      return result;
    } catch (err) {
      failure = (err as Error).message;
      failureShown = holderSafeMessage(err, destRecord);
      throw err;
    } finally {
      await runHooks(ctx.config, 'postDownload', { ...hookInput, result, error: failure }, note);
      ctx.store.activity.record({
        actor: actor.name, role: actor.role, action: 'download', target, result: failure === null ? 'ok' : 'failed',
        // An entry of the snapshot: what its holder may read of the failure (holderSafeMessage).
        detail: failure === null ? `${result!.files} files, ${result!.bytes} bytes` : failureShown ?? failure,
      });
    }
  };
}

export async function download(ctx: Context, s: SnapshotRecord, input: DownloadInput & { out: string }, actor: Actor = ROOT): Promise<{ files: number; bytes: number; out: string }> {
  // Checked as given: a `..` after a symlink leads elsewhere than the lexical resolution says.
  const outProblem = localPathProblem(input.out);
  if (outProblem !== null) throw new UserError(`out: ${outProblem}: ${quoteInput(input.out)}`);
  const write = await prepareDownload(ctx, s, input, actor);
  let file: ReturnType<typeof openDownloadFile>;
  try {
    file = openDownloadFile(input.out);
  } catch (err) {
    throw new UserError(`download failed: cannot create a file beside ${input.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const r = await write(file.stream);
    file.commit();
    return { ...r, out: input.out };
  } catch (err) {
    file.discard();
    throw new UserError(`download failed: ${(err as Error).message}`);
  }
}

/** What the provider's snapshot list is narrowed by; every field optional. Dates are YYYY-MM-DD (UTC). */
export interface SnapshotQuery {
  account?: string;
  destinationId?: number;
  jobId?: number;
  /** Any status string: one this version does not know simply matches nothing or what carries it. */
  status?: string;
  from?: string;
  to?: string;
}

/** Narrows a snapshot list (newest first stays newest first). */
export function filterSnapshots(snapshots: readonly SnapshotRecord[], q: SnapshotQuery): SnapshotRecord[] {
  const toEnd = q.to === undefined ? undefined : new Date(Date.parse(`${q.to}T00:00:00Z`) + 86_400_000).toISOString();
  return snapshots.filter((s) => (q.account === undefined || s.account === q.account)
    && (q.destinationId === undefined || s.destinationId === q.destinationId)
    && (q.jobId === undefined || s.jobId === q.jobId)
    && (q.status === undefined || s.status === q.status)
    && (q.from === undefined || s.finishedAt >= `${q.from}T00:00:00`)
    && (toEnd === undefined || s.finishedAt < toEnd));
}

const NOTE_MAX = 500;

/**
 * Changes a snapshot's note. The provider notes any snapshot, a reseller those of its
 * accounts it sees, an account holder only snapshots on its own destinations (the
 * provider's notes on its destinations are the provider's).
 */
export async function setSnapshotNote(ctx: Context, s: SnapshotRecord, text: string, actor: Actor = ROOT): Promise<SnapshotRecord> {
  await checkMaySee(ctx, actor, s);
  checkAccountOnOwnDestination(ctx, actor, s, 'notes');
  const note = text.trim();
  if (note.length > NOTE_MAX) throw new UserError(`text: a note is at most ${NOTE_MAX} characters`, 'invalid-input');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(note)) throw new UserError('text: a note is one line without control characters', 'invalid-input');
  ctx.store.snapshots.setNote(s.destinationId, s.account, s.id, note);
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'snapshot.note', target: `${s.account}/${s.id}`, result: 'ok', detail: note });
  return { ...s, note };
}

function checkAccountOnOwnDestination(ctx: Context, actor: Actor, s: SnapshotRecord, what: string): void {
  if (actor.role !== 'user') return;
  const d = ctx.store.destinations.byId(s.destinationId);
  if (!d || d.owner !== ownerOf(actor)) throw new UserError(`snapshot ${s.id} is on the provider's destination: only the provider ${what} it`);
}

/**
 * Deletes one snapshot from its destination and the catalog, the way retention does:
 * under the account lock (refused, not waited for, while a backup or a restore holds it:
 * a restore may be reading this very snapshot), the folder renamed to `.partial-` first.
 * A locked snapshot is refused (unlock it first); so is a read-only destination.
 */
export async function deleteSnapshot(ctx: Context, s: SnapshotRecord, actor: Actor = ROOT): Promise<SnapshotRecord & { objects?: SweepOutcome }> {
  await checkMaySee(ctx, actor, s);
  checkAccountOnOwnDestination(ctx, actor, s, 'deletes');
  const dest = ctx.store.destinations.byId(s.destinationId)!;
  const target = `${s.account}/${s.id}`;
  const refuse = (message: string): never => {
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'snapshot.delete', target, result: 'refused', detail: message });
    throw new UserError(message);
  };
  if (dest.readOnly) refuse(`destination "${dest.name}" is read-only: nothing is deleted from it`);
  let unlock: () => void = () => {};
  try {
    unlock = lockAccount(ctx.dataDir, s.account, `deleting snapshot ${s.id}`);
  } catch (err) {
    if (!(err instanceof AccountBusyError)) throw err;
    refuse(`snapshot ${s.id} is not deleted now: ${err.message}; try again when it is done`);
  }
  try {
    // Looked up again under the lock: it may have been locked or deleted meanwhile.
    const now = ctx.store.snapshots.byId(s.id).find((x) => x.destinationId === s.destinationId && x.account === s.account);
    if (!now) throw new UserError(`no snapshot ${s.id}`);
    if (now.locked) refuse(`snapshot ${s.id} is locked: unlock it first`);
    // Without hard links, its content objects that no other snapshot uses go too.
    const objects = await withDriver(ctx, dest, async (driver) => {
      await removeSnapshotData(ctx, driver, now);
      return freeUnusedObjects(ctx, driver, now.account, dest.name).catch((err: Error) => {
        // Read by a holder only when it deleted the snapshot itself (the target is "account/id"): then no provider's host or path.
        ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'objects.sweep', target, result: 'failed', detail: actor.role === 'admin' ? err.message : holderSafeMessage(err, dest) });
        return null;
      });
    });
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'snapshot.delete', target, result: 'ok', detail: `destination ${dest.name}` });
    return objects ? { ...now, objects } : now;
  } finally {
    unlock();
  }
}
