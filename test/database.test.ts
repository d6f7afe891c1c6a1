import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { startTestMariaDb } from './support/mariadb.js';
import type { MysqlCredentials } from '../server/panels/types.js';
import { listDatabasesByPrefix, listUserHosts } from '../server/engine/database/discover.js';
import { dumpDatabase, dumpGrants, findClientTool, findDumpTool, stripIdentified } from '../server/engine/database/dump.js';
import { renameGrantTokens, restoreDatabase, restoreGrants, validateDatabaseName } from '../server/engine/database/restore.js';
import { tokenizeSql } from '../server/engine/database/connection.js';

type Db = Awaited<ReturnType<typeof startTestMariaDb>>;
let db: Db;
let root: Connection;

const APP_PASSWORD = `app pw #1 "dq" 'sq' \\bs; end `;
const DUMPER_PASSWORD = `dump#er "pw" \\ 'x' =y `;
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const RANDOM = crypto.randomBytes(200_000);
const LABEL = 'emoji 🦊🎉 and 漢字 かな 한국어 Ωμέγα';
const TRICKY = `quote ' dq " backslash \\ newline \n tab \t nul \0 end`;

async function q(sql: string, values?: unknown[], conn: Connection = root): Promise<any[]> {
  const [rows] = await conn.query(sql, values);
  return rows as any[];
}

async function connectAs(user: string, password: string, database?: string): Promise<Connection> {
  return mysql.createConnection({ socketPath: db.creds.socket!, user, password, ...(database ? { database } : {}) });
}

/** Collects a stream; rejects with its error. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/** The dump as a stream of small, uneven chunks (so that lines are cut anywhere). */
function chunked(buf: Buffer): Readable {
  const parts: Buffer[] = [];
  let i = 0;
  let n = 1;
  while (i < buf.length) {
    n = (n * 7919 + 13) % 4099 + 1;
    parts.push(buf.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts);
}

const TABLES = ['items', 'audit', 'bulk', 'we`ird'];

async function checksums(database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    const rows = await q(`CHECKSUM TABLE \`${database}\`.\`${t.replace(/`/g, '``')}\``);
    out[t] = String(rows[0].Checksum);
  }
  return out;
}

async function rowsHex(database: string): Promise<string> {
  const items = await q(`SELECT id, HEX(label) AS l, HEX(payload) AS p, HEX(vb) AS v FROM \`${database}\`.items ORDER BY id`);
  const bulk = await q(`SELECT id, HEX(data) AS d, txt FROM \`${database}\`.bulk ORDER BY id`);
  const audit = await q(`SELECT * FROM \`${database}\`.audit ORDER BY id`);
  return JSON.stringify({ items, bulk, audit });
}

/** Definitions of the stored objects, read with `database` as the current database (no qualifiers). */
async function definitions(database: string): Promise<Record<string, string>> {
  const conn = await mysql.createConnection({ socketPath: db.creds.socket!, user: 'root', database });
  try {
    const one = async (sql: string, col: string): Promise<string> => {
      const [rows] = await conn.query<RowDataPacket[]>(sql);
      return String(rows[0]![col]);
    };
    const [routines] = await conn.query<RowDataPacket[]>(
      'SELECT ROUTINE_NAME, DATABASE_COLLATION, CHARACTER_SET_CLIENT FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME', [database]);
    const [schema] = await conn.query<RowDataPacket[]>('SELECT DEFAULT_COLLATION_NAME AS c FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    return {
      view: await one('SHOW CREATE VIEW labels', 'Create View'),
      trigger: await one('SHOW CREATE TRIGGER items_ai', 'SQL Original Statement'),
      procedure: await one('SHOW CREATE PROCEDURE add_item', 'Create Procedure'),
      function: await one('SHOW CREATE FUNCTION twice', 'Create Function'),
      legacy: await one('SHOW CREATE FUNCTION legacy_len', 'Create Function'),
      event: await one('SHOW CREATE EVENT purge_audit', 'Create Event'),
      routines: JSON.stringify(routines),
      collation: String(schema[0]!.c),
    };
  } finally {
    await conn.end();
  }
}

function tempDefaultsFiles(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tidemark-my-'));
}

