import type { DestinationRecord } from '../store/destinations.js';
import type { Context } from './context.js';

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
 * resellers see a provider's destination only while its snapshots are visible, and
 * always the destinations they own.
 */
export function maySeeSnapshotsOn(actor: Actor, destination: Pick<DestinationRecord, 'owner' | 'snapshotsVisible'>): boolean {
  if (actor.role === 'admin') return true;
  if (destination.owner === actor.name) return true;
  return destination.snapshotsVisible;
}

/** Whether `actor` may see and manage `destination` itself (settings, browse, validate, remove). */
export function mayManageDestination(actor: Actor, destination: Pick<DestinationRecord, 'owner'>): boolean {
  return actor.role === 'admin' || destination.owner === actor.name;
}
