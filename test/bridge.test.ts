import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, asAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDestinationDir, ok } from './support/cli.js';
import { install, makeCpanelTree, makeDirectAdminTree } from './support/panel-tree.js';
import { installDirectAdminCert, makeCertificate, startFakeDirectAdmin } from './support/fake-directadmin.js';
import { freePort } from './support/free-port.js';
import { BRIDGE, startInstalledDaemon } from './support/installed-daemon.js';

// The panel pages run exactly as the panels run them: installed by the installer into a
// simulated panel tree, started as CGI (or DirectAdmin ".raw" pages) with the panel's
// environment, as root for WHM and as the account's own Unix user for the account pages,
// against the installed daemon.

const DATA = 'var/lib/tidemark';
const WHM_CGI = 'usr/local/cpanel/whostmgr/docroot/cgi/tidemark/index.cgi';
const JUPITER = 'usr/local/cpanel/base/frontend/jupiter/tidemark/index.live.pl';
const DA_PLUGIN = 'usr/local/directadmin/plugins/tidemark';

interface Page { status: number; headers: Map<string, string[]>; body: Buffer; text: string }

/** Splits a CGI answer (`Status:` line) or a raw HTTP answer (`HTTP/1.1` line) into its parts. */
function parseAnswer(out: Buffer): Page {
  const end = out.indexOf('\r\n\r\n');
  assert.ok(end > 0, `an answer with headers, got: ${out.toString('utf8').slice(0, 300)}`);
  const lines = out.subarray(0, end).toString('latin1').split('\r\n');
  const first = lines.shift()!;
  const m = /^(?:Status:|HTTP\/1\.1) (\d{3})\b/.exec(first);
  assert.ok(m, `a status line, got ${first}`);
  const headers = new Map<string, string[]>();
  for (const l of lines) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), l.slice(i + 1).trim()]);
  }
  const body = out.subarray(end + 4);
  return { status: Number(m[1]), headers, body, text: body.toString('utf8') };
}

interface RunOptions { as?: TestAccount; perl?: boolean; env?: Record<string, string>; input?: string }

/** Runs a panel page with a CGI environment (nothing of this process's environment leaks in). */
function runPage(file: string, o: RunOptions = {}): Page {
  const cmd = [...(o.perl ? ['perl'] : []), file];
  const argv = o.as ? ['setpriv', '--reuid', String(o.as.uid), '--regid', String(o.as.gid), '--clear-groups', ...cmd] : cmd;
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'GET', QUERY_STRING: '', HTTP_ACCEPT: 'text/html', ...o.env };
  const r = spawnSync(argv[0]!, argv.slice(1), { env, cwd: '/', input: o.input ?? '', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${file} exited ${r.status}: ${r.stderr?.toString()}`);
  return parseAnswer(r.stdout);
}

const cgiGet = (query: string, extra: Record<string, string> = {}): Record<string, string> => ({ QUERY_STRING: query, ...extra });
function cgiPost(query: string, form: Record<string, string | string[]>, extra: Record<string, string> = {}): { env: Record<string, string>; input: string } {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  const input = p.toString();
  return { env: { REQUEST_METHOD: 'POST', QUERY_STRING: query, CONTENT_TYPE: 'application/x-www-form-urlencoded', CONTENT_LENGTH: String(Buffer.byteLength(input)), ...extra }, input };
}

/** The query string of a link the page rendered (`index.cgi?tm=…&amp;p=…`). */
function linkQuery(html: string, pattern: RegExp): string {
  const m = pattern.exec(html);
  assert.ok(m, `a link matching ${pattern}`);
  const href = m[1]!.replace(/&amp;/g, '&');
  return href.slice(href.indexOf('?') + 1);
}
const csrfOf = (html: string): string => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  assert.ok(m, 'a CSRF token in the page');
  return m[1]!;
};

function passwdLine(a: TestAccount): string {
  return `${a.username}:x:${a.uid}:${a.gid}::${a.home}:/usr/sbin/nologin`;
}

async function stopDaemon(d: ChildProcess | undefined): Promise<void> {
  if (d && d.exitCode === null) {
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
  }
}

/** The DirectAdmin tree's configuration with DirectAdmin's API at another port. */
function writeConfig2(root: string, port: number, daPort: number): void {
  const file = path.join(root, DATA, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(file, JSON.stringify({ ...c, httpPort: port, directadmin: { apiUrl: `https://127.0.0.1:${daPort}` } }));
}

function writeConfig(root: string, panel: string, port: number, extra: Record<string, unknown> = {}): void {
  fs.mkdirSync(path.join(root, 'var/run'), { mode: 0o755 }); // as on every server
  fs.writeFileSync(path.join(root, DATA, 'config.json'), JSON.stringify({
    panel, rootPrefix: root, httpPort: port, logLevel: 'silent',
    socketPath: path.join(root, 'var/run/tidemark/tidemark.sock'), bridgeDir: path.join(root, BRIDGE), ...extra,
  }));
}

/** A request straight to one of the daemon's Unix sockets, as a process of `as` (root when absent) would send it. */
function socketRequest(socketPath: string, method: string, target: string, headers: Record<string, string>, body = '', as?: TestAccount): { status: number; text: string } {
  const script = `
    const http = require('http');
    const [sock, method, target, headers, body] = process.argv.slice(1);
    const r = http.request({ socketPath: sock, method, path: target, headers: { host: 'tidemark', ...JSON.parse(headers) } }, (res) => {
      let text = ''; res.on('data', (d) => { text += d; }); res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, text })));
    });
    r.on('error', (e) => process.stdout.write(JSON.stringify({ status: e.code, text: '' })));
    r.end(body);`;
  const argv = [...(as ? ['setpriv', '--reuid', String(as.uid), '--regid', String(as.gid), '--clear-groups'] : []), process.execPath, '-e', script, socketPath, method, target, JSON.stringify(headers), body];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; text: string };
}

