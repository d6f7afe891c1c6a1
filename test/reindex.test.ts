import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree, type TreeEntry } from './support/tree.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

const STRUCTURES = ['incremental', 'archive', 'compressed'] as const;

let homeRoot: string;
let alice: TestAccount;
let bob: TestAccount;
let aliceTree: Map<string, TreeEntry>;
const cleanups: string[] = [];

const skipRestores = (p: string): boolean => p.startsWith('tidemark-restore-');

function sqlite(dataDir: string, sql: string, ...args: (string | number)[]): void {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'));
  try {
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}

/** Restores a whole snapshot into a new folder of the home and compares it with the tree taken before the backup. */
function assertRestoresExactly(dataDir: string, id: string, account: TestAccount, expected: Map<string, TreeEntry>): void {
  const r = ok(cli(dataDir, ['restore', id, '--into-folder', '--wait']));
  assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
  const folder = path.join(account.home, r.folder);
  try {
    assert.deepEqual(diffTrees(expected, snapshotTree(folder)), []);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

before(() => {
  homeRoot = makeHomeRoot();
  alice = createAccount(homeRoot);
  bob = createAccount(homeRoot);
  buildTrickyTree(alice);
  fs.mkdirSync(path.join(bob.home, 'site'));
  fs.writeFileSync(path.join(bob.home, 'site/index.html'), '<h1>bob</h1>\n');
  for (const p of ['site', 'site/index.html']) fs.chownSync(path.join(bob.home, p), bob.uid, bob.gid);
  aliceTree = snapshotTree(alice.home, { skip: skipRestores });
  cleanups.push(homeRoot);
});

after(() => {
  for (const a of [alice, bob]) if (a) removeAccount(a);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
});

describe('a local destination', () => {
  let first: string;
  let second: string;
  let destDir: string;
  const accounts = (): string => `${alice.username},${bob.username}`;
  const list = (dataDir: string): any[] => ok(cli(dataDir, ['snapshot', 'list', '--destination', 'disk']));

  before(() => {
    first = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
    second = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
    destDir = makeDestinationDir();
    cleanups.push(first, second, destDir);
    ok(cli(first, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
    for (const structure of STRUCTURES) {
      ok(cli(first, ['job', 'add', '--name', structure, '--destination', 'disk', '--structure', structure, '--accounts', accounts(), '--items', 'files']));
      const r = ok(cli(first, ['backup', '--job', structure, '--wait']));
      assert.ok(r.results.every((x: any) => x.status === 'completed'), JSON.stringify(r.results));
    }
    // A second incremental run: its files are hard links to the first one's.
    ok(cli(first, ['backup', '--job', 'incremental', '--wait']));
  });

  test('on a second, empty state store, reindex finds every snapshot of every account and structure', () => {
    ok(cli(second, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
    ok(cli(second, ['job', 'add', '--name', 'incremental', '--destination', 'disk', '--structure', 'incremental', '--accounts', accounts(), '--items', 'files']));
    assert.deepEqual(list(second), []);
    const r = ok(cli(second, ['destination', 'reindex', 'disk']));
    assert.deepEqual(r, {
      destination: 'disk', accounts: [alice.username, bob.username].sort(), found: 8, added: 8, updated: 0, removed: 0, problems: [],
    });
    const original = list(first);
    const rebuilt = list(second);
    assert.equal(rebuilt.length, 8);
    const withoutJob = (s: any): unknown => ({ ...s, job: null });
    assert.deepEqual(rebuilt.map(withoutJob), original.map(withoutJob));
    for (const s of rebuilt) assert.equal(s.job, s.structure === 'incremental' ? 'incremental' : null, 'linked to the job of that name on this destination');
    assert.deepEqual(new Set(rebuilt.map((s) => s.structure)), new Set(STRUCTURES));
  });

  for (const structure of STRUCTURES) {
    test(`a byte-exact ${structure} restore from the reindexed catalog`, () => {
      const s = list(second).find((x) => x.account === alice.username && x.structure === structure);
      assert.ok(s, `a ${structure} snapshot of ${alice.username} was reindexed`);
      assertRestoresExactly(second, s.id, alice, aliceTree);
    });
  }

  test('a stale row is updated and keeps its lock and note; a second reindex changes nothing', () => {
    const target = list(second).find((x) => x.account === bob.username && x.structure === 'archive');
    sqlite(second, `UPDATE snapshots SET locked = 1, note = 'keep me', files = 999, status = 'partial' WHERE id = ? AND account = ?`, target.id, bob.username);
    const r = ok(cli(second, ['destination', 'reindex', 'disk']));
    assert.deepEqual({ found: r.found, added: r.added, updated: r.updated, removed: r.removed }, { found: 8, added: 0, updated: 1, removed: 0 });
    const row = list(second).find((x) => x.id === target.id && x.account === bob.username);
    assert.deepEqual(row, { ...target, locked: true, note: 'keep me' });
    const again = ok(cli(second, ['destination', 'reindex', 'disk']));
    assert.deepEqual({ added: again.added, updated: again.updated, removed: again.removed }, { added: 0, updated: 0, removed: 0 });
  });

  test('a snapshot folder deleted by hand loses its row; --account keeps to that account', () => {
    const target = list(second).find((x) => x.account === bob.username && x.structure === 'compressed');
    fs.rmSync(path.join(destDir, bob.username, target.id), { recursive: true });
    const onlyAlice = ok(cli(second, ['destination', 'reindex', 'disk', '--account', alice.username]));
    assert.deepEqual(onlyAlice.accounts, [alice.username]);
    assert.equal(onlyAlice.found, 4);
    assert.equal(onlyAlice.removed, 0);
    assert.ok(list(second).some((x) => x.id === target.id), 'the other account was not touched');
    const onlyBob = ok(cli(second, ['destination', 'reindex', 'disk', '--account', bob.username]));
    assert.deepEqual({ found: onlyBob.found, removed: onlyBob.removed }, { found: 3, removed: 1 });
    assert.ok(!list(second).some((x) => x.id === target.id && x.account === bob.username), 'the row is gone');
    assert.equal(list(second).length, 7);
    const bad = cli(second, ['destination', 'reindex', 'disk', '--account', '../etc']);
    assert.equal(bad.code, 1);
    assert.match(bad.json.error, /^account: /);
  });

  test('bogus manifests are reported and not imported; .partial-* and other folders are ignored', () => {
    const real = list(second).find((x) => x.account === alice.username && x.structure === 'archive');
    const manifest = JSON.parse(fs.readFileSync(path.join(destDir, alice.username, real.id, 'manifest.json'), 'utf8'));
    const plant = (account: string, folder: string, content: string | null): string => {
      fs.mkdirSync(path.join(destDir, account, folder), { recursive: true });
      if (content !== null) fs.writeFileSync(path.join(destDir, account, folder, 'manifest.json'), content);
      return `${account}/${folder}`;
    };
    const a = alice.username;
    const planted = [
      plant(a, '20250101T000000Z-0bad', '{not json'),
      plant(a, '20250101T000001Z-0bad', JSON.stringify(manifest)),
      plant(bob.username, '20250101T000002Z-0bad', JSON.stringify({ ...manifest, id: '20250101T000002Z-0bad' })),
      plant(a, '20250101T000003Z-0bad', JSON.stringify({ ...manifest, id: '20250101T000003Z-0bad', version: 2 })),
      plant(a, '20250101T000004Z-0bad', JSON.stringify({ ...manifest, id: '20250101T000004Z-0bad', stats: { files: -1 } })),
      plant(a, '20250101T000005Z-0bad', null),
    ];
    // A cataloged snapshot whose manifest got damaged: reported, and its row stays.
    const damaged = list(second).find((x) => x.account === bob.username && x.structure === 'archive');
    const damagedFile = path.join(destDir, bob.username, damaged.id, 'manifest.json');
    const damagedOriginal = fs.readFileSync(damagedFile);
    fs.writeFileSync(damagedFile, '{"format":"tidemark-snapshot"');
    plant(a, '.partial-20250101T000006Z-0bad', JSON.stringify({ ...manifest, id: '20250101T000006Z-0bad' }));
    plant(a, '.partial-20250101T000007Z-0bad', '{not json');
    plant(a, 'notes', JSON.stringify(manifest));
    plant('lost+found', '20250101T000008Z-0bad', JSON.stringify({ ...manifest, id: '20250101T000008Z-0bad', account: 'lost+found' }));
    const before = list(second);
    const r = ok(cli(second, ['destination', 'reindex', 'disk']));
    assert.deepEqual({ found: r.found, added: r.added, updated: r.updated, removed: r.removed }, { found: 6, added: 0, updated: 0, removed: 0 });
    const problems = new Map(r.problems.map((p: any) => [p.path, p.error]));
    assert.deepEqual([...problems.keys()].sort(), [...planted, `${bob.username}/${damaged.id}`].map((p) => `${p}/manifest.json`).sort());
    assert.match(problems.get(`${bob.username}/${damaged.id}/manifest.json`) as string, /not valid JSON/);
    assert.match(problems.get(`${planted[0]}/manifest.json`) as string, /not valid JSON/);
    assert.match(problems.get(`${planted[1]}/manifest.json`) as string, /names snapshot ".*", not "20250101T000001Z-0bad": not imported/);
    assert.match(problems.get(`${planted[2]}/manifest.json`) as string, new RegExp(`names account "${a}", not "${bob.username}": not imported`));
    assert.match(problems.get(`${planted[3]}/manifest.json`) as string, /version: version must be 1/);
    assert.match(problems.get(`${planted[4]}/manifest.json`) as string, /stats\.files/);
    assert.match(problems.get(`${planted[5]}/manifest.json`) as string, /no manifest\.json/);
    assert.deepEqual(list(second), before, 'nothing bogus was imported, and the damaged snapshot keeps its row');
    fs.writeFileSync(damagedFile, damagedOriginal);
    for (const p of [...planted, `${a}/.partial-20250101T000006Z-0bad`, `${a}/.partial-20250101T000007Z-0bad`, `${a}/notes`, 'lost+found']) {
      fs.rmSync(path.join(destDir, p), { recursive: true });
    }
  });

  test('a destination without tidemark.json, or with an unknown format version, is refused and the catalog stays', () => {
    const before = list(second);
    const marker = path.join(destDir, 'tidemark.json');
    const original = fs.readFileSync(marker, 'utf8');
    try {
      fs.writeFileSync(marker, JSON.stringify({ ...JSON.parse(original), version: 99 }));
      const future = cli(second, ['destination', 'reindex', 'disk']);
      assert.equal(future.code, 1);
      assert.match(future.json.error, /cannot be reindexed: tidemark\.json says format version 99; this Tidemark reads version 1/);
      fs.rmSync(marker);
      const missing = cli(second, ['destination', 'reindex', 'disk']);
      assert.equal(missing.code, 1);
      assert.match(missing.json.error, /cannot be reindexed: there is no tidemark\.json at its root/);
      assert.ok(!fs.existsSync(marker), 'reindex does not write a marker');
    } finally {
      fs.writeFileSync(marker, original);
    }
    assert.deepEqual(list(second), before);
  });
});

describe('an SSH destination', () => {
  let server: TestSshServer;
  let first: string;
  let second: string;
  let keyFile: string;
  let treeAtBackup: Map<string, TreeEntry>;
  const addRemote = (dataDir: string): void => {
    ok(cli(dataDir, ['destination', 'add', '--name', 'remote', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port),
      '--user', server.user, '--path', server.remoteRoot, '--key-file', keyFile]));
  };

  before(async () => {
    server = await startTestSshServer({ allowCommands: false });
    first = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
    second = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
    const secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
    cleanups.push(first, second, secrets);
    keyFile = path.join(secrets, 'key');
    fs.writeFileSync(keyFile, server.privateKey, { mode: 0o600 });
    addRemote(first);
    ok(cli(first, ['job', 'add', '--name', 'inc', '--destination', 'remote', '--structure', 'incremental', '--accounts', alice.username, '--items', 'files']));
    ok(cli(first, ['job', 'add', '--name', 'cmp', '--destination', 'remote', '--structure', 'compressed', '--accounts', bob.username, '--items', 'files']));
    // Restores into a folder of the home (earlier tests) changed the home's own mtime since.
    treeAtBackup = snapshotTree(alice.home, { skip: skipRestores });
    for (const job of ['inc', 'inc', 'cmp']) assert.equal(ok(cli(first, ['backup', '--job', job, '--wait'])).results[0].status, 'completed');
  });

  after(async () => {
    await server?.stop();
  });

  test('a second state store finds every snapshot over SFTP, and restores byte-exactly from it', () => {
    addRemote(second);
    const r = ok(cli(second, ['destination', 'reindex', 'remote']));
    assert.deepEqual(r, { destination: 'remote', accounts: [alice.username, bob.username].sort(), found: 3, added: 3, updated: 0, removed: 0, problems: [] });
    const strip = (s: any): unknown => ({ ...s, job: null });
    const rebuilt = ok(cli(second, ['snapshot', 'list']));
    assert.deepEqual(rebuilt.map(strip), ok(cli(first, ['snapshot', 'list'])).map(strip));
    const latest = rebuilt.find((s: any) => s.account === alice.username);
    assertRestoresExactly(second, latest.id, alice, treeAtBackup);
  });

  test('over SFTP, a deleted snapshot folder loses its row, and a bogus manifest is reported', () => {
    const gone = ok(cli(second, ['snapshot', 'list', '--account', bob.username]))[0];
    fs.rmSync(path.join(server.remoteRoot, bob.username, gone.id), { recursive: true });
    const bogus = path.join(server.remoteRoot, bob.username, '20250101T000000Z-0bad');
    fs.mkdirSync(bogus);
    fs.writeFileSync(path.join(bogus, 'manifest.json'), '{"format":"tidemark-snapshot"');
    const r = ok(cli(second, ['destination', 'reindex', 'remote']));
    assert.deepEqual({ found: r.found, added: r.added, removed: r.removed }, { found: 2, added: 0, removed: 1 });
    assert.deepEqual(r.problems, [{ path: `${bob.username}/20250101T000000Z-0bad/manifest.json`, error: 'manifest.json is not valid JSON' }]);
    assert.deepEqual(ok(cli(second, ['snapshot', 'list', '--account', bob.username])), []);
  });
});
