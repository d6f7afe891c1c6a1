/**
 * The forwarder behind every panel page (plugin/): run by the panel as a CGI (cPanel, WHM)
 * or a `.raw` page (DirectAdmin), it turns the browser's request into a request to the
 * daemon and streams the answer back. Who is asking never comes from the request:
 *
 * - `--mode whm` (WHM's CGI, run as root): the WHM user cpsrvd authenticated
 *   (`REMOTE_USER`), sent over the root-only socket; the daemon checks WHM's privileges.
 * - `--mode account` (pages run as the account's Unix user): the user this process runs as,
 *   named to the daemon over `<bridge-dir>/bridge.sock`, where the kernel tells the daemon
 *   this process's uid (SO_PEERCRED). DirectAdmin's pages also pass the login's session
 *   (SESSION_ID, SESSION_KEY from DirectAdmin), which the daemon checks with DirectAdmin.
 *
 * The daemon's path travels in the query parameter `tm` (the other parameters are its
 * query), since the panels route only the page's own URL to it.
 *
 * Deliberately small and free of the rest of Tidemark (but the configuration, for WHM):
 * it starts once per page view.
 */
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

type Mode = 'whm' | 'account';
type Output = 'cgi' | 'raw';

interface Options { mode: Mode; level: string; base: string; output: Output; dataDir: string; bridgeDir: string }

const MAX_BODY = 4 << 20;
const LANGUAGE_COOKIE = 'tidemark_lang';
/** Headers of the daemon's answer that belong to its connection, not to the page. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length']);

function parseArgs(argv: string[]): Options {
  const get = (name: string, fallback = ''): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : fallback;
  };
  const mode = get('mode') as Mode;
  const output = get('output', 'cgi') as Output;
  if (mode !== 'whm' && mode !== 'account') throw new Error('--mode must be whm or account');
  if (output !== 'cgi' && output !== 'raw') throw new Error('--output must be cgi or raw');
  return { mode, level: get('level', 'user'), base: get('base'), output, dataDir: get('data-dir', '/var/lib/tidemark'), bridgeDir: get('bridge-dir', '/var/run/tidemark-bridge') };
}

function head(output: Output, status: number, headers: [string, string][]): string {
  const reason = http.STATUS_CODES[status] ?? 'Status';
  const first = output === 'raw' ? `HTTP/1.1 ${status} ${reason}` : `Status: ${status} ${reason}`;
  const extra: [string, string][] = output === 'raw' ? [['Connection', 'close']] : [];
  return [first, ...[...headers, ...extra].map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, ' ')}`), '', ''].join('\r\n');
}

function fail(output: Output, status: number, text: string): void {
  process.stdout.write(head(output, status, [['Content-Type', 'text/plain; charset=utf-8'], ['Cache-Control', 'no-store']]) + `Tidemark: ${text}\n`);
}

/**
 * Only a path of the daemon's own pages: never `//host`, a backslash, control characters, a
 * `.` or `..` segment (also encoded), or the JSON API (the daemon refuses it anyway).
 */
function isPagePath(v: string): boolean {
  if (!/^\/(?![/\\])[^\\\x00-\x1f\x7f?#]*$/.test(v) || v.length > 4096) return false;
  let decoded = v;
  for (let i = 0; i < 3; i++) {
    try { decoded = decodeURIComponent(decoded); } catch { break; }
  }
  if (/[\\\x00-\x1f\x7f]/.test(decoded)) return false;
  if (decoded.split('/').some((seg) => seg === '.' || seg === '..')) return false;
  return !/^\/+api(\/|$)/i.test(decoded);
}

/** The daemon's path and query from the page's query string (`tm` = the path; the rest = its query). */
export function targetOf(queryString: string): string {
  let target = '/';
  const rest: string[] = [];
  for (const part of queryString.split('&')) {
    if (part === '') continue;
    if (part.startsWith('tm=')) {
      let v: string;
      try { v = decodeURIComponent(part.slice(3).replace(/\+/g, ' ')); } catch { continue; }
      if (isPagePath(v)) target = v;
    } else {
      rest.push(part);
    }
  }
  return rest.length > 0 ? `${target}?${rest.join('&')}` : target;
}

/** Only Tidemark's language choice travels; the panel's own cookies stay with the panel. */
export function languageCookie(cookieHeader: string | undefined): string | null {
  for (const c of (cookieHeader ?? '').split(';')) {
    const [k, ...v] = c.trim().split('=');
    if (k === LANGUAGE_COOKIE && /^[A-Za-z-]{1,16}$/.test(v.join('='))) return `${LANGUAGE_COOKIE}=${v.join('=')}`;
  }
  return null;
}

async function readBody(): Promise<Buffer> {
  // DirectAdmin hands a POST's form to its plugins in the environment; CGI servers on stdin.
  if (process.env.POST !== undefined) return Buffer.from(process.env.POST, 'latin1');
  const declared = Number(process.env.CONTENT_LENGTH ?? '0');
  if (!Number.isSafeInteger(declared) || declared <= 0) return Buffer.alloc(0);
  if (declared > MAX_BODY) throw Object.assign(new Error('the form is too large'), { status: 413 });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= declared) break;
  }
  return Buffer.concat(chunks).subarray(0, declared);
}

