/**
 * Disaster recovery as docs/disaster-recovery.md describes it: the original server is gone,
 * only its destination is left. A brand-new state store (a new server) adopts the destination,
 * reindexes it, hands the snapshots to the re-created account (new uid), and restores its files
 * and databases byte-exactly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree, type TreeEntry } from './support/tree.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { startTestMariaDb, type TestMariaDb } from './support/mariadb.js';

const STRUCTURES = ['incremental', 'archive', 'compressed'] as const;
const PASSWORD = 'app pw "q" \\ end';
const ROWS: [number, string, string][] = [
  [1, 'café 🦊 漢字', '00ff27225c0a'],
  [2, "quote ' and \\ backslash", Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex')],
];

let maria: TestMariaDb;
let homeRoot: string;
let account: TestAccount;
const cleanups: string[] = [];

const qi = (n: string): string => '`' + n.replace(/`/g, '``') + '`';

async function sql(statements: string, database?: string, user = 'root', password?: string): Promise<any[]> {
  const conn = await mysql.createConnection({
    socketPath: maria.creds.socket!, user, ...(password !== undefined ? { password } : {}), multipleStatements: true, ...(database ? { database } : {}),
  });
  try {
    const [rows] = await conn.query(statements);
    return rows as any[];
  } finally {
    await conn.end();
  }
}

/** The rows as hex, read by the account's own database user (so its grant came back too). */
async function rowsOf(database: string, user: string): Promise<unknown[]> {
  return sql('SELECT id, HEX(label) AS label, HEX(payload) AS payload FROM items ORDER BY id', database, user, PASSWORD);
}

/** Re-creates the account under the same name with another uid, as a panel on a new server would. */
function recreateWithNewUid(old: TestAccount): TestAccount {
  let uid = old.uid + 1;
  for (;;) {
    try { execFileSync('getent', ['passwd', String(uid)], { stdio: 'pipe' }); uid++; } catch { break; }
  }
  execFileSync('useradd', ['--create-home', '--home-dir', old.home, '--uid', String(uid), '--shell', '/usr/sbin/nologin', '--user-group', old.username], { stdio: 'pipe' });
  fs.chmodSync(old.home, 0o711);
  const gid = Number(execFileSync('id', ['-g', old.username]).toString().trim());
  return { ...old, uid, gid };
}

/** The tree as the new account must have it: the same, owned by the new uid and gid. */
function ownedBy(tree: Map<string, TreeEntry>, from: TestAccount, to: TestAccount): Map<string, TreeEntry> {
  return new Map([...tree].map(([p, e]) => [p, { ...e, uid: e.uid === from.uid ? to.uid : e.uid, gid: e.gid === from.gid ? to.gid : e.gid }]));
}

before(async () => {
  maria = await startTestMariaDb();
  homeRoot = makeHomeRoot();
  cleanups.push(homeRoot);
});

after(async () => {
  if (account) removeAccount(account);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
  await maria?.stop();
});

