/**
 * Point in time against a real MariaDB with binary logging on (ROW): a dump, then changes a
 * second apart (inserts, updates, deletes, a dropped table) by two accounts, the logs shipped to
 * a provider destination, and restores of a database and of single tables as of each chosen
 * second, compared exactly. Another account's changes, in the same logs, never reach the
 * restore nor anything the account can download.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { startTestMariaDb, type TestMariaDb, rootQuery } from './support/mariadb.js';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';

const qi = (n: string): string => '`' + n.replace(/`/g, '``') + '`';
const hex = (s: string | Buffer): string => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Waits until the clock is in a new second, and returns that second (ISO). */
async function nextSecond(): Promise<void> {
  const now = Date.now();
  await sleep(1000 - (now % 1000) + 30);
}
const thisSecond = (): string => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();

/** A table name an attacker would choose: quotes, backticks and the client's delimiter. */
const EVIL_TABLE = "t`; DROP DATABASE x; -- /*!*/;";
/** A value an attacker would store: the delimiter mariadb-binlog prints, and SQL after it. */
const EVIL_VALUE = "x' /*!*/; DROP DATABASE mysql; /*!*/ 'y";
const BOB_MARK = 'bob-secret-7f3a';

let maria: TestMariaDb;
let homeRoot: string;
let alice: TestAccount;
let bob: TestAccount;
let dataDir: string;
let destDir: string;
let shop: string;
let bobDb: string;

/** Everything of a database, exactly: each table's rows as hex, ordered. */
async function contents(db: string, tables?: string[]): Promise<Record<string, string[]>> {
  const names = (await rootQuery(maria.creds, `SHOW FULL TABLES FROM ${qi(db)}`))
    .filter((r) => Object.values(r)[1] === 'BASE TABLE').map((r) => String(Object.values(r)[0])).filter((t) => !tables || tables.includes(t)).sort();
  const out: Record<string, string[]> = {};
  for (const t of names) {
    const cols = (await rootQuery(maria.creds, `SHOW COLUMNS FROM ${qi(db)}.${qi(t)}`)).map((c) => String(c.Field));
    const exprs = cols.map((c) => `IFNULL(HEX(${qi(c)}), 'NULL')`).join(", '|', ");
    const rows = await rootQuery(maria.creds, `SELECT CONCAT(${exprs}) AS r FROM ${qi(db)}.${qi(t)}`);
    out[t] = rows.map((r) => String(r.r)).sort();
  }
  return out;
}

const states: { at: string; shop: Record<string, string[]> }[] = [];

