import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { cli, makeDestinationDir, ok } from './support/cli.js';
import { pathParam, startWebFixture, WebClient, type WebFixture, useCpanelTree } from './support/web-daemon.js';
import { launchBrowser } from './support/browser.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

/**
 * The provider pages with resellers: the accounts are read from a cPanel tree built
 * under a temporary root (the real Linux users of the fixture, described to cPanel as
 * alice owned by reseller "resa", bob by reseller "resb").
 */
let fx: WebFixture;
let panelRoot: string;
let admin: WebClient;
let adminCsrf: string;
const extraDirs: string[] = [];


async function signIn(user: string, role: 'admin' | 'reseller' | 'user'): Promise<WebClient> {
  const c = new WebClient(fx.base);
  assert.equal((await c.get(fx.loginUrl(user, role))).status, 200);
  return c;
}

const show = (what: 'destination' | 'job', name: string): any => ok(cli(fx.dataDir, [what, 'show', name]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const snapshotPath = (id: number, account: string, snap: string): string => `/snapshots/${id}/${account}/${snap}`;

async function waitJson(c: WebClient, url: string, done: (j: any) => boolean): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const j = JSON.parse((await c.get(url, { accept: 'application/json' })).body);
    if (done(j)) return j;
    await sleep(100);
  }
  throw new Error(`${url} did not finish`);
}

before(async () => {
  fx = await startWebFixture({
    // The fixture writes a standalone config; the accounts are then described by a cPanel tree.
    beforeBackup: async (alice, bob, dataDir) => { panelRoot = useCpanelTree(dataDir, [[alice, 'resa'], [bob, 'resb']]); },
  });
  admin = await signIn('root', 'admin');
  adminCsrf = await admin.csrf();
});

