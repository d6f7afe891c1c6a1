import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createAccount, makeHomeRoot, removeAccount, asAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDestinationDir, ok } from './support/cli.js';
import { install, makeCpanelTree, makeDirectAdminTree } from './support/panel-tree.js';
import { installDirectAdminCert, startFakeDirectAdmin, type FakeDirectAdmin } from './support/fake-directadmin.js';
import { freePort } from './support/free-port.js';
import { BRIDGE, startInstalledDaemon } from './support/installed-daemon.js';

// The bridges as a hostile caller uses them: every page route and API route of the daemon,
// tried through each bridge with each role, straight on the daemon's sockets (what any
// forwarder, or a process of the account, can send), plus forged headers, races and floods.

const SERVER = fileURLToPath(new URL('../../server/', import.meta.url));
const DATA = 'var/lib/tidemark';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The routes of the express routers, read from their source with the path each is mounted at. */
function routesFromSource(): { method: string; path: string }[] {
  const mounts: [string, string][] = [
    ['app/api/routes.ts', '/api/v1'], ['app/user/routes.ts', ''], ['app/admin/routes.ts', '/admin'],
    ['app/admin/destination-routes.ts', '/admin/destinations'], ['app/admin/job-routes.ts', '/admin/jobs'],
    ['app/admin/account-routes.ts', '/admin/accounts'], ['app/admin/queue-routes.ts', '/admin/queue'],
    ['app/admin/activity-routes.ts', '/admin/activity'],
  ];
  const out: { method: string; path: string }[] = [];
  for (const [file, prefix] of mounts) {
    const src = fs.readFileSync(path.join(SERVER, file), 'utf8');
    for (const m of src.matchAll(/\br\.(get|post|put|patch|delete)\(\s*[`']([^`']*)[`']/g)) {
      out.push({ method: m[1]!.toUpperCase(), path: (prefix + m[2]!.replace('${verb}', 'disable')).replace(/\/$/, '') || '/' });
    }
  }
  return out;
}

interface Answer { status: number | string; ctype: string; text: string }
interface Req { method: string; path: string; headers: Record<string, string>; body?: string }

/** Runs requests on a Unix socket from a process of `uid` (root when absent); `hold` connections are opened first and kept. */
const CHILD = `
const http = require('http'); const net = require('net');
const spec = JSON.parse(process.argv[1]);
const one = (q) => new Promise((resolve) => {
  const r = http.request({ socketPath: spec.socket, method: q.method, path: q.path, agent: false, headers: { host: 'tidemark', ...q.headers, ...(spec.csrf ? { 'x-csrf-token': spec.csrf } : {}) } }, (res) => {
    let text = ''; res.on('data', (d) => { if (text.length < 200000) text += d; });
    res.on('end', () => resolve({ status: res.statusCode, ctype: res.headers['content-type'] || '', text }));
  });
  r.on('error', (e) => resolve({ status: e.code, ctype: '', text: '' }));
  r.end(q.body || '');
});
(async () => {
  const held = [];
  for (let i = 0; i < (spec.hold || 0); i++) {
    held.push(await new Promise((resolve) => { const s = net.connect(spec.socket); let got = ''; s.on('data', (d) => { got += d; }); s.on('error', () => resolve({ s, got: () => 'error' })); s.on('connect', () => resolve({ s, get got() { return got; } })); }));
  }
  if (spec.hold) await new Promise((r) => setTimeout(r, 300));
  if (spec.tokenFrom) { const t = await one(spec.tokenFrom); const m = /name="_csrf" value="([^"]+)"/.exec(t.text); spec.csrf = m ? m[1] : ''; }
  const out = [];
  if (spec.parallel) out.push(...await Promise.all(spec.requests.map(one))); else for (const q of spec.requests) out.push(await one(q));
  const refused = held.filter((h) => /429/.test(h.got)).length;
  process.stdout.write(JSON.stringify({ out, refused, csrf: !!spec.csrf }));
  for (const h of held) h.s.destroy();
})();`;

interface Spec { socket: string; requests: Req[]; tokenFrom?: Req; hold?: number; parallel?: boolean }
function runAs(as: TestAccount | undefined, spec: Spec): Promise<{ out: Answer[]; refused: number; csrf: boolean }> {
  const argv = [...(as ? ['setpriv', '--reuid', String(as.uid), '--regid', String(as.gid), '--clear-groups'] : []), process.execPath, '-e', CHILD, JSON.stringify(spec)];
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => { if (code === 0) resolve(JSON.parse(out)); else reject(new Error(`child exited ${code}: ${err}`)); });
  });
}

