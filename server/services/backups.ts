import type { LogAudience } from '../store/tasks.js';
import { backupAccount } from '../engine/backup.js';
import { lockAccountWhenFree } from '../engine/account-lock.js';
import { holdBatchGc } from '../util/batch-gc.js';
import { catalogAfterBackup, stageAccountCatalog, startRunCatalog, type RunCatalog, type StagedCatalog } from './path-catalogs.js';
import type { SnapshotChanges } from '../engine/catalog/snapshot-changes.js';
import { queueOf, TaskCancelled } from '../queue/task-queue.js';
import { PRIORITIES } from '../queue/priority.js';
import type { Account } from '../panels/types.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { JobRecord } from '../store/jobs.js';
import type { DestinationRecord } from '../store/destinations.js';
import { UserError, type Context } from './context.js';
import { checkTakesBackups, driverFor } from './destinations.js';
import type { Destination } from '../destinations/types.js';
import { getJob } from './jobs.js';
import { isAccountOwned, mayActOnAccount, ROOT, type Actor } from './actor.js';
import { checkMay } from './permissions.js';
import { runHooks, type HookInput } from '../hooks/runner.js';
import { holderSafeMessage, logDetailForProvider } from './holder-message.js';
import { identify } from './account-identity.js';

export interface AccountBackupResult {
  account: string;
  status: 'completed' | 'partial' | 'failed' | 'cancelled';
  snapshot: string | null;
  task: number;
  error: string | null;
  files: number;
  bytes: number;
  storedBytes: number;
  /** Remote destinations: bytes sent over the network for this account (null: local). */
  sentBytes: number | null;
  skipped: number;
  /** Items that could not be backed up, with why (the run is partial, and notified like a failure). */
  problems?: { item: string; reason: string }[];
}

async function accountsOfJob(ctx: Context, job: JobRecord, only: string | undefined, withDatabases: boolean): Promise<Account[]> {
  const jobName = job.name;
  const panel = ctx.panel(withDatabases);
  const names = 'all' in job.accounts ? null : job.accounts.list;
  if (only !== undefined) {
    // What the caller named is wrong: a refusal, not a failed run.
    if (names && !names.includes(only)) throw new NotARunFailure(new UserError(`account "${only}" is not part of job "${jobName}"`));
    const a = await panel.getAccount(only);
    if (!a) throw new NotARunFailure(new UserError(`unknown account "${only}"`));
    return [a];
  }
  if (names) {
    const out: Account[] = [];
    for (const n of names) {
      const a = await panel.getAccount(n);
      if (!a) throw new UserError(`unknown account "${n}" in job "${jobName}"`);
      out.push(a);
    }
    return out;
  }
  return panel.listAccounts();
}

export interface BackupOptions {
  /** Called with the task ids (one per account, in order) once the run is accepted, before any work. */
  onTasks?: (taskIds: number[]) => void;
  /** The tasks' place in the queue (default: normal; scheduled runs are low). */
  priority?: number;
  /** The schedule that runs the job: recorded on its snapshots as they are listed (default: manual). */
  schedule?: string;
  /**
   * "Back up now" of one account by a reseller or its holder (server/services/backup-now.ts,
   * which checked scope and permission): the provider's job runs, in this person's name.
   */
  onBehalf?: Actor;
}

/**
 * Runs a job now: each account gets a task in the queue and, on success, a snapshot. The
 * queue decides when each starts (server/queue/): one task per account, and the limits of
 * concurrent backups and of tasks per destination. An account holder runs only its own jobs; an account's destination only ever
 * receives that account. The provider's hooks run around the whole job and around each
 * account; a failing pre-hook stops what it stands before.
 */
export async function runBackup(ctx: Context, jobName: string, onlyAccount?: string, actor: Actor = ROOT, owner?: string, options: BackupOptions = {}): Promise<AccountBackupResult[]> {
  const job = getJob(ctx, jobName, actor, owner);
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  try {
    return await runAcceptedJob(ctx, job, onlyAccount, actor, options);
  } catch (err) {
    if (!(err instanceof NotARunFailure)) await recordRunFailure(ctx, job, onlyAccount, actor, options, (err as Error).message);
    throw err instanceof NotARunFailure ? err.cause : err;
  }
}

/** A refusal of who asked (not theirs to back up), or a failure its tasks already record: no run-failure task. */
class NotARunFailure extends Error {
  constructor(override readonly cause: Error) { super(cause.message); }
}

