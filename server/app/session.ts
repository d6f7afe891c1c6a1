import crypto from 'node:crypto';
import type express from 'express';
import type { Context } from '../services/context.js';
import type { Actor } from '../services/actor.js';
import { HttpError } from './http-error.js';
import { currentIdentityId } from '../services/account-identity.js';

export const SESSION_COOKIE = 'tidemark_session';
export const LOGIN_TOKEN_TTL_MS = 2 * 60 * 1000;

/** What the pages know about the request; identity comes from the session alone. */
export interface WebLocals {
  actor: Actor | null;
  csrfToken: string;
}

export const localsOf = (res: express.Response): WebLocals => res.locals as unknown as WebLocals;

/** The signed-in actor, or a 401 for a request that reached a page without a session. */
export function actorOf(res: express.Response): Actor {
  const actor = localsOf(res).actor;
  if (!actor) throw new HttpError(401, 'error.signedOut');
  return actor;
}

/**
 * The CSRF token of a session: derived from the session id, which only this browser's
 * HttpOnly cookie holds, so it needs no storage and dies with the session.
 */
export const csrfTokenFor = (sessionId: string): string =>
  crypto.createHmac('sha256', sessionId).update('tidemark csrf v1').digest('base64url');

const sameToken = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

export function sessionCookieOptions(maxAgeMs?: number): express.CookieOptions {
  // Not `secure`: the daemon speaks plain HTTP on 127.0.0.1; the panel bridges add TLS in front.
  return { httpOnly: true, sameSite: 'strict', path: '/', ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}) };
}

/**
 * Whether a session or API token made for account identity `accountId` still speaks for the
 * account of that name: not once the account was removed, even when a new account has the
 * same name (services/account-identity.ts). The provider's (no identity) always does.
 */
export async function stillSameAccount(ctx: Context, actor: Actor, accountId: number | null): Promise<boolean> {
  if (actor.role === 'admin') return true;
  const now = await currentIdentityId(ctx, actor.name);
  return accountId === null ? now === null : now === accountId;
}

export function sessions(ctx: Context): express.RequestHandler {
  return (req, res, next) => {
    const locals = localsOf(res);
    locals.actor = null;
    locals.csrfToken = '';
    const id = (req.cookies as Record<string, unknown> | undefined)?.[SESSION_COOKIE];
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) { next(); return; }
    const s = ctx.store.sessions.touch(id);
    if (!s) {
      res.clearCookie(SESSION_COOKIE, sessionCookieOptions());
      next();
      return;
    }
    stillSameAccount(ctx, s.actor, s.accountId).then((same) => {
      if (same) {
        locals.actor = s.actor;
        locals.csrfToken = csrfTokenFor(id);
        res.locals.sessionId = id;
      } else {
        ctx.store.sessions.destroy(id);
        res.clearCookie(SESSION_COOKIE, sessionCookieOptions());
      }
      next();
    }, next);
  };
}

/** Every request that changes something carries the session's CSRF token (form field `_csrf` or header). */
export const csrfProtection: express.RequestHandler = (req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') { next(); return; }
  const { actor, csrfToken } = localsOf(res);
  if (!actor) { next(new HttpError(401, 'error.signedOut')); return; }
  const body = req.body as Record<string, unknown> | undefined;
  const sent = typeof body?._csrf === 'string' ? body._csrf : req.get('x-csrf-token') ?? '';
  if (!csrfToken || !sameToken(sent, csrfToken)) { next(new HttpError(403, 'error.csrf')); return; }
  next();
};
