import type { Account } from '../panels/types.js';
import { accountCreatedAt } from '../panels/created-at.js';
import type { AccountFacts, AccountIdentity } from '../store/accounts.js';
import type { Context } from './context.js';

/**
 * Which account a name means now. Everything an account owns (snapshots, its own
 * destinations and jobs, API tokens, web sessions, choices) is tied to the identity it had
 * at the time, so an account created later under a removed account's name inherits nothing.
 *
 * A new identity starts when the panel's `created` event arrives for the name, or when the
 * panel shows the name with another uid or creation time than recorded (a removal the panel
 * did not tell): the recorded identity is then retired as if its `removed` event had come.
 */
export type { AccountIdentity } from '../store/accounts.js';

export const MISSED_REMOVAL = 'the panel shows another account under this name (its uid or creation time changed) although no removal was told';

async function factsOf(ctx: Context, account: Account): Promise<AccountFacts> {
  return { uid: account.uid, panelCreatedAt: await accountCreatedAt(ctx.config, account.username), owner: account.owner };
}

/** Whether what the panel shows now is the account an identity recorded (an unknown fact never differs). */
function sameAccount(a: AccountIdentity, f: AccountFacts): boolean {
  if (a.uid !== null && a.uid !== f.uid) return false;
  return a.panelCreatedAt === null || f.panelCreatedAt === null || a.panelCreatedAt === f.panelCreatedAt;
}

/**
 * The identity `name` stands for now, recorded when first seen; null when neither the panel
 * nor the store knows the name. A removed identity is returned only while the panel still
 * shows that very account (its removal was told but not yet carried out): its last backups
 * are then the provider's too. `known` is the panel's record when the caller has it.
 */
export async function identify(ctx: Context, name: string, known?: Account | null): Promise<AccountIdentity | null> {
  const account = known !== undefined ? known : await ctx.panel(false).getAccount(name);
  const accounts = ctx.store.accounts;
  const current = accounts.current(name);
  if (!account) return current;
  const facts = await factsOf(ctx, account);
  if (current) {
    if (sameAccount(current, facts)) {
      accounts.learn(current.id, facts);
      return accounts.byId(current.id);
    }
    accounts.retire(current.id, MISSED_REMOVAL);
  } else {
    const last = accounts.latest(name);
    if (last && last.removedAt !== null && last.uid !== null && last.removedReason !== MISSED_REMOVAL && sameAccount(last, facts)) return last;
  }
  return accounts.insert(name, facts);
}

/** The id of the identity `name` stands for now and that is not removed, or null. */
export async function currentIdentityId(ctx: Context, name: string): Promise<number | null> {
  const a = await identify(ctx, name);
  return a && a.removedAt === null ? a.id : null;
}

/** A `created` event this soon after an identity was first seen is about that same account. */
const CREATED_EVENT_GRACE_MS = 10 * 60 * 1000;

/**
 * The panel created an account: whatever was recorded under its name before is someone else.
 * A current identity stays only when it is provably this account: the panel's creation time
 * and uid match what was recorded, or (without a creation time, as on standalone servers)
 * the uid matches and it was first seen moments ago (a backup or a sign-in between the
 * panel's useradd and its event, or the event repeated).
 */
export async function accountCreated(ctx: Context, name: string): Promise<AccountIdentity | null> {
  const account = await ctx.panel(false).getAccount(name);
  const facts = account ? await factsOf(ctx, account) : null;
  const current = ctx.store.accounts.current(name);
  if (current && facts && current.uid !== null && sameAccount(current, facts)) {
    if (current.panelCreatedAt !== null && facts.panelCreatedAt !== null) return current;
    if (current.firstSeenAt !== null && Date.now() - Date.parse(current.firstSeenAt) < CREATED_EVENT_GRACE_MS) return current;
  }
  if (current) ctx.store.accounts.retire(current.id, 'the panel created a new account under this name');
  return ctx.store.accounts.insert(name, facts);
}

/** The panel removes an account: its identity ends (store/accounts.ts retire says what follows). */
export async function accountRemoved(ctx: Context, name: string): Promise<AccountIdentity | null> {
  // Recorded first (with its uid) so that the removal is known even for a name never seen before.
  const a = await identify(ctx, name);
  if (a && a.removedAt === null) ctx.store.accounts.retire(a.id, 'the panel removed the account');
  return a === null ? null : ctx.store.accounts.byId(a.id);
}

/** How an identity is shown (CLI `account identities`, JSON). */
export function describeIdentity(ctx: Context, a: AccountIdentity): Record<string, unknown> {
  return {
    identity: a.id, account: a.name, uid: a.uid, panelCreatedAt: a.panelCreatedAt, owner: a.owner, firstSeenAt: a.firstSeenAt,
    removedAt: a.removedAt, removedReason: a.removedReason, current: a.removedAt === null,
    snapshots: ctx.store.snapshots.list({ accountId: a.id }).length,
  };
}

/** Every recorded identity (of one name), oldest first; the panel is asked about `name` first. */
export async function listIdentities(ctx: Context, name?: string): Promise<AccountIdentity[]> {
  if (name !== undefined) await identify(ctx, name);
  return ctx.store.accounts.list(name);
}
