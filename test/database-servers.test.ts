/**
 * Database servers as they are deployed: the same discovery, dump and restore on a matrix of real
 * MariaDB configurations, each a private server started once with Debian's configuration files
 * plus the option under test. And a default job (files, databases, database users) on Debian's
 * stock configuration.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import { startTestMariaDb, type TestMariaDb, rootQuery } from './support/mariadb.js';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { listDatabasesByPrefix, listUserHosts } from '../server/engine/database/discover.js';
import { dumpDatabase, dumpGrants } from '../server/engine/database/dump.js';
import { restoreDatabase, restoreGrants } from '../server/engine/database/restore.js';
import { DatabaseOwnership } from '../server/panels/database-owner.js';

const CONFIGURATIONS: { name: string; config: string[] }[] = [
  { name: "Debian's stock configuration", config: [] },
  { name: 'utf8mb4_unicode_ci', config: ['character-set-server = utf8mb4', 'collation-server = utf8mb4_unicode_ci'] },
  { name: 'utf8mb4_uca1400_ai_ci (the MariaDB 11 default)', config: ['character-set-server = utf8mb4', 'collation-server = utf8mb4_uca1400_ai_ci'] },
  { name: 'latin1 server default', config: ['character-set-server = latin1', 'collation-server = latin1_swedish_ci'] },
  { name: 'lower_case_table_names=1', config: ['lower-case-table-names = 1'] },
  {
    name: 'sql_mode with ANSI_QUOTES and NO_BACKSLASH_ESCAPES',
    config: ['sql-mode = "ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"'],
  },
];

/** An awkward table and column name, and a value full of quotes and backslashes. */
const TABLE = 'we"ir`d \'tbl\' \\x';
const COLUMN = 'co"l\\';
const VALUE = 'back\\slash \'single\' "double" \\n \\\\ ; -- end 🦊';
const PLAIN = 'café \\ "q"';
const PASSWORD = 'p\'w"\\x';
const qi = (n: string): string => '`' + n.replace(/`/g, '``') + '`';
const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');



async function makeShop(maria: TestMariaDb): Promise<void> {
  await rootQuery(maria.creds, `CREATE DATABASE acct_shop;
    CREATE TABLE acct_shop.${qi(TABLE)} (id INT PRIMARY KEY, ${qi(COLUMN)} VARCHAR(200) CHARACTER SET utf8mb4, plain VARCHAR(50), bin VARBINARY(16));
    INSERT INTO acct_shop.${qi(TABLE)} VALUES (1, CONVERT(UNHEX('${hex(VALUE)}') USING utf8mb4), CONVERT(UNHEX('${hex(PLAIN)}') USING utf8mb4), UNHEX('00275C220A0D1A'));
    CREATE FUNCTION acct_shop.label() RETURNS VARCHAR(50) CHARACTER SET utf8mb4 DETERMINISTIC RETURN CONCAT('q''s \\n ', 'x');
    CREATE USER 'acct_app'@'localhost' IDENTIFIED BY '${PASSWORD.replace(/\\/g, '\\\\').replace(/'/g, "''")}';
    GRANT SELECT, INSERT ON \`acct\\_shop\`.* TO 'acct_app'@'localhost';`.replace(/^\s+/gm, ''));
}

/** The rows, and what each stored function of the database returns. */
async function contents(maria: TestMariaDb, database: string): Promise<string> {
  const rows = await rootQuery(maria.creds, `SELECT id, HEX(${qi(COLUMN)}) AS v, HEX(plain) AS p, HEX(bin) AS b FROM ${qi(database)}.${qi(TABLE)} ORDER BY id`);
  const functions = (await rootQuery(maria.creds, 'SHOW FUNCTION STATUS')).filter((r) => r.Db === database).map((r) => String(r.Name)).sort();
  const results: Record<string, string> = {};
  for (const f of functions) results[f] = String((await rootQuery(maria.creds, `SELECT HEX(${qi(database)}.${qi(f)}()) AS f`))[0].f);
  return JSON.stringify({ rows, results });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

for (const { name, config } of CONFIGURATIONS) {
  describe(`MariaDB with ${name}`, () => {
    let maria: TestMariaDb;
    let original: string;
    let dump: Buffer;

    before(async () => {
      maria = await startTestMariaDb({ serverConfig: config });
      // The session the server gives by default: Tidemark must not depend on it.
      if (name.includes('ANSI_QUOTES')) {
        const [m] = await rootQuery(maria.creds, 'SELECT @@GLOBAL.sql_mode AS m');
        assert.match(m.m, /ANSI_QUOTES/);
        assert.match(m.m, /NO_BACKSLASH_ESCAPES/);
        // The setup's SQL text below is written for the default quoting.
        await rootQuery(maria.creds, "SET GLOBAL sql_mode = 'STRICT_TRANS_TABLES'");
        await makeShop(maria);
        await rootQuery(maria.creds, `SET GLOBAL sql_mode = '${m.m}'`);
        // A routine stored under the server's mode: its body reads 'a\b' as three characters.
        await rootQuery(maria.creds, "CREATE FUNCTION acct_shop.nbe() RETURNS VARCHAR(20) DETERMINISTIC RETURN 'a\\b \"x\"'");
        assert.equal((await rootQuery(maria.creds, 'SELECT acct_shop.nbe() AS v'))[0].v, 'a\\b "x"');
      } else {
        await makeShop(maria);
      }
      original = await contents(maria, 'acct_shop');
    });
    after(async () => { await maria?.stop(); });

    test('discovery lists the account\'s databases and users', async () => {
      const found = await listDatabasesByPrefix(maria.creds, 'acct_');
      assert.deepEqual(found, { databases: ['acct_shop'], users: ['acct_app'] });
      assert.deepEqual(await listUserHosts(maria.creds, ['acct_app']), [{ user: 'acct_app', host: 'localhost' }]);
    });

    test('dump, then restore in place: identical', async () => {
      dump = await collect(dumpDatabase(maria.creds, 'acct_shop'));
      await rootQuery(maria.creds, 'DROP DATABASE acct_shop');
      await restoreDatabase(maria.creds, 'acct_shop', Readable.from([dump]));
      assert.equal(await contents(maria, 'acct_shop'), original);
    });

    const renameTitle = name.includes('ANSI_QUOTES')
      ? 'regression: under ANSI_QUOTES a restored user\'s grants do not follow a database restored under a new name'
      : 'restore under a new name, with the users and grants following';
    test(renameTitle, async () => {
      await restoreDatabase(maria.creds, 'acct_copy', Readable.from([dump]));
      assert.equal(await contents(maria, 'acct_copy'), original);
      const grants = await dumpGrants(maria.creds, ['acct_app']);
      await rootQuery(maria.creds, "DROP USER 'acct_app'@'localhost'");
      const { skipped } = await restoreGrants(maria.creds, grants, new Map([['acct_shop', 'acct_copy']]), { account: 'acct', ownership: new DatabaseOwnership(['acct']) });
      assert.deepEqual(skipped, []);
      const app: Connection = await mysql.createConnection({ socketPath: maria.creds.socket!, user: 'acct_app', password: PASSWORD, database: 'acct_copy' });
      try {
        const [rows] = await app.query(`SELECT COUNT(*) AS n FROM ${qi(TABLE)}`);
        assert.equal(Number((rows as any[])[0].n), 1);
      } finally {
        await app.end();
      }
    });

    if (name.startsWith("Debian's")) {
      test('regression: every backup job with the default items fails on Debian\'s stock configuration (Illegal mix of collations)', async () => {
        const homeRoot = makeHomeRoot();
        let account: TestAccount | undefined;
        const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds });
        const destDir = makeDestinationDir();
        try {
          account = createAccount(homeRoot);
          fs.writeFileSync(path.join(account.home, 'index.php'), '<?php echo 1;');
          fs.chownSync(path.join(account.home, 'index.php'), account.uid, account.gid);
          const db = `${account.username}_wp`;
          await rootQuery(maria.creds, `CREATE DATABASE ${qi(db)}; CREATE TABLE ${qi(db)}.posts (t TEXT); INSERT INTO ${qi(db)}.posts VALUES ('hello');
            CREATE USER '${account.username}_wp'@'localhost' IDENTIFIED BY 'pw'; GRANT ALL ON ${qi(db.replace(/_/g, '\\_'))}.* TO '${account.username}_wp'@'localhost';`);
          ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
          ok(cli(dataDir, ['job', 'add', '--name', 'daily', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username]));
          const r = ok(cli(dataDir, ['backup', '--job', 'daily', '--wait']));
          assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
          const [snap] = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username]));
          assert.deepEqual(snap.items, ['files', 'databases', 'database-users']);
          assert.deepEqual(snap.databases, [db]);
          await rootQuery(maria.creds, `DROP DATABASE ${qi(db)}; DROP USER '${account.username}_wp'@'localhost'`);
          ok(cli(dataDir, ['restore', snap.id, '--database', db, '--wait']));
          const app = await mysql.createConnection({ socketPath: maria.creds.socket!, user: `${account.username}_wp`, password: 'pw', database: db });
          const [rows] = await app.query('SELECT t FROM posts');
          await app.end();
          assert.deepEqual((rows as any[]).map((x) => x.t), ['hello']);
        } finally {
          if (account) removeAccount(account);
          for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
        }
      });
    }
  });
}
