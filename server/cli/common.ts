/** What every command shares: global options, whom it acts for, opening the state store. */
import type { Command } from 'commander';
import { openContext, UserError, type Context } from '../services/context.js';
import { ROOT, type Actor } from '../services/actor.js';
import { ACCOUNT_NAME } from '../engine/snapshot-layout.js';
import { identify } from '../services/account-identity.js';
import { RETIRED_OWNER } from '../store/accounts.js';
import type { SnapshotVerifyReport } from '../services/verify.js';
import { humanBytes } from './output.js';

/** One snapshot's verification in a few lines: its result, then each damaged file. */
export function printVerifyReport(r: SnapshotVerifyReport): void {
  const what = `${r.checked.files} files, ${humanBytes(r.checked.bytes)}, ${r.checked.databases} databases read`;
  process.stdout.write(`snapshot ${r.snapshot} of ${r.account}: ${r.result === 'damaged' ? 'DAMAGED' : r.result} (${what}; task ${r.task})\n`);
  for (const d of r.damaged) process.stderr.write(`damaged: ${r.snapshot}: ${d.file}${d.path !== undefined ? ` (${d.path})` : ''}: ${d.problem}\n`);
}

export const ROLES = ['admin', 'reseller', 'user'];

export interface GlobalOptions { dataDir?: string; json?: boolean; asAccount?: string; owner?: string }

export const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Opens the state store, runs the action, and turns errors into a message and an exit code. */
export function action<A extends unknown[]>(fn: (ctx: Context, json: boolean, ...args: A) => Promise<void>) {
  return actionAs<A>(async (ctx, json, who, ...args) => {
    // A command that does not take an actor would act as root: refused rather than misleading.
    if (who.actor !== ROOT || who.owner !== undefined) throw new UserError('--as-account and --owner do not apply to this command', 'invalid-input');
    await fn(ctx, json, ...args);
  });
}

/** Whom a command acts for, and (for the provider) which account's destination or job a name means. */
export interface Who { actor: Actor; owner: string | undefined }

/**
 * The CLI runs as root; `--as-account NAME` gives the command the identity of that account's
 * holder, exactly as a panel bridge will, so every rule for account holders applies.
 */
async function whoFrom(ctx: Context, g: GlobalOptions): Promise<Who> {
  const check = (name: string, option: string): void => {
    if (!ACCOUNT_NAME.test(name)) throw new UserError(`${option}: "${name}" is not an account name`, 'invalid-input');
  };
  // The destinations and jobs of a removed account are owned by NAME#IDENTITY (store/accounts.ts).
  if (g.owner !== undefined && !RETIRED_OWNER.test(g.owner)) check(g.owner, '--owner');
  if (g.asAccount === undefined) return { actor: ROOT, owner: g.owner };
  check(g.asAccount, '--as-account');
  const account = g.asAccount === 'root' ? null : await ctx.panel(false).getAccount(g.asAccount);
  if (!account) throw new UserError(`--as-account: no account named "${g.asAccount}"`);
  // The account as it is now (a removed and re-created one is noticed here).
  await identify(ctx, account.username, account);
  return { actor: { name: account.username, role: 'user' }, owner: g.owner };
}

/**
 * The state store is root's: another user who runs the command gets told so, instead of
 * SQLite's "unable to open database file".
 */
async function openContextAsRoot(dataDir: string | undefined): Promise<Context> {
  try {
    return await openContext(dataDir);
  } catch (err) {
    if (process.geteuid?.() === 0) throw err;
    throw new UserError(`the tidemark command runs as root (account holders use the Tidemark page of their panel): ${(err as Error).message}`, 'forbidden');
  }
}

/** `action` for commands that account holders may use: they get whom they act for. */
export function actionAs<A extends unknown[]>(fn: (ctx: Context, json: boolean, who: Who, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    const ctx = await openContextAsRoot(g.dataDir);
    try {
      await fn(ctx, Boolean(g.json), await whoFrom(ctx, g), ...(args.slice(0, -1) as A));
    } finally {
      ctx.close();
    }
  };
}
