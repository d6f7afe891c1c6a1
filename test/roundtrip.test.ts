import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree, LONG_NAME, NON_UTF8_NAME } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { startTestMariaDb } from './support/mariadb.js';
import type { MysqlCredentials } from '../server/panels/types.js';

type Db = Awaited<ReturnType<typeof startTestMariaDb>>;
let db: Db;
let homeRoot: string;
let account: TestAccount;
const cleanups: (() => void)[] = [];

async function sql(creds: MysqlCredentials, statements: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: creds.socket!, user: creds.user, multipleStatements: true, ...(database ? { database } : {}) });
  try {
    const [rows] = await conn.query(statements);
    return rows as any[];
  } finally {
    await conn.end();
  }
}

const dbName = (): string => `${account.username}_shop`;

async function makeDatabase(): Promise<void> {
  await sql(db.creds, `CREATE DATABASE \`${dbName()}\` CHARACTER SET utf8mb4;
    CREATE USER '${account.username}_app'@'localhost' IDENTIFIED BY 'pw-${account.username}';
    GRANT SELECT, INSERT ON \`${dbName()}\`.* TO '${account.username}_app'@'localhost';`);
  await sql(db.creds, `
    CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(100) CHARACTER SET utf8mb4, payload BLOB) ENGINE=InnoDB;
    INSERT INTO items VALUES (1, 'emoji 🦊 and 漢字', UNHEX('00FF7F80')), (2, 'quote '' and \\\\ backslash', RANDOM_BYTES(64));
    CREATE VIEW labels AS SELECT label FROM items;
    CREATE TABLE audit (n INT);
    CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
    CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;`, dbName());
}

async function tableDigest(database: string): Promise<string> {
  const rows = await sql(db.creds, 'SELECT id, label, HEX(payload) AS p FROM items ORDER BY id', database);
  return JSON.stringify(rows);
}

before(async () => {
  db = await startTestMariaDb();
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  buildTrickyTree(account);
  await makeDatabase();
});

after(async () => {
  for (const c of cleanups) c();
  if (account) removeAccount(account);
  if (homeRoot) fs.rmSync(homeRoot, { recursive: true, force: true });
  await db?.stop();
});

