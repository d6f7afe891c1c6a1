import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launchBrowser, ARTIFACTS, type TestBrowser } from './support/browser.js';
import { startWebFixture, LATIN1_NAME, BIG_FILE_MB, type WebFixture } from './support/web-daemon.js';
import { cli, ok } from './support/cli.js';

let fx: WebFixture;
let browser: TestBrowser;
const home = (rel: string): string => path.join(fx.alice.home, rel);

before(async () => {
  fx = await startWebFixture({ bigFile: true });
  // What alice did after the backup, and wants undone.
  fs.writeFileSync(home('public_html/index.html'), 'changed index');
  fs.rmSync(home('public_html/blog'), { recursive: true });
  fs.truncateSync(home('big/archive.bin'), 10);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await fx?.stop();
});

const snapshotRow = (id: string): string => `tr[data-snapshot="${id}"]`;

test('an account holder signs in with a login URL and sees only the visible snapshots of their own account', async () => {
  const { page } = browser;
  await page.goto(fx.loginUrl(fx.alice.username, 'user'));
  await page.waitForURL(/\/snapshots$/);
  assert.equal(await page.locator('h1').textContent(), 'Your backups');
  assert.equal(await page.locator(snapshotRow(fx.visible.alice)).count(), 1);
  assert.equal(await page.locator('tr.snapshot').count(), 1, 'bob\'s snapshot and the hidden destination\'s are not listed');
  const html = await page.content();
  assert.ok(!html.includes(fx.visible.bob) && !html.includes(fx.hidden.alice) && !html.includes(fx.bob.username));
  assert.match(await page.locator('section.day h2').first().textContent() ?? '', /\d{4}/, 'grouped under a day heading');
  await browser.screenshot('user-snapshots');
});

test('browses into a folder of the snapshot, with sizes and dates', async () => {
  const { page } = browser;
  await page.locator(`${snapshotRow(fx.visible.alice)} a`).click();
  await page.waitForSelector('table.files');
  const names = await page.locator('td.name').allTextContents();
  for (const n of ['public_html/', 'notes.txt', 'big/']) assert.ok(names.some((x) => x.trim() === n), `${n} in ${names.join('|')}`);
  assert.ok(names.some((x) => x.trim() === 'caf\\xE9.txt'), 'the non-UTF-8 name is listed, its odd byte shown escaped');
  await browser.screenshot('user-browse-home');
  await page.getByRole('link', { name: 'public_html/' }).click();
  await page.waitForSelector('a.folder:text("blog/")');
  const row = page.locator('tr.entry', { hasText: 'index.html' });
  assert.match(await row.textContent() ?? '', /14 B/);
  await browser.screenshot('user-browse-folder');
});

test('restores one file into place as a task, and the page shows it running until it is done', async () => {
  const { page } = browser;
  await page.getByRole('checkbox', { name: 'index.html' }).check();
  await page.getByRole('button', { name: 'Restore into place' }).click();
  // The review says what will be overwritten before anything is.
  assert.match(await page.locator('#restore-confirm').textContent() ?? '', /public_html\/index\.html/);
  await page.locator('#confirm-overwrite').click();
  await page.waitForURL(/\/tasks\/\d+$/);
  await page.waitForSelector('#task-status[data-status="completed"]', { timeout: 60000 });
  assert.equal(fs.readFileSync(home('public_html/index.html'), 'utf8'), 'original index');
  assert.equal(fs.statSync(home('public_html/index.html')).uid, fx.alice.uid);
  await browser.screenshot('user-task-done');

  // A large file takes long enough to see the task page before it finishes.
  await page.goto(`${fx.base}/snapshots`);
  await page.locator(`${snapshotRow(fx.visible.alice)} a`).click();
  await page.waitForSelector('table.files');
  await page.getByRole('link', { name: 'big/' }).click();
  await page.getByRole('checkbox', { name: 'archive.bin' }).check();
  await page.getByRole('button', { name: 'Restore into place' }).click();
  await page.locator('#confirm-overwrite').click();
  await page.waitForURL(/\/tasks\/\d+$/);
  assert.equal(await page.locator('#task-status').getAttribute('data-status'), 'running');
  assert.equal(await page.locator('#restore-progress progress.bar').count(), 1);
  await browser.screenshot('user-task-running');
  await page.waitForSelector('#task-status[data-status="completed"]', { timeout: 120000 });
  // Once done, the page says what was restored, counted in words.
  await page.waitForSelector('#restore-result');
  assert.match(await page.locator('#restore-result').textContent() ?? '', /Restored 1 file\b/);
  assert.equal(fs.statSync(home('big/archive.bin')).size, BIG_FILE_MB * 1024 * 1024);
});

