import type { Context } from '../../services/context.js';
import { maySeeSnapshotsOn, type Actor } from '../../services/actor.js';
import type { Account } from '../../panels/types.js';
import type { TaskRecord } from '../../store/tasks.js';
import { notFound } from '../http-error.js';

const ACTIVE = new Set(['queued', 'running']);

/**
 * What a provider page shows to whom: an admin everything, a reseller the accounts it
 * owns and what happened to them on destinations whose snapshots it may see (never a
 * hidden destination's, never another reseller's accounts).
 */
export class ProviderScope {
  private owned: Promise<Account[]> | null = null;

  constructor(private readonly ctx: Context, readonly actor: Actor) {}

  get isAdmin(): boolean {
    return this.actor.role === 'admin';
  }

  accounts(): Promise<Account[]> {
    this.owned ??= this.ctx.panel(false).listAccounts().then((all) => (this.isAdmin ? all : all.filter((a) => a.owner === this.actor.name)));
    return this.owned;
  }

  /** The account, or "not found" when it is not this actor's to see. */
  async account(name: string): Promise<Account> {
    const a = (await this.accounts()).find((x) => x.username === name);
    if (!a) throw notFound();
    return a;
  }

  async tasks(limit = 100): Promise<TaskRecord[]> {
    // A reseller's tasks are few among many: read more, keep its own.
    const all = this.ctx.store.tasks.list(this.isAdmin ? limit : limit * 10);
    if (this.isAdmin) return all;
    const mine = new Set((await this.accounts()).map((a) => a.username));
    return all.filter((t) => this.mayMonitor(t, mine)).slice(0, limit);
  }

  async task(id: number): Promise<TaskRecord> {
    const t = Number.isSafeInteger(id) ? this.ctx.store.tasks.byId(id) : null;
    if (!t) throw notFound();
    if (!this.isAdmin && !this.mayMonitor(t, new Set((await this.accounts()).map((a) => a.username)))) throw notFound();
    return t;
  }

  private mayMonitor(t: TaskRecord, mine: Set<string>): boolean {
    if (t.account === null || !mine.has(t.account) || t.destinationId === null) return false;
    // A task of a removed account of the same name: only the reseller that owned that one.
    const identity = typeof t.params.accountIdentity === 'number' ? this.ctx.store.accounts.byId(t.params.accountIdentity) : null;
    if (identity && identity.removedAt !== null && identity.owner !== this.actor.name) return false;
    const d = this.ctx.store.destinations.byId(t.destinationId);
    return d !== null && maySeeSnapshotsOn(this.actor, d);
  }
}

/** How far a task has come, 0-100, or null when there is no way to tell (the bar then only shows that it works). */
export function percentOf(ctx: Context, t: TaskRecord): number | null {
  if (t.status === 'completed' || t.status === 'partial') return 100;
  if (!ACTIVE.has(t.status)) return null;
  const p = t.progress as { bytes?: number; totalBytes?: number };
  if (typeof p.bytes !== 'number') return t.status === 'queued' ? 0 : null;
  if (typeof p.totalBytes === 'number') return p.totalBytes > 0 ? Math.min(99, Math.floor((p.bytes / p.totalBytes) * 100)) : 99;
  // A backup does not know its size beforehand: the account's previous snapshot there is the best guess.
  if (t.type === 'backup' && t.account !== null && t.destinationId !== null) {
    const previous = ctx.store.snapshots.list({ account: t.account, destinationId: t.destinationId })[0];
    if (previous && previous.bytes > 0) return Math.min(99, Math.floor((p.bytes / previous.bytes) * 100));
  }
  return null;
}

export function taskJson(ctx: Context, t: TaskRecord): Record<string, unknown> {
  const destination = t.destinationId === null ? null : ctx.store.destinations.byId(t.destinationId)?.name ?? null;
  const job = t.jobId === null ? null : ctx.store.jobs.byId(t.jobId)?.name ?? null;
  return {
    id: t.id, type: t.type, status: t.status, account: t.account, destination, job, snapshotId: t.snapshotId,
    progress: t.progress, percent: percentOf(ctx, t), error: t.error, createdAt: t.createdAt, startedAt: t.startedAt, finishedAt: t.finishedAt,
    active: ACTIVE.has(t.status),
    // A queued task, or a backup that runs (a restore is never stopped halfway).
    cancellable: t.status === 'queued' || (t.status === 'running' && t.type === 'backup' && t.cancelRequestedBy === null),
    cancelling: t.status === 'running' && t.cancelRequestedBy !== null,
  };
}

export const isActive = (t: TaskRecord): boolean => ACTIVE.has(t.status);