interface Fixture {
  root: string; homeRoot: string; dest: string; port: number; daemon: ChildProcess; made: TestAccount[];
  alice: TestAccount; bob: TestAccount; snaps: Map<string, string>; da?: FakeDirectAdmin; extra?: Record<string, TestAccount>;
}

const passwdLine = (a: TestAccount): string => `${a.username}:x:${a.uid}:${a.gid}::${a.home}:/usr/sbin/nologin`;

/** A panel tree with alice (a reseller's account) and bob (the provider's), both backed up. */
async function setUp(panel: 'cpanel' | 'directadmin'): Promise<Fixture> {
  const root = panel === 'cpanel' ? makeCpanelTree() : makeDirectAdminTree();
  install(root);
  const homeRoot = makeHomeRoot();
  const made: TestAccount[] = [];
  const account = (p: string): TestAccount => { const a = createAccount(homeRoot, p); made.push(a); return a; };
  const alice = account('tmx');
  const bob = account('tmx');
  const extra: Record<string, TestAccount> = {};
  asAccount(bob, `printf 'secret of bob' > secret.txt`);
  asAccount(alice, `printf 'notes of alice' > notes.txt`);
  let da: FakeDirectAdmin | undefined;
  const config: Record<string, unknown> = {};
  if (panel === 'cpanel') {
    fs.writeFileSync(path.join(root, 'var/cpanel/users', alice.username), `DNS=${alice.username}.test\nOWNER=resok\n`);
    fs.writeFileSync(path.join(root, 'var/cpanel/users', bob.username), `DNS=${bob.username}.test\nOWNER=root\n`);
    fs.writeFileSync(path.join(root, 'etc/trueuserowners'), `${alice.username}: resok\n${bob.username}: root\n`);
    fs.writeFileSync(path.join(root, 'var/cpanel/resellers'), 'resok:list-accts,software-tidemark\n');
  } else {
    extra.admin = account('tmxa');
    extra.reseller = account('tmxr');
    const conf = (a: TestAccount, type: string, creator: string): void => {
      const dir = path.join(root, 'usr/local/directadmin/data/users', a.username);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'user.conf'), `username=${a.username}\nusertype=${type}\ncreator=${creator}\ndomain=${a.username}.test\n`);
    };
    conf(extra.admin, 'admin', 'root');
    conf(extra.reseller, 'reseller', extra.admin.username);
    conf(alice, 'user', extra.reseller.username);
    conf(bob, 'user', extra.admin.username);
    da = await startFakeDirectAdmin();
    installDirectAdminCert(root, da.certPem);
    config.directadmin = { apiUrl: `https://127.0.0.1:${da.port}` };
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0::/root:/bin/bash\n${made.map(passwdLine).join('\n')}\n`);
  const port = await freePort();
  fs.mkdirSync(path.join(root, 'var/run'), { mode: 0o755 });
  fs.writeFileSync(path.join(root, DATA, 'config.json'), JSON.stringify({
    panel, rootPrefix: root, httpPort: port, logLevel: 'silent', ...config,
    socketPath: path.join(root, 'var/run/tidemark/tidemark.sock'), bridgeDir: path.join(root, BRIDGE),
  }));
  const dataDir = path.join(root, DATA);
  const dest = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'shown', '--type', 'local', '--path', dest]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'shown', '--structure', 'incremental', '--items', 'files', '--accounts', `${alice.username},${bob.username}`]));
  const run = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait'])) as { results: { account: string; snapshot: string }[] };
  const snaps = new Map(run.results.map((r) => [r.account, r.snapshot]));
  const daemon = await startInstalledDaemon(root, port);
  return { root, homeRoot, dest, port, daemon, made, alice, bob, snaps, ...(da ? { da } : {}), extra };
}

async function tearDown(f: Fixture | undefined): Promise<void> {
  if (!f) return;
  if (f.daemon.exitCode === null) { f.daemon.kill('SIGTERM'); await new Promise((r) => f.daemon.once('exit', r)); }
  await f.da?.close();
  for (const a of f.made) removeAccount(a);
  for (const d of [f.root, f.homeRoot, f.dest]) fs.rmSync(d, { recursive: true, force: true });
}

/** Every route with its parameters filled in with the victim's (bob's) things. */
function attackRequests(f: Fixture, base: Record<string, string>): Req[] {
  const victim = f.bob.username;
  const snap = f.snaps.get(victim)!;
  const reqs: Req[] = [];
  for (const r of routesFromSource()) {
    const p = r.path.replace(':destination', '1').replace(':account', victim).replace(':name', r.path.includes('/jobs/') ? 'nightly' : 'shown')
      .replace(/:id/, r.path.startsWith('/snapshots/:destination') || r.path.includes('/snapshots/') && !r.path.startsWith('/api') ? snap : '1').replace(/:[a-z]+/g, '1');
    const form = new URLSearchParams({ name: 'stolen', type: 'local', path: '/tmp/tidemark-stolen', account: victim, accounts: victim, destination: '1', target: victim, user: victim, enabled: 'on', visible: 'on' }).toString();
    reqs.push({ method: r.method, path: p, headers: { ...base, accept: 'text/html', 'content-type': r.path.startsWith('/api') ? 'application/json' : 'application/x-www-form-urlencoded' },
      ...(r.method === 'GET' ? {} : { body: r.path.startsWith('/api') ? JSON.stringify({ name: 'stolen', type: 'local', path: '/tmp/tidemark-stolen', account: victim }) : form }) });
  }
  return reqs;
}

/** What no one but the provider may see, and nothing of the victim's. */
function assertNothingLeaks(f: Fixture, role: 'user' | 'reseller', reqs: Req[], answers: Answer[]): void {
  assert.equal(answers.length, reqs.length);
  assert.ok(reqs.length >= 40, `the routes were found (${reqs.length})`);
  answers.forEach((a, i) => {
    const q = reqs[i]!;
    const what = `${role} ${q.method} ${q.path} -> ${a.status}`;
    if (q.path.startsWith('/api')) {
      assert.equal(a.status, 404, what);
      assert.doesNotMatch(a.ctype, /json/, what);
    }
    if (q.path.startsWith('/admin/destinations') || q.path.startsWith('/admin/jobs') || (role === 'user' && q.path.startsWith('/admin'))) {
      assert.ok(a.status === 404 || a.status === 403, what);
    }
    // A page may echo the address it was asked for (the language form's "back"): that is the attacker's own text.
    const text = [q.path, encodeURIComponent(q.path), q.path.replace(/\//g, '&#x2F;')].reduce((t, echo) => t.split(echo).join(''), a.text);
    assert.ok(!text.includes(f.dest), `${what}: the destination's path`);
    assert.ok(!text.includes(f.snaps.get(f.bob.username)!), `${what}: bob's snapshot`);
    assert.ok(!text.includes('secret of bob') && !text.includes('secret.txt'), `${what}: bob's files`);
    assert.ok(typeof a.status === 'number' && a.status < 500, `${what}: no server error`);
  });
}

