import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cli, makeDestinationDir, ok } from './support/cli.js';
import { startWebFixture, WebClient, type WebFixture, useCpanelTree } from './support/web-daemon.js';
import { launchBrowser, type TestBrowser } from './support/browser.js';
import type { TestAccount } from './support/accounts.js';

/**
 * Schedules and retention on the job pages, and the provider's snapshot pages (lock,
 * note, delete, filters, paging), with resellers: alice is owned by "resa", bob by "resb"
 * (a cPanel tree built under a temporary root, as in web-provider.test.ts).
 */
let fx: WebFixture;
let panelRoot: string;
let admin: WebClient;
let csrf: string;
const extraDirs: string[] = [];


async function signIn(user: string, role: 'admin' | 'reseller' | 'user'): Promise<WebClient> {
  const c = new WebClient(fx.base);
  assert.equal((await c.get(fx.loginUrl(user, role))).status, 200);
  return c;
}

const snapshotDoc = (id: string): any => ok(cli(fx.dataDir, ['snapshot', 'show', id, '--destination', 'shown'])) as any;
const snapshotIds = (): string[] => (ok(cli(fx.dataDir, ['snapshot', 'list'])) as { id: string }[]).map((s) => s.id);
const shownPath = (): string => (ok(cli(fx.dataDir, ['destination', 'show', 'shown'])) as any).settings.path as string;
const page = (account: string, id: string): string => `/admin/snapshots/${fx.destinationIds.shown}/${account}/${id}`;
const schedulesOf = (job: string, owner?: string): any => ok(cli(fx.dataDir, [...(owner ? ['--owner', owner] : []), 'job', 'schedule', 'list', job]));

/** A job of an account's own destination (owned by that account), as an account holder would have added it. */
function accountJob(account: TestAccount, name: string): number {
  const dir = makeDestinationDir();
  extraDirs.push(dir);
  ok(cli(fx.dataDir, ['destination', 'add', '--name', `${name}-dest`, '--type', 'local', '--path', dir]));
  ok(cli(fx.dataDir, ['job', 'add', '--name', name, '--destination', `${name}-dest`, '--structure', 'archive', '--items', 'files', '--accounts', account.username]));
  const db = new Database(path.join(fx.dataDir, 'tidemark.sqlite'));
  try {
    db.prepare('UPDATE destinations SET owner = ? WHERE name = ?').run(account.username, `${name}-dest`);
    db.prepare('UPDATE jobs SET owner = ? WHERE name = ?').run(account.username, name);
    return (db.prepare('SELECT id FROM jobs WHERE name = ?').get(name) as { id: number }).id;
  } finally {
    db.close();
  }
}

before(async () => {
  fx = await startWebFixture({ beforeBackup: async (alice, bob, dataDir) => { panelRoot = useCpanelTree(dataDir, [[alice, 'resa'], [bob, 'resb']]); } });
  admin = await signIn('root', 'admin');
  csrf = await admin.csrf();
});

