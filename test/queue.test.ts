import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, makeDestinationDir, ok } from './support/cli.js';

/**
 * The task queue across processes: every backup here is a real one of a real account, run
 * by separate CLI processes that share one state store, as the daemon and the CLI do.
 */

let homeRoot: string;
let dataDir: string;
let destA: string;
let destB: string;
let hookDir: string;
const accounts: TestAccount[] = [];
const baseConfig = (): Record<string, unknown> => ({ panel: 'standalone', homeRoots: [homeRoot] });

function writeConfig(extra: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ ...baseConfig(), ...extra }, null, 2));
}

interface TaskDoc { id: number; type: string; status: string; account: string; destinationId: number; startedAt: string | null; finishedAt: string | null; priority: string }

const tasksOf = (filter: (t: TaskDoc) => boolean = () => true): TaskDoc[] => (ok(cli(dataDir, ['task', 'list', '--limit', '500'])) as TaskDoc[]).filter(filter);

/** The largest number of tasks that ran at the same moment, from their start and end times. */
function maxOverlap(tasks: TaskDoc[]): number {
  const events: [number, number][] = [];
  for (const t of tasks) {
    assert.ok(t.startedAt && t.finishedAt, `task ${t.id} ran`);
    events.push([Date.parse(t.startedAt), 1], [Date.parse(t.finishedAt), -1]);
  }
  // At the same millisecond an end comes first: a slot is freed before the next task takes it.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of events) { now += d; max = Math.max(max, now); }
  return max;
}

