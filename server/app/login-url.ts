import { UserError, type Context } from '../services/context.js';
import type { Role } from '../services/actor.js';
import { LOGIN_TOKEN_TTL_MS } from './session.js';
import { currentIdentityId } from '../services/account-identity.js';

const ROLES: readonly Role[] = ['admin', 'reseller', 'user'];
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/**
 * A one-time URL that opens a web session as `name` in `role` (for standalone mode,
 * support staff and tests). Only root may ask: the state store is root's alone, and
 * the caller is checked as well so the message is clear.
 */
export async function createLoginUrl(ctx: Context, name: string, role: string): Promise<{ url: string; user: string; role: Role; expiresAt: string }> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new UserError('login-url is for root only');
  if (!ROLES.includes(role as Role)) throw new UserError(`--role must be one of ${ROLES.join(', ')}`, 'invalid-input');
  if (!NAME.test(name)) throw new UserError(`"${name}" is not a valid user name`);
  if (role === 'user' && !(await ctx.panel(false).getAccount(name))) throw new UserError(`no account "${name}" on this server`);
  if (ctx.config.httpPort === 0) throw new UserError('the daemon serves no HTTP (httpPort is 0 in config.json)');
  // The session is the account's as it is now: it ends when that account is removed.
  const accountId = role === 'admin' ? null : await currentIdentityId(ctx, name);
  const { token, expiresAt } = ctx.store.sessions.createLoginToken({ name, role: role as Role }, LOGIN_TOKEN_TTL_MS, accountId);
  return { url: `http://127.0.0.1:${ctx.config.httpPort}/login/${token}`, user: name, role: role as Role, expiresAt: new Date(expiresAt).toISOString() };
}