after(async () => {
  await fx?.stop();
  for (const d of [panelRoot, ...extraDirs]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('the provider\'s snapshot list', () => {
  test('filters by account, destination, job, status and date, and pages keeping the filter', async () => {
    const all = await admin.get('/admin/snapshots');
    assert.equal(all.status, 200);
    for (const id of [fx.visible.alice, fx.visible.bob, fx.hidden.alice]) assert.ok(all.body.includes(id), id);
    assert.doesNotMatch(all.body, /Your backups/, 'worded for the provider, not for an account holder');
    const rows = (body: string): string[] => [...body.matchAll(/<tr class="snapshot" data-snapshot="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(rows((await admin.get(`/admin/snapshots?account=${fx.alice.username}`)).body).sort(), [fx.visible.alice, fx.hidden.alice].sort());
    assert.deepEqual(rows((await admin.get(`/admin/snapshots?destination=${fx.destinationIds.hidden}`)).body), [fx.hidden.alice]);
    const secretJob = (ok(cli(fx.dataDir, ['job', 'show', 'secret'])) as { name: string }) && 2;
    assert.deepEqual(rows((await admin.get(`/admin/snapshots?job=${secretJob}`)).body), [fx.hidden.alice]);
    assert.equal(rows((await admin.get('/admin/snapshots?status=completed')).body).length, 3);
    // A status this version does not know (another version's "damaged", say): an empty list, not an error.
    const unknown = await admin.get('/admin/snapshots?status=damaged');
    assert.equal(unknown.status, 200);
    assert.deepEqual(rows(unknown.body), []);
    assert.deepEqual(rows((await admin.get('/admin/snapshots?from=2999-01-01')).body), []);
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(rows((await admin.get(`/admin/snapshots?from=${today}&to=${today}`)).body).length, 3);
    // One a page: three pages, each a different snapshot, the links keep the filter.
    const seen: string[] = [];
    let url: string | null = `/admin/snapshots?account=${fx.alice.username}&size=1`;
    while (url) {
      const p = await admin.get(url.replace(/&amp;/g, '&'));
      seen.push(...rows(p.body));
      const next = /<a rel="next" href="([^"]+)"/.exec(p.body);
      if (next) assert.match(next[1]!, new RegExp(`account=${fx.alice.username}`));
      url = next ? next[1]! : null;
    }
    assert.deepEqual(seen.sort(), [fx.visible.alice, fx.hidden.alice].sort());
  });
  test('regression: a date filter past the end of the calendar (to=2026-13-45) was a 500 logged as a crash', async () => {
    const rows = (body: string): string[] => [...body.matchAll(/<tr class="snapshot" data-snapshot="([^"]+)"/g)].map((m) => m[1]!);
    for (const q of ['to=2026-13-45', 'from=2026-99-99', 'to=2026-02-30']) {
      const r = await admin.get(`/admin/snapshots?${q}`);
      assert.equal(r.status, 200, q);
      assert.equal(rows(r.body).length, 3, `${q}: left out like any other bad value`);
    }
  });
});

describe('a snapshot page', () => {
  test('notes a snapshot; a refused note keeps what was typed; no change without the CSRF token', async () => {
    const p = page(fx.alice.username, fx.visible.alice);
    assert.equal((await admin.post(`${p}/note`, { _csrf: 'forged', note: 'sneaky' })).status, 403);
    assert.equal(snapshotDoc(fx.visible.alice).note, '');
    assert.equal((await admin.post(`${p}/note`, { _csrf: csrf, note: 'before the migration' })).status, 303);
    assert.equal(snapshotDoc(fx.visible.alice).note, 'before the migration');
    const bad = await admin.post(`${p}/note`, { _csrf: csrf, note: 'x'.repeat(501) });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /id="note-error"/);
    assert.ok(bad.body.includes('x'.repeat(501)), 'what was typed is kept');
    assert.equal(snapshotDoc(fx.visible.alice).note, 'before the migration');
  });

  test('locks and unlocks; a locked snapshot is not deleted', async () => {
    const p = page(fx.alice.username, fx.visible.alice);
    assert.equal((await admin.post(`${p}/lock`, { _csrf: csrf })).status, 303);
    assert.equal(snapshotDoc(fx.visible.alice).locked, true);
    const shown = await admin.get(p);
    assert.doesNotMatch(shown.body, /id="delete-link"/);
    const refused = await admin.post(`${p}/delete`, { _csrf: csrf, confirm: fx.visible.alice });
    assert.equal(refused.status, 409);
    assert.match(refused.body, /is locked: unlock it first/);
    assert.ok(snapshotIds().includes(fx.visible.alice));
    assert.equal((await admin.post(`${p}/unlock`, { _csrf: csrf })).status, 303);
    assert.equal(snapshotDoc(fx.visible.alice).locked, false);
  });

  test('deletes only after a confirmation naming what goes, never while a restore holds the account', async () => {
    const extra = ok(cli(fx.dataDir, ['backup', '--job', 'both', '--account', fx.alice.username, '--wait'])).snapshots[0] as string;
    const p = page(fx.alice.username, extra);
    const folder = path.join(shownPath(), fx.alice.username, extra);
    assert.ok(fs.existsSync(folder));
    const confirm = await admin.get(`${p}/delete`);
    assert.equal(confirm.status, 200);
    for (const what of [extra, fx.alice.username, 'shown']) assert.ok(confirm.body.includes(what), `the confirmation names ${what}`);
    // A bare POST (no confirmation) shows the question again and deletes nothing.
    assert.equal((await admin.post(`${p}/delete`, { _csrf: csrf })).status, 400);
    assert.equal((await admin.post(`${p}/delete`, { _csrf: 'forged', confirm: extra })).status, 403);
    assert.ok(fs.existsSync(folder) && snapshotIds().includes(extra));
    // A restore of the account runs (its lock held by a live process): refused, nothing removed.
    const lock = path.join(fx.dataDir, 'locks', `${fx.alice.username}.lock`);
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, what: 'restore task 999', at: new Date().toISOString() }));
    try {
      const busy = await admin.post(`${p}/delete`, { _csrf: csrf, confirm: extra });
      assert.equal(busy.status, 409);
      assert.match(busy.body, /restore task 999/);
      assert.ok(fs.existsSync(folder) && snapshotIds().includes(extra));
    } finally {
      fs.rmSync(lock, { force: true });
    }
    const done = await admin.post(`${p}/delete`, { _csrf: csrf, confirm: extra });
    assert.equal(done.status, 303);
    assert.ok(!fs.existsSync(folder), 'the folder is gone from the destination');
    assert.ok(!fs.readdirSync(path.join(shownPath(), fx.alice.username)).some((n) => n.includes(extra)), 'no .partial- leftover');
    assert.ok(!snapshotIds().includes(extra));
    const activity = ok(cli(fx.dataDir, ['activity', '--json'])) as { action: string; target: string; result: string }[];
    assert.ok(activity.some((a) => a.action === 'snapshot.delete' && a.target.endsWith(extra) && a.result === 'ok'));
    assert.ok(activity.some((a) => a.action === 'snapshot.delete' && a.target.endsWith(extra) && a.result === 'refused'));
  });

  test('the CLI notes and deletes through the same service (delete needs --yes)', async () => {
    const extra = ok(cli(fx.dataDir, ['backup', '--job', 'both', '--account', fx.bob.username, '--wait'])).snapshots[0] as string;
    const noted = ok(cli(fx.dataDir, ['snapshot', 'note', extra, '--text', 'from the CLI']));
    assert.equal(noted.note, 'from the CLI');
    const unconfirmed = cli(fx.dataDir, ['snapshot', 'delete', extra]);
    assert.equal(unconfirmed.code, 2);
    assert.ok(snapshotIds().includes(extra));
    const deleted = ok(cli(fx.dataDir, ['snapshot', 'delete', extra, '--yes']));
    assert.equal(deleted.deleted.id, extra);
    assert.ok(!snapshotIds().includes(extra));
    assert.ok(!fs.existsSync(path.join(shownPath(), fx.bob.username, extra)));
  });
});

