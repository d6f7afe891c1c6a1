import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { startTestMariaDb, type TestMariaDb } from './support/mariadb.js';
import { startWebFixture, WebClient, type WebFixture } from './support/web-daemon.js';
import { launchBrowser } from './support/browser.js';

let maria: TestMariaDb;
let fx: WebFixture;
let alice: WebClient;
let csrf: string;

async function sql(statements: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: maria.creds.socket!, user: maria.creds.user, multipleStatements: true, ...(database ? { database } : {}) });
  try { return (await conn.query(statements))[0] as any[]; } finally { await conn.end(); }
}

const shop = (): string => `${fx.alice.username}_shop`;
const snapshotPath = (): string => `/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.alice}`;
const label = async (db: string): Promise<string> => (await sql('SELECT label FROM items WHERE id = 1', db))[0]?.label;

async function waitForTask(location: string): Promise<{ status: string }> {
  for (let i = 0; i < 300; i++) {
    const s = JSON.parse((await alice.get(`${location}/status`, { accept: 'application/json' })).body) as { status: string; finished: boolean };
    if (s.finished) return s;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the task did not finish');
}

before(async () => {
  maria = await startTestMariaDb();
  fx = await startWebFixture({
    mysql: maria.creds,
    beforeBackup: async (a, b) => {
      await sql(`CREATE DATABASE \`${a.username}_shop\`; CREATE DATABASE \`${b.username}_private\`;`);
      await sql(`CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(50)); INSERT INTO items VALUES (1, 'from the backup');`, `${a.username}_shop`);
      await sql(`CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(50)); INSERT INTO items VALUES (1, 'bob data');`, `${b.username}_private`);
    },
  });
  alice = new WebClient(fx.base);
  await alice.get(fx.loginUrl(fx.alice.username, 'user'));
  csrf = await alice.csrf();
  await sql(`UPDATE items SET label = 'changed since' WHERE id = 1`, shop());
  await sql(`UPDATE items SET label = 'bob changed' WHERE id = 1`, `${fx.bob.username}_private`);
});

after(async () => {
  await fx?.stop();
  await maria?.stop();
});

test('the snapshot page lists the account\'s databases, and only them', async () => {
  const r = await alice.get(snapshotPath());
  assert.match(r.body, new RegExp(`name="database" value="${shop()}"`));
  assert.ok(!r.body.includes(`${fx.bob.username}_private`));
  const b = await launchBrowser();
  try {
    await b.page.goto(fx.loginUrl(fx.alice.username, 'user'));
    await b.page.waitForURL(/\/snapshots$/);
    await b.page.goto(fx.base + snapshotPath());
    await b.page.getByRole('checkbox', { name: shop() }).waitFor();
    await b.screenshot('user-databases');
  } finally {
    await b.close();
  }
});

test('restores a database into place, as a task', async () => {
  const r = await alice.post(`${snapshotPath()}/restore`, { _csrf: csrf, mode: 'place', database: shop() });
  assert.equal(r.status, 303);
  assert.equal((await waitForTask(r.headers.get('location')!)).status, 'completed');
  assert.equal(await label(shop()), 'from the backup');
});

test('restores a database under a new name of the account, leaving the original alone', async () => {
  await sql(`UPDATE items SET label = 'changed again' WHERE id = 1`, shop());
  const copy = `${fx.alice.username}_shop_copy`;
  const r = await alice.post(`${snapshotPath()}/restore`, { _csrf: csrf, mode: 'place', database: shop(), [`as_${shop()}`]: copy });
  assert.equal(r.status, 303);
  const task = r.headers.get('location')!;
  assert.equal((await waitForTask(task)).status, 'completed');
  assert.equal(await label(copy), 'from the backup');
  assert.equal(await label(shop()), 'changed again');
  assert.match((await alice.get(task)).body, new RegExp(`${shop()}.*${copy}`));
});

test('a database of another account can neither be restored nor be the new name', async () => {
  const other = `${fx.bob.username}_private`;
  for (const form of [
    { database: other },
    { database: shop(), [`as_${shop()}`]: other },
    { database: shop(), [`as_${shop()}`]: 'mysql' },
    { database: shop(), [`as_${shop()}`]: 'x`; DROP DATABASE y; --' },
  ]) {
    const r = await alice.post(`${snapshotPath()}/restore`, { _csrf: csrf, mode: 'place', ...form });
    assert.ok([400, 403, 404].includes(r.status), `${JSON.stringify(form)}: ${r.status}`);
  }
  assert.equal(await label(other), 'bob changed');
});

test('downloads a database dump', async () => {
  const r = await fetch(`${fx.base}${snapshotPath()}/download`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: `tidemark_session=${alice.cookies.get('tidemark_session')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, database: shop() }).toString(),
  });
  assert.equal(r.status, 200);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-dbdl-'));
  try {
    fs.writeFileSync(path.join(dir, 'd.tar.gz'), Buffer.from(await r.arrayBuffer()));
    execFileSync('tar', ['-xzf', path.join(dir, 'd.tar.gz'), '-C', dir]);
    const dump = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'databases', `${shop()}.sql.gz`))).toString('utf8');
    assert.match(dump, /from the backup/);
    assert.equal(fs.existsSync(path.join(dir, 'files')), false, 'only what was chosen');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with binary logging off, the Databases page and the commands say what is missing instead of failing', async () => {
  const page = await alice.get('/databases');
  assert.equal(page.status, 200);
  assert.match(page.body, /data-pitr-off/);
  assert.match(page.body, /keeps no binary log/);
  const { cli, ok } = await import('./support/cli.js');
  const status = ok(cli(fx.dataDir, ['binlog', 'status']));
  assert.equal(status.server.logBin, false);
  assert.match(status.server.advice, /log_bin\s+= \/var\/lib\/mysql\/mysql-bin/);
  assert.match(status.server.advice, /binlog_format\s+= ROW/);
  const ship = ok(cli(fx.dataDir, ['binlog', 'ship']));
  assert.equal(ship.logBin, false);
  assert.deepEqual(ship.shipped, []);
  const w = ok(cli(fx.dataDir, ['database', 'window', shop(), '--account', fx.alice.username]));
  assert.equal(w.logBin, false);
  assert.equal(w.from, null);
  const human = cli(fx.dataDir, ['binlog', 'status']);
  assert.equal(human.code, 0);
  const text = (await import('node:child_process')).spawnSync(process.execPath, [(await import('./support/cli.js')).CLI, '--data-dir', fx.dataDir, 'database', 'window', shop(), '--account', fx.alice.username], { encoding: 'utf8' });
  assert.equal(text.status, 0);
  assert.match(text.stdout, /binary logging is off/);
  const refused = cli(fx.dataDir, ['database', 'restore', shop(), '--account', fx.alice.username, '--at', new Date().toISOString(), '--as', `${fx.alice.username}_x`]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr + refused.stdout, /no point in time is covered/);
});

test("with binary logging off, the provider's Binary logs page says what to set", async () => {
  const admin = new WebClient(fx.base);
  await admin.get(fx.loginUrl('root', 'admin'));
  const r = await admin.get('/admin/binlogs');
  assert.equal(r.status, 200);
  assert.match(r.body, /data-binlog-off/);
  assert.match(r.body, /binlog_format\s+= ROW/);
  assert.equal((await alice.get('/admin/binlogs')).status, 404);
});