test('restores a folder into a new folder, leaving the current files alone', async () => {
  const { page } = browser;
  await page.goto(`${fx.base}/snapshots`);
  await page.locator(`${snapshotRow(fx.visible.alice)} a`).click();
  await page.getByRole('link', { name: 'public_html/' }).click();
  await page.getByRole('checkbox', { name: 'blog' }).check();
  await page.getByRole('button', { name: 'Restore into a new folder' }).click();
  await page.waitForSelector('#task-status[data-status="completed"]', { timeout: 60000 });
  const folder = (await page.locator('#restore-folder').textContent())!.replace(/^~\//, '');
  assert.match(folder, /^tidemark-restore-/);
  assert.equal(fs.readFileSync(home(`${folder}/public_html/blog/post.txt`), 'utf8'), 'first post');
  assert.equal(fs.readFileSync(home(`${folder}/public_html/blog/second.txt`), 'utf8'), 'second post');
  assert.equal(fs.statSync(home(`${folder}/public_html/blog/post.txt`)).uid, fx.alice.uid);
  assert.equal(fs.existsSync(home('public_html/blog')), false, 'not restored into place');
  assert.equal(fs.readFileSync(home('public_html/index.html'), 'utf8'), 'original index');
  await browser.screenshot('user-task-folder');
});

test('downloads chosen files, a non-UTF-8 name included, as a .tar.gz', async () => {
  const { page } = browser;
  await page.goto(`${fx.base}/snapshots`);
  await page.locator(`${snapshotRow(fx.visible.alice)} a`).click();
  await page.getByRole('checkbox', { name: 'notes.txt' }).check();
  await page.getByRole('checkbox', { name: 'caf\\xE9.txt' }).check();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(download.suggestedFilename(), `${fx.alice.username}-${fx.visible.alice}.tar.gz`);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-dl-'));
  try {
    const file = path.join(out, 'download.tar.gz');
    await download.saveAs(file);
    fs.copyFileSync(file, path.join(ARTIFACTS, 'user-download.tar.gz'));
    execFileSync('tar', ['-xzf', file, '-C', out]);
    assert.equal(fs.readFileSync(path.join(out, 'files/notes.txt'), 'utf8'), 'notes of alice');
    const names = fs.readdirSync(path.join(out, 'files'), { encoding: 'buffer' });
    assert.ok(names.some((n) => n.equals(LATIN1_NAME)), 'the exact bytes of the name survive');
    assert.deepEqual(names.map((n) => n.toString('latin1')).sort(), ['caf\xe9.txt', 'notes.txt'], 'only what was chosen');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('the restore queue and the activity show the account holder\'s own work', async () => {
  const { page } = browser;
  await page.getByRole('link', { name: 'Restore queue' }).click();
  // Three restores and the download, each a task of the queue.
  assert.equal(await page.locator('tr.task-row').count(), 4);
  assert.match(await page.locator('tr.task-row', { hasText: 'Download' }).textContent() ?? '', /Download: caf\ufffd\.txt, notes\.txt/);
  await browser.screenshot('user-tasks');
  await page.getByRole('link', { name: 'Activity' }).click();
  const text = await page.locator('main').textContent() ?? '';
  assert.match(text, /Restore requested/);
  assert.match(text, /Download/);
  assert.ok(!text.includes(fx.bob.username) && !text.includes(fx.hidden.alice));
  await browser.screenshot('user-activity');
});

test('the activity log holds each action of the account holder above, with the account holder as the actor', () => {
  const log = ok(cli(fx.dataDir, ['activity'])) as { actor: string; role: string; action: string; target: string; result: string }[];
  const mine = log.filter((e) => e.actor === fx.alice.username);
  assert.ok(mine.every((e) => e.role === 'user'));
  const count = (action: string): number => mine.filter((e) => e.action === action).length;
  assert.equal(count('sign-in'), 1);
  assert.equal(count('restore.requested'), 3, 'one file, one folder, and the big file');
  assert.equal(mine.filter((e) => e.action === 'restore' && e.result === 'completed').length, 3);
  assert.equal(count('download'), 1);
  for (const action of ['restore', 'restore.requested', 'download']) {
    assert.ok(log.filter((e) => e.action === action).every((e) => e.actor === fx.alice.username), `no ${action} is put on anyone else`);
  }
});

test('the pages follow the browser\'s language, and the switch changes it', async () => {
  const de = await launchBrowser({ locale: 'de-DE', width: 390 });
  try {
    await de.page.goto(fx.loginUrl(fx.alice.username, 'user'));
    await de.page.waitForURL(/\/snapshots$/);
    assert.equal(await de.page.locator('h1').textContent(), 'Ihre Sicherungen');
    assert.equal(await de.page.locator('html').getAttribute('lang'), 'de');
    await de.screenshot('user-snapshots-de-phone');
    await de.page.selectOption('#lng', 'fr');
    await de.page.locator('h1', { hasText: 'Vos sauvegardes' }).waitFor();
    await de.page.locator(`${snapshotRow(fx.visible.alice)} a`).click();
    await de.page.waitForSelector('table.files');
    assert.equal(await de.page.getByRole('button', { name: 'Restaurer dans un nouveau dossier' }).count(), 1);
    await de.screenshot('user-browse-fr-phone');
  } finally {
    await de.close();
  }
});
