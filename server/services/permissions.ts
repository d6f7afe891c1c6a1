import type { Config } from '../config.js';
import { UserError, type Context } from './context.js';
import type { Actor } from './actor.js';

/** What the provider lets account holders and resellers do; admins may always do everything. */
export const ACTIONS = ['restoreFiles', 'restoreDatabases', 'download', 'ownDestinations', 'ownJobs', 'backupNow'] as const;
export type Action = typeof ACTIONS[number];
export type Permissions = Record<Action, boolean>;

const WHAT: Record<Action, string> = {
  restoreFiles: 'restore files',
  restoreDatabases: 'restore databases',
  download: 'download from snapshots',
  ownDestinations: 'add destinations of its own',
  ownJobs: 'add or run backup jobs of its own',
  backupNow: 'start a backup now',
};

/** A refusal by the provider's permissions: the surfaces answer it with 403. */
export class PermissionError extends UserError {
  constructor(readonly action: Action) {
    super(`the provider does not allow this account to ${WHAT[action]}`, 'forbidden');
    this.name = 'PermissionError';
  }
}

/**
 * Account holders may restore and download files and databases and, when they have
 * destinations of their own, add jobs to them. Whether they may have destinations of their
 * own is `accountDestinations.enabled`, the one switch for it: it is also the master switch,
 * so while it is off no override grants own destinations. Resellers get nothing of their
 * own by default. Resellers may start a backup of their accounts now; account holders only when
 * the provider allows it (`backupNow`, limited by `backupNowPerDay`). A per-account entry overrides its role's values.
 */
const DEFAULTS: Record<'user' | 'reseller', Permissions> = {
  user: { restoreFiles: true, restoreDatabases: true, download: true, ownDestinations: false, ownJobs: true, backupNow: false },
  reseller: { restoreFiles: true, restoreDatabases: true, download: true, ownDestinations: false, ownJobs: false, backupNow: true },
};

/** Every permission of `actor` (all true for an admin). */
export function permissionsOf(config: Pick<Config, 'permissions' | 'accountDestinations'>, actor: Actor): Permissions {
  if (actor.role === 'admin') return { restoreFiles: true, restoreDatabases: true, download: true, ownDestinations: true, ownJobs: true, backupNow: true };
  const role = actor.role;
  const roleSettings: Partial<Permissions> = role === 'user'
    ? { ...config.permissions.user, ownDestinations: config.accountDestinations.enabled }
    : config.permissions.reseller;
  const own = config.permissions.accounts[actor.name] ?? {};
  const out = { ...DEFAULTS[role] };
  for (const a of ACTIONS) out[a] = own[a] ?? roleSettings[a] ?? DEFAULTS[role][a];
  if (role === 'user' && !config.accountDestinations.enabled) out.ownDestinations = false;
  return out;
}

/**
 * Whether `actor` may do `action` on `account`. Overrides are looked up by the actor's
 * own name (an account holder acts only on its own account; a reseller's entry is its
 * own), so an account holder naming another account is refused outright.
 */
export function may(ctx: Pick<Context, 'config'>, actor: Actor, action: Action, account: string): boolean {
  if (actor.role === 'admin') return true;
  if (actor.role === 'user' && account !== actor.name) return false;
  return permissionsOf(ctx.config, actor)[action];
}

/** Throws a PermissionError unless `may`. */
export function checkMay(ctx: Pick<Context, 'config'>, actor: Actor, action: Action, account: string): void {
  if (!may(ctx, actor, action, account)) throw new PermissionError(action);
}
