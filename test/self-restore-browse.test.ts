import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { startWebFixture, WebClient, pathParam, type WebFixture } from './support/web-daemon.js';
import { buildBrowseTree, MAIL_COUNT, mailBody, mailName, ODD, tinyPng } from './support/browse-tree.js';
import { fileURLToPath } from 'node:url';
import { cli, ok } from './support/cli.js';
import ejs from 'ejs';
import { displayName } from '../server/app/display-name.js';
import { createI18n } from '../server/i18n/index.js';
import { formatters } from '../server/app/format.js';
import { restoreProgress } from '../server/app/user/browse-routes.js';

let fx: WebFixture;
let alice: WebClient;
let csrf: string;

const snap = (): string => `/snapshots/${fx.destinationIds.shown}/${fx.alice.username}/${fx.visible.alice}`;
const bobSnap = (): string => `/snapshots/${fx.destinationIds.shown}/${fx.bob.username}/${fx.visible.bob}`;
const hiddenSnap = (): string => `/snapshots/${fx.destinationIds.hidden}/${fx.alice.username}/${fx.hidden.alice}`;
const odd = (b: Buffer): string => pathParam(Buffer.concat([Buffer.from('odd/'), b]));

interface Listing { total: number; page: number; pages: number; pageSize: number; entries: number; items: { path: string; name: string; displayPath: string; type: string; size: number | null; files: number; bytes: number; target: string | null }[] }

const json = async (url: string): Promise<Listing> => {
  const r = await alice.get(url, { accept: 'application/json' });
  assert.equal(r.status, 200, r.body.slice(0, 300));
  return JSON.parse(r.body) as Listing;
};

