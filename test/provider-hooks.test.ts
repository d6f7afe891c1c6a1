import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';

let homeRoot: string;
let a: TestAccount;
let b: TestAccount;
let dataDir: string;
let destDir: string;
/** Root's folder of hook scripts, and where the scripts leave what they saw. */
let hookDir: string;
let seenDir: string;

const config = (hooks: Record<string, unknown>): void => {
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot], hooks }));
};

/** A hook script (root's, mode 0755) with this shell body. */
function script(name: string, body: string, mode = 0o755): string {
  const file = path.join(hookDir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`);
  fs.chmodSync(file, mode);
  return file;
}

/** Keeps its stdin and TIDEMARK_EVENT in seenDir/<event>.json and .env (appending one line per run). */
const recorder = (): string => script('record.sh', `cat >> "${seenDir}/$TIDEMARK_EVENT.json"\necho "$TIDEMARK_EVENT" >> "${seenDir}/$TIDEMARK_EVENT.env"\necho "recorded $TIDEMARK_EVENT"`);
const seen = (event: string): any[] => {
  const file = path.join(seenDir, `${event}.json`);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
};

const failed = (r: CliResult, message: string | RegExp): void => {
  assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  if (typeof message === 'string') assert.equal(r.json?.error, message);
  else assert.match(r.json?.error ?? '', message);
};

function tasks(): { id: number; type: string; status: string; account: string; error: string | null }[] {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  try { return db.prepare('SELECT id, type, status, account, error FROM tasks ORDER BY id').all() as any[]; } finally { db.close(); }
}
function taskLog(id: number): { level: string; message: string }[] {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  try { return db.prepare('SELECT level, message FROM task_log WHERE task_id = ? ORDER BY id').all(id) as any[]; } finally { db.close(); }
}

before(() => {
  homeRoot = makeHomeRoot();
  a = createAccount(homeRoot);
  b = createAccount(homeRoot);
  asAccount(a, `printf 'version 1' > page.html`);
  asAccount(b, `printf 'of b' > b.txt`);
  dataDir = makeDataDir({});
  config({});
  destDir = makeDestinationDir();
  hookDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-hooks-'));
  seenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-hooks-seen-'));
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--items', 'files', '--accounts', `${a.username},${b.username}`]));
});

after(() => {
  for (const acct of [a, b]) if (acct) removeAccount(acct);
  for (const d of [homeRoot, dataDir, destDir, hookDir, seenDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('pre-hooks read one JSON document on stdin and TIDEMARK_EVENT; their output lands in the task log', () => {
  const rec = recorder();
  config({ preBackup: [rec], preAccountBackup: [rec] });
  const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
  assert.equal(r.results.length, 2);
  const [job] = seen('preBackup');
  assert.equal(job.event, 'preBackup');
  assert.equal(job.job, 'nightly');
  assert.equal(job.destination, 'disk');
  assert.equal(job.account, null);
  assert.deepEqual(job.accounts, [a.username, b.username]);
  assert.deepEqual(job.actor, { name: 'root', role: 'admin' });
  assert.ok(!Number.isNaN(Date.parse(job.time)));
  // The two accounts' runs may overlap (the queue runs more than one backup at a time), so their hooks may come in either order.
  assert.deepEqual(seen('preAccountBackup').map((x) => x.account).sort(), [a.username, b.username].sort());
  assert.equal(fs.readFileSync(path.join(seenDir, 'preBackup.env'), 'utf8'), 'preBackup\n');
  assert.ok(taskLog(r.results[0].task).some((l) => l.message.includes('recorded preAccountBackup')), 'the hook output is in the task log');
});

test('a failing pre-backup hook stops the backup with its first stderr line; its tasks fail and no snapshot is listed', () => {
  const before = ok(cli(dataDir, ['snapshot', 'list'])).length;
  const marker = path.join(seenDir, 'backup-ran');
  config({
    preBackup: [script('refuse.sh', `echo "maintenance window: backups paused" >&2\necho "second line" >&2\nexit 3`)],
    preAccountBackup: [script('touch.sh', `touch ${marker}`)],
    postBackup: [recorder()],
  });
  failed(cli(dataDir, ['backup', '--job', 'nightly', '--wait']), 'maintenance window: backups paused');
  assert.equal(ok(cli(dataDir, ['snapshot', 'list'])).length, before);
  assert.ok(!fs.existsSync(marker), 'nothing after the refusing hook ran');
  assert.deepEqual(seen('postBackup'), [], 'no post-hook after a refused run');
  const last = tasks().slice(-2);
  assert.deepEqual(last.map((t) => [t.type, t.status, t.error]), [
    ['backup', 'failed', 'maintenance window: backups paused'], ['backup', 'failed', 'maintenance window: backups paused'],
  ]);
});

test('a failing pre-account hook stops that account only', () => {
  const before = ok(cli(dataDir, ['snapshot', 'list']));
  config({ preAccountBackup: [script('only-b.sh', `grep -q '"account":"${a.username}"' && { echo "account ${a.username} is being migrated" >&2; exit 1; }\nexit 0`)] });
  const r = cli(dataDir, ['backup', '--job', 'nightly', '--wait']);
  assert.equal(r.code, 1);
  const [ra, rb] = r.json.results;
  assert.equal(ra.status, 'failed');
  assert.equal(ra.error, `account ${a.username} is being migrated`);
  assert.equal(rb.status, 'completed');
  const after = ok(cli(dataDir, ['snapshot', 'list']));
  assert.equal(after.length, before.length + 1);
  assert.equal(after[0].account, b.username);
});

test('post-hooks get the result; a failing post-hook is a warning and the backup stands', () => {
  const rec = recorder();
  for (const e of ['postBackup', 'postAccountBackup']) fs.rmSync(path.join(seenDir, `${e}.json`), { force: true });
  config({ postBackup: [rec], postAccountBackup: [rec, script('post-fails.sh', 'echo "could not notify" >&2; exit 1')] });
  const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
  // The accounts run side by side: their post-hooks run in the order they finish.
  const perAccount = seen('postAccountBackup');
  assert.equal(perAccount.length, 2);
  const ofA = perAccount.find((x) => x.account === a.username);
  assert.ok(ofA, JSON.stringify(perAccount));
  assert.equal(ofA.snapshot, r.results[0].snapshot);
  assert.equal(ofA.result.status, 'completed');
  assert.equal(ofA.result.snapshot, r.results[0].snapshot);
  assert.equal(ofA.error, null);
  const [job] = seen('postBackup');
  assert.deepEqual(job.result.map((x: { snapshot: string }) => x.snapshot), r.snapshots);
  assert.equal(job.error, null);
  const log = taskLog(r.results[0].task);
  assert.ok(log.some((l) => l.level === 'warn' && l.message.includes('could not notify')), JSON.stringify(log));
  assert.ok(r.results.every((x: { status: string }) => x.status === 'completed'));
});

test('a hook script that others could change is refused and never runs: the backup does not happen', () => {
  const marker = path.join(seenDir, 'writable-ran');
  const before = ok(cli(dataDir, ['snapshot', 'list'])).length;
  const open = script('open.sh', `touch ${marker}`, 0o777);
  fs.chmodSync(open, 0o777);
  config({ preBackup: [open] });
  failed(cli(dataDir, ['backup', '--job', 'nightly', '--wait']), /open\.sh: refused, it runs as root so it must not be group- or world-writable \(mode 777\)/);
  assert.ok(!fs.existsSync(marker));
  assert.equal(ok(cli(dataDir, ['snapshot', 'list'])).length, before);

  const theirs = script('theirs.sh', `touch ${marker}`);
  fs.chownSync(theirs, a.uid, a.gid);
  config({ preBackup: [theirs] });
  failed(cli(dataDir, ['backup', '--job', 'nightly', '--wait']), new RegExp(`theirs\\.sh: refused, it runs as root so it must be owned by root \\(owner uid ${a.uid}\\)`));
  assert.ok(!fs.existsSync(marker));

  const inOpenFolder = fs.mkdtempSync(path.join(hookDir, 'open-'));
  fs.chmodSync(inOpenFolder, 0o777);
  const hidden = path.join(inOpenFolder, 'x.sh');
  fs.writeFileSync(hidden, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  config({ postBackup: [hidden] });
  // A post-hook refused is a warning: the backup itself goes on.
  const r = ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait']));
  assert.ok(!fs.existsSync(marker));
  assert.ok(taskLog(r.results[0].task).some((l) => l.level === 'warn' && /could let someone other than root replace it/.test(l.message)));
});

test('a hook that hangs is killed at its time limit, with what it started', async () => {
  const pidFile = path.join(seenDir, 'sleeper.pid');
  config({ timeLimitSeconds: 1, preBackup: [script('hang.sh', `sleep 120 &\necho $! > ${pidFile}\nwait`)] });
  const t0 = Date.now();
  failed(cli(dataDir, ['backup', '--job', 'nightly', '--wait']), /hang\.sh did not finish within 1 s and was stopped/);
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 200));
  // Gone, or a zombie where nobody reaps orphans (PID 1 of some containers): either way no longer running.
  let state = 'gone';
  try { state = /^\d+ \(.*\) (\S)/.exec(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))![1]!; } catch { /* gone */ }
  assert.ok(state === 'gone' || state === 'Z', `the process the hook started was killed too (state ${state})`);
});

test('restore and download hooks: a refusing pre-hook changes nothing and writes no file; post-hooks get the outcome', () => {
  config({});
  const snap = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).snapshots[0] as string;
  asAccount(a, `printf 'version 2' > page.html`);
  const rec = recorder();
  config({ preRestore: [script('no-restore.sh', 'echo "restores are off during the upgrade" >&2; exit 1')], preDownload: [script('no-download.sh', 'echo "downloads are off" >&2; exit 1')] });
  failed(cli(dataDir, ['restore', snap, '--path', 'page.html', '--wait']), 'restores are off during the upgrade');
  assert.equal(fs.readFileSync(path.join(a.home, 'page.html'), 'utf8'), 'version 2');
  const restoreTask = tasks().at(-1)!;
  assert.deepEqual([restoreTask.type, restoreTask.status, restoreTask.error], ['restore', 'failed', 'restores are off during the upgrade']);
  const out = path.join(seenDir, 'a.tar.gz');
  failed(cli(dataDir, ['download', snap, '--path', 'page.html', '--out', out]), 'downloads are off');
  assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.part`));

  config({ preRestore: [rec], postRestore: [rec], postDownload: [rec] });
  const r = ok(cli(dataDir, ['restore', snap, '--path', 'page.html', '--wait']));
  assert.equal(fs.readFileSync(path.join(a.home, 'page.html'), 'utf8'), 'version 1');
  const [pre] = seen('preRestore');
  assert.deepEqual([pre.account, pre.snapshot, pre.destination, pre.paths, pre.task], [a.username, snap, 'disk', ['page.html'], r.task]);
  const [post] = seen('postRestore');
  assert.equal(post.result.status, 'completed');
  assert.equal(post.result.files.files, 1);
  assert.equal(post.error, null);
  ok(cli(dataDir, ['download', snap, '--path', 'page.html', '--out', out]));
  const [dl] = seen('postDownload');
  assert.deepEqual([dl.account, dl.snapshot, dl.result.files], [a.username, snap, 1]);
});

