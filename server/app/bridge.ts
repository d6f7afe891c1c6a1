import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Context } from '../services/context.js';
import type { Actor, Role } from '../services/actor.js';
import { prefixed } from '../config.js';
import { readTextIfExists } from '../panels/files.js';
import { peerCredOf, peerCredUnavailable, type PeerCred } from '../native/peercred.js';
import { DirectAdminSessions } from './da-session.js';
import { localsOf } from './session.js';

/**
 * The panel bridges (docs/panels.md): a panel page forwards the browser's request to the
 * daemon, which answers with the same pages as on the HTTP port, for an identity taken
 * from the panel and the kernel, never from anything the browser sends. Never the JSON API:
 * a bridged request is never a root request.
 *
 * - Root channel (the root-only socket): WHM's CGI runs as root and names the WHM user
 *   (`REMOTE_USER`); the daemon decides the role from WHM's own reseller privileges.
 * - Proof channel (`<bridgeDir>/bridge.sock`, open to every local user): pages that run as
 *   an account's Unix user (cPanel's Jupiter page, DirectAdmin's pages) name the account;
 *   the kernel says which uid connected (SO_PEERCRED), and it must be that account's. A role
 *   above account holder (DirectAdmin's reseller and admin pages) needs, besides, the page's
 *   DirectAdmin session, which the daemon checks with DirectAdmin (da-session.ts).
 */

export const BRIDGE_HEADER = {
  whmUser: 'x-tidemark-whm-user',
  base: 'x-tidemark-base',
  panelSession: 'x-tidemark-panel-session',
  /** Proof channel: the account the page runs as, and the level of the page. */
  account: 'x-tidemark-account',
  level: 'x-tidemark-level',
  /** DirectAdmin's session of the page (never logged, never kept but as a hash). */
  daSessionId: 'x-tidemark-da-session-id',
  daSessionKey: 'x-tidemark-da-session-key',
} as const;

/** A request that came through a panel page: it carries one of the forwarder's headers. */
export const isBridged = (req: http.IncomingMessage): boolean => Object.keys(req.headers).some((h) => h.startsWith('x-tidemark-'));

/** The panel page a proof is asked for: DirectAdmin has one per level, cPanel only the user's. */
export type BridgeLevel = 'user' | 'reseller' | 'admin';
const LEVELS: readonly BridgeLevel[] = ['user', 'reseller', 'admin'];

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** Links point at the bridge page itself, relative to where the browser is (e.g. `index.live.pl`). */
const BASE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const VIEWS = fileURLToPath(new URL('../../../views', import.meta.url));

/** config.bridgeDir, else `tidemark-bridge` beside the root socket's directory. */
export const bridgeDirOf = (config: Context['config']): string =>
  config.bridgeDir ?? path.join(path.dirname(path.dirname(config.socketPath)), 'tidemark-bridge');
export const BRIDGE_SOCKET = 'bridge.sock';

/** The role of a WHM user: root (or a reseller with "all") is an admin, a reseller needs `software-tidemark`. */
export async function whmRole(ctx: Context, user: string): Promise<Role | null> {
  if (!NAME.test(user)) return null;
  if (ctx.panel(false).name !== 'cpanel') return null;
  if (user === 'root') return 'admin';
  // cPanel keeps each reseller's privileges as `name:acl,acl,…` lines.
  const text = await readTextIfExists(prefixed(ctx.config, '/var/cpanel/resellers'));
  for (const line of (text ?? '').split('\n')) {
    const at = line.indexOf(':');
    if (at < 0 || line.slice(0, at).trim() !== user) continue;
    const acls = line.slice(at + 1).split(',').map((a) => a.trim());
    if (acls.includes('all')) return 'admin';
    if (acls.includes('software-tidemark')) return 'reseller';
    return null;
  }
  return null;
}

/** Not more at once from one uid on the proof channel: a flood of one account does not stop the others. */
export const PROOF_LIMITS = { connectionsPerUid: 32, requestsPerUid: 8 } as const;

/**
 * The actor of a request on the proof channel, from the kernel's word on the connecting uid:
 * the claimed account must have exactly that uid (root is no account). A reseller or admin
 * page of DirectAdmin also needs the page's DirectAdmin session, whose owner DirectAdmin
 * confirms and whose type alone gives the role; on an account page a session, when one is
 * passed, must agree as well.
 */
