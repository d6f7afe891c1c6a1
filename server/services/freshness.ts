import type { SnapshotRecord } from '../store/snapshots.js';
import type { ScheduleKind } from '../store/schedules.js';
import type { Context } from './context.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** How long a schedule's run may be ago before its account is overdue ('after' runs follow another job: a day). */
const PERIOD_MS: Record<ScheduleKind, number> = { every5min: HOUR_MS, every10min: HOUR_MS, every15min: HOUR_MS, every30min: HOUR_MS, hourly: DAY_MS, daily: DAY_MS, weekly: 7 * DAY_MS, monthly: 31 * DAY_MS, after: DAY_MS };

export interface LastGood { snapshot: SnapshotRecord | null; ageMs: number | null }
export interface AccountFreshness extends LastGood { account: string; periodMs: number; overdue: boolean }

/** A snapshot that holds everything it was asked for (a partial one misses something). */
const isGood = (s: SnapshotRecord): boolean => s.status === 'completed';

/**
 * The longest an account may go without a good snapshot: the shortest period among the
 * schedules of the jobs that cover it, or a day.
 */
function periodOf(ctx: Context, account: string): number {
  const jobs = ctx.store.jobs.list().filter((j) => j.enabled && ('all' in j.accounts || j.accounts.list.includes(account)));
  const ids = new Set(jobs.map((j) => j.id));
  const periods = ctx.store.schedules.list().filter((s) => ids.has(s.jobId)).map((s) => PERIOD_MS[s.kind]);
  return periods.length ? Math.min(...periods) : DAY_MS;
}

/** The newest good snapshot of each destination among `snapshots` (those the viewer may see). */
export function lastGoodPerDestination(snapshots: readonly SnapshotRecord[], now = Date.now()): Map<number, LastGood> {
  const out = new Map<number, LastGood>();
  for (const s of snapshots) {
    if (!isGood(s)) continue;
    const seen = out.get(s.destinationId);
    if (!seen?.snapshot || s.finishedAt > seen.snapshot.finishedAt) out.set(s.destinationId, { snapshot: s, ageMs: now - Date.parse(s.finishedAt) });
  }
  return out;
}

/** Each account's newest good snapshot, its age, and whether it is older than the account's period (or missing). */
export function accountFreshness(ctx: Context, accounts: readonly string[], snapshots: readonly SnapshotRecord[], now = Date.now()): AccountFreshness[] {
  const newest = new Map<string, SnapshotRecord>();
  for (const s of snapshots) {
    if (!isGood(s)) continue;
    const seen = newest.get(s.account);
    if (!seen || s.finishedAt > seen.finishedAt) newest.set(s.account, s);
  }
  return accounts.map((account) => {
    const s = newest.get(account) ?? null;
    const ageMs = s ? now - Date.parse(s.finishedAt) : null;
    const periodMs = periodOf(ctx, account);
    return { account, snapshot: s, ageMs, periodMs, overdue: ageMs === null || ageMs > periodMs };
  }).sort((a, b) => Number(b.overdue) - Number(a.overdue) || a.account.localeCompare(b.account));
}

/** An age as the pages say it: hours under two days, then days. */
export function ageParts(ms: number): { unit: 'minutes' | 'hours' | 'days'; n: number } {
  if (ms < HOUR_MS) return { unit: 'minutes', n: Math.max(0, Math.floor(ms / 60_000)) };
  if (ms < 2 * DAY_MS) return { unit: 'hours', n: Math.floor(ms / HOUR_MS) };
  return { unit: 'days', n: Math.floor(ms / DAY_MS) };
}