before(async () => {
  db = await startTestMariaDb();
  root = await mysql.createConnection({ socketPath: db.creds.socket!, user: 'root', multipleStatements: true });
  // Created under latin1, then the database default changes: mariadb-dump writes
  // ALTER DATABASE `acct_shop` … around this function, which must follow a rename.
  await q(`CREATE DATABASE acct_shop CHARACTER SET latin1;
    CREATE FUNCTION acct_shop.legacy_len(s VARCHAR(50)) RETURNS INT DETERMINISTIC RETURN CHAR_LENGTH(s);
    ALTER DATABASE acct_shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    USE acct_shop;
    CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(200) CHARACTER SET utf8mb4, payload MEDIUMBLOB, vb VARBINARY(256)) ENGINE=InnoDB;
    CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, item_id INT, at_label VARCHAR(200)) ENGINE=InnoDB;
    CREATE TABLE bulk (id INT PRIMARY KEY, data VARBINARY(64), txt TEXT) ENGINE=InnoDB;
    CREATE TABLE \`we\`\`ird\` (\`co\`\`l\` INT) ENGINE=InnoDB;
    INSERT INTO \`we\`\`ird\` VALUES (1), (2);
    CREATE VIEW labels AS SELECT id, label FROM acct_shop.items WHERE id > 0;
    CREATE TRIGGER items_ai AFTER INSERT ON items FOR EACH ROW INSERT INTO audit (item_id, at_label) VALUES (NEW.id, NEW.label);
    CREATE PROCEDURE add_item(IN p_id INT, IN p_label VARCHAR(200)) BEGIN INSERT INTO items (id, label) VALUES (p_id, p_label); END;
    CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
    CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM audit WHERE id < 0;`);
  await q('INSERT INTO acct_shop.items VALUES (?, ?, ?, ?), (?, ?, ?, ?), (3, NULL, NULL, NULL)', [
    1, LABEL, ALL_BYTES, Buffer.from(ALL_BYTES).reverse(),
    2, TRICKY, RANDOM, crypto.randomBytes(256),
  ]);
  const bulk: unknown[][] = [];
  for (let i = 0; i < 3000; i++) bulk.push([i, crypto.randomBytes(i % 64), `row ${i} ✓ 行 ${'x'.repeat(i % 300)}`]);
  await q('INSERT INTO acct_shop.bulk VALUES ?', [bulk]);

  await q(`CREATE DATABASE acct_a_b; CREATE DATABASE acctx_other; CREATE DATABASE acctXa;
    CREATE USER 'acct_app'@'localhost' IDENTIFIED BY ${root.escape(APP_PASSWORD)};
    CREATE USER 'acct_app'@'127.0.0.1' IDENTIFIED BY 'other-host-pw';
    GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON \`acct\\_shop\`.* TO 'acct_app'@'localhost';
    GRANT SELECT ON acct_shop.bulk TO 'acct_app'@'127.0.0.1';
    CREATE USER 'acctx_user'@'localhost'; CREATE USER 'acctXuser'@'localhost';
    CREATE USER 'acct_dumper'@'localhost' IDENTIFIED BY ${root.escape(DUMPER_PASSWORD)};
    GRANT ALL ON *.* TO 'acct_dumper'@'localhost';
    CREATE USER 'weak'@'localhost' IDENTIFIED BY 'weak-secret-123';
    GRANT SELECT ON acct_shop.* TO 'weak'@'localhost';`);
});

after(async () => {
  await root?.end().catch(() => undefined);
  await db?.stop();
});

test('the tools are found', () => {
  assert.match(findDumpTool(), /\/(mariadb-dump|mysqldump)$/);
  assert.match(findClientTool(), /\/(mariadb|mysql)$/);
});

test('discover: exact prefix match, `_` is not a wildcard', async () => {
  const r = await listDatabasesByPrefix(db.creds, 'acct_');
  assert.deepEqual(r.databases, ['acct_a_b', 'acct_shop']);
  assert.deepEqual(r.users, ['acct_app', 'acct_dumper']);
  assert.deepEqual(await listUserHosts(db.creds, ['acct_app', 'nobody']), [
    { user: 'acct_app', host: '127.0.0.1' },
    { user: 'acct_app', host: 'localhost' },
  ]);
  assert.deepEqual(await listUserHosts(db.creds, []), []);
  await assert.rejects(listDatabasesByPrefix(db.creds, ''), /prefix/);
});