after(async () => {
  await fx?.stop();
  for (const d of [panelRoot, ...extraDirs]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('a reseller', () => {
  let resa: WebClient;
  let csrf: string;
  before(async () => {
    resa = await signIn('resa', 'reseller');
    csrf = await resa.csrf();
  });

  test('sees the accounts it owns and their visible snapshots, nothing of another reseller\'s', async () => {
    const dash = await resa.get('/admin');
    assert.equal(dash.status, 200);
    assert.ok(dash.body.includes(fx.visible.alice));
    for (const leak of [fx.visible.bob, fx.bob.username, fx.hidden.alice, '>hidden<']) assert.ok(!dash.body.includes(leak), `dashboard shows ${leak}`);
    const accounts = await resa.get('/admin/accounts');
    assert.ok(accounts.body.includes(fx.alice.username));
    assert.ok(!accounts.body.includes(fx.bob.username));
    const page = await resa.get(`/admin/accounts/${fx.alice.username}`);
    assert.equal(page.status, 200);
    assert.ok(page.body.includes(fx.visible.alice));
    assert.ok(!page.body.includes(fx.hidden.alice), 'a hidden destination\'s snapshot is not shown to a reseller');
    assert.equal((await resa.get(`/admin/accounts/${fx.bob.username}`)).status, 404);
    assert.equal((await resa.get(snapshotPath(fx.destinationIds.shown, fx.bob.username, fx.visible.bob))).status, 404);
    const queue = await resa.get('/admin/queue');
    assert.equal(queue.status, 200);
    assert.ok(queue.body.includes(fx.alice.username) && !queue.body.includes(fx.bob.username));
  });

  test('has no destination or job pages, and its requests there change nothing', async () => {
    const id = fx.destinationIds.shown;
    for (const p of ['/admin/destinations', `/admin/destinations/${id}`, `/admin/destinations/${id}/edit`, `/admin/destinations/${id}/browse`,
      `/admin/destinations/${id}/space`, '/admin/destinations/new', '/admin/jobs', '/admin/jobs/new', '/admin/jobs/1/edit']) {
      assert.equal((await resa.get(p)).status, 404, p);
    }
    const before = show('destination', 'shown');
    for (const [p, form] of [
      [`/admin/destinations/${id}/edit`, { name: 'taken' }], [`/admin/destinations/${id}/reindex`, {}], [`/admin/destinations/${id}/validate`, {}],
      [`/admin/destinations/${id}/visibility`, { visible: '0' }], ['/admin/jobs', { name: 'mine', destination: String(id), structure: 'archive', scope: 'all', items: 'files' }],
      ['/admin/jobs/1/edit', { name: 'renamed' }], ['/admin/jobs/1/remove', {}], ['/admin/jobs/1/run', {}],
    ] as const) {
      assert.equal((await resa.post(p, { _csrf: csrf, ...form })).status, 404, `POST ${p}`);
    }
    assert.deepEqual(show('destination', 'shown').settings, before.settings);
    assert.equal(show('destination', 'shown').snapshotsVisible, true);
    assert.equal(cli(fx.dataDir, ['job', 'show', 'mine']).code, 1);
    assert.equal(show('job', 'both').name, 'both');
  });

  test('restores a file on behalf of its own account, never for another reseller\'s', async () => {
    fs.writeFileSync(path.join(fx.alice.home, 'notes.txt'), 'overwritten');
    const r = await resa.post(`${snapshotPath(fx.destinationIds.shown, fx.alice.username, fx.visible.alice)}/restore`, { _csrf: csrf, mode: 'place', path: pathParam('notes.txt') });
    assert.equal(r.status, 303);
    const task = /^\/tasks\/(\d+)$/.exec(r.headers.get('location') ?? '')![1];
    await waitJson(resa, `/admin/queue/${task}/status`, (j) => j.finished);
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8'), 'notes of alice');
    const status = JSON.parse((await resa.get(`/admin/queue/${task}/status`, { accept: 'application/json' })).body);
    assert.equal(status.status, 'completed');
    assert.equal(status.percent, 100);
    assert.equal(status.progress.files, 1);
    assert.equal(status.progress.totalFiles, 1);
    const bobs = await resa.post(`${snapshotPath(fx.destinationIds.shown, fx.bob.username, fx.visible.bob)}/restore`, { _csrf: csrf, mode: 'place', path: pathParam('secret.txt') });
    assert.equal(bobs.status, 404);
    const resb = await signIn('resb', 'reseller');
    assert.equal((await resb.get(`/admin/queue/${task}`)).status, 404, 'another reseller does not see the task');
    assert.equal((await resb.get(`/admin/queue/${task}/status`, { accept: 'application/json' })).status, 404);
    const activity = await resa.get('/admin/activity');
    assert.match(activity.body, /Restore requested/);
    assert.doesNotMatch(activity.body, /<td data-label="What">Destination added<\/td>/, 'the provider\'s own actions are not a reseller\'s business');
    assert.doesNotMatch(activity.body, /<option[^>]*>root<\/option>/);
  });
});

describe('the queue', () => {
  test('an account holder calls off its restore while it waits; nobody else can', async () => {
    // A backup of alice's account running in another process keeps her restore waiting.
    const holder = spawn('sleep', ['120'], { stdio: 'ignore' });
    const db = new Database(path.join(fx.dataDir, 'tidemark.sqlite'));
    const now = new Date().toISOString();
    db.prepare(`INSERT INTO tasks (type, status, account, destination_id, params, created_at, started_at, pid) VALUES ('backup', 'running', ?, ?, '{}', ?, ?, ?)`)
      .run(fx.alice.username, fx.destinationIds.shown, now, now, holder.pid);
    db.close();
    try {
      fs.writeFileSync(path.join(fx.alice.home, 'notes.txt'), 'changed after the snapshot');
      const alice = await signIn(fx.alice.username, 'user');
      const aliceCsrf = await alice.csrf();
      const r = await alice.post(`${snapshotPath(fx.destinationIds.shown, fx.alice.username, fx.visible.alice)}/restore`, { _csrf: aliceCsrf, mode: 'place', path: pathParam('notes.txt') });
      assert.equal(r.status, 303);
      const task = /^\/tasks\/(\d+)$/.exec(r.headers.get('location') ?? '')![1];
      const page = await alice.get(`/tasks/${task}`);
      assert.match(page.body, /data-status="queued"/);
      assert.match(page.body, /id="cancel-task"/);

      const resb = await signIn('resb', 'reseller');
      assert.equal((await resb.post(`/admin/queue/${task}/cancel`, { _csrf: await resb.csrf() })).status, 404, 'another reseller cannot reach it');
      const bob = await signIn(fx.bob.username, 'user');
      assert.equal((await bob.post(`/tasks/${task}/cancel`, { _csrf: await bob.csrf() })).status, 404, 'another account cannot reach it');
      assert.equal((await alice.post(`/tasks/${task}/cancel`, { _csrf: 'forged' })).status, 403, 'no cancel without the CSRF token');
      assert.equal(ok(cli(fx.dataDir, ['task', 'show', task!])).status, 'queued');

      const cancel = await alice.post(`/tasks/${task}/cancel`, { _csrf: aliceCsrf });
      assert.equal(cancel.status, 303);
      const status = await waitJson(alice, `/tasks/${task}/status`, (j) => j.finished);
      assert.equal(status.status, 'cancelled');
      assert.doesNotMatch((await alice.get(`/tasks/${task}`)).body, /id="cancel-task"/);
      // Cancelling what has ended clashes with the state of things: 409 in the conflict's words, with its reason.
      for (const [who, url] of [[alice, `/tasks/${task}/cancel`], [admin, `/admin/queue/${task}/cancel`]] as const) {
        const again = await who.post(url, { _csrf: await who.csrf() });
        assert.equal(again.status, 409, url);
        assert.match(again.body, /That clashes with how things are now\./, url);
        assert.match(again.body, /has already ended \(cancelled\)/, url);
      }
      const shown = ok(cli(fx.dataDir, ['task', 'show', task!]));
      assert.equal(shown.startedAt, null);
      assert.equal(shown.cancelRequestedBy, fx.alice.username);
      assert.equal(fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8'), 'changed after the snapshot', 'nothing was restored');
      const log = ok(cli(fx.dataDir, ['activity'])) as { actor: string; action: string; target: string }[];
      assert.ok(log.some((e) => e.action === 'cancel' && e.actor === fx.alice.username && e.target.includes(`task ${task}`)));
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('forms', () => {
  test('without the CSRF token are refused and change nothing', async () => {
    const id = fx.destinationIds.shown;
    const before = show('destination', 'shown');
    for (const [p, form] of [
      [`/admin/destinations/${id}/edit`, { name: 'renamed' }], [`/admin/destinations/${id}/reindex`, {}],
      ['/admin/jobs', { name: 'csrf-job', destination: String(id), structure: 'archive', scope: 'all', items: 'files' }],
      ['/admin/jobs/1/edit', { name: 'renamed-job', destination: String(id), structure: 'archive', scope: 'all', items: 'files' }], ['/admin/jobs/1/remove', {}],
    ] as const) {
      assert.equal((await admin.post(p, form)).status, 403, p);
      assert.equal((await admin.post(p, { ...form, _csrf: 'forged' })).status, 403, p);
    }
    const now = show('destination', 'shown');
    assert.deepEqual([now.name, now.settings, now.enabled, now.snapshotsVisible], [before.name, before.settings, before.enabled, before.snapshotsVisible]);
    assert.equal(cli(fx.dataDir, ['job', 'show', 'csrf-job']).code, 1);
    assert.equal(show('job', 'both').name, 'both');
    assert.equal(show('job', 'secret').name, 'secret');
  });

  test('with bad input show the error next to the field and keep what was typed', async () => {
    const secret = 'typed-secret-never-echoed';
    const bad = await admin.post('/admin/destinations', {
      _csrf: adminCsrf, name: '', type: 'ssh', host: 'backup.example.org', port: 'abc', username: 'bk', password: secret, path: '/srv/bk', timeout: '3',
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /<span class="field-error" id="name-error"/);
    assert.match(bad.body, /<span class="field-error" id="port-error"/);
    assert.match(bad.body, /name="host" value="backup.example.org"/);
    assert.match(bad.body, /name="port" inputmode="numeric" value="abc"/);
    assert.ok(!bad.body.includes(secret));

    const unreachable = await admin.post('/admin/destinations', {
      _csrf: adminCsrf, name: 'far', type: 'ssh', host: '127.0.0.1', port: '1', username: 'bk', password: secret, path: '/srv/bk', timeout: '3',
    });
    assert.equal(unreachable.status, 400);
    assert.match(unreachable.body, /<span class="field-error" id="host-error" role="alert">[^<]*not usable/);
    assert.match(unreachable.body, /name="name" maxlength="64" value="far"/);
    assert.ok(!unreachable.body.includes(secret));
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'far']).code, 1);

    const id = fx.destinationIds.shown;
    const before = show('destination', 'shown');
    const edit = await admin.post(`/admin/destinations/${id}/edit`, { _csrf: adminCsrf, name: 'bad/name', path: before.settings.path, freeSpaceLimitMb: 'lots' });
    assert.equal(edit.status, 400);
    assert.match(edit.body, /id="name-error"/);
    assert.match(edit.body, /id="freeSpaceLimitMb-error"/);
    assert.match(edit.body, /value="bad\/name"/);
    assert.match(edit.body, /value="lots"/);
    assert.equal(show('destination', 'shown').name, 'shown');

    const job = await admin.post('/admin/jobs', {
      _csrf: adminCsrf, name: '', destination: String(id), structure: 'archive', scope: 'list', accounts: 'nosuchuser', items: 'files', excludes: 'cache\n*.log',
    });
    assert.equal(job.status, 400);
    assert.match(job.body, /id="name-error"/);
    assert.match(job.body, /<textarea name="excludes"[^>]*>cache\n\*\.log<\/textarea>/);
    assert.match(job.body, /value="archive" checked/);
    const unknown = await admin.post('/admin/jobs', {
      _csrf: adminCsrf, name: 'typo', destination: String(id), structure: 'archive', scope: 'list', accounts: 'nosuchuser', items: 'files',
    });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /<span class="field-error" id="accounts-error" role="alert">unknown account &#34;nosuchuser&#34;/);
    assert.match(unknown.body, /value="nosuchuser" checked/);
    assert.equal(cli(fx.dataDir, ['job', 'show', 'typo']).code, 1);
  });
});

describe('an admin', () => {
  test('manages a destination: rename, limit, visibility; an unchanged form changes nothing', async () => {
    const dir = makeDestinationDir();
    extraDirs.push(dir);
    const add = await admin.post('/admin/destinations', { _csrf: adminCsrf, name: 'spare', type: 'local', path: dir });
    assert.equal(add.status, 303);
    const id = /\/admin\/destinations\/(\d+)$/.exec(add.headers.get('location')!)![1];
    const form = await admin.get(`/admin/destinations/${id}/edit`);
    assert.match(form.body, /name="name" maxlength="64" value="spare"/);
    assert.equal((await admin.post(`/admin/destinations/${id}/edit`, { _csrf: adminCsrf, name: 'spare', path: dir, freeSpaceLimitMb: '0' })).status, 303);
    const r = await admin.post(`/admin/destinations/${id}/edit`, { _csrf: adminCsrf, name: 'spare2', path: dir, freeSpaceLimitMb: '5', hidden: '1' });
    assert.equal(r.status, 303);
    const d = show('destination', 'spare2');
    assert.equal(d.freeSpaceLimitMb, 5);
    assert.equal(d.snapshotsVisible, false);
    const edits = (await admin.get('/admin/activity?action=destination.edit')).body;
    assert.match(edits, /Destination changed/);
    assert.match(edits, /changed: name, snapshotsVisible, freeSpaceLimitMb/);
    assert.doesNotMatch(edits, /<td data-label="What">Destination added<\/td>/);
  });

  test('browses the files of a destination; ".." is refused', async () => {
    const id = fx.destinationIds.shown;
    const top = await admin.get(`/admin/destinations/${id}/browse`);
    assert.equal(top.status, 200);
    assert.ok(top.body.includes(`>${fx.alice.username}/<`) && top.body.includes('tidemark.json'));
    const account = await admin.get(`/admin/destinations/${id}/browse?p=${fx.alice.username}`);
    assert.ok(account.body.includes(`>${fx.visible.alice}/<`));
    assert.equal((await admin.get(`/admin/destinations/${id}/browse?p=${encodeURIComponent('../..')}`)).status, 403);
  });

  test('reindexes a destination in the background and shows the result', async () => {
    const id = fx.destinationIds.shown;
    assert.equal((await admin.post(`/admin/destinations/${id}/reindex`, { _csrf: adminCsrf })).status, 303);
    const j = await waitJson(admin, `/admin/destinations/${id}/reindex`, (x) => x.finished);
    assert.equal(j.error, null);
    assert.ok(j.result.found >= 2);
    assert.match((await admin.get(`/admin/destinations/${id}`)).body, /id="reindex-state" data-state="ok">Done: \d+ snapshots found/);
  });

  test('creates and edits a job with the forms', async () => {
    const id = fx.destinationIds.hidden;
    const add = await admin.post('/admin/jobs', {
      _csrf: adminCsrf, name: 'web-job', destination: String(id), structure: 'compressed', scope: 'list', accounts: [fx.alice.username], items: 'files', excludes: '*.tmp',
    });
    assert.equal(add.status, 303);
    let j = show('job', 'web-job');
    assert.deepEqual([j.destination, j.structure, j.accounts, j.excludes], ['hidden', 'compressed', [fx.alice.username], ['*.tmp']]);
    const jobId = /data-job="(\d+)">\s*<td[^>]*><a[^>]*>web-job</.exec((await admin.get('/admin/jobs')).body)![1];
    const edit = await admin.get(`/admin/jobs/${jobId}/edit`);
    assert.match(edit.body, /value="compressed" checked/);
    const r = await admin.post(`/admin/jobs/${jobId}/edit`, {
      _csrf: adminCsrf, name: 'web-job2', destination: String(fx.destinationIds.shown), structure: 'incremental', scope: 'all', items: 'files', excludes: '',
    });
    assert.equal(r.status, 303);
    j = show('job', 'web-job2');
    assert.deepEqual([j.destination, j.structure, j.accounts, j.excludes], ['shown', 'incremental', 'all', []]);
    assert.equal((await admin.post(`/admin/jobs/${jobId}/remove`, { _csrf: adminCsrf })).status, 303);
    assert.equal(cli(fx.dataDir, ['job', 'show', 'web-job2']).code, 1);
  });

  test('filters the activity log and exports it as CSV', async () => {
    const all = await admin.get('/admin/activity');
    assert.match(all.body, /Signed in/);
    const filtered = await admin.get('/admin/activity?action=job.add');
    assert.match(filtered.body, /Job added/);
    assert.doesNotMatch(filtered.body, /<td data-label="What">Signed in<\/td>/);
    const byResult = await admin.get('/admin/activity?result=refused');
    assert.match(byResult.body, /Refused/);
    assert.doesNotMatch(byResult.body, /<td data-label="Result">OK<\/td>/);
    const future = await admin.get('/admin/activity?from=2999-01-01');
    assert.match(future.body, /Nothing has happened yet/);
    const today = new Date().toISOString().slice(0, 10);
    assert.match((await admin.get(`/admin/activity?from=${today}&to=${today}&actor=resa`)).body, /Restore requested/);
    const bad = await admin.get('/admin/activity?from=yesterday');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /id="from-error"/);
    assert.match(bad.body, /name="from" value="yesterday"/);
    const csv = await admin.get('/admin/activity?action=job.add&format=csv');
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    assert.match(csv.headers.get('content-disposition')!, /^attachment; filename="?tidemark-activity\.csv"?$/);
    const lines = csv.body.trim().split('\r\n');
    assert.equal(lines[0], 'when,who,role,action,target,result,detail');
    assert.ok(lines.length >= 2 && lines.slice(1).every((l) => l.includes('"job.add"')));
  });

  test('sees storage per destination on the dashboard', async () => {
    const dash = await admin.get('/admin');
    assert.match(dash.body, /id="storage"/);
    assert.match(dash.body, /<a href="\/admin\/destinations\/\d+">shown<\/a>/);
    assert.match(dash.body, /<a href="\/admin\/destinations\/\d+">hidden<\/a>/);
  });
});

describe('in a browser', () => {
  let ssh: TestSshServer;
  before(async () => { ssh = await startTestSshServer(); });
  after(async () => { await ssh?.stop(); });

  test('a provider adds a local and an SSH destination, validates, hides snapshots, runs a backup and watches it finish', async () => {
    const b = await launchBrowser();
    const { page } = b;
    const since = new Date().toISOString();
    try {
      await page.goto(fx.loginUrl('root', 'admin'));
      await page.waitForURL(/\/admin$/);
      await b.screenshot('provider-dashboard');

      const localDir = makeDestinationDir();
      extraDirs.push(localDir);
      await page.goto(`${fx.base}/admin/destinations/new`);
      await page.getByLabel('Name', { exact: true }).fill('browser-local');
      await page.getByRole('textbox', { name: 'Folder' }).fill(localDir);
      await page.getByRole('button', { name: 'Connect and add' }).click();
      await page.waitForURL(/\/admin\/destinations\/\d+$/);
      await page.getByRole('button', { name: 'Validate' }).click();
      await page.waitForSelector('#validation-state[data-state="ok"]', { timeout: 30000 });

      await page.goto(`${fx.base}/admin/destinations/new`);
      await page.getByLabel('SSH / SFTP').check();
      await page.getByLabel('Name', { exact: true }).fill('browser-ssh');
      await page.getByRole('textbox', { name: 'Folder' }).fill(ssh.remoteRoot);
      await page.getByLabel('Host', { exact: true }).fill(ssh.host);
      await page.getByLabel('Port', { exact: true }).fill('not-a-port');
      await page.getByLabel('User', { exact: true }).fill(ssh.user);
      await page.getByLabel('Password').fill(ssh.password);
      await page.getByRole('button', { name: 'Connect and add' }).click();
      await page.waitForSelector('#port-error');
      assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), ssh.host, 'what was typed is kept');
      assert.equal(await page.getByLabel('Password').inputValue(), '', 'a secret is never sent back');
      await b.screenshot('provider-destination-field-error');
      await page.getByLabel('Port', { exact: true }).fill(String(ssh.port));
      await page.getByLabel('Password').fill(ssh.password);
      await page.getByRole('button', { name: 'Connect and add' }).click();
      await page.waitForURL(/\/admin\/destinations\/\d+$/, { timeout: 30000 });
      assert.ok(!(await page.content()).includes(ssh.password));
      await page.getByRole('button', { name: 'Validate' }).click();
      await page.waitForSelector('#validation-state[data-state="ok"]', { timeout: 30000 });
      await page.getByRole('button', { name: 'Hide from account holders' }).click();
      await page.waitForSelector('#destination-state:has-text("hidden from account holders")');
      await b.screenshot('provider-destination');
      assert.equal(show('destination', 'browser-ssh').snapshotsVisible, false);

      await page.getByRole('link', { name: 'Manage' }).click();
      assert.equal(await page.getByLabel('Password').inputValue(), '');
      assert.ok(!(await page.content()).includes(ssh.password));
      await b.screenshot('provider-destination-edit');
      const pinned = show('destination', 'browser-ssh').settings;
      await page.getByLabel('Files in transfer at once').fill('4');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.waitForURL(/\/admin\/destinations\/\d+$/);
      const saved = show('destination', 'browser-ssh').settings;
      assert.equal(saved.parallelTransfers, 4);
      assert.equal(saved.password, '********', 'the empty password field kept the stored password');
      assert.equal(saved.hostKeyFingerprint, pinned.hostKeyFingerprint);
      assert.equal(ok(cli(fx.dataDir, ['destination', 'validate', 'browser-ssh'])).ok, true);

      await page.goto(`${fx.base}/admin/jobs/new`);
      await page.getByLabel('Name', { exact: true }).fill('to-ssh');
      await page.getByLabel('Stored on').selectOption({ label: 'browser-ssh' });
      await page.getByLabel('incremental').check();
      await page.getByLabel('only these accounts:').check();
      await page.getByLabel(fx.alice.username).check();
      await b.screenshot('provider-job-form');
      await page.getByRole('button', { name: 'Add job' }).click();
      await page.waitForURL(/\/admin\/jobs$/);
      await b.screenshot('provider-jobs');
      await page.locator('tr.job', { hasText: 'to-ssh' }).getByRole('button', { name: 'Run now' }).click();
      await page.waitForURL(/\/admin\/queue$/);
      // The row comes from the event stream, with its bar full once the backup is done.
      const done = page.locator('tr[data-status="completed"]', { hasText: 'browser-ssh' }).filter({ hasText: 'Backup' }).locator('progress.bar[value="100"]');
      await done.waitFor({ timeout: 60000 });
      await b.screenshot('provider-queue');
      const snaps = ok(cli(fx.dataDir, ['snapshot', 'list', '--destination', 'browser-ssh']));
      assert.equal(snaps.length, 1);
      assert.equal(snaps[0].account, fx.alice.username);

      await page.goto(`${fx.base}/admin/accounts/${fx.alice.username}`);
      await page.locator(`tr[data-snapshot="${snaps[0].id}"]`).waitFor();
      await b.screenshot('provider-account');
      await page.goto(`${fx.base}/admin/activity`);
      await b.screenshot('provider-activity');

      // Each of those actions is in the activity log, as the provider's.
      const log = ok(cli(fx.dataDir, ['activity', '--since', since])) as { actor: string; role: string; action: string; target: string; result: string }[];
      const did = (action: string, target: string): number => log.filter((e) => e.action === action && e.target.includes(target) && e.actor === 'root' && e.role === 'admin').length;
      assert.equal(did('sign-in', 'root'), 1);
      assert.equal(did('destination.add', 'browser-local'), 1);
      assert.equal(did('destination.add', 'browser-ssh'), 1, 'the refused form added nothing');
      assert.equal(did('destination.validate', 'browser-local'), 1);
      assert.equal(did('destination.validate', 'browser-ssh'), 2, 'on the page, then from the CLI');
      assert.equal(did('destination.visibility', 'browser-ssh'), 1);
      assert.equal(did('destination.edit', 'browser-ssh'), 1);
      assert.equal(did('job.add', 'to-ssh'), 1);
      assert.equal(did('backup.requested', 'to-ssh'), 1);
      assert.equal(did('backup', 'to-ssh'), 1);
      assert.ok(log.every((e) => e.actor === 'root' || e.actor === 'tidemark'), 'nobody else is named for what the provider did');

      await page.goto(fx.loginUrl('resa', 'reseller'));
      await page.waitForURL(/\/admin$/);
      const html = await page.content();
      assert.ok(html.includes(fx.alice.username) && !html.includes(fx.bob.username) && !html.includes('browser-ssh'));
      assert.equal(await page.getByRole('link', { name: 'Destinations' }).count(), 0);
      await b.screenshot('reseller-dashboard');
    } finally {
      await b.close();
    }
  });
});
