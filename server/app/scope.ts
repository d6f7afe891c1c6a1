import type { Context } from '../services/context.js';
import { mayActOnAccount, maySeeSnapshotsOn, type Actor } from '../services/actor.js';
import type { DestinationRecord } from '../store/destinations.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { TaskRecord } from '../store/tasks.js';
import type { ActivityRecord } from '../store/activity.js';
import { notFound } from './http-error.js';
import { visibleActivity } from '../services/activity.js';
import { holderOf, type IdentityCache } from '../services/snapshots.js';

/**
 * What a signed-in person may see, decided here for every page: the services do not
 * take an actor yet. Anything out of scope is answered exactly like something that
 * does not exist (404), so a guess learns nothing.
 */
export class Scope {
  private readonly accounts = new Map<string, Promise<boolean>>();
  private readonly destinations: Map<number, DestinationRecord>;
  private readonly identities: IdentityCache = new Map();

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

  /**
   * A snapshot of the account as it is now; a removed account's of the same name is the
   * provider's (and still its former reseller's) only. `accountId` undefined: not known.
   */
  async maySee(s: Pick<SnapshotRecord, 'account' | 'destinationId' | 'accountId'>): Promise<boolean> {
    if (this.destination(s.destinationId) === null) return false;
    if (this.actor.role === 'admin') return true;
    const holder = await holderOf(this.ctx, s, this.identities);
    if (holder === 'current') return this.mayActOn(s.account);
    return holder === 'former' && this.actor.role === 'reseller' && this.ctx.store.accounts.byId(s.accountId!)?.owner === this.actor.name;
  }

  /** Newest first. */
  async snapshots(): Promise<SnapshotRecord[]> {
    const all = this.actor.role === 'user' ? this.ctx.store.snapshots.list({ account: this.actor.name }) : this.ctx.store.snapshots.list();
    const out: SnapshotRecord[] = [];
    for (const s of all) if (await this.maySee(s)) out.push(s);
    return out;
  }

  async snapshot(destinationId: number, account: string, id: string): Promise<SnapshotRecord> {
    const s = this.ctx.store.snapshots.byKey(destinationId, account, id);
    if (!s || !(await this.maySee(s))) throw notFound();
    return s;
  }

  async mayMonitor(t: TaskRecord): Promise<boolean> {
    // A backup the account holder started itself with "back up now".
    const ownBackup = t.type === 'backup' && t.params.requestedBy === this.actor.name && t.account === this.actor.name;
    if (t.type !== 'restore' && t.type !== 'download' && !ownBackup) return this.actor.role === 'admin';
    if (t.account === null || t.destinationId === null) return this.actor.role === 'admin';
    // The account identity the task worked on (services/tasks.ts).
    const recorded = t.params.accountIdentity;
    return this.maySee({ account: t.account, destinationId: t.destinationId, accountId: typeof recorded === 'number' ? recorded : null });
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
