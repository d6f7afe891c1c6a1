import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { diffTrees, snapshotTree, type TreeEntry } from './support/tree.js';
import { openContext, type Context } from '../server/services/context.js';
import { addSchedule } from '../server/services/jobs.js';
import { FakeClock } from '../server/schedule/clock.js';
import { Scheduler } from '../server/schedule/scheduler.js';
import { nextRun } from '../server/schedule/next-run.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
let ctx: Context;

const skipRestores = (p: string): boolean => p.startsWith('tidemark-restore-');

function changeHome(tag: string): Map<string, TreeEntry> {
  fs.writeFileSync(path.join(account.home, `${tag}.txt`), `written on ${tag}\n`);
  fs.writeFileSync(path.join(account.home, 'data.bin'), crypto.randomBytes(5000));
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  return snapshotTree(account.home, { skip: skipRestores });
}

const snapshotsOf = (job: string): { id: string; schedule: string; locked: boolean }[] =>
  (ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])) as { id: string; job: string; schedule: string; locked: boolean }[]).filter((s) => s.job === job);

const foldersOnDisk = (): string[] =>
  fs.readdirSync(path.join(destDir, account.username), { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();

before(async () => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  for (const skel of fs.readdirSync(account.home)) fs.rmSync(path.join(account.home, skel), { recursive: true });
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  for (const name of ['nightly', 'late', 'follow']) {
    ok(cli(dataDir, ['job', 'add', '--name', name, '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  }
  ctx = await openContext(dataDir);
});

after(() => {
  ctx?.close();
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

test('next run times: hourly, daily, weekly, monthly in local time', () => {
  const t = new Date(2030, 0, 15, 10, 20).getTime(); // a Tuesday
  assert.equal(nextRun({ kind: 'hourly', at: '00:15', weekday: null, monthday: null }, t), new Date(2030, 0, 15, 11, 15).getTime());
  assert.equal(nextRun({ kind: 'hourly', at: '00:30', weekday: null, monthday: null }, t), new Date(2030, 0, 15, 10, 30).getTime());
  assert.equal(nextRun({ kind: 'daily', at: '03:00', weekday: null, monthday: null }, t), new Date(2030, 0, 16, 3, 0).getTime());
  assert.equal(nextRun({ kind: 'daily', at: '23:45', weekday: null, monthday: null }, t), new Date(2030, 0, 15, 23, 45).getTime());
  assert.equal(nextRun({ kind: 'weekly', at: '02:00', weekday: 0, monthday: null }, t), new Date(2030, 0, 20, 2, 0).getTime());
  assert.equal(nextRun({ kind: 'weekly', at: '12:00', weekday: 2, monthday: null }, t), new Date(2030, 0, 15, 12, 0).getTime());
  assert.equal(nextRun({ kind: 'monthly', at: '01:00', weekday: null, monthday: 15 }, t), new Date(2030, 1, 15, 1, 0).getTime());
  assert.equal(nextRun({ kind: 'monthly', at: '01:00', weekday: null, monthday: 28 }, new Date(2030, 11, 28, 1, 0).getTime()), new Date(2031, 0, 28, 1, 0).getTime());
  assert.equal(nextRun({ kind: 'after', at: null, weekday: null, monthday: null }, t), null);
});

test('schedule add refuses bad input with a clear error and adds nothing', () => {
  // Exit 2: a malformed value, a missing or conflicting option (a wrong command line: the schedule's
  // schema refuses it); exit 1: a well-formed schedule the rules refuse (a loop).
  const bad = (args: string[], message: RegExp, code = 1): void => {
    const r = cli(dataDir, ['job', 'schedule', 'add', 'nightly', ...args]);
    assert.equal(r.code, code);
    assert.match(r.json.error, message);
  };
  bad(['--kind', 'daily', '--at', '25:00', '--keep', '3'], /HH:MM/, 2);
  bad(['--kind', 'weekly', '--keep', '3'], /weekday/, 2);
  bad(['--kind', 'monthly', '--monthday', '31', '--keep', '3'], /1 to 28/, 2);
  bad(['--kind', 'daily', '--keep', '0'], /from 1 to/, 2);
  bad(['--kind', 'yearly', '--keep', '1'], /Allowed choices are every5min, every10min, every15min, every30min, hourly, daily, weekly, monthly, after/, 2);
  bad(['--kind', 'after', '--after-job', 'nightly', '--keep', '1'], /loop/);
  bad(['--kind', 'daily', '--name', 'manual', '--keep', '1'], /on demand/, 2);
  assert.deepEqual(ok(cli(dataDir, ['job', 'schedule', 'list', 'nightly'])).schedules, []);
});

test('a daily schedule keeping 3, run over 5 simulated days, keeps exactly 3 snapshots that restore exactly', async () => {
  const clock = new FakeClock(Date.now());
  await addSchedule(ctx, 'nightly', { kind: 'daily', at: '03:00', keep: 3 }, undefined, undefined, clock.now());
  const scheduler = new Scheduler(ctx, clock, undefined, 6 * HOUR);
  scheduler.start();
  const expected = new Map<string, Map<string, TreeEntry>>();
  try {
    for (let day = 1; day <= 5; day++) {
      const tree = changeHome(`day${day}`);
      const before = new Set(snapshotsOf('nightly').map((s) => s.id));
      await clock.advance(DAY, () => scheduler.idle());
      const made = snapshotsOf('nightly').filter((s) => !before.has(s.id));
      assert.equal(made.length, 1, `one run on day ${day}`);
      assert.equal(made[0]!.schedule, 'daily');
      expected.set(made[0]!.id, tree);
    }
  } finally {
    scheduler.stop();
  }
  const kept = snapshotsOf('nightly');
  assert.equal(kept.length, 3);
  assert.deepEqual(foldersOnDisk(), kept.map((s) => s.id).sort());
  const lastThree = [...expected.keys()].slice(2);
  assert.deepEqual(kept.map((s) => s.id).sort(), [...lastThree].sort());
  for (const id of lastThree) {
    const r = ok(cli(dataDir, ['restore', id, '--into-folder', '--wait']));
    const folder = path.join(account.home, r.folder);
    try {
      assert.deepEqual(diffTrees(expected.get(id)!, snapshotTree(folder)), []);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
});

test('a run missed while the daemon was down starts once after restart, and "after" jobs follow it', async () => {
  ok(cli(dataDir, ['job', 'schedule', 'remove', 'nightly', 'daily']));
  const clock = new FakeClock(Date.now());
  await addSchedule(ctx, 'late', { kind: 'daily', at: '04:00', keep: 10 }, undefined, undefined, clock.now());
  await addSchedule(ctx, 'follow', { kind: 'after', afterJob: 'late', keep: 1 }, undefined, undefined, clock.now());
  const first = new Scheduler(ctx, clock, undefined, 6 * HOUR);
  first.start();
  await clock.advance(DAY, () => first.idle());
  first.stop();
  assert.equal(snapshotsOf('late').length, 1);
  assert.equal(snapshotsOf('follow').length, 1);

  // Down for three days: three 04:00 runs missed; one catch-up on start.
  const later = new FakeClock(clock.now() + 3 * DAY);
  const second = new Scheduler(ctx, later, undefined, 6 * HOUR);
  second.start();
  try {
    await later.advance(0, () => second.idle());
    assert.equal(snapshotsOf('late').length, 2, 'one catch-up run, not one per missed slot');
    const follow = snapshotsOf('follow');
    assert.equal(follow.length, 1, 'the after-job ran again and kept 1');
    assert.equal(follow[0]!.schedule, 'after');
    const listed = ok(cli(dataDir, ['job', 'schedule', 'list', 'late'])).schedules[0];
    assert.equal(Date.parse(listed.lastRunAt), later.now());
    assert.ok(Date.parse(listed.nextRunAt) > later.now());
    await later.advance(Date.parse(listed.nextRunAt) - later.now() - 60_000, () => second.idle());
    assert.equal(snapshotsOf('late').length, 2, 'nothing more before the next 04:00');
    await later.advance(2 * 60_000, () => second.idle());
    assert.equal(snapshotsOf('late').length, 3);
  } finally {
    second.stop();
  }
});