for (const structure of ['incremental', 'archive', 'compressed'] as const) {
  describe(`${structure} structure`, () => {
    let dataDir: string;
    let destDir: string;
    let snapshot: string;
    let before: ReturnType<typeof snapshotTree>;

    test('backs up files and databases', () => {
      dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: db.creds });
      destDir = makeDestinationDir();
      cleanups.push(() => { fs.rmSync(dataDir, { recursive: true, force: true }); fs.rmSync(destDir, { recursive: true, force: true }); });
      ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
      ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', structure, '--accounts', account.username]));
      before = snapshotTree(account.home, { skip: (p) => p.startsWith('tidemark-restore-') });
      const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
      assert.equal(r.snapshots.length, 1);
      snapshot = r.snapshots[0];
      assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
      const list = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username]));
      assert.deepEqual(list.map((s: any) => s.id), [snapshot]);
      assert.deepEqual(list[0].databases, [dbName()]);
    });

    test('restores the whole home byte-exactly into a new folder', () => {
      const r = ok(cli(dataDir, ['restore', snapshot, '--into-folder', '--wait']));
      assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
      const folder = path.join(account.home, r.folder);
      try {
        assert.deepEqual(diffTrees(before, snapshotTree(folder)), []);
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    });

    test('restores chosen paths into place, leaving the rest', () => {
      const h = account.home;
      fs.writeFileSync(path.join(h, 'public_html/index.php'), 'defaced');
      fs.rmSync(Buffer.concat([Buffer.from(h + '/'), NON_UTF8_NAME]));
      fs.writeFileSync(path.join(h, 'public_html/new-upload.txt'), 'made after the backup');
      const r = ok(cli(dataDir, ['restore', snapshot, '--path', 'public_html', '--path-base64', NON_UTF8_NAME.toString('base64'), '--wait']));
      assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
      assert.equal(fs.readFileSync(path.join(h, 'public_html/index.php'), 'utf8'), '<?php echo "hello"; ?>\n');
      assert.equal(fs.readFileSync(Buffer.concat([Buffer.from(h + '/'), NON_UTF8_NAME]), 'utf8'), 'latin1 name\n');
      assert.equal(fs.readFileSync(path.join(h, 'public_html/new-upload.txt'), 'utf8'), 'made after the backup');
      // hardlink-b's first name (hardlink-a) is outside what was restored: it comes back as its own file.
      assert.equal(fs.readFileSync(path.join(h, 'public_html/hardlink-b'), 'utf8'), 'shared inode\n');
      const skip = (p: string): boolean => p.startsWith('tidemark-restore-') || p === 'public_html/new-upload.txt';
      const strip = (t: ReturnType<typeof snapshotTree>) => { for (const k of ['hardlink-a', 'public_html/hardlink-b']) t.delete(k); return t; };
      const now = snapshotTree(h, { skip });
      assert.deepEqual(diffTrees(strip(new Map(before)), strip(now), { ignoreRootTimes: true }), []);
      fs.rmSync(path.join(h, 'public_html/new-upload.txt'));
    });

    test('lists and browses files with exact names', () => {
      const top = ok(cli(dataDir, ['snapshot', 'files', snapshot]));
      const names = top.map((e: any) => e.name);
      assert.ok(names.includes(LONG_NAME));
      const odd = top.find((e: any) => e.pathBase64 === NON_UTF8_NAME.toString('base64'));
      assert.ok(odd, 'a non-UTF-8 name is listed with its bytes');
      const sub = ok(cli(dataDir, ['snapshot', 'files', snapshot, 'public_html/sub dir']));
      assert.deepEqual(sub.map((e: any) => e.name), ['q?mark*star [x].txt']);
      assert.equal(sub[0].size, 'odd name\n'.length);
    });

    test('restores a database identically, and under a new name', async () => {
      const digest = await tableDigest(dbName());
      await sql(db.creds, `DROP DATABASE \`${dbName()}\`; DROP USER '${account.username}_app'@'localhost';`);
      ok(cli(dataDir, ['restore', snapshot, '--database', dbName(), '--wait']));
      assert.equal(await tableDigest(dbName()), digest);
      const [view] = await sql(db.creds, 'SELECT COUNT(*) AS n FROM labels', dbName());
      assert.equal(Number(view.n), 2);
      const [fn] = await sql(db.creds, 'SELECT twice(21) AS v', dbName());
      assert.equal(Number(fn.v), 42);
      await sql(db.creds, "INSERT INTO items VALUES (3, 'x', NULL)", dbName());
      const [audit] = await sql(db.creds, 'SELECT COUNT(*) AS n FROM audit WHERE n = 3', dbName());
      assert.equal(Number(audit.n), 1, 'the trigger came back');
      await sql(db.creds, 'DELETE FROM items WHERE id = 3; DELETE FROM audit WHERE n = 3;', dbName());
      const app = await mysql.createConnection({ socketPath: db.creds.socket!, user: `${account.username}_app`, password: `pw-${account.username}`, database: dbName() });
      const [rows] = await app.query('SELECT COUNT(*) AS n FROM items');
      await app.end();
      assert.equal(Number((rows as any[])[0].n), 2, 'the database user and its grants came back');

      const copy = `${account.username}_copy${structure.slice(0, 3)}`;
      ok(cli(dataDir, ['restore', snapshot, '--database', dbName(), '--as', copy, '--wait']));
      assert.equal(await tableDigest(copy), digest);
      await sql(db.creds, `DROP DATABASE \`${copy}\``);
    });

    test('downloads chosen paths and a database as a .tar.gz', async () => {
      const out = path.join(destDir, '..', `dl-${structure}-${process.pid}.tar.gz`);
      cleanups.push(() => fs.rmSync(out, { force: true }));
      const r = ok(cli(dataDir, ['download', snapshot, '--path', 'public_html/sub dir', '--database', dbName(), '--out', out]));
      assert.equal(r.files, 2);
      const { execFileSync } = await import('node:child_process');
      const list = execFileSync('tar', ['-tzf', out]).toString().split('\n').filter(Boolean).sort();
      assert.deepEqual(list, ['databases/', `databases/${dbName()}.sql.gz`, 'files/', 'files/public_html/', 'files/public_html/sub dir/', 'files/public_html/sub dir/q?mark*star [x].txt']);
      const content = execFileSync('tar', ['-xzOf', out, 'files/public_html/sub dir/q?mark*star [x].txt']).toString();
      assert.equal(content, 'odd name\n');
    });
  });
}