before(async () => {
  maria = await startTestMariaDb({ binlog: true });
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot, 'pa');
  bob = createAccount(homeRoot, 'pb');
  shop = `${alice.username}_shop`;
  bobDb = `${bob.username}_db`;
  await rootQuery(maria.creds, `CREATE DATABASE ${qi(shop)}; CREATE DATABASE ${qi(bobDb)};
    CREATE TABLE ${qi(shop)}.items (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4, data BLOB, doc JSON, note TEXT NULL);
    CREATE TABLE ${qi(shop)}.nopk (a INT, b VARCHAR(20));
    CREATE TABLE ${qi(shop)}.orders (id INT PRIMARY KEY, total DECIMAL(10,2));
    CREATE TABLE ${qi(shop)}.${qi(EVIL_TABLE)} (v TEXT);
    INSERT INTO ${qi(shop)}.items VALUES (1, 'first', NULL, '{"a": 1}', NULL);
    INSERT INTO ${qi(shop)}.nopk VALUES (1, 'one'), (1, 'one');
    INSERT INTO ${qi(shop)}.orders VALUES (1, 9.99);
    CREATE TABLE ${qi(bobDb)}.t (id INT PRIMARY KEY, v VARCHAR(50));
    INSERT INTO ${qi(bobDb)}.t VALUES (1, 'bob-initial');`);
  destDir = makeDestinationDir();
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds });
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['binlog', 'destination', 'disk', '--on']));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'archive', '--accounts', `${alice.username},${bob.username}`, '--items', 'databases']));
  ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));

  // State 0: as dumped. Then one change a second, each state recorded with its second.
  await nextSecond();
  states.push({ at: thisSecond(), shop: await contents(shop) });
  const steps: string[] = [
    `INSERT INTO ${qi(shop)}.items VALUES (2, CONVERT(UNHEX('${hex('café 🦊 ünï')}') USING utf8mb4), UNHEX('${hex(Buffer.from([0, 1, 0x27, 0x5c, 0xff, 0x0a]))}'), '{"k": [1, "two", null]}', NULL),
       (3, 'third', UNHEX('00'), NULL, CONVERT(UNHEX('${hex(EVIL_VALUE)}') USING utf8mb4));
     INSERT INTO ${qi(shop)}.nopk VALUES (2, 'two'), (NULL, NULL);
     INSERT INTO ${qi(shop)}.${qi(EVIL_TABLE)} VALUES (CONVERT(UNHEX('${hex(EVIL_VALUE)}') USING utf8mb4));
     INSERT INTO ${qi(bobDb)}.t VALUES (2, '${BOB_MARK}');`,
    `UPDATE ${qi(shop)}.items SET name = 'renamed', doc = JSON_SET(doc, '$.a', 2) WHERE id = 1;
     UPDATE ${qi(shop)}.nopk SET b = 'uno' WHERE a = 1 LIMIT 1;
     UPDATE ${qi(bobDb)}.t SET v = '${BOB_MARK}-2' WHERE id = 1;`,
    `DELETE FROM ${qi(shop)}.items WHERE id = 2;
     DELETE FROM ${qi(shop)}.nopk WHERE a = 2;
     DELETE FROM ${qi(bobDb)}.t WHERE id = 2;`,
    `DROP TABLE ${qi(shop)}.orders;
     INSERT INTO ${qi(shop)}.items VALUES (4, 'after the drop', NULL, NULL, 'n');`,
  ];
  for (const sql of steps) {
    await nextSecond();
    await rootQuery(maria.creds, sql);
    states.push({ at: thisSecond(), shop: await contents(shop) });
  }
  await nextSecond();
  // An administrator's statement run from the account's database, aimed at another's: in the log, never replayed.
  await rootQuery(maria.creds, `CREATE TABLE ${qi(bobDb)}.evil (x INT)`, shop);
  await rootQuery(maria.creds, `DROP TABLE ${qi(bobDb)}.evil`);
  ok(cli(dataDir, ['binlog', 'ship']));
});

after(async () => {
  await maria?.stop();
  for (const a of [alice, bob]) if (a) removeAccount(a);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('binary-log shipping', () => {
  test('the dump records the log position it is consistent with', () => {
    const snaps = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username]));
    const dir = path.join(destDir, alice.username, snaps[0].id);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const d = manifest.databases.find((x: { name: string }) => x.name === shop);
    assert.match(d.binlog.file, /^mariadb-bin\.\d{6}$/);
    assert.ok(d.binlog.position > 4);
    assert.match(d.binlog.gtid, /^\d+-\d+-\d+/);
  });

  test('closed logs are shipped to the marked destination with their hash, and the status says so', async () => {
    const files = fs.readdirSync(path.join(destDir, '.binlogs')).filter((f) => !f.startsWith('.'));
    assert.ok(files.length >= 1);
    const st = ok(cli(dataDir, ['binlog', 'status']));
    assert.equal(st.server.logBin, true);
    assert.equal(st.destinations[0].name, 'disk');
    assert.equal(st.destinations[0].files, files.length);
    // A second pass ships only what is new.
    const again = ok(cli(dataDir, ['binlog', 'ship']));
    assert.ok(again.shipped.every((s: { file: string }) => !files.includes(s.file)));
  });

  test('the window runs from the dump to the last shipped event', () => {
    const w = ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username]));
    assert.equal(w.logBin, true);
    assert.ok(Date.parse(w.from) <= Date.parse(states[0]!.at), `${w.from} <= ${states[0]!.at}`);
    assert.ok(Date.parse(w.to) >= Date.parse(states[states.length - 1]!.at), `${w.to} >= the last change`);
  });
});

describe('disaster recovery', () => {
  test('a reindex brings back where each dump is in the log (from the manifests)', async () => {
    const before = ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username]));
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path.join(dataDir, 'tidemark.sqlite'));
    db.prepare('DELETE FROM database_positions').run();
    db.close();
    assert.equal(ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username])).from, null);
    ok(cli(dataDir, ['destination', 'reindex', 'disk']));
    assert.equal(ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username])).from, before.from);
  });
});

describe('restore as of a moment', () => {
  test('the whole database under a new name, as of each second: exactly the rows of then', async () => {
    for (const [i, s] of states.entries()) {
      const into = `${alice.username}_r${i}`;
      const r = ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', s.at, '--as', into]));
      assert.equal(r.into, into);
      assert.deepEqual(await contents(into), s.shop, `state ${i} at ${s.at}`);
    }
  });
});