function assertNothingChanged(f: Fixture): void {
  const dataDir = path.join(f.root, DATA);
  const dests = ok(cli(dataDir, ['destination', 'list'])) as { name: string; enabled?: boolean }[];
  assert.deepEqual(dests.map((d) => d.name), ['shown'], 'no destination was added or removed');
  assert.deepEqual((ok(cli(dataDir, ['job', 'list'])) as { name: string }[]).map((j) => j.name), ['nightly']);
  assert.equal(fs.existsSync('/tmp/tidemark-stolen'), false);
  assert.equal(fs.readFileSync(path.join(f.bob.home, 'secret.txt'), 'utf8'), 'secret of bob');
  const tasks = ok(cli(dataDir, ['task', 'list'])) as { type: string; account?: string }[] | { tasks: unknown[] };
  const list = Array.isArray(tasks) ? tasks : (tasks.tasks as { type: string; account?: string }[]);
  assert.ok(!list.some((t) => t.type !== 'backup' && JSON.stringify(t).includes(f.bob.username)), `no task on bob's account: ${JSON.stringify(list)}`);
}

let cp: Fixture | undefined;
let da: Fixture | undefined;
before(async () => { cp = await setUp('cpanel'); da = await setUp('directadmin'); });
after(async () => { await tearDown(cp); await tearDown(da); });

