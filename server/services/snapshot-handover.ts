import type { SnapshotRecord } from '../store/snapshots.js';
import { identify } from './account-identity.js';
import { UserError, type Context } from './context.js';
import { describeSnapshot, findSnapshot } from './snapshots.js';

export interface HandoverInput {
  /** One snapshot by id (with `destination` when the id is on several). */
  id?: string;
  destination?: string;
  /** Every snapshot of this (removed) account identity. */
  fromIdentity?: number;
  /** The account that gets them: the account now of the name they were taken under. */
  to: string;
}

/**
 * The provider hands snapshots of a removed account (the provider's since the removal) to
 * the account that now holds the name: it then sees, restores and downloads them as its own.
 * Only to that name: a snapshot lives in the folder of the name it was taken under, and a
 * restore writes into the home of the account of that name.
 */
export async function handOverSnapshots(ctx: Context, input: HandoverInput): Promise<{ to: Record<string, unknown>; assigned: Record<string, unknown>[] }> {
  if ((input.id === undefined) === (input.fromIdentity === undefined)) throw new UserError('give a snapshot id or --from-identity ID', 'invalid-input');
  const account = await ctx.panel(false).getAccount(input.to);
  const target = account ? await identify(ctx, input.to, account) : null;
  if (!target || target.removedAt !== null) throw new UserError(`no account named "${input.to}"`);
  let snapshots: SnapshotRecord[];
  if (input.id !== undefined) {
    snapshots = [await findSnapshot(ctx, input.id, input.destination)];
  } else {
    const from = ctx.store.accounts.byId(input.fromIdentity!);
    if (!from) throw new UserError(`no account identity ${input.fromIdentity}`);
    if (from.removedAt === null) throw new UserError(`account identity ${from.id} is the current account ${from.name}: its snapshots are its own already`);
    snapshots = ctx.store.snapshots.list({ accountId: from.id });
  }
  for (const s of snapshots) {
    if (s.account !== target.name) {
      throw new UserError(`snapshot ${s.id} was taken of an account named ${s.account}: it can be handed only to the account now named ${s.account}`);
    }
  }
  ctx.store.db.transaction(() => {
    for (const s of snapshots) ctx.store.snapshots.setAccountId(s.destinationId, s.account, s.id, target.id);
  })();
  ctx.store.activity.record({
    actor: 'root', role: 'admin', action: 'snapshot.assign', target: target.name, result: 'ok',
    detail: `${snapshots.length} snapshot(s) to account identity ${target.id}: ${snapshots.map((s) => `${s.id}${s.accountId ? ` (from identity ${s.accountId})` : ''}`).join(', ')}`,
  });
  return {
    to: { account: target.name, identity: target.id },
    assigned: snapshots.map((s) => describeSnapshot(ctx, { ...s, accountId: target.id })),
  };
}