describe('restore tables as of a moment', () => {
  test('one table as <table>_restored_<time>, as of each second, beside the others untouched', async () => {
    const before = await contents(shop);
    for (const [i, s] of states.entries()) {
      const r = ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', s.at, '--table', 'items', '--as-new-tables']));
      const name = r.tables[0].restoredAs;
      assert.equal(name, `items_restored_${s.at.replace(/[-:T]/g, '').slice(0, 14)}`);
      const got = await contents(shop, [name]);
      assert.deepEqual(got[name], s.shop.items, `items at state ${i}`);
      await rootQuery(maria.creds, `DROP TABLE ${qi(shop)}.${qi(name)}`);
    }
    assert.deepEqual(await contents(shop), before);
  });

  test('the table without a primary key and the hostile table name, in place, as of state 2; the other tables untouched', async () => {
    const s = states[2]!;
    const before = await contents(shop);
    ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', s.at, '--table', 'nopk', '--table', EVIL_TABLE, '--yes']));
    const now = await contents(shop);
    assert.deepEqual(now.nopk, s.shop.nopk);
    assert.deepEqual(now[EVIL_TABLE], s.shop[EVIL_TABLE]);
    assert.deepEqual(now.items, before.items);
    assert.equal(now.orders, undefined);
  });

  test('a dropped table comes back when restored as of a second before the drop', async () => {
    const s = states[3]!;
    ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', s.at, '--table', 'orders', '--yes']));
    assert.deepEqual((await contents(shop, ['orders'])).orders, s.shop.orders);
  });

  test('regression: a table another table refers to by a foreign key is not swapped alone (the key would follow the old table)', async () => {
    await rootQuery(maria.creds, `CREATE TABLE ${qi(shop)}.parent (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO ${qi(shop)}.parent VALUES (1);
      CREATE TABLE ${qi(shop)}.child (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES parent (id)) ENGINE=InnoDB; INSERT INTO ${qi(shop)}.child VALUES (1, 1);`);
    await nextSecond();
    const at = thisSecond();
    await nextSecond();
    ok(cli(dataDir, ['binlog', 'ship']));
    const before = await contents(shop);
    const alone = cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', at, '--table', 'parent', '--yes']);
    assert.equal(alone.code, 1);
    assert.match(alone.stderr + alone.stdout, /refers to a restored table by a foreign key/);
    assert.deepEqual(await contents(shop), before);
    // Together they are swapped, and the key points at the restored parent.
    ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', at, '--table', 'parent', '--table', 'child', '--yes']));
    const [fk] = await rootQuery(maria.creds, `SELECT REFERENCED_TABLE_NAME AS t, UNIQUE_CONSTRAINT_SCHEMA AS s FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '${shop}' AND TABLE_NAME = 'child'`);
    assert.equal(fk.t, 'parent');
    assert.equal(fk.s, shop);
    assert.deepEqual(await contents(shop), before);
    await rootQuery(maria.creds, `DROP TABLE ${qi(shop)}.child, ${qi(shop)}.parent`);
  });

  test('a table that did not exist then: a clear error, nothing changed', async () => {
    const before = await contents(shop);
    const r = cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', states[1]!.at, '--table', 'nosuch', '--yes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr + r.stdout, /did not exist/);
    assert.deepEqual(await contents(shop), before);
  });

  test('preview: rows now and then per table, and nothing is left behind (nor what a killed restore left)', async () => {
    const dbsBefore = (await rootQuery(maria.creds, 'SHOW DATABASES')).map((r) => r.Database).sort();
    // What a restore killed halfway leaves: its scratch database and replay user, named with its (gone) process id.
    let deadPid = 4_000_000;
    while (fs.existsSync(`/proc/${deadPid}`)) deadPid++;
    await rootQuery(maria.creds, `CREATE DATABASE \`#tidemark-pitr-${deadPid}-0123456789ab\`; CREATE USER 'tidemark-replay-${deadPid}-0123456789ab'@'localhost';`);
    const p = ok(cli(dataDir, ['database', 'preview', shop, '--account', alice.username, '--at', states[1]!.at]));
    const items = p.tables.find((t: { table: string }) => t.table === 'items');
    assert.equal(items.rowsAt, states[1]!.shop.items!.length);
    assert.equal(items.rowsNow, (await contents(shop)).items!.length);
    const orders = p.tables.find((t: { table: string }) => t.table === 'orders');
    assert.equal(orders.rowsAt, 1);
    assert.deepEqual((await rootQuery(maria.creds, 'SHOW DATABASES')).map((r) => r.Database).sort(), dbsBefore);
    const users = await rootQuery(maria.creds, "SELECT User FROM mysql.user WHERE User LIKE 'tidemark-replay-%'");
    assert.deepEqual(users, []);
  });
});