test('disaster recovery: a bare server with only the destination restores an account\'s files and databases', async () => {
  // ---- Server A: an account with odd files, a database and its user, backed up in all three structures.
  account = createAccount(homeRoot);
  buildTrickyTree(account);
  const user = account.username;
  const db = `${user}_shop`;
  const dbUser = `${user}_app`;
  await sql(`CREATE DATABASE ${qi(db)} CHARACTER SET utf8mb4;
    CREATE TABLE ${qi(db)}.items (id INT PRIMARY KEY, label VARCHAR(100) CHARACTER SET utf8mb4, payload VARBINARY(300));
    ${ROWS.map(([id, label, payload]) => `INSERT INTO ${qi(db)}.items VALUES (${id}, CONVERT(UNHEX('${Buffer.from(label).toString('hex')}') USING utf8mb4), UNHEX('${payload}'));`).join('\n')}
    CREATE USER '${dbUser}'@'localhost' IDENTIFIED BY '${PASSWORD.replace(/\\/g, '\\\\').replace(/'/g, "''")}';
    GRANT SELECT, INSERT ON ${qi(db.replace(/_/g, '\\_'))}.* TO '${dbUser}'@'localhost';`);
  const rowsBefore = await rowsOf(db, dbUser);
  assert.equal(rowsBefore.length, 2);
  const treeBefore = snapshotTree(account.home);

  const config = { panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds };
  const serverA = makeDataDir(config);
  const firstPlace = makeDestinationDir();
  cleanups.push(serverA, firstPlace);
  ok(cli(serverA, ['destination', 'add', '--name', 'offsite', '--type', 'local', '--path', firstPlace]));
  for (const structure of STRUCTURES) {
    ok(cli(serverA, ['job', 'add', '--name', structure, '--destination', 'offsite', '--structure', structure, '--accounts', user]));
    const r = ok(cli(serverA, ['backup', '--job', structure, '--wait']));
    assert.deepEqual(r.results.map((x: any) => x.status), ['completed'], JSON.stringify(r.results));
  }
  const taken = ok(cli(serverA, ['snapshot', 'list', '--account', user]));
  assert.equal(taken.length, 3);
  for (const s of taken) assert.deepEqual(s.databases, [db]);

  // ---- The disaster: server A, its state store, the account, its database and user are gone.
  // The destination folder survives, moved (or mounted) somewhere else.
  fs.rmSync(serverA, { recursive: true, force: true });
  removeAccount(account);
  await sql(`DROP DATABASE ${qi(db)}; DROP USER '${dbUser}'@'localhost';`);
  const destDir = makeDestinationDir();
  cleanups.push(destDir);
  fs.rmdirSync(destDir);
  fs.renameSync(firstPlace, destDir);
  const markerBefore = fs.readFileSync(path.join(destDir, 'tidemark.json'));

  // ---- Server B: a brand-new state store; the panel re-created the account (another uid).
  const old = account;
  account = recreateWithNewUid(old);
  assert.notEqual(account.uid, old.uid);
  const serverB = makeDataDir(config);
  cleanups.push(serverB);

  // 1. destination add adopts the existing tidemark.json (neither refused nor rewritten).
  ok(cli(serverB, ['destination', 'add', '--name', 'offsite', '--type', 'local', '--path', destDir]));
  assert.deepEqual(fs.readFileSync(path.join(destDir, 'tidemark.json')), markerBefore, 'tidemark.json is adopted as it is');

  // 2. The jobs come back first (no schedule), so the reindex links their snapshots; then reindex finds every snapshot.
  ok(cli(serverB, ['job', 'add', '--name', 'incremental', '--destination', 'offsite', '--structure', 'incremental', '--accounts', user]));
  const reindexed = ok(cli(serverB, ['destination', 'reindex', 'offsite']));
  assert.deepEqual({ found: reindexed.found, added: reindexed.added, problems: reindexed.problems, accounts: reindexed.accounts },
    { found: 3, added: 3, problems: [], accounts: [user] });
  const found = ok(cli(serverB, ['snapshot', 'list', '--account', user]));
  assert.deepEqual(found.map((s: any) => s.id).sort(), taken.map((s: any) => s.id).sort());
  // Taken of another uid: the provider's until handed over; the account holder sees none yet.
  for (const s of found) assert.equal(s.formerAccount, true, `snapshot ${s.id} is the provider's after the reindex`);
  for (const s of found) assert.equal(s.job, s.structure === 'incremental' ? 'incremental' : null, 'linked to the job of its name on this destination');
  for (const s of found) assert.equal(s.schedule, 'manual', 'the schedule is not on the destination: counted as taken on demand');
  assert.deepEqual(ok(cli(serverB, ['--as-account', user, 'snapshot', 'list'])), []);

  // 3. The provider hands them over to the re-created account.
  for (const s of found) ok(cli(serverB, ['snapshot', 'assign', s.id, '--destination', 'offsite', '--to', user]));
  const mine = ok(cli(serverB, ['--as-account', user, 'snapshot', 'list']));
  assert.equal(mine.length, 3);
  for (const s of mine) assert.equal(s.formerAccount, false);

  const expected = ownedBy(treeBefore, old, account);
  const byStructure = (structure: string): any => found.find((s: any) => s.structure === structure);

  // 4. Files: in place from the incremental snapshot (the real recovery), into folders from the other two.
  const inPlace = ok(cli(serverB, ['restore', byStructure('incremental').id, '--wait']));
  assert.equal(inPlace.files.warningCount, 0, JSON.stringify(inPlace.files.warnings));
  assert.deepEqual(diffTrees(expected, snapshotTree(account.home), { ignoreRootTimes: true }), []);
  for (const structure of ['archive', 'compressed']) {
    const r = ok(cli(serverB, ['restore', byStructure(structure).id, '--into-folder', '--wait']));
    assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
    const folder = path.join(account.home, r.folder);
    const skipFolder = (p: string): boolean => p === r.folder;
    try {
      assert.deepEqual(diffTrees(expected, snapshotTree(folder), { ignoreRootTimes: true }), [], `${structure} restore`);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
    assert.deepEqual(diffTrees(expected, snapshotTree(account.home, { skip: skipFolder }), { ignoreRootTimes: true }), []);
  }

  // 5. Databases: the database and its user come back; then under a new name from another structure.
  const restoredDb = ok(cli(serverB, ['restore', byStructure('compressed').id, '--database', db, '--wait']));
  assert.deepEqual(restoredDb.databases.map((d: any) => d.restoredAs), [db]);
  assert.deepEqual(await rowsOf(db, dbUser), rowsBefore);
  const copy = `${user}_copy`;
  const restoredCopy = ok(cli(serverB, ['restore', byStructure('archive').id, '--database', db, '--as', copy, '--wait']));
  assert.deepEqual(restoredCopy.databases.map((d: any) => d.restoredAs), [copy]);
  assert.deepEqual(await sql('SELECT id, HEX(label) AS label, HEX(payload) AS payload FROM items ORDER BY id', copy), rowsBefore);
  await sql(`DROP DATABASE ${qi(copy)}`);

  // 6. The next backup on server B writes to the same destination, beside the old snapshots.
  const next = ok(cli(serverB, ['backup', '--job', 'incremental', '--wait']));
  assert.deepEqual(next.results.map((x: any) => x.status), ['completed'], JSON.stringify(next.results));
  assert.equal(ok(cli(serverB, ['snapshot', 'list', '--account', user])).length, 4);
  await sql(`DROP DATABASE ${qi(db)}; DROP USER '${dbUser}'@'localhost';`);
});

/** The `tidemark …` command lines of a Markdown file's sh blocks (continuation lines joined). */
function documentedCommands(markdown: string): string[][] {
  const out: string[][] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const text = block[1]!.replace(/\\\n\s*/g, ' ');
    for (const line of text.split('\n')) {
      // Each command of a pipeline or loop on its own; comments dropped.
      for (const part of line.replace(/#.*$/, '').split(/\||;|\bdo\b|&&/)) {
        const words = part.trim().split(/\s+/);
        if (words[0] === 'tidemark') out.push(words.slice(1));
      }
    }
  }
  return out;
}

test('docs/disaster-recovery.md names only commands and options the CLI has', () => {
  const doc = fs.readFileSync(fileURLToPath(new URL('../../docs/disaster-recovery.md', import.meta.url)), 'utf8');
  const commands = documentedCommands(doc);
  assert.ok(commands.length >= 10, `found ${commands.length} commands`);
  const help = (words: string[]): string => execFileSync(process.execPath, [CLI, ...words, '--help'], { encoding: 'utf8' });
  const globalHelp = help([]);
  const unknown: string[] = [];
  for (const words of commands) {
    const rest = words.filter((w) => !['--json'].includes(w));
    const path: string[] = [];
    let text = globalHelp;
    // Walk down the command groups as long as the next word is one of the listed commands.
    while (rest.length > 0 && new RegExp(`^  ${rest[0]!.replace(/[^a-z-]/g, '')}\\b`, 'm').test(text.split('Commands:')[1] ?? '')) {
      path.push(rest.shift()!);
      text = help(path);
    }
    if (path.length === 0) { unknown.push(`tidemark ${words.join(' ')}: no such command`); continue; }
    for (const w of rest) {
      const option = /^--[a-z-]+/.exec(w)?.[0];
      if (option && !text.includes(option) && !globalHelp.includes(option)) unknown.push(`tidemark ${path.join(' ')}: no option ${option}`);
    }
  }
  assert.deepEqual(unknown, []);
});

test("regression: a restore into an account re-created with another uid warns 'owner not restored' for every file", () => {
  let first = createAccount(homeRoot, 'tmu');
  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  const destDir = makeDestinationDir();
  cleanups.push(dataDir, destDir);
  let again: TestAccount | undefined;
  try {
    fs.mkdirSync(path.join(first.home, 'site'));
    fs.writeFileSync(path.join(first.home, 'site/index.html'), 'mine\n');
    fs.writeFileSync(path.join(first.home, 'by-root.txt'), 'owned by root\n');
    fs.chownSync(path.join(first.home, 'site'), first.uid, first.gid);
    fs.chownSync(path.join(first.home, 'site/index.html'), first.uid, first.gid);
    ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
    ok(cli(dataDir, ['job', 'add', '--name', 'j', '--destination', 'disk', '--structure', 'archive', '--accounts', first.username, '--items', 'files']));
    const id = ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0];
    removeAccount(first);
    again = recreateWithNewUid(first);
    first = again;
    const r = ok(cli(dataDir, ['restore', id, '--into-folder', '--wait']));
    // Only the file the old account did not own is reported; what it owned is the new account's.
    assert.deepEqual(r.files.warnings.map((w: any) => w.path), ['by-root.txt'], JSON.stringify(r.files.warnings));
    const folder = path.join(again.home, r.folder);
    for (const rel of ['site', 'site/index.html', 'by-root.txt']) {
      const st = fs.lstatSync(path.join(folder, rel));
      assert.deepEqual([st.uid, st.gid], [again.uid, again.gid], rel);
    }
    assert.equal(fs.readFileSync(path.join(folder, 'site/index.html'), 'utf8'), 'mine\n');
  } finally {
    removeAccount(first);
  }
});
