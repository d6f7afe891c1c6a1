import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';

let homeRoot: string;
let alice: TestAccount;
let bob: TestAccount;
let dataDir: string;
let destDir: string;
const ROOT_ONLY = '/root/tidemark-test-root-only';

before(() => {
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot, 'tma');
  bob = createAccount(homeRoot, 'tmb');
  fs.writeFileSync(ROOT_ONLY, 'ROOT-ONLY-SECRET', { mode: 0o600 });
  const h = alice.home;
  fs.mkdirSync(path.join(h, 'www'));
  fs.writeFileSync(path.join(h, 'www/index.html'), 'alice site');
  fs.symlinkSync('/etc/shadow', path.join(h, 'shadow-link'));
  fs.symlinkSync(bob.home, path.join(h, 'bob-home'));
  // A hard link to a root-only file planted in the home (possible where protected_hardlinks is off).
  fs.linkSync(ROOT_ONLY, path.join(h, 'planted-hardlink'));
  execFileSync('chown', ['-h', `${alice.uid}:${alice.gid}`, path.join(h, 'www'), path.join(h, 'www/index.html'), path.join(h, 'shadow-link'), path.join(h, 'bob-home')]);
  fs.mkdirSync(path.join(bob.home, 'docs'));
  fs.writeFileSync(path.join(bob.home, 'docs/bob.txt'), 'BOB-PRIVATE');
  execFileSync('chown', ['-R', `${bob.uid}:${bob.gid}`, bob.home]);
  fs.chmodSync(bob.home, 0o700);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'a', '--destination', 'disk', '--structure', 'archive', '--accounts', alice.username, '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'i', '--destination', 'disk', '--structure', 'incremental', '--accounts', alice.username, '--items', 'files']));
});

after(() => {
  removeAccount(alice);
  removeAccount(bob);
  fs.rmSync(ROOT_ONLY, { force: true });
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

/** Every byte the destination holds for alice, decompressed where needed. */
function everythingStored(): string {
  const parts: Buffer[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) { for (const n of fs.readdirSync(p)) walk(path.join(p, n)); return; }
    const data = fs.readFileSync(p);
    parts.push(p.endsWith('.gz') ? zlib.gunzipSync(data) : data);
  };
  walk(path.join(destDir, alice.username));
  return Buffer.concat(parts).toString('latin1');
}

test('symlinks are stored as links, never followed; root-only files never get into the backup', () => {
  for (const job of ['a', 'i']) {
    const r = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    assert.equal(r.results[0].status, 'partial', 'the unreadable planted file is reported');
    const manifest = ok(cli(dataDir, ['snapshot', 'show', r.snapshots[0]])).manifest;
    assert.ok(manifest.skipped.some((s: any) => s.path === 'planted-hardlink' && /EACCES/.test(s.reason)), JSON.stringify(manifest.skipped));
    const top = ok(cli(dataDir, ['snapshot', 'files', r.snapshots[0]]));
    const link = top.find((e: any) => e.name === 'shadow-link');
    assert.equal(link.type, 'symlink');
    assert.equal(link.target, '/etc/shadow');
  }
  const stored = everythingStored();
  assert.ok(stored.includes('alice site'));
  assert.ok(!stored.includes('ROOT-ONLY-SECRET'));
  assert.ok(!stored.includes('BOB-PRIVATE'));
  const shadow = fs.readFileSync('/etc/shadow', 'latin1').split('\n').find((l) => l.startsWith('root:'))!;
  assert.ok(!stored.includes(shadow));
});

test('a restore never writes through a symlink into another account', () => {
  const snap = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username])).find((s: any) => s.structure === 'incremental').id;
  // After the backup, alice turns www into a link to bob's docs and hopes the restore writes there.
  fs.rmSync(path.join(alice.home, 'www'), { recursive: true });
  fs.symlinkSync(path.join(bob.home, 'docs'), path.join(alice.home, 'www'));
  execFileSync('chown', ['-h', `${alice.uid}:${alice.gid}`, path.join(alice.home, 'www')]);
  ok(cli(dataDir, ['restore', snap, '--path', 'www', '--wait']));
  assert.ok(fs.lstatSync(path.join(alice.home, 'www')).isDirectory(), 'the link was replaced by the real folder');
  assert.equal(fs.readFileSync(path.join(alice.home, 'www/index.html'), 'utf8'), 'alice site');
  assert.deepEqual(fs.readdirSync(path.join(bob.home, 'docs')), ['bob.txt']);
  assert.equal(fs.readFileSync(path.join(bob.home, 'docs/bob.txt'), 'utf8'), 'BOB-PRIVATE');
  assert.equal(fs.readFileSync(ROOT_ONLY, 'utf8'), 'ROOT-ONLY-SECRET');
});

test('restored files belong to the account, and shadow-link stays a link', () => {
  const snap = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username])).find((s: any) => s.structure === 'archive').id;
  fs.rmSync(path.join(alice.home, 'shadow-link'));
  ok(cli(dataDir, ['restore', snap, '--path', 'shadow-link', '--path', 'www', '--wait']));
  const st = fs.lstatSync(path.join(alice.home, 'shadow-link'));
  assert.ok(st.isSymbolicLink());
  assert.equal(st.uid, alice.uid);
  assert.equal(fs.statSync(path.join(alice.home, 'www/index.html')).uid, alice.uid);
  assert.notEqual(fs.readFileSync('/etc/shadow', 'utf8').length, 0);
});
