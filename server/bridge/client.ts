/**
 * The forwarder behind every panel page (plugin/): run by the panel as a CGI (cPanel, WHM)
 * or a `.raw` page (DirectAdmin), it turns the browser's request into a request to the
 * daemon and streams the answer back. Who is asking never comes from the request:
 *
 * - `--mode whm` (WHM's CGI, run as root): the WHM user cpsrvd authenticated
 *   (`REMOTE_USER`), sent over the root-only socket; the daemon checks WHM's privileges.
 * - `--mode account` (pages run as the account's Unix user): the user this process runs as,
 *   proven by creating the daemon's one-time challenge file in `<bridge-dir>/proofs/`.
 *
 * The daemon's path travels in the query parameter `tm` (the other parameters are its
 * query), since the panels route only the page's own URL to it.
 *
 * Deliberately small and free of the rest of Tidemark (but the configuration, for WHM):
 * it starts once per page view.
 */
import fs from 'node:fs';
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

/** The daemon's path and query from the page's query string (`tm` = the path; the rest = its query). */
export function targetOf(queryString: string): string {
  let target = '/';
  const rest: string[] = [];
  for (const part of queryString.split('&')) {
    if (part === '') continue;
    if (part.startsWith('tm=')) {
      let v: string;
      try { v = decodeURIComponent(part.slice(3).replace(/\+/g, ' ')); } catch { continue; }
      // Only a path of the daemon's own: never `//host`, a backslash, or control characters.
      if (/^\/(?![/\\])[^\\\x00-\x1f\x7f]*$/.test(v) && !v.includes('?') && v.length <= 4096) target = v;
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

async function readAll(res: http.IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) text += chunk;
  return text;
}

/** Asks the daemon for a challenge and answers it with a file only this uid can have made. */
async function prove(o: Options, user: string): Promise<{ challenge: string; file: string }> {
  const res = await request(path.join(o.bridgeDir, 'bridge.sock'), 'POST', '/bridge/challenge', { 'content-type': 'application/json' },
    Buffer.from(JSON.stringify({ user, level: o.level })));
  const answer = JSON.parse(await readAll(res)) as { challenge?: unknown };
  if (res.statusCode !== 200 || typeof answer.challenge !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(answer.challenge)) {
    throw new Error('the daemon gave no challenge');
  }
  const file = path.join(o.bridgeDir, 'proofs', answer.challenge);
  // O_EXCL: a name that exists already (a planted link or file) is never used.
  fs.closeSync(fs.openSync(file, 'wx', 0o600));
  return { challenge: answer.challenge, file };
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
  let proofFile: string | null = null;
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
      // The user this process runs as, from the system: never from the environment.
      const user = os.userInfo().username;
      socketPath = path.join(o.bridgeDir, 'bridge.sock');
      const proof = await prove(o, user);
      proofFile = proof.file;
      headers['x-tidemark-proof'] = proof.challenge;
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
  } finally {
    if (proofFile) fs.rmSync(proofFile, { force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
