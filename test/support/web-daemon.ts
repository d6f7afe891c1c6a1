import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, asAccount, type TestAccount } from './accounts.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok } from './cli.js';
import type { MysqlCredentials } from '../../server/panels/types.js';
import { fetchOnFreshSocket } from './fetch.js';

/** A state directory with two accounts backed up to a visible and a hidden destination, and a daemon serving it. */
export interface WebFixture {
  dataDir: string;
  port: number;
  base: string;
  homeRoot: string;
  alice: TestAccount;
  bob: TestAccount;
  /** alice's and bob's snapshots on the visible destination, alice's on the hidden one. */
  visible: { alice: string; bob: string };
  hidden: { alice: string };
  destinationIds: { shown: number; hidden: number };
  loginUrl(user: string, role: 'admin' | 'reseller' | 'user'): string;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Large enough that restoring it takes a visible moment (the pages must show it running). */
export const BIG_FILE_MB = 400;

/** A non-UTF-8 file name (latin1 "café.txt"), as raw bytes. */
export const LATIN1_NAME = Buffer.from('caf\xe9.txt', 'latin1');

export interface WebFixtureOptions {
  /** Adds a 400 MiB file to alice's home (big/archive.bin). */
  bigFile?: boolean;
  /** Backs up databases too, from this server. */
  mysql?: MysqlCredentials;
  /** Runs after the accounts and the state directory (with its config.json) exist, and before the backups. */
  beforeBackup?: (alice: TestAccount, bob: TestAccount, dataDir: string) => Promise<void>;
}

export async function startWebFixture(opts: WebFixtureOptions = {}): Promise<WebFixture> {
  const homeRoot = makeHomeRoot();
  const alice = createAccount(homeRoot, 'tmw');
  const bob = createAccount(homeRoot, 'tmw');
  asAccount(alice, `mkdir -p public_html/blog public_html/img && printf 'original index' > public_html/index.html
    printf 'first post' > public_html/blog/post.txt && printf 'second post' > public_html/blog/second.txt
    printf 'notes of alice' > notes.txt
    ${opts.bigFile ? `mkdir big && head -c ${BIG_FILE_MB}M /dev/zero > big/archive.bin` : ''}`);
  const latin1File = Buffer.concat([Buffer.from(alice.home + '/'), LATIN1_NAME]);
  fs.writeFileSync(latin1File, 'latin1 name');
  fs.chownSync(latin1File, alice.uid, alice.gid);
  asAccount(bob, `printf 'secret of bob' > secret.txt`);

  const port = 18000 + (process.pid % 1000);
  const dataDir = makeDataDir({});
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({
    panel: 'standalone', homeRoots: [homeRoot], socketPath: path.join(dataDir, 'run', 'tidemark.sock'), httpPort: port, logLevel: 'silent',
    ...(opts.mysql ? { mysql: opts.mysql } : {}),
  }));
  await opts.beforeBackup?.(alice, bob, dataDir);
  const items = opts.mysql ? 'files,databases' : 'files';
  const shownDir = makeDestinationDir();
  const hiddenDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'shown', '--type', 'local', '--path', shownDir]));
  ok(cli(dataDir, ['destination', 'add', '--name', 'hidden', '--type', 'local', '--path', hiddenDir, '--hidden']));
  ok(cli(dataDir, ['job', 'add', '--name', 'both', '--destination', 'shown', '--structure', 'incremental', '--items', items, '--accounts', `${alice.username},${bob.username}`]));
  ok(cli(dataDir, ['job', 'add', '--name', 'secret', '--destination', 'hidden', '--structure', 'archive', '--items', 'files', '--accounts', alice.username]));
  const both = ok(cli(dataDir, ['backup', '--job', 'both', '--wait']));
  const secret = ok(cli(dataDir, ['backup', '--job', 'secret', '--wait']));
  const snap = (r: { results: { account: string; snapshot: string }[] }, who: TestAccount): string => r.results.find((x) => x.account === who.username)!.snapshot;

  const daemon: ChildProcess = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (d) => { stderr += d; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    try { if ((await fetch(`${base}/api/v1/health`)).ok) break; } catch { /* not up yet */ }
    if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start: ${stderr}`);
    await sleep(100);
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  const ids = Object.fromEntries((db.prepare('SELECT id, name FROM destinations').all() as { id: number; name: string }[]).map((r) => [r.name, r.id]));
  db.close();

  return {
    dataDir, port, base, homeRoot, alice, bob,
    visible: { alice: snap(both, alice), bob: snap(both, bob) },
    hidden: { alice: snap(secret, alice) },
    destinationIds: { shown: ids.shown!, hidden: ids.hidden! },
    loginUrl: (user, role) => ok(cli(dataDir, ['login-url', '--user', user, '--role', role])).url as string,
    async stop() {
      if (daemon.exitCode === null) {
        daemon.kill('SIGTERM');
        await new Promise((r) => daemon.once('exit', r));
      }
      removeAccount(alice);
      removeAccount(bob);
      for (const d of [dataDir, shownDir, hiddenDir, homeRoot]) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A browser stand-in for HTTP tests: keeps cookies, never follows redirects. */
export class WebClient {
  readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  async request(method: string, url: string, opts: { form?: Record<string, string | string[]>; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'text/html', ...opts.headers };
    const jar = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (jar && !Object.keys(headers).some((h) => h.toLowerCase() === 'cookie')) headers.cookie = jar;
    let body: string | undefined;
    if (opts.form) {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
      body = p.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetchOnFreshSocket(url.startsWith('http') ? url : this.base + url, { method, headers, body, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, ...v] = pair!.split('=');
      const value = v.join('=');
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(k!.trim()); else this.cookies.set(k!.trim(), value);
    }
    return { status: res.status, body: await res.text(), headers: res.headers };
  }

  get(url: string, headers?: Record<string, string>) { return this.request('GET', url, headers ? { headers } : {}); }
  post(url: string, form: Record<string, string | string[]>, headers?: Record<string, string>) { return this.request('POST', url, { form, ...(headers ? { headers } : {}) }); }

  /** The CSRF token of the signed-in session, as the pages embed it in their forms. */
  async csrf(): Promise<string> {
    const page = await this.get('/snapshots');
    const m = /name="_csrf" value="([^"]+)"/.exec(page.body);
    if (!m) throw new Error(`no CSRF token on the page (status ${page.status})`);
    return m[1]!;
  }
}

export const pathParam = (p: string | Buffer): string => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p).toString('base64url');

/**
 * Makes the fixture's daemon a cPanel server whose files are built under a temporary root:
 * the accounts as they are in /etc/passwd, each owned by the reseller named beside it.
 */
export function useCpanelTree(dataDir: string, owners: [TestAccount, string][]): string {
  const root = fs.mkdtempSync(path.join(path.dirname(dataDir), 'tidemark-cpanel-'));
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var/cpanel/users'), { recursive: true });
  const passwd = owners.map(([a]) => execFileSync('getent', ['passwd', a.username]).toString().trim());
  fs.writeFileSync(path.join(root, 'etc/passwd'), `${passwd.join('\n')}\n`);
  fs.writeFileSync(path.join(root, 'etc/trueuserowners'), owners.map(([a, o]) => `${a.username}: ${o}`).join('\n') + '\n');
  for (const [a, o] of owners) fs.writeFileSync(path.join(root, 'var/cpanel/users', a.username), `DNS=${a.username}.test\nOWNER=${o}\nPLAN=default\n`);
  const configFile = path.join(dataDir, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(configFile, JSON.stringify({ ...config, panel: 'cpanel', rootPrefix: root }));
  return root;
}