/** A POST whose answer is read as raw bytes, with every header as sent (fetch would hide a broken one). */
function rawPost(url: string, form: Record<string, string | string[]>): Promise<{ status: number; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: Buffer }> {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  const body = p.toString();
  return new Promise((resolve, reject) => {
    const req = http.request(`${fx.base}${url}`, {
      method: 'POST', agent: false,
      headers: { cookie: `tidemark_session=${alice.cookies.get('tidemark_session')}`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitForTask(location: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const s = JSON.parse((await alice.get(`${location}/status`, { accept: 'application/json' })).body) as { status: string; finished: boolean };
    if (s.finished) { assert.equal(s.status, 'completed'); return; }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the task did not finish');
}

before(async () => {
  fx = await startWebFixture({ beforeBackup: async (a) => { buildBrowseTree(a); } });
  alice = new WebClient(fx.base);
  await alice.get(fx.loginUrl(fx.alice.username, 'user'));
  csrf = await alice.csrf();
});

after(async () => {
  await fx?.stop();
});

/** Moves files aside while `fn` runs, then puts them back. */
async function aside<T>(files: string[], fn: () => Promise<T>): Promise<T> {
  const moved = files.filter((f) => fs.existsSync(f));
  for (const f of moved) fs.renameSync(f, `${f}.aside`);
  try { return await fn(); } finally { for (const f of moved) fs.renameSync(`${f}.aside`, f); }
}

// First in the file: nothing has read alice's snapshot into the daemon's memory yet.
describe('folders answered from the path catalog', () => {
  const shownPath = (): string => (ok(cli(fx.dataDir, ['destination', 'list'])) as { name: string; settings: { path: string } }[]).find((d) => d.name === 'shown')!.settings.path;
  const indexFile = (): string => path.join(shownPath(), fx.alice.username, fx.visible.alice, 'index.bin.gz');
  const catalogFiles = (): string[] => ['', '-wal', '-shm'].map((x) => path.join(fx.dataDir, 'catalog', String(fx.destinationIds.shown), `${fx.alice.username}.sqlite${x}`));
  const pages = async (): Promise<unknown[]> => {
    const out: unknown[] = [];
    for (const url of [snap(), `${snap()}?p=${pathParam('odd')}`, `${snap()}?p=${pathParam('links')}`, `${snap()}?n=50&page=2`]) out.push(await json(url));
    for (let p = 1; p <= 40; p += 13) out.push(await json(`${snap()}?p=${pathParam('mail')}&page=${p}`));
    out.push(await json(`${snap()}?p=${pathParam('mail')}&n=500&page=8`));
    return out;
  };

  test('regression: a large folder\'s page read the whole index; the catalog gives the same entries, order and pages, the index not read', async () => {
    assert.ok(fs.existsSync(indexFile()) && fs.existsSync(catalogFiles()[0]!));
    // Without the index, only the catalog can answer.
    const fromCatalog = await aside([indexFile()], async () => {
      const html = await alice.get(`${snap()}?p=${pathParam('mail')}`);
      assert.equal(html.status, 200);
      assert.match(html.body, /4,000 entries/);
      assert.match(html.body, /Page 1 of 40/);
      assert.ok(html.body.includes(mailName(1)) && html.body.includes(mailName(100)) && !html.body.includes(mailName(101)));
      return pages();
    });
    // Without the catalog (a snapshot it does not hold, or one being rebuilt), the index answers, the same.
    const fromIndex = await aside(catalogFiles(), pages);
    assert.deepEqual(fromCatalog, fromIndex);
    const mail = fromCatalog[4] as Listing;
    assert.deepEqual([mail.total, mail.pages, mail.items.length, mail.items[0]!.name], [MAIL_COUNT, 40, 100, mailName(1)]);
  });

  test('another account\'s snapshot and a hidden one stay refused with their catalogs there', async () => {
    assert.ok(fs.existsSync(path.join(fx.dataDir, 'catalog', String(fx.destinationIds.shown), `${fx.bob.username}.sqlite`)));
    for (const base of [bobSnap(), hiddenSnap()]) {
      assert.equal((await alice.get(base)).status, 404, base);
      assert.equal((await alice.get(`${base}?page=2`, { accept: 'application/json' })).status, 404, base);
    }
  });
});

describe('a folder of 4,000 entries', () => {
  test('comes in pages of 100: the first page is small and says how many there are', async () => {
    const r = await alice.get(`${snap()}?p=${pathParam('mail')}`);
    assert.equal(r.status, 200);
    assert.equal((r.body.match(/<tr class="entry /g) ?? []).length, 100);
    assert.match(r.body, /4,000 entries/);
    assert.match(r.body, /Page 1 of 40/);
    assert.ok(r.body.includes(mailName(1)) && r.body.includes(mailName(100)) && !r.body.includes(mailName(101)));
    assert.ok(r.body.length < 150_000, `the first page is ${r.body.length} bytes`);
    const last = await alice.get(`${snap()}?p=${pathParam('mail')}&page=40`);
    assert.ok(last.body.includes(mailName(4000)) && !last.body.includes(mailName(3900)));
    // Past the end: the last page, not an empty one.
    assert.ok((await alice.get(`${snap()}?p=${pathParam('mail')}&page=999`)).body.includes(mailName(4000)));
  });

  test('the JSON form pages the same way, with each entry\'s size', async () => {
    const l = await json(`${snap()}?p=${pathParam('mail')}&page=2`);
    assert.deepEqual([l.total, l.page, l.pages, l.pageSize, l.items.length], [MAIL_COUNT, 2, 40, 100, 100]);
    assert.equal(l.items[0]!.name, mailName(101));
    assert.equal(l.items[0]!.bytes, mailBody(101).length);
    const all = await json(`${snap()}?p=${pathParam('mail')}&format=json&all=1`);
    assert.equal(all.items.length, MAIL_COUNT);
    assert.equal(all.items.reduce((n, i) => n + i.bytes, 0), Array.from({ length: MAIL_COUNT }, (_, i) => i + 11).reduce((a, b) => a + b, 0));
  });

  test('the filter narrows by part of the name, ignoring case, and pages within what matches', async () => {
    const l = await json(`${snap()}?p=${pathParam('mail')}&q=MSG-01`);
    assert.equal(l.total, 100);
    assert.ok(l.items.every((i) => i.name.startsWith('msg-01')));
    const few = await alice.get(`${snap()}?p=${pathParam('mail')}&q=msg-399`);
    assert.equal((few.body.match(/<tr class="entry /g) ?? []).length, 10);
    assert.match(few.body, /10 of 4,000 entries match/);
    const none = await alice.get(`${snap()}?p=${pathParam('mail')}&q=nothing-like-this`);
    assert.match(none.body, /Nothing in this folder matches the filter/);
    // The filter matches the name as shown, escapes included.
    const nl = await json(`${snap()}?p=${pathParam('odd')}&q=${encodeURIComponent('new\\n')}`);
    assert.deepEqual(nl.items.map((i) => i.name), ['new\\nline.txt']);
  });

  test('a folder shows the files and bytes of its whole tree', async () => {
    const root = await json(snap());
    const mail = root.items.find((i) => i.name === 'mail')!;
    assert.equal(mail.type, 'directory');
    assert.equal(mail.files, MAIL_COUNT);
    const html = (await alice.get(snap())).body;
    assert.match(html, /4,000 files, \d/);
  });
});

describe('names as they are', () => {
  test('two names differing only in a newline versus a space, or in one non-UTF-8 byte, never look the same', async () => {
    const html = (await alice.get(`${snap()}?p=${pathParam('odd')}`)).body;
    assert.ok(html.includes('new<span class="esc">\\n</span>line.txt'), 'the newline is shown as \\n');
    assert.ok(html.includes('>new line.txt<'), 'the space as a space');
    assert.ok(html.includes('caf<span class="esc">\\xE9</span>.txt') && html.includes('caf<span class="esc">\\xE8</span>.txt'));
    assert.ok(!html.includes('\ufffd'), 'no replacement character anywhere');
    const l = await json(`${snap()}?p=${pathParam('odd')}`);
    const names = l.items.map((i) => i.name);
    assert.equal(new Set(names).size, names.length, `distinct: ${names.join(' | ')}`);
    for (const b of Object.values(ODD)) assert.ok(names.includes(displayName(b)), displayName(b));
    assert.ok(names.includes('new\\nline.txt') && names.includes('new line.txt') && names.includes('caf\\xE9.txt') && names.includes('caf\\xE8.txt'));
    // The exact bytes travel beside the shown name.
    const nl = l.items.find((i) => i.name === 'new\\nline.txt')!;
    assert.deepEqual(Buffer.from(nl.path, 'base64url'), Buffer.concat([Buffer.from('odd/'), ODD.newline]));
  });

  test('a 255-byte name is listed whole, and a long name wraps instead of stretching the page', async () => {
    const l = await json(`${snap()}?p=${pathParam('odd')}`);
    assert.ok(l.items.some((i) => i.name === 'L'.repeat(251) + '.txt'));
    assert.ok(l.items.some((i) => i.name === '\\xFF' + 'o'.repeat(250) + '.txt'));
    const css = (await alice.get('/static/tidemark.css')).body;
    assert.match(css, /\.name[^{]*\{[^}]*overflow-wrap: anywhere/);
  });

  test('symlinks and hard links are labelled with their target or shared size, never "0 B"', async () => {
    const l = await json(`${snap()}?p=${pathParam('links')}`);
    const by = (n: string) => l.items.find((i) => i.name === n)!;
    assert.equal(by('pointer').type, 'symlink');
    assert.equal(by('pointer').target, 'original.bin');
    assert.equal(by('outside').target, '/etc/passwd');
    assert.equal(by('second-name.bin').type, 'hardlink');
    assert.equal(by('second-name.bin').target, 'links/original.bin');
    assert.equal(by('second-name.bin').bytes, 5000);
    const html = (await alice.get(`${snap()}?p=${pathParam('links')}`)).body;
    const row = (name: string): string => html.split('<tr class="entry ').find((r) => r.includes(`>${name}<`))!;
    assert.match(row('pointer'), /Symbolic link → <span class="target">original\.bin<\/span>/);
    assert.match(row('second-name.bin'), /Hard link: the same file as <span class="target">links\/original\.bin<\/span>/);
    assert.match(row('second-name.bin'), /4\.9 KiB \(shared\)/);
    for (const n of ['pointer', 'outside', 'second-name.bin']) assert.doesNotMatch(row(n), />0 B</, n);
  });
});

describe('downloads', () => {
  test('a single file downloads as itself: exact bytes, its name, its length', async () => {
    const r = await rawPost(`${snap()}/download`, { _csrf: csrf, path: pathParam(`mail/${mailName(3)}`) });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.body.toString(), mailBody(3));
    assert.equal(r.headers['content-length'], String(mailBody(3).length));
    assert.equal(r.headers['content-disposition'], `attachment; filename="${mailName(3)}"; filename*=UTF-8''${mailName(3)}`);
  });

  test('regression: a name with CR, LF, quotes and a backslash cannot break the header', async () => {
    const r = await rawPost(`${snap()}/download`, { _csrf: csrf, path: odd(ODD.headerBreaker) });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, Buffer.concat([Buffer.from('content of '), ODD.headerBreaker]));
    assert.equal(r.headers['set-cookie'], undefined, 'no header was injected');
    const cd = r.headers['content-disposition'] as string;
    assert.doesNotMatch(cd, /[\r\n]/);
    const fallback = /filename="([^"]*)"/.exec(cd)![1]!;
    assert.doesNotMatch(fallback, /["\\]/);
    // filename* carries the name as shown (its CR and LF escaped), percent-encoded.
    const star = /filename\*=UTF-8''(\S+)$/.exec(cd)![1]!;
    assert.equal(decodeURIComponent(star), displayName(ODD.headerBreaker));
    assert.equal(r.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-disposition').length, 1);
  });

  test('a non-UTF-8 name downloads under its shown form; a UTF-8 one exactly', async () => {
    const r = await rawPost(`${snap()}/download`, { _csrf: csrf, path: odd(ODD.latin1E9) });
    assert.equal(decodeURIComponent(/filename\*=UTF-8''(\S+)$/.exec(r.headers['content-disposition'] as string)![1]!), 'caf\\xE9.txt');
    assert.deepEqual(r.body, Buffer.concat([Buffer.from('content of '), ODD.latin1E9]));
    const q = await rawPost(`${snap()}/download`, { _csrf: csrf, path: odd(ODD.question) });
    assert.equal(decodeURIComponent(/filename\*=UTF-8''(\S+)$/.exec(q.headers['content-disposition'] as string)![1]!), 'q?mark*star.txt');
  });

  test('a hard link downloads with the content it shares', async () => {
    const r = await rawPost(`${snap()}/download`, { _csrf: csrf, path: pathParam('links/second-name.bin') });
    assert.deepEqual(r.body, Buffer.alloc(5000, 7));
  });

  test('a folder downloads as one .tar.gz named after it; several items as one archive, chosen across folders', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-browse-dl-'));
    try {
      const folder = await rawPost(`${snap()}/download`, { _csrf: csrf, path: pathParam('links') });
      assert.equal(folder.headers['content-type'], 'application/gzip');
      assert.match(folder.headers['content-disposition'] as string, /filename="links\.tar\.gz"/);
      const several = await rawPost(`${snap()}/download`, {
        _csrf: csrf, path: [pathParam(`mail/${mailName(1)}`), pathParam(`mail/${mailName(4000)}`), odd(ODD.newline)],
      });
      fs.writeFileSync(path.join(dir, 'a.tar.gz'), several.body);
      execFileSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir });
      assert.equal(fs.readFileSync(path.join(dir, 'files/mail', mailName(4000)), 'utf8'), mailBody(4000));
      assert.equal(fs.readFileSync(path.join(dir, 'files/mail', mailName(1)), 'utf8'), mailBody(1));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'files/odd'), { encoding: 'buffer' }), [ODD.newline]);
      assert.equal(fs.readdirSync(path.join(dir, 'files/mail')).length, 2, 'only what was chosen');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('previews', () => {
  const preview = (rel: string) => alice.get(`${snap()}/preview?p=${pathParam(rel)}`);
  const image = (rel: string) => alice.get(`${snap()}/preview-image?p=${pathParam(rel)}`);

  test('text is shown as text, escaped in the page, under the page\'s strict policy', async () => {
    const r = await preview('previews/script.txt');
    assert.equal(r.status, 200);
    assert.ok(r.body.includes('&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;'), r.body.slice(r.body.indexOf('<pre'), r.body.indexOf('</pre>')));
    assert.ok(!r.body.includes('<script>alert'));
    assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });

  test('HTML and SVG are never rendered: their source is shown as text, and they are refused as images', async () => {
    for (const f of ['previews/page.html', 'previews/drawing.svg', 'previews/fake.png']) {
      const r = await preview(f);
      assert.equal(r.status, 200, f);
      assert.ok(!/<script>alert|onerror="alert|onload="alert/.test(r.body), f);
      assert.match(r.body, /id="preview-markup"/, f);
      assert.ok(!r.body.includes('preview-image'), `${f}: no image is offered`);
      const img = await image(f);
      assert.equal(img.status, 415, f);
      assert.ok(!img.body.includes('<svg') && !img.body.includes('alert('), `${f}: only the refusal is sent`);
    }
  });

  test('a PNG (by its bytes, not its name) is sent as an image that can run nothing', async () => {
    const page = await preview('previews/pixel.png');
    assert.match(page.body, /<img src="[^"]*preview-image\?p=/);
    const r = await fetch(`${fx.base}${snap()}/preview-image?p=${pathParam('previews/pixel.png')}`, { headers: { cookie: `tidemark_session=${alice.cookies.get('tidemark_session')}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'; sandbox/);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), tinyPng());
  });

  test('a long text shows its start only; a binary file has no preview', async () => {
    const r = await preview('previews/long.log');
    assert.match(r.body, /id="preview-truncated"/);
    assert.ok(r.body.length < 120_000);
    assert.match((await preview('previews/binary.bin')).body, /id="preview-none"/);
    assert.equal((await preview('previews')).status, 404, 'a folder has no preview');
  });
});

describe('forms', () => {
  test('every problem of a form is reported at once, in the page\'s language, on the folder it came from, with the choice kept', async () => {
    const de = new WebClient(fx.base);
    de.cookies.set('tidemark_session', alice.cookies.get('tidemark_session')!);
    de.cookies.set('tidemark_lang', 'de');
    const r = await de.post(`${snap()}/restore`, {
      _csrf: csrf, mode: 'folder', review: '1', dir: pathParam('mail'), page: '2',
      path: [pathParam(`mail/${mailName(150)}`), pathParam('odd/no-such-file'), odd(ODD.newline)], database: 'nope_db',
    });
    assert.equal(r.status, 404);
    assert.match(r.body, /<html lang="de"/);
    assert.match(r.body, /Nicht in dieser Sicherung: odd\/no-such-file/);
    assert.match(r.body, /Die Datenbank nope_db ist nicht in dieser Sicherung/);
    // Back on the same folder and page, the choice still ticked, the one from another folder kept.
    assert.match(r.body, /Seite 2 von 40/);
    assert.match(r.body, new RegExp(`value="${pathParam(`mail/${mailName(150)}`)}"[^>]*checked`));
    assert.ok(r.body.includes(`name="path" value="${odd(ODD.newline)}" data-kept`));
    assert.doesNotMatch(r.body, /expected|received|--[a-z]/i, 'no schema message nor CLI flag');
    const empty = await de.post(`${snap()}/restore`, { _csrf: csrf, mode: 'place', review: '1' });
    assert.equal(empty.status, 400);
    assert.match(empty.body, /Wählen Sie zuerst mindestens eine Datei/);
  });

  test('before an in-place restore the page says what will be overwritten; nothing happens until confirmed', async () => {
    fs.writeFileSync(path.join(fx.alice.home, 'mail', mailName(7)), 'changed since');
    const r = await alice.post(`${snap()}/restore`, { _csrf: csrf, mode: 'place', review: '1', dir: pathParam('mail'), path: [pathParam(`mail/${mailName(7)}`), pathParam('links')] });
    assert.equal(r.status, 200);
    assert.match(r.body, /Restore into place\?/);
    assert.ok(r.body.includes(`mail/${mailName(7)}`) && r.body.includes('>links/</span>'));
    assert.match(r.body, /3 files \([\d.]+ KiB\) will be written over the current copies/);
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'mail', mailName(7)), 'utf8'), 'changed since');
    const yes = await alice.post(`${snap()}/restore`, { _csrf: csrf, mode: 'place', confirm: 'yes', path: pathParam(`mail/${mailName(7)}`) });
    assert.equal(yes.status, 303);
    await waitForTask(yes.headers.get('location')!);
    assert.equal(fs.readFileSync(path.join(fx.alice.home, 'mail', mailName(7)), 'utf8'), mailBody(7));
  });

  test('a restore of items chosen across pages and folders brings back exactly those', async () => {
    const r = await alice.post(`${snap()}/restore`, { _csrf: csrf, mode: 'folder', path: [pathParam(`mail/${mailName(2)}`), pathParam(`mail/${mailName(3999)}`), odd(ODD.latin1E8)] });
    assert.equal(r.status, 303);
    const task = r.headers.get('location')!;
    await waitForTask(task);
    const folder = fs.readdirSync(fx.alice.home).find((n) => n.startsWith('tidemark-restore-'))!;
    assert.deepEqual(fs.readdirSync(path.join(fx.alice.home, folder, 'mail')).sort(), [mailName(2), mailName(3999)]);
    assert.deepEqual(fs.readdirSync(path.join(fx.alice.home, folder, 'odd'), { encoding: 'buffer' }), [ODD.latin1E8]);
    const p = JSON.parse((await alice.get(`${task}/progress`, { accept: 'application/json' })).body) as { finished: boolean; files: number; totalFiles: number; percent: number };
    assert.deepEqual([p.finished, p.files, p.totalFiles, p.percent], [true, 3, 3, 100]);
  });
});

describe('scope', () => {
  test('another account\'s snapshot and a hidden one are never reachable through browse, download, preview or progress', async () => {
    for (const base of [bobSnap(), hiddenSnap()]) {
      assert.equal((await alice.get(`${base}?p=${pathParam('')}`)).status, 404, base);
      assert.equal((await alice.get(base, { accept: 'application/json' })).status, 404, base);
      assert.equal((await alice.get(`${base}/preview?p=${pathParam('secret.txt')}`)).status, 404, base);
      assert.equal((await alice.get(`${base}/preview-image?p=${pathParam('secret.txt')}`)).status, 404, base);
      assert.equal((await alice.post(`${base}/download`, { _csrf: csrf, path: pathParam('secret.txt') })).status, 404, base);
      assert.equal((await alice.post(`${base}/restore`, { _csrf: csrf, mode: 'folder', path: pathParam('secret.txt') })).status, 404, base);
    }
    const bob = new WebClient(fx.base);
    await bob.get(fx.loginUrl(fx.bob.username, 'user'));
    const bobCsrf = await bob.csrf();
    const r = await bob.post(`${bobSnap()}/restore`, { _csrf: bobCsrf, mode: 'folder', path: pathParam('secret.txt') });
    assert.equal(r.status, 303);
    const id = r.headers.get('location')!;
    assert.equal((await alice.get(`${id}/progress`, { accept: 'application/json' })).status, 404);
    // A path of another home cannot be named: `..` is refused, an absolute path stays inside alice's snapshot.
    assert.equal((await alice.get(`${snap()}/preview?p=${pathParam(`../${fx.bob.username}/secret.txt`)}`)).status, 403);
    assert.equal((await alice.get(`${snap()}/preview?p=${pathParam('/etc/passwd')}`)).status, 404);
  });
});

describe('the restore page\'s progress and result', () => {
  const VIEW = fileURLToPath(new URL('../../views/user/restore-progress.ejs', import.meta.url));
  const result = async (lng: string, files: number, directories: number, links: number): Promise<string> => {
    const i18n = await createI18n();
    const html = await ejs.renderFile(VIEW, {
      t: i18n.getFixedT(lng), fmt: formatters(lng),
      task: { id: 1, type: 'restore', status: 'completed', finished: true, files: { files, directories, links, bytes: 2048, warningCount: 0 } },
    });
    return /id="restore-result">([^<]*)</.exec(html)![1]!;
  };

  test('the result counts in each language\'s plural forms', async () => {
    assert.equal(await result('en', 1, 0, 2), 'Restored 1 file, 0 folders and 2 links, 2 KiB in all.');
    assert.equal(await result('en', 2, 1, 1), 'Restored 2 files, 1 folder and 1 link, 2 KiB in all.');
    assert.equal(await result('de', 1, 3, 1), 'Wiederhergestellt: 1 Datei, 3 Ordner und 1 Link, insgesamt 2 KiB.');
    assert.equal(await result('de', 5, 1, 0), 'Wiederhergestellt: 5 Dateien, 1 Ordner und 0 Links, insgesamt 2 KiB.');
    // French: 0 and 1 are singular; a million takes "de".
    assert.equal(await result('fr', 0, 1, 2), 'Restauré : 0 fichier, 1 dossier et 2 liens, 2 Kio au total.'.replace('Kio', 'KiB'));
    assert.equal(await result('fr', 1_000_000, 2, 0), `Restauré : ${new Intl.NumberFormat('fr', { maximumFractionDigits: 1 }).format(1_000_000)} de fichiers, 2 dossiers et 0 lien, 2 KiB au total.`);
  });

  test('progress gives files and bytes done, percent and time left', () => {
    const startedAt = new Date(Date.now() - 10_000).toISOString();
    const p = restoreProgress({ id: 3, status: 'running', startedAt, progress: { files: 10, totalFiles: 40, bytes: 25 << 20, totalBytes: 100 << 20 } });
    assert.deepEqual([p.files, p.totalFiles, p.percent, p.finished], [10, 40, 25, false]);
    assert.ok(p.secondsLeft! >= 29 && p.secondsLeft! <= 31, String(p.secondsLeft));
    const early = restoreProgress({ id: 3, status: 'queued', startedAt: null, progress: {} });
    assert.deepEqual([early.percent, early.secondsLeft], [null, null]);
  });
});
