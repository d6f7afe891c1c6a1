import type { Db } from './database.js';

export interface DestinationRecord {
  id: number;
  name: string;
  type: 'local' | 'ssh' | 's3';
  settings: Record<string, unknown>;
  owner: string;
  enabled: boolean;
  snapshotsVisible: boolean;
  readOnly: boolean;
  freeSpaceLimitMb: number;
  createdAt: string;
}

interface Row {
  id: number; name: string; type: string; settings: string; owner: string; enabled: number;
  snapshots_visible: number; read_only: number; free_space_limit_mb: number; created_at: string;
}

const fromRow = (r: Row): DestinationRecord => ({
  id: r.id, name: r.name, type: r.type as DestinationRecord['type'], settings: JSON.parse(r.settings) as Record<string, unknown>,
  owner: r.owner, enabled: r.enabled === 1, snapshotsVisible: r.snapshots_visible === 1, readOnly: r.read_only === 1,
  freeSpaceLimitMb: r.free_space_limit_mb, createdAt: r.created_at,
});

export class DestinationRepository {
  constructor(private readonly db: Db) {}

  list(): DestinationRecord[] {
    return (this.db.prepare('SELECT * FROM destinations ORDER BY name, owner').all() as Row[]).map(fromRow);
  }
  listByOwner(owner: string): DestinationRecord[] {
    return (this.db.prepare('SELECT * FROM destinations WHERE owner = ? ORDER BY name').all(owner) as Row[]).map(fromRow);
  }
  countByOwner(owner: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM destinations WHERE owner = ?').get(owner) as { n: number }).n;
  }
  /** Names are unique per owner; the provider's destinations are owned by 'root'. */
  byName(name: string, owner = 'root'): DestinationRecord | null {
    const r = this.db.prepare('SELECT * FROM destinations WHERE owner = ? AND name = ?').get(owner, name) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  /** Every owner's destination of this name. */
  allNamed(name: string): DestinationRecord[] {
    return (this.db.prepare('SELECT * FROM destinations WHERE name = ? ORDER BY owner').all(name) as Row[]).map(fromRow);
  }
  byId(id: number): DestinationRecord | null {
    const r = this.db.prepare('SELECT * FROM destinations WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  insert(d: Omit<DestinationRecord, 'id' | 'createdAt'>): DestinationRecord {
    // An account's destination belongs to the account's current identity (store/accounts.ts).
    const info = this.db.prepare(`INSERT INTO destinations (name, type, settings, owner, enabled, snapshots_visible, read_only, free_space_limit_mb, created_at, owner_account_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT id FROM accounts WHERE name = ? AND removed_at IS NULL))`).run(d.name, d.type, JSON.stringify(d.settings), d.owner, d.enabled ? 1 : 0,
      d.snapshotsVisible ? 1 : 0, d.readOnly ? 1 : 0, d.freeSpaceLimitMb, new Date().toISOString(), d.owner);
    return this.byId(Number(info.lastInsertRowid))!;
  }
  update(id: number, fields: Partial<Pick<DestinationRecord, 'enabled' | 'snapshotsVisible' | 'settings'>>): DestinationRecord {
    if (fields.enabled !== undefined) this.db.prepare('UPDATE destinations SET enabled = ? WHERE id = ?').run(fields.enabled ? 1 : 0, id);
    if (fields.snapshotsVisible !== undefined) this.db.prepare('UPDATE destinations SET snapshots_visible = ? WHERE id = ?').run(fields.snapshotsVisible ? 1 : 0, id);
    if (fields.settings !== undefined) this.db.prepare('UPDATE destinations SET settings = ? WHERE id = ?').run(JSON.stringify(fields.settings), id);
    return this.byId(id)!;
  }
  /** The fields `destination edit` may change, written together. */
  applyEdit(id: number, fields: Partial<Pick<DestinationRecord, 'name' | 'settings' | 'snapshotsVisible' | 'freeSpaceLimitMb'>>): DestinationRecord {
    this.db.transaction(() => {
      if (fields.name !== undefined) this.db.prepare('UPDATE destinations SET name = ? WHERE id = ?').run(fields.name, id);
      if (fields.freeSpaceLimitMb !== undefined) this.db.prepare('UPDATE destinations SET free_space_limit_mb = ? WHERE id = ?').run(fields.freeSpaceLimitMb, id);
      this.update(id, fields);
    })();
    return this.byId(id)!;
  }
  remove(id: number): void {
    this.db.prepare('DELETE FROM destinations WHERE id = ?').run(id);
  }
}