export async function proofActor(ctx: Context, sessions: DirectAdminSessions, req: express.Request, cred: PeerCred | null): Promise<Actor | null> {
  if (!cred || cred.uid === 0) return null;
  const user = req.get(BRIDGE_HEADER.account) ?? '';
  const level = (req.get(BRIDGE_HEADER.level) ?? 'user') as BridgeLevel;
  if (!NAME.test(user) || !LEVELS.includes(level)) return null;
  const account = await ctx.panel(false).getAccount(user);
  if (!account || account.uid !== cred.uid) return null;
  const isDirectAdmin = ctx.panel(false).name === 'directadmin';
  const id = req.get(BRIDGE_HEADER.daSessionId);
  const key = req.get(BRIDGE_HEADER.daSessionKey);
  if (level === 'user' && (!isDirectAdmin || (id === undefined && key === undefined))) return { name: user, role: 'user' };
  if (!isDirectAdmin || !id || !key) return null;
  const session = await sessions.verify(ctx, id, key);
  if (!session || session.username !== user) return null;
  if (level === 'user') return { name: user, role: 'user' };
  if (level === 'admin') return session.usertype === 'admin' ? { name: user, role: 'admin' } : null;
  return session.usertype === 'reseller' || session.usertype === 'admin' ? { name: user, role: 'reseller' } : null;
}

/** `target` (a path of the daemon's pages, `/x?y#z`) as a link to the bridge page `base`. */
export function bridgeLink(base: string, target: string, htmlEscaped: boolean): string {
  const hash = target.indexOf('#');
  const fragment = hash >= 0 ? target.slice(hash) : '';
  const rest = hash >= 0 ? target.slice(0, hash) : target;
  const q = rest.indexOf('?');
  let pathPart = q >= 0 ? rest.slice(0, q) : rest;
  const query = q >= 0 ? rest.slice(q + 1) : '';
  if (htmlEscaped) pathPart = pathPart.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" })[e]!);
  const amp = htmlEscaped ? '&amp;' : '&';
  return `${base}?tm=${encodeURIComponent(pathPart)}${query ? amp + query : ''}${fragment}`;
}

const LOCAL = /^\/(?![/\\])/;
const URL_ATTRIBUTE = /(\s(?:href|src|action|formaction|data-[a-z-]+)=")(\/(?![/\\])[^"]*)"/g;
const REFRESH = /(<meta http-equiv="refresh" content="\d+; url=)(\/(?![/\\])[^"]*)"/g;

export function rewriteLinks(html: string, base: string): string {
  const link = (_m: string, head: string, url: string): string => `${head}${bridgeLink(base, url, true)}"`;
  return html.replace(URL_ATTRIBUTE, link).replace(REFRESH, link);
}

/** Makes every link, form, redirect and script URL of the pages go through the bridge page. */
function linksThroughBridge(base: string): express.RequestHandler {
  return (req, res, next) => {
    const location = res.location.bind(res);
    res.location = (url: string) => location(LOCAL.test(url) ? bridgeLink(base, url, false) : url);
    const render = res.render.bind(res) as (view: string, options: object, cb: (err: Error | null, html?: string) => void) => void;
    res.render = ((view: string, options?: object | ((err: Error | null, html?: string) => void), cb?: (err: Error | null, html?: string) => void) => {
      const done = typeof options === 'function' ? options : cb;
      render(view, typeof options === 'function' || options === undefined ? {} : options, (err, html) => {
        if (err) { if (done) done(err); else (req.next ?? next)(err); return; }
        const out = rewriteLinks(html ?? '', base);
        if (done) done(null, out); else res.send(out);
      });
    }) as typeof res.render;
    next();
  };
}

interface BridgeLocals { actor: Actor; base: string; panelSession: string }

/**
 * The CSRF token of a bridged page: tied to the actor and to the panel's own session when
 * the page passes one (cPanel's security token), under a key that lives as long as the daemon.
 */
const csrfKey = crypto.randomBytes(32);
const bridgeCsrfToken = (b: BridgeLocals): string =>
  crypto.createHmac('sha256', csrfKey).update(`tidemark bridge csrf v1\n${b.actor.role}\n${b.actor.name}\n${b.panelSession}`).digest('base64url');

async function bridgedPages(ctx: Context, authenticate: (req: express.Request) => Promise<Actor | null>): Promise<express.Express> {
  const app = express();
  app.set('view engine', 'ejs');
  app.set('views', VIEWS);
  app.set('view cache', true);
  app.disable('x-powered-by');
  // The pages' own script needs no API route; a bridged request is never an API client.
  app.use('/api', (_req, res) => {
    res.status(404).type('text/plain').set('Cache-Control', 'no-store')
      .send('Tidemark: the JSON API is not available through a panel page (use the tidemark command, or an API token on the HTTP port).\n');
  });
  app.use(async (req, res, next) => {
    try {
      const base = req.get(BRIDGE_HEADER.base) ?? '';
      if (!BASE.test(base)) { res.status(400).type('text/plain').send('Tidemark: the bridge page did not say where it is.\n'); return; }
      const actor = await authenticate(req);
      if (!actor) {
        res.status(403).type('text/plain').set('Cache-Control', 'no-store').send('Tidemark: the panel page could not prove who you are, so nothing is shown.\n');
        return;
      }
      const panelSession = (req.get(BRIDGE_HEADER.panelSession) ?? '').slice(0, 128);
      res.locals.bridge = { actor, base, panelSession } satisfies BridgeLocals;
      res.locals.bridged = true;
      next();
    } catch (err) {
      next(err);
    }
  });
  app.use((_req, res, next) => linksThroughBridge((res.locals.bridge as BridgeLocals).base)(_req, res, next));
  const { mountWebPages } = await import('./web.js');
  await mountWebPages(app, ctx, {
    identify: (_req, res, next) => {
      const b = res.locals.bridge as BridgeLocals;
      localsOf(res).actor = b.actor;
      localsOf(res).csrfToken = bridgeCsrfToken(b);
      next();
    },
  });
  return app;
}