describe('a reseller', () => {
  let resa: WebClient;
  let resaCsrf: string;
  let aliceJob: number;
  let bobJob: number;
  before(async () => {
    resa = await signIn('resa', 'reseller');
    resaCsrf = await resa.csrf();
    aliceJob = accountJob(fx.alice, 'alicejob');
    bobJob = accountJob(fx.bob, 'bobjob');
  });

  test('sees and notes its own accounts\' snapshots; another reseller\'s are not found and stay unchanged', async () => {
    const list = await resa.get('/admin/snapshots');
    assert.equal(list.status, 200);
    assert.ok(list.body.includes(fx.visible.alice));
    for (const leak of [fx.visible.bob, fx.bob.username, fx.hidden.alice]) assert.ok(!list.body.includes(leak), `shows ${leak}`);
    const bobPage = page(fx.bob.username, fx.visible.bob);
    assert.equal((await resa.get(bobPage)).status, 404);
    for (const [action, form] of [['note', { note: 'mine now' }], ['lock', {}], ['unlock', {}], ['delete', { confirm: fx.visible.bob }]] as const) {
      assert.equal((await resa.post(`${bobPage}/${action}`, { _csrf: resaCsrf, ...form })).status, 404, action);
    }
    const bob = snapshotDoc(fx.visible.bob);
    assert.equal(bob.note, '');
    assert.equal(bob.locked, false);
    assert.ok(snapshotIds().includes(fx.visible.bob));
    const alicePage = page(fx.alice.username, fx.visible.alice);
    assert.equal((await resa.post(`${alicePage}/note`, { _csrf: resaCsrf, note: 'noted by resa' })).status, 303);
    assert.equal(snapshotDoc(fx.visible.alice).note, 'noted by resa');
    // Locking on the provider's destination is the provider's (it would keep data there without limit).
    assert.doesNotMatch((await resa.get(alicePage)).body, /id="lock-button"/);
    assert.equal((await resa.post(`${alicePage}/lock`, { _csrf: resaCsrf })).status, 409);
    assert.equal(snapshotDoc(fx.visible.alice).locked, false);
  });

  test('changes only its own accounts\' schedules; another reseller\'s account\'s job is not found and unchanged', async () => {
    const list = await resa.get('/admin/schedules');
    assert.equal(list.status, 200);
    assert.match(list.body, /alicejob/);
    assert.doesNotMatch(list.body, /bobjob|>both<|>secret</);
    for (const id of [bobJob, 1]) {
      assert.equal((await resa.get(`/admin/schedules/${id}`)).status, 404);
      assert.equal((await resa.post(`/admin/schedules/${id}`, { _csrf: resaCsrf, kind: 'daily', at: '02:00', keep: '3' })).status, 404);
      assert.equal((await resa.post(`/admin/schedules/${id}/manual`, { _csrf: resaCsrf, manualKeep: '1' })).status, 404);
      assert.equal((await resa.post(`/admin/schedules/${id}/retention`, { _csrf: resaCsrf })).status, 404);
    }
    assert.deepEqual(schedulesOf('bobjob', fx.bob.username).schedules, []);
    assert.equal(schedulesOf('bobjob', fx.bob.username).manualKeep, null);
    assert.deepEqual(schedulesOf('both').schedules, []);
    assert.equal((await resa.post(`/admin/schedules/${aliceJob}`, { _csrf: resaCsrf, kind: 'daily', at: '02:00', keep: '3' })).status, 303);
    const mine = schedulesOf('alicejob', fx.alice.username);
    assert.deepEqual(mine.schedules.map((s: any) => [s.name, s.kind, s.at, s.keep]), [['daily', 'daily', '02:00', 3]]);
    // An admin removes it (and sees every job).
    assert.equal((await admin.post(`/admin/schedules/${aliceJob}/remove`, { _csrf: csrf, schedule: 'daily' })).status, 303);
    assert.deepEqual(schedulesOf('alicejob', fx.alice.username).schedules, []);
  });
});

