import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startWebFixture, WebClient, pathParam, type WebFixture } from './support/web-daemon.js';
import { buildTrickyTree, LONG_NAME, NON_UTF8_NAME } from './support/tricky-tree.js';
import { cli, ok } from './support/cli.js';
import { launchBrowser, type TestBrowser } from './support/browser.js';
import os from 'node:os';
import { foldBytes, parseNameQuery, matches } from '../server/engine/catalog/name-match.js';
import { catalogSnapshots, openCatalog, unreadableSnapshots } from '../server/engine/catalog/path-catalog.js';
import { syncCatalog, type LiveSnapshot } from '../server/engine/catalog/catalog-sync.js';
import { changeCounts, pathVersions, searchCatalog } from '../server/engine/catalog/catalog-query.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';
import { SnapshotInputError } from '../server/engine/untrusted-input.js';

/**
 * Search, versions of a path and what changed, on an account with odd names, backed up
 * three times to a visible destination (with changes between) and once to a hidden one.
 */
let fx: WebFixture;
const snaps: string[] = [];
const home = (rel: string | Buffer): Buffer => Buffer.concat([Buffer.from(fx.alice.home + '/'), typeof rel === 'string' ? Buffer.from(rel) : rel]);
const asAlice = (args: string[]): any => ok(cli(fx.dataDir, ['--as-account', fx.alice.username, ...args]));
const chown = (p: Buffer): void => fs.chownSync(p, fx.alice.uid, fx.alice.gid);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  fx = await startWebFixture({ beforeBackup: async (alice) => { buildTrickyTree(alice); } });
  snaps.push(fx.visible.alice);
  // Only in the hidden destination's snapshot: must never be found by alice.
  fs.writeFileSync(home('only-hidden.txt'), 'in the hidden snapshot'); chown(home('only-hidden.txt'));
  ok(cli(fx.dataDir, ['backup', '--job', 'secret', '--wait']));
  fs.rmSync(home('only-hidden.txt'));
  await sleep(1100);
  // Second snapshot: one file changed, one added, one removed.
  fs.writeFileSync(home('notes.txt'), 'notes of alice, edited and longer'); chown(home('notes.txt'));
  fs.writeFileSync(home('public_html/added.html'), 'new page'); chown(home('public_html/added.html'));
  fs.rmSync(home('public_html/blog/second.txt'));
  snaps.push(ok(cli(fx.dataDir, ['backup', '--job', 'both', '--wait'])).results.find((r: { account: string }) => r.account === fx.alice.username).snapshot);
  await sleep(1100);
  // Third: notes.txt changed again.
  fs.writeFileSync(home('notes.txt'), 'third notes'); chown(home('notes.txt'));
  snaps.push(ok(cli(fx.dataDir, ['backup', '--job', 'both', '--wait'])).results.find((r: { account: string }) => r.account === fx.alice.username).snapshot);
});

after(async () => {
  await fx?.stop();
});

describe('name matching on bytes', () => {
  test('a substring without "/" matches names, with "/" whole paths, case folded', () => {
    const q = parseNameQuery('NOTES');
    assert.ok(matches(q, foldBytes('docs/notes.txt')));
    assert.ok(!matches(q, foldBytes('notes/other.txt')), 'a folder name is not the name');
    assert.ok(matches(parseNameQuery('blog/post'), foldBytes('public_html/blog/post.txt')));
  });
  test('globs: * stays in one name, ** crosses folders, ? is one character (one UTF-8 sequence or one stray byte)', () => {
    assert.ok(matches(parseNameQuery('*.txt'), foldBytes('a/b/c.txt')));
    assert.ok(!matches(parseNameQuery('a/*.txt'), foldBytes('a/b/c.txt')));
    assert.ok(matches(parseNameQuery('a/**.txt'), foldBytes('a/b/c.txt')));
    assert.ok(matches(parseNameQuery('caf?.txt'), foldBytes(Buffer.from('café.txt').toString('latin1'))));
    assert.ok(matches(parseNameQuery('caf?.txt'), Buffer.from('caf\xe9.txt', 'latin1').toString('latin1')), 'a latin1 byte is one character too');
    assert.ok(!matches(parseNameQuery('caf?.txt'), foldBytes('caf.txt')));
    assert.throws(() => parseNameQuery('[abc'), /no "\]"/);
    assert.throws(() => parseNameQuery('  / '.trim()), /empty/);
  });
  test('a name with "?" and "*" in it is found by a glob escaping nothing, and by substring', () => {
    assert.ok(matches(parseNameQuery('q[?]mark[*]star*'), foldBytes('public_html/sub dir/q?mark*star [x].txt')));
  });
});

