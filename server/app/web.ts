import { fileURLToPath } from 'node:url';
import express from 'express';
import helmet from 'helmet';
import cookieParser from 'cookie-parser';
import { handle as i18nHandle } from 'i18next-http-middleware';
import type { Context } from '../services/context.js';
import { createI18n, isLocale, LANGUAGE_COOKIE, LOCALES } from '../i18n/index.js';
import { HttpError } from './http-error.js';
import { webErrorOf } from './web-errors.js';
import { csrfProtection, localsOf, SESSION_COOKIE, sessionCookieOptions, sessions } from './session.js';
import { formatters } from './format.js';
import { RestoreRunner } from './restore-runner.js';
import { userRoutes } from './user/routes.js';
import { siteRoutes } from './user/site-routes.js';
import { pointInTimeRoutes } from './user/point-in-time.js';
import { adminRoutes } from './admin/routes.js';
import { identify } from '../services/account-identity.js';

const STATIC = fileURLToPath(new URL('../../../views/static', import.meta.url));

/** Only a path on this site: never `//host` or `/\host`, which browsers treat as another site. */
const localPath = (v: unknown): string => (typeof v === 'string' && /^\/(?![/\\])[^\s]*$/.test(v) ? v : '/');

type Translate = (key: unknown, options?: unknown) => unknown;

/**
 * The page's translate function, each plain text (a key without options) looked up once per
 * request: a list of 100 rows asks for the same column labels hundreds of times.
 */
function memoTexts(t: Translate): Translate {
  const seen = new Map<string, unknown>();
  return (key, options) => {
    if (options !== undefined || typeof key !== 'string') return t(key, options);
    if (!seen.has(key)) seen.set(key, t(key));
    return seen.get(key);
  };
}

export interface WebPagesOptions {
  /**
   * For the panel bridges (bridge.ts): sets the actor and CSRF token from the identity the
   * bridge proved, in place of the session cookie. Sign-in by login URL and the Host check
   * (the bridge's requests come over a Unix socket) do not apply then.
   */
  identify?: express.RequestHandler;
}

/**
 * The pages for signed-in people, on the HTTP port every local user can reach: nothing
 * here answers without a valid session except sign-in itself, the health check and the
 * stylesheet and script.
 */
export async function mountWebPages(app: express.Express, ctx: Context, opts: WebPagesOptions = {}): Promise<void> {
  const i18n = await createI18n();
  const runner = new RestoreRunner(ctx);
  // Read at each sign-in: the settings pages change them without a restart.
  const idleMs = (): number => ctx.config.sessionIdleMinutes * 60_000;
  const maxMs = (): number => ctx.config.sessionMaxHours * 3_600_000;

  app.use(helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'],
        formAction: ["'self'"], frameAncestors: ["'self'"], objectSrc: ["'none'"], baseUri: ["'none'"],
        // Plain HTTP on 127.0.0.1: an upgrade to HTTPS would lead nowhere.
        upgradeInsecureRequests: null,
      },
    },
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'no-referrer' },
  }));
  // Only this machine's own names: a page of another site whose name an attacker points
  // at 127.0.0.1 (DNS rebinding) gets nothing, not even the sign-in page.
  if (!opts.identify) app.use((req, res, next) => {
    const port = req.socket.localPort;
    const host = (req.headers.host ?? '').toLowerCase();
    if ([`127.0.0.1:${port}`, `localhost:${port}`].includes(host)) { next(); return; }
    res.status(421).type('text/plain').send('Misdirected request: use http://127.0.0.1/ of this server.\n');
  });
  app.use('/static', express.static(STATIC, { index: false, maxAge: '1h' }));
  app.use(cookieParser());
  app.use(i18nHandle(i18n));
  app.use(opts.identify ?? sessions(ctx));
  // Before anything is shown to an account holder or reseller: the account its name means now
  // (a removed and re-created account is noticed here, and the removed one's things retired).
  app.use((_req, res, next) => {
    const actor = localsOf(res).actor;
    if (!actor || actor.role === 'admin') { next(); return; }
    identify(ctx, actor.name).then(() => next(), next);
  });
  app.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    // Dates and numbers in the browser's own variant (de-CH, fr-CA); texts in the locale that has them.
    const resolved = isLocale(res.locals.resolvedLanguage) ? res.locals.resolvedLanguage : 'en';
    try { res.locals.fmt = formatters(String(res.locals.language ?? resolved)); } catch { res.locals.fmt = formatters(resolved); }
    res.locals.language = resolved;
    res.locals.locales = LOCALES;
    res.locals.currentPath = req.originalUrl;
    if (typeof res.locals.t === 'function') res.locals.t = memoTexts(res.locals.t as Translate);
    next();
  });
  // After the language and the session are known, so a refused body gets a proper page.
  app.use(express.urlencoded({ extended: false, limit: '1mb', parameterLimit: 20000 }));

  if (!opts.identify) app.get('/login/:token', (req, res) => {
    const login = ctx.store.sessions.consumeLoginTokenBound(req.params.token);
    if (!login) throw new HttpError(401, 'error.loginLink');
    const { actor, accountId } = login;
    const previous = res.locals.sessionId as string | undefined;
    if (previous) ctx.store.sessions.destroy(previous);
    const s = ctx.store.sessions.createSession(actor, idleMs(), maxMs(), accountId);
    res.cookie(SESSION_COOKIE, s.id, sessionCookieOptions());
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'sign-in', target: actor.name, result: 'ok', detail: 'login URL' });
    // A page, not a redirect: a SameSite=Strict cookie is not sent on a redirect that
    // follows a link from another site, but is on this page's own refresh.
    res.render('signed-in', { actor, next: '/' });
  });

  app.use(csrfProtection);

  app.post('/logout', (_req, res) => {
    const id = res.locals.sessionId as string | undefined;
    if (id) ctx.store.sessions.destroy(id);
    res.clearCookie(SESSION_COOKIE, sessionCookieOptions());
    localsOf(res).actor = null;
    res.render('signed-out');
  });

  app.post('/locale', (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!isLocale(body.lng)) throw new HttpError(400, 'error.badRequest');
    res.cookie(LANGUAGE_COOKIE, body.lng, { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 365 * 86_400_000 });
    res.redirect(303, localPath(body.back));
  });

  // Everything below needs a session.
  app.use((_req, res, next) => { next(localsOf(res).actor ? undefined : new HttpError(401, 'error.signedOut')); });
  app.use('/admin', adminRoutes(ctx));
  app.use(userRoutes(ctx, runner));
  app.use(siteRoutes(ctx, runner));
  app.use(pointInTimeRoutes(ctx));
  app.use((_req, _res, next) => { next(new HttpError(404, 'error.notFound')); });

  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    // Errors of the body parser (malformed or too large) carry a 4xx status of their own.
    const status = (err as { status?: unknown } | null)?.status;
    const e = err instanceof HttpError ? err
      : typeof status === 'number' && status >= 400 && status < 500 ? new HttpError(400, 'error.badRequest')
        : webErrorOf(err);
    if (e.status === 500) process.stderr.write(`tidemark web: ${(err as Error)?.stack ?? String(err)}\n`);
    if (res.headersSent) { res.destroy(); return; }
    res.status(e.status);
    if (req.get('accept')?.includes('application/json') && !req.get('accept')?.includes('text/html')) {
      res.json({ error: (res.locals.t as (k: string) => string)(e.key) });
      return;
    }
    res.render(e.status === 401 && !localsOf(res).actor ? 'signed-out' : 'error', { status: e.status, key: e.key, detail: e.detail });
  });
}