/** Backs the accounts up to the tree's first destination (id 1, as the pages address it). */
function backUp(root: string, accounts: TestAccount[]): { dest: string; snapshots: Map<string, string> } {
  const dataDir = path.join(root, DATA);
  const dest = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'shown', '--type', 'local', '--path', dest]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'shown', '--structure', 'incremental', '--items', 'files', '--accounts', accounts.map((a) => a.username).join(',')]));
  const run = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait'])) as { results: { account: string; snapshot: string }[] };
  const snapshots = new Map(run.results.map((r) => [r.account, r.snapshot]));
  for (const a of accounts) assert.ok(snapshots.get(a.username), `a snapshot of ${a.username}`);
  return { dest, snapshots };
}

// ---------------------------------------------------------------------------------------------
// cPanel & WHM

interface CpanelFixture { root: string; homeRoot: string; alice: TestAccount; bob: TestAccount; port: number; daemon: ChildProcess; snaps: Map<string, string>; dest: string }
let cp: CpanelFixture | undefined;

before(async () => {
  const root = makeCpanelTree();
  install(root);
  const homeRoot = makeHomeRoot();
  const alice = createAccount(homeRoot, 'tmb');
  const bob = createAccount(homeRoot, 'tmb');
  asAccount(alice, `mkdir -p public_html && printf 'alice page' > public_html/index.html && printf 'notes of alice' > notes.txt`);
  asAccount(bob, `printf 'secret of bob' > secret.txt && chmod 644 secret.txt`);
  fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0::/root:/bin/bash\n${passwdLine(alice)}\n${passwdLine(bob)}\n`);
  fs.writeFileSync(path.join(root, 'var/cpanel/users', alice.username), `DNS=${alice.username}.test\nOWNER=resok\nPLAN=default\n`);
  fs.writeFileSync(path.join(root, 'var/cpanel/users', bob.username), `DNS=${bob.username}.test\nOWNER=root\n`);
  fs.writeFileSync(path.join(root, 'etc/trueuserowners'), `${alice.username}: resok\n${bob.username}: root\n`);
  // WHM's reseller privileges: resok holds Tidemark's, resno does not, boss has "all".
  fs.writeFileSync(path.join(root, 'var/cpanel/resellers'), 'resok:list-accts,software-tidemark\nresno:list-accts,create-acct,software-other\nboss:all\n');
  const port = await freePort();
  writeConfig(root, 'cpanel', port);
  const { dest, snapshots } = backUp(root, [alice, bob]);
  // What an older version left, and what a local user planted in it: the sticky, world-
  // writable proofs/ folder with alice's tree in it (and a link out of it).
  const proofs = path.join(root, BRIDGE, 'proofs');
  fs.mkdirSync(proofs, { recursive: true });
  fs.chmodSync(path.join(root, BRIDGE), 0o755);
  fs.chmodSync(proofs, 0o1733);
  asAccount(alice, `mkdir -p ${proofs}/x/sub && touch ${proofs}/x/sub/f1 ${proofs}/x/sub/f2 && ln -s ${bob.home} ${proofs}/x/link`);
  const daemon = await startInstalledDaemon(root, port);
  cp = { root, homeRoot, alice, bob, port, daemon, snaps: snapshots, dest };
});

after(async () => {
  if (!cp) return;
  await stopDaemon(cp.daemon);
  removeAccount(cp.alice);
  removeAccount(cp.bob);
  for (const d of [cp.root, cp.homeRoot, cp.dest]) fs.rmSync(d, { recursive: true, force: true });
});

const whm = (user: string | null, env: Record<string, string> = {}, input?: string): Page =>
  runPage(path.join(cp!.root, WHM_CGI), { perl: true, env: { ...(user === null ? {} : { REMOTE_USER: user }), cp_security_token: '/cpsess0123456789', ...env }, ...(input !== undefined ? { input } : {}) });
const jupiter = (as: TestAccount, env: Record<string, string> = {}, input?: string): Page =>
  runPage(path.join(cp!.root, JUPITER), { perl: true, as, env: { REMOTE_USER: as.username, cp_security_token: '/cpsess9876543210', ...env }, ...(input !== undefined ? { input } : {}) });

test('WHM as root: the admin pages come through the CGI, every link and redirect points back at it', () => {
  const { alice, bob, snaps } = cp!;
  const start = whm('root');
  assert.equal(start.status, 303);
  assert.deepEqual(start.headers.get('location'), ['index.cgi?tm=%2Fadmin']);
  const dash = whm('root', cgiGet('tm=%2Fadmin'));
  assert.equal(dash.status, 200, dash.text);
  assert.match(dash.headers.get('content-type')![0]!, /^text\/html/);
  assert.match(dash.text, /href="index\.cgi\?tm=%2Fadmin%2Fdestinations"/);
  assert.match(dash.text, /<link rel="stylesheet" href="index\.cgi\?tm=%2Fstatic%2Ftidemark\.css">/);
  assert.doesNotMatch(dash.text, /(href|src|action)="\/(?!\/)/, 'no link leaves the bridge');
  const list = whm('root', cgiGet('tm=%2Fsnapshots'));
  assert.equal(list.status, 200);
  assert.ok(list.text.includes(snaps.get(alice.username)!) && list.text.includes(snaps.get(bob.username)!), 'root sees every account');
  // The stylesheet comes through the bridge as well.
  const css = whm('root', cgiGet('tm=%2Fstatic%2Ftidemark.css'));
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type')![0]!, /^text\/css/);
  // A reseller holding "all" is root's equal in WHM.
  assert.equal(whm('boss', cgiGet('tm=%2Fadmin')).status, 200);
});

test('WHM as a reseller: with Tidemark\'s privilege only its own accounts; without it, refused', () => {
  const { alice, bob, snaps } = cp!;
  const list = whm('resok', cgiGet('tm=%2Fsnapshots'));
  assert.equal(list.status, 200, list.text);
  assert.ok(list.text.includes(snaps.get(alice.username)!), 'the reseller sees its account');
  assert.ok(!list.text.includes(snaps.get(bob.username)!), 'and not root\'s account');
  assert.equal(whm('resok', cgiGet('tm=%2Fadmin')).status, 200, 'a reseller has its own provider dashboard');
  assert.equal(whm('resok', cgiGet('tm=%2Fadmin%2Fdestinations')).status, 404, 'the provider\'s destinations do not exist for a reseller');
  const other = whm('resok', cgiGet(`tm=${encodeURIComponent(`/snapshots/1/${bob.username}/${snaps.get(bob.username)}`)}`));
  assert.equal(other.status, 404);

  for (const who of ['resno', 'mallory', alice.username, '']) {
    const refused = whm(who, cgiGet('tm=%2Fsnapshots'));
    assert.equal(refused.status, 403, `${who || '(empty)'} is refused`);
    assert.ok(!refused.text.includes(snaps.get(alice.username)!) && !refused.text.includes(snaps.get(bob.username)!));
  }
  assert.equal(whm(null, cgiGet('tm=%2Fsnapshots')).status, 403, 'no REMOTE_USER, no page');
  // What the browser can send does not make a reseller without the privilege anyone else.
  const forged = whm('resno', cgiGet('tm=%2Fsnapshots&user=root', { HTTP_X_TIDEMARK_WHM_USER: 'root', HTTP_COOKIE: 'tidemark_session=whatever' }));
  assert.equal(forged.status, 403);
});

test('Jupiter page as the account: its own snapshots, browsing, a download, forms with their CSRF token', () => {
  const { alice, bob, snaps } = cp!;
  const list = jupiter(alice, cgiGet('tm=%2Fsnapshots'));
  assert.equal(list.status, 200, list.text);
  assert.ok(list.text.includes(snaps.get(alice.username)!));
  assert.ok(!list.text.includes(snaps.get(bob.username)!), 'never another account\'s snapshot');
  assert.ok(!list.text.includes('/logout'), 'signing out is the panel\'s business');
  // Follow the snapshot's link as the browser would.
  const browse = jupiter(alice, cgiGet(linkQuery(list.text, /href="(index\.live\.pl\?tm=%2Fsnapshots%2F[^"]+)"/)));
  assert.equal(browse.status, 200);
  assert.match(browse.text, /notes\.txt/);
  assert.match(browse.text, /action="index\.live\.pl\?tm=%2Fsnapshots%2F\d+%2F[^"]+%2Fdownload"/);

  // A download: a form posted through the page, streamed back.
  const action = linkQuery(browse.text, /action="(index\.live\.pl\?tm=[^"]+%2Fdownload)"/);
  const post = cgiPost(action, { _csrf: csrfOf(browse.text), path: Buffer.from('notes.txt').toString('base64url') });
  const dl = jupiter(alice, post.env, post.input);
  assert.equal(dl.status, 200, dl.text.slice(0, 300));
  // One file comes as itself, under its own name, through the bridge as directly.
  assert.match(dl.headers.get('content-disposition')![0]!, /attachment;.*notes\.txt/);
  assert.equal(dl.body.toString(), 'notes of alice');

  // Without the token, a form does nothing.
  const noToken = cgiPost('tm=%2Flocale', { lng: 'de', back: '/snapshots' });
  assert.equal(jupiter(alice, noToken.env, noToken.input).status, 403);
  // With it, the language cookie (and only Tidemark's) comes back, and the redirect stays on the page.
  const lang = cgiPost('tm=%2Flocale', { _csrf: csrfOf(list.text), lng: 'de', back: '/snapshots' });
  const switched = jupiter(alice, lang.env, lang.input);
  assert.equal(switched.status, 303);
  assert.deepEqual(switched.headers.get('location'), ['index.live.pl?tm=%2Fsnapshots']);
  assert.match(switched.headers.get('set-cookie')![0]!, /^tidemark_lang=de;/);
  const german = jupiter(alice, cgiGet('tm=%2Fsnapshots', { HTTP_COOKIE: 'cpsession=secret-of-cpanel; tidemark_lang=de' }));
  assert.match(german.text, /<html lang="de">/);
  // A token of another panel session is refused: tokens are tied to the panel's login.
  const stale = cgiPost('tm=%2Flocale', { _csrf: csrfOf(list.text), lng: 'fr', back: '/snapshots' }, { cp_security_token: '/cpsess1111111111' });
  assert.equal(jupiter(alice, stale.env, stale.input).status, 403);
});

test('Jupiter page: nothing the browser or the environment says makes account A into B, a reseller or root', () => {
  const { alice, bob, snaps } = cp!;
  const forged = jupiter(alice, cgiGet('tm=%2Fsnapshots&user=' + bob.username, {
    REMOTE_USER: bob.username, USER: bob.username, LOGNAME: bob.username, HOME: bob.home,
    HTTP_X_TIDEMARK_WHM_USER: 'root', HTTP_X_TIDEMARK_ACCOUNT: bob.username, HTTP_X_TIDEMARK_LEVEL: 'admin', HTTP_COOKIE: 'tidemark_session=forged',
  }));
  assert.equal(forged.status, 200);
  assert.ok(forged.text.includes(snaps.get(alice.username)!), 'still alice');
  assert.ok(!forged.text.includes(snaps.get(bob.username)!), 'never bob');
  assert.match(forged.text, new RegExp(alice.username));
  // Bob's snapshot by its address: as if it did not exist.
  const direct = jupiter(alice, cgiGet(`tm=${encodeURIComponent(`/snapshots/1/${bob.username}/${snaps.get(bob.username)}`)}`));
  assert.equal(direct.status, 404);
  assert.ok(!direct.text.includes('secret.txt'));
  // The provider pages do not exist for an account holder.
  assert.equal(jupiter(alice, cgiGet('tm=%2Fadmin')).status, 404);
  // A query that tries to leave the daemon's pages lands on its start page.
  const away = jupiter(alice, cgiGet('tm=%2F%2Fevil.example%2Fx'));
  assert.equal(away.status, 303);
});

test('regression: the WHM page bridge handed the root JSON API to anyone who could open the WHM page', () => {
  const { root, alice, snaps } = cp!;
  const countDestinations = (): number => (ok(cli(path.join(root, DATA), ['destination', 'list'])) as unknown[]).length;
  const before = countDestinations();
  // Through the CGI, as a reseller: reading and creating destinations by the API's address.
  const read = whm('resok', cgiGet('tm=%2Fapi%2Fv1%2Fdestinations', { HTTP_ACCEPT: 'application/json' }));
  assert.notEqual(read.status, 200, read.text);
  assert.ok(!read.text.includes('shown') && !read.text.includes('"type"'), 'no destination is shown');
  const body = JSON.stringify({ name: 'stolen', type: 'local', path: '/tmp/stolen-by-reseller' });
  const create = whm('resok', { REQUEST_METHOD: 'POST', QUERY_STRING: 'tm=%2Fapi%2Fv1%2Fdestinations', CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(body.length) }, body);
  assert.notEqual(create.status, 201, create.text);
  for (const trick of ['%2Fapi%2Fv1%2Fsnapshots', '%2FAPI%2Fv1%2Fsnapshots', '%2F.%2Fapi%2Fv1%2Fsnapshots', '%2Fadmin%2F..%2Fapi%2Fv1%2Fsnapshots', '%2F%252e%252e%2Fapi%2Fv1%2Fsnapshots', '%2F%2Fapi%2Fv1%2Fsnapshots']) {
    const r = whm('resok', cgiGet(`tm=${trick}`, { HTTP_ACCEPT: 'application/json' }));
    assert.ok(!(r.headers.get('content-type') ?? [''])[0]!.includes('json'), `${trick}: no API answer`);
    assert.doesNotMatch(r.text, /^\s*[[{]/, `${trick}: no JSON`);
    assert.ok(!r.text.includes(snaps.get(alice.username)!));
  }
  // Straight to the root socket with a bridge header (a forwarder that let the path through):
  // the daemon itself refuses, for every WHM user, root included.
  const sock = path.join(root, 'var/run/tidemark/tidemark.sock');
  for (const user of ['resok', 'root', 'resno', '']) {
    for (const [method, payload] of [['GET', ''], ['POST', body]] as const) {
      const r = socketRequest(sock, method, '/api/v1/destinations', { 'x-tidemark-whm-user': user, 'x-tidemark-base': 'index.cgi', 'content-type': 'application/json', accept: 'application/json' }, payload);
      assert.ok(r.status === 404 || r.status === 403, `${method} as ${user || '(empty)'}: ${r.status} ${r.text}`);
      assert.ok(!r.text.includes('shown'), 'nothing of the destinations');
    }
  }
  // Any bridge header is enough to leave the root API: the base alone, or the proof channel's.
  assert.equal(socketRequest(sock, 'GET', '/api/v1/destinations', { 'x-tidemark-base': 'index.cgi' }).status, 404);
  assert.equal(socketRequest(sock, 'GET', '/api/v1/destinations', { 'x-tidemark-account': alice.username }).status, 404);
  assert.match(socketRequest(sock, 'GET', '/api/v1/health', { 'x-tidemark-whm-user': 'root' }).text, /not available through a panel page/);
  assert.equal(countDestinations(), before, 'nothing was created');
  assert.equal(fs.existsSync('/tmp/stolen-by-reseller'), false);
  // The CLI's own requests (no bridge header) still act as root on that socket.
  assert.equal(socketRequest(sock, 'GET', '/api/v1/destinations', { accept: 'application/json' }).status, 200);
});

test('regression: root swept the world-writable proofs folder recursively (no folder under the bridge dir is writable by others; nothing a user plants is removed)', () => {
  const { root, alice, bob } = cp!;
  const dir = path.join(root, BRIDGE);
  const st = fs.lstatSync(dir);
  assert.equal(st.uid, 0);
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(fs.statSync(path.join(dir, 'bridge.sock')).mode & 0o777, 0o666);
  // The old proofs/ folder: closed, and what alice planted in it left alone (never walked).
  const proofs = path.join(dir, 'proofs');
  assert.equal(fs.lstatSync(proofs).mode & 0o7777, 0o700, 'the old proofs folder is closed to others');
  for (const f of ['x/sub/f1', 'x/sub/f2']) assert.ok(fs.existsSync(path.join(proofs, f)), `${f} was not removed`);
  assert.ok(fs.lstatSync(path.join(proofs, 'x/link')).isSymbolicLink());
  assert.ok(fs.existsSync(path.join(bob.home, 'secret.txt')));
  // Everything under the bridge dir but the socket: root's, writable by nobody else (the
  // planted folder is alice's own, unreachable now that its parent is 0700).
  for (const name of fs.readdirSync(dir)) {
    const e = fs.lstatSync(path.join(dir, name));
    if (name === 'bridge.sock') { assert.ok(e.isSocket()); continue; }
    assert.equal(e.uid, 0, name);
    assert.equal(e.mode & 0o022, 0, `${name} is not writable by others`);
  }
  // A local user cannot create anything there.
  const plant = spawnSync('setpriv', ['--reuid', String(alice.uid), '--regid', String(alice.gid), '--clear-groups', 'sh', '-c', `touch ${dir}/planted; touch ${proofs}/planted`], { encoding: 'utf8' });
  assert.equal(fs.existsSync(path.join(dir, 'planted')), false, plant.stderr);
  assert.equal(fs.existsSync(path.join(proofs, 'planted')), false);
});

test('the proof channel: the kernel\'s uid decides; a process of uid X claiming account Y is refused, claiming X works', () => {
  const { root, alice, bob, snaps } = cp!;
  const sock = path.join(root, BRIDGE, 'bridge.sock');
  const page = (as: TestAccount | undefined, headers: Record<string, string>): { status: number; text: string } =>
    socketRequest(sock, 'GET', '/snapshots', { 'x-tidemark-base': 'index.live.pl', accept: 'text/html', ...headers }, '', as);
  const own = page(alice, { 'x-tidemark-account': alice.username });
  assert.equal(own.status, 200, own.text);
  assert.ok(own.text.includes(snaps.get(alice.username)!) && !own.text.includes(snaps.get(bob.username)!));
  const claimBob = page(alice, { 'x-tidemark-account': bob.username });
  assert.equal(claimBob.status, 403, 'alice cannot be bob');
  assert.ok(!claimBob.text.includes(snaps.get(bob.username)!));
  assert.equal(page(bob, { 'x-tidemark-account': bob.username }).status, 200, 'bob can');
  // Root is no account, and the names of others are no proof.
  assert.equal(page(undefined, { 'x-tidemark-account': alice.username }).status, 403);
  assert.equal(page(alice, { 'x-tidemark-account': 'root' }).status, 403);
  assert.equal(page(alice, {}).status, 403, 'no account named');
  // cPanel accounts are never resellers or admins through a page, sessions or not.
  for (const level of ['reseller', 'admin']) {
    assert.equal(page(alice, { 'x-tidemark-account': alice.username, 'x-tidemark-level': level, 'x-tidemark-da-session-id': 'a', 'x-tidemark-da-session-key': 'b' }).status, 403, level);
  }
  assert.equal(page(alice, { 'x-tidemark-account': alice.username, 'x-tidemark-level': 'god' }).status, 403);
  // The WHM name counts on the root-only socket alone.
  assert.equal(page(alice, { 'x-tidemark-whm-user': 'root' }).status, 403);
  assert.equal(page(alice, { 'x-tidemark-whm-user': 'root', 'x-tidemark-account': alice.username }).text.includes(snaps.get(bob.username)!), false);
  // The old challenge address is gone.
  assert.notEqual(socketRequest(sock, 'POST', '/bridge/challenge', { 'content-type': 'application/json' }, JSON.stringify({ user: alice.username, level: 'user' }), alice).status, 200);
  // And the root-only socket stays closed to accounts.
  const probe = spawnSync('setpriv', ['--reuid', String(alice.uid), '--regid', String(alice.gid), '--clear-groups', process.execPath, '-e',
    `require('net').connect(${JSON.stringify(path.join(root, 'var/run/tidemark/tidemark.sock'))}).on('error', (e) => { console.log(e.code); }).on('connect', () => { console.log('connected'); process.exit(0); })`], { encoding: 'utf8' });
  assert.equal(probe.stdout.trim(), 'EACCES');
});

test('the HTTP port ignores every bridge header: no session, no page', async () => {
  const { port, alice, snaps } = cp!;
  const headers = { accept: 'text/html', 'x-tidemark-whm-user': 'root', 'x-tidemark-account': alice.username, 'x-tidemark-base': 'index.cgi', 'x-tidemark-panel-session': 'x' };
  for (const p of ['/snapshots', '/admin', `/snapshots/1/${alice.username}/${snaps.get(alice.username)}`]) {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers, redirect: 'manual' });
    const text = await res.text();
    assert.equal(res.status, 401, p);
    assert.ok(!text.includes(snaps.get(alice.username)!));
  }
  const ch = await fetch(`http://127.0.0.1:${port}/bridge/challenge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: alice.username, level: 'user' }) });
  assert.notEqual(ch.status, 200, 'challenges are handed out on the bridge socket only');
});

