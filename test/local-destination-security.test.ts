import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { LocalDestination } from '../server/destinations/local.js';
import { DestinationError } from '../server/destinations/types.js';
import { StreamWriter } from '../server/util/stream-writer.js';

let homeRoot: string;
let alice: TestAccount;
let carol: TestAccount;
let dataDir: string;
const made: string[] = [];

const dir = (prefix: string, mode = 0o700): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, mode);
  made.push(d);
  return d;
};
const add = (name: string, p: string, extra: string[] = []): CliResult => cli(dataDir, ['destination', 'add', '--name', name, '--type', 'local', '--path', p, ...extra]);
const refused = (r: CliResult, pattern: RegExp): void => {
  assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.json?.error ?? JSON.stringify(r.json), pattern);
};
/** A path that is not well formed is a wrong command line (README: exit 2), not a refusal. */
const malformed = (r: CliResult, pattern: RegExp): void => {
  assert.equal(r.code, 2, `expected exit 2 for malformed input, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.json?.error ?? JSON.stringify(r.json), pattern);
};
const names = (): string[] => ok(cli(dataDir, ['destination', 'list'])).map((d: any) => d.name);
const backup = (job: string): CliResult => cli(dataDir, ['backup', '--job', job, '--wait']);

before(() => {
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot);
  carol = createAccount(homeRoot);
  fs.writeFileSync(path.join(alice.home, 'page.html'), 'alice page');
  fs.chownSync(path.join(alice.home, 'page.html'), alice.uid, alice.gid);
  dataDir = makeDataDir({});
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot] }));
});

after(() => {
  for (const a of [alice, carol]) if (a) removeAccount(a);
  for (const d of [homeRoot, dataDir, ...made]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test("regression: a provider could add a Local destination inside an account's home (/home/<acct>/bk)", () => {
  const bk = path.join(alice.home, 'bk');
  fs.mkdirSync(bk, { mode: 0o700 });
  const r = add('in-home', bk);
  refused(r, new RegExp(`${alice.home} is owned by uid ${alice.uid}, not by root`));
  assert.match(r.json.error, /lies in the home of an account/);
  assert.match(r.json.error, /--force-insecure-path/);
  // A home owned by root (a chroot-style home) passes the ownership rule: the home rule still refuses it.
  fs.chownSync(carol.home, 0, 0);
  fs.chmodSync(carol.home, 0o755);
  const inRootHome = path.join(carol.home, 'bk');
  fs.mkdirSync(inRootHome, { mode: 0o700 });
  refused(add('in-root-home', inRootHome), new RegExp(`lies in the home of an account \\(${carol.home}\\)`));
  // Standalone: any folder under a home root may become a home.
  const underHomeRoot = path.join(homeRoot, 'backups');
  fs.mkdirSync(underHomeRoot, { mode: 0o700 });
  refused(add('under-home-root', underHomeRoot), /where the homes of accounts are made/);
  // A folder that contains homes: root would write <root>/<account> into the account's home.
  refused(add('contains-homes', homeRoot), /contains the home of an account/);
  assert.deepEqual(names(), [], 'nothing was added');
});

test('regression: a world-writable (1777) or group-writable folder was accepted as a Local destination', () => {
  refused(add('sticky', dir('tidemark-1777-', 0o1777)), /is writable by all users \(mode 1777\)/);
  refused(add('group', dir('tidemark-0770-', 0o770)), /is writable by its group \(mode 0770\)/);
  const parent = dir('tidemark-parent-', 0o777);
  fs.mkdirSync(path.join(parent, 'inner'), { mode: 0o700 });
  refused(add('parent-writable', path.join(parent, 'inner')), new RegExp(`${parent} is writable by all users`));
  const owned = dir('tidemark-owned-');
  fs.chownSync(owned, alice.uid, alice.gid);
  refused(add('user-owned', owned), new RegExp(`owned by uid ${alice.uid}`));
  const real = dir('tidemark-real-');
  const link = path.join(dir('tidemark-linkdir-', 0o755), 'link');
  fs.symlinkSync(real, link);
  refused(add('via-link', link), /is a symbolic link/);
  refused(add('via-link-forced', link, ['--force-insecure-path']), /is a symbolic link/);
  assert.deepEqual(names(), []);
  // A root-only folder in /tmp (sticky, owned by root) is fine: only root may rename it.
  ok(add('in-tmp', makeDestinationDir()));
  ok(cli(dataDir, ['destination', 'remove', 'in-tmp']));
});

test('regression: a Local path with ".." was stored resolved (/x/../../etc became /etc)', () => {
  const base = dir('tidemark-dots-');
  malformed(add('dots', `${base}/../../etc`), /must not contain "\." or "\.\." components/);
  malformed(add('dot', `${base}/./`), /must not contain "\." or "\.\." components/);
  assert.deepEqual(names(), [], 'nothing was stored');
  ok(add('plain', makeDestinationDir()));
  malformed(cli(dataDir, ['destination', 'edit', 'plain', '--path', `${base}/../../etc`]), /must not contain "\." or "\.\." components/);
  ok(cli(dataDir, ['destination', 'remove', 'plain']));
});

test('regression: a forced insecure Local path was accepted without a warning', () => {
  const shared = dir('tidemark-forced-', 0o1777);
  const d = ok(add('forced', shared, ['--force-insecure-path']));
  assert.match(d.warning, /accepted with --force-insecure-path: the destination path .* is writable by all users \(mode 1777\)/);
  assert.deepEqual(d.settings.acceptedRisks, [`writable-by-others ${shared} mode 1777`]);
  ok(add('forced2', shared, ['--force-insecure-path']));
  const shown = ok(cli(dataDir, ['destination', 'show', 'forced']));
  assert.equal(shown.warning, d.warning, 'the warning is kept on the destination');
  assert.equal(ok(cli(dataDir, ['destination', 'validate', 'forced'])).ok, true, 'the accepted problem does not stop it');
  // A problem that was not accepted (the folder now belongs to a user) stops every use.
  fs.chownSync(shared, alice.uid, alice.gid);
  const v = cli(dataDir, ['destination', 'validate', 'forced']);
  assert.equal(v.code, 1);
  assert.match(v.json.error, new RegExp(`owned by uid ${alice.uid}`));
  for (const n of ['forced', 'forced2']) ok(cli(dataDir, ['destination', 'remove', n]));
});

test('regression: the account swapped its folder for a symlink after the Local destination was added, and root wrote every backup there', () => {
  // The check passes at add time; then the parent folder comes to belong to the account (as a
  // folder in its home does), which renames the destination away and puts a link in its place.
  const parent = dir('tidemark-swap-', 0o755);
  const root = path.join(parent, 'bk');
  fs.mkdirSync(root, { mode: 0o700 });
  ok(add('swap', root));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'swap', '--structure', 'archive', '--accounts', alice.username, '--items', 'files']));
  const first = ok(backup('nightly'));
  assert.ok(['completed', 'partial'].includes(first.results[0].status), JSON.stringify(first));
  const snapshot = first.snapshots[0] as string;
  const target = dir('tidemark-root-only-');
  // A decoy where root would delete or read through the link.
  fs.mkdirSync(path.join(target, alice.username, snapshot), { recursive: true });
  fs.writeFileSync(path.join(target, alice.username, snapshot, 'manifest.json'), 'decoy');
  fs.writeFileSync(path.join(target, 'tidemark.json'), fs.readFileSync(path.join(root, 'tidemark.json')));
  const targetBefore = fs.readdirSync(target, { recursive: true }).sort();
  fs.chownSync(parent, alice.uid, alice.gid);
  asAccount(alice, `cd ${parent} && mv bk bk-old && ln -s ${target} bk`);

  const next = backup('nightly');
  assert.equal(next.code, 1);
  assert.match(JSON.stringify(next.json), /is a symbolic link|is not secure/);
  const restore = cli(dataDir, ['restore', snapshot, '--path', 'page.html', '--wait']);
  assert.equal(restore.code, 1, 'restore does not read through the link');
  assert.match(JSON.stringify(restore.json), /not secure/);
  refused(cli(dataDir, ['destination', 'browse', 'swap']), /not secure/);
  refused(cli(dataDir, ['destination', 'reindex', 'swap']), /not secure/);
  const v = cli(dataDir, ['destination', 'validate', 'swap']);
  assert.equal(v.code, 1);
  assert.match(v.json.error, /not secure/);
  ok(cli(dataDir, ['job', 'remove', 'nightly']));
  refused(cli(dataDir, ['destination', 'remove', 'swap', '--delete-data']), /not secure/);
  assert.deepEqual(fs.readdirSync(target, { recursive: true }).sort(), targetBefore, 'nothing landed at or vanished from the link target');
  assert.equal(fs.readFileSync(path.join(target, alice.username, snapshot, 'manifest.json'), 'utf8'), 'decoy');
  assert.deepEqual(fs.readdirSync(path.join(parent, 'bk-old', alice.username)), [snapshot], 'the old snapshot is untouched');
});

test('regression: a forced Local destination in a home was redirected by a symlink swap', () => {
  const bk = path.join(alice.home, 'forced-bk');
  fs.mkdirSync(bk, { mode: 0o700 });
  ok(add('home-forced', bk, ['--force-insecure-path']));
  ok(cli(dataDir, ['job', 'add', '--name', 'home-job', '--destination', 'home-forced', '--structure', 'archive', '--accounts', alice.username, '--items', 'files']));
  assert.ok(['completed', 'partial'].includes(ok(backup('home-job')).results[0].status));
  const target = dir('tidemark-root-x-');
  asAccount(alice, `mv forced-bk forced-bk-old && ln -s ${target} forced-bk`);
  const r = backup('home-job');
  assert.equal(r.code, 1);
  assert.match(JSON.stringify(r.json), /is a symbolic link/);
  assert.deepEqual(fs.readdirSync(target), [], 'nothing was written at the link target');
});

test('regression: root followed a symlink planted under a Local destination root', async () => {
  const root = dir('tidemark-under-');
  const outside = dir('tidemark-outside-');
  fs.writeFileSync(path.join(outside, 'secret'), 'outside');
  const d = new LocalDestination(root);
  await d.open();
  fs.symlinkSync(outside, path.join(root, 'acct'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'file-link'));
  const insecure = (err: unknown): boolean => err instanceof DestinationError && err.code === 'insecure' && /symbolic link/.test(err.message);
  await assert.rejects(d.writeFile('acct/snap/manifest.json', 'x'), insecure);
  await assert.rejects(d.mkdir('acct/snap'), insecure);
  await assert.rejects(d.readFile('acct/secret'), insecure);
  await assert.rejects(d.readFile('file-link'), insecure);
  await assert.rejects(d.list('acct'), insecure);
  await assert.rejects(d.remove('acct'), insecure);
  const linkWriter = new StreamWriter(d.createWriteStream('file-link'));
  await assert.rejects(async () => { await linkWriter.write(Buffer.from('x')); await linkWriter.end(); }, insecure);
  await assert.rejects(text(d.createReadStream('file-link')), insecure);
  const w = new StreamWriter(d.createWriteStream('acct/data'));
  await assert.rejects(async () => { await w.write(Buffer.from('x')); await w.end(); }, insecure);
  // A folder under the root that is not root's own is refused too.
  fs.mkdirSync(path.join(root, 'theirs'));
  fs.chownSync(path.join(root, 'theirs'), alice.uid, alice.gid);
  await assert.rejects(d.writeFile('theirs/x', 'x'), (err: unknown) => err instanceof DestinationError && err.code === 'insecure');
  // A link inside a snapshot: cloning refuses it; removing the snapshot removes the link, never what it points to.
  await d.writeFile('snap/a', 'a');
  fs.symlinkSync(outside, path.join(root, 'snap', 'inner-link'));
  await assert.rejects(d.cloneTree('snap', 'snap2'), insecure);
  await d.remove('snap');
  assert.equal(fs.existsSync(path.join(root, 'snap')), false);
  assert.deepEqual(fs.readdirSync(outside), ['secret']);
  assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'outside', 'nothing outside was read, written or removed');
  assert.equal(fs.lstatSync(path.join(root, 'acct')).isSymbolicLink(), true);
});
