import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CALLS, INSTALL, calls, install, listing, makeCpanelTree, makeDirectAdminTree, runScript, uninstall } from './support/panel-tree.js';

const APP = 'usr/local/tidemark';
const DATA = 'var/lib/tidemark';
const HOOK = 'usr/local/cpanel/3rdparty/bin/tidemark-hook';
const HOOKS: [string, string][] = [
  ['Accounts::Create', 'post'], ['Accounts::Remove', 'pre'], ['Accounts::Modify', 'post'], ['Accounts::suspendacct', 'post'], ['Accounts::unsuspendacct', 'post'],
];

const mode = (file: string): number => fs.statSync(file).mode & 0o7777;
const read = (root: string, rel: string): string => fs.readFileSync(path.join(root, rel), 'utf8');
/** The installed tidemark command, as the provider would run it. */
function tidemark(root: string, args: string[]): { code: number; json: any; stderr: string } {
  const r = spawnSync(path.join(root, 'usr/local/bin/tidemark'), ['--json', ...args], { encoding: 'utf8' });
  let json: unknown = null;
  try { json = JSON.parse(r.stdout); } catch { /* not JSON */ }
  return { code: r.status ?? -1, json, stderr: r.stderr };
}

// Paths the tests must never write on the machine itself (only under their prefix).
const REAL = ['/usr/local/tidemark', '/etc/tidemark', '/usr/local/bin/tidemark', '/etc/systemd/system/tidemark.service', '/usr/local/cpanel', '/usr/local/directadmin'];
const realBefore = REAL.filter((p) => fs.existsSync(p));

