import { backupAccount } from '../engine/backup.js';
import { lockAccount } from '../engine/account-lock.js';
import type { Account } from '../panels/types.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { JobRecord } from '../store/jobs.js';
import type { DestinationRecord } from '../store/destinations.js';
import { UserError, type Context } from './context.js';
import { driverFor } from './destinations.js';
import type { Destination } from '../destinations/types.js';
import { getJob } from './jobs.js';

export interface AccountBackupResult {
  account: string;
  status: 'completed' | 'partial' | 'failed';
  snapshot: string | null;
  task: number;
  error: string | null;
  files: number;
  bytes: number;
  storedBytes: number;
  skipped: number;
}

async function accountsOfJob(ctx: Context, jobName: string, only: string | undefined, withDatabases: boolean): Promise<Account[]> {
  const job = getJob(ctx, jobName);
  const panel = ctx.panel(withDatabases);
  const names = 'all' in job.accounts ? null : job.accounts.list;
  if (only !== undefined) {
    if (names && !names.includes(only)) throw new UserError(`account "${only}" is not part of job "${jobName}"`);
    const a = await panel.getAccount(only);
    if (!a) throw new UserError(`unknown account "${only}"`);
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

/** Runs a job now, one account after the other; each account gets a task and, on success, a snapshot. */
export async function runBackup(ctx: Context, jobName: string, onlyAccount?: string): Promise<AccountBackupResult[]> {
  const job = getJob(ctx, jobName);
  const destRecord = ctx.store.destinations.byId(job.destinationId);
  if (!destRecord) throw new UserError(`job "${jobName}" has no destination`);
  if (!destRecord.enabled) throw new UserError(`destination "${destRecord.name}" is disabled`);
  const withDatabases = job.items.includes('databases') || job.items.includes('database-users');
  const accounts = await accountsOfJob(ctx, jobName, onlyAccount, withDatabases);
  const dest = driverFor(ctx, destRecord);
  try {
    return await backupToDestination(ctx, job, destRecord, dest, accounts);
  } finally {
    await dest.close();
  }
}

async function backupToDestination(ctx: Context, job: JobRecord, destRecord: DestinationRecord, dest: Destination, accounts: Account[]): Promise<AccountBackupResult[]> {
  // A destination that cannot be opened fails every account's task with the reason, so that
  // the failure is recorded like any other (not only printed to whoever started the run).
  let unavailable: string | null = null;
  try {
    await dest.open();
  } catch (err) {
    unavailable = `destination "${destRecord.name}": ${(err as Error).message}`;
    if (accounts.length === 0) throw new UserError(unavailable);
  }
  if (unavailable === null && destRecord.freeSpaceLimitMb > 0) {
    const { freeBytes } = await dest.space();
    if (freeBytes < destRecord.freeSpaceLimitMb * 1048576) {
      throw new UserError(`destination "${destRecord.name}" has ${Math.floor(freeBytes / 1048576)} MB free, below its limit of ${destRecord.freeSpaceLimitMb} MB`);
    }
  }
  const results: AccountBackupResult[] = [];
  for (const account of accounts) {
    const task = ctx.store.tasks.create({ type: 'backup', account: account.username, jobId: job.id, destinationId: destRecord.id, snapshotId: null, params: {} });
    ctx.store.tasks.start(task.id, process.pid);
    let unlock: (() => void) | null = null;
    try {
      if (unavailable !== null) throw new Error(unavailable);
      unlock = lockAccount(ctx.dataDir, account.username, `backup task ${task.id}`);
      const previous = job.structure === 'incremental'
        ? ctx.store.snapshots.list({ account: account.username, destinationId: destRecord.id }).find((s) => s.structure === 'incremental') ?? null
        : null;
      const manifest = await backupAccount({
        account, destination: dest, structure: job.structure, items: job.items, excludes: job.excludes, jobName: job.name,
        previousId: previous?.id ?? null,
        mysql: () => ctx.panel(true).mysqlCredentials(),
        onProgress: (p) => ctx.store.tasks.progress(task.id, { ...p }),
      });
      const record: SnapshotRecord = {
        id: manifest.id, destinationId: destRecord.id, account: account.username, jobId: job.id, structure: manifest.structure,
        status: manifest.status, startedAt: manifest.startedAt, finishedAt: manifest.finishedAt, items: job.items,
        files: manifest.stats.files, bytes: manifest.stats.bytes, storedBytes: manifest.stats.storedBytes,
        databases: manifest.databases.map((d) => d.name), locked: false, note: '',
      };
      ctx.store.snapshots.insert(record);
      for (const s of manifest.skipped) ctx.store.tasks.log(task.id, s.reason.startsWith('skipped:') ? 'info' : 'warn', `${s.path}: ${s.reason}`);
      ctx.store.tasks.finish(task.id, manifest.status, { snapshot: manifest.id, stats: manifest.stats }, null);
      results.push({ account: account.username, status: manifest.status, snapshot: manifest.id, task: task.id, error: null,
        files: manifest.stats.files, bytes: manifest.stats.bytes, storedBytes: manifest.stats.storedBytes, skipped: manifest.stats.skipped });
    } catch (err) {
      const message = (err as Error).message;
      ctx.store.tasks.log(task.id, 'error', message);
      ctx.store.tasks.finish(task.id, 'failed', {}, message);
      results.push({ account: account.username, status: 'failed', snapshot: null, task: task.id, error: message, files: 0, bytes: 0, storedBytes: 0, skipped: 0 });
    } finally {
      unlock?.();
    }
  }
  ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'backup', target: `job ${job.name}`,
    result: results.every((r) => r.status !== 'failed') ? 'ok' : 'failed', detail: JSON.stringify(results.map((r) => ({ account: r.account, status: r.status }))) });
  return results;
}