/**
 * A run that failed before its accounts got tasks (the accounts or databases could not be
 * listed, the destination is gone or refuses backups): one failed task with the reason, so
 * that the dashboard, the queue, the activity log and the failure notices show it.
 */
async function recordRunFailure(ctx: Context, job: JobRecord, onlyAccount: string | undefined, actor: Actor, options: BackupOptions, reason: string): Promise<void> {
  const requester = options.onBehalf ?? actor;
  const task = ctx.store.tasks.create({
    // The account only when someone entitled named it (the provider, or a back-up-now checked for scope).
    type: 'backup', account: actor.role === 'admin' ? onlyAccount ?? null : null, jobId: job.id, destinationId: ctx.store.destinations.byId(job.destinationId)?.id ?? null, snapshotId: null,
    priority: options.priority ?? PRIORITIES.normal,
    params: { requestedBy: requester.name, runFailure: true, ...(options.schedule ? { schedule: options.schedule } : {}) },
  }).id;
  ctx.store.tasks.log(task, 'error', reason);
  ctx.store.tasks.finish(task, 'failed', {}, reason);
  options.onTasks?.([task]);
  ctx.store.activity.record({ actor: requester.name, role: requester.role, action: 'backup', target: `job ${job.name}`, result: 'failed', detail: `task ${task}: ${reason}` });
  if (ctx.config.notifications) await (await import('../notify/backup-result.js')).notifyRunFailure(ctx, job, task, reason);
}

async function runAcceptedJob(ctx: Context, job: JobRecord, onlyAccount: string | undefined, actor: Actor, options: BackupOptions): Promise<AccountBackupResult[]> {
  const jobName = job.name;
  const requester = options.onBehalf ?? actor;
  const withDatabases = job.items.includes('databases') || job.items.includes('database-users');
  const accounts = await accountsOfJob(ctx, job, onlyAccount, withDatabases);
  // Each snapshot belongs to the account as it is now. Identifying it first also notices an
  // account removed and re-created without the panel saying so: the destinations and jobs of
  // the removed one then no longer take backups (they are read again below).
  const identities = new Map<string, number>();
  for (const a of accounts) {
    const identity = await identify(ctx, a.username, a);
    if (identity) identities.set(a.username, identity.id);
  }
  const destRecord = ctx.store.destinations.byId(job.destinationId);
  if (!destRecord) throw new UserError(`job "${jobName}" has no destination`);
  checkTakesBackups(ctx, destRecord);
  for (const a of accounts) {
    if (isAccountOwned(destRecord) && a.username !== destRecord.owner) {
      throw new UserError(`destination "${destRecord.name}" belongs to account ${destRecord.owner}: it takes no backup of account ${a.username}`);
    }
    if (!(await mayActOnAccount(ctx, actor, a.username))) throw new NotARunFailure(new UserError(`account "${a.username}" is not yours to back up`));
  }
  const priority = options.priority ?? PRIORITIES.normal;
  const tasks = accounts.map((a) => ctx.store.tasks.create({
    type: 'backup', account: a.username, jobId: job.id, destinationId: destRecord.id, snapshotId: null, priority,
    params: { requestedBy: (options.onBehalf ?? actor).name, accountIdentity: identities.get(a.username) ?? null, ...(options.schedule ? { schedule: options.schedule } : {}) },
  }).id);
  options.onTasks?.(tasks);
  const hookInput: HookInput = { job: job.name, account: null, destination: destRecord.name, snapshot: null, actor: requester, accounts: accounts.map((a) => a.username), tasks };
  const logAll = (level: 'info' | 'warn' | 'error', message: string, audience: LogAudience = 'all'): void => { for (const t of tasks) ctx.store.tasks.log(t, level, message, audience); };
  let results: AccountBackupResult[] = [];
  let failure: string | null = null;
  let started = false;
  try {
    await runHooks(ctx.config, 'preBackup', hookInput, logAll);
    started = true;
    results = await backupToDestination(ctx, job, destRecord, accounts, tasks, requester, options.schedule, identities);
    return results;
  } catch (err) {
    failure = (err as Error).message;
    // Whatever did not get to run fails with the reason, so no task stays queued. Each task is
    // an account's: its error and log never name the provider's hook script or destination
    // (holderSafeMessage); the provider's log line keeps the detail.
    const shown = holderSafeMessage(err, destRecord);
    for (const id of tasks) {
      if (ctx.store.tasks.byId(id)?.status !== 'queued') continue;
      logDetailForProvider(ctx.store.tasks, id, err, failure, shown);
      ctx.store.tasks.log(id, 'error', shown);
      ctx.store.tasks.finish(id, 'failed', {}, shown);
    }
    queueOf(ctx).nudge();
    // An account holder's own back-up-now is its entry to read: what it may read of the failure.
    ctx.store.activity.record({ actor: requester.name, role: requester.role, action: 'backup', target: `job ${job.name}`, result: 'failed', detail: requester.role === 'admin' ? failure : shown });
    throw new NotARunFailure(err as Error);
  } finally {
    if (started) await runHooks(ctx.config, 'postBackup', { ...hookInput, result: failure === null ? results : null, error: failure }, logAll);
  }
}

