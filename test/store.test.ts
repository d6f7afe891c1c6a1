import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../server/store/index.js';

test('the state store migrates once and keeps data across openings', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    const a = await openStore(dir);
    assert.equal(a.db.pragma('journal_mode', { simple: true }), 'wal');
    a.destinations.insert({ name: 'd', type: 'local', settings: { path: '/x' }, owner: 'root', enabled: true, snapshotsVisible: false, readOnly: false, freeSpaceLimitMb: 5 });
    a.close();
    const b = await openStore(dir);
    const applied = b.db.prepare('SELECT name FROM schema_migrations').all() as { name: string }[];
    assert.deepEqual(applied.map((r) => r.name), ['0001-initial', '0002-owners', '0003-sessions', '0004-api-tokens', '0005-schedules', '0006-queue']);
    const d = b.destinations.byName('d')!;
    assert.equal(d.snapshotsVisible, false);
    assert.equal(d.freeSpaceLimitMb, 5);
    assert.equal((fs.statSync(path.join(dir, 'tidemark.sqlite')).mode & 0o777), 0o600);
    b.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a task left running by a dead process is marked failed, never completed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    const s = await openStore(dir);
    const t = s.tasks.create({ type: 'backup', account: 'u', jobId: null, destinationId: null, snapshotId: null, params: {} });
    s.tasks.start(t.id, 999999);
    assert.equal(s.tasks.failOrphans((pid) => pid !== 999999), 1);
    const after = s.tasks.byId(t.id)!;
    assert.equal(after.status, 'failed');
    assert.match(after.error!, /interrupted/);
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