// ---------------------------------------------------------------------------------------------
// DirectAdmin

test('DirectAdmin: user, reseller and admin pages as their own Unix users, each only at the level user.conf allows', async () => {
  const root = makeDirectAdminTree();
  const homeRoot = makeHomeRoot();
  const made: TestAccount[] = [];
  let daemon: ChildProcess | undefined;
  let dest = '';
  const da = await startFakeDirectAdmin();
  try {
    install(root);
    installDirectAdminCert(root, da.certPem);
    const account = (prefix: string): TestAccount => { const a = createAccount(homeRoot, prefix); made.push(a); return a; };
    const admin = account('tmda');
    const reseller = account('tmdr');
    const carol = account('tmdu');
    const dave = account('tmdu');
    asAccount(carol, `printf 'carol file' > carol.txt`);
    asAccount(dave, `printf 'dave file' > dave.txt`);
    fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0::/root:/bin/bash\n${made.map(passwdLine).join('\n')}\n`);
    const userConf = (a: TestAccount, type: string, creator: string): void => {
      const dir = path.join(root, 'usr/local/directadmin/data/users', a.username);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'user.conf'), `username=${a.username}\nusertype=${type}\ncreator=${creator}\ndomain=${a.username}.test\nsuspended=no\n`);
    };
    userConf(admin, 'admin', 'root');
    userConf(reseller, 'reseller', admin.username);
    userConf(carol, 'user', reseller.username);
    userConf(dave, 'user', admin.username);
    const port = await freePort();
    writeConfig(root, 'directadmin', port, { directadmin: { apiUrl: `https://127.0.0.1:${da.port}` } });
    const backup = backUp(root, [carol, dave]);
    dest = backup.dest;
    const snaps = backup.snapshots;
    daemon = await startInstalledDaemon(root, port);

    const page = (level: string, as: TestAccount, env: Record<string, string> = {}, input?: string): Page =>
      runPage(path.join(root, DA_PLUGIN, level, 'index.raw'), { as, env: { USERNAME: as.username, ...env }, ...(input !== undefined ? { input } : {}) });

    // The page inside the skin frames the raw page.
    const inSkin = spawnSync(path.join(root, DA_PLUGIN, 'user/index.html'), { encoding: 'utf8' });
    assert.match(inSkin.stdout, /<iframe src="index\.raw\?tm=%2F"/);

    const mine = page('user', carol, cgiGet('tm=%2Fsnapshots'));
    assert.equal(mine.status, 200, mine.text);
    assert.ok(mine.text.includes(snaps.get(carol.username)!) && !mine.text.includes(snaps.get(dave.username)!));
    assert.match(mine.text, /href="index\.raw\?tm=%2Fsnapshots%2F/);
    // DirectAdmin hands a POST's form over in the environment: a download streams back with raw headers.
    const browse = page('user', carol, cgiGet(linkQuery(mine.text, /href="(index\.raw\?tm=%2Fsnapshots%2F[^"]+)"/)));
    const form = new URLSearchParams({ _csrf: csrfOf(browse.text), path: Buffer.from('carol.txt').toString('base64url') }).toString();
    const dl = page('user', carol, { REQUEST_METHOD: 'POST', QUERY_STRING: linkQuery(browse.text, /action="(index\.raw\?tm=[^"]+%2Fdownload)"/), CONTENT_TYPE: 'application/x-www-form-urlencoded', POST: form });
    assert.equal(dl.status, 200, dl.text.slice(0, 300));
    assert.equal(dl.body.toString(), 'carol file', 'one file comes as itself');

    // Forged names change nothing: still carol.
    const forged = page('user', carol, cgiGet('tm=%2Fsnapshots', { USERNAME: dave.username, REMOTE_USER: dave.username, USER: dave.username }));
    assert.ok(forged.text.includes(snaps.get(carol.username)!) && !forged.text.includes(snaps.get(dave.username)!));

    // DirectAdmin's pages carry the login's session; the daemon asks DirectAdmin whose it is.
    const adminLogin = da.login(admin.username, 'admin');
    const resellerLogin = da.login(reseller.username, 'reseller');
    const carolLogin = da.login(carol.username, 'user');
    assert.equal(page('user', carol, cgiGet('tm=%2Fsnapshots', carolLogin)).status, 200, 'an account page with its session');
    assert.equal(page('user', carol, cgiGet('tm=%2Fsnapshots', resellerLogin)).status, 403, 'a session of someone else on an account page');

    const res = page('reseller', reseller, cgiGet('tm=%2Fsnapshots', resellerLogin));
    assert.equal(res.status, 200);
    assert.ok(res.text.includes(snaps.get(carol.username)!), 'the reseller sees its account');
    assert.ok(!res.text.includes(snaps.get(dave.username)!), 'not the admin\'s');
    assert.equal(page('reseller', reseller, cgiGet('tm=%2Fadmin%2Fdestinations', resellerLogin)).status, 404, 'no provider destinations for a reseller');
    assert.equal(page('user', carol, cgiGet('tm=%2Fadmin')).status, 404, 'no provider pages for an account');

    const adm = page('admin', admin, cgiGet('tm=%2Fadmin', adminLogin));
    assert.equal(adm.status, 200);
    const all = page('admin', admin, cgiGet('tm=%2Fsnapshots', adminLogin));
    assert.ok(all.text.includes(snaps.get(carol.username)!) && all.text.includes(snaps.get(dave.username)!));

    // A level above the one DirectAdmin gives the session is refused, whoever runs which page.
    assert.equal(page('admin', reseller, cgiGet('tm=%2Fadmin', resellerLogin)).status, 403, 'a reseller session asking for admin');
    assert.equal(page('reseller', carol, cgiGet('tm=%2Fsnapshots', carolLogin)).status, 403);
    assert.equal(page('admin', carol, cgiGet('tm=%2Fadmin', carolLogin)).status, 403);

    // regression: DirectAdmin admin and reseller roles followed the Unix uid. A process of the
    // admin's uid (its websites' PHP, its cron jobs) has no session: refused.
    const noSession = page('admin', admin, cgiGet('tm=%2Fadmin'));
    assert.equal(noSession.status, 403, noSession.text);
    assert.ok(!noSession.text.includes(snaps.get(dave.username)!));
    assert.equal(page('reseller', reseller, cgiGet('tm=%2Fsnapshots')).status, 403);
    assert.equal(page('admin', admin, cgiGet('tm=%2Fadmin', { SESSION_ID: adminLogin.SESSION_ID, SESSION_KEY: 'wrong' })).status, 403, 'an invalid key');
    assert.equal(page('admin', admin, cgiGet('tm=%2Fadmin', { SESSION_ID: 'made-up', SESSION_KEY: 'made-up' })).status, 403, 'a made-up session');
    // The admin's valid session in a process of another uid (stolen, or a reseller's page) is not the admin.
    assert.equal(page('admin', reseller, cgiGet('tm=%2Fadmin', adminLogin)).status, 403, 'the admin\'s session from the reseller\'s uid');
    assert.equal(page('reseller', reseller, cgiGet('tm=%2Fsnapshots', adminLogin)).status, 403);
    // A session that ended no longer opens the page (once the minute of the cache is over; a fresh login is needed).
    const brief = da.login(admin.username, 'admin');
    da.logout(brief.SESSION_ID);
    assert.equal(page('admin', admin, cgiGet('tm=%2Fadmin', brief)).status, 403);
    // Somebody else answering on DirectAdmin's port (another certificate) is not DirectAdmin.
    const impostor = await startFakeDirectAdmin(makeCertificate());
    try {
      const forgedLogin = impostor.login(admin.username, 'admin');
      writeConfig2(root, port, impostor.port);
      await stopDaemon(daemon);
      daemon = await startInstalledDaemon(root, port);
      assert.equal(page('admin', admin, cgiGet('tm=%2Fadmin', forgedLogin)).status, 403, 'an impostor\'s answer is not believed');
      assert.equal(impostor.calls(), 0, 'the session is never sent to a server without DirectAdmin\'s certificate');
    } finally {
      await impostor.close();
    }
  } finally {
    await da.close();
    await stopDaemon(daemon);
    for (const a of made) removeAccount(a);
    for (const d of [root, homeRoot, dest]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }
});