describe('the catalog as snapshots come and go', () => {
  // Each snapshot: path -> content tag (its mtime); '' entries are added by the reader.
  const trees: Record<string, Record<string, number>> = {
    s1: { a: 1, b: 1, c: 1 },
    s2: { a: 1, b: 2, c: 1 },
    s3: { a: 1, b: 3 },
    s4: { a: 1, b: 2, d: 1 },
  };
  const at = (n: number): string => `2026-11-0${n}T00:00:00.000Z`;
  const live = (...ids: string[]): LiveSnapshot[] => ids.map((id) => ({ id, finishedAt: at(Number(id.slice(1))) }));
  const read = async (id: string, onEntry: (e: Entry) => void): Promise<void> => {
    if (id === 'bad') throw new SnapshotInputError('index refused');
    onEntry(makeEntry({ kind: 'd', path: '' }));
    for (const [p, t] of Object.entries(trees[id]!)) onEntry(makeEntry({ kind: 'f', path: p, size: t, mtimeSec: t }));
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const seqs = (db: ReturnType<typeof openCatalog>): number[] => catalogSnapshots(db!).map((s) => s.seq);
  const holding = (db: ReturnType<typeof openCatalog>, p: string): string[] => {
    const ids = new Map(catalogSnapshots(db!).map((s) => [s.seq, s.id]));
    const v = seqs(db);
    return pathVersions(db!, v, p).flatMap((h) => v.slice(h.covered[0], h.covered[1] + 1).map((seq) => `${ids.get(seq)}:${h.version.size}`));
  };

  test('unchanged files are one row; a change opens a new version; a removal closes it', async () => {
    const db = openCatalog(path.join(dir, 'one.sqlite'))!;
    await syncCatalog(db, live('s1', 's2', 's3'), read);
    assert.equal(db.prepare('SELECT COUNT(*) FROM versions v JOIN paths p ON p.id = v.path_id WHERE p.path = ?').pluck().get(Buffer.from('a')), 1);
    assert.deepEqual(holding(db, 'b'), ['s1:1', 's2:2', 's3:3']);
    assert.deepEqual(holding(db, 'c'), ['s1:1', 's2:1']);
    const counts = changeCounts(db, seqs(db));
    assert.equal(counts[0], null);
    assert.deepEqual([counts[2]!.changed, counts[2]!.removed, counts[2]!.added], [1, 1, 0]);
    db.close();
  });

  test('the newest snapshot deleted, then a new one: versions it had closed are open again', async () => {
    const db = openCatalog(path.join(dir, 'two.sqlite'))!;
    await syncCatalog(db, live('s1', 's2', 's3'), read);
    await syncCatalog(db, live('s1', 's2'), read);
    await syncCatalog(db, live('s1', 's2', 's4'), read);
    assert.deepEqual(holding(db, 'b'), ['s1:1', 's2:2', 's4:2'], 'b is in s4 as in s2: one version');
    assert.deepEqual(holding(db, 'c'), ['s1:1', 's2:1']);
    assert.deepEqual(holding(db, 'd'), ['s4:1']);
    const counts = changeCounts(db, seqs(db));
    assert.deepEqual([counts[2]!.added, counts[2]!.changed, counts[2]!.removed], [1, 0, 1], 'against s2, not the deleted s3');
    db.close();
  });

  test('a hidden snapshot between two visible ones: counts are against the visible one before', async () => {
    const db = openCatalog(path.join(dir, 'three.sqlite'))!;
    await syncCatalog(db, live('s1', 's2', 's3'), read);
    const [a, , c] = seqs(db);
    const counts = changeCounts(db, [a!, c!]);
    assert.deepEqual([counts[1]!.changed, counts[1]!.removed], [1, 1], 'b changed (1 to 3) and c removed since s1');
    assert.equal([...searchCatalog(db, [a!, c!], parseNameQuery('b'))].length, 2, 'the hidden s2 version of b is not returned');
    db.close();
  });

  test('an older snapshot turning up rebuilds the catalog in time order; a refused index holds nothing', async () => {
    const db = openCatalog(path.join(dir, 'four.sqlite'))!;
    await syncCatalog(db, live('s2', 's3'), read);
    await syncCatalog(db, [...live('s1', 's2', 's3'), { id: 'bad', finishedAt: at(5) }], read);
    assert.deepEqual(catalogSnapshots(db).map((s) => s.id), ['s1', 's2', 's3']);
    assert.deepEqual(unreadableSnapshots(db), ['bad']);
    assert.deepEqual(holding(db, 'b'), ['s1:1', 's2:2', 's3:3']);
    db.close();
  });
});

describe('search, versions and changes (CLI)', () => {
  test('search finds a file in every snapshot that holds it, grouped by path, newest version first', () => {
    const r = asAlice(['snapshot', 'search', 'notes.txt']);
    assert.equal(r.account, fx.alice.username);
    assert.equal(r.building, null);
    const hit = r.results.find((x: { path: string }) => x.path === 'notes.txt');
    assert.ok(hit, JSON.stringify(r.results.map((x: { path: string }) => x.path)));
    assert.equal(hit.versions.length, 3, 'three different versions in three snapshots');
    assert.deepEqual(hit.versions.map((v: { snapshots: { id: string }[] }) => v.snapshots[0]!.id), [snaps[2], snaps[1], snaps[0]]);
    assert.deepEqual(hit.versions.map((v: { size: number }) => v.size), [11, 33, 14]);
  });

  test('an unchanged file is one version held by all three snapshots', () => {
    const r = asAlice(['snapshot', 'search', 'index.html']);
    const hit = r.results.find((x: { path: string }) => x.path === 'public_html/index.html');
    assert.equal(hit.versions.length, 1);
    assert.deepEqual(hit.versions[0].snapshots.map((s: { id: string }) => s.id), [snaps[2], snaps[1], snaps[0]]);
  });

  test('odd names are found and carried exactly: newline, ? and *, non-UTF-8 bytes, a 255-byte name', () => {
    const newline = asAlice(['snapshot', 'search', 'line.txt']).results.map((x: { path: string }) => x.path);
    assert.ok(newline.includes('public_html/new\nline.txt'), JSON.stringify(newline));
    const q = asAlice(['snapshot', 'search', 'q?mark*']).results.map((x: { path: string }) => x.path);
    assert.deepEqual(q, ['public_html/sub dir/q?mark*star [x].txt'], 'a glob: ? is any one character, * the rest of the name');
    const nonUtf8 = asAlice(['snapshot', 'search', 'utf8']).results.find((x: { pathBase64?: string }) => x.pathBase64 !== undefined);
    assert.ok(nonUtf8, 'the non-UTF-8 name is found');
    assert.ok(Buffer.from(nonUtf8.pathBase64, 'base64').equals(NON_UTF8_NAME));
    const long = asAlice(['snapshot', 'search', 'nnnnnnnnnnnnnnnnnnnn*.txt']).results.map((x: { path: string }) => x.path);
    assert.deepEqual(long, [LONG_NAME]);
  });

  test('search within a folder, and modified since a day', () => {
    const r = asAlice(['snapshot', 'search', '*.txt', '--in', 'public_html/blog']);
    assert.deepEqual(r.results.map((x: { path: string }) => x.path).sort(), ['public_html/blog/post.txt', 'public_html/blog/second.txt']);
    const future = asAlice(['snapshot', 'search', '*.txt', '--modified-since', '2999-01-01']);
    assert.equal(future.total, 0);
    const bad = cli(fx.dataDir, ['--as-account', fx.alice.username, 'snapshot', 'search', 'x', '--from', 'yesterday']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /from: a day as YYYY-MM-DD/);
  });

  test('a removed file is found in the snapshots that still hold it', () => {
    const hit = asAlice(['snapshot', 'search', 'second.txt']).results[0];
    assert.equal(hit.path, 'public_html/blog/second.txt');
    assert.deepEqual(hit.versions[0].snapshots.map((s: { id: string }) => s.id), [snaps[0]]);
  });

  test('versions of a file: each snapshot that holds it, with size and whether it changed', () => {
    const r = asAlice(['snapshot', 'versions', 'notes.txt']);
    assert.deepEqual(r.versions.map((v: { snapshot: { id: string } }) => v.snapshot.id), [snaps[2], snaps[1], snaps[0]]);
    assert.deepEqual(r.versions.map((v: { change: string }) => v.change), ['changed', 'changed', 'new']);
    const same = asAlice(['snapshot', 'versions', 'public_html/index.html']);
    assert.deepEqual(same.versions.map((v: { change: string }) => v.change), ['same', 'same', 'new']);
  });

  test('versions of a folder: what it holds in each snapshot and what changed there', () => {
    const r = asAlice(['snapshot', 'versions', 'public_html/blog']);
    assert.equal(r.versions.length, 3);
    assert.deepEqual(r.versions.map((v: { contents: { entries: number } }) => v.contents.entries), [1, 1, 2]);
    assert.deepEqual(r.versions.map((v: { change: string }) => v.change), ['same', 'changed', 'new']);
    assert.equal(r.versions[1].contents.removed, 1);
  });

  test('what changed: added, changed and removed with sizes, against the snapshot before or any other', () => {
    const r = asAlice(['snapshot', 'diff', snaps[1]!]);
    assert.equal(r.against.id, snaps[0]);
    const by = (kind: string): string[] => r.changes.filter((c: { change: string }) => c.change === kind).map((c: { path: string }) => c.path);
    assert.deepEqual(by('added'), ['public_html/added.html']);
    assert.deepEqual(by('removed'), ['public_html/blog/second.txt']);
    assert.ok(by('changed').includes('notes.txt'));
    const notes = r.changes.find((c: { path: string }) => c.path === 'notes.txt');
    assert.equal(notes.size, 33);
    assert.equal(notes.sizeBefore, 14);
    assert.equal(r.counts.added, 1);
    assert.equal(r.counts.removed, 1);
    const wide = asAlice(['snapshot', 'diff', snaps[2]!, '--against', snaps[0]!]);
    assert.equal(wide.against.id, snaps[0]);
    assert.ok(wide.changes.some((c: { path: string; change: string }) => c.path === 'public_html/added.html' && c.change === 'added'));
    const first = asAlice(['snapshot', 'diff', snaps[0]!]);
    assert.equal(first.against, null, 'the first snapshot has nothing before it');
  });
});

describe('scope', () => {
  test("another account's paths are never listed or counted", () => {
    const r = asAlice(['snapshot', 'search', 'secret']);
    assert.ok(r.results.every((x: { path: string }) => !x.path.includes('secret.txt')), 'bob\'s secret.txt is not alice\'s');
    assert.equal(asAlice(['snapshot', 'search', 'secret.txt']).total, 0);
    const other = cli(fx.dataDir, ['--as-account', fx.alice.username, 'snapshot', 'search', 'secret.txt', '--account', fx.bob.username]);
    assert.notEqual(other.code, 0, 'alice may not name bob\'s account');
    // The provider does see it: the same question is not empty by accident.
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'search', 'secret.txt', '--account', fx.bob.username])).total, 1);
  });

  test("a hidden destination's snapshot never contributes, to search, versions or counts", () => {
    assert.equal(asAlice(['snapshot', 'search', 'only-hidden']).total, 0);
    assert.equal(asAlice(['snapshot', 'versions', 'only-hidden.txt']).versions.length, 0);
    assert.ok(asAlice(['snapshot', 'versions', 'notes.txt']).versions.every((v: { snapshot: { destination: string } }) => v.snapshot.destination === 'shown'));
    // The provider's view holds it, so the catalog has it and the scope is what keeps it out.
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'search', 'only-hidden', '--account', fx.alice.username])).total, 1);
  });

  test('the catalog follows a deleted snapshot: what only it held is no longer found', () => {
    // Kept last: it changes the fixture. The provider deletes the first snapshot.
    ok(cli(fx.dataDir, ['snapshot', 'delete', snaps[0]!, '--destination', 'shown', '--yes']));
    assert.equal(asAlice(['snapshot', 'search', 'second.txt']).total, 0);
    const notes = asAlice(['snapshot', 'versions', 'notes.txt']);
    assert.deepEqual(notes.versions.map((v: { change: string }) => v.change), ['changed', 'new']);
  });
});
