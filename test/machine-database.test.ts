/**
 * The machine's own running database server, configured as its package left it: when one
 * answers on the standard socket as root, a throwaway database (random name) of a real
 * account is backed up with a default job, restored under a new name, compared row by row,
 * and both are dropped. Skipped, saying why, when there is none.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';

const SOCKET = '/run/mysqld/mysqld.sock';
const qi = (n: string): string => '`' + n.replace(/`/g, '``') + '`';

/** Why the machine's server cannot be used, or null when root gets in over the socket. */
async function unavailable(): Promise<string | null> {
  if (!fs.existsSync(SOCKET)) return `no database server answers on ${SOCKET} on this machine`;
  try {
    const c = await mysql.createConnection({ socketPath: SOCKET, user: 'root', connectTimeout: 3000 });
    await c.end();
    return null;
  } catch (err) {
    return `the database server on ${SOCKET} does not let root in over its socket: ${(err as Error).message}`;
  }
}

const skip = await unavailable();
if (skip !== null) process.stdout.write(`# machine database server: skipped: ${skip}\n`);

let homeRoot: string;
let account: TestAccount | undefined;
const dropLater: string[] = [];
const cleanups: string[] = [];

async function sql(statements: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: SOCKET, user: 'root', multipleStatements: true, ...(database ? { database } : {}) });
  try {
    const [rows] = await conn.query(statements);
    return rows as any[];
  } finally {
    await conn.end();
  }
}

before(() => {
  if (skip !== null) return;
  homeRoot = makeHomeRoot();
  cleanups.push(homeRoot);
});

after(async () => {
  if (skip !== null) return;
  for (const db of dropLater) await sql(`DROP DATABASE IF EXISTS ${qi(db)}`).catch(() => undefined);
  if (account) removeAccount(account);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
});

test("the machine's own database server: a default job backs up a throwaway database, restored under a new name", { skip: skip ?? false }, async () => {
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'index.php'), '<?php echo 1;');
  fs.chownSync(path.join(account.home, 'index.php'), account.uid, account.gid);
  // The account's prefix is random (createAccount): no existing database can have these names.
  const db = `${account.username}_dr`;
  const copy = `${account.username}_copy`;
  dropLater.push(db, copy);
  const [server] = await sql('SELECT VERSION() AS v, @@collation_server AS c, @@sql_mode AS m');
  await sql(`CREATE DATABASE ${qi(db)};
    CREATE TABLE ${qi(db)}.posts (id INT PRIMARY KEY, title VARCHAR(100), body BLOB) ENGINE=InnoDB;
    INSERT INTO ${qi(db)}.posts VALUES (1, 'café 🦊', UNHEX('00FF275C0A')), (2, 'quote '' and \\\\ backslash', NULL);`);
  const expected = await sql('SELECT id, HEX(title) AS t, HEX(body) AS b FROM posts ORDER BY id', db);

  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: { socket: SOCKET, user: 'root' } });
  const destDir = makeDestinationDir();
  cleanups.push(dataDir, destDir);
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'default', '--destination', 'disk', '--structure', 'compressed', '--accounts', account.username]));
  const r = ok(cli(dataDir, ['backup', '--job', 'default', '--wait']));
  assert.equal(r.results[0].status, 'completed', `${server.v} (${server.c}, sql_mode ${server.m}): ${JSON.stringify(r.results)}`);
  const [snap] = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username]));
  assert.deepEqual(snap.databases, [db]);

  const restored = ok(cli(dataDir, ['restore', snap.id, '--database', db, '--as', copy, '--wait']));
  assert.deepEqual(restored.databases.map((d: any) => d.restoredAs), [copy]);
  assert.deepEqual(await sql('SELECT id, HEX(title) AS t, HEX(body) AS b FROM posts ORDER BY id', copy), expected);
  await sql(`DROP DATABASE ${qi(db)}; DROP DATABASE ${qi(copy)};`);
  const gone = (await sql('SHOW DATABASES')).map((x: any) => x.Database);
  assert.ok(!gone.includes(db) && !gone.includes(copy), 'both are dropped');
});
