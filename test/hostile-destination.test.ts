/**
 * A destination is untrusted input. Each test plays whoever controls a Local destination
 * folder: it writes a crafted snapshot straight into the folder, has it imported by
 * `destination reindex`, then restores, downloads and browses it as root and as the
 * account, and checks that nothing is read or written outside the account's home and that
 * nothing is loaded without bound.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { encodeEntry, makeEntry, noticeRecord, type Entry } from '../server/engine/format/entry.js';
import { layout } from '../server/engine/snapshot-layout.js';
import { selectEntries } from '../server/engine/selection.js';
import { spawnAccountWorker } from '../server/engine/worker/spawn-worker.js';
import type { Account } from '../server/panels/types.js';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';

let homeRoot: string;
let alice: TestAccount;
let dataDir: string;
let destDir: string;
/** A folder outside the home that alice may write: what a restore that escaped would reach. */
let outside: string;
const cleanups: string[] = [];

let seq = 0;
const newId = (): string => `20250101T${String(100000 + seq++).slice(1).padStart(6, '0')}Z-${crypto.randomBytes(2).toString('hex')}`;

interface Planted { entry: Partial<Entry> & Pick<Entry, 'kind' | 'path'>; data?: Buffer }

function manifestFor(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    format: 'tidemark-snapshot', version: 1, id, account: alice.username, structure: 'incremental', status: 'completed',
    startedAt: now, finishedAt: now, items: ['files'], previous: null,
    stats: { files: 1, directories: 1, links: 0, bytes: 1, storedBytes: 1, skipped: 0, excluded: 0 }, skipped: [],
    databases: [], grants: null, accountInfo: { uid: alice.uid, gid: alice.gid, home: alice.home, owner: 'root', domains: [] }, job: null,
    ...extra,
  };
}

/** Writes an incremental snapshot into the destination folder, as a hostile controller of it would. */
function plant(entries: Planted[], opts: { id?: string; index?: Buffer; manifest?: Record<string, unknown> } = {}): string {
  const id = opts.id ?? newId();
  const dir = path.join(destDir, alice.username, id);
  fs.mkdirSync(dir, { recursive: true });
  let blob = 0;
  const records: Buffer[] = [];
  for (const p of entries) {
    const e = makeEntry({ mode: 0o644, uid: alice.uid, gid: alice.gid, mtimeSec: 1_700_000_000, ...p.entry });
    if (p.data) {
      if (p.entry.dataRef === undefined) e.dataRef = blob++;
      if (p.entry.size === undefined) e.size = p.data.length;
      const file = path.join(dir, layout.blob(e.dataRef));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, p.data);
    }
    records.push(encodeEntry(e));
  }
  fs.writeFileSync(path.join(dir, layout.index), opts.index ?? zlib.gzipSync(Buffer.concat(records)));
  fs.writeFileSync(path.join(dir, layout.manifest), JSON.stringify(opts.manifest ?? manifestFor(id)));
  return id;
}

const root = (): Planted => ({ entry: { kind: 'd', path: '', mode: 0o711 } });
const reindex = (): any => ok(cli(dataDir, ['destination', 'reindex', 'disk']));
const as = (who: 'root' | 'account'): string[] => (who === 'account' ? ['--as-account', alice.username] : []);
const restore = (who: 'root' | 'account', id: string, extra: string[] = []): CliResult =>
  cli(dataDir, [...as(who), 'restore', id, '--into-folder', '--wait', ...extra]);
const download = (who: 'root' | 'account', id: string, out: string, extra: string[] = []): CliResult =>
  cli(dataDir, [...as(who), 'download', id, '--out', out, ...extra]);
const browse = (who: 'root' | 'account', id: string): CliResult => cli(dataDir, [...as(who), 'snapshot', 'files', id]);

