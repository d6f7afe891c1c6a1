import { lockAccount } from '../engine/account-lock.js';
import { ACCOUNT_NAME, layout } from '../engine/snapshot-layout.js';
import type { JobRecord } from '../store/jobs.js';
import { runBackup } from './backups.js';
import { PRIORITIES } from '../queue/priority.js';
import { UserError, type Context } from './context.js';
import { ROOT } from './actor.js';
import { withDriver } from './destinations.js';
import { accountCreated as identityCreated, accountRemoved as identityRemoved } from './account-identity.js';

/**
 * What the panels tell Tidemark about accounts (through the hook scripts in plugin/):
 * an account was created, is about to be removed, was renamed, suspended or unsuspended.
 */
export const PANEL_EVENTS = ['created', 'removed', 'renamed', 'suspended', 'unsuspended'] as const;
export type PanelEventKind = (typeof PANEL_EVENTS)[number];
export type EventSource = 'cpanel' | 'directadmin' | 'cli';

export interface PanelEvent {
  kind: PanelEventKind;
  account: string;
  /** renamed: the account's new name. */
  newAccount: string | null;
  source: EventSource;
}

export interface FinalBackup {
  jobs: { job: string; status: 'completed' | 'partial' | 'failed' | 'cancelled' | 'skipped'; snapshot: string | null; error: string | null }[];
  timedOut: boolean;
}

export interface RenamedOn {
  destination: string;
  snapshots: number;
  folder: 'renamed' | 'absent';
  error: string | null;
}

export interface PanelEventOutcome {
  event: PanelEventKind | null;
  account: string | null;
  newAccount: string | null;
  source: EventSource;
  ok: boolean;
  summary: string;
  errors: string[];
  finalBackup?: FinalBackup;
  renamed?: { destinations: RenamedOn[]; jobs: string[] };
}

/** Longest a final backup may hold up an account removal unless the caller says otherwise. */
export const DEFAULT_FINAL_BACKUP_LIMIT_MS = 15 * 60 * 1000;

const CPANEL_EVENTS: Record<string, PanelEventKind> = {
  'Accounts::Create': 'created',
  'Accounts::Remove': 'removed',
  'Accounts::Modify': 'renamed',
  'Accounts::suspendacct': 'suspended',
  'Accounts::unsuspendacct': 'unsuspended',
};

function accountName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new UserError(`the panel did not say which account (${what} is missing)`, 'invalid-input');
  if (!ACCOUNT_NAME.test(value)) throw new UserError(`"${value}" is not a valid account name (${what})`, 'invalid-input');
  return value;
}

/**
 * Reads a cPanel standardized hook's input: JSON with `context.event` and `data`. Only the
 * names are taken; the rest (Accounts::Create carries the new account's password) is never
 * kept or logged. Returns null for an Accounts::Modify that does not change the username.
 */
export function eventFromCpanelHook(input: string, kind?: PanelEventKind): PanelEvent | null {
  let doc: { context?: { event?: unknown }; data?: Record<string, unknown> };
  try {
    doc = JSON.parse(input) as typeof doc;
  } catch {
    throw new UserError('the cPanel hook input is not JSON', 'invalid-input');
  }
  if (doc === null || typeof doc !== 'object') throw new UserError('the cPanel hook input is not a JSON object', 'invalid-input');
  const hookEvent = typeof doc.context?.event === 'string' ? doc.context.event : undefined;
  const fromHook = hookEvent !== undefined ? CPANEL_EVENTS[hookEvent] : undefined;
  const resolved = kind ?? fromHook;
  if (resolved === undefined) throw new UserError(`no Tidemark event for the cPanel hook event ${hookEvent ?? '(none)'}`);
  if (kind !== undefined && fromHook !== undefined && fromHook !== kind) throw new UserError(`the hook input is for ${hookEvent}, not "${kind}"`, 'invalid-input');
  const data = doc.data ?? {};
  const account = accountName(data.user, 'data.user');
  if (resolved === 'renamed') {
    if (data.newuser === undefined || data.newuser === '' || data.newuser === account) return null;
    return { kind: resolved, account, newAccount: accountName(data.newuser, 'data.newuser'), source: 'cpanel' };
  }
  return { kind: resolved, account, newAccount: null, source: 'cpanel' };
}

/** Reads a DirectAdmin hook's environment: `username`, and `newusername` for a rename. */
export function eventFromDirectAdminEnv(kind: PanelEventKind, env: NodeJS.ProcessEnv): PanelEvent {
  const account = accountName(env.username, 'username');
  if (kind === 'renamed') return { kind, account, newAccount: accountName(env.newusername, 'newusername'), source: 'directadmin' };
  return { kind, account, newAccount: null, source: 'directadmin' };
}

