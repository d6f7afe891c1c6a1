import type { Db } from './database.js';

export interface ActivityRecord {
  id: number; at: string; actor: string; role: string; action: string; target: string; result: string; detail: string;
}

export class ActivityRepository {
  constructor(private readonly db: Db) {}

  record(a: Omit<ActivityRecord, 'id' | 'at'>): void {
    this.db.prepare('INSERT INTO activity (at, actor, role, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(new Date().toISOString(), a.actor, a.role, a.action, a.target, a.result, a.detail);
  }
  list(limit = 200): ActivityRecord[] {
    return this.db.prepare('SELECT * FROM activity ORDER BY id DESC LIMIT ?').all(limit) as ActivityRecord[];
  }
  /** Entries at or after `since`, newest first. */
  since(since: Date, limit = 100_000): ActivityRecord[] {
    return this.db.prepare('SELECT * FROM activity WHERE at >= ? ORDER BY id DESC LIMIT ?').all(since.toISOString(), limit) as ActivityRecord[];
  }
  /** Removes the entries older than `cutoff`; returns how many. */
  pruneBefore(cutoff: Date): number {
    return Number(this.db.prepare('DELETE FROM activity WHERE at < ?').run(cutoff.toISOString()).changes);
  }
}

/** One CSV cell: quoted, and never a formula when a spreadsheet opens it. */
export const csvCell = (v: string): string => `"${(/^[=+\-@\t\r]/.test(v) ? `'${v}` : v).replace(/"/g, '""')}"`;

/** The activity log as CSV (the columns of the admin page's export). */
export function activityCsv(entries: readonly ActivityRecord[]): string {
  const lines = ['when,who,role,action,target,result,detail'];
  for (const a of entries) lines.push([a.at, a.actor, a.role, a.action, a.target, a.result, a.detail].map(csvCell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