async function backupToDestination(ctx: Context, job: JobRecord, destRecord: DestinationRecord, accounts: Account[], tasks: number[], actor: Actor, schedule: string | undefined,
  identities: Map<string, number>): Promise<AccountBackupResult[]> {
  const { unavailable, opened } = await probeDestination(ctx, destRecord, accounts.length);
  const results = await Promise.all(accounts.map((account, i) => backupOneAccount(ctx, job, destRecord, account, tasks[i]!, actor, schedule, unavailable, identities.get(account.username) ?? null,
    i === 0 ? opened : null)));
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'backup', target: `job ${job.name}`,
    result: results.every((r) => r.status !== 'failed' && r.status !== 'cancelled') ? 'ok' : results.some((r) => r.status === 'cancelled') ? 'cancelled' : 'failed',
    detail: JSON.stringify(results.map((r) => ({ account: r.account, status: r.status }))) });
  return results;
}

/**
 * Opens the destination once before any account starts. One that cannot be opened fails
 * every account's task with the reason returned here (`unavailable`), so that the failure is
 * recorded like any other (not only printed to whoever started the run); a destination short
 * of space refuses the whole run.
 *
 * An SSH destination's connection is not closed here but handed to the first account
 * (`opened`), which would otherwise open a connection of its own right after: one handshake
 * (key exchange, login, a new sshd and sftp-server) less per run. The other accounts each
 * open their own. Its settings, host-key pin and connect guard are the same driver's.
 */
async function probeDestination(ctx: Context, destRecord: DestinationRecord, accountCount: number): Promise<{ unavailable: Error | null; opened: Destination | null }> {
  const dest = await driverFor(ctx, destRecord);
  let kept = false;
  try {
    try {
      await dest.open();
    } catch (err) {
      const unavailable = `destination "${destRecord.name}": ${(err as Error).message}`;
      if (accountCount === 0) throw new UserError(unavailable);
      // The cause stays: the accounts' tasks say only what kind of failure it was (holderSafeMessage).
      return { unavailable: new Error(unavailable, { cause: err }), opened: null };
    }
    await checkFreeSpace(destRecord, dest);
    kept = accountCount > 0 && destRecord.type === 'ssh';
    return { unavailable: null, opened: kept ? dest : null };
  } finally {
    if (!kept) await dest.close();
  }
}

async function checkFreeSpace(destRecord: DestinationRecord, dest: Destination): Promise<void> {
  if (destRecord.freeSpaceLimitMb <= 0) return;
  const { freeBytes } = await dest.space();
  if (freeBytes < destRecord.freeSpaceLimitMb * 1048576) {
    throw new UserError(`destination "${destRecord.name}" has ${Math.floor(freeBytes / 1048576)} MB free, below its limit of ${destRecord.freeSpaceLimitMb} MB`);
  }
}

/**
 * One account's task: waits for its turn, then backs up over a connection of its own (a
 * remote destination's bytes sent are then this account's alone).
 */
