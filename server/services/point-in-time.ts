/**
 * Point in time for the surfaces (CLI, JSON API, pages): who may do what, tasks and activity
 * around engine/database/point-in-time.ts, and binary-log shipping (binlog-shipping.ts).
 */
import type { Context } from './context.js';
import { UserError } from './context.js';
import { withDriver, getDestination } from './destinations.js';
import { mayActOnAccount, maySeeSnapshotsOn, ROOT, type Actor } from './actor.js';
import { checkMay } from './permissions.js';
import { isCalendarDay } from '../util/input-checks.js';
import { lockAccountWhenFree } from '../engine/account-lock.js';
import { runAsTask } from '../queue/run-task.js';
import { holderSafeMessage } from './holder-message.js';
import { PRIORITIES } from '../queue/priority.js';
import type { PointInTimeEnv, CoveredWindow, RestoreAtOutcome, PreviewRow } from '../engine/database/point-in-time.js';
import type { ShipReport, BinlogServerStatus } from '../engine/database/binlog-shipping.js';

export function pointInTimeEnv(ctx: Context): PointInTimeEnv {
  return {
    store: ctx.store,
    withDestination: (id, fn) => {
      const record = ctx.store.destinations.byId(id);
      if (!record) throw new UserError(`no destination with id ${id}`);
      return withDriver(ctx, record, fn);
    },
    mysql: () => ctx.panel(true).mysqlCredentials(),
    ownership: () => ctx.panel(false).databaseOwnership(),
  };
}

/** Errors of the engine as the surfaces' stable codes. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  const { PointInTimeError } = await import('../engine/database/point-in-time.js');
  const { ReplayRefusedError } = await import('../engine/database/binlog-replay.js');
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PointInTimeError) {
      throw new UserError(err.message, err.code === 'pitr-not-yours' ? 'forbidden' : err.code === 'pitr-no-table' ? 'not-found' : 'refused');
    }
    if (err instanceof ReplayRefusedError) throw new UserError(err.message, 'refused');
    throw err;
  }
}

/** An account holder restores only from dumps it may see (a destination whose snapshots are hidden is not offered). */
function checkVisible(ctx: Context, actor: Actor, destinationId: number): void {
  const d = ctx.store.destinations.byId(destinationId);
  if (!d || !maySeeSnapshotsOn(actor, d)) throw new UserError('no dump this account may see covers that moment', 'refused');
}

async function checkAccount(ctx: Context, actor: Actor, account: string): Promise<void> {
  if (!(await mayActOnAccount(ctx, actor, account))) throw new UserError(`unknown account "${account}"`, 'not-found');
}

/** The database and the target are the account's (the one ownership rule); the engine checks again. */
async function checkOwned(ctx: Context, account: string, names: string[]): Promise<void> {
  const ownership = await ctx.panel(false).databaseOwnership();
  const foreign = names.find((n) => !ownership.owns(account, 'database', n));
  if (foreign !== undefined) throw new UserError(`database ${foreign} is not a database name of account ${account} (its names start with ${account}_ and are no other account's)`, 'forbidden');
}

export interface WindowReport extends CoveredWindow {
  /** Binary logging on the server, and what to set when it is off. */
  logBin: boolean;
  advice: string | null;
  /** Minutes between two shipping passes: about the most a restore can miss. */
  intervalMinutes: number;
}

export async function binlogServerStatus(ctx: Context): Promise<BinlogServerStatus> {
  const { serverStatus } = await import('../engine/database/binlog-shipping.js');
  return serverStatus(await ctx.panel(true).mysqlCredentials());
}

export async function databaseWindow(ctx: Context, actor: Actor, account: string, database: string): Promise<WindowReport> {
  await checkAccount(ctx, actor, account);
  // As for a preview or a restore: another account's database is not this account's to ask about.
  await checkOwned(ctx, account, [database]);
  const { coveredWindow } = await import('../engine/database/point-in-time.js');
  let logBin = false;
  let advice: string | null = null;
  try {
    const s = await binlogServerStatus(ctx);
    logBin = s.logBin;
    advice = s.advice;
  } catch (err) {
    advice = `the MySQL server could not be asked whether binary logging is on: ${(err as Error).message}`;
  }
  return { ...coveredWindow(pointInTimeEnv(ctx), account, database), logBin, advice, intervalMinutes: ctx.config.binlogs.intervalMinutes };
}

/** An ISO date and time, or an error saying what is expected. */
export function parseMoment(text: string): Date {
  const given = text.trim();
  const shape = /^\d{4}-\d{2}-\d{2}[T ](\d{2}):\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(given);
  // Date.parse would take 2026-02-30 as 2 March and 24:00 as the next day's midnight.
  const t = shape && isCalendarDay(given) && Number(shape[1]) < 24 ? Date.parse(given.replace(' ', 'T')) : NaN;
  if (Number.isNaN(t)) throw new UserError(`invalid --at ${JSON.stringify(text.slice(0, 40))}: give a date and time such as 2026-11-30T14:31:00Z`, 'invalid-input');
  return new Date(t);
}

export interface AtInput { account: string; database: string; at: Date; tables?: string[]; into?: string; asNewTables?: boolean }