function refused(r: CliResult, pattern: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: expected a refusal, got ${r.stdout}`);
  assert.match(r.json?.error ?? r.stderr, pattern, what);
}

/** Nothing new in the folder outside the home, no restore folder left with content from the attack. */
function assertNothingOutside(): void {
  assert.deepEqual(fs.readdirSync(outside), ['canary'], 'nothing was written outside the home');
  assert.equal(fs.readFileSync(path.join(outside, 'canary'), 'utf8'), 'untouched');
}

function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try { return fn(); } finally {
    for (const [k, v] of Object.entries(old)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

before(() => {
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot);
  asAccount(alice, `printf 'mine' > existing.txt`);
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-outside-'));
  fs.writeFileSync(path.join(outside, 'canary'), 'untouched');
  fs.chownSync(outside, alice.uid, alice.gid);
  fs.chmodSync(outside, 0o777);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  cleanups.push(homeRoot, outside, dataDir, destDir);
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  // A real backup first: the destination is a Tidemark one, with tidemark.json at its root.
  ok(cli(dataDir, ['job', 'add', '--name', 'real', '--destination', 'disk', '--structure', 'incremental', '--accounts', alice.username, '--items', 'files']));
  ok(cli(dataDir, ['backup', '--job', 'real', '--wait']));
});

after(() => {
  if (alice) removeAccount(alice);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
});

describe('a crafted index is refused before anything is restored, downloaded or listed', () => {
  const file = (p: string, data = 'pwned'): Planted => ({ entry: { kind: 'f', path: p }, data: Buffer.from(data) });
  const attacks: { flaw: string; entries: () => Planted[]; index?: () => Buffer; why: RegExp }[] = [
    { flaw: 'an absolute path in the index', entries: () => [root(), file(`${outside}/abs`)], why: /absolute/ },
    { flaw: 'a ".." path in the index', entries: () => [root(), { entry: { kind: 'd', path: 'a' } }, file(`a/../../../../../..${outside}/dotdot`)], why: /"\.\."/ },
    {
      flaw: 'a symlink then a file under it',
      entries: () => [root(), { entry: { kind: 'l', path: 'esc', link: outside } }, file('esc/through-link')],
      why: /not inside a directory listed before it/,
    },
    { flaw: 'a hard link to /etc/shadow', entries: () => [root(), { entry: { kind: 'h', path: 'shadow', link: '/etc/shadow' } }], why: /hard link/ },
    { flaw: 'a hard link up and out to /etc/shadow', entries: () => [root(), { entry: { kind: 'h', path: 'shadow', link: '../../../../../../etc/shadow' } }], why: /hard link/ },
    { flaw: 'a hard link to a home file the snapshot does not hold', entries: () => [root(), { entry: { kind: 'h', path: 'mine', link: 'existing.txt' } }], why: /hard link/ },
    { flaw: 'a negative size', entries: () => [root(), { entry: { kind: 'f', path: 'neg', size: -1 } }], why: /invalid size/ },
    { flaw: 'an absurd size', entries: () => [root(), { entry: { kind: 'f', path: 'huge', size: 2 ** 60, dataRef: 0 } }], why: /invalid size/ },
    { flaw: 'an absurd content offset', entries: () => [root(), { entry: { kind: 'f', path: 'far', size: 3, dataRef: 1e300 } }], why: /content offset/ },
    { flaw: 'a negative content offset', entries: () => [root(), { entry: { kind: 'f', path: 'before', size: 3, dataRef: -7 } }], why: /content offset/ },
    { flaw: 'file-type bits in the mode (a device)', entries: () => [root(), { entry: { kind: 'f', path: 'dev', mode: 0o020666 } }], why: /invalid mode/ },
    { flaw: 'a path listed twice', entries: () => [root(), file('twice', 'a'), file('twice', 'b')], why: /listed twice/ },
    {
      flaw: 'an entry type that is a device',
      entries: () => [root()],
      index: () => zlib.gzipSync(Buffer.concat([encodeEntry(makeEntry({ kind: 'd', path: '' })), encodeEntry(makeEntry({ kind: 'c' as Entry['kind'], path: 'tty' }))])),
      why: /corrupt entry record/,
    },
    {
      flaw: 'a notice record in the index',
      entries: () => [root()],
      index: () => zlib.gzipSync(Buffer.concat([encodeEntry(makeEntry({ kind: 'd', path: '' })), noticeRecord('S', 'x', 'y')])),
      why: /not an entry/,
    },
    { flaw: 'a truncated index', entries: () => [root()], index: () => zlib.gzipSync(encodeEntry(makeEntry({ kind: 'd', path: '' }))).subarray(0, 20), why: /unexpected end of file: refused as damaged/ },
  ];

  for (const a of attacks) {
    test(`regression: ${a.flaw} is refused by restore, download and browse, as root and as the account`, () => {
      const id = plant(a.entries(), a.index ? { index: a.index() } : {});
      const r = reindex();
      assert.ok(!r.problems.some((p: any) => p.path.includes(id)), 'the manifest itself is fine: imported');
      for (const who of ['root', 'account'] as const) {
        const pattern = new RegExp(`snapshot ${alice.username}/${id}: index\\.bin\\.gz: .*${a.why.source}`);
        refused(restore(who, id), pattern, `restore as ${who}`);
        const out = path.join(outside, `dl-${who}.tar.gz`);
        refused(download(who, id, out), pattern, `download as ${who}`);
        assert.ok(!fs.existsSync(out), 'no archive written');
        refused(browse(who, id), pattern, `browse as ${who}`);
      }
      assertNothingOutside();
      assert.equal(fs.readFileSync(path.join(alice.home, 'existing.txt'), 'utf8'), 'mine');
      assert.deepEqual(fs.readdirSync(alice.home).filter((n) => n.startsWith('tidemark-restore-') && fs.readdirSync(path.join(alice.home, n)).length > 0), []);
    });
  }
});

describe('files planted on the destination in place of a snapshot\'s own', () => {
  test('regression: a content blob that is a symlink to /etc/shadow is never read by root', () => {
    const id = plant([root(), { entry: { kind: 'f', path: 'stolen', size: 10, dataRef: 0 } }]);
    const blob = path.join(destDir, alice.username, id, layout.blob(0));
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.symlinkSync('/etc/shadow', blob);
    reindex();
    for (const who of ['root', 'account'] as const) {
      refused(restore(who, id), /not a regular file on the destination \(link\)/, `restore as ${who}`);
      const out = path.join(outside, `dl-${who}.tar.gz`);
      refused(download(who, id, out), /not a regular file on the destination \(link\)/, `download as ${who}`);
      assert.ok(!fs.existsSync(out));
    }
    const shadow = fs.readFileSync('/etc/shadow');
    for (const n of fs.readdirSync(alice.home).filter((x) => x.startsWith('tidemark-restore-'))) {
      const f = path.join(alice.home, n, 'stolen');
      if (fs.existsSync(f)) assert.ok(!shadow.subarray(0, 10).equals(fs.readFileSync(f)), 'no byte of /etc/shadow reached the home');
    }
  });

  test('regression: a fifo planted as manifest.json or index.bin.gz never hangs reindex or restore', async () => {
    const id = plant([root(), { entry: { kind: 'f', path: 'x' }, data: Buffer.from('x') }]);
    reindex();
    const index = path.join(destDir, alice.username, id, layout.index);
    fs.rmSync(index);
    execFileSync('mkfifo', [index]);
    const timed = async (args: string[]): Promise<CliResult> => {
      const run = cliAsync(dataDir, args);
      const timer = setTimeout(() => run.child.kill('SIGKILL'), 60_000);
      try { return await run.result; } finally { clearTimeout(timer); }
    };
    refused(await timed([...as('account'), 'restore', id, '--into-folder', '--wait']), /index\.bin\.gz is not a regular file on the destination \(other\)/, 'restore');
    const id2 = plant([root()]);
    const manifest = path.join(destDir, alice.username, id2, layout.manifest);
    fs.rmSync(manifest);
    execFileSync('mkfifo', [manifest]);
    const r = await timed(['destination', 'reindex', 'disk']);
    assert.equal(r.code, 0, r.stderr);
    const problem = r.json.problems.find((p: any) => p.path === `${alice.username}/${id2}/manifest.json`);
    assert.match(problem?.error ?? '', /not a regular file/);
    fs.rmSync(path.join(destDir, alice.username, id2), { recursive: true });
  });

  test('regression: an index that claims 10^12 entries (more than the limit) is refused, not loaded into memory', () => {
    const entries: Planted[] = [root()];
    for (let i = 0; i < 5000; i++) entries.push({ entry: { kind: 'd', path: `d${i}` } });
    const id = newId();
    plant(entries, { id, manifest: manifestFor(id, { stats: { files: 1e12, directories: 1e12, links: 0, bytes: 1e12, storedBytes: 1, skipped: 0, excluded: 0 } }) });
    reindex();
    withEnv({ TIDEMARK_MAX_INDEX_ENTRIES: '1000' }, () => {
      for (const who of ['root', 'account'] as const) {
        refused(restore(who, id), /index\.bin\.gz: more than 1000 entries: refused/, `restore as ${who}`);
        refused(browse(who, id), /more than 1000 entries/, `browse as ${who}`);
      }
    });
    assertNothingOutside();
  });

  test('regression: a gzip bomb as the index is stopped at the inflated-bytes limit', () => {
    const records: Buffer[] = [encodeEntry(makeEntry({ kind: 'd', path: '' }))];
    for (let i = 0; i < 40_000; i++) records.push(encodeEntry(makeEntry({ kind: 'd', path: `${'a'.repeat(200)}${i}`, mode: 0o755 })));
    const raw = Buffer.concat(records);
    const index = zlib.gzipSync(raw, { level: 9 });
    assert.ok(raw.length > 20 * index.length, `a bomb: ${raw.length} bytes from ${index.length}`);
    const id = plant([], { index });
    reindex();
    withEnv({ TIDEMARK_MAX_INDEX_BYTES: String(1 << 20) }, () => {
      refused(restore('account', id), /more than 1048576 bytes once inflated: refused/, 'restore');
      refused(browse('root', id), /more than 1048576 bytes once inflated/, 'browse');
    });
  });

  test('regression: a huge manifest is refused by reindex with an error naming the file, never loaded whole', () => {
    const id = newId();
    plant([root()], { id, manifest: manifestFor(id, { padding: 'x'.repeat(17 << 20) }) });
    const r = reindex();
    const problem = r.problems.find((p: any) => p.path === `${alice.username}/${id}/manifest.json`);
    assert.match(problem?.error ?? '', /manifest\.json is larger than 16777216 bytes: refused/);
    fs.rmSync(path.join(destDir, alice.username, id), { recursive: true });
  });

  test('regression: a manifest that points a database dump at another file is refused (reindex, download)', () => {
    const db = `${alice.username}_shop`;
    const hostile = (id: string): Record<string, unknown> => manifestFor(id, { items: ['files', 'databases'], databases: [{ name: db, file: '../../../../../../etc/shadow', bytes: 100 }] });
    const id = newId();
    plant([root()], { id, manifest: hostile(id) });
    const problem = reindex().problems.find((p: any) => p.path === `${alice.username}/${id}/manifest.json`);
    assert.match(problem?.error ?? '', /databases\.0\.file: file must be databases\/<name>\.sql\.gz/);
    // Imported while it was sound, then changed on the destination: read again at use, and refused.
    const id2 = newId();
    plant([root()], { id: id2, manifest: manifestFor(id2, { items: ['files', 'databases'], databases: [{ name: db, file: layout.database(db), bytes: 4 }] }) });
    reindex();
    fs.writeFileSync(path.join(destDir, alice.username, id2, layout.manifest), JSON.stringify(hostile(id2)));
    const out = path.join(outside, 'db.tar.gz');
    for (const who of ['root', 'account'] as const) {
      refused(download(who, id2, out, ['--database', db]), /invalid manifest: databases\.0\.file/, `download as ${who}`);
      assert.ok(!fs.existsSync(out));
    }
    fs.rmSync(path.join(destDir, alice.username, id), { recursive: true });
    fs.rmSync(path.join(destDir, alice.username, id2), { recursive: true });
    reindex();
  });

  test('a database dump longer than its manifest says adds nothing to a download', () => {
    const db = `${alice.username}_shop`;
    const id = newId();
    plant([root()], { id, manifest: manifestFor(id, { items: ['databases'], databases: [{ name: db, file: layout.database(db), bytes: 4 }] }) });
    const dump = path.join(destDir, alice.username, id, layout.database(db));
    fs.mkdirSync(path.dirname(dump), { recursive: true });
    fs.writeFileSync(dump, Buffer.concat([Buffer.from('1234'), Buffer.alloc(512, 0x41)]));
    reindex();
    const out = path.join(outside, 'long.tar.gz');
    refused(download('account', id, out, ['--database', db]), /has more bytes, the manifest says 4/, 'download');
    assert.ok(!fs.existsSync(out));
    fs.rmSync(path.join(destDir, alice.username, id), { recursive: true });
    reindex();
  });

  test('a sound crafted snapshot still restores: the checks refuse only what is hostile', () => {
    const id = plant([root(), { entry: { kind: 'd', path: 'site' } }, { entry: { kind: 'f', path: 'site/a.txt' }, data: Buffer.from('hello') },
      { entry: { kind: 'h', path: 'site/b.txt', link: 'site/a.txt' } }, { entry: { kind: 'l', path: 'site/up', link: '../existing.txt' } }]);
    reindex();
    const r = ok(restore('account', id));
    assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
    const folder = path.join(alice.home, r.folder);
    assert.equal(fs.readFileSync(path.join(folder, 'site/a.txt'), 'utf8'), 'hello');
    assert.equal(fs.statSync(path.join(folder, 'site/b.txt')).ino, fs.statSync(path.join(folder, 'site/a.txt')).ino);
    assert.equal(fs.readlinkSync(path.join(folder, 'site/up')), '../existing.txt');
    fs.rmSync(folder, { recursive: true });
  });
});

describe('the restore writer (as the account) on a stream that skipped every check of the root side', () => {
  async function writeStream(entries: Planted[], intoFolder: string): Promise<{ warnings: { path: string; message: string }[]; warningCount: number }> {
    const account = { username: alice.username, uid: alice.uid, gid: alice.gid, home: alice.home } as Account;
    const worker = spawnAccountWorker(account, { mode: 'restore', intoFolder });
    const chunks: Buffer[] = [];
    worker.output.on('data', (c: Buffer) => chunks.push(c));
    for (const p of entries) {
      const e = makeEntry({ mode: 0o644, uid: alice.uid, gid: alice.gid, ...p.entry, ...(p.data ? { size: p.data.length } : {}) });
      worker.input.write(encodeEntry(e, p.data !== undefined));
      if (p.data) worker.input.write(p.data);
    }
    worker.input.end();
    await worker.done;
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  test('regression: the restore writer makes hard links only to files it wrote in this restore', async () => {
    // Into place (as a restore without --into-folder): the home's own files are right there.
    const tag = `w${crypto.randomBytes(3).toString('hex')}`;
    const r = await writeStream([
      { entry: { kind: 'd', path: '', mode: 0o711 } },
      { entry: { kind: 'h', path: `${tag}-to-home-file`, link: 'existing.txt' } },
      { entry: { kind: 'h', path: `${tag}-to-shadow`, link: '/etc/shadow' } },
      { entry: { kind: 'h', path: `${tag}-up`, link: '../../../etc/shadow' } },
      { entry: { kind: 'f', path: `${tag}-own.txt` }, data: Buffer.from('own') },
      { entry: { kind: 'h', path: `${tag}-own-link`, link: `${tag}-own.txt` } },
      { entry: { kind: 'l', path: `${tag}-esc`, link: outside } },
      { entry: { kind: 'f', path: `${tag}-esc/through-link` }, data: Buffer.from('pwned') },
      { entry: { kind: 'f', path: `${outside}/abs` }, data: Buffer.from('pwned') },
      { entry: { kind: 'f', path: `../../../../../..${outside}/dotdot` }, data: Buffer.from('pwned') },
    ], '');
    const at = (n: string): string => path.join(alice.home, `${tag}-${n}`);
    for (const n of ['to-home-file', 'to-shadow', 'up']) assert.ok(!fs.existsSync(at(n)), `${n} not created`);
    assert.ok(r.warnings.some((w) => w.path === `${tag}-to-home-file` && /did not write/.test(w.message)), JSON.stringify(r.warnings));
    assert.equal(fs.statSync(path.join(alice.home, 'existing.txt')).nlink, 1, 'no new name for the home file');
    assert.equal(fs.statSync(at('own-link')).ino, fs.statSync(at('own.txt')).ino, 'a link to its own file is made');
    assert.ok(fs.lstatSync(at('esc')).isDirectory(), 'the symlink it made was replaced, never written through');
    assert.equal(fs.readFileSync(path.join(at('esc'), 'through-link'), 'utf8'), 'pwned');
    assertNothingOutside();
    assert.equal(fs.statSync(alice.home).mode & 0o7777, 0o711);
    for (const n of fs.readdirSync(alice.home)) if (n.startsWith(tag)) fs.rmSync(path.join(alice.home, n), { recursive: true });
  });
});

describe('download --out', () => {
  test('regression: download --out follows a symlink planted at its temporary or final name', () => {
    const snap = ok(cli(dataDir, ['snapshot', 'list'])).find((x: any) => x.job === 'real');
    assert.ok(snap, 'the real backup is listed');
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-shared-'));
    cleanups.push(shared);
    fs.chmodSync(shared, 0o1777);
    const victims = [0, 1].map((i) => { const v = path.join(shared, `victim-${i}`); fs.writeFileSync(v, 'victim', { mode: 0o600 }); return v; });
    const out = path.join(shared, 'backup.tar.gz');
    // As a local user would plant them, before root runs the command.
    asAccount(alice, `ln -s ${victims[0]} ${out}.part; ln -s ${victims[1]} ${out}`);
    const r = ok(cli(dataDir, ['download', snap.id, '--out', out]));
    assert.equal(r.out, out);
    for (const v of victims) assert.equal(fs.readFileSync(v, 'utf8'), 'victim', `${v} untouched`);
    assert.ok(fs.lstatSync(out).isFile(), 'the archive is a regular file at the final name');
    assert.deepEqual([...fs.readFileSync(out).subarray(0, 2)], [0x1f, 0x8b]);
    assert.ok(fs.lstatSync(`${out}.part`).isSymbolicLink(), 'the planted link was not used');
    assert.deepEqual(fs.readdirSync(shared).sort(), ['backup.tar.gz', 'backup.tar.gz.part', 'victim-0', 'victim-1'], 'no temporary file left');
  });
});

describe('selection', () => {
  test('regression: checking a selection of N paths against a folder of M entries is N×M', { timeout: 120_000 }, () => {
    const M = 200_000;
    const index: Entry[] = [makeEntry({ kind: 'd', path: '' }), makeEntry({ kind: 'd', path: 'dir' })];
    for (let i = 0; i < M; i++) index.push(makeEntry({ kind: 'f', path: `dir/f${i}`, size: 1, dataRef: i }));
    // Every other file: 100,000 paths against 200,000 entries (N×M would be 2·10^10 checks).
    const paths = index.filter((_, i) => i >= 2 && i % 2 === 0).map((e) => e.path);
    const selected = selectEntries(index, paths);
    assert.equal(selected.length, paths.length + 2);
    assert.deepEqual(selected.filter((s) => s.ancestor).map((s) => s.entry.path), ['', 'dir']);
    const chosen = selected.filter((s) => !s.ancestor).map((s) => s.entry.path);
    assert.deepEqual(chosen, paths);
    // A folder chosen takes everything below it, and nothing beside it.
    const sub = selectEntries([...index, makeEntry({ kind: 'd', path: 'dir2' }), makeEntry({ kind: 'f', path: 'dir2/x' })], ['dir2']);
    assert.deepEqual(sub.map((s) => [s.entry.path, s.ancestor]), [['', true], ['dir2', false], ['dir2/x', false]]);
  });
});
