import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from './support/browser.js';
import { startWebFixture, pathParam, type WebFixture } from './support/web-daemon.js';
import { startTestMariaDb, type TestMariaDb } from './support/mariadb.js';
import { buildBrowseTree, MAIL_COUNT, mailBody, mailName, ODD } from './support/browse-tree.js';

let maria: TestMariaDb;
let fx: WebFixture;
let desktop: TestBrowser;

async function sql(statements: string, database?: string): Promise<unknown[]> {
  const conn = await mysql.createConnection({ socketPath: maria.creds.socket!, user: maria.creds.user, multipleStatements: true, ...(database ? { database } : {}) });
  try { return (await conn.query(statements))[0] as unknown[]; } finally { await conn.end(); }
}

const snap = (): string => `${fx.base}/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.alice}`;
const shop = (): string => `${fx.alice.username}_shop`;
const blog = (): string => `${fx.alice.username}_blog`;
const selection = (page: Page) => page.locator('[data-selection-count]');
const selectionSize = (page: Page) => page.locator('[data-selection-size]');

before(async () => {
  maria = await startTestMariaDb();
  fx = await startWebFixture({
    mysql: maria.creds,
    beforeBackup: async (a) => {
      buildBrowseTree(a);
      await sql(`CREATE DATABASE \`${a.username}_shop\`; CREATE DATABASE \`${a.username}_blog\`;`);
      await sql(`CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(50)); INSERT INTO items VALUES (1, 'from the backup');`, `${a.username}_shop`);
    },
  });
  desktop = await launchBrowser();
  await desktop.page.goto(fx.loginUrl(fx.alice.username, 'user'));
  await desktop.page.waitForURL(/\/snapshots$/);
});

after(async () => {
  await desktop?.close();
  await fx?.stop();
  await maria?.stop();
});

test('a folder of 4,000 mails opens on its first page, a normal page long, not 150,000 pixels', async () => {
  const { page } = desktop;
  const started = Date.now();
  await page.goto(`${snap()}?p=${pathParam('mail')}`);
  const loadMs = Date.now() - started;
  assert.equal(await page.locator('tr.entry').count(), 100);
  const height = await page.evaluate<number>('document.documentElement.scrollHeight');
  assert.ok(height < 8_000, `the page is ${height} px tall`);
  assert.equal(await page.locator('#page-of').textContent(), 'Page 1 of 40');
  assert.match(await page.locator('#folder-count').textContent() ?? '', /4,000 entries/);
  await desktop.screenshot('browse-4000-first-page');
  assert.ok(loadMs < 5000, `${loadMs} ms`);
});

test('the filter box narrows the folder', async () => {
  const { page } = desktop;
  await page.locator('#folder-filter').fill('msg-39');
  await page.locator('#folder-filter').press('Enter');
  await page.waitForURL(/q=msg-39/);
  assert.equal(await page.locator('tr.entry').count(), 100);
  assert.match(await page.locator('#folder-count').textContent() ?? '', /100 of 4,000 entries match/);
  assert.ok((await page.locator('td.name').allTextContents()).every((n) => n.includes('msg-39')));
  await page.locator('#filter-clear').click();
  await page.waitForURL((u) => !u.search.includes('q='));
  assert.equal(await page.locator('#page-of').textContent(), 'Page 1 of 40');
});