async function backupOneAccount(ctx: Context, job: JobRecord, destRecord: DestinationRecord, account: Account, taskId: number, actor: Actor, schedule: string | undefined, unavailable: Error | null,
  accountId: number | null, opened: Destination | null = null): Promise<AccountBackupResult> {
  const queue = queueOf(ctx);
  const watch = queue.watch(taskId);
  const hookInput: HookInput = { job: job.name, account: account.username, destination: destRecord.name, snapshot: null, actor, task: taskId };
  const taskLog = (level: 'info' | 'warn' | 'error', message: string, audience: LogAudience = 'all'): void => ctx.store.tasks.log(taskId, level, message, audience);
  let hooked = false;
  let unlock: (() => void) | null = null;
  /** The connection of a committed run, kept open to add the snapshot to the path catalog. */
  let toCatalog: Destination | null = null;
  let changes: SnapshotChanges | null = null;
  /** The snapshot's catalog rows, written during the run's flush and committed with its catalog row. */
  const catalog: { staged: StagedCatalog | null; done: boolean; run: RunCatalog | null } = { staged: null, done: false, run: null };
  /** Incremental marking off while the run's root side works (batch-gc.ts): a no-op in the CLI, which has it off throughout. */
  let releaseGc = (): void => {};
  let r: AccountBackupResult;
  /** The probe's open driver (probeDestination) until this run takes it; closed here if it never does. */
  let handed = opened;
  try {
    if (unavailable !== null) throw unavailable;
    await queue.waitForTurn(taskId);
    releaseGc = holdBatchGc();
    await runHooks(ctx.config, 'preAccountBackup', hookInput, taskLog);
    hooked = true;
    unlock = await lockAccountWhenFree(ctx.dataDir, account.username, `backup task ${taskId}`, watch.signal);
    const dest = handed ?? await driverFor(ctx, destRecord);
    handed = null;
    try {
      // Again on a handed driver: the queue or the lock may have waited (a lost connection is made again here).
      await dest.open();
      // Checked again when the task starts: the queue may have waited while the disk filled.
      await checkFreeSpace(destRecord, dest);
      watch.signal.throwIfAborted();
      const sentBefore = dest.bytesSent?.() ?? null;
      const candidates = job.structure === 'incremental'
        // Only the same account's: a former account of the name never lends its files to this one.
        ? ctx.store.snapshots.list({ account: account.username, destinationId: destRecord.id })
          .filter((s) => s.structure === 'incremental' && (s.accountId ?? null) === accountId)
        : [];
      // A damaged snapshot is never a base: its blobs would be linked into the new one as they are.
      const previous = candidates.find((s) => s.status !== 'damaged') ?? null;
      const skippedDamaged = candidates.filter((s) => s.status === 'damaged' && (previous === null || s.finishedAt > previous.finishedAt));
      if (skippedDamaged.length > 0) {
        taskLog('warn', `snapshot${skippedDamaged.length > 1 ? 's' : ''} ${skippedDamaged.map((s) => s.id).join(', ')} ${skippedDamaged.length > 1 ? 'are' : 'is'} damaged: not used as the base of this run; ${previous ? `unchanged files are linked from ${previous.id}` : 'every file is copied in full'}`);
      }
      const manifest = await backupAccount({
        account, destination: dest, structure: job.structure, items: job.items, excludes: job.excludes, jobName: job.name,
        previousId: previous?.id ?? null,
        mysql: () => ctx.panel(true).mysqlCredentials(),
        onProgress: (p) => ctx.store.tasks.progress(taskId, { ...p }),
        politeness: ctx.config.queue,
        signal: watch.signal,
        onWarning: (message) => ctx.store.tasks.log(taskId, 'warn', message, 'provider'),
        databaseOwnership: () => ctx.panel(false).databaseOwnership(),
        onChanges: (c) => { changes = c; },
        onIndexStart: (snap) => {
          catalog.run = startRunCatalog(ctx, destRecord, account.username, snap);
          const run = catalog.run;
          return run ? (e) => run.add(e) : null;
        },
        beforeCommit: async (snap, read, c) => {
          // The flush sends its requests first: staging runs synchronously (the last rows, a checkpoint).
          if (catalog.run) await new Promise((resolve) => setImmediate(resolve));
          catalog.staged = catalog.run?.stage(snap.finishedAt) ?? null;
          catalog.run = null;
          catalog.staged ??= await stageAccountCatalog(ctx, destRecord, account.username, snap, read, c);
        },
      });
      const record: SnapshotRecord = {
        id: manifest.id, destinationId: destRecord.id, account: account.username, jobId: job.id, structure: manifest.structure,
        status: manifest.status, startedAt: manifest.startedAt, finishedAt: manifest.finishedAt, items: job.items,
        files: manifest.stats.files, bytes: manifest.stats.bytes, storedBytes: manifest.stats.storedBytes,
        databases: manifest.databases.map((d) => d.name), locked: false, note: '', accountId, sites: manifest.sites ?? null,
      };
      ctx.store.snapshots.insert(record);
      if (catalog.staged) {
        try {
          catalog.staged.commit();
          catalog.done = true;
        } catch { /* added after the run instead (catalogAfterBackup) */ }
        catalog.staged = null;
      }
      for (const site of manifest.sites ?? []) {
        ctx.store.tasks.log(taskId, site.problem ? 'warn' : 'info', site.problem
          ? `WordPress site ${site.folder}: not restorable as a site: ${site.problem}`
          : `WordPress site ${site.folder}: database ${site.database}, tables ${site.prefix}*`);
      }
      for (const d of manifest.databases) {
        if (!d.binlog) continue;
        ctx.store.binlogs.addPosition({
          destinationId: destRecord.id, account: account.username, snapshotId: manifest.id, database: d.name,
          binlogFile: d.binlog.file, binlogPosition: d.binlog.position, gtid: d.binlog.gtid ?? null, dumpedAt: d.binlog.at,
        });
      }
      if (schedule !== undefined) ctx.store.snapshots.setSchedule(destRecord.id, account.username, manifest.id, schedule);
      toCatalog = dest;
      for (const p of manifest.problems ?? []) ctx.store.tasks.log(taskId, 'warn', `not backed up: ${p.item} (the database server could not be reached or refused; the provider's log has the cause)`, 'all');
      for (const s of manifest.skipped) ctx.store.tasks.log(taskId, s.reason.startsWith('skipped:') ? 'info' : 'warn', `${s.path}: ${s.reason}`);
      const sentBytes = sentBefore === null ? null : dest.bytesSent!() - sentBefore;
      ctx.store.tasks.finish(taskId, manifest.status, { snapshot: manifest.id, stats: manifest.stats, sentBytes, ...(manifest.problems ? { problems: manifest.problems } : {}) }, null);
      r = { account: account.username, status: manifest.status, snapshot: manifest.id, task: taskId, error: null,
        files: manifest.stats.files, bytes: manifest.stats.bytes, storedBytes: manifest.stats.storedBytes, sentBytes, skipped: manifest.stats.skipped,
        ...(manifest.problems ? { problems: manifest.problems } : {}) };
    } finally {
      if (toCatalog !== dest) await dest.close();
    }
  } catch (err) {
    const message = (err as Error).message;
    const cancelled = err instanceof TaskCancelled;
    // The task is the account's: a provider's run stopped by its hook (runHooks logs why), or
    // whose destination failed, keeps the detail in the provider's log line, never in what the
    // account holder reads.
    const shown = holderSafeMessage(err, destRecord);
    logDetailForProvider(ctx.store.tasks, taskId, err, message, shown, cancelled ? 'warn' : 'error');
    ctx.store.tasks.log(taskId, cancelled ? 'warn' : 'error', shown);
    ctx.store.tasks.finish(taskId, cancelled ? 'cancelled' : 'failed', {}, shown);
    r = { account: account.username, status: cancelled ? 'cancelled' : 'failed', snapshot: null, task: taskId, error: message, files: 0, bytes: 0, storedBytes: 0, sentBytes: null, skipped: 0 };
  } finally {
    if (handed) await handed.close().catch(() => undefined);
    // Staged for a snapshot that was not listed, or written by a run that failed: its rows go.
    catalog.staged?.abort();
    catalog.run?.abandon();
    releaseGc();
    unlock?.();
    watch.release();
    queue.nudge();
  }
  // After the task is done and its place in the queue free: the next account's run starts
  // meanwhile (the catalog has its own write lock, and is brought up to date at the next
  // question if this fails).
  if (toCatalog) {
    const dest = toCatalog;
    // Reading the index again churns Buffers as the run did: the same hold, taken only for it.
    const releaseCatalogGc = catalog.done ? null : holdBatchGc();
    try {
      if (!catalog.done) await catalogAfterBackup(ctx, destRecord, account.username, dest, (message) => taskLog('info', message, 'provider'), changes);
    } finally {
      releaseCatalogGc?.();
      await dest.close();
    }
  }
  // Only around a backup that started: a refused one has nothing to report after.
  if (hooked) await runHooks(ctx.config, 'postAccountBackup', { ...hookInput, snapshot: r.snapshot, result: r, error: r.error }, taskLog);
  if (ctx.config.notifications) await (await import('../notify/backup-result.js')).notifyBackupResult(ctx, job, destRecord, r);
  return r;
}
