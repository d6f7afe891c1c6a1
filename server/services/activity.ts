import type { ActivityRecord } from '../store/activity.js';
import type { Actor } from './actor.js';
import type { Context } from './context.js';
import { listSnapshots } from './snapshots.js';
import { identify } from './account-identity.js';

/**
 * The entries `actor` may see: an admin all of them; an account holder or a reseller its own
 * actions, and what happened to snapshots it may see (activity names a snapshot as
 * "<account> <id>"): never another account's, never a hidden destination's. The web pages
 * and the CLI both scope with this. Its own actions are those since its account identity
 * began: a removed account's of the same name are not the new holder's.
 */
export async function visibleActivity(ctx: Context, actor: Actor, entries: readonly ActivityRecord[]): Promise<ActivityRecord[]> {
  if (actor.role === 'admin') return [...entries];
  const visible = new Set((await listSnapshots(ctx, {}, actor)).map((s) => `${s.account} ${s.id}`));
  // null: an identity recorded by the migration that introduced them, older than any entry.
  const since = (await identify(ctx, actor.name))?.firstSeenAt ?? null;
  return entries.filter((a) => (a.actor === actor.name && a.role === actor.role && (since === null || a.at >= since)) || visible.has(a.target));
}

/** Entries at or after `since` that `actor` may see, newest first. */
export async function activitySince(ctx: Context, since: Date, actor: Actor): Promise<ActivityRecord[]> {
  return visibleActivity(ctx, actor, ctx.store.activity.since(since));
}
