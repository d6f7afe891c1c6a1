import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { CLI, cli, ok } from './support/cli.js';
import { startWebFixture, WebClient, pathParam, type WebFixture } from './support/web-daemon.js';

let fx: WebFixture;
let db: Database.Database;
let alice: WebClient;
let aliceCsrf: string;

const aliceSnapshot = (): string => `/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.alice}`;
const bobSnapshot = (): string => `/snapshots/${fx.destinationIds.shown}/${fx.bob.username}/${fx.visible.bob}`;
const hiddenSnapshot = (): string => `/snapshots/${fx.destinationIds.hidden}/${fx.alice.username}/${fx.hidden.alice}`;
const taskCount = (): number => (db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n;
const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

async function signIn(user: string, role: 'admin' | 'reseller' | 'user'): Promise<WebClient> {
  const c = new WebClient(fx.base);
  const r = await c.get(fx.loginUrl(user, role));
  assert.equal(r.status, 200);
  assert.ok(c.cookies.has('tidemark_session'));
  return c;
}

/** Nothing of bob's, nothing from the hidden destination (the language switch's return address repeats the URL asked for). */
function assertNoForeignData(page: string): void {
  const body = page.replace(/name="back" value="[^"]*"/g, '');
  for (const secret of [fx.bob.username, fx.visible.bob, fx.hidden.alice, 'secret.txt', 'secret of bob']) {
    assert.ok(!body.includes(secret), `the page shows ${secret}`);
  }
}

before(async () => {
  fx = await startWebFixture();
  db = new Database(path.join(fx.dataDir, 'tidemark.sqlite'));
  alice = await signIn(fx.alice.username, 'user');
  aliceCsrf = await alice.csrf();
  // bob changes his file after the backup: a restore that should not happen would undo this.
  fs.writeFileSync(path.join(fx.bob.home, 'secret.txt'), 'bob changed it');
});

after(async () => {
  db?.close();
  await fx?.stop();
});

describe('without a session the HTTP port shows nothing', () => {
  test('every page answers 401 and names no account or snapshot', async () => {
    const anon = new WebClient(fx.base);
    for (const p of ['/', '/snapshots', aliceSnapshot(), bobSnapshot(), '/tasks', '/tasks/1', '/tasks/1/status', '/activity', '/api/v1/snapshots']) {
      const r = await anon.get(p);
      assert.equal(r.status, 401, p);
      assert.ok(!r.body.includes(fx.alice.username) && !r.body.includes(fx.visible.alice), p);
      assertNoForeignData(r.body);
    }
  });

  test('forged identity headers, cookies and parameters open nothing', async () => {
    const anon = new WebClient(fx.base);
    const forged = {
      'x-tidemark-user': fx.alice.username, 'x-tidemark-role': 'admin', 'x-remote-user': 'root', 'x-forwarded-user': 'root', 'remote-user': 'root',
      cookie: `role=admin; user=${fx.alice.username}; actor=root; tidemark_role=admin; tidemark_user=root; tidemark_session=${'A'.repeat(43)}`,
    };
    for (const p of ['/snapshots', `/snapshots?user=root&role=admin&account=${fx.alice.username}`, aliceSnapshot()]) {
      const r = await anon.get(p, forged);
      assert.equal(r.status, 401, p);
    }
    const post = await anon.post(`${aliceSnapshot()}/restore`, { mode: 'place', path: pathParam('notes.txt'), _csrf: 'x', user: 'root', role: 'admin' }, forged);
    assert.equal(post.status, 401);
  });
});

describe('login URLs', () => {
  test('a login token works once', async () => {
    const url = fx.loginUrl(fx.alice.username, 'user');
    const first = new WebClient(fx.base);
    assert.equal((await first.get(url)).status, 200);
    assert.equal((await first.get('/snapshots')).status, 200);
    const second = new WebClient(fx.base);
    const again = await second.get(url);
    assert.equal(again.status, 401);
    assert.ok(!second.cookies.has('tidemark_session'));
    assert.match(again.body, /used already or has expired/);
  });

  test('an expired login token does not work', async () => {
    const url = fx.loginUrl(fx.alice.username, 'user');
    const token = url.slice(url.lastIndexOf('/') + 1);
    const changed = db.prepare('UPDATE login_tokens SET expires_at = ? WHERE token_hash = ?').run(Date.now() - 1, sha256(token));
    assert.equal(changed.changes, 1, 'the store holds the hash of the token');
    const c = new WebClient(fx.base);
    assert.equal((await c.get(url)).status, 401);
    assert.ok(!c.cookies.has('tidemark_session'));
  });

  test('tokens expire after two minutes, and the store keeps hashes only', () => {
    const r = ok(cli(fx.dataDir, ['login-url', '--user', fx.alice.username, '--role', 'user']));
    const token = (r.url as string).split('/').pop()!;
    const row = db.prepare('SELECT created_at, expires_at FROM login_tokens WHERE token_hash = ?').get(sha256(token)) as { created_at: number; expires_at: number };
    assert.equal(row.expires_at - row.created_at, 120_000);
    const raw = fs.readFileSync(path.join(fx.dataDir, 'tidemark.sqlite')).toString('latin1') + fs.readFileSync(path.join(fx.dataDir, 'tidemark.sqlite-wal')).toString('latin1');
    assert.ok(!raw.includes(token), 'the token itself is not stored');
    assert.ok(!raw.includes(alice.cookies.get('tidemark_session')!), 'nor a session id');
  });

  test('login-url refuses a role it does not know and an account that does not exist', () => {
    assert.equal(cli(fx.dataDir, ['login-url', '--user', fx.alice.username, '--role', 'root']).code, 2);
    const r = cli(fx.dataDir, ['login-url', '--user', 'nosuchaccount', '--role', 'user']);
    assert.equal(r.code, 1);
    assert.match(r.json.error, /no account/);
  });

  test('login-url is for root only', () => {
    const r = spawnSync('setpriv', ['--reuid', String(fx.alice.uid), '--regid', String(fx.alice.gid), '--clear-groups',
      process.execPath, CLI, '--data-dir', fx.dataDir, '--json', 'login-url', '--user', fx.alice.username, '--role', 'admin'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stdout, /\/login\//);
  });

  test('the session cookie is HttpOnly and SameSite=Strict, and signing out ends the session', async () => {
    const c = new WebClient(fx.base);
    const r = await c.get(fx.loginUrl(fx.alice.username, 'user'));
    const cookie = r.headers.getSetCookie().find((x) => x.startsWith('tidemark_session='))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const sid = c.cookies.get('tidemark_session')!;
    const token = await c.csrf();
    assert.equal((await c.post('/logout', { _csrf: token })).status, 200);
    const stale = new WebClient(fx.base);
    stale.cookies.set('tidemark_session', sid);
    assert.equal((await stale.get('/snapshots')).status, 401);
  });

  test('a session ends after the idle time and at its absolute expiry', async () => {
    for (const column of ['last_seen_at', 'expires_at']) {
      const c = await signIn(fx.alice.username, 'user');
      const sid = c.cookies.get('tidemark_session')!;
      const past = column === 'last_seen_at' ? Date.now() - 31 * 60_000 : Date.now() - 1;
      assert.equal(db.prepare(`UPDATE sessions SET ${column} = ? WHERE id_hash = ?`).run(past, sha256(sid)).changes, 1);
      assert.equal((await c.get('/snapshots')).status, 401, column);
    }
  });
});

describe('an account holder stays inside their own account', () => {
  test('the snapshot list holds only their visible snapshots, whatever the request claims', async () => {
    for (const [p, headers] of [
      ['/snapshots', {}],
      [`/snapshots?user=${fx.bob.username}&role=admin&account=${fx.bob.username}`, {}],
      ['/snapshots', { 'x-tidemark-user': fx.bob.username, 'x-tidemark-role': 'admin', 'x-remote-user': 'root' }],
      ['/snapshots', { cookie: `tidemark_session=${alice.cookies.get('tidemark_session')}; role=admin; user=${fx.bob.username}` }],
    ] as const) {
      const r = await alice.get(p, headers);
      assert.equal(r.status, 200, p);
      assert.ok(r.body.includes(fx.visible.alice), p);
      assertNoForeignData(r.body);
    }
  });

  test('another account\'s snapshot and a hidden destination\'s snapshot are not found', async () => {
    for (const p of [
      bobSnapshot(), hiddenSnapshot(),
      `/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.bob}`,
      `/snapshots/${fx.destinationIds.hidden}/${fx.bob.username}/${fx.visible.bob}`,
      `/snapshots/${fx.destinationIds.shown}/${fx.bob.username}/${fx.visible.bob}?user=${fx.bob.username}`,
    ]) {
      const r = await alice.get(p);
      assert.equal(r.status, 404, p);
      assertNoForeignData(r.body);
    }
  });

  test('restoring or downloading from them is refused and nothing happens', async () => {
    const tasks = taskCount();
    for (const base of [bobSnapshot(), hiddenSnapshot()]) {
      for (const mode of ['place', 'folder']) {
        const r = await alice.post(`${base}/restore`, { _csrf: aliceCsrf, mode, path: pathParam('secret.txt') });
        assert.equal(r.status, 404);
      }
      const d = await alice.post(`${base}/download`, { _csrf: aliceCsrf, path: pathParam('secret.txt') });
      assert.equal(d.status, 404);
      assert.ok(!(d.headers.get('content-type') ?? '').includes('gzip'));
    }
    assert.equal(taskCount(), tasks, 'no task was started');
    assert.equal(fs.readFileSync(path.join(fx.bob.home, 'secret.txt'), 'utf8'), 'bob changed it');
    assert.deepEqual(fs.readdirSync(fx.bob.home).filter((n) => n.startsWith('tidemark-restore')), []);
  });

  test('a path with .. is refused, when browsing, restoring and downloading', async () => {
    const tasks = taskCount();
    const escapes = ['..', `../${fx.bob.username}`, `../${fx.bob.username}/secret.txt`, 'public_html/../../etc', 'public_html/..'];
    for (const p of escapes) {
      assert.equal((await alice.get(`${aliceSnapshot()}?p=${pathParam(p)}`)).status, 403, p);
      assert.equal((await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'place', path: pathParam(p) })).status, 403, p);
      assert.equal((await alice.post(`${aliceSnapshot()}/download`, { _csrf: aliceCsrf, path: pathParam(p) })).status, 403, p);
    }
    // Not base64url, or a NUL byte: refused the same way.
    for (const bad of ['Li4v+w==', '%2E%2E', pathParam(Buffer.from('notes.txt\0x'))]) {
      assert.equal((await alice.get(`${aliceSnapshot()}?p=${bad}`)).status, 403, bad);
    }
    // An absolute path is taken inside the home, where nothing by that name exists.
    assert.equal((await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'place', path: pathParam('/etc/passwd') })).status, 404);
    assert.equal(taskCount(), tasks);
    assert.equal(fs.readFileSync(path.join(fx.bob.home, 'secret.txt'), 'utf8'), 'bob changed it');
  });

  test('a restore with nothing chosen or a database the snapshot lacks is refused', async () => {
    const tasks = taskCount();
    assert.equal((await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'place' })).status, 400);
    assert.equal((await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'place', database: `${fx.bob.username}_db` })).status, 404);
    assert.equal((await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'everything', path: pathParam('notes.txt') })).status, 400);
    assert.equal(taskCount(), tasks);
  });

  test('another account\'s tasks and activity stay out of sight', async () => {
    const r = ok(cli(fx.dataDir, ['restore', fx.visible.bob, '--destination', 'shown', '--path', 'secret.txt', '--into-folder', '--wait']));
    assert.equal((await alice.get(`/tasks/${r.task}`)).status, 404);
    assert.equal((await alice.get(`/tasks/${r.task}/status`, { accept: 'application/json' })).status, 404);
    const list = await alice.get('/tasks');
    assert.ok(!list.body.includes(`/tasks/${r.task}"`));
    assertNoForeignData(list.body);
    assertNoForeignData((await alice.get('/activity')).body);
  });
});

