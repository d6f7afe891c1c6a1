import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Context } from '../services/context.js';
import type { Actor, Role } from '../services/actor.js';
import { prefixed } from '../config.js';
import { parseKeyValue, readTextIfExists } from '../panels/files.js';
import { localsOf } from './session.js';

/**
 * The panel bridges (docs/panels.md): a panel page forwards the browser's request to the
 * daemon, which answers with the same pages as on the HTTP port, for an identity taken
 * from the panel and never from anything the browser sends.
 *
 * - Root channel (the root-only socket): WHM's CGI runs as root and names the WHM user
 *   (`REMOTE_USER`); the daemon decides the role from WHM's own reseller privileges.
 * - Proof channel (`<bridgeDir>/bridge.sock`, open to every local user): pages that run as
 *   an account's Unix user (cPanel's Jupiter page, DirectAdmin's pages) ask for a one-time
 *   challenge, create a file of that name in `<bridgeDir>/proofs/`, and send the request with
 *   the challenge. The daemon accepts it only if the kernel says that file (not a link) is
 *   owned by the claimed account's uid: no account can create a file owned by another uid.
 */

export const BRIDGE_HEADER = {
  whmUser: 'x-tidemark-whm-user',
  proof: 'x-tidemark-proof',
  base: 'x-tidemark-base',
  panelSession: 'x-tidemark-panel-session',
} as const;

/** The panel page a proof is asked for: DirectAdmin has one per level, cPanel only the user's. */
export type BridgeLevel = 'user' | 'reseller' | 'admin';
const LEVELS: readonly BridgeLevel[] = ['user', 'reseller', 'admin'];

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
/** Links point at the bridge page itself, relative to where the browser is (e.g. `index.live.pl`). */
const BASE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const VIEWS = fileURLToPath(new URL('../../../views', import.meta.url));

export const PROOFS_DIR = 'proofs';

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

/** The role a proven Unix user gets on a panel page of `level`, from the panel's own data. */
async function proofRole(ctx: Context, user: string, level: BridgeLevel): Promise<Role | null> {
  if (level === 'user') return 'user';
  if (ctx.panel(false).name !== 'directadmin') return null;
  const conf = await readTextIfExists(prefixed(ctx.config, `/usr/local/directadmin/data/users/${user}/user.conf`));
  const type = conf === null ? '' : parseKeyValue(conf).get('usertype') ?? '';
  if (level === 'admin') return type === 'admin' ? 'admin' : null;
  return type === 'reseller' || type === 'admin' ? 'reseller' : null;
}

interface Pending { user: string; level: BridgeLevel; issuedAt: number }

/** Challenges handed out on the proof channel: secret, single-use, short-lived. */
export class ProofChallenges {
  private readonly pending = new Map<string, Pending>();
  private lastSweep = Date.now();

  constructor(readonly dir: string, private readonly ttlMs = 30_000, private readonly max = 2000) {}

  /** Files nobody answered a challenge with (a page that died, a replay) do not pile up. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const name of fs.readdirSync(this.dir)) {
      const file = path.join(this.dir, name);
      try { if (now - fs.lstatSync(file).ctimeMs > 2 * this.ttlMs) fs.rmSync(file, { force: true, recursive: true }); } catch { /* gone meanwhile */ }
    }
  }

  issue(user: string, level: BridgeLevel): string {
    const now = Date.now();
    if (now - this.lastSweep > 60_000) this.sweep(now);
    for (const [k, p] of this.pending) if (now - p.issuedAt > this.ttlMs || this.pending.size >= this.max) this.pending.delete(k); else break;
    const challenge = crypto.randomBytes(32).toString('base64url');
    this.pending.set(challenge, { user, level, issuedAt: now });
    return challenge;
  }

  /**
   * The actor a challenge proves, or null. The challenge is used up whatever the outcome;
   * the proof file is removed (root may remove any file in the sticky directory).
   */
  async verify(ctx: Context, challenge: string): Promise<Actor | null> {
    if (!CHALLENGE.test(challenge)) return null;
    const claim = this.pending.get(challenge);
    this.pending.delete(challenge);
    if (!claim || Date.now() - claim.issuedAt > this.ttlMs) return null;
    const file = path.join(this.dir, challenge);
    let st: fs.Stats;
    try { st = fs.lstatSync(file); } catch { return null; }
    try { fs.unlinkSync(file); } catch { /* already gone: the check below still holds */ }
    // A regular file with one name (no symlink, no hard link to someone else's file), made
    // after the challenge was given (ctime cannot be set back by its owner), by a non-root uid.
    if (!st.isFile() || st.nlink !== 1 || st.uid === 0 || st.ctimeMs < claim.issuedAt - 1000) return null;
    const account = await ctx.panel(false).getAccount(claim.user);
    if (!account || account.uid !== st.uid) return null;
    const role = await proofRole(ctx, claim.user, claim.level);
    return role ? { name: claim.user, role } : null;
  }
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
  app.disable('x-powered-by');
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
 * For the root-only socket: requests from WHM's CGI (they carry the WHM user) get the pages
 * as that user's role; everything else goes on to the socket's own API.
 */
export async function rootBridge(ctx: Context): Promise<express.RequestHandler> {
  const pages = await bridgedPages(ctx, async (req) => {
    const user = req.get(BRIDGE_HEADER.whmUser) ?? '';
    const role = await whmRole(ctx, user);
    return role ? { name: user, role } : null;
  });
  return (req, res, next) => {
    if (req.get(BRIDGE_HEADER.whmUser) === undefined) { next(); return; }
    pages(req, res, next);
  };
}

/** The proof channel's app: challenges, then the pages for whoever proved their uid. */
export async function proofBridgeApp(ctx: Context, challenges: ProofChallenges): Promise<express.Express> {
  const app = express();
  app.disable('x-powered-by');
  app.post('/bridge/challenge', express.json({ limit: '1kb' }), (req, res) => {
    const body = (req.body ?? {}) as { user?: unknown; level?: unknown };
    if (typeof body.user !== 'string' || !NAME.test(body.user) || !LEVELS.includes(body.level as BridgeLevel)) {
      res.status(400).json({ error: 'a challenge needs {"user": NAME, "level": "user"|"reseller"|"admin"}' });
      return;
    }
    res.set('Cache-Control', 'no-store').json({ challenge: challenges.issue(body.user, body.level as BridgeLevel) });
  });
  app.use(await bridgedPages(ctx, async (req) => {
    const challenge = req.get(BRIDGE_HEADER.proof);
    return challenge ? challenges.verify(ctx, challenge) : null;
  }));
  return app;
}

/**
 * `<bridgeDir>` (root's, 0755) with `proofs/` (root's, 1733: anyone may create a file, nobody
 * may list the names or remove another's file) and `bridge.sock` (0666). Refuses a directory
 * that someone else could have prepared.
 */
export function prepareBridgeDir(dir: string): { proofs: string; socket: string } {
  const uid = process.getuid?.() ?? 0;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of the daemon's user, writable by nobody else`);
  }
  fs.chmodSync(dir, 0o755);
  const proofs = path.join(dir, PROOFS_DIR);
  try { fs.mkdirSync(proofs, { mode: 0o700 }); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; }
  const pst = fs.lstatSync(proofs);
  if (!pst.isDirectory() || pst.uid !== uid) throw new Error(`${proofs} must be a directory of the daemon's user`);
  fs.chmodSync(proofs, 0o1733);
  for (const name of fs.readdirSync(proofs)) fs.rmSync(path.join(proofs, name), { force: true, recursive: true });
  return { proofs, socket: path.join(dir, BRIDGE_SOCKET) };
}