async function until<T>(what: string, probe: () => T | undefined | null | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(() => {
  homeRoot = makeHomeRoot();
  for (let i = 0; i < 20; i++) {
    const a = createAccount(homeRoot, 'tq');
    fs.mkdirSync(path.join(a.home, 'public_html'));
    fs.writeFileSync(path.join(a.home, 'public_html', 'index.html'), `<p>site ${i}</p>\n`);
    fs.writeFileSync(path.join(a.home, 'notes.txt'), 'x'.repeat(1000 * (i + 1)));
    execFileSync('chown', ['-R', `${a.uid}:${a.gid}`, a.home]);
    accounts.push(a);
  }
  dataDir = makeDataDir({});
  writeConfig({});
  destA = makeDestinationDir();
  destB = makeDestinationDir();
  hookDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-qhooks-'));
  ok(cli(dataDir, ['destination', 'add', '--name', 'a', '--type', 'local', '--path', destA]));
  ok(cli(dataDir, ['destination', 'add', '--name', 'b', '--type', 'local', '--path', destB]));
  const names = accounts.map((a) => a.username);
  ok(cli(dataDir, ['job', 'add', '--name', 'first-ten', '--destination', 'a', '--structure', 'incremental', '--accounts', names.slice(0, 10).join(','), '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'last-ten', '--destination', 'b', '--structure', 'archive', '--accounts', names.slice(10).join(','), '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'one-a', '--destination', 'a', '--structure', 'incremental', '--all', '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'one-b', '--destination', 'b', '--structure', 'compressed', '--all', '--items', 'files']));
});

after(() => {
  for (const a of accounts) removeAccount(a);
  for (const d of [homeRoot, dataDir, destA, destB, hookDir]) fs.rmSync(d, { recursive: true, force: true });
});

test('20 account backups from two processes at once keep to the limits of concurrent backups and of tasks per destination', async () => {
  writeConfig({ queue: { maxBackups: 3, maxTasksPerDestination: 2 } });
  const before = new Set(tasksOf().map((t) => t.id));
  const runs = [cliAsync(dataDir, ['backup', '--job', 'first-ten', '--wait']), cliAsync(dataDir, ['backup', '--job', 'last-ten', '--wait'])];
  const [r1, r2] = (await Promise.all(runs.map((r) => r.result))).map(ok);
  for (const r of [r1, r2]) {
    assert.equal(r.results.length, 10);
    assert.deepEqual(r.results.map((x: { status: string }) => x.status), Array(10).fill('completed'));
  }
  const ran = tasksOf((t) => !before.has(t.id));
  assert.equal(ran.length, 20);
  const destIds = [...new Set(ran.map((t) => t.destinationId))];
  assert.equal(destIds.length, 2);
  assert.equal(maxOverlap(ran), 3, 'at most 3 backups ran at once, and the queue used all 3 slots');
  for (const d of destIds) assert.equal(maxOverlap(ran.filter((t) => t.destinationId === d)), 2, `at most 2 tasks on destination ${d} at once`);
  // Every account's snapshot is there and listed once.
  const listed = ok(cli(dataDir, ['snapshot', 'list'])) as { account: string }[];
  assert.deepEqual(new Set(listed.map((s) => s.account)), new Set(accounts.map((a) => a.username)));
});

test('two backups of the same account, started by two processes at once, both complete and never overlap', async () => {
  writeConfig({ queue: { maxBackups: 4, maxTasksPerDestination: 4 } });
  const a = accounts[0]!;
  for (let round = 0; round < 3; round++) {
    const runs = [
      cliAsync(dataDir, ['backup', '--job', 'one-a', '--account', a.username, '--wait']),
      cliAsync(dataDir, ['backup', '--job', 'one-b', '--account', a.username, '--wait']),
    ];
    const results = (await Promise.all(runs.map((r) => r.result))).map(ok);
    const ids = results.map((r) => r.results[0].task as number);
    for (const r of results) assert.equal(r.results[0].status, 'completed');
    const [t1, t2] = ids.map((id) => ok(cli(dataDir, ['task', 'show', String(id)])) as TaskDoc);
    const [first, second] = Date.parse(t1!.startedAt!) <= Date.parse(t2!.startedAt!) ? [t1!, t2!] : [t2!, t1!];
    assert.ok(Date.parse(second.startedAt!) >= Date.parse(first.finishedAt!), `round ${round}: task ${second.id} started after task ${first.id} ended`);
  }
});

test('an urgent backup goes before the backups already waiting', async () => {
  // One slot; a pre-backup hook holds it for the first account until both others are queued
  // (a fixed sleep lost the race on a loaded machine: the urgent CLI had not queued yet).
  const [slow, low, high] = [accounts[1]!, accounts[2]!, accounts[3]!];
  const hook = path.join(hookDir, 'hold.sh');
  const release = path.join(hookDir, 'release');
  fs.rmSync(release, { force: true });
  fs.writeFileSync(hook, `#!/bin/sh\ngrep -q '"account":"${slow.username}"' || exit 0\n`
    + `i=0; while [ ! -e '${release}' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n`, { mode: 0o700 });
  writeConfig({ queue: { maxBackups: 1, maxTasksPerDestination: 4 }, hooks: { preAccountBackup: [hook] } });
  const first = cliAsync(dataDir, ['backup', '--job', 'one-a', '--account', slow.username, '--wait']);
  await until('the first backup to run', () => tasksOf((t) => t.account === slow.username && t.status === 'running').length > 0);
  const waitsLow = cliAsync(dataDir, ['backup', '--job', 'one-a', '--account', low.username, '--priority', 'low', '--wait']);
  await until('the low-priority backup to queue', () => tasksOf((t) => t.account === low.username && t.status === 'queued').length > 0);
  const urgent = cliAsync(dataDir, ['backup', '--job', 'one-a', '--account', high.username, '--priority', 'high', '--wait']);
  await until('the urgent backup to queue', () => tasksOf((t) => t.account === high.username && t.status === 'queued').length > 0);
  fs.writeFileSync(release, '');
  const [rSlow, rLow, rHigh] = (await Promise.all([first.result, waitsLow.result, urgent.result])).map(ok);
  const show = (r: { results: { task: number }[] }): TaskDoc => ok(cli(dataDir, ['task', 'show', String(r.results[0]!.task)]));
  const [tSlow, tLow, tHigh] = [show(rSlow), show(rLow), show(rHigh)];
  assert.equal(tLow.priority, 'low');
  assert.equal(tHigh.priority, 'high');
  assert.ok(tHigh.id > tLow.id, 'the urgent one was asked for last');
  assert.ok(Date.parse(tHigh.startedAt!) >= Date.parse(tSlow.finishedAt!));
  assert.ok(Date.parse(tLow.startedAt!) >= Date.parse(tHigh.finishedAt!), 'the low-priority backup waited for the urgent one');
  writeConfig({});
});

test('cancel: a queued task never starts; a running backup stops, lists nothing and leaves nothing behind; the next run succeeds', async () => {
  writeConfig({ queue: { maxBackups: 2, maxTasksPerDestination: 2 } });
  const a = accounts[4]!;
  // A large sparse file keeps the backup busy (compressing zeros) long enough to cancel it.
  const big = path.join(a.home, 'disk.img');
  execFileSync('truncate', ['-s', '6G', big]);
  fs.chownSync(big, a.uid, a.gid);
  const snapshotsBefore = (ok(cli(dataDir, ['snapshot', 'list', '--account', a.username])) as unknown[]).length;
  const running = cliAsync(dataDir, ['backup', '--job', 'one-b', '--account', a.username, '--wait']);
  const runningTask = await until('the backup to run', () => tasksOf((t) => t.account === a.username && t.status === 'running')[0]);
  const waiting = cliAsync(dataDir, ['backup', '--job', 'one-a', '--account', a.username, '--wait']);
  const queuedTask = await until('the second backup to queue', () => tasksOf((t) => t.account === a.username && t.status === 'queued')[0]);
  await until('the backup to write its partial folder', () => fs.existsSync(path.join(destB, a.username)) && fs.readdirSync(path.join(destB, a.username)).some((n) => n.startsWith('.partial-')));

  // The account holder may not stop a backup its provider runs.
  const refused = cli(dataDir, ['--as-account', a.username, 'task', 'cancel', String(runningTask.id)]);
  assert.equal(refused.code, 1);
  assert.match(refused.json.error, /not yours to cancel/);

  assert.deepEqual(ok(cli(dataDir, ['task', 'cancel', String(queuedTask.id)])), { task: queuedTask.id, outcome: 'cancelled', status: 'cancelled' });
  const stopped = ok(cli(dataDir, ['task', 'cancel', String(runningTask.id), '--wait']));
  assert.equal(stopped.outcome, 'stopping');
  assert.equal(stopped.status, 'cancelled');

  const [rRunning, rWaiting] = await Promise.all([running.result, waiting.result] as const);
  assert.equal(rRunning.code, 1);
  assert.equal(rRunning.json.results[0].status, 'cancelled');
  assert.match(rRunning.json.results[0].error, /cancelled by root/);
  assert.equal(rWaiting.code, 1);
  assert.equal(rWaiting.json.results[0].status, 'cancelled');
  const q = ok(cli(dataDir, ['task', 'show', String(queuedTask.id)]));
  assert.equal(q.startedAt, null, 'the queued task never started');

  assert.equal((ok(cli(dataDir, ['snapshot', 'list', '--account', a.username])) as unknown[]).length, snapshotsBefore, 'no snapshot listed');
  assert.deepEqual(fs.readdirSync(path.join(destB, a.username)).filter((n) => n.startsWith('.partial-')), [], 'the partial folder is gone');
  assert.notEqual(spawnSync('pgrep', ['-u', String(a.uid)]).status, 0, 'no process of the account is left running');
  const log = ok(cli(dataDir, ['activity'])) as { action: string; actor: string; target: string }[];
  assert.equal(log.filter((e) => e.action === 'cancel' && e.actor === 'root' && e.target.includes(a.username)).length, 2);

  // Cancelling what has ended is refused with the reason.
  const late = cli(dataDir, ['task', 'cancel', String(runningTask.id)]);
  assert.equal(late.code, 1);
  assert.match(late.json.error, /already ended \(cancelled\)/);

  fs.rmSync(big);
  const next = ok(cli(dataDir, ['backup', '--job', 'one-b', '--account', a.username, '--wait']));
  assert.equal(next.results[0].status, 'completed');
});

test('backup workers run with the configured CPU and disk priority', async () => {
  const a = accounts[5]!;
  writeConfig({ queue: { nice: 15, ioClass: 'idle' } });
  // Watched while it reads a large sparse file.
  const big = path.join(a.home, 'disk.img');
  execFileSync('truncate', ['-s', '4G', big]);
  fs.chownSync(big, a.uid, a.gid);
  const run = cliAsync(dataDir, ['backup', '--job', 'one-b', '--account', a.username, '--wait']);
  const pid = await until('the account worker', () => {
    const r = spawnSync('pgrep', ['-u', String(a.uid), '-f', 'account-worker'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim().split('\n')[0] : null;
  });
  const nice = spawnSync('ps', ['-o', 'ni=', '-p', pid], { encoding: 'utf8' }).stdout.trim();
  const io = spawnSync('ionice', ['-p', pid], { encoding: 'utf8' }).stdout.trim();
  const task = tasksOf((t) => t.account === a.username && t.status === 'running')[0]!;
  ok(cli(dataDir, ['task', 'cancel', String(task.id), '--wait']));
  await run.result;
  fs.rmSync(big);
  assert.equal(nice, '15');
  assert.equal(io, 'idle');
  writeConfig({});
});