describe('in a browser', () => {
  let browser: TestBrowser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test('adds, edits and removes schedules of every kind; a refused form keeps what was typed', async () => {
    const { page: pg } = browser;
    await pg.goto(fx.loginUrl('root', 'admin'));
    await pg.waitForURL(/\/admin$/);
    await pg.goto(`${fx.base}/admin/schedules/1`);
    await pg.selectOption('select[name="kind"]', 'weekly');
    assert.equal(await pg.locator('label.kind-field[data-kinds="weekly"]').isVisible(), true);
    assert.equal(await pg.locator('label.kind-field[data-kinds="monthly"]').isVisible(), false);
    await pg.fill('input[name="at"]', '04:30');
    await pg.selectOption('select[name="weekday"]', '1');
    await pg.fill('input[name="keep"]', '0');
    await pg.click('#add-schedule button[type="submit"]');
    await pg.waitForSelector('#keep-error');
    assert.equal(await pg.inputValue('input[name="at"]'), '04:30');
    assert.equal(await pg.inputValue('select[name="weekday"]'), '1');
    assert.equal(await pg.inputValue('select[name="kind"]'), 'weekly');
    await pg.fill('input[name="keep"]', '4');
    await pg.click('#add-schedule button[type="submit"]');
    await pg.waitForSelector('tr.schedule[data-schedule="weekly"]');
    assert.match(await pg.locator('tr[data-schedule="weekly"] .timing').textContent() ?? '', /every Monday at 04:30/);
    const next = new Date(await pg.locator('tr[data-schedule="weekly"] .next-run').getAttribute('data-at') ?? '');
    assert.equal(next.getDay(), 1);
    assert.equal(`${next.getHours()}:${next.getMinutes()}`, '4:30');
    for (const [kind, fill] of [
      ['hourly', async () => { await pg.fill('input[name="at"]', '00:15'); }],
      ['daily', async () => { await pg.fill('input[name="at"]', '03:00'); }],
      ['monthly', async () => { await pg.fill('input[name="at"]', '05:00'); await pg.fill('input[name="monthday"]', '28'); }],
      ['after', async () => { await pg.selectOption('select[name="afterJob"]', 'secret'); }],
    ] as const) {
      await pg.selectOption('select[name="kind"]', kind);
      await fill();
      await pg.fill('input[name="keep"]', '2');
      await pg.click('#add-schedule button[type="submit"]');
      await pg.waitForSelector(`tr.schedule[data-schedule="${kind}"]`);
    }
    const listed = schedulesOf('both');
    assert.deepEqual(listed.schedules.map((s: any) => s.name).sort(), ['after', 'daily', 'hourly', 'monthly', 'weekly']);
    assert.equal(listed.schedules.find((s: any) => s.name === 'after').afterJob, 'secret');
    assert.equal(listed.schedules.find((s: any) => s.name === 'monthly').monthday, 28);
    // Edit: the weekly one becomes monthly on the 2nd, keeping 6.
    await pg.click('tr[data-schedule="weekly"] a.button');
    await pg.waitForSelector('#edit-schedule');
    await pg.selectOption('select[name="kind"]', 'monthly');
    await pg.fill('input[name="monthday"]', '31');
    await pg.click('#edit-schedule button[type="submit"]');
    await pg.waitForSelector('#monthday-error');
    assert.equal(await pg.inputValue('input[name="monthday"]'), '31');
    await pg.fill('input[name="monthday"]', '2');
    await pg.fill('input[name="keep"]', '6');
    await pg.click('#edit-schedule button[type="submit"]');
    await pg.waitForSelector('tr.schedule[data-schedule="weekly"]');
    const edited = schedulesOf('both').schedules.find((s: any) => s.name === 'weekly');
    assert.deepEqual([edited.kind, edited.monthday, edited.weekday, edited.keep, edited.at], ['monthly', 2, null, 6, '04:30']);
    await browser.screenshot('admin-schedules');
    // Remove asks first.
    let question = '';
    pg.once('dialog', (d) => { question = d.message(); void d.accept(); });
    await pg.click('tr[data-schedule="hourly"] button.danger');
    await pg.waitForSelector('tr.schedule[data-schedule="hourly"]', { state: 'detached' });
    assert.match(question, /hourly/);
    for (const name of ['weekly', 'daily', 'monthly', 'after']) ok(cli(fx.dataDir, ['job', 'schedule', 'remove', 'both', name]));
  });

  test('the retention preview lists exactly what retention then removes', async () => {
    const { page: pg } = browser;
    // Two more runs on demand: alice and bob have three or more each on "shown".
    ok(cli(fx.dataDir, ['backup', '--job', 'both', '--wait']));
    ok(cli(fx.dataDir, ['backup', '--job', 'both', '--wait']));
    const p = page(fx.alice.username, fx.visible.alice);
    await pg.goto(`${fx.base}${p}`);
    await pg.click('#lock-button');
    await pg.waitForSelector('#lock-state:text("locked: retention never removes it")');
    await pg.goto(`${fx.base}/admin/schedules/1`);
    await pg.fill('input[name="manualKeep"]', '1');
    await pg.click('#manual-rule button[type="submit"]');
    await pg.waitForSelector('#retention-preview');
    const preview = (await pg.locator('tr.would-remove').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-snapshot')))).sort();
    const before = ok(cli(fx.dataDir, ['snapshot', 'list', '--destination', 'shown'])) as { id: string; account: string; locked: boolean }[];
    // Each account keeps its newest one, and the locked one neither counts nor goes.
    assert.equal(preview.length, before.filter((s) => !s.locked).length - 2);
    assert.ok(!preview.includes(fx.visible.alice));
    await browser.screenshot('admin-retention-preview');
    pg.once('dialog', (d) => { void d.accept(); });
    await pg.click('#apply-retention');
    await pg.waitForSelector('#retention-applied');
    const afterIds = new Set((ok(cli(fx.dataDir, ['snapshot', 'list', '--destination', 'shown'])) as { id: string }[]).map((s) => s.id));
    const removed = before.map((s) => s.id).filter((id) => !afterIds.has(id)).sort();
    assert.deepEqual(removed, preview);
    assert.ok(afterIds.has(fx.visible.alice), 'the locked snapshot stays');
    await pg.waitForSelector('#retention-none');
  });

  test('asks before disabling a destination, and the remove question says whether snapshot data is deleted', async () => {
    const { page: pg } = browser;
    await pg.goto(`${fx.base}/admin/destinations/${fx.destinationIds.hidden}`);
    let question = '';
    pg.once('dialog', (d) => { question = d.message(); void d.dismiss(); });
    await pg.click('#enabled-button');
    assert.match(question, /Disable the destination hidden/);
    assert.equal((ok(cli(fx.dataDir, ['destination', 'show', 'hidden'])) as any).enabled, true, 'dismissed: still enabled');
    pg.once('dialog', (d) => { question = d.message(); void d.dismiss(); });
    await pg.click('#remove-destination');
    assert.match(question, /NOT deleted/);
    await pg.check('input[name="deleteData"]');
    pg.once('dialog', (d) => { question = d.message(); void d.dismiss(); });
    await pg.click('#remove-destination');
    assert.match(question, /DELETE its 1 snapshot/);
    assert.ok(ok(cli(fx.dataDir, ['destination', 'show', 'hidden'])), 'dismissed: still there');
  });
});
