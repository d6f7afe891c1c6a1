import type { Db } from './database.js';

/** One account as it was: a later account of the same name is another identity. */
export interface AccountIdentity {
  id: number;
  name: string;
  uid: number | null;
  /** The panel's own creation time (ISO), when the panel records one. */
  panelCreatedAt: string | null;
  /** The reseller (or 'root') that owned it, as last seen. */
  owner: string | null;
  /** null: recorded by the migration that introduced identities. */
  firstSeenAt: string | null;
  removedAt: string | null;
  removedReason: string | null;
}

interface Row {
  id: number; name: string; uid: number | null; panel_created_at: string | null; owner: string | null;
  first_seen_at: string | null; removed_at: string | null; removed_reason: string | null;
}

const fromRow = (r: Row): AccountIdentity => ({
  id: r.id, name: r.name, uid: r.uid, panelCreatedAt: r.panel_created_at, owner: r.owner, firstSeenAt: r.first_seen_at,
  removedAt: r.removed_at, removedReason: r.removed_reason,
});

export interface AccountFacts { uid: number; panelCreatedAt: string | null; owner: string }

/**
 * The owner recorded on the destinations and jobs of a removed identity: no account can
 * have this name ('#' is not allowed in one), so nothing a later account of the name does
 * reaches them, and the provider still tells them apart.
 */
export const retiredOwner = (name: string, id: number): string => `${name}#${id}`;
export const RETIRED_OWNER = /^[a-z_][a-z0-9_.-]{0,31}#[1-9][0-9]{0,15}$/i;

const now = (): string => new Date().toISOString();

export class AccountRepository {
  constructor(private readonly db: Db) {}

  byId(id: number): AccountIdentity | null {
    const r = this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  /** The identity that holds `name` now, or null. */
  current(name: string): AccountIdentity | null {
    const r = this.db.prepare('SELECT * FROM accounts WHERE name = ? AND removed_at IS NULL').get(name) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  /** The newest identity of `name`, removed or not. */
  latest(name: string): AccountIdentity | null {
    const r = this.db.prepare('SELECT * FROM accounts WHERE name = ? ORDER BY id DESC LIMIT 1').get(name) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  list(name?: string): AccountIdentity[] {
    const rows = name === undefined
      ? this.db.prepare('SELECT * FROM accounts ORDER BY name, id').all()
      : this.db.prepare('SELECT * FROM accounts WHERE name = ? ORDER BY id').all(name);
    return (rows as Row[]).map(fromRow);
  }
  /**
   * A new current identity of `name`. When another process (the daemon, a CLI command)
   * recorded one a moment before, that one is returned: a name has one current identity.
   */
  insert(name: string, facts: AccountFacts | null): AccountIdentity {
    const info = this.db.prepare(`INSERT INTO accounts (name, uid, panel_created_at, owner, first_seen_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (name) WHERE removed_at IS NULL DO NOTHING`)
      .run(name, facts?.uid ?? null, facts?.panelCreatedAt ?? null, facts?.owner ?? null, now());
    return info.changes > 0 ? this.byId(Number(info.lastInsertRowid))! : this.current(name)!;
  }
  /** Records what the panel tells now: a uid or creation time not known yet, and the current reseller. */
  learn(id: number, facts: AccountFacts): void {
    this.db.prepare(`UPDATE accounts SET uid = COALESCE(uid, ?), panel_created_at = COALESCE(panel_created_at, ?), owner = ? WHERE id = ?`)
      .run(facts.uid, facts.panelCreatedAt, facts.owner, id);
  }

  /**
   * The account is gone. In one transaction: the identity is marked removed; its web sessions
   * and login links end; its API tokens are revoked (they stay listed); its choices are
   * forgotten; its own destinations and jobs are disabled and move to the owner
   * `retiredOwner(name, id)`. Its snapshots keep the identity: they are the provider's now.
   */
  retire(id: number, reason: string): void {
    this.db.transaction(() => {
      const a = this.byId(id);
      if (!a || a.removedAt !== null) return;
      const at = now();
      const tomb = retiredOwner(a.name, a.id);
      this.db.prepare('UPDATE accounts SET removed_at = ?, removed_reason = ? WHERE id = ?').run(at, reason, id);
      this.db.prepare(`DELETE FROM sessions WHERE account_id = ? OR (actor = ? AND role <> 'admin')`).run(id, a.name);
      this.db.prepare(`DELETE FROM login_tokens WHERE account_id = ? OR (actor = ? AND role <> 'admin')`).run(id, a.name);
      this.db.prepare(`UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (account_id = ? OR (actor = ? AND role <> 'admin'))`)
        .run(Date.now(), id, a.name);
      this.db.prepare('DELETE FROM account_preferences WHERE account = ?').run(a.name);
      this.db.prepare('UPDATE destinations SET owner = ?, owner_account_id = ?, enabled = 0 WHERE owner = ?').run(tomb, id, a.name);
      this.db.prepare('UPDATE jobs SET owner = ?, owner_account_id = ?, enabled = 0 WHERE owner = ?').run(tomb, id, a.name);
    })();
  }

  /**
   * The panel renamed the account: its identity, its own destinations and jobs, tokens and
   * sessions follow it to the new name. A current identity of the new name is stale (the
   * panel would not rename onto a live account) and is retired first.
   */
  rename(id: number, to: string): void {
    this.db.transaction(() => {
      const a = this.byId(id);
      if (!a || a.name === to) return;
      const stale = this.current(to);
      if (stale && stale.id !== id) this.retire(stale.id, `account ${a.name} was renamed to ${to}`);
      this.db.prepare('UPDATE accounts SET name = ? WHERE id = ?').run(to, id);
      this.db.prepare('UPDATE destinations SET owner = ?, owner_account_id = ? WHERE owner = ?').run(to, id, a.name);
      this.db.prepare('UPDATE jobs SET owner = ?, owner_account_id = ? WHERE owner = ?').run(to, id, a.name);
      this.db.prepare(`UPDATE api_tokens SET actor = ?, account_id = ? WHERE role <> 'admin' AND (account_id = ? OR (account_id IS NULL AND actor = ?))`).run(to, id, id, a.name);
      this.db.prepare(`UPDATE sessions SET actor = ?, account_id = ? WHERE role <> 'admin' AND (account_id = ? OR (account_id IS NULL AND actor = ?))`).run(to, id, id, a.name);
      this.db.prepare(`UPDATE login_tokens SET actor = ?, account_id = ? WHERE role <> 'admin' AND (account_id = ? OR (account_id IS NULL AND actor = ?))`).run(to, id, id, a.name);
    })();
  }
}
