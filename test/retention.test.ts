import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { diffTrees, snapshotTree, type TreeEntry } from './support/tree.js';
import { planRetention, type RetentionPolicy } from '../server/services/retention.js';
import { nextRun, type Timing } from '../server/schedule/next-run.js';
import { lockAccount } from '../server/engine/account-lock.js';
import { openContext } from '../server/services/context.js';
import { applyRetention } from '../server/services/retention.js';
import type { SnapshotRecord } from '../server/store/snapshots.js';

const snap = (id: string, at: number, schedule: string, extra: Partial<SnapshotRecord> = {}): SnapshotRecord => ({
  id, destinationId: 1, account: 'alice', jobId: 1, structure: 'incremental', status: 'completed',
  startedAt: new Date(at).toISOString(), finishedAt: new Date(at).toISOString(), items: ['files'], files: 1, bytes: 1, storedBytes: 1,
  databases: [], locked: false, note: '', schedule, ...extra,
});

/** Every time a schedule is due between `from` and `to`, through nextRun. */
function runTimes(t: Timing, from: number, to: number): number[] {
  const out: number[] = [];
  for (let at = nextRun(t, from); at !== null && at <= to; at = nextRun(t, at)) out.push(at);
  return out;
}

test('planRetention over a simulated month: hourly, daily, weekly and manual each keep their own newest N; locked never go', () => {
  const from = new Date(2030, 2, 1, 0, 0).getTime();
  const to = new Date(2030, 3, 1, 0, 0).getTime();
  const hourly = runTimes({ kind: 'hourly', at: '00:10', weekday: null, monthday: null }, from, to).map((t) => snap(`h${t}`, t, 'hourly'));
  const daily = runTimes({ kind: 'daily', at: '03:00', weekday: null, monthday: null }, from, to).map((t) => snap(`d${t}`, t, 'daily'));
  const weekly = runTimes({ kind: 'weekly', at: '04:00', weekday: 0, monthday: null }, from, to).map((t) => snap(`w${t}`, t, 'weekly'));
  assert.equal(hourly.length, 31 * 24);
  assert.equal(daily.length, 31);
  assert.equal(weekly.length, 5); // Sundays of March 2030: 3, 10, 17, 24, 31
  const manual = [1, 2, 3, 4].map((d) => snap(`m${d}`, from + d * 86400_000 + 1000, 'manual'));
  hourly[5] = { ...hourly[5]!, locked: true };
  const otherAccount = hourly.slice(0, 50).map((s) => ({ ...s, id: `b${s.id}`, account: 'bob', locked: false }));
  const otherDestination = daily.map((s) => ({ ...s, id: `x${s.id}`, destinationId: 2 }));
  const removedJob = daily.map((s) => ({ ...s, id: `r${s.id}`, jobId: null }));
  const unknownSchedule = daily.map((s) => ({ ...s, id: `u${s.id}`, schedule: 'gone' }));
  const all = [...hourly, ...daily, ...weekly, ...manual, ...otherAccount, ...otherDestination, ...removedJob, ...unknownSchedule]
    .sort(() => Math.random() - 0.5);
  const policies: RetentionPolicy[] = [{ jobId: 1, manualKeep: 2, schedules: [{ name: 'hourly', keep: 24 }, { name: 'daily', keep: 7 }, { name: 'weekly', keep: 4 }] }];
  const pruned = new Set(planRetention(all, policies).map((s) => s.id));
  const kept = all.filter((s) => !pruned.has(s.id)).map((s) => s.id).sort();
  const expected = [
    ...hourly.slice(-24), hourly[5]!, ...daily.slice(-7), ...weekly.slice(-4), ...manual.slice(-2),
    ...otherAccount.slice(-24), ...otherDestination.slice(-7), ...removedJob, ...unknownSchedule,
  ].map((s) => s.id).sort();
  assert.deepEqual(kept, expected);
  // Without a manual rule, snapshots taken on demand are all kept.
  assert.equal(planRetention(manual, [{ ...policies[0]!, manualKeep: null }]).length, 0);
});

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  for (const skel of fs.readdirSync(account.home)) fs.rmSync(path.join(account.home, skel), { recursive: true });
  fs.mkdirSync(path.join(account.home, 'site'));
  for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(account.home, 'site', `page${i}.html`), crypto.randomBytes(3000));
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'ondemand', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
});

