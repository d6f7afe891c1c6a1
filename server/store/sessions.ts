import crypto from 'node:crypto';
import type { Actor, Role } from '../services/actor.js';
import type { Db } from './database.js';

export interface SessionRecord {
  actor: Actor;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  /** The account identity an account holder's (or reseller's) session was opened for; null for the provider. */
  accountId: number | null;
}

interface SessionRow { actor: string; role: string; created_at: number; last_seen_at: number; idle_ms: number; expires_at: number; account_id: number | null }

const hash = (secret: string): string => crypto.createHash('sha256').update(secret).digest('hex');
const randomSecret = (): string => crypto.randomBytes(32).toString('base64url');

/**
 * One-time login tokens and web sessions. Callers get the secret once; the store keeps
 * its hash only. A token is deleted in the same statement that accepts it, so it opens
 * at most one session even when two requests race.
 */
export class SessionRepository {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /** `accountId`: the identity of the account the link signs in as (store/accounts.ts). */
  createLoginToken(actor: Actor, ttlMs: number, accountId: number | null = null): { token: string; expiresAt: number } {
    const token = randomSecret();
    const at = this.now();
    this.db.prepare('DELETE FROM login_tokens WHERE expires_at <= ?').run(at);
    this.db.prepare('INSERT INTO login_tokens (token_hash, actor, role, created_at, expires_at, account_id) VALUES (?, ?, ?, ?, ?, ?)')
      .run(hash(token), actor.name, actor.role, at, at + ttlMs, accountId);
    return { token, expiresAt: at + ttlMs };
  }

  /** The actor of a valid, unused token (which is used up by this call), or null. */
  consumeLoginToken(token: string): Actor | null {
    return this.consumeLoginTokenBound(token)?.actor ?? null;
  }

  /** consumeLoginToken, with the account identity the link was made for. */
  consumeLoginTokenBound(token: string): { actor: Actor; accountId: number | null } | null {
    const row = this.db.prepare('DELETE FROM login_tokens WHERE token_hash = ? RETURNING actor, role, expires_at, account_id')
      .get(hash(token)) as { actor: string; role: string; expires_at: number; account_id: number | null } | undefined;
    if (!row || row.expires_at <= this.now()) return null;
    return { actor: { name: row.actor, role: row.role as Role }, accountId: row.account_id };
  }

  createSession(actor: Actor, idleMs: number, maxMs: number, accountId: number | null = null): { id: string; expiresAt: number } {
    const id = randomSecret();
    const at = this.now();
    this.purgeExpired();
    this.db.prepare('INSERT INTO sessions (id_hash, actor, role, created_at, last_seen_at, idle_ms, expires_at, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(hash(id), actor.name, actor.role, at, at, idleMs, at + maxMs, accountId);
    return { id, expiresAt: at + maxMs };
  }

  /** The session behind `id` if it is neither idle too long nor past its absolute expiry; marks it as seen now. */
  touch(id: string): SessionRecord | null {
    const h = hash(id);
    const row = this.db.prepare('SELECT actor, role, created_at, last_seen_at, idle_ms, expires_at, account_id FROM sessions WHERE id_hash = ?').get(h) as SessionRow | undefined;
    if (!row) return null;
    const at = this.now();
    if (at >= row.expires_at || at - row.last_seen_at >= row.idle_ms) {
      this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(h);
      return null;
    }
    this.db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?').run(at, h);
    return { actor: { name: row.actor, role: row.role as Role }, createdAt: row.created_at, lastSeenAt: at, expiresAt: row.expires_at, accountId: row.account_id };
  }

  /** Whether `id` is still a live session, without counting this as use (for long-lived streams). */
  isLive(id: string): boolean {
    const row = this.db.prepare('SELECT last_seen_at, idle_ms, expires_at FROM sessions WHERE id_hash = ?').get(hash(id)) as SessionRow | undefined;
    const at = this.now();
    return row !== undefined && at < row.expires_at && at - row.last_seen_at < row.idle_ms;
  }

  destroy(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id_hash = ?').run(hash(id));
  }

  purgeExpired(): void {
    const at = this.now();
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at + idle_ms <= ?').run(at, at);
    this.db.prepare('DELETE FROM login_tokens WHERE expires_at <= ?').run(at);
  }
}
