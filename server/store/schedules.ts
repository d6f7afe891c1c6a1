import type { Db } from './database.js';

export type MinuteKind = 'every5min' | 'every10min' | 'every15min' | 'every30min';
export type ScheduleKind = MinuteKind | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'after';
/** Frequent file backups: every N minutes, for the incremental structure only (see services/jobs.ts). */
export const MINUTE_KINDS: readonly MinuteKind[] = ['every5min', 'every10min', 'every15min', 'every30min'];
export const SCHEDULE_KINDS: readonly ScheduleKind[] = [...MINUTE_KINDS, 'hourly', 'daily', 'weekly', 'monthly', 'after'];

/** The minutes of an every-N-minutes kind, or null for the others. */
export function minutesOf(kind: string): number | null {
  const m = /^every(5|10|15|30)min$/.exec(kind);
  return m ? Number(m[1]) : null;
}

export interface ScheduleRecord {
  id: number;
  jobId: number;
  /** Unique per job; snapshots made by this schedule carry it. */
  name: string;
  kind: ScheduleKind;
  /** "HH:MM" local time (hourly: "00:MM", the minute of each hour); null for 'after' and every-N-minutes kinds. */
  at: string | null;
  /** weekly: 0 (Sunday) to 6. */
  weekday: number | null;
  /** monthly: 1 to 28. */
  monthday: number | null;
  /** after: the job whose run starts this one. */
  afterJobId: number | null;
  keep: number;
  createdAt: number;
  lastRunAt: number | null;
}

interface Row {
  id: number; job_id: number; name: string; kind: string; at: string | null; weekday: number | null; monthday: number | null;
  after_job_id: number | null; keep: number; created_at: number; last_run_at: number | null;
}

const fromRow = (r: Row): ScheduleRecord => ({
  id: r.id, jobId: r.job_id, name: r.name, kind: r.kind as ScheduleKind, at: r.at, weekday: r.weekday, monthday: r.monthday,
  afterJobId: r.after_job_id, keep: r.keep, createdAt: r.created_at, lastRunAt: r.last_run_at,
});

export class ScheduleRepository {
  constructor(private readonly db: Db) {}

  list(): ScheduleRecord[] {
    return (this.db.prepare('SELECT * FROM schedules ORDER BY job_id, name').all() as Row[]).map(fromRow);
  }
  ofJob(jobId: number): ScheduleRecord[] {
    return (this.db.prepare('SELECT * FROM schedules WHERE job_id = ? ORDER BY name').all(jobId) as Row[]).map(fromRow);
  }
  byId(id: number): ScheduleRecord | null {
    const r = this.db.prepare('SELECT * FROM schedules WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  insert(s: Omit<ScheduleRecord, 'id' | 'lastRunAt'>): ScheduleRecord {
    const info = this.db.prepare(`INSERT INTO schedules (job_id, name, kind, at, weekday, monthday, after_job_id, keep, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(s.jobId, s.name, s.kind, s.at, s.weekday, s.monthday, s.afterJobId, s.keep, s.createdAt);
    return this.byId(Number(info.lastInsertRowid))!;
  }
  /** Changes a schedule's timing and retention (its name, which its snapshots carry, stays). */
  update(id: number, s: Pick<ScheduleRecord, 'kind' | 'at' | 'weekday' | 'monthday' | 'afterJobId' | 'keep'>): void {
    this.db.prepare('UPDATE schedules SET kind = ?, at = ?, weekday = ?, monthday = ?, after_job_id = ?, keep = ? WHERE id = ?')
      .run(s.kind, s.at, s.weekday, s.monthday, s.afterJobId, s.keep, id);
  }
  setLastRun(id: number, at: number): void {
    this.db.prepare('UPDATE schedules SET last_run_at = ? WHERE id = ?').run(at, id);
  }
  remove(id: number): void {
    this.db.prepare('DELETE FROM schedules WHERE id = ?').run(id);
  }
  /** How many on-demand snapshots a job keeps (null: all). */
  manualKeep(jobId: number): number | null {
    const r = this.db.prepare('SELECT manual_keep FROM jobs WHERE id = ?').get(jobId) as { manual_keep: number | null } | undefined;
    return r?.manual_keep ?? null;
  }
  setManualKeep(jobId: number, keep: number | null): void {
    this.db.prepare('UPDATE jobs SET manual_keep = ? WHERE id = ?').run(keep, jobId);
  }
}
