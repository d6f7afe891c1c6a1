import type { Db } from './database.js';

export type Structure = 'incremental' | 'archive' | 'compressed';
export const STRUCTURES: readonly Structure[] = ['incremental', 'archive', 'compressed'];
export type Item = 'files' | 'databases' | 'database-users';
export const ITEMS: readonly Item[] = ['files', 'databases', 'database-users'];

export type AccountSelection = { all: true } | { list: string[] };

export interface JobRecord {
  id: number;
  name: string;
  /** 'root' (the provider) or the account that owns the job's destination. */
  owner: string;
  destinationId: number;
  structure: Structure;
  accounts: AccountSelection;
  items: Item[];
  excludes: string[];
  enabled: boolean;
  createdAt: string;
}

interface Row {
  id: number; name: string; owner: string; destination_id: number; structure: string; accounts: string; items: string;
  excludes: string; enabled: number; created_at: string;
}

const fromRow = (r: Row): JobRecord => ({
  id: r.id, name: r.name, owner: r.owner, destinationId: r.destination_id, structure: r.structure as Structure,
  accounts: JSON.parse(r.accounts) as AccountSelection, items: JSON.parse(r.items) as Item[],
  excludes: JSON.parse(r.excludes) as string[], enabled: r.enabled === 1, createdAt: r.created_at,
});

export class JobRepository {
  constructor(private readonly db: Db) {}

  list(): JobRecord[] {
    return (this.db.prepare('SELECT * FROM jobs ORDER BY name, owner').all() as Row[]).map(fromRow);
  }
  listByOwner(owner: string): JobRecord[] {
    return (this.db.prepare('SELECT * FROM jobs WHERE owner = ? ORDER BY name').all(owner) as Row[]).map(fromRow);
  }
  /** Names are unique per owner; the provider's jobs are owned by 'root'. */
  byName(name: string, owner = 'root'): JobRecord | null {
    const r = this.db.prepare('SELECT * FROM jobs WHERE owner = ? AND name = ?').get(owner, name) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  /** Every owner's job of this name. */
  allNamed(name: string): JobRecord[] {
    return (this.db.prepare('SELECT * FROM jobs WHERE name = ? ORDER BY owner').all(name) as Row[]).map(fromRow);
  }
  byId(id: number): JobRecord | null {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  usingDestination(destinationId: number): JobRecord[] {
    return (this.db.prepare('SELECT * FROM jobs WHERE destination_id = ? ORDER BY name').all(destinationId) as Row[]).map(fromRow);
  }
  insert(j: Omit<JobRecord, 'id' | 'createdAt'>): JobRecord {
    // An account's job belongs to the account's current identity (store/accounts.ts).
    const info = this.db.prepare(`INSERT INTO jobs (name, owner, destination_id, structure, accounts, items, excludes, enabled, created_at, owner_account_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT id FROM accounts WHERE name = ? AND removed_at IS NULL))`).run(j.name, j.owner, j.destinationId, j.structure, JSON.stringify(j.accounts),
      JSON.stringify(j.items), JSON.stringify(j.excludes), j.enabled ? 1 : 0, new Date().toISOString(), j.owner);
    return this.byId(Number(info.lastInsertRowid))!;
  }
  /** The account was renamed in the panel: jobs that list it by name list the new name. Returns the jobs changed. */
  renameAccount(from: string, to: string): JobRecord[] {
    const changed: JobRecord[] = [];
    for (const j of this.list()) {
      if ('all' in j.accounts || !j.accounts.list.includes(from)) continue;
      const list = [...new Set(j.accounts.list.map((a) => (a === from ? to : a)))];
      this.db.prepare('UPDATE jobs SET accounts = ? WHERE id = ?').run(JSON.stringify({ list }), j.id);
      changed.push(this.byId(j.id)!);
    }
    return changed;
  }
  remove(id: number): void {
    this.db.prepare('DELETE FROM jobs WHERE id = ?').run(id);
  }
}
