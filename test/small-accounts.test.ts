/**
 * A job over several small accounts: each account's snapshot is flushed with an fsync of its
 * own files (fewer than FILES_FSYNCED_ONE_BY_ONE) instead of syncfs, and its path catalog is
 * created with synchronous = NORMAL set before the switch to WAL, after the account's task
 * has left its place in the queue (the next account starts meanwhile). All of it must leave
 * everything in place: complete snapshots that restore byte for byte, and catalogs that hold
 * them when the CLI returns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { catalogFile, catalogSnapshots, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { FILES_FSYNCED_ONE_BY_ONE } from '../server/destinations/local.js';

const accounts: TestAccount[] = [];
let homeRoot: string;
let dataDir: string;
let destDir: string;

before(() => {
  homeRoot = makeHomeRoot();
  for (let a = 0; a < 3; a++) {
    const account = createAccount(homeRoot);
    accounts.push(account);
    for (let i = 0; i < 40; i++) {
      const dir = path.join(account.home, `d${i % 4}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `f${i}.txt`), `${account.username} ${i} `.repeat(i * 50 + 1));
    }
    fs.symlinkSync('d0/f0.txt', path.join(account.home, 'link'));
    fs.linkSync(path.join(account.home, 'd1/f1.txt'), path.join(account.home, 'hard'));
    for (const p of ['d0', 'd1', 'd2', 'd3']) fs.chownSync(path.join(account.home, p), account.uid, account.gid);
    for (const f of fs.readdirSync(account.home, { recursive: true }) as string[]) fs.lchownSync(path.join(account.home, f), account.uid, account.gid);
  }
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'small', '--destination', 'disk', '--structure', 'incremental', '--accounts', accounts.map((a) => a.username).join(','), '--items', 'files']));
});

after(() => {
  for (const a of accounts) removeAccount(a);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('a job over small accounts: every snapshot complete, catalogued, and restored byte for byte, twice over', () => {
  assert.ok(43 < FILES_FSYNCED_ONE_BY_ONE, 'these accounts are flushed file by file');
  for (let run = 0; run < 2; run++) {
    if (run === 1) for (const a of accounts) fs.writeFileSync(path.join(a.home, 'd2', 'f2.txt'), `changed ${a.username}\n`);
    const r = ok(cli(dataDir, ['backup', '--job', 'small', '--wait']));
    assert.deepEqual(r.results.map((x: { status: string }) => x.status), ['completed', 'completed', 'completed']);
    // One destination: the catalogs' one folder is its id.
    const destinationId = Number(fs.readdirSync(path.join(dataDir, 'catalog'))[0]);
    for (const [i, a] of accounts.entries()) {
      const id: string = r.snapshots[i];
      const db = openCatalog(catalogFile(dataDir, destinationId, a.username))!;
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        assert.equal(db.pragma('synchronous', { simple: true }), 1, 'NORMAL');
        assert.ok(catalogSnapshots(db).some((s) => s.id === id), `the catalog of ${a.username} holds ${id}`);
      } finally {
        db.close();
      }
      const restored = ok(cli(dataDir, ['restore', id, '--into-folder', '--wait']));
      const folder = path.join(a.home, restored.folder);
      try {
        const skip = (p: string): boolean => p.startsWith('tidemark-restore-');
        assert.deepEqual(diffTrees(snapshotTree(a.home, { skip }), snapshotTree(folder), { ignoreRootTimes: true }), []);
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    }
  }
});
