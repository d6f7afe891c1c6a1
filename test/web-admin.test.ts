import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cli, makeDestinationDir, ok } from './support/cli.js';
import { startWebFixture, WebClient, type WebFixture } from './support/web-daemon.js';
import { launchBrowser } from './support/browser.js';

let fx: WebFixture;
let admin: WebClient;
let adminCsrf: string;
const extraDirs: string[] = [];

async function signIn(user: string, role: 'admin' | 'reseller' | 'user'): Promise<WebClient> {
  const c = new WebClient(fx.base);
  assert.equal((await c.get(fx.loginUrl(user, role))).status, 200);
  return c;
}

const showDestination = (name: string): any => ok(cli(fx.dataDir, ['destination', 'show', name]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  fx = await startWebFixture();
  admin = await signIn('root', 'admin');
  adminCsrf = await admin.csrf();
});

after(async () => {
  await fx?.stop();
  for (const d of extraDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('the provider pages are for providers only', () => {
  const adminPages = ['/admin/destinations', '/admin/destinations/new', '/admin/destinations/1', '/admin/destinations/1/space',
    '/admin/destinations/1/edit', '/admin/destinations/1/browse', '/admin/jobs', '/admin/jobs/new'];
  const pages = ['/admin', ...adminPages, '/admin/accounts', '/admin/queue', '/admin/queue/events', '/admin/activity'];

  test('an account holder gets "not found" everywhere, a reseller on destinations and jobs, and their forms change nothing', async () => {
    for (const [user, role] of [[fx.alice.username, 'user'], ['res1', 'reseller']] as const) {
      const c = await signIn(user, role);
      const token = await c.csrf();
      for (const p of role === 'user' ? pages : adminPages) assert.equal((await c.get(p)).status, 404, `${role} ${p}`);
      const id = fx.destinationIds.shown;
      for (const [p, form] of [
        [`/admin/destinations/${id}/enabled`, { enabled: '0' }], [`/admin/destinations/${id}/visibility`, { visible: '0' }],
        [`/admin/destinations/${id}/remove`, { deleteData: '1' }], ['/admin/destinations', { name: 'sneaky', type: 'local', path: '/tmp' }],
        ['/admin/jobs/1/run', {}],
      ] as const) {
        assert.equal((await c.post(p, { _csrf: token, ...form })).status, 404, `${role} POST ${p}`);
      }
    }
    const d = showDestination('shown');
    assert.equal(d.enabled, true);
    assert.equal(d.snapshotsVisible, true);
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'sneaky']).code, 1);
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'list'])).length, 3);
  });

  test('without a session they answer 401', async () => {
    const anon = new WebClient(fx.base);
    for (const p of pages) assert.equal((await anon.get(p)).status, 401, p);
  });
});