describe('dump and restore of a database', () => {
  let dump: Buffer;
  let sums: Record<string, string>;
  let hex: string;
  let defs: Record<string, string>;

  test('dumps plain SQL without database names, identical when nothing changed', async () => {
    sums = await checksums('acct_shop');
    hex = await rowsHex('acct_shop');
    defs = await definitions('acct_shop');
    const filesBefore = tempDefaultsFiles();
    dump = await collect(dumpDatabase(db.creds, 'acct_shop'));
    const again = await collect(dumpDatabase(db.creds, 'acct_shop'));
    assert.ok(dump.equals(again), 'two dumps of an unchanged database are identical');
    const text = dump.toString('utf8');
    assert.match(text, /^-- Tidemark database defaults: CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci\n/);
    assert.doesNotMatch(text, /^USE /m);
    assert.doesNotMatch(text, /^CREATE DATABASE/m);
    // what mariadb-dump does write with the old name (handled by the restore):
    assert.match(text, /^ALTER DATABASE `acct_shop` CHARACTER SET latin1 /m);
    assert.match(text, /CREATE TRIGGER|TRIGGER items_ai/);
    assert.match(text, /EVENT `purge_audit`/);
    assert.match(text, /FUNCTION `twice`/);
    assert.match(text, /0x000102030405/, 'blobs are dumped in hex');
    assert.deepEqual(tempDefaultsFiles(), filesBefore, 'the option file is deleted');
  });

  test('a user with a password full of special characters can dump (option file quoting)', async () => {
    const out = await collect(dumpDatabase({ socket: db.creds.socket!, user: 'acct_dumper', password: DUMPER_PASSWORD }, 'acct_shop'));
    assert.ok(out.equals(dump));
  });

  test('restores into the same name after a drop: data and objects identical and working', async () => {
    await q('DROP DATABASE acct_shop');
    await restoreDatabase(db.creds, 'acct_shop', chunked(dump));
    assert.deepEqual(await checksums('acct_shop'), sums);
    assert.equal(await rowsHex('acct_shop'), hex);
    assert.deepEqual(await definitions('acct_shop'), defs);
    const [row] = await q('SELECT payload, vb, label FROM acct_shop.items WHERE id = 1');
    assert.ok(Buffer.from(row.payload).equals(ALL_BYTES));
    assert.ok(Buffer.from(row.vb).equals(Buffer.from(ALL_BYTES).reverse()));
    assert.equal(row.label, LABEL);
    const [row2] = await q('SELECT payload, label FROM acct_shop.items WHERE id = 2');
    assert.ok(Buffer.from(row2.payload).equals(RANDOM));
    assert.equal(row2.label, TRICKY);
    // routines, trigger, view work
    assert.equal((await q('SELECT acct_shop.twice(21) AS v'))[0].v, 42);
    assert.equal((await q("SELECT acct_shop.legacy_len('abc') AS v"))[0].v, 3);
    await q("CALL acct_shop.add_item(100, 'added 🦊')");
    assert.equal((await q('SELECT at_label FROM acct_shop.audit WHERE item_id = 100'))[0].at_label, 'added 🦊');
    assert.equal((await q('SELECT label FROM acct_shop.labels WHERE id = 100'))[0].label, 'added 🦊');
    assert.equal((await q("SELECT COUNT(*) AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'acct_shop'"))[0].n, 1);
    await q('DELETE FROM acct_shop.items WHERE id = 100; DELETE FROM acct_shop.audit WHERE item_id = 100');
  });

  test('restores under a new name while the original exists: both work, independently', async () => {
    const originalDefs = await definitions('acct_shop');
    await restoreDatabase(db.creds, 'acct_shop2', chunked(dump));
    assert.deepEqual(await checksums('acct_shop2'), await checksums('acct_shop'));
    assert.equal(await rowsHex('acct_shop2'), await rowsHex('acct_shop'));
    // same definitions, including the database collation of the function created under latin1
    // (the ALTER DATABASE lines of the dump were pointed at acct_shop2)
    assert.deepEqual(await definitions('acct_shop2'), originalDefs);
    assert.deepEqual(await definitions('acct_shop'), originalDefs, 'the original is untouched');
    const [view] = await q("SELECT VIEW_DEFINITION AS d FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'acct_shop2' AND TABLE_NAME = 'labels'");
    assert.match(view.d, /`acct_shop2`\.`items`/);
    assert.doesNotMatch(view.d, /`acct_shop`\./);

    await q("CALL acct_shop2.add_item(200, 'only in the copy')");
    assert.equal((await q('SELECT COUNT(*) AS n FROM acct_shop2.labels WHERE id = 200'))[0].n, 1);
    assert.equal((await q('SELECT COUNT(*) AS n FROM acct_shop2.audit WHERE item_id = 200'))[0].n, 1);
    assert.equal((await q('SELECT COUNT(*) AS n FROM acct_shop.items WHERE id = 200'))[0].n, 0);
    assert.equal((await q('SELECT COUNT(*) AS n FROM acct_shop.audit WHERE item_id = 200'))[0].n, 0);
    await q('UPDATE acct_shop.items SET label = "changed in the original" WHERE id = 3');
    assert.equal((await q('SELECT label FROM acct_shop2.items WHERE id = 3'))[0].label, null);
    await q('UPDATE acct_shop.items SET label = NULL WHERE id = 3');
  });

  test('restores into a new name when the original no longer exists', async () => {
    const copy = await collect(dumpDatabase(db.creds, 'acct_shop2'));
    assert.match(copy.toString('utf8'), /^ALTER DATABASE `acct_shop2` /m);
    const digest = await rowsHex('acct_shop2');
    await q('DROP DATABASE acct_shop2');
    await restoreDatabase(db.creds, 'acct_new', chunked(copy));
    assert.equal(await rowsHex('acct_new'), digest);
    assert.equal((await q("SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'acct_shop2'"))[0].n, 0);
    await q('DROP DATABASE acct_new');
    await restoreDatabase(db.creds, 'acct_shop2', chunked(copy));
    assert.equal(await rowsHex('acct_shop2'), digest);
  });

  test('a dump that fails in the client rejects with its error', async () => {
    const bad = Buffer.from('CREATE TABLE t (a INT);\nTHIS IS NOT SQL;\n');
    await assert.rejects(restoreDatabase(db.creds, 'acct_broken', Readable.from([bad])), (err: Error) => {
      assert.match(err.message, /restoring database `acct_broken` failed/);
      assert.match(err.message, /ERROR 1064/);
      return true;
    });
    await q('DROP DATABASE IF EXISTS acct_broken');
  });

  test('an input stream that fails rejects', async () => {
    const broken = new Readable({ read() { this.push(dump.subarray(0, 5000)); this.destroy(new Error('disk on fire')); } });
    await assert.rejects(restoreDatabase(db.creds, 'acct_cut', broken), /disk on fire/);
    await q('DROP DATABASE IF EXISTS acct_cut');
  });
});