test('a choice spans pages and folders, with a running count and total size, and is downloaded whole', async () => {
  const { page } = desktop;
  await page.goto(`${snap()}?p=${pathParam('mail')}`);
  await page.getByRole('button', { name: 'Clear the selection' }).click();
  await page.getByRole('checkbox', { name: mailName(1) }).check();
  await page.getByRole('checkbox', { name: mailName(2) }).check();
  assert.equal(await selection(page).textContent(), '2 items chosen');
  assert.equal(await selectionSize(page).textContent(), `${mailBody(1).length + mailBody(2).length} B in all`);
  await page.locator('#page-next').click();
  await page.waitForURL(/page=2/);
  await page.getByRole('checkbox', { name: mailName(101) }).check();
  assert.equal(await selection(page).textContent(), '3 items chosen');
  assert.match(await page.locator('[data-selection-elsewhere]').textContent() ?? '', /2 of them in other folders or pages/);
  // Another folder: the choice goes along.
  await page.goto(`${snap()}?p=${pathParam('odd')}`);
  await page.getByRole('checkbox', { name: 'new\\nline.txt' }).check();
  const total = mailBody(1).length + mailBody(2).length + mailBody(101).length + 'content of '.length + ODD.newline.length;
  assert.equal(await selection(page).textContent(), '4 items chosen');
  assert.equal(await selectionSize(page).textContent(), `${total} B in all`);
  await desktop.screenshot('browse-selection-across-folders');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-browser-dl-'));
  try {
    await download.saveAs(path.join(dir, 'a.tar.gz'));
    execFileSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'files/mail')).sort(), [mailName(1), mailName(2), mailName(101)]);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'files/odd'), { encoding: 'buffer' }), [ODD.newline]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Going back to the first folder: its boxes are still ticked.
  await page.goto(`${snap()}?p=${pathParam('mail')}`);
  assert.equal(await page.getByRole('checkbox', { name: mailName(2) }).isChecked(), true);
  assert.equal(await selection(page).textContent(), '4 items chosen');
  // Every entry of the folder, across all 40 pages, in one go.
  await page.getByRole('button', { name: `Select all ${'4,000'} entries of this folder` }).click();
  await page.locator('[data-selection-count]', { hasText: /^4,001 items chosen$/ }).waitFor();
  await page.getByRole('button', { name: 'Clear the selection' }).click();
  assert.equal(await page.locator('[data-selection]').isHidden(), true);
});

test('a single file downloads as itself, with its own name', async () => {
  const { page } = desktop;
  await page.goto(`${snap()}?p=${pathParam('mail')}`);
  await page.getByRole('checkbox', { name: mailName(42) }).check();
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
  assert.equal(download.suggestedFilename(), mailName(42));
  const file = await download.path();
  assert.equal(fs.readFileSync(file, 'utf8'), mailBody(42));
  await page.getByRole('button', { name: 'Clear the selection' }).click();
});

test('text and images are previewed; a web page only as its source', async () => {
  const { page } = desktop;
  let alerted = false;
  page.on('dialog', (d) => { alerted = true; void d.dismiss(); });
  await page.goto(`${snap()}?p=${pathParam('previews')}`);
  await page.locator('tr.entry', { hasText: 'page.html' }).getByRole('link', { name: 'Preview' }).click();
  await page.waitForSelector('#preview-text');
  assert.match(await page.locator('#preview-text').textContent() ?? '', /<script>alert\(2\)<\/script>/);
  assert.equal(await page.locator('img').count(), 0);
  await page.goBack();
  await page.locator('tr.entry', { hasText: 'pixel.png' }).getByRole('link', { name: 'Preview' }).click();
  await page.waitForSelector('#preview-image');
  // Decoded and drawn: a refused or broken image has no natural width.
  const width = await page.locator('#preview-image').evaluate(async (img: unknown) => {
    const i = img as { decode(): Promise<void>; naturalWidth: number };
    await i.decode();
    return i.naturalWidth;
  });
  assert.equal(width, 1, 'the PNG was shown');
  await page.goto(`${snap()}/preview?p=${pathParam('previews/drawing.svg')}`);
  await page.waitForSelector('#preview-text');
  assert.equal(alerted, false, 'no script of a file ever ran');
  await desktop.screenshot('browse-preview-svg-as-text');
});

