/**
 * The account holder's point-in-time pages against a running daemon and a MariaDB with binary
 * logging on: the covered window, the picker limited to it, the preview, the confirmation, the
 * restore; and the data-loss window of the daemon's shipping, measured.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { startTestMariaDb, type TestMariaDb } from './support/mariadb.js';
import { startWebFixture, WebClient, type WebFixture } from './support/web-daemon.js';
import { cli, ok } from './support/cli.js';

let maria: TestMariaDb;
let fx: WebFixture;
let alice: WebClient;
let csrf: string;
let before1: string;
/** Seconds from a change to the moment the window covered it, with the daemon shipping every minute. */
let lossSeconds = 0;

async function sql(statements: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: maria.creds.socket!, user: maria.creds.user, multipleStatements: true, ...(database ? { database } : {}) });
  try { return (await conn.query(statements))[0] as any[]; } finally { await conn.end(); }
}
const shop = (): string => `${fx.alice.username}_shop`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  maria = await startTestMariaDb({ binlog: true });
  fx = await startWebFixture({
    mysql: maria.creds,
    beforeBackup: async (a, b) => {
      await sql(`CREATE DATABASE \`${a.username}_shop\`; CREATE DATABASE \`${b.username}_private\`;`);
      await sql(`CREATE TABLE orders (id INT PRIMARY KEY, label VARCHAR(50)); INSERT INTO orders VALUES (1, 'one'), (2, 'two'), (3, 'three');`, `${a.username}_shop`);
    },
  });
  // The daemon's shipper sees the mark at its next pass.
  ok(cli(fx.dataDir, ['binlog', 'destination', 'shown', '--on']));
  alice = new WebClient(fx.base);
  await alice.get(fx.loginUrl(fx.alice.username, 'user'));
  csrf = await alice.csrf();
  await sleep(1100);
  before1 = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
  await sleep(1100);
  // "The order table was emptied."
  const changedAt = Date.now();
  await sql('DELETE FROM orders', shop());
  // The daemon ships every minute: wait until the window covers the change.
  for (;;) {
    const w = ok(cli(fx.dataDir, ['database', 'window', shop(), '--account', fx.alice.username]));
    if (w.to && Date.parse(w.to) >= Math.floor(changedAt / 1000) * 1000) break;
    if (Date.now() - changedAt > 150_000) throw new Error(`the daemon did not ship within 150 s: ${JSON.stringify(w)}`);
    await sleep(1000);
  }
  lossSeconds = (Date.now() - changedAt) / 1000;
});

after(async () => {
  await fx?.stop();
  await maria?.stop();
});

test('the daemon ships the logs on its own: a change is covered within about a minute (the data-loss window)', () => {
  process.stderr.write(`data-loss window measured: a change was covered ${lossSeconds.toFixed(1)} s after it was made\n`);
  assert.ok(lossSeconds <= 75, `${lossSeconds} s`);
});

test('the databases page shows the window and a picker limited to it', async () => {
  const r = await alice.get('/databases');
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`data-database="${shop()}"`));
  assert.match(r.body, /You can go back to any minute between/);
  const input = /<input type="datetime-local"[^>]*min="([^"]+)" max="([^"]+)"/.exec(r.body);
  assert.ok(input, 'a date-time picker with min and max');
  assert.ok(input[1]! <= before1.slice(0, 16) && input[2]! >= before1.slice(0, 16), `${input[1]} ≤ ${before1} ≤ ${input[2]}`);
  assert.match(r.body, /every minute/);
  // bob's database is not alice's to see.
  assert.ok(!r.body.includes(`${fx.bob.username}_private`));
});

