import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalogSnapshots, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { syncCatalog, type LiveSnapshot } from '../server/engine/catalog/catalog-sync.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';

/**
 * The path catalog is derived data: a damaged file (a power cut while it was new, a bad
 * sector) is made anew from the indexes instead of failing every search of the account.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-damaged-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const index: Entry[] = [
  makeEntry({ kind: 'd', path: '', mode: 0o755, mtimeSec: 1 }),
  makeEntry({ kind: 'd', path: 'public_html', mode: 0o755, mtimeSec: 2 }),
  makeEntry({ kind: 'f', path: 'public_html/index.php', mode: 0o644, size: 3, mtimeSec: 3, dataRef: 0, hash: crypto.createHash('sha256').update('hi\n').digest() }),
];
const live: LiveSnapshot[] = [{ id: '20261201T000000Z-0001', finishedAt: '2026-12-01T00:00:00.000Z' }];
const read = async (_id: string, onEntry: (e: Entry) => boolean | void): Promise<void> => { for (const e of index) onEntry(e); };

/** A catalog with the one snapshot, built and closed. */
async function built(file: string): Promise<void> {
  const db = openCatalog(file)!;
  try {
    await syncCatalog(db, live, read);
    assert.deepEqual(catalogSnapshots(db).map((s) => s.id), [live[0]!.id]);
  } finally {
    db.close();
  }
}

describe('a damaged path catalog', () => {
  test('a new catalog is a WAL database of the current format', async () => {
    const file = path.join(dir, 'new.sqlite');
    await built(file);
    const db = openCatalog(file, { readonly: true })!;
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    } finally {
      db.close();
    }
  });

  test('regression: a file that is not a database failed every search; it is made anew', async () => {
    const file = path.join(dir, 'garbage.sqlite');
    fs.writeFileSync(file, crypto.randomBytes(16384), { mode: 0o600 });
    assert.equal(openCatalog(file, { readonly: true }), null);
    await built(file);
  });

  test('a catalog whose first page is damaged is made anew, its old WAL and shared memory with it', async () => {
    const file = path.join(dir, 'torn.sqlite');
    await built(file);
    const fd = fs.openSync(file, 'r+');
    try {
      // The schema lives on page 1 after the 100-byte header: overwritten, the file is damaged.
      fs.writeSync(fd, Buffer.alloc(3000, 0xa5), 0, 3000, 100);
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(`${file}-wal`, crypto.randomBytes(4096));
    assert.equal(openCatalog(file, { readonly: true }), null);
    await built(file);
  });

  test('other errors are not taken for damage: the file stays', () => {
    const file = path.join(dir, 'a-folder.sqlite');
    fs.mkdirSync(file);
    assert.throws(() => openCatalog(file));
    assert.ok(fs.statSync(file).isDirectory());
  });
});
