import os from 'node:os';
import type { Context } from '../services/context.js';
import { deliver } from './deliver.js';

interface Logger { info(o: object, msg: string): void; error(o: object, msg: string): void }

const DAY_MS = 86_400_000;

/** Removes activity entries older than `activityRetentionDays`; returns how many went. */
export function pruneActivity(ctx: Context, now = Date.now()): number {
  return ctx.store.activity.pruneBefore(new Date(now - ctx.config.activityRetentionDays * DAY_MS));
}

/** The last 24 hours of backups in one notice: counts, and every account that failed. */
export async function sendDailySummary(ctx: Context, now = Date.now()): Promise<string[]> {
  const n = ctx.config.notifications;
  if (!n || (!n.email && !n.webhook)) return [];
  const since = new Date(now - DAY_MS).toISOString();
  // The summary is the provider's: a failure's detail, which the task's own error keeps from
  // the account holder (a destination's host or path, a hook's script), is in the task's last
  // provider-only error line.
  const rows = ctx.store.db.prepare(`SELECT t.status, t.account, COALESCE((SELECT l.message FROM task_log l
      WHERE l.task_id = t.id AND l.audience = 'provider' AND l.level = 'error' ORDER BY l.id DESC LIMIT 1), t.error) AS error,
    j.name AS job FROM tasks t LEFT JOIN jobs j ON j.id = t.job_id
    WHERE t.type = 'backup' AND t.finished_at >= ? ORDER BY t.id`).all(since) as { status: string; account: string | null; error: string | null; job: string | null }[];
  const count = (s: string): number => rows.filter((r) => r.status === s).length;
  const failed = rows.filter((r) => r.status === 'failed');
  const lines = [
    `Backups on ${os.hostname()} in the last 24 hours: ${count('completed')} completed, ${count('partial')} partial, ${failed.length} failed.`,
    ...(failed.length ? ['', 'Failed:', ...failed.map((r) => `  ${r.account ?? '-'} (job ${r.job ?? '-'}): ${r.error ?? ''}`)] : []),
  ];
  const subject = `[Tidemark] daily summary: ${failed.length ? `${failed.length} failed` : 'no failures'}`;
  const out = await deliver(n, subject, `${lines.join('\n')}\n`, {
    event: 'daily-summary', since, completed: count('completed'), partial: count('partial'), failed: failed.map((r) => ({ account: r.account, job: r.job, error: r.error })),
  });
  const errors: string[] = [];
  for (const d of out) {
    ctx.store.activity.record({ actor: 'tidemark', role: 'admin', action: 'notify', target: 'daily summary', result: d.error ? 'failed' : 'ok', detail: `${d.channel}: ${d.error ?? subject}` });
    if (d.error) errors.push(`${d.channel}: ${d.error}`);
  }
  return errors;
}

/** Milliseconds from `now` to the next local HH:MM. */
export function msUntil(hhmm: string, now = new Date()): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  const next = new Date(now);
  next.setHours(h, m, 0, 0);
  if (next.getTime() <= now.getTime()) next.setDate(next.getDate() + 1);
  return next.getTime() - now.getTime();
}

/** The daemon's daily work: prune the activity log now and every day, send the summary at its hour. Returns a stop function. */
export function startDailyJobs(ctx: Context, log: Logger): () => void {
  const timers: NodeJS.Timeout[] = [];
  let summary: NodeJS.Timeout | null = null;
  const prune = (): void => {
    try {
      const removed = pruneActivity(ctx);
      if (removed) log.info({ removed, days: ctx.config.activityRetentionDays }, 'activity log pruned');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'activity log pruning failed');
    }
  };
  prune();
  timers.push(setInterval(prune, DAY_MS));
  const at = ctx.config.notifications?.dailySummary?.at;
  if (at) {
    const fire = (): void => {
      sendDailySummary(ctx).then((errors) => { for (const e of errors) log.error({ err: e }, 'daily summary not sent'); },
        (err: Error) => log.error({ err: err.message }, 'daily summary not sent'));
      summary = setTimeout(fire, msUntil(at));
    };
    summary = setTimeout(fire, msUntil(at));
  }
  let verification: NodeJS.Timeout | null = null;
  const share = ctx.config.verification?.dailyPercent ?? 0;
  if (share > 0) {
    const verifyAt = ctx.config.verification.at;
    const fire = (): void => {
      import('../services/verify.js').then(({ verifyDailyShare }) => verifyDailyShare(ctx, share)).then(
        (r) => { if (r.verified) log.info({ ...r }, 'daily verification done'); if (r.damaged) log.error({ ...r }, 'daily verification found damaged snapshots'); },
        (err: Error) => log.error({ err: err.message }, 'daily verification failed'));
      verification = setTimeout(fire, msUntil(verifyAt));
    };
    verification = setTimeout(fire, msUntil(verifyAt));
  }
  return () => { for (const t of timers) clearInterval(t); if (summary) clearTimeout(summary); if (verification) clearTimeout(verification); };
}
