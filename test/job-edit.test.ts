import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createAccount, makeHomeRoot, removeAccount, asAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { openContext, UserError, type Context } from '../server/services/context.js';
import { editJob, getJob } from '../server/services/jobs.js';
import { runBackup } from '../server/services/backups.js';

let homeRoot: string;
let alice: TestAccount;
let bob: TestAccount;
let dataDir: string;
let ctx: Context;
const dirs: string[] = [];

const show = (name: string): any => ok(cli(dataDir, ['job', 'show', name]));
const editActivity = (): { result: string; detail: string }[] =>
  ctx.store.activity.list(50).filter((a) => a.action === 'job.edit').map((a) => ({ result: a.result, detail: a.detail }));

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UserError, `a UserError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

before(() => {
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot, 'tmj');
  bob = createAccount(homeRoot, 'tmj');
  asAccount(alice, `mkdir -p cache && printf 'keep' > page.html && printf 'noise' > cache/big.tmp && printf 'log' > error.log`);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], logLevel: 'silent' });
  const one = makeDestinationDir();
  const two = makeDestinationDir();
  dirs.push(one, two);
  ok(cli(dataDir, ['destination', 'add', '--name', 'one', '--type', 'local', '--path', one]));
  ok(cli(dataDir, ['destination', 'add', '--name', 'two', '--type', 'local', '--path', two]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'one', '--structure', 'incremental', '--items', 'files', '--accounts', alice.username]));
  ok(cli(dataDir, ['job', 'add', '--name', 'weekly', '--destination', 'one', '--structure', 'archive', '--items', 'files', '--all']));
});

after(() => {
  ctx?.close();
  for (const a of [alice, bob]) if (a) removeAccount(a);
  for (const d of [dataDir, homeRoot, ...dirs]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('editJob', () => {
  before(async () => { ctx = await openContext(dataDir); });

  test('changes name, destination, structure, accounts, items and excludes; says what changed', async () => {
    const out = await editJob(ctx, 'nightly', {
      name: 'nightly2', destination: 'two', structure: 'compressed', accounts: [alice.username, bob.username], excludes: ['cache', '*.log'],
    });
    assert.deepEqual(out.changed.sort(), ['accounts', 'destination', 'excludes', 'name', 'structure']);
    const j = show('nightly2');
    assert.equal(j.destination, 'two');
    assert.equal(j.structure, 'compressed');
    assert.deepEqual(j.accounts, [alice.username, bob.username]);
    assert.deepEqual(j.excludes, ['cache', '*.log']);
    assert.deepEqual(j.items, ['files']);
    assert.equal(cli(dataDir, ['job', 'show', 'nightly']).code, 1, 'the old name is gone');
    assert.match(editActivity()[0]!.detail, /changed: .*name/);
  });

  test('the next run follows the new settings', async () => {
    const results = await runBackup(ctx, 'nightly2', alice.username);
    assert.equal(results[0]!.status, 'completed');
    const snap = ok(cli(dataDir, ['snapshot', 'list', '--account', alice.username]))[0];
    assert.equal(snap.destination, 'two');
    assert.equal(snap.structure, 'compressed');
    const names = ok(cli(dataDir, ['snapshot', 'files', snap.id])).map((e: { name: string }) => e.name);
    assert.ok(names.includes('page.html'));
    assert.ok(!names.includes('cache') && !names.includes('error.log'), `excluded: ${names.join(', ')}`);
  });

  test('all accounts replaces the list, and a list replaces all', async () => {
    await editJob(ctx, 'nightly2', { all: true });
    assert.equal(show('nightly2').accounts, 'all');
    await editJob(ctx, 'weekly', { accounts: [bob.username] });
    assert.deepEqual(show('weekly').accounts, [bob.username]);
  });

  test('unchanged values change nothing', async () => {
    const before = show('weekly');
    const out = await editJob(ctx, 'weekly', { name: 'weekly', structure: 'archive' });
    assert.deepEqual(out.changed, []);
    assert.deepEqual(show('weekly'), before);
  });

  test('bad input is refused with the field named, and the job stays as it was', async () => {
    const before = show('weekly');
    await refused(editJob(ctx, 'weekly', { name: '' }), /^name: /);
    await refused(editJob(ctx, 'weekly', { name: 'nightly2' }), /name: a job named "nightly2" exists already/);
    await refused(editJob(ctx, 'weekly', { structure: 'zip' }), /^structure: /);
    await refused(editJob(ctx, 'weekly', { items: [] }), /^items: /);
    await refused(editJob(ctx, 'weekly', { accounts: ['nosuchaccount'] }), /unknown account "nosuchaccount"/);
    await refused(editJob(ctx, 'weekly', { destination: 'nowhere' }), /no destination named "nowhere"/);
    await refused(editJob(ctx, 'nosuchjob', { name: 'x' }), /no job named "nosuchjob"/);
    assert.deepEqual(show('weekly'), before);
    assert.ok(editActivity().filter((a) => a.result === 'refused').length >= 6);
  });

  test('an account holder or a reseller cannot reach the provider\'s job', async () => {
    const before = show('weekly');
    await refused(editJob(ctx, 'weekly', { name: 'mine' }, { name: alice.username, role: 'user' }), /no job named "weekly"/);
    await refused(editJob(ctx, 'weekly', { all: true }, { name: 'res1', role: 'reseller' }), /no job named "weekly"/);
    assert.deepEqual(show('weekly'), before);
    assert.equal(getJob(ctx, 'weekly').name, 'weekly');
  });
});