describe('users and grants', () => {
  let grants: string;
  let before: { local: string[]; other: string[] };
  const showGrants = async (host: string): Promise<string[]> =>
    (await q(`SHOW GRANTS FOR 'acct_app'@'${host}'`)).map((r) => String(Object.values(r)[0])).sort();

  test('dumps CREATE USER IF NOT EXISTS and GRANTs without passwords in GRANT lines', async () => {
    assert.equal(await dumpGrants(db.creds, []), '');
    assert.equal(await dumpGrants(db.creds, ['nobody_here']), '');
    grants = await dumpGrants(db.creds, ['acct_app']);
    before = { local: await showGrants('localhost'), other: await showGrants('127.0.0.1') };
    assert.match(grants, /^CREATE USER IF NOT EXISTS `acct_app`@`localhost` IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}';\n/m);
    assert.match(grants, /^CREATE USER IF NOT EXISTS `acct_app`@`127\.0\.0\.1` /m);
    assert.match(grants, /^GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `acct\\_shop`\.\* TO `acct_app`@`localhost`;\n/m);
    for (const line of grants.split('\n').filter((l) => l.startsWith('GRANT'))) {
      assert.doesNotMatch(line, /IDENTIFIED/);
      assert.ok(line.endsWith(';'));
    }
    assert.ok(!grants.includes(APP_PASSWORD));
  });

  test('restores dropped users: same grants, the old password works', async () => {
    await q("DROP USER 'acct_app'@'localhost', 'acct_app'@'127.0.0.1'");
    await restoreGrants(db.creds, grants, undefined, null);
    assert.deepEqual(await showGrants('localhost'), before.local);
    assert.deepEqual(await showGrants('127.0.0.1'), before.other);
    const app = await connectAs('acct_app', APP_PASSWORD, 'acct_shop');
    try {
      const [rows] = await app.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM items');
      assert.equal(Number(rows[0]!.n), 3);
      await assert.rejects(app.query('DROP TABLE items'), /denied/);
    } finally {
      await app.end();
    }
    // idempotent
    await restoreGrants(db.creds, grants, undefined, null);
    assert.deepEqual(await showGrants('localhost'), before.local);
  });

  test('an existing user keeps its current password', async () => {
    await q("ALTER USER 'acct_app'@'localhost' IDENTIFIED BY 'changed-later'");
    await restoreGrants(db.creds, grants, undefined, null);
    const app = await connectAs('acct_app', 'changed-later');
    await app.end();
    await q(`ALTER USER 'acct_app'@'localhost' IDENTIFIED BY ${root.escape(APP_PASSWORD)}`);
  });

  test('with a rename, the grants point at the new database', async () => {
    await q("DROP USER 'acct_app'@'localhost', 'acct_app'@'127.0.0.1'");
    await restoreGrants(db.creds, grants, new Map([['acct_shop', 'acct_shop2']]), null);
    const local = await showGrants('localhost');
    assert.ok(local.includes('GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `acct\\_shop2`.* TO `acct_app`@`localhost`'), local.join('\n'));
    assert.ok(!local.some((g) => g.includes('`acct\\_shop`.')));
    assert.ok((await showGrants('127.0.0.1')).includes('GRANT SELECT ON `acct_shop2`.`bulk` TO `acct_app`@`127.0.0.1`'));
    const app = await connectAs('acct_app', APP_PASSWORD);
    try {
      const [rows] = await app.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM acct_shop2.items');
      assert.ok(Number(rows[0]!.n) >= 3);
      await assert.rejects(app.query('SELECT * FROM acct_shop.items'), /denied/);
    } finally {
      await app.end();
    }
  });

  test('rename rules: escaped and plain patterns, wildcards left alone, backticks', () => {
    const rw = (sql: string, m: [string, string][]): string => renameGrantTokens(tokenizeSql(sql), new Map(m)).map((t) => t.text).join('');
    const map: [string, string][] = [['acct_shop', 'acct_new_1']];
    assert.equal(rw('GRANT ALL PRIVILEGES ON `acct\\_shop`.* TO `u`@`h`', map), 'GRANT ALL PRIVILEGES ON `acct\\_new\\_1`.* TO `u`@`h`');
    assert.equal(rw('GRANT SELECT ON `acct_shop`.`t` TO `u`@`h`', map), 'GRANT SELECT ON `acct_new_1`.`t` TO `u`@`h`');
    assert.equal(rw('GRANT EXECUTE ON PROCEDURE `acct_shop`.`p` TO `u`@`h`', map), 'GRANT EXECUTE ON PROCEDURE `acct_new_1`.`p` TO `u`@`h`');
    assert.equal(rw('GRANT ALL ON `acct\\_%`.* TO `u`@`h`', map), 'GRANT ALL ON `acct\\_%`.* TO `u`@`h`');
    assert.equal(rw('GRANT ALL ON `acct\\_shopx`.* TO `u`@`h`', map), 'GRANT ALL ON `acct\\_shopx`.* TO `u`@`h`');
    assert.equal(rw('GRANT ALL ON `a``b`.* TO `u`@`h`', [['a`b', 'c`d']]), 'GRANT ALL ON `c``d`.* TO `u`@`h`');
    assert.equal(rw("GRANT USAGE ON *.* TO `acct_shop`@`h`", map), 'GRANT USAGE ON *.* TO `acct_shop`@`h`');
    assert.equal(
      stripIdentified("GRANT RELOAD ON *.* TO `u`@`%` IDENTIFIED VIA mysql_native_password USING '*AB' OR unix_socket REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5"),
      'GRANT RELOAD ON *.* TO `u`@`%` REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5');
    assert.equal(stripIdentified("GRANT USAGE ON *.* TO `u`@`h` IDENTIFIED BY PASSWORD '*AB'"), 'GRANT USAGE ON *.* TO `u`@`h`');
  });
});