export async function previewDatabaseAt(ctx: Context, actor: Actor, input: AtInput): Promise<{ moment: string; snapshot: string; tables: PreviewRow[]; skipped: string[] }> {
  await checkAccount(ctx, actor, input.account);
  checkMay(ctx, actor, 'restoreDatabases', input.account);
  await checkOwned(ctx, input.account, [input.database]);
  const { previewAt, startingDump } = await import('../engine/database/point-in-time.js');
  await shipQuietly(ctx);
  checkVisible(ctx, actor, (await mapped(async () => startingDump({ store: ctx.store }, input.account, input.database, input.at))).destinationId);
  return mapped(() => previewAt(pointInTimeEnv(ctx), { account: input.account, database: input.database, moment: input.at, ...(input.tables ? { tables: input.tables } : {}) }));
}

export async function restoreDatabaseAtMoment(ctx: Context, actor: Actor, input: AtInput, onTask?: (id: number) => void): Promise<RestoreAtOutcome & { task: number }> {
  await checkAccount(ctx, actor, input.account);
  checkMay(ctx, actor, 'restoreDatabases', input.account);
  if (input.asNewTables && !input.tables?.length) throw new UserError('--as-new-tables needs --table', 'invalid-input');
  await checkOwned(ctx, input.account, [input.database, input.into ?? input.database]);
  const { restoreDatabaseAt, startingDump } = await import('../engine/database/point-in-time.js');
  await shipQuietly(ctx);
  const start = await mapped(async () => startingDump({ store: ctx.store }, input.account, input.database, input.at));
  checkVisible(ctx, actor, start.destinationId);
  const snapshot = ctx.store.snapshots.list({ account: input.account, destinationId: start.destinationId }).find((s) => s.id === start.snapshotId);
  let taskId = 0;
  const target = `${input.account} ${input.database}${input.tables ? ` (${input.tables.join(', ')})` : ''} at ${input.at.toISOString()}`;
  try {
    const outcome = await runAsTask(ctx, {
      type: 'restore', account: input.account, destinationId: start.destinationId, snapshotId: start.snapshotId, priority: PRIORITIES.high,
      params: {
        databases: [{ name: input.database, ...(input.into ? { as: input.into } : {}) }], at: input.at.toISOString(), tables: input.tables ?? null,
        asNewTables: Boolean(input.asNewTables), requestedBy: actor.name, accountIdentity: snapshot?.accountId ?? null,
      },
    }, async (id) => {
      const unlock = await lockAccountWhenFree(ctx.dataDir, input.account, `restore task ${id}`);
      try {
        return await mapped(() => restoreDatabaseAt(pointInTimeEnv(ctx), {
          account: input.account, database: input.database, moment: input.at,
          ...(input.tables ? { tables: input.tables } : {}), ...(input.into ? { into: input.into } : {}), asNewTables: Boolean(input.asNewTables),
          onLog: (level, message) => ctx.store.tasks.log(id, level, message),
        }));
      } finally {
        unlock();
      }
    }, { onTask: (id) => { taskId = id; onTask?.(id); }, summary: (r) => ({ ...r }) });
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore', target, result: outcome.skipped.length ? 'partial' : 'completed', detail: '' });
    return { ...outcome, task: taskId };
  } catch (err) {
    // The target names no snapshot: the holder reads this entry only when it asked, and then
    // never the provider's host or path (the provider's own entry keeps the detail).
    const detail = actor.role === 'admin' ? (err as Error).message : holderSafeMessage(err, ctx.store.destinations.byId(start.destinationId));
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'restore', target, result: 'failed', detail });
    throw err;
  }
}

/** A shipping pass; its failures are in the report. */
export async function shipBinlogsNow(ctx: Context): Promise<ShipReport> {
  const { shipBinlogs } = await import('../engine/database/binlog-shipping.js');
  return shipBinlogs(pointInTimeEnv(ctx));
}

/** Before a restore: what the server logged up to now, shipped (best effort). */
async function shipQuietly(ctx: Context): Promise<void> {
  try { await shipBinlogsNow(ctx); } catch { /* the window says what is covered */ }
}

export interface BinlogStatusReport {
  server: BinlogServerStatus | null;
  serverError: string | null;
  destinations: { name: string; files: number; bytes: number; first: string | null; last: string | null; newestFile: string | null }[];
  intervalMinutes: number;
}

export async function binlogStatus(ctx: Context): Promise<BinlogStatusReport> {
  let server: BinlogServerStatus | null = null;
  let serverError: string | null = null;
  try { server = await binlogServerStatus(ctx); } catch (err) { serverError = (err as Error).message; }
  const { binlogDestinations } = await import('../engine/database/binlog-shipping.js');
  const destinations = binlogDestinations(ctx.store).map((d) => {
    const files = ctx.store.binlogs.files(d.id);
    return {
      name: d.name, files: files.length, bytes: files.reduce((n, f) => n + f.size, 0),
      first: files[0]?.firstEventAt ?? null, last: files[files.length - 1]?.lastEventAt ?? null, newestFile: files[files.length - 1]?.file ?? null,
    };
  });
  return { server, serverError, destinations, intervalMinutes: ctx.config.binlogs.intervalMinutes };
}

/** Marks (or unmarks) a provider destination to receive the binary logs. */
export function markBinlogDestination(ctx: Context, name: string, on: boolean, actor: Actor = ROOT): { destination: string; binlogs: boolean } {
  if (actor.role !== 'admin') throw new UserError('only the provider ships binary logs', 'forbidden');
  const d = getDestination(ctx, name, actor);
  if (d.owner !== 'root') throw new UserError(`destination "${name}" is not the provider's: binary logs hold every account's changes and go only to the provider's destinations`, 'refused');
  ctx.store.binlogs.mark(d.id, on);
  return { destination: d.name, binlogs: on };
}
