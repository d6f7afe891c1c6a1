import type { JobRecord } from '../store/jobs.js';
import { UserError, type Context } from './context.js';
import { isAccountOwned, mayActOnAccount, maySeeSnapshotsOn, ROOT, type Actor } from './actor.js';
import { checkMay } from './permissions.js';
import { runBackup } from './backups.js';

const DAY_MS = 86_400_000;

/** The daily limit of an account holder's "back up now": the pages answer it with 429. */
export class BackupNowLimitError extends UserError {
  constructor(readonly limit: number) {
    super(`the provider allows ${limit} backup${limit === 1 ? '' : 's'} started by hand in 24 hours: try again later`);
    this.name = 'BackupNowLimitError';
  }
}

const covers = (j: JobRecord, account: string): boolean => ('all' in j.accounts ? true : j.accounts.list.includes(account));

/**
 * The jobs that may back up `account` now for `actor`: enabled jobs covering it whose destination
 * takes backups, of the provider (or the account's own destination); an account holder or
 * reseller only those whose snapshots it would see.
 */
export function backupNowJobs(ctx: Context, actor: Actor, account: string): JobRecord[] {
  return ctx.store.jobs.list().filter((j) => {
    if (!j.enabled || !covers(j, account)) return false;
    const d = ctx.store.destinations.byId(j.destinationId);
    if (!d || !d.enabled) return false;
    if (isAccountOwned(d) && d.owner !== account) return false;
    return maySeeSnapshotsOn(actor, d);
  });
}

/** Backups an account holder started by hand in the last 24 hours (the accepted ones). */
export function backupsNowToday(ctx: Context, actor: Actor, now = Date.now()): number {
  return ctx.store.activity.since(new Date(now - DAY_MS))
    .filter((a) => a.action === 'backup.now' && a.actor === actor.name && a.role === actor.role && a.result === 'requested').length;
}

/**
 * "Back up this account now": one account, with one of the jobs that cover it, through the
 * queue like any backup (its task appears there at once). The provider any account; a
 * reseller the accounts it owns; an account holder its own, when the provider allows it
 * (`permissions.*.backupNow`) and at most `permissions.backupNowPerDay` times in 24 hours.
 * Another owner's account is "not found". Returns the task ids (one, or the run's failed task).
 */
export async function backUpNow(ctx: Context, actor: Actor, account: string, jobId?: number): Promise<number[]> {
  if (!(await mayActOnAccount(ctx, actor, account))) throw new UserError(`no account "${account}"`);
  checkMay(ctx, actor, 'backupNow', account);
  if (actor.role === 'user') {
    const limit = ctx.config.permissions.backupNowPerDay;
    if (backupsNowToday(ctx, actor) >= limit) throw new BackupNowLimitError(limit);
  }
  const jobs = backupNowJobs(ctx, actor, account);
  const job = jobId === undefined ? jobs[0] : jobs.find((j) => j.id === jobId);
  if (!job) throw new UserError(jobId === undefined ? `job: no job backs up account ${account}` : 'job: choose a job that backs up this account');
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'backup.now', target: account, result: 'requested', detail: `job ${job.name}` });
  return new Promise<number[]>((resolve, reject) => {
    let told = false;
    runBackup(ctx, job.name, account, ROOT, job.owner, { onBehalf: actor, onTasks: (ids) => { told = true; resolve(ids); } })
      // The outcome is in its task: a failure before the task existed is told to whoever asked.
      .catch((err: unknown) => { if (!told) reject(err as Error); });
  });
}
