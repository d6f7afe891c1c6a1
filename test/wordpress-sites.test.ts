/**
 * WordPress sites (engine/sites/, services/sites.ts): found in a real account's home by a worker
 * running as the account, recorded in the snapshot, restored to a snapshot as ONE task (the
 * site's folder and the tables of its prefix, from a real MariaDB dump), downloaded as one
 * archive; and what an attacker writes into wp-config.php never reaches another account.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startTestMariaDb, rootQuery, type TestMariaDb } from './support/mariadb.js';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { launchBrowser } from './support/browser.js';
import { startWebFixture } from './support/web-daemon.js';
import { parseWpConfig, WP_CONFIG_MAX_BYTES, isLocalDbHost } from '../server/engine/sites/wp-config.js';
import { tablesOfSite, type SiteRecord } from '../server/engine/sites/site-record.js';

const qi = (n: string): string => '`' + n.replace(/`/g, '``') + '`';

const config = (db: string, prefix: string, extra = ''): string => `<?php
/** The base configuration for WordPress */
define( 'DB_NAME', '${db}' );
define( 'DB_USER', 'someone' );
define( 'DB_PASSWORD', 'p"a\\'ss' );
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8mb4' );
// define('DB_NAME', 'commented_out');
/* define('DB_NAME', 'also_commented'); */
$table_prefix = '${prefix.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}';
${extra}
define( 'WP_DEBUG', false );
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
`;

describe('wp-config.php parser (never runs PHP; strict)', () => {
  test('reads what WordPress writes, comments left out', () => {
    assert.deepEqual(parseWpConfig(config('acct_wp', 'wp_')), { ok: true, database: 'acct_wp', host: 'localhost', prefix: 'wp_' });
    assert.deepEqual(parseWpConfig(`<?php define("DB_NAME","acct_x"); $table_prefix="x_"; # DB_NAME`), { ok: true, database: 'acct_x', host: null, prefix: 'x_' });
  });
  const notUnderstood: [string, string][] = [
    ['concatenation', `<?php define('DB_NAME', 'acct_' . 'wp'); $table_prefix = 'wp_';`],
    ['a function call', `<?php define('DB_NAME', getenv('DB')); $table_prefix = 'wp_';`],
    ['a variable in double quotes', `<?php define('DB_NAME', "acct_$x"); $table_prefix = 'wp_';`],
    ['two different values (environment switch)', `<?php if ($dev) define('DB_NAME', 'a_dev'); else define('DB_NAME', 'a_live'); $table_prefix = 'wp_';`],
    ['a prefix built from pieces', `<?php define('DB_NAME', 'acct_wp'); $table_prefix = 'wp' . '_';`],
    ['a heredoc', `<?php define('DB_NAME', <<<EOT\nacct_wp\nEOT\n); $table_prefix = 'wp_';`],
    ['backticks (shell)', "<?php define('DB_NAME', `cat /etc/x`); $table_prefix = 'wp_';"],
    ['an unclosed comment', `<?php /* define('DB_NAME', 'acct_wp'); $table_prefix = 'wp_';`],
    ['an unclosed string', `<?php define('DB_NAME', 'acct_wp); $table_prefix = 'wp_';`],
    ['$GLOBALS', `<?php define('DB_NAME', 'acct_wp'); $GLOBALS['table_prefix'] = 'x_'; $table_prefix = 'wp_';`],
    ['a constant() spelling', `<?php define(strtoupper('db_name'), 'acct_wp'); define('DB_'.'NAME', 'x'); $table_prefix = 'wp_';`],
    ['no DB_NAME', `<?php $table_prefix = 'wp_';`],
    ['no prefix', `<?php define('DB_NAME', 'acct_wp');`],
    ['NUL bytes', `<?php define('DB_NAME', 'acct_wp');\0 $table_prefix = 'wp_';`],
  ];
  for (const [what, src] of notUnderstood) {
    test(`not understood: ${what}`, () => {
      const r = parseWpConfig(src);
      assert.equal(r.ok, false, JSON.stringify(r));
    });
  }
  test('a file over the size limit is not read', () => {
    const big = config('acct_wp', 'wp_') + '//' + 'x'.repeat(WP_CONFIG_MAX_BYTES);
    const r = parseWpConfig(big);
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /larger than/);
  });
  test('DB_HOST: only this server', () => {
    for (const h of [null, '', 'localhost', 'localhost:/run/mysqld/mysqld.sock', '127.0.0.1:3306', '::1']) assert.equal(isLocalDbHost(h), true, String(h));
    for (const h of ['db.example.com', '10.0.0.5', 'localhost.evil.com']) assert.equal(isLocalDbHost(h), false, h);
  });
  test('tables of a site: a longer prefix of another site in the same database is that site\'s', () => {
    const sites: SiteRecord[] = [
      { folder: 'a', config: 'a/wp-config.php', database: 'x_wp', prefix: 'wp_', problem: null },
      { folder: 'a/shop', config: 'a/shop/wp-config.php', database: 'x_wp', prefix: 'wp_shop_', problem: null },
      { folder: 'b', config: 'b/wp-config.php', database: 'x_other', prefix: 'wp_blog_', problem: null },
    ];
    const tables = ['wp_posts', 'wp_shop_posts', 'wp_blog_posts', 'WP_Options', 'other'];
    assert.deepEqual(tablesOfSite({ database: 'x_wp', prefix: 'wp_' }, sites, tables), ['wp_posts', 'wp_blog_posts', 'WP_Options']);
    assert.deepEqual(tablesOfSite({ database: 'x_wp', prefix: 'wp_shop_' }, sites, tables), ['wp_shop_posts']);
  });
});