test('a hook list that is not absolute paths is a configuration error naming the field', () => {
  config({ preBackup: ['relative.sh'] });
  failed(cli(dataDir, ['job', 'list']), /hooks\.preBackup\.0: a hook script is given by its absolute path/);
  config({});
});

test('regression: provider hook output is shown to the account holder on its task', () => {
  config({});
  const snap = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).snapshots[0] as string;
  const secret = `db-password-${Date.now()}`;
  config({
    preRestore: [script('chatty-pre.sh', `echo "connecting with ${secret}"; echo "stderr ${secret}" >&2`)],
    postRestore: [script('chatty-post.sh', `echo "post ${secret}"; exit 1`)],
  });
  const r = ok(cli(dataDir, ['--as-account', a.username, 'restore', snap, '--path', 'page.html', '--into-folder', '--wait']));
  fs.rmSync(path.join(a.home, r.folder), { recursive: true, force: true });
  const asHolder = ok(cli(dataDir, ['--as-account', a.username, 'task', 'show', String(r.task)]));
  assert.equal(asHolder.id, r.task);
  assert.ok(!JSON.stringify(asHolder).includes(secret), `the account holder sees no hook output: ${JSON.stringify(asHolder.log)}`);
  assert.ok(!JSON.stringify(asHolder).includes('chatty'), 'nor the provider\'s script names');
  const asProvider = ok(cli(dataDir, ['task', 'show', String(r.task)]));
  const lines = asProvider.log.map((l: { message: string }) => l.message).join('\n');
  for (const what of [`connecting with ${secret}`, `stderr ${secret}`, `post ${secret}`]) assert.ok(lines.includes(what), `the provider's task view keeps "${what}"`);
});

