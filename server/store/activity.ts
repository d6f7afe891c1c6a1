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
}
