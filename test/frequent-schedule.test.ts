/**
 * Frequent file backups: schedules every 5, 10, 15 or 30 minutes, for incremental jobs only,
 * run by the real scheduler on a fake clock against a real account, each run a real snapshot
 * whose unchanged files are hard links to the previous one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { openContext, type Context } from '../server/services/context.js';
import { FakeClock } from '../server/schedule/clock.js';
import { Scheduler } from '../server/schedule/scheduler.js';
import { nextRun } from '../server/schedule/next-run.js';
import { editJob } from '../server/services/jobs.js';

const MINUTE = 60_000;
let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.mkdirSync(path.join(account.home, 'public_html'), { recursive: true });
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(account.home, 'public_html', `f${i}.php`), `<?php // ${i}\n`);
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'often', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'packed', '--destination', 'disk', '--structure', 'compressed', '--accounts', account.username, '--items', 'files']));
});

after(() => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

test('every N minutes: the next multiple of N minutes of the hour, strictly after', () => {
  const at = (h: number, m: number, s = 0): number => new Date(2030, 0, 15, h, m, s).getTime();
  const k = (kind: string) => ({ kind: kind as 'every5min', at: null, weekday: null, monthday: null });
  assert.equal(nextRun(k('every5min'), at(10, 3, 20)), at(10, 5));
  assert.equal(nextRun(k('every5min'), at(10, 5)), at(10, 10));
  assert.equal(nextRun(k('every10min'), at(10, 59, 59)), at(11, 0));
  assert.equal(nextRun(k('every15min'), at(10, 14, 59)), at(10, 15));
  assert.equal(nextRun(k('every30min'), at(23, 45)), new Date(2030, 0, 16, 0, 0).getTime());
});

test('refused for archive and compressed jobs, with a clear message; no time of day', async () => {
  const r = cli(dataDir, ['job', 'schedule', 'add', 'packed', '--kind', 'every5min', '--keep', '12']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /every 5 minutes is for jobs with the incremental structure only; this job's structure is compressed/);
  // A time of day given to a schedule that has none is a wrong command line.
  const timed = cli(dataDir, ['job', 'schedule', 'add', 'often', '--kind', 'every10min', '--at', '03:00', '--keep', '3']);
  assert.equal(timed.code, 2);
  assert.match(timed.json.error, /no time of its own/);
  assert.deepEqual(ok(cli(dataDir, ['job', 'schedule', 'list', 'packed'])).schedules, []);
  // An incremental job takes it; the job cannot then become an archive job under it.
  const s = ok(cli(dataDir, ['job', 'schedule', 'add', 'often', '--kind', 'every5min', '--keep', '4']));
  assert.equal(s.kind, 'every5min');
  assert.equal(s.at, null);
  const ctx = await openContext(dataDir);
  try {
    await assert.rejects(editJob(ctx, 'often', { structure: 'archive' }), /every 5 minutes, which is for the incremental structure only/);
    assert.equal(ctx.store.jobs.byName('often', 'root')!.structure, 'incremental');
  } finally {
    ctx.close();
  }
  const change = cli(dataDir, ['job', 'schedule', 'edit', 'packed', 'x', '--kind', 'every15min']);
  assert.notEqual(change.code, 0);
});

test('the scheduler runs it every 5 minutes; unchanged files are hard links; retention keeps 4', async () => {
  const ctx: Context = await openContext(dataDir);
  // The schedule was created "now": the fake clock starts there.
  const clock = new FakeClock(Date.now());
  const scheduler = new Scheduler(ctx, clock, undefined, 60 * MINUTE);
  scheduler.start();
  try {
    for (let i = 0; i < 6; i++) {
      fs.writeFileSync(path.join(account.home, 'public_html', 'changing.txt'), `run ${i}\n`);
      execFileSync('chown', [`${account.uid}:${account.gid}`, path.join(account.home, 'public_html', 'changing.txt')]);
      await clock.advance(5 * MINUTE, () => scheduler.idle());
    }
  } finally {
    scheduler.stop();
    ctx.close();
  }
  const snaps = (ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])) as { id: string; job: string; schedule: string }[]).filter((s) => s.job === 'often');
  assert.equal(snaps.length, 4, 'retention keeps the newest 4 of 6 runs');
  assert.ok(snaps.every((s) => s.schedule === 'every5min'));
  // An unchanged file of the newest is the same inode as in the one before.
  const [newest, previous] = snaps;
  const listed = ok(cli(dataDir, ['snapshot', 'files', newest!.id, 'public_html']));
  assert.equal(listed.length, 51);
  assert.notEqual(newest!.id, previous!.id);
  const linked = execFileSync('find', [path.join(destDir, account.username, newest!.id, 'files'), '-type', 'f', '-links', '+1']).toString().split('\n').filter(Boolean);
  assert.ok(linked.length >= 50, `unchanged files are hard links (${linked.length})`);
});