test("regression: a pre-hook refused for its mode, or one that timed out or exited without a word, told the account holder the provider's script path", () => {
  config({});
  const snap = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).snapshots[0] as string;
  const open = script('secret-open.sh', 'exit 0', 0o777);
  const mute = script('secret-mute.sh', 'exit 4');
  for (const [hook, why] of [[open, /must not be group- or world-writable/], [mute, /failed with exit status 4/]] as const) {
    config({ preRestore: [hook], preDownload: [hook] });
    const restore = cli(dataDir, ['--as-account', a.username, 'restore', snap, '--path', 'page.html', '--into-folder', '--wait']);
    failed(restore, "the provider's preRestore hook stopped this (the provider's task log says why)");
    const task = tasks().at(-1)!;
    assert.equal(task.status, 'failed');
    assert.doesNotMatch(task.error ?? '', /secret-/);
    assert.doesNotMatch(JSON.stringify(ok(cli(dataDir, ['--as-account', a.username, 'task', 'show', String(task.id)]))), /secret-/);
    assert.ok(taskLog(task.id).some((l) => l.level === 'error' && l.message.includes(hook) && why.test(l.message)), 'the provider reads the reason');
    const download = cli(dataDir, ['--as-account', a.username, 'download', snap, '--path', 'page.html', '--out', path.join(seenDir, 'x.tar.gz')]);
    failed(download, "the provider's preDownload hook stopped this (the provider's task log says why)");
    assert.doesNotMatch(JSON.stringify(ok(cli(dataDir, ['--as-account', a.username, 'activity']))), /secret-/);
  }
  // The provider asking sees the reason itself.
  for (const [hook, why] of [[open, /must not be group- or world-writable/], [mute, /failed with exit status 4/]] as const) {
    config({ preRestore: [hook] });
    failed(cli(dataDir, ['restore', snap, '--path', 'page.html', '--into-folder', '--wait']), why);
  }
  config({});
});