describe('another account, an attacker', () => {
  test("bob's changes in the same logs never reach alice's restore; bob's database is not touched", async () => {
    const bobBefore = await contents(bobDb);
    const into = `${alice.username}_iso`;
    ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', states[states.length - 1]!.at, '--as', into]));
    const got = JSON.stringify(await contents(into));
    assert.ok(!got.includes(hex(BOB_MARK).toUpperCase()), "bob's rows in alice's restore");
    assert.deepEqual(Object.keys(await contents(into)).sort(), Object.keys(states[states.length - 1]!.shop).sort());
    assert.deepEqual(await contents(bobDb), bobBefore);
    // The administrator's CREATE TABLE of bob's database, run from alice's, was not replayed.
    assert.deepEqual(await rootQuery(maria.creds, `SHOW TABLES FROM ${qi(bobDb)} LIKE 'evil'`), []);
    // The values that look like SQL came back as data.
    const [row] = await rootQuery(maria.creds, `SELECT HEX(note) AS h FROM ${qi(into)}.items WHERE id = 3`);
    assert.equal(row.h, hex(EVIL_VALUE).toUpperCase());
    assert.ok((await rootQuery(maria.creds, 'SHOW DATABASES')).some((r) => r.Database === 'mysql'));
  });

  test("why not mariadb-binlog --database: its filter keeps a statement run from alice's database that creates a table in bob's", () => {
    const dir = path.join(destDir, '.binlogs');
    const files = fs.readdirSync(dir).filter((f) => !f.startsWith('.')).sort().map((f) => path.join(dir, f));
    const out = execFileSync('mariadb-binlog', ['--no-defaults', `--database=${shop}`, ...files], { maxBuffer: 256 << 20 }).toString('latin1');
    assert.ok(out.includes(`CREATE TABLE ${qi(bobDb)}.evil`), 'the filtered output would create a table in bob\'s database');
  });

  test("alice cannot restore into bob's database, nor restore bob's database", () => {
    const as = (args: string[]) => cli(dataDir, ['--as-account', alice.username, ...args]);
    const into = as(['database', 'restore', shop, '--account', alice.username, '--at', states[1]!.at, '--as', bobDb]);
    assert.notEqual(into.code, 0);
    assert.match(into.stderr + into.stdout, /not a database name of account/);
    const other = as(['database', 'restore', bobDb, '--account', bob.username, '--at', states[1]!.at, '--yes']);
    assert.notEqual(other.code, 0);
    const own = as(['database', 'restore', bobDb, '--account', alice.username, '--at', states[1]!.at, '--yes']);
    assert.notEqual(own.code, 0);
    assert.match(own.stderr + own.stdout, /not a database name of account/);
  });

  test("the binary logs (with bob's rows) are on the provider's destination only, never in alice's download", () => {
    const logs = fs.readdirSync(path.join(destDir, '.binlogs')).map((f) => fs.readFileSync(path.join(destDir, '.binlogs', f)));
    assert.ok(logs.some((b) => b.includes(Buffer.from(BOB_MARK))), 'the test needs bob\'s rows in the shipped logs');
    const [snap] = ok(cli(dataDir, ['--as-account', alice.username, 'snapshot', 'list', '--account', alice.username]));
    const out = path.join(dataDir, 'alice-download.tar.gz');
    ok(cli(dataDir, ['--as-account', alice.username, 'download', snap.id, '--database', shop, '--out', out]));
    const bytes = zlib.gunzipSync(fs.readFileSync(out));
    assert.ok(!bytes.includes(Buffer.from(BOB_MARK)));
    // No binary log inside (its files start with the magic number fe 'bin').
    assert.ok(!bytes.includes(Buffer.from([0xfe, 0x62, 0x69, 0x6e, 0x00])));
    const other = cli(dataDir, ['--as-account', alice.username, 'binlog', 'status']);
    assert.notEqual(other.code, 0);
  });

  test('an account holder cannot mark a destination for binary logs', () => {
    const r = cli(dataDir, ['--as-account', alice.username, 'binlog', 'destination', 'disk', '--off']);
    assert.notEqual(r.code, 0);
    assert.equal(ok(cli(dataDir, ['binlog', 'status'])).destinations.length, 1);
  });
});

