import { accountRestoreMode, restoreMailOn, type AccountRestoreMode } from '../notify/restore-result.js';
import { mayActOnAccount, type Actor } from './actor.js';
import { UserError, type Context } from './context.js';

export interface RestoreMailSetting {
  account: string;
  /** The provider's `notifications.accountRestores`. */
  mode: AccountRestoreMode;
  /** What the holder chose; null until it chooses. */
  chosen: boolean | null;
  /** Whether restores of this account are mailed (see shouldMailRestore for whose). */
  restores: boolean;
  /** Where the mail goes: the account's contact address in the panel. */
  contactEmail: string | null;
  /** Why no mail would go out although it is on, or null. */
  problem: string | null;
}

/** The account, when `actor` may see it; otherwise "no account", as for one that does not exist. */
async function accountFor(ctx: Context, account: string, actor: Actor): Promise<{ username: string; contactEmail: string | null }> {
  const a = (await mayActOnAccount(ctx, actor, account)) ? await ctx.panel(false).getAccount(account) : null;
  if (!a) throw new UserError(`no account named "${account}"`);
  return a;
}

function settingOf(ctx: Context, a: { username: string; contactEmail: string | null }): RestoreMailSetting {
  const mode = accountRestoreMode(ctx.config);
  const chosen = ctx.store.accountPreferences.get(a.username).restoreMail;
  const restores = restoreMailOn(ctx.config, chosen);
  const problem = !restores ? null
    : !ctx.config.notifications?.email ? 'the provider has not set up mail (notifications.email)'
      : a.contactEmail === null ? 'the panel holds no valid contact address for this account' : null;
  return { account: a.username, mode, chosen, restores, contactEmail: a.contactEmail, problem };
}

/** Whether `account` gets mail about its restores, for its holder (or its reseller, or the provider). */
export async function restoreMailSetting(ctx: Context, account: string, actor: Actor): Promise<RestoreMailSetting> {
  return settingOf(ctx, await accountFor(ctx, account, actor));
}

/** "Mail me about my restores": the holder's choice, stored per account. */
export async function setRestoreMail(ctx: Context, account: string, on: boolean, actor: Actor): Promise<RestoreMailSetting> {
  const a = await accountFor(ctx, account, actor);
  if (on && accountRestoreMode(ctx.config) === 'off') {
    throw new UserError('the provider does not send mail about restores to account holders (notifications.accountRestores is "off")');
  }
  ctx.store.accountPreferences.setRestoreMail(a.username, on);
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'account.notify', target: a.username, result: 'ok', detail: `mail about restores ${on ? 'on' : 'off'}` });
  return settingOf(ctx, a);
}