describe('WordPress sites of a real account, real MariaDB', () => {
  let maria: TestMariaDb;
  let homeRoot: string;
  let dataDir: string;
  let destDir: string;
  let a: TestAccount;
  let b: TestAccount;
  let aDb: string;
  let aOther: string;
  let bDb: string;
  let snapshot: string;
  const outside = fs.mkdtempSync('/tmp/tidemark-wp-outside-');

  const put = (acct: TestAccount, rel: string, content: string | Buffer): void => {
    const p = path.join(acct.home, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, acct.home]);
  };
  const read = (acct: TestAccount, rel: string): string | null => {
    try { return fs.readFileSync(path.join(acct.home, rel), 'utf8'); } catch { return null; }
  };
  const tables = async (db: string): Promise<string[]> => (await rootQuery(maria.creds, `SHOW TABLES FROM ${qi(db)}`)).map((r) => String(Object.values(r)[0])).sort();
  const rows = async (db: string, t: string): Promise<string[]> => (await rootQuery(maria.creds, `SELECT v FROM ${qi(db)}.${qi(t)} ORDER BY v`)).map((r) => String(r.v));

  /** A WordPress-shaped site: wp-settings.php, wp-config.php, an upload. */
  const site = (acct: TestAccount, folder: string, db: string, prefix: string, label: string): void => {
    put(acct, `${folder}/wp-settings.php`, '<?php // WordPress');
    put(acct, `${folder}/wp-config.php`, config(db, prefix));
    put(acct, `${folder}/index.php`, `<?php // ${label} v1`);
    put(acct, `${folder}/wp-content/uploads/2026/11/photo.jpg`, Buffer.from(`JPEG ${label} v1`));
  };
  const makeTables = async (db: string, prefix: string, label: string): Promise<void> => {
    await rootQuery(maria.creds, `CREATE TABLE ${qi(db)}.${qi(prefix + 'posts')} (v VARCHAR(100) CHARACTER SET utf8mb4);
      INSERT INTO ${qi(db)}.${qi(prefix + 'posts')} VALUES ('${label} post 🦊'), ('${label} second');
      CREATE TABLE ${qi(db)}.${qi(prefix + 'options')} (v TEXT); INSERT INTO ${qi(db)}.${qi(prefix + 'options')} VALUES ('${label} siteurl');`);
  };

  before(async () => {
    // Binary logging on: the last tests restore a site to a moment.
    maria = await startTestMariaDb({ binlog: true });
    homeRoot = makeHomeRoot();
    a = createAccount(homeRoot, 'tmwp');
    b = createAccount(homeRoot, 'tmwp');
    aDb = `${a.username}_wp`;
    aOther = `${a.username}_other`;
    bDb = `${b.username}_data`;
    await rootQuery(maria.creds, `CREATE DATABASE ${qi(aDb)}; CREATE DATABASE ${qi(aOther)}; CREATE DATABASE ${qi(bDb)};
      CREATE TABLE ${qi(aOther)}.t (v TEXT); INSERT INTO ${qi(aOther)}.t VALUES ('other v1');
      CREATE TABLE ${qi(bDb)}.wp_posts (v TEXT); INSERT INTO ${qi(bDb)}.wp_posts VALUES ('bob v1');
      CREATE TABLE ${qi(aDb)}.unrelated (v TEXT); INSERT INTO ${qi(aDb)}.unrelated VALUES ('unrelated v1');`);
    // Site 1 in public_html (wp_), site 2 nested in public_html/shop (wp_shop_: same database,
    // a longer prefix), site 3 in another folder (blog_, same database).
    site(a, 'public_html', aDb, 'wp_', 'main');
    site(a, 'public_html/shop', aDb, 'wp_shop_', 'shop');
    site(a, 'domains/blog.example/public_html', aDb, 'blog_', 'blog');
    await makeTables(aDb, 'wp_', 'main');
    await makeTables(aDb, 'wp_shop_', 'shop');
    await makeTables(aDb, 'blog_', 'blog');
    // Hostile installations, each refused or not understood.
    put(a, 'evil-foreign/wp-settings.php', '<?php');
    put(a, 'evil-foreign/wp-config.php', config(bDb, 'wp_'));
    put(a, 'evil-sql/wp-settings.php', '<?php');
    put(a, 'evil-sql/wp-config.php', config(aDb, "wp_'; DROP TABLE x; -- "));
    put(a, 'evil-huge/wp-settings.php', '<?php');
    put(a, 'evil-huge/wp-config.php', config(aDb, 'huge_') + '//' + 'x'.repeat(WP_CONFIG_MAX_BYTES));
    put(a, 'evil-concat/wp-settings.php', '<?php');
    put(a, 'evil-concat/wp-config.php', `<?php define('DB_NAME', '${a.username}_' . 'wp'); $table_prefix = 'c_';`);
    put(a, 'evil-remote/wp-settings.php', '<?php');
    put(a, 'evil-remote/wp-config.php', config(aDb, 'remote_').replace("'localhost'", "'db.elsewhere.example'"));
    // A wp-config.php that is a symlink to a file outside the home (root-readable only).
    fs.writeFileSync(path.join(outside, 'wp-config.php'), config(bDb, 'wp_'));
    fs.chmodSync(outside, 0o755);
    put(a, 'evil-link/wp-settings.php', '<?php');
    fs.symlinkSync(path.join(outside, 'wp-config.php'), path.join(a.home, 'evil-link/wp-config.php'));
    execFileSync('chown', ['-h', `${a.uid}:${a.gid}`, path.join(a.home, 'evil-link/wp-config.php')]);
    // Excluded by the account: never looked at.
    site(a, 'old/donotbackup/site', aDb, 'nope_', 'nope');

    dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds });
    destDir = makeDestinationDir();
    ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
    ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--accounts', `${a.username},${b.username}`]));
    const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
    for (const x of r.results) assert.ok(x.status === 'completed' || x.status === 'partial', JSON.stringify(x));
    snapshot = r.results.find((x: { account: string }) => x.account === a.username).snapshot;
  });

  let c: TestAccount | undefined;
  after(async () => {
    await maria?.stop();
    for (const acct of [a, b, c]) if (acct) removeAccount(acct);
    for (const d of [homeRoot, dataDir, destDir, outside]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('the snapshot records the sites it found; hostile ones are refused or not understood', () => {
    const sites = ok(cli(dataDir, ['site', 'list', '--account', a.username]));
    const by = new Map<string, any>(sites.map((s: any) => [s.folder, s]));
    assert.deepEqual([...by.keys()].sort(), ['domains/blog.example/public_html', 'evil-concat', 'evil-foreign', 'evil-huge', 'evil-link', 'evil-remote', 'evil-sql', 'public_html', 'public_html/shop']);
    assert.equal(by.get('public_html').database, aDb);
    assert.equal(by.get('public_html').prefix, 'wp_');
    assert.equal(by.get('public_html').problem, null);
    assert.equal(by.get('public_html').snapshots[0].id, snapshot);
    assert.equal(by.get('public_html').snapshots[0].restorable, true);
    assert.equal(by.get('public_html/shop').prefix, 'wp_shop_');
    assert.match(by.get('evil-foreign').problem, new RegExp(`database ${bDb} is not a database of account ${a.username}`));
    assert.equal(by.get('evil-sql').prefix, null);
    assert.match(by.get('evil-sql').problem, /not a safe table prefix/);
    assert.match(by.get('evil-huge').problem, /not understood: larger than/);
    assert.match(by.get('evil-concat').problem, /not understood/);
    assert.match(by.get('evil-link').problem, /not understood: wp-config.php is a symbolic link/);
    assert.match(by.get('evil-remote').problem, /on another server/);
    // The manifest on the destination holds the same record.
    const manifest = JSON.parse(fs.readFileSync(path.join(destDir, a.username, snapshot, 'manifest.json'), 'utf8'));
    assert.equal(manifest.sites.length, 9);
    // Another account never sees them.
    const refused = cli(dataDir, ['--as-account', b.username, 'site', 'list', '--account', a.username]);
    assert.notEqual(refused.code, 0);
    assert.deepEqual(ok(cli(dataDir, ['--as-account', b.username, 'site', 'list'])), []);
  });

  test('hostile sites are never restored, and nothing of another account is touched', async () => {
    for (const folder of ['evil-foreign', 'evil-sql', 'evil-huge', 'evil-link', 'evil-concat', 'evil-remote', 'not-a-site']) {
      const r = cli(dataDir, ['site', 'restore', '--account', a.username, '--folder', folder]);
      assert.notEqual(r.code, 0, folder);
      assert.ok(r.json?.error, r.stdout);
    }
    // b's account holder cannot restore a's site.
    assert.notEqual(cli(dataDir, ['--as-account', b.username, 'site', 'restore', '--account', a.username, '--folder', 'public_html']).code, 0);
    assert.deepEqual(await rows(bDb, 'wp_posts'), ['bob v1']);
    assert.deepEqual(await tables(bDb), ['wp_posts']);
  });

  test('restore a site to a snapshot: its folder and its tables as one task; the other sites, tables and databases untouched', async () => {
    // After the snapshot: every site changes, files and tables.
    put(a, 'public_html/index.php', '<?php // main v2 (broken plugin update)');
    fs.rmSync(path.join(a.home, 'public_html/wp-content/uploads/2026/11/photo.jpg'));
    put(a, 'public_html/shop/index.php', '<?php // shop v2');
    put(a, 'domains/blog.example/public_html/index.php', '<?php // blog v2');
    put(a, 'elsewhere.txt', 'v2');
    put(a, 'public_html/wp-content/plugins/backdoor/backdoor.php', '<?php // added by the broken update');
    await rootQuery(maria.creds, `DELETE FROM ${qi(aDb)}.wp_posts; INSERT INTO ${qi(aDb)}.wp_posts VALUES ('main broken');
      DROP TABLE ${qi(aDb)}.wp_options; CREATE TABLE ${qi(aDb)}.wp_newplugin (v TEXT);
      INSERT INTO ${qi(aDb)}.wp_shop_posts VALUES ('shop v2'); INSERT INTO ${qi(aDb)}.blog_posts VALUES ('blog v2');
      INSERT INTO ${qi(aDb)}.unrelated VALUES ('unrelated v2'); INSERT INTO ${qi(aOther)}.t VALUES ('other v2');
      INSERT INTO ${qi(bDb)}.wp_posts VALUES ('bob v2');`);
    // The live wp-config.php now names b's database: the restore goes by the snapshot's record.
    put(a, 'public_html/wp-config.php', config(bDb, 'wp_'));
    const tasksBefore = ok(cli(dataDir, ['task', 'list'])).length;

    const r = ok(cli(dataDir, ['site', 'restore', '--account', a.username, '--folder', 'public_html']));
    assert.equal(r.snapshot, snapshot);
    assert.deepEqual(r.site.tables.sort(), ['wp_options', 'wp_posts']);
    assert.deepEqual(r.site.removedTables, ['wp_newplugin']);
    assert.equal(ok(cli(dataDir, ['task', 'list'])).length, tasksBefore + 1, 'one task');

    // The site is back: files and tables.
    assert.equal(read(a, 'public_html/index.php'), '<?php // main v1');
    assert.equal(read(a, 'public_html/wp-content/uploads/2026/11/photo.jpg'), 'JPEG main v1');
    assert.equal(read(a, 'public_html/wp-config.php'), config(aDb, 'wp_'));
    assert.equal(fs.statSync(path.join(a.home, 'public_html/index.php')).uid, a.uid);
    // What the site holds now and the snapshot did not is moved aside, not deleted.
    assert.equal(read(a, 'public_html/wp-content/plugins/backdoor/backdoor.php'), null);
    assert.match(r.files.asideFolder, /^tidemark-moved-aside-/);
    assert.equal(read(a, `${r.files.asideFolder}/public_html/wp-content/plugins/backdoor/backdoor.php`), '<?php // added by the broken update');
    assert.equal(r.files.movedAside, 1);
    assert.deepEqual(await rows(aDb, 'wp_posts'), ['main post 🦊', 'main second']);
    assert.deepEqual(await rows(aDb, 'wp_options'), ['main siteurl']);
    // Nothing else: the nested shop, the other folder, the other tables, the other databases, b.
    assert.equal(read(a, 'public_html/shop/index.php'), '<?php // shop v2');
    assert.equal(read(a, 'domains/blog.example/public_html/index.php'), '<?php // blog v2');
    assert.equal(read(a, 'elsewhere.txt'), 'v2');
    assert.deepEqual(await rows(aDb, 'wp_shop_posts'), ['shop post 🦊', 'shop second', 'shop v2']);
    assert.deepEqual(await rows(aDb, 'blog_posts'), ['blog post 🦊', 'blog second', 'blog v2']);
    assert.deepEqual(await rows(aDb, 'unrelated'), ['unrelated v1', 'unrelated v2']);
    assert.deepEqual(await rows(aOther, 't'), ['other v1', 'other v2']);
    assert.deepEqual(await rows(bDb, 'wp_posts'), ['bob v1', 'bob v2']);
    assert.deepEqual(await tables(aDb), ['blog_options', 'blog_posts', 'unrelated', 'wp_options', 'wp_posts', 'wp_shop_options', 'wp_shop_posts']);
    // No scratch database is left behind.
    const dbs = (await rootQuery(maria.creds, 'SHOW DATABASES')).map((x) => String(Object.values(x)[0]));
    assert.deepEqual(dbs.filter((d) => d.startsWith('#tidemark')), []);
  });

  test('an account holder restores its nested site alone (the parent site stays)', async () => {
    put(a, 'public_html/index.php', '<?php // main v3');
    const r = ok(cli(dataDir, ['--as-account', a.username, 'site', 'restore', '--folder', 'public_html/shop', '--snapshot', snapshot]));
    assert.deepEqual(r.site.tables.sort(), ['wp_shop_options', 'wp_shop_posts']);
    assert.equal(read(a, 'public_html/shop/index.php'), '<?php // shop v1');
    assert.deepEqual(await rows(aDb, 'wp_shop_posts'), ['shop post 🦊', 'shop second']);
    assert.equal(read(a, 'public_html/index.php'), '<?php // main v3');
    assert.deepEqual(await rows(aDb, 'blog_posts'), ['blog post 🦊', 'blog second', 'blog v2']);
  });

  test('download a site: its files and a dump of its tables only, in one .tar.gz', () => {
    const out = path.join(destDir, '..', `site-${a.username}.tar.gz`);
    try {
      const r = ok(cli(dataDir, ['site', 'download', '--account', a.username, '--folder', 'public_html', '--out', out]));
      assert.equal(r.snapshot, snapshot);
      const list = execFileSync('tar', ['tzf', out]).toString().split('\n').filter(Boolean);
      assert.ok(list.includes('files/public_html/index.php'), list.join(' '));
      assert.ok(list.includes('files/public_html/wp-content/uploads/2026/11/photo.jpg'));
      assert.ok(!list.some((p) => p.startsWith('files/public_html/shop')), 'the nested site is not part of it');
      assert.ok(!list.some((p) => p.startsWith('files/domains')));
      assert.ok(list.includes('site.json'));
      const dump = execFileSync('sh', ['-c', `tar xzOf '${out}' 'database/${aDb}.sql.gz' | gunzip`]).toString();
      assert.match(dump, /CREATE TABLE `wp_posts`/);
      assert.match(dump, /main post 🦊/);
      assert.doesNotMatch(dump, /wp_shop_posts|blog_posts|unrelated/);
      const desc = JSON.parse(execFileSync('tar', ['xzOf', out, 'site.json']).toString());
      assert.equal(desc.prefix, 'wp_');
      assert.deepEqual(desc.tables.sort(), ['wp_options', 'wp_posts']);
    } finally {
      fs.rmSync(out, { force: true });
    }
  });

  test('a manifest edited on the destination to give a site a prefix with SQL in it is refused', () => {
    const file = path.join(destDir, a.username, snapshot, 'manifest.json');
    const original = fs.readFileSync(file, 'utf8');
    try {
      const m = JSON.parse(original);
      m.sites.find((s: SiteRecord) => s.folder === 'public_html').prefix = "wp_`; DROP DATABASE x; --";
      fs.writeFileSync(file, JSON.stringify(m));
      const r = cli(dataDir, ['site', 'restore', '--account', a.username, '--folder', 'public_html']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /invalid manifest|prefix/);
    } finally {
      fs.writeFileSync(file, original);
    }
  });
  test('restore a site to a moment: tables as of that second (binary logs), files from the snapshot before it; the other site untouched', async () => {
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const nextSecond = async (): Promise<void> => { await sleep(1000 - (Date.now() % 1000) + 30); };
    c = createAccount(homeRoot, 'tmwp');
    const cDb = `${c.username}_wp`;
    await rootQuery(maria.creds, `CREATE DATABASE ${qi(cDb)}`);
    site(c, 'public_html', cDb, 'wp_', 'main');
    site(c, 'other.example', cDb, 'o_', 'other');
    await makeTables(cDb, 'wp_', 'main');
    await makeTables(cDb, 'o_', 'other');
    ok(cli(dataDir, ['binlog', 'destination', 'disk', '--on']));
    ok(cli(dataDir, ['job', 'add', '--name', 'cjob', '--destination', 'disk', '--structure', 'incremental', '--accounts', c.username]));
    const backup = ok(cli(dataDir, ['backup', '--job', 'cjob', '--wait']));
    const snap = backup.results[0].snapshot;
    // Changes a second apart after the snapshot; the moment chosen is after the first one.
    await nextSecond();
    await rootQuery(maria.creds, `INSERT INTO ${qi(cDb)}.wp_posts VALUES ('main after the snapshot'); INSERT INTO ${qi(cDb)}.o_posts VALUES ('other 1')`);
    await nextSecond();
    const moment = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
    await nextSecond();
    await rootQuery(maria.creds, `DELETE FROM ${qi(cDb)}.wp_posts; DROP TABLE ${qi(cDb)}.wp_options; INSERT INTO ${qi(cDb)}.o_posts VALUES ('other 2')`);
    put(c, 'public_html/index.php', '<?php // main broken');
    put(c, 'other.example/index.php', '<?php // other v2');
    ok(cli(dataDir, ['binlog', 'ship']));

    const r = ok(cli(dataDir, ['site', 'restore', '--account', c.username, '--folder', 'public_html', '--at', moment]));
    assert.equal(r.filesFrom, snap);
    assert.deepEqual(r.site.tables.sort(), ['wp_options', 'wp_posts']);
    assert.deepEqual(await rows(cDb, 'wp_posts'), ['main after the snapshot', 'main post 🦊', 'main second']);
    assert.deepEqual(await rows(cDb, 'wp_options'), ['main siteurl']);
    assert.equal(read(c, 'public_html/index.php'), '<?php // main v1');
    // The other site of the same database and account: as it is now.
    assert.deepEqual(await rows(cDb, 'o_posts'), ['other 1', 'other 2', 'other post 🦊', 'other second']);
    assert.equal(read(c, 'other.example/index.php'), '<?php // other v2');
    const dbs = (await rootQuery(maria.creds, 'SHOW DATABASES')).map((x) => String(Object.values(x)[0]));
    assert.deepEqual(dbs.filter((d) => d.includes('_tmsite_') || d.startsWith('#')), [], 'no working database left');
    // A moment outside the window is refused, and changes nothing.
    const early = cli(dataDir, ['site', 'restore', '--account', c.username, '--folder', 'public_html', '--at', '2001-01-01T00:00:00Z']);
    assert.notEqual(early.code, 0);
  });
  test('browser: the account holder sees its sites (and not another account\'s), and restores one as one task from the Sites page', async () => {
    let wpDb = '';
    const fx = await startWebFixture({
      mysql: maria.creds,
      beforeBackup: async (alice) => {
        wpDb = `${alice.username}_wp`;
        await rootQuery(maria.creds, `CREATE DATABASE ${qi(wpDb)}`);
        site(alice, 'public_html/site', wpDb, 'wp_', 'web');
        site(alice, 'shop', wpDb, 'shop_', 'webshop');
        put(alice, 'broken/wp-settings.php', '<?php');
        put(alice, 'broken/wp-config.php', "<?php define('DB_NAME', getenv('X')); $table_prefix = 'x_';");
        await makeTables(wpDb, 'wp_', 'web');
        await makeTables(wpDb, 'shop_', 'webshop');
      },
    });
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      put(fx.alice, 'public_html/site/index.php', '<?php // web broken');
      put(fx.alice, 'shop/index.php', '<?php // webshop v2');
      await rootQuery(maria.creds, `DELETE FROM ${qi(wpDb)}.wp_posts; INSERT INTO ${qi(wpDb)}.shop_posts VALUES ('webshop v2')`);
      await page.goto(fx.loginUrl(fx.alice.username, 'user'));
      await page.waitForURL(/\/snapshots$/);
      await page.getByRole('link', { name: 'Sites' }).click();
      await page.waitForURL(/\/sites$/);
      assert.equal(await page.locator('h1').textContent(), 'WordPress sites');
      assert.deepEqual(await page.locator('section.site h2').allTextContents(), ['broken', 'public_html/site', 'shop']);
      assert.match(await page.locator('section.site[data-folder="broken"] .problem').textContent() ?? '', /not understood/);
      assert.equal(await page.locator('section.site[data-folder="broken"] form').count(), 0, 'no restore for a site not understood');
      await browser.screenshot('user-sites');
      // Forms no page offers: a folder that holds no site in the snapshot is not found (it was answered 409), a site not understood is refused (409).
      const aliceCsrf = (await page.locator('input[name="_csrf"]').first().getAttribute('value')) ?? '';
      const [noSite, notUnderstood] = await page.evaluate(async ([dest, snap, csrf]) => {
        const post = async (folder: string): Promise<number> => (await fetch('/sites/restore', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf, folder, snapshot: `${dest}:${snap}` }).toString() })).status;
        return [await post('no/site/here'), await post('broken')];
      }, [fx.destinationIds.shown, fx.visible.alice, aliceCsrf] as const);
      assert.equal(noSite, 404);
      assert.equal(notUnderstood, 409);
      page.once('dialog', (d) => { void d.accept(); });
      await page.locator('section.site[data-folder="public_html/site"] form.site-restore button').click();
      await page.waitForURL(/\/tasks\/\d+$/);
      await page.waitForSelector('#task-status[data-status="completed"]', { timeout: 180000 });
      await browser.screenshot('user-site-restored');
      assert.equal(read(fx.alice, 'public_html/site/index.php'), '<?php // web v1');
      assert.deepEqual(await rows(wpDb, 'wp_posts'), ['web post 🦊', 'web second']);
      assert.equal(read(fx.alice, 'shop/index.php'), '<?php // webshop v2');
      assert.deepEqual(await rows(wpDb, 'shop_posts'), ['webshop post 🦊', 'webshop second', 'webshop v2']);
      // The provider reaches them from the account's page.
      await page.goto(fx.loginUrl('root', 'admin'));
      await page.waitForURL(/\/admin$/);
      await page.goto(`${fx.base}/admin/accounts/${fx.alice.username}`);
      await page.locator('#account-sites').click();
      await page.waitForURL(/\/sites\?account=/);
      assert.equal(await page.locator('section.site').count(), 3);
      // Another account holder: no sites, and a form aimed at alice's site is refused.
      await page.goto(fx.loginUrl(fx.bob.username, 'user'));
      await page.waitForURL(/\/snapshots$/);
      await page.goto(`${fx.base}/sites`);
      assert.equal(await page.locator('section.site').count(), 0);
      const csrf = (await page.locator('input[name="_csrf"]').first().getAttribute('value')) ?? '';
      const refused = await page.evaluate(async ([dest, snap, csrf]) => {
        const r = await fetch('/sites/restore', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf, folder: 'public_html/site', snapshot: `${dest}:${snap}` }).toString() });
        return r.status;
      }, [fx.destinationIds.shown, fx.visible.alice, csrf] as const);
      assert.ok(refused === 404 || refused === 403, `refused (${refused})`);
    } finally {
      await browser.close();
      await fx.stop();
    }
  });
});