function request(socketPath: string, method: string, target: string, headers: Record<string, string>, body?: Buffer): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: target, headers: { host: 'tidemark', ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

/** DirectAdmin's session of this page view, when DirectAdmin gave one (never logged, never shown). */
function directAdminSession(): { id: string; key: string } | null {
  const id = process.env.SESSION_ID ?? '';
  const key = process.env.SESSION_KEY ?? '';
  const ok = (v: string): boolean => /^[A-Za-z0-9._~-]{1,256}$/.test(v);
  return ok(id) && ok(key) ? { id, key } : null;
}

async function main(): Promise<void> {
  let o: Options;
  try { o = parseArgs(process.argv.slice(2)); } catch (err) { fail('cgi', 500, (err as Error).message); return; }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(o.base)) { fail(o.output, 500, 'the page gave no --base'); return; }
  const method = (process.env.REQUEST_METHOD ?? 'GET').toUpperCase();
  if (!['GET', 'HEAD', 'POST'].includes(method)) { fail(o.output, 405, 'method not allowed'); return; }

  const headers: Record<string, string> = { 'x-tidemark-base': o.base };
  for (const [env, name] of [['HTTP_ACCEPT', 'accept'], ['HTTP_ACCEPT_LANGUAGE', 'accept-language'], ['CONTENT_TYPE', 'content-type']] as const) {
    const v = process.env[env];
    if (v && v.length <= 1024) headers[name] = v;
  }
  const cookie = languageCookie(process.env.HTTP_COOKIE);
  if (cookie) headers.cookie = cookie;
  // cPanel's per-login security token: the daemon ties its form tokens to the panel's session.
  const panelSession = process.env.cp_security_token ?? process.env.CP_SECURITY_TOKEN;
  if (panelSession) headers['x-tidemark-panel-session'] = crypto.createHash('sha256').update(panelSession).digest('base64url');

  let socketPath: string;
  const uid = process.getuid?.() ?? -1;
  try {
    if (o.mode === 'whm') {
      if (uid !== 0) { fail(o.output, 500, 'the WHM page must run as root'); return; }
      const user = process.env.REMOTE_USER ?? '';
      const { loadConfig } = await import('../config.js');
      socketPath = (await loadConfig(o.dataDir)).socketPath;
      headers['x-tidemark-whm-user'] = user;
    } else {
      if (uid === 0) { fail(o.output, 500, 'an account page must not run as root'); return; }
      // The user this process runs as, from the system: never from the environment. The
      // daemon checks it against the uid the kernel gives for this connection.
      headers['x-tidemark-account'] = os.userInfo().username;
      headers['x-tidemark-level'] = o.level;
      const session = directAdminSession();
      if (session) {
        headers['x-tidemark-da-session-id'] = session.id;
        headers['x-tidemark-da-session-key'] = session.key;
      }
      socketPath = path.join(o.bridgeDir, 'bridge.sock');
    }
  } catch (err) {
    fail(o.output, 503, `the Tidemark service is not reachable (${(err as Error).message}).`);
    return;
  }

  try {
    const body = method === 'POST' ? await readBody() : undefined;
    const res = await request(socketPath, method, targetOf(process.env.QUERY_STRING ?? ''), headers, body);
    const out: [string, string][] = [];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const k = res.rawHeaders[i]!;
      const v = res.rawHeaders[i + 1]!;
      const lower = k.toLowerCase();
      if (HOP_BY_HOP.has(lower) || lower.startsWith('x-powered')) continue;
      if (lower === 'set-cookie' && !v.startsWith(`${LANGUAGE_COOKIE}=`)) continue;
      out.push([k, v]);
    }
    process.stdout.write(head(o.output, res.statusCode ?? 502, out));
    res.pipe(process.stdout);
    await new Promise<void>((resolve, reject) => { res.on('end', resolve); res.on('error', reject); });
  } catch (err) {
    const status = (err as { status?: number }).status ?? 502;
    fail(o.output, status, status === 413 ? 'the form is too large.' : `the Tidemark service did not answer (${(err as Error).message}).`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