describe('CSRF', () => {
  test('forms without the session\'s token are refused, and nothing happens', async () => {
    const bob = await signIn(fx.bob.username, 'user');
    const bobToken = await bob.csrf();
    const tasks = taskCount();
    const before = fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8');
    fs.writeFileSync(path.join(fx.alice.home, 'notes.txt'), 'alice changed notes');
    for (const token of [undefined, '', 'forged', bobToken, aliceCsrf.slice(0, -1)]) {
      const form: Record<string, string> = { mode: 'place', path: pathParam('notes.txt') };
      if (token !== undefined) form._csrf = token;
      const r = await alice.post(`${aliceSnapshot()}/restore`, form);
      assert.equal(r.status, 403, String(token));
      assert.match(r.body, /form has expired/);
      assert.equal((await alice.post('/logout', form)).status, 403);
      assert.equal((await alice.post('/locale', { ...form, lng: 'de' })).status, 403);
    }
    assert.equal(taskCount(), tasks);
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8'), 'alice changed notes');
    assert.equal((await alice.get('/snapshots')).status, 200, 'still signed in');
    assert.ok(!alice.cookies.has('tidemark_lang'));
    void before;
  });

  test('with the token the same restore runs as a task', async () => {
    const r = await alice.post(`${aliceSnapshot()}/restore`, { _csrf: aliceCsrf, mode: 'place', path: pathParam('notes.txt') });
    assert.equal(r.status, 303);
    const task = r.headers.get('location')!;
    assert.match(task, /^\/tasks\/\d+$/);
    for (let i = 0; i < 100; i++) {
      const s = JSON.parse((await alice.get(`${task}/status`, { accept: 'application/json' })).body) as { status: string; finished: boolean };
      if (s.finished) { assert.equal(s.status, 'completed'); break; }
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8'), 'notes of alice');
  });
});

describe('roles', () => {
  test('an admin sees every account and the hidden destination', async () => {
    const admin = await signIn('root', 'admin');
    const r = await admin.get('/snapshots');
    for (const id of [fx.visible.alice, fx.visible.bob, fx.hidden.alice]) assert.ok(r.body.includes(id), id);
    assert.equal((await admin.get(bobSnapshot())).status, 200);
  });

  test('a reseller sees only the accounts it owns (here: none)', async () => {
    const reseller = await signIn('res1', 'reseller');
    const r = await reseller.get('/snapshots');
    assert.equal(r.status, 200);
    for (const id of [fx.visible.alice, fx.visible.bob, fx.hidden.alice]) assert.ok(!r.body.includes(id), id);
    assert.equal((await reseller.get(aliceSnapshot())).status, 404);
  });
});

/** fetch() does not let a caller choose the Host header; a rebinding browser does send another one. */
function getWithHost(p: string, host: string, cookie = ''): Promise<{ status: number; body: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fx.port, path: p, headers: { host, cookie } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('DNS rebinding', () => {
  test('a request for another host name gets nothing, even with a valid session', async () => {
    const cookie = `tidemark_session=${alice.cookies.get('tidemark_session')}`;
    assert.equal((await getWithHost('/snapshots', `127.0.0.1:${fx.port}`, cookie)).status, 200, 'the control: the right name works');
    const r = await getWithHost('/snapshots', `evil.example:${fx.port}`, cookie);
    assert.equal(r.status, 421);
    assert.ok(!r.body.includes(fx.visible.alice));
    const url = new URL(fx.loginUrl(fx.alice.username, 'user'));
    const login = await getWithHost(url.pathname, `evil.example:${fx.port}`);
    assert.equal(login.status, 421);
    assert.deepEqual(login.setCookie, []);
  });
});

describe('bad input', () => {
  test('a malformed or oversized form is a clear 400, not a server error, and does nothing', async () => {
    const tasks = taskCount();
    const session = `tidemark_session=${alice.cookies.get('tidemark_session')}`;
    for (const body of [`_csrf=${aliceCsrf}&mode=place&path=${'A'.repeat(2 * 1024 * 1024)}`, `_csrf=${aliceCsrf}&path=%E0%A4%A`]) {
      const r = await fetch(`${fx.base}${aliceSnapshot()}/restore`, {
        method: 'POST', redirect: 'manual', body,
        headers: { cookie: session, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      });
      assert.ok(r.status === 400 || r.status === 403, String(r.status));
      assert.match(await r.text(), /<html lang="en">/);
    }
    assert.equal(taskCount(), tasks);
  });
});