test("regression: a provider's backup stopped by its pre-hook, and root's failed restore or download of a holder's snapshot, showed the holder the hook's path", () => {
  config({});
  const snap = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).snapshots[0] as string;
  const mute = script('secret-provider-mute.sh', 'exit 5');
  const holderSees = (): string => JSON.stringify([
    ok(cli(dataDir, ['--as-account', a.username, 'task', 'list', '--limit', '50'])),
    ok(cli(dataDir, ['--as-account', a.username, 'activity'])),
  ]);
  // The scheduler's run and root's `backup` are the provider's (actor root): per account, and for the whole job.
  for (const event of ['preAccountBackup', 'preBackup'] as const) {
    config({ [event]: [mute] });
    const r = cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait']);
    assert.equal(r.code, 1, r.stdout);
    const task = tasks().at(-1)!;
    assert.deepEqual([task.type, task.status, task.account], ['backup', 'failed', a.username]);
    assert.equal(task.error, `the provider's ${event} hook stopped this (the provider's task log says why)`);
    const shown = JSON.stringify(ok(cli(dataDir, ['--as-account', a.username, 'task', 'show', String(task.id)])));
    assert.doesNotMatch(shown, /secret-provider/, `${event}: the holder's view of the task`);
    // The provider reads the detail in the task's log (and root's run answers with it).
    assert.ok(taskLog(task.id).some((l) => l.level === 'error' && l.message.includes(mute) && /failed with exit status 5/.test(l.message)), `${event}: the provider's log`);
    assert.match(ok(cli(dataDir, ['task', 'show', String(task.id)])).log.map((l: { message: string }) => l.message).join('\n'), /secret-provider-mute\.sh/);
    assert.match(event === 'preAccountBackup' ? r.json.results[0].error : r.json.error, /secret-provider-mute\.sh failed with exit status 5/, 'root is told why');
  }
  // Root's restore and download of the holder's snapshot: root is told why, the holder's activity and task are not.
  config({ preRestore: [mute], preDownload: [mute] });
  failed(cli(dataDir, ['restore', snap, '--path', 'page.html', '--into-folder', '--wait']), /secret-provider-mute\.sh failed with exit status 5/);
  const restoreTask = tasks().at(-1)!;
  assert.deepEqual([restoreTask.type, restoreTask.status, restoreTask.error], ['restore', 'failed', "the provider's preRestore hook stopped this (the provider's task log says why)"]);
  failed(cli(dataDir, ['download', snap, '--path', 'page.html', '--out', path.join(seenDir, 'y.tar.gz')]), /secret-provider-mute\.sh failed with exit status 5/);
  const seenByHolder = holderSees();
  assert.match(seenByHolder, /the provider's preRestore hook stopped this/, 'the holder sees that the restore failed');
  assert.doesNotMatch(seenByHolder, /secret-provider/);
  config({});
});