test('every page and API route through WHM as a reseller: only its own accounts, never the provider\'s things or the API', async () => {
  const f = cp!;
  const sock = path.join(f.root, 'var/run/tidemark/tidemark.sock');
  const base = { 'x-tidemark-whm-user': 'resok', 'x-tidemark-base': 'index.cgi' };
  const reqs = attackRequests(f, base);
  const r = await runAs(undefined, { socket: sock, requests: reqs, tokenFrom: { method: 'GET', path: '/admin', headers: base } });
  assert.ok(r.csrf, 'the attacker holds a valid form token');
  assertNothingLeaks(f, 'reseller', reqs, r.out);
  assertNothingChanged(f);
});

test('every page and API route through the account page bridge as an account: its own things only', async () => {
  const f = cp!;
  const sock = path.join(f.root, BRIDGE, 'bridge.sock');
  const base = { 'x-tidemark-account': f.alice.username, 'x-tidemark-base': 'index.live.pl' };
  const reqs = attackRequests(f, base);
  const r = await runAs(f.alice, { socket: sock, requests: reqs, tokenFrom: { method: 'GET', path: '/snapshots', headers: base } });
  assert.ok(r.csrf);
  assertNothingLeaks(f, 'user', reqs, r.out);
  assertNothingChanged(f);
});

test('every route through DirectAdmin\'s pages as a user and as a reseller (with their sessions): nothing above their role', async () => {
  const f = da!;
  const sock = path.join(f.root, BRIDGE, 'bridge.sock');
  for (const [who, role, level] of [[f.alice, 'user', 'user'], [f.extra!.reseller!, 'reseller', 'reseller']] as const) {
    const login = f.da!.login(who.username, role);
    const base = { 'x-tidemark-account': who.username, 'x-tidemark-level': level, 'x-tidemark-base': 'index.raw', 'x-tidemark-da-session-id': login.SESSION_ID, 'x-tidemark-da-session-key': login.SESSION_KEY };
    const reqs = attackRequests(f, base);
    const r = await runAs(who, { socket: sock, requests: reqs, tokenFrom: { method: 'GET', path: level === 'user' ? '/snapshots' : '/admin', headers: base } });
    assert.ok(r.csrf, `${role} holds a form token`);
    assertNothingLeaks(f, role, reqs, r.out);
    // The same process asking for a higher level with its own session: refused.
    const up = await runAs(who, { socket: sock, requests: [{ method: 'GET', path: '/admin', headers: { ...base, 'x-tidemark-level': 'admin' } }] });
    assert.equal(up.out[0]!.status, 403);
  }
  // The admin with its session gets the provider's pages (the sweep above is not vacuous).
  const admin = f.extra!.admin!;
  const login = f.da!.login(admin.username, 'admin');
  const ok200 = await runAs(admin, { socket: sock, requests: [{ method: 'GET', path: '/admin/destinations', headers: { 'x-tidemark-account': admin.username, 'x-tidemark-level': 'admin', 'x-tidemark-base': 'index.raw', 'x-tidemark-da-session-id': login.SESSION_ID, 'x-tidemark-da-session-key': login.SESSION_KEY } }] });
  assert.equal(ok200.out[0]!.status, 200);
  assert.ok(ok200.out[0]!.text.includes('shown'));
  assertNothingChanged(f);
});

