import crypto from 'node:crypto';
import tls from 'node:tls';
import type { Context } from '../services/context.js';
import { prefixed } from '../config.js';
import { parseKeyValue, readTextIfExists } from '../panels/files.js';

/**
 * DirectAdmin sessions, checked with DirectAdmin itself. DirectAdmin runs a plugin page as
 * the logged-in user's Unix user and puts that login's session in the page's environment
 * (SESSION_ID, SESSION_KEY); the page's forwarder passes them on. Replayed to DirectAdmin's
 * API on loopback, a live session answers with its own record (`username`, `usertype`); a
 * process of the same uid that is not that page (a website's PHP, a cron job) has no session.
 *
 * The answer counts only when it comes over TLS with the certificate DirectAdmin is
 * configured to serve (read by root from DirectAdmin's configuration): a local user who
 * binds the port while DirectAdmin restarts cannot answer in its name.
 */

export interface DaSession { username: string; usertype: 'user' | 'reseller' | 'admin' }

const DA_CONF = '/usr/local/directadmin/conf/directadmin.conf';
const DEFAULT_CERT = '/usr/local/directadmin/conf/cacert.pem';
const SESSION_PART = /^[A-Za-z0-9._~-]{1,256}$/;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const TTL_MS = 60_000;
const MAX_CACHED = 1000;
const MAX_ANSWER = 256 * 1024;
const TIMEOUT_MS = 5000;

interface Endpoint { host: string; port: number; fingerprints: Set<string> }

/** The API's address and the certificate it must show, from the configuration and DirectAdmin's own. */
async function endpointOf(ctx: Context): Promise<Endpoint> {
  const conf = parseKeyValue(await readTextIfExists(prefixed(ctx.config, DA_CONF)) ?? '');
  const cfg = ctx.config.directadmin ?? {};
  let host = '127.0.0.1';
  let port = Number(conf.get('port') ?? '2222');
  if (cfg.apiUrl) {
    const u = new URL(cfg.apiUrl);
    if (u.protocol !== 'https:') throw new Error('directadmin.apiUrl must be https');
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = u.port ? Number(u.port) : 443;
  }
  if (!LOOPBACK.has(host)) throw new Error('directadmin.apiUrl must be a loopback address');
  if (host === 'localhost') host = '127.0.0.1';
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('DirectAdmin\'s port is not a port');
  const certFile = cfg.certFile ?? conf.get('cacert') ?? DEFAULT_CERT;
  const pem = await readTextIfExists(prefixed(ctx.config, certFile));
  const fingerprints = new Set<string>();
  for (const block of (pem ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    try { fingerprints.add(new crypto.X509Certificate(block).fingerprint256); } catch { /* not a certificate */ }
  }
  if (fingerprints.size === 0) throw new Error(`no certificate of DirectAdmin in ${certFile}`);
  return { host, port, fingerprints };
}

/** One GET to DirectAdmin with the session as its cookie; the answer's body, or null. */
function askDirectAdmin(e: Endpoint, id: string, key: string): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: string | null): void => { if (!done) { done = true; socket.destroy(); resolve(v); } };
    // The chain is not checked against public roots (DirectAdmin's is usually self-signed):
    // the certificate itself must be the one DirectAdmin is configured with.
    const socket = tls.connect({ host: e.host, port: e.port, rejectUnauthorized: false, servername: undefined }, () => {
      const cert = socket.getPeerCertificate();
      if (!cert || !e.fingerprints.has(cert.fingerprint256)) { finish(null); return; }
      socket.write(`GET /CMD_API_SHOW_USER_CONFIG HTTP/1.0\r\nHost: ${e.host}\r\nCookie: session=${id}; key=${key}\r\nConnection: close\r\n\r\n`);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    socket.setTimeout(TIMEOUT_MS, () => finish(null));
    socket.on('data', (d: Buffer) => { size += d.length; if (size > MAX_ANSWER) finish(null); else chunks.push(d); });
    socket.on('error', () => finish(null));
    socket.on('end', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0 || !/^HTTP\/1\.[01] 200 /.test(raw)) { finish(null); return; }
      if (/\r\ntransfer-encoding:/i.test(raw.slice(0, end))) { finish(null); return; }
      finish(raw.slice(end + 4));
    });
  });
}

/** The session's record from DirectAdmin's url-encoded answer, or null for anything else (a login page, an error). */
export function parseUserConfig(body: string): DaSession | null {
  if (body.length === 0 || /^\s*</.test(body)) return null;
  const v = new URLSearchParams(body.trim());
  if (v.get('error') !== null && v.get('error') !== '0') return null;
  const username = v.get('username') ?? '';
  const usertype = v.get('usertype') ?? '';
  if (!NAME.test(username) || !['user', 'reseller', 'admin'].includes(usertype)) return null;
  return { username, usertype: usertype as DaSession['usertype'] };
}

/** Verified sessions, kept for at most a minute under a hash of id and key (never the key itself). */
export class DirectAdminSessions {
  private readonly cache = new Map<string, { session: DaSession; until: number }>();

  constructor(
    private readonly log: (reason: string) => void = () => {},
    private readonly ask: (ctx: Context, id: string, key: string) => Promise<string | null> = async (ctx, id, key) => askDirectAdmin(await endpointOf(ctx), id, key),
  ) {}

  /** The session's owner and type as DirectAdmin says, or null (unknown, expired, DirectAdmin unreachable). */
  async verify(ctx: Context, id: string, key: string): Promise<DaSession | null> {
    if (!SESSION_PART.test(id) || !SESSION_PART.test(key)) return null;
    const hash = crypto.createHash('sha256').update(`${id}\n${key}`).digest('base64url');
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.session;
    this.cache.delete(hash);
    let body: string | null;
    try { body = await this.ask(ctx, id, key); } catch (err) { this.log((err as Error).message); body = null; }
    const session = body === null ? null : parseUserConfig(body);
    if (!session) return null;
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, { session, until: now + TTL_MS });
    return session;
  }
}