describe('an admin', () => {
  test('sees the dashboard, destinations, jobs, accounts and activity', async () => {
    const dash = await admin.get('/admin');
    assert.equal(dash.status, 200);
    assert.match(dash.body, new RegExp(fx.visible.alice));
    const dests = await admin.get('/admin/destinations');
    assert.match(dests.body, />shown</);
    assert.match(dests.body, />hidden</);
    const space = JSON.parse((await admin.get(`/admin/destinations/${fx.destinationIds.shown}/space`, { accept: 'application/json' })).body);
    assert.equal(space.ok, true);
    assert.ok(space.space.freeBytes > 0);
    assert.match((await admin.get('/admin/jobs')).body, />both</);
    const accounts = await admin.get('/admin/accounts');
    assert.ok(accounts.body.includes(fx.alice.username) && accounts.body.includes(fx.bob.username));
  });

  test('adds a local destination; bad input is explained and adds nothing', async () => {
    const dir = makeDestinationDir();
    extraDirs.push(dir);
    const bad = await admin.post('/admin/destinations', { _csrf: adminCsrf, name: 'web-made', type: 'local', path: `${dir}/missing` });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /not added/);
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'web-made']).code, 1);
    const r = await admin.post('/admin/destinations', { _csrf: adminCsrf, name: 'web-made', type: 'local', path: dir, hidden: '1' });
    assert.equal(r.status, 303);
    assert.match(r.headers.get('location')!, /^\/admin\/destinations\/\d+$/);
    const d = showDestination('web-made');
    assert.equal(d.settings.path, dir);
    assert.equal(d.snapshotsVisible, false);
  });

  test('regression: the web form added a world-writable Local folder without a word; forced, the warning is kept and shown', async () => {
    const dir = makeDestinationDir();
    extraDirs.push(dir);
    fs.chmodSync(dir, 0o1777);
    const bad = await admin.post('/admin/destinations', { _csrf: adminCsrf, name: 'shared', type: 'local', path: dir });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /is writable by all users \(mode 1777\)/);
    assert.match(bad.body, /name="forceInsecurePath"/, 'the form offers to force it');
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'shared']).code, 1, 'nothing was added');
    const r = await admin.post('/admin/destinations', { _csrf: adminCsrf, name: 'shared', type: 'local', path: dir, forceInsecurePath: '1' });
    assert.equal(r.status, 303);
    assert.match(showDestination('shared').warning, /--force-insecure-path: .*\(mode 1777\)/);
    const page = await admin.get(r.headers.get('location')!);
    assert.match(page.body, /id="destination-warning"[^]*mode 1777/);
    ok(cli(fx.dataDir, ['destination', 'remove', 'shared']));
  });

  test('a refused SSH destination never shows the password back', async () => {
    const secret = 'hunter2-do-not-echo';
    const r = await admin.post('/admin/destinations', {
      _csrf: adminCsrf, name: 'remote', type: 'ssh', host: '127.0.0.1', port: '1', username: 'backup', password: secret, path: '/srv/backup', timeout: '3',
    });
    assert.equal(r.status, 400);
    assert.ok(!r.body.includes(secret));
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'remote']).code, 1);
  });

  test('hides a destination\'s snapshots from account holders, and shows them again', async () => {
    const alice = await signIn(fx.alice.username, 'user');
    const id = fx.destinationIds.shown;
    assert.equal((await admin.post(`/admin/destinations/${id}/visibility`, { _csrf: adminCsrf, visible: '0' })).status, 303);
    assert.equal(showDestination('shown').snapshotsVisible, false);
    assert.ok(!(await alice.get('/snapshots')).body.includes(fx.visible.alice));
    assert.equal((await alice.get(`/snapshots/${id}/${fx.alice.username}/${fx.visible.alice}`)).status, 404);
    assert.equal((await admin.post(`/admin/destinations/${id}/visibility`, { _csrf: adminCsrf, visible: '1' })).status, 303);
    assert.ok((await alice.get('/snapshots')).body.includes(fx.visible.alice));
  });

  test('disables and enables a destination; a job to a disabled one is refused', async () => {
    const id = fx.destinationIds.shown;
    assert.equal((await admin.post(`/admin/destinations/${id}/enabled`, { _csrf: adminCsrf, enabled: '0' })).status, 303);
    assert.equal(showDestination('shown').enabled, false);
    const snapshots = ok(cli(fx.dataDir, ['snapshot', 'list'])).length;
    const jobs = (await admin.get('/admin/jobs')).body;
    const bothId = /<tr class="job" data-job="(\d+)">\s*<td[^>]*><a[^>]*>both</.exec(jobs)![1];
    assert.equal((await admin.post(`/admin/jobs/${bothId}/run`, { _csrf: adminCsrf })).status, 409);
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'list'])).length, snapshots);
    assert.equal((await admin.post(`/admin/destinations/${id}/enabled`, { _csrf: adminCsrf, enabled: '1' })).status, 303);
    assert.equal(showDestination('shown').enabled, true);
  });

  test('validates a destination in the background and shows the result', async () => {
    const id = fx.destinationIds.shown;
    const r = await admin.post(`/admin/destinations/${id}/validate`, { _csrf: adminCsrf });
    assert.equal(r.status, 303);
    for (let i = 0; i < 100; i++) {
      const s = JSON.parse((await admin.get(`/admin/destinations/${id}/validation`, { accept: 'application/json' })).body);
      if (s.finished) break;
      await sleep(100);
    }
    assert.match((await admin.get(`/admin/destinations/${id}`)).body, /id="validation-state" data-state="ok"/);
  });

  test('runs a job now and the queue streams its progress (server-sent events)', async () => {
    const events = await fetch(`${fx.base}/admin/queue/events`, { headers: { cookie: `tidemark_session=${admin.cookies.get('tidemark_session')}`, accept: 'text/event-stream' } });
    assert.equal(events.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = events.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const nextTasks = async (): Promise<any[]> => {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: tasks\ndata: (.*)$/m.exec(block);
          if (data) return JSON.parse(data[1]!);
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffer += decoder.decode(value, { stream: true });
      }
    };
    const first = await nextTasks();
    const jobs = (await admin.get('/admin/jobs')).body;
    const bothId = /<tr class="job" data-job="(\d+)">\s*<td[^>]*><a[^>]*>both</.exec(jobs)![1];
    const before = ok(cli(fx.dataDir, ['snapshot', 'list'])).length;
    const r = await admin.post(`/admin/jobs/${bothId}/run`, { _csrf: adminCsrf });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/admin/queue');
    const known = new Set(first.map((t) => t.id));
    let done: any[] = [];
    for (let i = 0; i < 120 && done.length < 2; i++) {
      const list = await nextTasks();
      done = list.filter((t) => !known.has(t.id) && t.type === 'backup' && t.status === 'completed');
    }
    await reader.cancel();
    assert.deepEqual(done.map((t) => t.account).sort(), [fx.alice.username, fx.bob.username].sort());
    assert.ok(done.every((t) => t.progress.files > 0));
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'list'])).length, before + 2);
  });

  test('removing a destination a job uses is refused; an unused one is removed', async () => {
    const refused = await admin.post(`/admin/destinations/${fx.destinationIds.shown}/remove`, { _csrf: adminCsrf, deleteData: '1' });
    assert.equal(refused.status, 409);
    assert.match(refused.body, /used by job/);
    assert.equal(showDestination('shown').enabled, true);
    const id = showDestination('web-made') && /\/admin\/destinations\/(\d+)">web-made</.exec((await admin.get('/admin/destinations')).body)![1];
    assert.equal((await admin.post(`/admin/destinations/${id}/remove`, { _csrf: adminCsrf })).status, 303);
    assert.equal(cli(fx.dataDir, ['destination', 'show', 'web-made']).code, 1);
    const activity = (await admin.get('/admin/activity')).body;
    for (const a of ['Destination added', 'Visibility changed', 'Destination disabled', 'Backup requested', 'Destination removed']) assert.match(activity, new RegExp(a));
  });

  test('in a browser: dashboard and a queue that updates by itself', async () => {
    const b = await launchBrowser();
    try {
      await b.page.goto(fx.loginUrl('root', 'admin'));
      await b.page.waitForURL(/\/admin$/);
      await b.screenshot('admin-dashboard');
      await b.page.getByRole('link', { name: 'Destinations', exact: true }).click();
      await b.page.locator('td[data-space]', { hasText: 'iB /' }).first().waitFor();
      await b.screenshot('admin-destinations');
      const bobDone = async (): Promise<number> => [...(await admin.get('/admin/queue')).body.matchAll(/<tr data-task="\d+">\s*<td[^>]*><a[^>]*>Backup #\d+<\/a><\/td>\s*<td[^>]*>(\w+)<\/td>\s*<td[^>]*>[^<]*<\/td>\s*<td[^>]*><span class="status status-completed">/g)]
        .filter((m) => m[1] === fx.bob.username).length;
      const before = await bobDone();
      assert.ok(before >= 1);
      await b.page.getByRole('link', { name: 'Jobs' }).click();
      await b.page.locator('tr.job', { hasText: 'both' }).getByRole('button', { name: 'Run now' }).click();
      await b.page.waitForURL(/\/admin\/queue$/);
      // Rows with data-status come from the event stream only: the page itself is not reloaded.
      await b.page.waitForFunction(({ bob, n }) => [...(globalThis as any).document.querySelectorAll('tr[data-status="completed"]')]
        .filter((r: any) => r.textContent.includes('Backup') && r.textContent.includes(bob)).length > n, { bob: fx.bob.username, n: before }, { timeout: 60000 });
      await b.screenshot('admin-queue');
    } finally {
      await b.close();
    }
  });
});