test('on a phone (390 px, German): select-all works, names wrap, counts are in German plurals', async () => {
  const phone = await launchBrowser({ width: 390, locale: 'de-DE' });
  try {
    const { page } = phone;
    await page.goto(fx.loginUrl(fx.alice.username, 'user'));
    await page.waitForURL(/\/snapshots$/);
    await page.goto(`${snap()}?p=${pathParam('mail')}`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    assert.equal(await page.locator('thead').isVisible(), false, 'the table head is hidden on a phone');
    await page.getByRole('button', { name: 'Diese Seite auswählen' }).click();
    assert.equal(await selection(page).textContent(), '100 Einträge gewählt');
    await page.getByRole('button', { name: 'Auswahl aufheben' }).click();
    await page.getByRole('checkbox', { name: mailName(5) }).check();
    assert.equal(await selection(page).textContent(), '1 Eintrag gewählt');
    await page.getByRole('button', { name: 'Alle 4.000 Einträge dieses Ordners auswählen' }).click();
    await page.locator('[data-selection-count]', { hasText: /^4\.000 Einträge gewählt$/ }).waitFor();
    assert.match(await selectionSize(page).textContent() ?? '', /insgesamt [\d,]+ MiB/);
    assert.ok(await page.evaluate<number>('document.documentElement.scrollWidth') <= 390, 'no sideways scrolling');
    await phone.screenshot('browse-phone-de-select-all');
    await page.getByRole('button', { name: 'Auswahl aufheben' }).click();
    // 255-byte names wrap inside the screen.
    await page.goto(`${snap()}?p=${pathParam('odd')}`);
    assert.ok(await page.evaluate<number>('document.documentElement.scrollWidth') <= 390, 'a 255-byte name does not widen the page');
    await page.goto(snap());
    assert.match(await page.locator('tr.entry', { hasText: 'mail/' }).textContent() ?? '', /4\.000 Dateien/);
    await phone.screenshot('browse-phone-de-odd');
  } finally {
    await phone.close();
  }
});

test('a form with several problems reports them all at once in German, on the same folder, with the choice kept; then the review says what will be overwritten', async () => {
  const de = await launchBrowser({ locale: 'de-DE' });
  try {
    const { page } = de;
    await page.goto(fx.loginUrl(fx.alice.username, 'user'));
    await page.waitForURL(/\/snapshots$/);
    // Something chosen in another folder first.
    await page.goto(`${snap()}?p=${pathParam('mail')}`);
    await page.getByRole('checkbox', { name: mailName(9) }).check();
    await page.goto(snap());
    await page.getByRole('checkbox', { name: 'notes.txt' }).check();
    await page.getByRole('checkbox', { name: shop() }).check();
    await page.locator(`input[name="as_${shop()}"]`).fill('kein gültiger Name!');
    await page.locator(`input[name="as_${blog()}"]`).fill(`${fx.bob.username}_x`);
    await page.locator('#restore-in-place').click();
    await page.waitForSelector('#form-problem');
    const errors = await page.locator('.field-error').allTextContents();
    assert.equal(errors.length, 2, errors.join(' | '));
    assert.match(await page.locator(`#as_${shop()}-error`).textContent() ?? '', /nur Buchstaben, Ziffern und Unterstriche/);
    assert.match(await page.locator(`#as_${blog()}-error`).textContent() ?? '', /Haken Sie die Datenbank .* ebenfalls an/);
    assert.doesNotMatch(await page.locator('main').textContent() ?? '', /expected|received|NaN|--[a-z]/);
    // The same folder, the same choice, the same typed names.
    assert.equal(await page.getByRole('checkbox', { name: 'notes.txt' }).isChecked(), true);
    assert.equal(await page.getByRole('checkbox', { name: shop() }).isChecked(), true);
    assert.equal(await page.locator(`input[name="as_${shop()}"]`).inputValue(), 'kein gültiger Name!');
    assert.equal(await selection(page).textContent(), '2 Einträge gewählt');
    await de.screenshot('browse-form-errors-de');
    // Fixed: the review lists what will be overwritten, in German.
    await page.locator(`input[name="as_${shop()}"]`).fill('');
    await page.locator(`input[name="as_${blog()}"]`).fill('');
    await page.locator('#restore-in-place').click();
    await page.waitForSelector('#restore-confirm');
    const review = await page.locator('#restore-confirm').textContent() ?? '';
    assert.match(review, /notes\.txt/);
    assert.match(review, new RegExp(`mail/${mailName(9)}`));
    assert.match(review, new RegExp(shop()));
    assert.match(await page.locator('#confirm-total').textContent() ?? '', /^2 Dateien \(\d+ B\) werden über die aktuellen Kopien geschrieben\.$/);
    await de.screenshot('browse-review-de');
    // Back: the folder with the choice as it was.
    await page.locator('#confirm-back').click();
    await page.waitForSelector('table.files');
    assert.equal(await page.getByRole('checkbox', { name: 'notes.txt' }).isChecked(), true);
    await page.locator('#restore-in-place').click();
    await page.waitForSelector('#restore-confirm');
    fs.writeFileSync(path.join(fx.alice.home, 'notes.txt'), 'changed after the backup');
    await page.locator('#confirm-overwrite').click();
    await page.waitForURL(/\/tasks\/\d+$/);
    await page.waitForSelector('#task-status[data-status="completed"]', { timeout: 60000 });
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'notes.txt'), 'utf8'), 'notes of alice');
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'mail', mailName(9)), 'utf8'), mailBody(9));
  } finally {
    await de.close();
  }
});

void MAIL_COUNT;
