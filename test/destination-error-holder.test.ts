import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { DestinationError } from '../server/destinations/types.js';
import { holderSafeMessage } from '../server/services/holder-message.js';
import { PROVIDER } from '../server/services/actor.js';

/**
 * What an account holder reads of a provider's destination that failed: its task (error and
 * log), the activity of its snapshots. Never the destination's host or path (docs/errors.md).
 */
let homeRoot: string;
let a: TestAccount;
let dataDir: string;
let destDir: string;

function tasks(): { id: number; type: string; status: string; account: string; error: string | null }[] {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  try { return db.prepare('SELECT id, type, status, account, error FROM tasks ORDER BY id').all() as any[]; } finally { db.close(); }
}

before(() => {
  homeRoot = makeHomeRoot();
  a = createAccount(homeRoot);
  asAccount(a, `printf 'version 1' > page.html`);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--items', 'files', '--accounts', a.username]));
});

after(() => {
  if (a) removeAccount(a);
  for (const d of [homeRoot, dataDir, destDir, `${destDir}.away`]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test("regression: a provider's destination that failed (its path missing) showed the account holder the destination's path in its backup, restore and verify tasks and its snapshot's activity", () => {
  const snap = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).snapshots[0] as string;
  fs.renameSync(destDir, `${destDir}.away`);
  try {
    const secret = new RegExp(path.basename(destDir));
    const r = cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait']);
    assert.equal(r.code, 1, r.stdout);
    const backupTask = tasks().at(-1)!;
    assert.deepEqual([backupTask.type, backupTask.status, backupTask.account], ['backup', 'failed', a.username]);
    const rr = cli(dataDir, ['restore', snap, '--path', 'page.html', '--into-folder', '--wait']);
    assert.equal(rr.code, 1, rr.stdout);
    const restoreTask = tasks().at(-1)!;
    assert.deepEqual([restoreTask.type, restoreTask.status, restoreTask.account], ['restore', 'failed', a.username]);
    const rv = cli(dataDir, ['snapshot', 'verify', snap]);
    assert.equal(rv.code, 1, rv.stdout);
    const verifyTask = tasks().at(-1)!;
    assert.deepEqual([verifyTask.type, verifyTask.status, verifyTask.account], ['verify', 'failed', a.username]);
    assert.match(rv.json.error, new RegExp(`the destination path ${destDir} does not exist`));
    for (const t of [backupTask, restoreTask, verifyTask]) {
      const shown = JSON.stringify(ok(cli(dataDir, ['--as-account', a.username, 'task', 'show', String(t.id)])));
      assert.doesNotMatch(shown, secret, `the holder's view of the ${t.type} task`);
      assert.equal(t.error, "the backup destination could not be reached (the provider's log has the details)");
      // The provider reads the detail in the task's log.
      const log = ok(cli(dataDir, ['task', 'show', String(t.id)])).log.map((l: { message: string }) => l.message).join('\n');
      assert.match(log, new RegExp(`the destination path ${destDir} does not exist`), `the provider's log of the ${t.type} task`);
    }
    // Root is told why.
    assert.match(r.json.results[0].error, new RegExp(`the destination path ${destDir} does not exist`));
    assert.match(rr.json.error, new RegExp(`the destination path ${destDir} does not exist`));
    // The holder's own restore: its answer, task and activity say only the kind of failure.
    const own = cli(dataDir, ['--as-account', a.username, 'restore', snap, '--path', 'page.html', '--into-folder', '--wait']);
    assert.equal(own.code, 1, own.stdout);
    assert.equal(own.json.error, "restore failed: the backup destination could not be reached (the provider's log has the details)");
    const listed = JSON.stringify([ok(cli(dataDir, ['--as-account', a.username, 'task', 'list', '--limit', '50'])), ok(cli(dataDir, ['--as-account', a.username, 'activity']))]);
    assert.doesNotMatch(listed, secret);
  } finally {
    fs.renameSync(`${destDir}.away`, destDir);
  }
});

test("a provider's destination failure reads as its kind for holders, whatever its code and however wrapped; an account's own destination keeps its words", () => {
  const provider = { owner: PROVIDER };
  const texts: Record<DestinationError['code'], string> = {
    'unreachable': 'cannot reach backup@10.0.0.5:22: connection refused (ECONNREFUSED)',
    'not-writable': 'the destination is not writable (EACCES) at /srv/backups/x',
    'no-space': 'no space left on the destination while writing /data/on-host/y',
    'not-found': 'not found on the destination: /srv/backups/z',
    'invalid': 'the destination path is not absolute: srv/backups',
    'insecure': 'a symbolic link was found on the destination at /srv/backups/l',
    'io': 'destination I/O error at /srv/backups/w: EIO',
  };
  for (const [code, text] of Object.entries(texts) as [DestinationError['code'], string][]) {
    const err = new DestinationError(text, code);
    for (const e of [err, new Error(`destination "disk": ${text}`, { cause: err })]) {
      const shown = holderSafeMessage(e, provider);
      assert.doesNotMatch(shown, /10\.0\.0\.5|\/srv|\/data|backup@/, code);
      assert.match(shown, /^the backup destination .*\(the provider's log has the details\)$/, code);
      assert.equal(holderSafeMessage(e, null), shown, 'no destination record: the provider\'s');
    }
    assert.equal(holderSafeMessage(err, { owner: 'alice' }), text, "the account's own destination");
  }
  assert.equal(holderSafeMessage(new Error('snapshot x is damaged'), provider), 'snapshot x is damaged', 'not a destination failure');
});
