import type { Context } from '../services/context.js';
import { mayActOnAccount, maySeeSnapshotsOn, type Actor } from '../services/actor.js';
import type { DestinationRecord } from '../store/destinations.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { TaskRecord } from '../store/tasks.js';
import type { ActivityRecord } from '../store/activity.js';
import { notFound } from './http-error.js';
import { visibleActivity } from '../services/activity.js';

/**
 * What a signed-in person may see, decided here for every page: the services do not
 * take an actor yet. Anything out of scope is answered exactly like something that
 * does not exist (404), so a guess learns nothing.
 */
export class Scope {
  private readonly accounts = new Map<string, Promise<boolean>>();
  private readonly destinations: Map<number, DestinationRecord>;

  constructor(private readonly ctx: Context, readonly actor: Actor) {
    this.destinations = new Map(ctx.store.destinations.list().map((d) => [d.id, d]));
  }

  mayActOn(account: string): Promise<boolean> {
    let p = this.accounts.get(account);
    if (!p) {
      p = mayActOnAccount(this.ctx, this.actor, account);
      this.accounts.set(account, p);
    }
    return p;
  }

  destination(id: number): DestinationRecord | null {
    const d = this.destinations.get(id);
    return d && maySeeSnapshotsOn(this.actor, d) ? d : null;
  }

  async maySee(s: Pick<SnapshotRecord, 'account' | 'destinationId'>): Promise<boolean> {
    return this.destination(s.destinationId) !== null && await this.mayActOn(s.account);
  }

  /** Newest first. */
  async snapshots(): Promise<SnapshotRecord[]> {
    const all = this.actor.role === 'user' ? this.ctx.store.snapshots.list({ account: this.actor.name }) : this.ctx.store.snapshots.list();
    const out: SnapshotRecord[] = [];
    for (const s of all) if (await this.maySee(s)) out.push(s);
    return out;
  }

  async snapshot(destinationId: number, account: string, id: string): Promise<SnapshotRecord> {
    const s = this.ctx.store.snapshots.byId(id).find((x) => x.destinationId === destinationId && x.account === account);
    if (!s || !(await this.maySee(s))) throw notFound();
    return s;
  }

  async mayMonitor(t: TaskRecord): Promise<boolean> {
    if (t.type !== 'restore' && t.type !== 'download') return this.actor.role === 'admin';
    if (t.account === null || t.destinationId === null) return this.actor.role === 'admin';
    return this.maySee({ account: t.account, destinationId: t.destinationId });
  }

  async task(id: number): Promise<TaskRecord> {
    const t = this.ctx.store.tasks.byId(id);
    if (!t || !(await this.mayMonitor(t))) throw notFound();
    return t;
  }

  /** The entries of the activity log this actor may see (services/activity.ts). */
  activity(limit = 500): Promise<ActivityRecord[]> {
    return visibleActivity(this.ctx, this.actor, this.ctx.store.activity.list(limit));
  }
}
