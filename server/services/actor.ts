import type { DestinationRecord } from '../store/destinations.js';
import { UserError, type Context } from './context.js';

/**
 * Who asks. Every service that shows or changes something takes an actor and keeps to
 * its scope: an admin (root in the panel) sees everything, a reseller the accounts it
 * owns, an account holder its own account only. The CLI acts as root.
 */
export type Role = 'admin' | 'reseller' | 'user';

export interface Actor {
  name: string;
  role: Role;
}

export const ROOT: Actor = { name: 'root', role: 'admin' };

/** Whether `actor` may see and act on `account` (reseller: the accounts it owns, and its own). */
export async function mayActOnAccount(ctx: Context, actor: Actor, account: string): Promise<boolean> {
  if (actor.role === 'admin') return true;
  if (account === actor.name) return true;
  if (actor.role === 'user') return false;
  const a = await ctx.panel(false).getAccount(account);
  return a !== null && a.owner === actor.name;
}

/**
 * Whether `actor` may see the snapshots kept on `destination`. Account holders and
 * resellers see a provider's destination only while its snapshots are visible, always
 * the destinations they own, and never another account's.
 */
export function maySeeSnapshotsOn(actor: Actor, destination: Pick<DestinationRecord, 'owner' | 'snapshotsVisible'>): boolean {
  if (actor.role === 'admin') return true;
  if (destination.owner === ownerOf(actor)) return true;
  return destination.owner === PROVIDER && destination.snapshotsVisible;
}

/** Whether `actor` may see and manage `destination` itself (settings, browse, validate, remove). */
export function mayManageDestination(actor: Actor, destination: Pick<DestinationRecord, 'owner'>): boolean {
  return actor.role === 'admin' || destination.owner === ownerOf(actor);
}

/** The provider's destinations and jobs are owned by 'root'; an account's by the account's name. */
export const PROVIDER = 'root';

/** The owner recorded on what `actor` creates. */
export function ownerOf(actor: Actor): string {
  return actor.role === 'admin' ? PROVIDER : actor.name;
}

/** Whether a destination was added by an account holder rather than by the provider. */
export function isAccountOwned(record: { owner: string }): boolean {
  return record.owner !== PROVIDER;
}

/**
 * Picks, among the records of one name (destinations or jobs; names are unique per owner),
 * the one `actor` means. An account holder reaches only its own, and asking for another
 * owner's finds nothing (so names of others never leak). The provider gets the one of
 * `owner` when given, else its own, else the only one there is.
 */
export function pickOwned<T extends { owner: string }>(records: T[], actor: Actor, owner: string | undefined, what: string, name: string): T | null {
  if (actor.role !== 'admin') {
    if (owner !== undefined && owner !== ownerOf(actor)) return null;
    return records.find((r) => r.owner === ownerOf(actor)) ?? null;
  }
  if (owner !== undefined) return records.find((r) => r.owner === owner) ?? null;
  const own = records.find((r) => r.owner === PROVIDER);
  if (own || records.length <= 1) return own ?? records[0] ?? null;
  throw new UserError(`several accounts have a ${what} named "${name}" (${records.map((r) => r.owner).join(', ')}): add --owner ACCOUNT`);
}
