import type { Config } from '../config.js';
import type { Context } from '../services/context.js';
import type { Actor } from '../services/actor.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { TaskRecord } from '../store/tasks.js';
import { sendMail } from './deliver.js';

export type AccountRestoreMode = 'opt-in' | 'always' | 'off';

export const accountRestoreMode = (config: Pick<Config, 'notifications'>): AccountRestoreMode => config.notifications?.accountRestores ?? 'opt-in';

/**
 * Whether the account gets mail about its restores at all: never while the provider says
 * 'off'; otherwise as the holder chose, and until it chooses, only when the provider says 'always'.
 */
export function restoreMailOn(config: Pick<Config, 'notifications'>, chosen: boolean | null): boolean {
  const mode = accountRestoreMode(config);
  return mode !== 'off' && (chosen ?? mode === 'always');
}

/**
 * Whether this restore is mailed to the account: the account wants such mail, a mail
 * transport is configured, and the holder started the restore itself (or, when the provider
 * says 'always', anyone did).
 */
export function shouldMailRestore(config: Pick<Config, 'notifications'>, chosen: boolean | null, actor: Actor, account: string): boolean {
  if (!config.notifications?.email || !restoreMailOn(config, chosen)) return false;
  if (accountRestoreMode(config) === 'always') return true;
  return actor.role === 'user' && actor.name === account;
}

const MAX_PATHS = 20;
const VERB: Record<string, string> = { completed: 'completed', partial: 'partly completed', failed: 'FAILED' };
const OUTCOME: Record<string, string> = { completed: 'has completed', partial: 'has partly completed', failed: 'failed' };
const utc = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

/** The mail about one finished restore: only that restore's facts, nothing of the provider's or of other accounts. */
export function describeRestore(s: SnapshotRecord, t: TaskRecord, byHolder: boolean): { subject: string; body: string } {
  const params = t.params as { paths?: string[]; databases?: { name: string; as?: string }[]; intoFolder?: boolean };
  const result = t.result as { files?: { files: number; directories: number; links: number; warningCount: number } | null; folder?: string | null; databases?: { name: string; restoredAs: string }[] };
  const verb = VERB[t.status] ?? t.status;
  const paths = params.paths ?? [];
  const databases = params.databases ?? [];
  const what: string[] = [];
  if (paths.length > 0) {
    what.push(...paths.slice(0, MAX_PATHS).map((p) => `  ${p}`));
    if (paths.length > MAX_PATHS) what.push(`  … and ${paths.length - MAX_PATHS} more`);
  } else if (databases.length === 0) what.push('  the whole home folder');
  for (const d of databases) what.push(`  database ${d.name}${d.as ? ` as ${d.as}` : ''}`);
  const lines = [
    `The restore ${byHolder ? 'you asked for' : 'your provider started'} on your account ${s.account} ${OUTCOME[t.status] ?? t.status}.`,
    '',
    `Account:   ${s.account}`,
    `Snapshot:  ${utc(s.finishedAt)} (${s.id})`,
    'Asked for:',
    ...what,
    `Where:     ${params.intoFolder ? 'into a new folder' : 'into place'}${result.folder ? ` (~/${result.folder})` : ''}`,
    `Result:    ${t.status}`,
  ];
  if (result.files) {
    lines.push(`Files:     ${result.files.files} files, ${result.files.directories} new folders, ${result.files.links} links${result.files.warningCount ? `, ${result.files.warningCount} not restored (see the task)` : ''}`);
  }
  for (const d of result.databases ?? []) lines.push(`Database:  ${d.name} restored as ${d.restoredAs}`);
  if (t.error) lines.push(`Error:     ${t.error}`);
  lines.push(`Task:      ${t.id}`);
  return { subject: `[Tidemark] restore of ${s.account} ${verb} (snapshot ${s.id})`, body: `${lines.join('\n')}\n` };
}

/**
 * Mails the account holder about a restore of its account that just finished, when it
 * wants such mail (see shouldMailRestore). Only to the contact address the panel holds for
 * the account. Never throws: a mail that cannot be sent is a warning in the task's log and
 * an activity entry, and the restore's result stays what it was.
 */
export async function notifyRestoreResult(ctx: Context, s: SnapshotRecord, actor: Actor, taskId: number): Promise<void> {
  try {
    const email = ctx.config.notifications?.email;
    const t = ctx.store.tasks.byId(taskId);
    if (!email || !t || !(t.status in VERB)) return;
    if (!shouldMailRestore(ctx.config, ctx.store.accountPreferences.get(s.account).restoreMail, actor, s.account)) return;
    const account = await ctx.panel(false).getAccount(s.account);
    if (!account?.contactEmail) {
      ctx.store.tasks.log(taskId, 'warn', 'no mail about this restore: the panel holds no valid contact address for the account');
      return;
    }
    const { subject, body } = describeRestore(s, t, actor.role === 'user' && actor.name === s.account);
    const target = `${s.account} ${s.id}`;
    try {
      await sendMail(email, { from: email.from, to: [account.contactEmail], subject, body });
      ctx.store.tasks.log(taskId, 'info', "mail about this restore sent to the account's contact address");
      ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target, result: 'ok', detail: `email to the account: ${subject}` });
    } catch (err) {
      ctx.store.tasks.log(taskId, 'warn', `mail about this restore could not be sent: ${(err as Error).message}`);
      ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target, result: 'failed', detail: `email to the account: ${(err as Error).message}` });
    }
  } catch (err) {
    try { ctx.store.tasks.log(taskId, 'warn', `mail about this restore failed: ${(err as Error).message}`); } catch { /* the restore's result matters more */ }
  }
}
