/**
 * Which account a database name belongs to: one rule for discovery and restore. Real accounts
 * `bob` and `bob_x` (random names with that prefix relation), the private MariaDB, the CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { startTestMariaDb, type TestMariaDb, rootQuery } from './support/mariadb.js';
import { DatabaseOwnership } from '../server/panels/database-owner.js';
import { createPanelAdapter } from '../server/panels/index.js';
import { configSchema } from '../server/config-schema.js';
import { refusedGrant } from '../server/engine/database/restore.js';
import { splitStatements } from '../server/engine/database/connection.js';

let maria: TestMariaDb;
let homeRoot: string;
let bob: TestAccount;
let bobX: TestAccount;
let dataDir: string;
let destDir: string;
let snapshot: string;

const sql = (statements: string, database?: string): Promise<any[]> => rootQuery(maria.creds, statements, database);

const secretOf = async (database: string): Promise<string[]> => (await sql('SELECT v FROM secret ORDER BY v', database)).map((r) => String(r.v));
const grantsOf = async (user: string): Promise<string> => (await sql(`SHOW GRANTS FOR '${user}'@'localhost'`)).map((r) => String(Object.values(r)[0])).join('\n');

before(async () => {
  maria = await startTestMariaDb();
  homeRoot = makeHomeRoot();
  bob = createAccount(homeRoot);
  // `bob_x`: its names start with `bob_` too.
  bobX = createAccount(homeRoot, `${bob.username}_`);
  await sql(`CREATE DATABASE \`${bob.username}_app\`;
    CREATE TABLE \`${bob.username}_app\`.secret (v VARCHAR(50)); INSERT INTO \`${bob.username}_app\`.secret VALUES ('bob data');
    CREATE USER '${bob.username}_u'@'localhost' IDENTIFIED BY 'bob-pw';
    GRANT ALL ON \`${bob.username}\\_app\`.* TO '${bob.username}_u'@'localhost';
    CREATE DATABASE \`${bobX.username}_shop\`;
    CREATE TABLE \`${bobX.username}_shop\`.secret (v VARCHAR(50)); INSERT INTO \`${bobX.username}_shop\`.secret VALUES ('bob_x orders');
    CREATE USER '${bobX.username}_u'@'localhost' IDENTIFIED BY 'bobx-pw';
    GRANT ALL ON \`${bobX.username}\\_shop\`.* TO '${bobX.username}_u'@'localhost';`);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--accounts', `${bob.username},${bobX.username}`]));
  const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
  assert.ok(r.results.every((x: any) => x.status === 'completed'), JSON.stringify(r.results));
  const list = ok(cli(dataDir, ['snapshot', 'list', '--account', bob.username]));
  snapshot = list[0].id;
});

after(async () => {
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  if (destDir) fs.rmSync(destDir, { recursive: true, force: true });
  for (const a of [bobX, bob]) if (a) removeAccount(a);
  if (homeRoot) fs.rmSync(homeRoot, { recursive: true, force: true });
  await maria?.stop();
});

describe('database names between accounts bob and bob_x', () => {
  test('discovery: bob_x_shop is bob_x\'s, never bob\'s', () => {
    const bobs = ok(cli(dataDir, ['snapshot', 'list', '--account', bob.username]));
    assert.deepEqual(bobs[0].databases, [`${bob.username}_app`]);
    const bobXs = ok(cli(dataDir, ['snapshot', 'list', '--account', bobX.username]));
    assert.deepEqual(bobXs[0].databases, [`${bobX.username}_shop`]);
  });

  test('regression: restoring a database under a new name can take over another account\'s database', async () => {
    const target = `${bobX.username}_shop`;
    for (const as of [target, `${bobX.username}_new`, target.toUpperCase()]) {
      const r = cli(dataDir, ['restore', snapshot, '--database', `${bob.username}_app`, '--as', as, '--wait']);
      assert.notEqual(r.code, 0, `restoring as ${as} must be refused: ${r.stdout}`);
      assert.match(r.stderr + r.stdout, new RegExp(`not a database name of account ${bob.username}`));
    }
    // bob_x's database is untouched, and bob's user got nothing on it.
    assert.deepEqual(await secretOf(target), ['bob_x orders']);
    assert.doesNotMatch(await grantsOf(`${bob.username}_u`), new RegExp(bobX.username));
    const names = (await sql('SHOW DATABASES')).map((r) => String(Object.values(r)[0]));
    assert.ok(!names.includes(`${bobX.username}_new`), 'no database was created under bob_x\'s names');
  });

  test('bob still restores in place and under a new name of his own, with his user\'s grants following', async () => {
    await sql(`DROP DATABASE \`${bob.username}_app\``);
    ok(cli(dataDir, ['restore', snapshot, '--database', `${bob.username}_app`, '--wait']));
    assert.deepEqual(await secretOf(`${bob.username}_app`), ['bob data']);
    const copy = `${bob.username}_copy`;
    ok(cli(dataDir, ['restore', snapshot, '--database', `${bob.username}_app`, '--as', copy, '--wait']));
    assert.deepEqual(await secretOf(copy), ['bob data']);
    assert.match(await grantsOf(`${bob.username}_u`), new RegExp(`${bob.username}\\\\_copy`));
    await sql(`DROP DATABASE \`${copy}\``);
  });

  test('regression: a snapshot\'s grant on another account\'s database is not restored', async () => {
    // The provider once let bob's user read bob_x's database; bob's next snapshot holds that grant.
    await sql(`GRANT SELECT ON \`${bobX.username}\\_shop\`.* TO '${bob.username}_u'@'localhost'`);
    const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', bob.username, '--wait']));
    const id = r.snapshots[0];
    await sql(`REVOKE SELECT ON \`${bobX.username}\\_shop\`.* FROM '${bob.username}_u'@'localhost'`);
    const restored = cli(dataDir, ['restore', id, '--database', `${bob.username}_app`, '--wait']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.doesNotMatch(await grantsOf(`${bob.username}_u`), new RegExp(bobX.username), 'bob\'s user gained nothing on bob_x\'s database');
    assert.match(await grantsOf(`${bob.username}_u`), new RegExp(`${bob.username}\\\\_app`));
    const task = ok(cli(dataDir, ['task', 'show', String(restored.json.task)]));
    assert.equal(task.status, 'partial');
    assert.match(JSON.stringify(task), /not restored \(database .* is not a database of account/);
  });
});

describe('the ownership rule', () => {
  const own = new DatabaseOwnership(['bob', 'bob_x', 'alice'], { database: [['shop_legacy', 'bob_x'], ['bob_listed', 'alice']] });

  test('the longest account prefix wins; a listed name is its account\'s; case does not matter', () => {
    assert.equal(own.ownerOf('database', 'bob_shop'), 'bob');
    assert.equal(own.ownerOf('database', 'bob_x_shop'), 'bob_x');
    assert.equal(own.ownerOf('database', 'BOB_X_shop'), 'bob_x');
    assert.equal(own.ownerOf('database', 'bob_xy'), 'bob');
    assert.equal(own.ownerOf('database', 'shop_legacy'), 'bob_x');
    assert.equal(own.ownerOf('database', 'bob_listed'), 'alice');
    assert.equal(own.ownerOf('database', 'bobshop'), null);
    assert.equal(own.ownerOf('database', 'mysql'), null);
  });

  test('grant patterns: only those that reach no other account\'s database', () => {
    assert.ok(own.patternOwnedBy('bob', 'bob\\_shop'));
    assert.ok(!own.patternOwnedBy('bob', 'bob\\_x\\_shop'));
    assert.ok(own.patternOwnedBy('bob_x', 'bob\\_x\\_%'));
    assert.ok(!own.patternOwnedBy('bob', 'bob\\_%'), 'bob_% reaches bob_x_…');
    assert.ok(!own.patternOwnedBy('bob', 'bob_%'));
    assert.ok(!own.patternOwnedBy('bob', '%'));
    assert.ok(!own.patternOwnedBy('bob', 'bob\\_lis%'), 'reaches a name listed for alice');
    assert.ok(own.patternOwnedBy('bob', 'bob\\_a%'));
    assert.ok(own.patternOwnedBy('bob', 'bob_shop'), 'an unescaped exact name can reach no other account');
    assert.ok(own.patternOwnedBy('bob', 'bob\\_shop%', ['bob_shop', 'bob_shopping']));
    assert.ok(!own.patternOwnedBy('alice', 'alice_%', ['alice_a', 'alicexmysql']), 'matches a database of nobody');
  });

  test('grant statements: the account\'s users on its databases only', () => {
    const guard = { account: 'bob', ownership: own };
    const check = (s: string): string | null => refusedGrant(splitStatements(s)[0]!, guard, []);
    assert.equal(check("CREATE USER IF NOT EXISTS `bob_u`@`localhost` IDENTIFIED BY PASSWORD '*AB'"), null);
    assert.equal(check('GRANT USAGE ON *.* TO `bob_u`@`localhost`'), null);
    assert.equal(check('GRANT SELECT, INSERT ON `bob\\_shop`.* TO `bob_u`@`localhost`'), null);
    assert.equal(check('GRANT SELECT (a, b) ON `bob_shop`.`t` TO `bob_u`@`localhost`'), null);
    assert.equal(check('GRANT EXECUTE ON PROCEDURE `bob_shop`.`p` TO `bob_u`@`localhost`'), null);
    assert.match(check('CREATE USER `bob_x_u`@`localhost`')!, /not a database user of account bob/);
    assert.match(check('GRANT SELECT ON *.* TO `bob_u`@`localhost`')!, /global/);
    assert.match(check('GRANT SELECT ON `bob\\_x\\_shop`.* TO `bob_u`@`localhost`')!, /not a database of account bob/);
    assert.match(check('GRANT SELECT ON `mysql`.`user` TO `bob_u`@`localhost`')!, /not a database of account bob/);
    assert.match(check('GRANT `admin_role` TO `bob_u`@`localhost`')!, /roles/);
    assert.match(check('GRANT PROXY ON `root`@`localhost` TO `bob_u`@`localhost`')!, /PROXY/);
    assert.match(check('GRANT SELECT ON `bob\\_shop`.* TO `bob_u`@`localhost`, `bob_x_u`@`localhost`')!, /more than one user/);
    assert.match(check('DROP DATABASE `bob_x_shop`')!, /not a CREATE USER or GRANT/);
  });

  test('cPanel: a name in another account\'s database map is that account\'s', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cp-'));
    try {
      const write = (p: string, text: string): void => { fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true }); fs.writeFileSync(path.join(root, p), text); };
      write('/var/cpanel/users/bob', 'DNS=bob.test\n');
      write('/var/cpanel/users/carol', 'DNS=carol.test\n');
      write('/var/cpanel/databases/carol.json', JSON.stringify({ MYSQL: { dbs: { bob_blog: 'x' }, dbusers: { bob_writer: {} } } }));
      write('/etc/passwd', '');
      const adapter = createPanelAdapter(configSchema.parse({ panel: 'cpanel', rootPrefix: root }), { listDatabasesByPrefix: async () => ({ databases: [], users: [] }) });
      const ownership = await adapter.databaseOwnership();
      assert.equal(ownership.ownerOf('database', 'bob_blog'), 'carol');
      assert.equal(ownership.ownerOf('user', 'bob_writer'), 'carol');
      assert.equal(ownership.ownerOf('database', 'bob_other'), 'bob');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