test('preview, then confirm: the emptied table is back as it was, and the page asked first', async () => {
  const at = before1.slice(0, 19);
  const p = await alice.post(`/databases/${encodeURIComponent(shop())}/preview`, { _csrf: csrf, at, tables: 'orders' });
  assert.equal(p.status, 200, p.body.slice(0, 500));
  assert.match(p.body, /<tr data-table="orders">[\s\S]*?class="rows-now">0<[\s\S]*?class="rows-then">3</);
  assert.equal((await sql('SELECT COUNT(*) AS n FROM orders', shop()))[0].n, 0, 'the preview changed nothing');
  // Without the confirmation: refused.
  const refused = await alice.post(`/databases/${encodeURIComponent(shop())}/restore`, { _csrf: csrf, at, tables: 'orders', mode: 'place' });
  assert.equal(refused.status, 400);
  const r = await alice.post(`/databases/${encodeURIComponent(shop())}/restore`, { _csrf: csrf, at, tables: 'orders', mode: 'place', confirm: 'yes' });
  assert.equal(r.status, 303);
  const location = r.headers.get('location')!;
  assert.match(location, /^\/tasks\/\d+$/);
  for (let i = 0; i < 300; i++) {
    const s = JSON.parse((await alice.get(`${location}/status`, { accept: 'application/json' })).body) as { status: string; finished: boolean };
    if (s.finished) { assert.equal(s.status, 'completed'); break; }
    assert.ok(i < 299, 'the account holder sees its restore finish');
    await sleep(200);
  }
  assert.deepEqual((await sql('SELECT id, label FROM orders ORDER BY id', shop())).map((x) => `${x.id}:${x.label}`), ['1:one', '2:two', '3:three']);
});

test("a database alice's dumps name that is no longer alice's (ownership rule) is left off her databases page, which still answers", async () => {
  const db = new Database(path.join(fx.dataDir, 'tidemark.sqlite'));
  try {
    db.prepare(`INSERT INTO database_positions (destination_id, account, snapshot_id, database, binlog_file, binlog_position, gtid, dumped_at)
      SELECT destination_id, account, snapshot_id, ?, binlog_file, binlog_position, gtid, dumped_at FROM database_positions WHERE account = ? AND database = ? LIMIT 1`)
      .run(`${fx.bob.username}_private`, fx.alice.username, shop());
    const r = await alice.get('/databases');
    assert.equal(r.status, 200, 'the window of a database not hers is refused (403): the page leaves it out');
    assert.match(r.body, new RegExp(`data-database="${shop()}"`));
    assert.ok(!r.body.includes(`${fx.bob.username}_private`));
  } finally {
    db.prepare('DELETE FROM database_positions WHERE account = ? AND database = ?').run(fx.alice.username, `${fx.bob.username}_private`);
    db.close();
  }
});

test("alice cannot preview bob's database", async () => {
  const p = await alice.post(`/databases/${encodeURIComponent(`${fx.bob.username}_private`)}/preview`, { _csrf: csrf, at: before1.slice(0, 19) });
  assert.ok(p.status === 403 || p.status === 404 || p.status === 409, String(p.status));
  assert.ok(!p.body.includes('rows-then'));
});

test("the provider's Binary logs page shows the shipping; an account holder never sees it", async () => {
  const admin = new WebClient(fx.base);
  await admin.get(fx.loginUrl('root', 'admin'));
  const r = await admin.get('/admin/binlogs');
  assert.equal(r.status, 200);
  assert.match(r.body, /data-binlog-on/);
  assert.match(r.body, /<td data-label="Destination">shown<\/td>/);
  assert.equal((await alice.get('/admin/binlogs')).status, 404);
});

test('the JSON API: window and preview for the account holder, binlogs for the provider only', async () => {
  const token = ok(cli(fx.dataDir, ['api-token', 'create', '--name', 'pitr-alice', '--role', 'user', '--user', fx.alice.username])).token as string;
  const api = (method: string, url: string, body?: unknown) => fetch(`${fx.base}/api/v1${url}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const w = await api('GET', `/databases/${encodeURIComponent(shop())}/window?account=${fx.alice.username}`);
  assert.equal(w.status, 200);
  const window = await w.json() as { from: string; to: string; logBin: boolean; intervalMinutes: number };
  assert.equal(window.logBin, true);
  assert.equal(window.intervalMinutes, 1);
  assert.ok(Date.parse(window.from) <= Date.parse(before1));
  const p = await api('POST', `/databases/${encodeURIComponent(shop())}/preview`, { account: fx.alice.username, at: before1 });
  assert.equal(p.status, 200);
  const preview = await p.json() as { tables: { table: string; rowsAt: number }[] };
  assert.equal(preview.tables.find((t) => t.table === 'orders')?.rowsAt, 3);
  const foreign = await api('POST', `/databases/${encodeURIComponent(`${fx.bob.username}_private`)}/restore`, { account: fx.alice.username, at: before1, wait: true });
  assert.equal(foreign.status, 403);
  assert.equal((await api('GET', '/binlogs')).status, 403);
  assert.equal((await api('GET', `/databases/${encodeURIComponent(shop())}/window?account=${fx.bob.username}`)).status, 404);
});