describe('errors', () => {
  const wrong: MysqlCredentials = { socket: '', user: 'root', password: 'S3cret-Wrong-pw!' };
  before(() => { wrong.socket = db.creds.socket!; });

  test('dumping a missing database rejects with a clear message', async () => {
    await assert.rejects(collect(dumpDatabase(db.creds, 'acct_missing')), /cannot dump database `acct_missing`: it does not exist/);
  });

  test('a dump tool failure carries its stderr, not the password', async () => {
    const weak: MysqlCredentials = { socket: db.creds.socket!, user: 'weak', password: 'weak-secret-123' };
    await assert.rejects(collect(dumpDatabase(weak, 'acct_shop')), (err: Error) => {
      assert.match(err.message, /mariadb-dump|mysqldump/);
      assert.match(err.message, /failed for database `acct_shop` \(exit code \d+\): .*denied/is);
      assert.ok(!err.message.includes('weak-secret-123'));
      return true;
    });
  });

  test('wrong credentials: a clear error without the password', async () => {
    const check = (err: Error): boolean => {
      assert.match(err.message, /cannot reach the MySQL server at socket .* as user 'root': Access denied/);
      assert.ok(!err.message.includes(wrong.password!), err.message);
      return true;
    };
    await assert.rejects(listDatabasesByPrefix(wrong, 'acct_'), check);
    await assert.rejects(collect(dumpDatabase(wrong, 'acct_shop')), check);
    await assert.rejects(dumpGrants(wrong, ['acct_app']), check);
    await assert.rejects(restoreDatabase(wrong, 'acct_shop3', Readable.from([Buffer.from('SELECT 1;\n')])), check);
    await assert.rejects(restoreGrants(wrong, 'SELECT 1;\n', undefined, null), check);
    const nowhere: MysqlCredentials = { socket: '/nonexistent/mysql.sock', user: 'root', password: 'S3cret-Wrong-pw!' };
    await assert.rejects(listDatabasesByPrefix(nowhere, 'acct_'), (err: Error) => {
      assert.match(err.message, /cannot reach the MySQL server at socket \/nonexistent\/mysql\.sock/);
      assert.ok(!err.message.includes('S3cret'));
      return true;
    });
  });

  test('database names are validated', async () => {
    for (const [name, why] of [['', /empty/], ['a/b', /"\/"/], ['a\\b', /"\\"/], ['a.b', /"\."/], ['a\0b', /NUL/], ['x'.repeat(65), /64/]] as const) {
      assert.throws(() => validateDatabaseName(name), why);
      await assert.rejects(restoreDatabase(db.creds, name, Readable.from([Buffer.from('')])), why);
      await assert.rejects(collect(dumpDatabase(db.creds, name)), why);
    }
    validateDatabaseName('x'.repeat(64));
    validateDatabaseName('acct_🦊');
    await assert.rejects(restoreGrants(db.creds, 'SELECT 1;', new Map([['acct_shop', 'a/b']]), null), /invalid database name/);
  });

  test('grants that cannot be applied are reported together, the others applied', async () => {
    const script = "CREATE USER IF NOT EXISTS `acct_tmp`@`localhost`;\nGRANT SELECT ON `acct_nosuchdb`.`nosuchtable` TO `acct_tmp`@`localhost`;\nGRANT SELECT ON `acct\\_shop`.* TO `acct_tmp`@`localhost`;\n";
    await assert.rejects(restoreGrants(db.creds, script, undefined, null), /1 of 3 statements failed: GRANT SELECT ON `acct_nosuchdb`/);
    const rows = await q("SHOW GRANTS FOR 'acct_tmp'@'localhost'");
    assert.ok(rows.some((r) => String(Object.values(r)[0]).includes('`acct\\_shop`.*')));
    await q("DROP USER 'acct_tmp'@'localhost'");
  });
});