export function eventFromArguments(kind: PanelEventKind, user: string | undefined, newUser: string | undefined): PanelEvent {
  const account = accountName(user, '--user');
  if (kind === 'renamed') return { kind, account, newAccount: accountName(newUser, '--new-user'), source: 'cli' };
  return { kind, account, newAccount: null, source: 'cli' };
}

export function isPanelEventKind(v: string): v is PanelEventKind {
  return (PANEL_EVENTS as readonly string[]).includes(v);
}

export async function handlePanelEvent(ctx: Context, ev: PanelEvent, opts: { timeLimitMs?: number } = {}): Promise<PanelEventOutcome> {
  const base = { event: ev.kind, account: ev.account, newAccount: ev.newAccount, source: ev.source };
  let outcome: PanelEventOutcome;
  try {
    if (ev.kind === 'removed') {
      try {
        outcome = { ...base, ...(await accountRemoved(ctx, ev.account, opts.timeLimitMs ?? DEFAULT_FINAL_BACKUP_LIMIT_MS)) };
      } finally {
        // Whatever the final backup did: a later account of the same name is someone else. It
        // inherits no snapshot, destination, job, token, session or choice of this one.
        await identityRemoved(ctx, ev.account);
        ctx.store.accountPreferences.forget(ev.account);
      }
      outcome.summary += '; its snapshots are the provider\'s now, its own destinations, jobs, API tokens and sessions end';
    }
    else if (ev.kind === 'renamed') outcome = { ...base, ...(await accountRenamed(ctx, ev.account, ev.newAccount!)) };
    else {
      // A new account: nothing recorded under its name before is its own.
      if (ev.kind === 'created') await identityCreated(ctx, ev.account);
      const what = { created: 'jobs for all accounts include it from their next run', suspended: 'backups continue', unsuspended: 'nothing to change' }[ev.kind];
      outcome = { ...base, ok: true, summary: `account ${ev.account} ${ev.kind}: ${what}`, errors: [] };
    }
  } catch (err) {
    const message = (err as Error).message;
    outcome = { ...base, ok: false, summary: `account ${ev.account} ${ev.kind}: ${message}`, errors: [message] };
  }
  ctx.store.activity.record({
    actor: ev.source === 'cli' ? 'root' : ev.source, role: 'admin', action: `panel.${ev.kind}`,
    target: ev.newAccount ? `${ev.account} -> ${ev.newAccount}` : ev.account, result: outcome.ok ? 'ok' : 'failed',
    detail: outcome.errors.length ? outcome.errors.join('; ') : outcome.summary,
  });
  return outcome;
}

/** The enabled jobs whose accounts include `account`. */
function jobsCovering(ctx: Context, account: string): JobRecord[] {
  return ctx.store.jobs.list().filter((j) => j.enabled && ('all' in j.accounts || j.accounts.list.includes(account)));
}

/**
 * Before the panel removes an account: a last backup with every job that covers it, when
 * the provider asked for one (`finalBackupOnRemove`). Never throws for a failed backup and
 * never waits longer than `limitMs`: the removal goes ahead whatever happens here.
 */
async function accountRemoved(ctx: Context, account: string, limitMs: number): Promise<Omit<PanelEventOutcome, 'event' | 'account' | 'newAccount' | 'source'>> {
  if (!ctx.config.finalBackupOnRemove) {
    return { ok: true, summary: `account ${account} removed: no final backup (finalBackupOnRemove is off)`, errors: [] };
  }
  const jobs = jobsCovering(ctx, account);
  const final: FinalBackup = { jobs: [], timedOut: false };
  if (jobs.length === 0) return { ok: true, summary: `account ${account} removed: no job covers it, no final backup`, errors: [], finalBackup: final };

  const run = (async () => {
    for (const job of jobs) {
      const dest = ctx.store.destinations.byId(job.destinationId);
      if (!dest?.enabled) {
        final.jobs.push({ job: job.name, status: 'skipped', snapshot: null, error: `destination ${dest?.name ?? '?'} is disabled` });
        continue;
      }
      try {
        const [r] = await runBackup(ctx, job.name, account, ROOT, job.owner, { priority: PRIORITIES.high });
        final.jobs.push({ job: job.name, status: r!.status, snapshot: r!.snapshot, error: r!.error });
      } catch (err) {
        final.jobs.push({ job: job.name, status: 'failed', snapshot: null, error: (err as Error).message });
      }
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), limitMs); });
  const first = await Promise.race([run.then(() => 'done' as const), limit]);
  clearTimeout(timer);
  const errors = final.jobs.filter((j) => j.status === 'failed').map((j) => `job ${j.job}: ${j.error}`);
  if (first === 'timeout') {
    final.timedOut = true;
    errors.push(`the final backup did not finish within ${limitMs / 1000} s; the removal goes ahead (an unfinished snapshot is never listed)`);
  }
  const made = final.jobs.filter((j) => j.snapshot).map((j) => j.snapshot);
  return {
    ok: errors.length === 0,
    summary: `account ${account} removed: final backup ${made.length ? made.join(', ') : 'not made'}`,
    errors, finalBackup: final,
  };
}