/**
 * For the root-only socket: a request that carries any of the forwarder's headers came
 * through WHM's CGI and gets the pages as the WHM user's role (or 403), never the socket's
 * root API; only a request without them goes on.
 */
export async function rootBridge(ctx: Context): Promise<express.RequestHandler> {
  const pages = await bridgedPages(ctx, async (req) => {
    const user = req.get(BRIDGE_HEADER.whmUser) ?? '';
    const role = await whmRole(ctx, user);
    return role ? { name: user, role } : null;
  });
  return (req, res, next) => {
    if (!isBridged(req)) { next(); return; }
    pages(req, res, next);
  };
}

const TOO_MANY = 'Tidemark: too many requests at once from this user; try again in a moment.\n';

/**
 * The proof channel: an HTTP server for `bridge.sock` that asks the kernel for the uid of
 * every connection (SO_PEERCRED) and keeps each uid to a few connections and requests at
 * once. Without the native addon it refuses every request and says why in the log.
 */
export async function proofBridgeServer(ctx: Context, log: (msg: string, fields?: Record<string, unknown>) => void): Promise<http.Server> {
  const creds = new WeakMap<object, PeerCred>();
  const connections = new Map<number, number>();
  const requests = new Map<number, number>();
  const bump = (m: Map<number, number>, uid: number, by: number): number => {
    const n = (m.get(uid) ?? 0) + by;
    if (n > 0) m.set(uid, n); else m.delete(uid);
    return n;
  };
  const missing = peerCredUnavailable();
  if (missing) log('panel bridge: the native addon tidemark.node cannot be loaded, so every panel page request is refused (run npm run build)', { err: missing });
  const sessions = new DirectAdminSessions((reason) => log('panel bridge: a DirectAdmin session could not be checked', { err: reason }));

  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const cred = creds.get(req.socket);
    if (!cred) {
      res.status(503).type('text/plain').set('Cache-Control', 'no-store').send('Tidemark: the daemon cannot tell who is asking, so nothing is shown.\n');
      return;
    }
    if (bump(requests, cred.uid, 1) > PROOF_LIMITS.requestsPerUid) {
      bump(requests, cred.uid, -1);
      res.status(429).type('text/plain').set({ 'Cache-Control': 'no-store', 'Retry-After': '2' }).send(TOO_MANY);
      return;
    }
    res.once('close', () => bump(requests, cred.uid, -1));
    res.locals.peer = cred;
    next();
  });
  app.use(await bridgedPages(ctx, (req) => proofActor(ctx, sessions, req, creds.get(req.socket) ?? null)));

  const server = http.createServer(app);
  // Nobody holds a connection open for long without sending a request.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  server.on('connection', (socket) => {
    const cred = peerCredOf(socket);
    if (!cred) return;
    if (bump(connections, cred.uid, 1) > PROOF_LIMITS.connectionsPerUid) {
      bump(connections, cred.uid, -1);
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(TOO_MANY)}\r\n\r\n${TOO_MANY}`);
      return;
    }
    creds.set(socket, cred);
    socket.once('close', () => bump(connections, cred.uid, -1));
  });
  return server;
}

/**
 * `<bridgeDir>` (root's, 0755) with `bridge.sock` (0666) in it, and nothing else: no folder
 * that others may write to. Refuses a directory that someone else could have prepared. The
 * `proofs/` folder of an older version is closed (0700) and removed when empty, never walked.
 */
export function prepareBridgeDir(dir: string): { socket: string } {
  const uid = process.getuid?.() ?? 0;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of the daemon's user, writable by nobody else`);
  }
  fs.chmodSync(dir, 0o755);
  const old = path.join(dir, 'proofs');
  const ost = fs.lstatSync(old, { throwIfNoEntry: false });
  if (ost?.isDirectory() && ost.uid === uid) {
    fs.chmodSync(old, 0o700);
    try { fs.rmdirSync(old); } catch { /* not empty: left closed, never walked */ }
  }
  return { socket: path.join(dir, BRIDGE_SOCKET) };
}