test('cPanel: install registers everything, an upgrade keeps data and settings, uninstall leaves the panel as it was', () => {
  const root = makeCpanelTree();
  try {
    const before = listing(root);
    const out = install(root).stdout;
    assert.match(out, /Installing Tidemark \d+\.\d+\.\d+ \(panel: cpanel\)/);
    assert.match(out, /systemctl not called \(--prefix given\)/);

    // The application, runnable with its production packages only.
    assert.ok(fs.existsSync(path.join(root, APP, 'dist/server/cli/main.js')));
    assert.ok(fs.existsSync(path.join(root, APP, 'views')));
    assert.ok(fs.existsSync(path.join(root, APP, 'node_modules/better-sqlite3')));
    // The bridge socket's native addon (SO_PEERCRED) comes along, readable by all, and loads.
    const addon = path.join(root, APP, 'dist/server/native/tidemark.node');
    assert.equal(mode(addon) & 0o755, 0o755);
    const load = spawnSync(process.execPath, ['-e', `console.log(typeof require(${JSON.stringify(addon)}).getPeerCred)`], { encoding: 'utf8' });
    assert.equal(load.stdout.trim(), 'function', load.stderr);
    // (typescript itself stays: i18next names it as an optional peer, so npm keeps it.)
    assert.equal(fs.existsSync(path.join(root, APP, 'node_modules/playwright-core')), false, 'development packages are pruned');
    assert.equal(fs.existsSync(path.join(root, APP, 'dist/test')), false, 'tests are not installed');
    assert.equal(mode(path.join(root, DATA)), 0o700);
    const version = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
    const env = read(root, 'etc/tidemark/install.env');
    assert.match(env, new RegExp(`^VERSION=${version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(env, /^PANEL=cpanel$/m);
    assert.match(env, /^APP_DIR=\/usr\/local\/tidemark$/m);
    assert.equal(mode(path.join(root, 'etc/tidemark')), 0o700);

    // The command on PATH runs the installed copy on the installed data directory.
    assert.equal(mode(path.join(root, 'usr/local/bin/tidemark')), 0o755);
    const list = tidemark(root, ['destination', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.json, []);
    assert.ok(fs.existsSync(path.join(root, DATA, 'tidemark.sqlite')), 'the command uses the installed data directory');

    const unit = read(root, 'etc/systemd/system/tidemark.service');
    assert.match(unit, new RegExp(`^ExecStart=\\S*node ${root}/${APP}/dist/server/cli/main\\.js serve$`, 'm'));
    assert.match(unit, new RegExp(`^Environment=TIDEMARK_HOME=${root}/${DATA}$`, 'm'));

    // WHM: bridge, icon, privilege driver, AppConfig.
    assert.equal(mode(path.join(root, 'usr/local/cpanel/whostmgr/docroot/cgi/tidemark/index.cgi')), 0o755);
    assert.match(read(root, 'usr/local/cpanel/whostmgr/docroot/cgi/tidemark/index.cgi'), new RegExp(`'${root}/${APP}/dist/server/bridge/client\\.js',\\s+'--mode', 'whm'`));
    assert.ok(fs.existsSync(path.join(root, 'usr/local/cpanel/whostmgr/docroot/addon_plugins/tidemark.svg')));
    assert.match(read(root, 'usr/local/cpanel/Cpanel/Config/ConfigObj/Driver/Tidemark.pm'), /'acl'\s*=> 'software-tidemark'/);
    assert.match(read(root, 'usr/local/cpanel/Cpanel/Config/ConfigObj/Driver/Tidemark/META.pm'), /package Cpanel::Config::ConfigObj::Driver::Tidemark::META;/);
    const appconfig = read(root, `${APP}/plugin/cpanel/whm/tidemark.conf`);
    for (const line of ['name=tidemark', 'service=whostmgr', 'user=root', 'url=/cgi/tidemark/index.cgi', 'acls=software-tidemark', 'entryurl=tidemark/index.cgi', 'icon=tidemark.svg']) {
      assert.ok(appconfig.split('\n').includes(line), `AppConfig has ${line}`);
    }
    // Jupiter: page and plugin entry with a Feature Manager feature.
    assert.equal(mode(path.join(root, 'usr/local/cpanel/base/frontend/jupiter/tidemark/index.live.pl')), 0o755);
    const [item] = JSON.parse(read(root, `${APP}/plugin/cpanel/jupiter/install.json`)) as Record<string, unknown>[];
    assert.deepEqual({ id: item!.id, type: item!.type, uri: item!.uri, icon: item!.icon, featuremanager: item!.featuremanager },
      { id: 'tidemark', type: 'link', uri: 'tidemark/index.live.pl', icon: 'tidemark.svg', featuremanager: true });
    assert.ok(fs.existsSync(path.join(root, `${APP}/plugin/cpanel/jupiter/tidemark.svg`)));
    // The hook script calls the installed command.
    assert.equal(mode(path.join(root, HOOK)), 0o755);
    assert.match(read(root, HOOK), new RegExp(`^TIDEMARK='${root}/usr/local/bin/tidemark'$`, 'm'));

    const expected = [
      ['register_appconfig', `${root}/${APP}/plugin/cpanel/whm/tidemark.conf`],
      ['install_plugin', `${root}/${APP}/plugin/cpanel/jupiter`, '--theme', 'jupiter'],
      ...HOOKS.map(([event, stage]) => ['manage_hooks', 'add', 'script', `${root}/${HOOK}`, '--manual', '--category', 'Whostmgr', '--event', event, '--stage', stage]),
    ];
    assert.deepEqual(calls(root), expected);

    // Upgrade: the provider's settings and the catalog stay; the application is replaced.
    const config = JSON.stringify({ panel: 'standalone', httpPort: 0, finalBackupOnRemove: true }, null, 1);
    fs.writeFileSync(path.join(root, DATA, 'config.json'), config);
    const destDir = fs.mkdtempSync(path.join(root, 'tmp/dest-'));
    const added = tidemark(root, ['destination', 'add', '--name', 'disk1', '--type', 'local', '--path', destDir]);
    assert.equal(added.code, 0, added.stderr);
    fs.writeFileSync(path.join(root, APP, 'left-over'), 'from the old version');
    const up = install(root).stdout;
    assert.match(up, /Upgrading Tidemark \S+ to \S+/);
    assert.match(up, /data in \S+ \(kept\)/);
    assert.equal(fs.existsSync(path.join(root, APP, 'left-over')), false, 'the application was replaced');
    assert.equal(fs.readFileSync(path.join(root, DATA, 'config.json'), 'utf8'), config, 'config.json kept byte for byte');
    assert.deepEqual(tidemark(root, ['destination', 'list']).json.map((d: { name: string }) => d.name), ['disk1'], 'the catalog kept');
    assert.match(read(root, 'etc/tidemark/install.env'), new RegExp(`^PREVIOUS_VERSION=${version.replace(/\./g, '\\.')}$`, 'm'));
    // AppConfig and the plugin are registered again (they update); the hooks are not added twice.
    assert.deepEqual(calls(root), [...expected, expected[0], expected[1]]);

    // Uninstall: every registration undone with the panel's tools, the panel tree as before, the data kept.
    const n = calls(root).length;
    const un = uninstall(root).stdout;
    assert.match(un, /data directory \S+ kept/);
    assert.deepEqual(calls(root).slice(n), [
      ...[...HOOKS].reverse().map(([event, stage]) => ['manage_hooks', 'delete', 'script', `${root}/${HOOK}`, '--manual', '--category', 'Whostmgr', '--event', event, '--stage', stage]),
      ['uninstall_plugin', `${root}/${APP}/plugin/cpanel/jupiter`, '--theme', 'jupiter'],
      ['unregister_appconfig', 'tidemark'],
    ]);
    assert.deepEqual(listing(root, [CALLS, DATA, 'tmp']), before.filter((l) => !/ tmp(\/|$)/.test(l)));
    assert.equal(fs.readFileSync(path.join(root, DATA, 'config.json'), 'utf8'), config);
    assert.ok(fs.existsSync(path.join(root, DATA, 'tidemark.sqlite')), 'the catalog is kept');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('DirectAdmin: plugin folder and hooks beside the provider\'s own scripts; uninstall leaves the tree as it was', () => {
  const root = makeDirectAdminTree();
  try {
    const before = listing(root);
    const providerScript = read(root, 'usr/local/directadmin/scripts/custom/user_destroy_pre.sh');
    assert.match(install(root).stdout, /\(panel: directadmin\)/);
    const plugin = path.join(root, 'usr/local/directadmin/plugins/tidemark');
    const conf = fs.readFileSync(path.join(plugin, 'plugin.conf'), 'utf8').split('\n');
    const version = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
    for (const line of ['id=tidemark', `version=${version}`, 'active=yes', 'installed=yes', 'menu_user=images/user-menu.json']) assert.ok(conf.includes(line), `plugin.conf has ${line}`);
    for (const page of ['admin/index.html', 'reseller/index.html', 'user/index.html', 'admin/index.raw', 'reseller/index.raw', 'user/index.raw']) {
      assert.equal(mode(path.join(plugin, page)) & 0o111, 0o111, `${page} is executable`);
    }
    for (const level of ['admin', 'reseller', 'user']) {
      const menu = JSON.parse(fs.readFileSync(path.join(plugin, `images/${level}-menu.json`), 'utf8')) as { name: string; entries: { href: string }[] }[];
      assert.match(menu[0]!.entries[0]!.href, /\/tidemark\/index\.html$/);
      assert.ok(fs.existsSync(path.join(plugin, `hooks/${level}_txt.html`)));
    }
    // A .raw page writes its own HTTP headers, with the installed forwarder (which refuses root: account pages run as the account).
    assert.match(fs.readFileSync(path.join(plugin, 'user/index.raw'), 'utf8'), new RegExp(`'${root}/usr/local/tidemark/dist/server/bridge/client\\.js' --mode account --level user`));
    const raw = spawnSync(path.join(plugin, 'user/index.raw'), { encoding: 'utf8' });
    assert.match(raw.stdout, /^HTTP\/1\.1 500 /);

    for (const hook of ['user_create_post', 'user_destroy_pre']) {
      const file = path.join(root, `usr/local/directadmin/scripts/custom/${hook}/tidemark.sh`);
      assert.equal(mode(file), 0o700);
      assert.match(fs.readFileSync(file, 'utf8'), new RegExp(`^TIDEMARK='${root}/usr/local/bin/tidemark'$`, 'm'));
    }
    assert.equal(read(root, 'usr/local/directadmin/scripts/custom/user_destroy_pre.sh'), providerScript, 'the provider\'s script is untouched');
    assert.ok(fs.existsSync(path.join(root, 'usr/local/directadmin/scripts/custom/user_create_post/provider.sh')));
    assert.deepEqual(calls(root), [], 'DirectAdmin needs no tool calls');

    install(root); // upgrade: same result
    uninstall(root, ['--purge']);
    assert.deepEqual(listing(root, [CALLS]), before, 'the tree is exactly as before (data purged on request)');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('standalone: no panel, nothing registered; a custom app and data directory', () => {
  const root = makeCpanelTree();
  fs.rmSync(path.join(root, 'usr/local/cpanel/version'));
  try {
    const out = install(root, ['--app-dir', '/opt/tidemark', '--data-dir', '/srv/tidemark']).stdout;
    assert.match(out, /\(panel: standalone\)/);
    assert.deepEqual(calls(root), []);
    assert.ok(fs.existsSync(path.join(root, 'opt/tidemark/dist/server/cli/main.js')));
    assert.match(read(root, 'usr/local/bin/tidemark'), new RegExp(`TIDEMARK_HOME:-${root}/srv/tidemark`));
    // An upgrade without options keeps the directories of the installed copy.
    assert.match(install(root).stdout, new RegExp(`data in ${root}/srv/tidemark \\(kept\\)`));
    uninstall(root, [], '/opt/tidemark');
    assert.equal(fs.existsSync(path.join(root, 'opt')), false, 'the folders the installer made are gone');
    assert.ok(fs.existsSync(path.join(root, 'srv/tidemark')), 'data kept');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('bad input is refused with a clear message and changes nothing', () => {
  const root = makeCpanelTree();
  try {
    const before = listing(root);
    let r = runScript(INSTALL, ['--prefix', 'relative/dir']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--prefix must be an absolute path/);
    r = runScript(INSTALL, ['--prefix', root, '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option: --bogus/);
    r = runScript(INSTALL, ['--prefix', root, '--panel', 'plesk']);
    assert.equal(r.code, 2);
    r = runScript(INSTALL, ['--prefix', root, '--app-dir', '/usr']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to use \/usr itself/);
    r = runScript(path.join(path.dirname(INSTALL), 'uninstall.sh'), ['--prefix', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not installed here/);
    assert.deepEqual(listing(root), before);

    // A file that is not Tidemark's is never overwritten.
    fs.writeFileSync(path.join(root, 'usr/local/bin/tidemark'), '#!/bin/sh\necho someone else\n', { mode: 0o755 });
    r = runScript(INSTALL, ['--prefix', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /usr\/local\/bin\/tidemark exists and was not installed by Tidemark/);
    assert.equal(read(root, 'usr/local/bin/tidemark'), '#!/bin/sh\necho someone else\n');

    // A panel tool that fails stops the installer with its name; the run after the fix completes.
    fs.rmSync(path.join(root, 'usr/local/bin/tidemark'));
    const tool = path.join(root, 'usr/local/cpanel/bin/manage_hooks');
    const good = fs.readFileSync(tool, 'utf8');
    fs.writeFileSync(tool, '#!/bin/sh\necho "hooks database locked" >&2\nexit 3\n');
    r = runScript(INSTALL, ['--prefix', root]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /manage_hooks failed \(exit 3\)/);
    fs.writeFileSync(tool, good);
    install(root);
    assert.equal(calls(root).filter((c) => c[0] === 'manage_hooks').length, 5);
    uninstall(root, ['--purge']);
    assert.deepEqual(listing(root, [CALLS]), before);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('nothing was written outside the test roots', () => {
  assert.deepEqual(REAL.filter((p) => fs.existsSync(p)), realBefore);
});
