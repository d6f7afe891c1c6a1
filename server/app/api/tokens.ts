import { UserError, type Context } from '../../services/context.js';
import type { Role } from '../../services/actor.js';
import type { ApiTokenRecord } from '../../store/api-tokens.js';
import { currentIdentityId } from '../../services/account-identity.js';

const ROLES: readonly Role[] = ['admin', 'reseller', 'user'];
const TOKEN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export interface CreateTokenInput { name: string; role?: string; user?: string; expiresDays?: number }

/** How a token is shown: never the token itself (only `create` returns it, once). */
export function describeToken(t: ApiTokenRecord, now = Date.now()): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    name: t.name, user: t.actor.name, role: t.actor.role, createdAt: iso(t.createdAt), expiresAt: iso(t.expiresAt), lastUsedAt: iso(t.lastUsedAt),
    revokedAt: iso(t.revokedAt), valid: t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now),
  };
}

/**
 * A token of the JSON API acting as the provider (admin, the default), a reseller or an
 * account holder. Root only: like the state store, tokens are root's to hand out.
 */
export async function createApiToken(ctx: Context, input: CreateTokenInput): Promise<Record<string, unknown>> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new UserError('api-token is for root only');
  if (!TOKEN_NAME.test(input.name)) throw new UserError('--name: 1-64 letters, digits, dots, dashes or underscores');
  const role = (input.role ?? 'admin') as Role;
  if (!ROLES.includes(role)) throw new UserError(`--role must be one of ${ROLES.join(', ')}`, 'invalid-input');
  let user = 'root';
  if (role !== 'admin') {
    if (input.user === undefined) throw new UserError(`a ${role} token needs --user NAME`, 'invalid-input');
    if (!USER_NAME.test(input.user)) throw new UserError(`"${input.user}" is not a valid user name`);
    if (role === 'user' && !(await ctx.panel(false).getAccount(input.user))) throw new UserError(`no account "${input.user}" on this server`);
    user = input.user;
  } else if (input.user !== undefined && input.user !== 'root') {
    throw new UserError('--user applies to reseller and user tokens only', 'invalid-input');
  }
  const days = input.expiresDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 3650)) throw new UserError('--expires is a number of days from 1 to 3650', 'invalid-input');
  if (ctx.store.apiTokens.byName(input.name)) throw new UserError(`an API token named "${input.name}" exists already`);
  // The token is the account's as it is now: it stops working when that account is removed.
  const accountId = role === 'admin' ? null : await currentIdentityId(ctx, user);
  const { token, record } = ctx.store.apiTokens.create(input.name, { name: user, role }, days === undefined ? null : days * 86_400_000, accountId);
  ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'api-token.create', target: input.name, result: 'ok', detail: `${role} ${user}` });
  return { ...describeToken(record), token };
}

export function listApiTokens(ctx: Context): Record<string, unknown>[] {
  return ctx.store.apiTokens.list().map((t) => describeToken(t));
}

export function revokeApiToken(ctx: Context, name: string): Record<string, unknown> {
  if (!ctx.store.apiTokens.revoke(name)) throw new UserError(`no API token named "${name}"`);
  ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'api-token.revoke', target: name, result: 'ok', detail: '' });
  return describeToken(ctx.store.apiTokens.byName(name)!);
}
