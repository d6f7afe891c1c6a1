import type { TaskRecord } from '../store/tasks.js';
import { UserError, type Context } from './context.js';
import { isAccountOwned, mayActOnAccount, maySeeSnapshotsOn, ROOT, type Actor } from './actor.js';
import { priorityName } from '../queue/priority.js';
import { holderOf, type IdentityCache, type SnapshotHolder } from './snapshots.js';

/**
 * Whose account a task worked on: the account now of its name, a former one (removed: the
 * provider's), or the provider's alone. Tasks carry the account identity in `accountIdentity`;
 * one that does not (a reindex or a validation) is the account's of the name.
 */
export async function taskHolder(ctx: Context, t: TaskRecord, cache: IdentityCache = new Map()): Promise<SnapshotHolder> {
  const recorded = t.params.accountIdentity;
  if (t.account === null || recorded === undefined) return 'current';
  return holderOf(ctx, { account: t.account, accountId: typeof recorded === 'number' ? recorded : null }, cache);
}

/** Whether `actor` may follow a task: an admin all; others the tasks of their accounts on destinations they see. */
async function maySee(ctx: Context, actor: Actor, t: TaskRecord): Promise<boolean> {
  if (actor.role === 'admin') return true;
  if (t.account === null || !(await mayActOnAccount(ctx, actor, t.account))) return false;
  if ((await taskHolder(ctx, t)) !== 'current') return false;
  if (t.destinationId === null) return true;
  const d = ctx.store.destinations.byId(t.destinationId);
  return d !== null && maySeeSnapshotsOn(actor, d);
}

/**
 * Whether `actor` may cancel it: a provider any task it sees; an account holder its own
 * restores and the backups to its own destinations, never a backup its provider runs.
 */
async function mayCancel(ctx: Context, actor: Actor, t: TaskRecord): Promise<boolean> {
  if (!(await maySee(ctx, actor, t))) return false;
  if (actor.role !== 'user') return true;
  if (t.type === 'restore') return true;
  const d = ctx.store.destinations.byId(t.destinationId!);
  return d !== null && isAccountOwned(d);
}

export async function getTask(ctx: Context, id: number, actor: Actor = ROOT): Promise<TaskRecord> {
  const t = Number.isSafeInteger(id) ? ctx.store.tasks.byId(id) : null;
  // Another account's task is "not found", like a task that does not exist.
  if (!t || !(await maySee(ctx, actor, t))) throw new UserError(`no task ${id}`);
  return t;
}

/** The newest tasks `actor` may see (queued and running ones first when `activeOnly`). */
export async function listTasks(ctx: Context, actor: Actor = ROOT, opts: { activeOnly?: boolean; limit?: number } = {}): Promise<TaskRecord[]> {
  const limit = opts.limit ?? 100;
  const candidates = opts.activeOnly ? ctx.store.tasks.active() : ctx.store.tasks.list(actor.role === 'admin' ? limit : limit * 10);
  const out: TaskRecord[] = [];
  for (const t of candidates) {
    if (out.length >= limit) break;
    if (await maySee(ctx, actor, t)) out.push(t);
  }
  return out;
}

/** A task as the CLI and the JSON API print it. */
export function describeTask(t: TaskRecord): Record<string, unknown> {
  return {
    id: t.id, type: t.type, status: t.status, priority: priorityName(t.priority), account: t.account, jobId: t.jobId,
    destinationId: t.destinationId, snapshot: t.snapshotId ?? (typeof t.result.snapshot === 'string' ? t.result.snapshot : null),
    progress: t.progress, error: t.error, createdAt: t.createdAt, startedAt: t.startedAt, finishedAt: t.finishedAt,
    cancelRequestedBy: t.cancelRequestedBy,
  };
}

/** A task's log lines as `actor` may read them (the provider's own lines only for the provider). */
export function taskLog(ctx: Context, t: TaskRecord, actor: Actor = ROOT): { at: string; level: string; message: string }[] {
  return ctx.store.tasks.logs(t.id, { provider: actor.role === 'admin' });
}

export type CancelOutcome = 'cancelled' | 'stopping';

/**
 * Cancels a task. A queued one never starts; a running backup stops at once and leaves no
 * snapshot (the process running it sees the request within a second). A running restore is
 * not stopped halfway: the account would be left with some files restored and some not.
 */
export async function cancelTask(ctx: Context, id: number, actor: Actor = ROOT): Promise<CancelOutcome> {
  const t = await getTask(ctx, id, actor);
  if (!(await mayCancel(ctx, actor, t))) throw new UserError(`task ${id} is not yours to cancel`);
  const record = (result: string): void => ctx.store.activity.record({
    actor: actor.name, role: actor.role, action: 'cancel', target: `task ${id} (${t.type}${t.account ? ` of ${t.account}` : ''})`, result, detail: '',
  });
  if (ctx.store.tasks.cancelQueued(id, actor.name)) { record('ok'); return 'cancelled'; }
  const now = ctx.store.tasks.byId(id)!;
  if (now.status === 'running') {
    if (now.type !== 'backup') throw new UserError(`task ${id} is a ${now.type} that has started: it cannot be stopped halfway`);
    if (now.cancelRequestedBy !== null || ctx.store.tasks.requestCancel(id, actor.name)) { record('requested'); return 'stopping'; }
  }
  const after = ctx.store.tasks.byId(id)!;
  throw new UserError(`task ${id} has already ended (${after.status})`);
}

/** Waits until a task has ended (the CLI's `task cancel --wait`); its record then. */
export async function waitForEnd(ctx: Context, id: number, timeoutMs = 120_000): Promise<TaskRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const t = ctx.store.tasks.byId(id)!;
    if (t.status !== 'queued' && t.status !== 'running') return t;
    if (Date.now() > until) throw new UserError(`task ${id} is still ${t.status} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