describe('shipping when things go wrong', () => {
  test('a destination unreachable for a while: shipping fails, then the next pass catches up', async () => {
    const away = `${destDir}.away`;
    fs.renameSync(destDir, away);
    fs.writeFileSync(destDir, 'not a folder');
    try {
      await rootQuery(maria.creds, `INSERT INTO ${qi(shop)}.items VALUES (50, 'while away', NULL, NULL, NULL)`);
      const r = cli(dataDir, ['binlog', 'ship']);
      assert.equal(r.code, 1);
      assert.equal(r.json.failed[0].destination, 'disk');
    } finally {
      fs.rmSync(destDir);
      fs.renameSync(away, destDir);
    }
    const r = ok(cli(dataDir, ['binlog', 'ship']));
    // The log closed while the destination was away and the one closed now.
    assert.ok(r.shipped.length >= 2, JSON.stringify(r.shipped));
    const w = ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username]));
    assert.ok(Date.parse(w.to) >= Date.now() - 5000);
  });

  test('regression: a replay that will be refused (a change logged as a statement) leaves the database as it was, not dropped', async () => {
    await rootQuery(maria.creds, `SET SESSION binlog_format = 'STATEMENT'; INSERT INTO ${qi(shop)}.items VALUES (55, 'as a statement', NULL, NULL, NULL);`);
    await nextSecond();
    const at = thisSecond();
    await nextSecond();
    const before = await contents(shop);
    const r = cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', at, '--yes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr + r.stdout, /binlog_format=ROW/);
    assert.deepEqual(await contents(shop), before);
  });

  test('regression: logs purged before they were shipped are a gap: the window shrinks, a moment across it is refused, never a wrong restore', async () => {
    await rootQuery(maria.creds, `FLUSH BINARY LOGS; INSERT INTO ${qi(shop)}.items VALUES (60, 'lost', NULL, NULL, NULL); FLUSH BINARY LOGS;`);
    const [current] = (await rootQuery(maria.creds, 'SHOW MASTER STATUS'));
    await rootQuery(maria.creds, `PURGE BINARY LOGS TO '${current.File}'`);
    await nextSecond();
    const r = ok(cli(dataDir, ['binlog', 'ship']));
    assert.equal(r.gaps.length, 1, JSON.stringify(r));
    const w = ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username]));
    assert.equal(w.from, null);
    assert.equal(w.gaps.length, 1);
    const refused = cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', thisSecond(), '--as', `${alice.username}_gap`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr + refused.stdout, /no point in time is covered|outside the covered window/);
    // A new dump starts a new window after the gap.
    ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
    await nextSecond();
    await rootQuery(maria.creds, `INSERT INTO ${qi(shop)}.items VALUES (61, 'after the gap', NULL, NULL, NULL)`);
    const expected = await contents(shop);
    const at = thisSecond();
    await nextSecond();
    ok(cli(dataDir, ['binlog', 'ship']));
    const w2 = ok(cli(dataDir, ['database', 'window', shop, '--account', alice.username]));
    assert.ok(w2.from !== null && Date.parse(w2.from) <= Date.parse(at), JSON.stringify(w2));
    ok(cli(dataDir, ['database', 'restore', shop, '--account', alice.username, '--at', at, '--as', `${alice.username}_gap`]));
    assert.deepEqual(await contents(`${alice.username}_gap`), expected);
  });

  test('retention keeps the logs the oldest kept dump needs, and no more', async () => {
    const snaps = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username])) as { id: string }[];
    const oldest = snaps[snaps.length - 1]!;
    const before = fs.readdirSync(path.join(destDir, '.binlogs')).filter((f) => !f.startsWith('.')).sort();
    for (const a of [alice.username, bob.username]) {
      const list = ok(cli(dataDir, ['snapshot', 'list', '--account', a])) as { id: string }[];
      ok(cli(dataDir, ['snapshot', 'delete', list[list.length - 1]!.id, '--yes']));
    }
    ok(cli(dataDir, ['binlog', 'ship']));
    const after = fs.readdirSync(path.join(destDir, '.binlogs')).filter((f) => !f.startsWith('.')).sort();
    assert.ok(after.length < before.length, `${before} → ${after}`);
    // What is left starts at the log the newest (now oldest kept) dump starts in.
    const kept = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username])) as { id: string }[];
    const manifest = JSON.parse(fs.readFileSync(path.join(destDir, alice.username, kept[kept.length - 1]!.id, 'manifest.json'), 'utf8'));
    assert.equal(after[0], manifest.databases[0].binlog.file);
    assert.ok(oldest.id !== kept[kept.length - 1]!.id);
  });
});