/**
 * The panel renamed an account. On each destination its folder `<old>` becomes `<new>`
 * (with `account.json` listing the former names, since every manifest keeps the name it
 * was written under), then the catalog follows; jobs that list it by name list the new name.
 * A destination that cannot be renamed keeps its snapshots under the old name, in the
 * catalog too, so the catalog never points at a folder that is not there.
 */
async function accountRenamed(ctx: Context, from: string, to: string): Promise<Omit<PanelEventOutcome, 'event' | 'account' | 'newAccount' | 'source'>> {
  if (from === to) return { ok: true, summary: `account ${from}: name unchanged`, errors: [], renamed: { destinations: [], jobs: [] } };
  const unlockFrom = lockAccount(ctx.dataDir, from, `rename to ${to}`);
  let unlockTo: (() => void) | null = null;
  try {
    unlockTo = lockAccount(ctx.dataDir, to, `rename from ${from}`);
    const destinations: RenamedOn[] = [];
    for (const d of ctx.store.destinations.list()) {
      const snapshots = ctx.store.snapshots.list({ account: from, destinationId: d.id }).length;
      const entry: RenamedOn = { destination: d.name, snapshots, folder: 'absent', error: null };
      try {
        if (ctx.store.snapshots.list({ account: to, destinationId: d.id }).length > 0) {
          throw new Error(`the catalog already holds snapshots of an account named ${to} on it`);
        }
        const moved = await withDriver(ctx, d, async (driver) => {
          await driver.open();
          if (!(await driver.exists(layout.accountDir(from)))) return false;
          if (await driver.exists(layout.accountDir(to))) throw new Error(`it already holds a folder ${to}`);
          let former: string[] = [];
          try {
            const meta = JSON.parse((await driver.readFile(layout.accountMeta(from))).toString('utf8')) as { formerNames?: unknown };
            if (Array.isArray(meta.formerNames)) former = meta.formerNames.filter((n): n is string => typeof n === 'string');
          } catch { /* first rename of this account */ }
          await driver.rename(layout.accountDir(from), layout.accountDir(to));
          const formerNames = [...new Set([...former, from])].filter((n) => n !== to);
          await driver.writeFile(layout.accountMeta(to), JSON.stringify({ account: to, formerNames, renamedAt: new Date().toISOString() }, null, 2) + '\n');
          // The catalog follows the new name only once the destination's rename is on its disk.
          await driver.flush(['', layout.accountDir(to)]);
          return true;
        });
        if (!moved && snapshots > 0) throw new Error(`the catalog lists ${snapshots} snapshot(s) of ${from} but the destination has no folder ${from}`);
        entry.folder = moved ? 'renamed' : 'absent';
        ctx.store.snapshots.renameAccount(d.id, from, to);
      } catch (err) {
        entry.error = `${(err as Error).message}; its snapshots stay under the name ${from}`;
      }
      if (entry.folder === 'renamed' || entry.snapshots > 0 || entry.error) destinations.push(entry);
    }
    const jobs = ctx.store.jobs.renameAccount(from, to).map((j) => j.name);
    // The same account under a new name: its identity, own destinations and jobs, tokens and sessions follow.
    const identity = ctx.store.accounts.current(from);
    if (identity) ctx.store.accounts.rename(identity.id, to);
    ctx.store.accountPreferences.rename(from, to);
    const errors = destinations.filter((d) => d.error).map((d) => `destination ${d.destination}: ${d.error}`);
    const moved = destinations.filter((d) => !d.error).reduce((n, d) => n + d.snapshots, 0);
    return {
      ok: errors.length === 0,
      summary: `account ${from} renamed to ${to}: ${moved} snapshot(s) on ${destinations.filter((d) => !d.error).length} destination(s), ${jobs.length} job(s) follow`,
      errors, renamed: { destinations, jobs },
    };
  } finally {
    unlockTo?.();
    unlockFrom();
  }
}