test('forged headers on the proof channel: another account\'s name, a WHM name, someone else\'s session, oversized values', async () => {
  const f = da!;
  const sock = path.join(f.root, BRIDGE, 'bridge.sock');
  const adminLogin = f.da!.login(f.extra!.admin!.username, 'admin');
  const h = (x: Record<string, string>): Req => ({ method: 'GET', path: '/snapshots', headers: { 'x-tidemark-base': 'index.raw', accept: 'text/html', ...x } });
  const reqs = [
    h({ 'x-tidemark-account': f.bob.username }),
    h({ 'x-tidemark-account': f.extra!.admin!.username, 'x-tidemark-level': 'admin', 'x-tidemark-da-session-id': adminLogin.SESSION_ID, 'x-tidemark-da-session-key': adminLogin.SESSION_KEY }),
    h({ 'x-tidemark-account': f.alice.username, 'x-tidemark-level': 'admin', 'x-tidemark-da-session-id': adminLogin.SESSION_ID, 'x-tidemark-da-session-key': adminLogin.SESSION_KEY }),
    h({ 'x-tidemark-whm-user': 'root' }),
    h({ 'x-tidemark-account': f.alice.username, 'x-tidemark-da-session-id': 'x'.repeat(5000), 'x-tidemark-da-session-key': 'y' }),
    h({ 'x-tidemark-account': '../' + f.alice.username }),
  ];
  const r = await runAs(f.alice, { socket: sock, requests: reqs });
  r.out.forEach((a, i) => {
    assert.ok(a.status === 403 || a.status === 400 || a.status === 'ECONNRESET' || a.status === 'ERR_INVALID_CHAR', `forgery ${i}: ${a.status}`);
    assert.ok(!a.text.includes(f.snaps.get(f.bob.username)!));
  });
});

test('races: two accounts at once on the proof channel each get their own pages', async () => {
  const f = cp!;
  const sock = path.join(f.root, BRIDGE, 'bridge.sock');
  const reqsOf = (a: TestAccount): Req[] => Array.from({ length: 8 }, () => ({ method: 'GET', path: '/snapshots', headers: { 'x-tidemark-account': a.username, 'x-tidemark-base': 'index.live.pl', accept: 'text/html' } }));
  const [ra, rb] = await Promise.all([runAs(f.alice, { socket: sock, requests: reqsOf(f.alice), parallel: true }), runAs(f.bob, { socket: sock, requests: reqsOf(f.bob), parallel: true })]);
  for (const [r, me, other] of [[ra, f.alice, f.bob], [rb, f.bob, f.alice]] as const) {
    for (const a of r.out) {
      assert.equal(a.status, 200);
      assert.ok(a.text.includes(f.snaps.get(me.username)!) && !a.text.includes(f.snaps.get(other.username)!));
    }
  }
});

test('regression: 2,000 pending challenges evicted others\' — a flood of connections from one uid does not stop another uid', async () => {
  const f = cp!;
  const sock = path.join(f.root, BRIDGE, 'bridge.sock');
  const page: Req = { method: 'GET', path: '/snapshots', headers: { 'x-tidemark-account': f.alice.username, 'x-tidemark-base': 'index.live.pl', accept: 'text/html' } };
  // alice holds 200 idle connections, and asks for 30 pages at once on top.
  const flood = runAs(f.alice, { socket: sock, hold: 200, requests: Array.from({ length: 30 }, () => page), parallel: true });
  await sleep(700);
  const bobPage: Req = { ...page, headers: { ...page.headers, 'x-tidemark-account': f.bob.username } };
  const b = await runAs(f.bob, { socket: sock, requests: [bobPage, bobPage] });
  for (const a of b.out) {
    assert.equal(a.status, 200, 'bob is served while alice floods');
    assert.ok(a.text.includes(f.snaps.get(f.bob.username)!));
  }
  const r = await flood;
  assert.ok(r.refused >= 150, `most of alice's idle connections were refused with 429 (${r.refused})`);
  assert.ok(r.out.every((a) => a.status === 429 || a.status === 200 || a.status === 'ECONNRESET'), JSON.stringify(r.out.map((a) => a.status)));
  assert.ok(r.out.some((a) => a.status === 429), 'over the limit: a clear 429');
  assert.ok(r.out.filter((a) => a.status === 429).every((a) => /too many requests/i.test(a.text)));
  // Once the flood is over, alice is served again.
  const again = await runAs(f.alice, { socket: sock, requests: [page] });
  assert.equal(again.out[0]!.status, 200);
});
