import type { Db } from './database.js';

export interface AccountPreferences {
  /** null: never chosen (the provider's setting decides). */
  restoreMail: boolean | null;
}

export class AccountPreferenceRepository {
  constructor(private readonly db: Db) {}

  get(account: string): AccountPreferences {
    const r = this.db.prepare('SELECT restore_mail FROM account_preferences WHERE account = ?').get(account) as { restore_mail: number | null } | undefined;
    return { restoreMail: r === undefined || r.restore_mail === null ? null : r.restore_mail === 1 };
  }
  setRestoreMail(account: string, on: boolean): void {
    // The choice is the current identity's: forgotten when it is removed (store/accounts.ts retire).
    this.db.prepare(`INSERT INTO account_preferences (account, restore_mail, updated_at, account_id)
      VALUES (?, ?, ?, (SELECT id FROM accounts WHERE name = ? AND removed_at IS NULL))
      ON CONFLICT (account) DO UPDATE SET restore_mail = excluded.restore_mail, updated_at = excluded.updated_at, account_id = excluded.account_id`)
      .run(account, on ? 1 : 0, new Date().toISOString(), account);
  }
  /** The panel renamed the account: its choices follow it (an entry under the new name is replaced). */
  rename(from: string, to: string): void {
    this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM account_preferences WHERE account = ?').get(from) === undefined) return;
      this.db.prepare('DELETE FROM account_preferences WHERE account = ?').run(to);
      this.db.prepare('UPDATE account_preferences SET account = ? WHERE account = ?').run(to, from);
    })();
  }
  /** The account is gone: a later account of the same name starts with no choices. */
  forget(account: string): void {
    this.db.prepare('DELETE FROM account_preferences WHERE account = ?').run(account);
  }
}
