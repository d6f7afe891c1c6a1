import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { makeDestinationDir } from './support/cli.js';
import { install, makeCpanelTree, makeDirectAdminTree } from './support/panel-tree.js';

const DATA = 'var/lib/tidemark';
const CPANEL_HOOK = 'usr/local/cpanel/3rdparty/bin/tidemark-hook';

/** The installed tidemark command of a test root, with --json. */
function tidemark(root: string, args: string[]): { code: number; json: any; stdout: string; stderr: string } {
  const r = spawnSync(path.join(root, 'usr/local/bin/tidemark'), ['--json', ...args], { encoding: 'utf8', maxBuffer: 16 << 20 });
  let json: unknown = null;
  try { json = JSON.parse(r.stdout); } catch { /* not JSON */ }
  return { code: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}
function ok(r: ReturnType<typeof tidemark>): any {
  if (r.code !== 0) throw new Error(`tidemark exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.json;
}

/** What cPanel hands a standardized hook on stdin. */
function cpanelHook(root: string, event: string, stage: string, data: Record<string, unknown>): { code: number; stdout: string } {
  const input = JSON.stringify({ context: { category: 'Whostmgr', event, stage, point: 'main' }, data, hook: { hook: `${root}/${CPANEL_HOOK}`, exectype: 'script' } });
  const r = spawnSync(path.join(root, CPANEL_HOOK), { input, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout };
}

/** What DirectAdmin does for scripts/custom/<hook>/*.sh: the account in the environment. */
function directAdminHook(root: string, hook: string, env: Record<string, string>): { code: number; stdout: string } {
  const r = spawnSync(path.join(root, `usr/local/directadmin/scripts/custom/${hook}/tidemark.sh`), { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout };
}

function activity(root: string): { action: string; target: string; result: string; detail: string }[] {
  const db = new Database(path.join(root, DATA, 'tidemark.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT action, target, result, detail FROM activity ORDER BY id').all() as { action: string; target: string; result: string; detail: string }[];
  } finally {
    db.close();
  }
}

const snapshotsOf = (root: string, account: string): string[] => (ok(tidemark(root, ['snapshot', 'list', '--account', account])) as { id: string }[]).map((s) => s.id);

/** Renames a Linux user the way a panel does (retrying while another test holds /etc/passwd). */
function renameLinuxUser(a: TestAccount, newName: string): TestAccount {
  const home = path.join(path.dirname(a.home), newName);
  const run = (cmd: string, args: string[]): void => {
    for (let i = 0; ; i++) {
      try { execFileSync(cmd, args, { stdio: 'pipe' }); return; } catch (err) {
        if (i >= 30) throw err;
        execFileSync('sleep', ['0.2']);
      }
    }
  };
  run('usermod', ['--login', newName, '--home', home, '--move-home', a.username]);
  run('groupmod', ['--new-name', newName, a.username]);
  return { ...a, username: newName, home };
}

function prepareInstall(root: string, homeRoot: string): string {
  install(root);
  fs.writeFileSync(path.join(root, DATA, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot], httpPort: 0, finalBackupOnRemove: true }));
  const dest = makeDestinationDir();
  ok(tidemark(root, ['destination', 'add', '--name', 'disk1', '--type', 'local', '--path', dest]));
  return dest;
}

describe('panel account events through the installed hook scripts', () => {
  const homeRoot = makeHomeRoot();
  const accounts: TestAccount[] = [];
  const cleanup: string[] = [homeRoot];
  let cpRoot = '';
  let cpDest = '';

  before(() => {
    cpRoot = makeCpanelTree();
    cleanup.push(cpRoot);
    cpDest = prepareInstall(cpRoot, homeRoot);
    cleanup.push(cpDest);
  });
  after(() => {
    for (const a of accounts) removeAccount(a);
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
  });

  test('cPanel Accounts::Modify: a renamed account keeps its snapshots, restores into its new home, and backs up incrementally', () => {
    const a = createAccount(homeRoot, 'tp');
    accounts.push(a);
    asAccount(a, 'echo version-one > site.txt && mkdir -p sub && echo kept > sub/k.txt');
    ok(tidemark(cpRoot, ['job', 'add', '--name', 'nightly', '--destination', 'disk1', '--structure', 'incremental', '--accounts', a.username, '--items', 'files']));
    const first = ok(tidemark(cpRoot, ['backup', '--job', 'nightly', '--wait'])).snapshots[0] as string;

    const renamed = renameLinuxUser(a, `${a.username}n`);
    accounts[accounts.indexOf(a)] = renamed;
    const hook = cpanelHook(cpRoot, 'Accounts::Modify', 'post', { user: a.username, newuser: renamed.username, domain: 'example.test' });
    assert.equal(hook.code, 0);
    assert.equal(hook.stdout.trim(), '1 Tidemark: ok');

    assert.deepEqual(snapshotsOf(cpRoot, renamed.username), [first]);
    assert.deepEqual(snapshotsOf(cpRoot, a.username), []);
    assert.equal(fs.existsSync(path.join(cpDest, a.username)), false);
    assert.ok(fs.existsSync(path.join(cpDest, renamed.username, first, 'manifest.json')));
    const meta = JSON.parse(fs.readFileSync(path.join(cpDest, renamed.username, 'account.json'), 'utf8'));
    assert.deepEqual([meta.account, meta.formerNames], [renamed.username, [a.username]]);
    assert.deepEqual(ok(tidemark(cpRoot, ['job', 'show', 'nightly'])).accounts, [renamed.username]);

    // The old manifest (which names the old account) restores into the renamed account's home.
    asAccount(renamed, 'rm site.txt && echo changed > sub/k.txt');
    const restored = ok(tidemark(cpRoot, ['restore', first, '--wait']));
    assert.ok(restored.files.files >= 2);
    assert.equal(fs.readFileSync(path.join(renamed.home, 'site.txt'), 'utf8'), 'version-one\n');
    assert.equal(fs.readFileSync(path.join(renamed.home, 'sub/k.txt'), 'utf8'), 'kept\n');
    assert.equal(fs.statSync(path.join(renamed.home, 'site.txt')).uid, renamed.uid);

    // The next run continues the chain from the snapshot taken under the old name.
    const second = ok(tidemark(cpRoot, ['backup', '--job', 'nightly', '--wait'])).snapshots[0] as string;
    const shown = ok(tidemark(cpRoot, ['snapshot', 'show', second]));
    assert.equal(shown.manifest.previous, first);
    assert.equal(shown.manifest.account, renamed.username);

    // An Accounts::Modify that keeps the name changes nothing.
    assert.equal(cpanelHook(cpRoot, 'Accounts::Modify', 'post', { user: renamed.username, newuser: renamed.username, QUOTA: 500 }).code, 0);
    assert.deepEqual(snapshotsOf(cpRoot, renamed.username).sort(), [first, second].sort());
    assert.ok(activity(cpRoot).some((r) => r.action === 'panel.renamed' && r.target === `${a.username} -> ${renamed.username}` && r.result === 'ok'));
  });

  test('cPanel Accounts::Create and suspend: an activity line, and the password in the hook input is never kept', () => {
    const secret = 'Pw-9f3c1d2e-never-logged';
    assert.equal(cpanelHook(cpRoot, 'Accounts::Create', 'post', { user: 'newacct', domain: 'new.test', password: secret, plan: 'default' }).code, 0);
    assert.equal(cpanelHook(cpRoot, 'Accounts::suspendacct', 'post', { user: 'newacct', reason: 'unpaid' }).code, 0);
    assert.equal(cpanelHook(cpRoot, 'Accounts::unsuspendacct', 'post', { user: 'newacct' }).code, 0);
    const rows = activity(cpRoot).filter((r) => r.target === 'newacct');
    assert.deepEqual(rows.map((r) => [r.action, r.result]), [['panel.created', 'ok'], ['panel.suspended', 'ok'], ['panel.unsuspended', 'ok']]);
    const log = fs.readFileSync(path.join(cpRoot, DATA, 'logs/panel-hooks.log'), 'utf8');
    assert.ok(!log.includes(secret), 'the hook log never holds the password');
    assert.ok(!JSON.stringify(activity(cpRoot)).includes(secret), 'the activity log never holds the password');
    assert.equal(fs.statSync(path.join(cpRoot, DATA, 'logs/panel-hooks.log')).mode & 0o777, 0o600);
  });

  test('cPanel Accounts::Remove with finalBackupOnRemove: a final snapshot; a failing Tidemark never blocks the removal', () => {
    const b = createAccount(homeRoot, 'tq');
    accounts.push(b);
    asAccount(b, 'echo last-words > final.txt');
    ok(tidemark(cpRoot, ['job', 'add', '--name', 'b-only', '--destination', 'disk1', '--structure', 'compressed', '--accounts', b.username, '--items', 'files']));

    const hook = cpanelHook(cpRoot, 'Accounts::Remove', 'pre', { user: b.username, keepdns: 0 });
    assert.equal(hook.code, 0);
    assert.equal(hook.stdout.trim(), '1 Tidemark: ok');
    const [final] = snapshotsOf(cpRoot, b.username);
    assert.ok(final, 'a final snapshot was made');
    const files = ok(tidemark(cpRoot, ['snapshot', 'files', final!])) as { name: string }[];
    assert.ok(files.some((f) => f.name === 'final.txt'));
    assert.ok(activity(cpRoot).some((r) => r.action === 'panel.removed' && r.target === b.username && r.result === 'ok' && r.detail.includes(final!)));

    // The destination is gone (an unmounted disk): the hook still answers success, the failure is logged.
    fs.renameSync(cpDest, `${cpDest}.away`);
    try {
      const failed = cpanelHook(cpRoot, 'Accounts::Remove', 'pre', { user: b.username });
      assert.equal(failed.code, 0);
      assert.match(failed.stdout, /^1 Tidemark: /);
      const row = activity(cpRoot).at(-1)!;
      assert.deepEqual([row.action, row.result], ['panel.removed', 'failed']);
      assert.match(row.detail, /does not exist/);
    } finally {
      fs.renameSync(`${cpDest}.away`, cpDest);
    }
    assert.equal(snapshotsOf(cpRoot, b.username).length, 1);

    // The tidemark command itself is missing: still success for cPanel.
    const cli = path.join(cpRoot, 'usr/local/bin/tidemark');
    fs.renameSync(cli, `${cli}.away`);
    try {
      const missing = cpanelHook(cpRoot, 'Accounts::Remove', 'pre', { user: b.username });
      assert.equal(missing.code, 0);
      assert.match(missing.stdout, /^1 Tidemark: .*is missing/);
    } finally {
      fs.renameSync(`${cli}.away`, cli);
    }

    // Input that is not a cPanel hook document: an error in the log, success for cPanel.
    const bad = spawnSync(path.join(cpRoot, CPANEL_HOOK), { input: 'not json', encoding: 'utf8' });
    assert.equal(bad.status, 0);
    assert.match(bad.stdout, /^1 Tidemark: tidemark exited 2/, 'input that is not JSON is malformed input (exit 2)');
  });

  test('a final backup that outlasts its time limit is abandoned: the command exits 0 and no unfinished snapshot is listed', () => {
    const c = createAccount(homeRoot, 'tr');
    accounts.push(c);
    asAccount(c, 'for i in $(seq 1 300); do head -c 200000 /dev/urandom > f$i; done');
    ok(tidemark(cpRoot, ['job', 'add', '--name', 'c-only', '--destination', 'disk1', '--structure', 'compressed', '--accounts', c.username, '--items', 'files']));
    const started = Date.now();
    const r = tidemark(cpRoot, ['panel-event', 'removed', '--user', c.username, '--time-limit', '0.05']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.finalBackup.timedOut, true);
    assert.match(r.json.errors.join(' '), /did not finish within 0\.05 s/);
    assert.ok(Date.now() - started < 20000);
    assert.deepEqual(snapshotsOf(cpRoot, c.username), []);
    // The state store is still usable after the abandoned run (its task is marked failed).
    const tasks = new Database(path.join(cpRoot, DATA, 'tidemark.sqlite'), { readonly: true });
    try {
      ok(tidemark(cpRoot, ['job', 'list']));
      const t = tasks.prepare("SELECT status FROM tasks WHERE account = ? AND type = 'backup'").all(c.username) as { status: string }[];
      assert.ok(t.length <= 1 && t.every((x) => x.status === 'failed'), JSON.stringify(t));
    } finally {
      tasks.close();
    }
  });

  test('the CLI refuses bad input clearly', () => {
    // Exit 2: a missing or malformed account name is a wrong command line (README), as an unknown event is.
    let r = tidemark(cpRoot, ['panel-event', 'renamed', '--user', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.json.error, /--new-user is missing/);
    r = tidemark(cpRoot, ['panel-event', 'exploded', '--user', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.json.error, /unknown event "exploded"/);
    r = tidemark(cpRoot, ['panel-event', 'created', '--user', '../etc']);
    assert.equal(r.code, 2);
    assert.match(r.json.error, /not a valid account name/);
  });

  test('DirectAdmin user_create_post and user_destroy_pre: environment in, final backup made, never blocking', () => {
    const daRoot = makeDirectAdminTree();
    cleanup.push(daRoot);
    const daDest = prepareInstall(daRoot, homeRoot);
    cleanup.push(daDest);
    const d = createAccount(homeRoot, 'ts');
    accounts.push(d);
    asAccount(d, 'echo da > page.html');
    ok(tidemark(daRoot, ['job', 'add', '--name', 'everyone', '--destination', 'disk1', '--structure', 'archive', '--all', '--items', 'files']));

    const secret = 'da-secret-5b1e';
    const created = directAdminHook(daRoot, 'user_create_post', { username: d.username, passwd: secret, domain: 'da.test', usertype: 'user' });
    assert.equal(created.code, 0);
    const removed = directAdminHook(daRoot, 'user_destroy_pre', { username: d.username });
    assert.equal(removed.code, 0);
    // "All accounts" covers it; only it is backed up.
    const snaps = ok(tidemark(daRoot, ['snapshot', 'list'])) as { account: string }[];
    assert.deepEqual(snaps.map((s) => s.account), [d.username]);
    const rows = activity(daRoot).filter((r) => r.action.startsWith('panel.'));
    assert.deepEqual(rows.map((r) => [r.action, r.target, r.result]), [['panel.created', d.username, 'ok'], ['panel.removed', d.username, 'ok']]);
    assert.ok(!fs.readFileSync(path.join(daRoot, DATA, 'logs/panel-hooks.log'), 'utf8').includes(secret));

    // A bad name in the environment, or no tidemark command at all: exit 0, so DirectAdmin goes on.
    assert.equal(directAdminHook(daRoot, 'user_destroy_pre', { username: '../../etc' }).code, 0);
    assert.match(fs.readFileSync(path.join(daRoot, DATA, 'logs/panel-hooks.log'), 'utf8'), /user_destroy_pre exit=2 .*not a valid account name/);
    fs.rmSync(path.join(daRoot, 'usr/local/bin/tidemark'));
    assert.equal(directAdminHook(daRoot, 'user_destroy_pre', { username: d.username }).code, 0);
  });
});
