import crypto from 'node:crypto';
import type { Actor, Role } from '../services/actor.js';
import type { Db } from './database.js';

export interface ApiTokenRecord {
  name: string;
  actor: Actor;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** The account identity a reseller's or account holder's token was made for (store/accounts.ts). */
  accountId: number | null;
}

interface Row { name: string; actor: string; role: string; created_at: number; expires_at: number | null; last_used_at: number | null; revoked_at: number | null; account_id: number | null }

const fromRow = (r: Row): ApiTokenRecord => ({
  name: r.name, actor: { name: r.actor, role: r.role as Role }, createdAt: r.created_at, expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at, revokedAt: r.revoked_at, accountId: r.account_id,
});

/** Recognisable in a leaked-secret scan, and never mistaken for a session id. */
const PREFIX = 'tmk_';
const hash = (token: string): string => crypto.createHash('sha256').update(token).digest('hex');

/** Tokens of the JSON API: the caller gets the token once, the store keeps its hash. */
export class ApiTokenRepository {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  create(name: string, actor: Actor, ttlMs: number | null, accountId: number | null = null): { token: string; record: ApiTokenRecord } {
    const token = PREFIX + crypto.randomBytes(32).toString('base64url');
    const at = this.now();
    this.db.prepare('INSERT INTO api_tokens (name, token_hash, actor, role, created_at, expires_at, account_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(name, hash(token), actor.name, actor.role, at, ttlMs === null ? null : at + ttlMs, accountId);
    return { token, record: this.byName(name)! };
  }

  byName(name: string): ApiTokenRecord | null {
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  list(): ApiTokenRecord[] {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY id').all() as Row[]).map(fromRow);
  }

  /** Revoked tokens stay listed (who had access, until when); returns false when there is none of that name. */
  revoke(name: string): boolean {
    return this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL').run(this.now(), name).changes > 0
      || this.byName(name) !== null;
  }

  /** The record of a token that is neither unknown, revoked nor expired (marked as used now), or null. */
  authenticate(token: string): ApiTokenRecord | null {
    if (!token.startsWith(PREFIX)) return null;
    const r = this.db.prepare('SELECT * FROM api_tokens WHERE token_hash = ?').get(hash(token)) as Row | undefined;
    const at = this.now();
    if (!r || r.revoked_at !== null || (r.expires_at !== null && r.expires_at <= at)) return null;
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?').run(at, hash(token));
    return fromRow({ ...r, last_used_at: at });
  }
}