after(() => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

const skipRestores = (p: string): boolean => p.startsWith('tidemark-restore-');
/** Snapshot ids in the catalog, oldest first (ids alone sort by the second only). */
const catalogByAge = (): string[] => (ok(cli(dataDir, ['snapshot', 'list'])) as { id: string }[]).map((s) => s.id).reverse();
const catalog = (): string[] => catalogByAge().sort();
const onDisk = (): string[] =>
  fs.readdirSync(path.join(destDir, account.username), { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();

function backup(n: number): { id: string; tree: Map<string, TreeEntry> } {
  fs.writeFileSync(path.join(account.home, 'site', `page${n}.html`), `changed in run ${n}\n`);
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  const tree = snapshotTree(account.home, { skip: skipRestores });
  return { id: ok(cli(dataDir, ['backup', '--job', 'ondemand', '--wait'])).snapshots[0], tree };
}

function assertRestores(id: string, tree: Map<string, TreeEntry>): void {
  const r = ok(cli(dataDir, ['restore', id, '--into-folder', '--wait']));
  const folder = path.join(account.home, r.folder);
  try {
    assert.deepEqual(diffTrees(tree, snapshotTree(folder)), []);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

test('manual retention removes the oldest unlocked snapshots; a locked one survives; the rest restore exactly', () => {
  ok(cli(dataDir, ['job', 'schedule', 'manual', 'ondemand', '--keep', '2']));
  const runs = [1, 2, 3, 4].map(backup);
  const locked = ok(cli(dataDir, ['snapshot', 'lock', runs[0]!.id]));
  assert.equal(locked.locked, true);
  assert.equal(locked.schedule, 'manual');
  const dry = ok(cli(dataDir, ['retention', '--dry-run']));
  assert.deepEqual(dry.removed.map((r: { id: string }) => r.id), [runs[1]!.id]);
  assert.equal(catalog().length, 4, 'a dry run removes nothing');
  const r = ok(cli(dataDir, ['retention']));
  assert.deepEqual(r.removed.map((x: { id: string }) => x.id), [runs[1]!.id]);
  const left = [runs[0]!.id, runs[2]!.id, runs[3]!.id].sort();
  assert.deepEqual(catalog(), left);
  assert.deepEqual(onDisk(), left);
  assert.deepEqual(fs.readdirSync(path.join(destDir, account.username)).filter((n) => n.startsWith('.partial-')), []);
  for (const i of [0, 2, 3]) assertRestores(runs[i]!.id, runs[i]!.tree);
  assert.deepEqual(ok(cli(dataDir, ['retention'])).removed, [], 'nothing more to remove');
});

test('a snapshot whose account is held by a restore is not removed until the account is free', async () => {
  const oldest = catalogByAge()[0]!;
  ok(cli(dataDir, ['snapshot', 'unlock', oldest]));
  // Another process holds the account (the CLI sees this test's pid as alive).
  const release = lockAccount(dataDir, account.username, 'restore task 999');
  try {
    const r = ok(cli(dataDir, ['retention']));
    assert.deepEqual(r.removed, []);
    assert.equal(r.skipped[0].account, account.username);
    assert.match(r.skipped[0].reason, /restore task 999/);
    assert.ok(onDisk().includes(oldest));
    // The daemon's own restore: the same process holds the lock.
    const ctx = await openContext(dataDir);
    try {
      const inProcess = await applyRetention(ctx);
      assert.deepEqual(inProcess.removed, []);
      assert.match(inProcess.skipped[0]!.reason, /restore task 999/);
    } finally {
      ctx.close();
    }
    assert.ok(onDisk().includes(oldest) && catalog().includes(oldest));
  } finally {
    release();
  }
  const r = ok(cli(dataDir, ['retention']));
  assert.deepEqual(r.removed.map((x: { id: string }) => x.id), [oldest], 'retried and removed once the account is free');
  assert.equal(catalog().length, 2);
  assert.deepEqual(onDisk(), catalog());
});

test('an account holder cannot lock snapshots on the provider destination', () => {
  const id = catalog()[0]!;
  const r = cli(dataDir, ['--as-account', account.username, 'snapshot', 'lock', id]);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /only the provider/);
  assert.equal((ok(cli(dataDir, ['snapshot', 'show', id])) as { locked: boolean }).locked, false);
});
