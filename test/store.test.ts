import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../server/store/index.js';
import { openContext } from '../server/services/context.js';
import { handlePanelEvent } from '../server/services/panel-events.js';

test('the state store migrates once and keeps data across openings', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    const a = await openStore(dir);
    assert.equal(a.db.pragma('journal_mode', { simple: true }), 'wal');
    a.destinations.insert({ name: 'd', type: 'local', settings: { path: '/x' }, owner: 'root', enabled: true, snapshotsVisible: false, readOnly: false, freeSpaceLimitMb: 5 });
    a.close();
    const b = await openStore(dir);
    const applied = b.db.prepare('SELECT name FROM schema_migrations').all() as { name: string }[];
    assert.deepEqual(applied.map((r) => r.name), ['0001-initial', '0002-owners', '0003-sessions', '0004-api-tokens', '0005-schedules', '0006-queue', '0007-account-preferences', '0008-account-identities', '0009-task-log-audience', '0010-binlogs', '0011-sites-frequent-schedules']);
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

test("an account's choices are kept per account, follow a panel rename and go with its removal", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ panel: 'standalone' }));
    const ctx = await openContext(dir);
    try {
      const prefs = ctx.store.accountPreferences;
      assert.deepEqual(prefs.get('alice'), { restoreMail: null }, 'never chosen');
      prefs.setRestoreMail('alice', true);
      prefs.setRestoreMail('bob', false);
      prefs.setRestoreMail('carol', true);
      assert.deepEqual(prefs.get('alice'), { restoreMail: true });
      assert.deepEqual(prefs.get('bob'), { restoreMail: false });
      assert.equal((await handlePanelEvent(ctx, { kind: 'renamed', account: 'alice', newAccount: 'alicia', source: 'cli' })).ok, true);
      assert.deepEqual(prefs.get('alicia'), { restoreMail: true });
      assert.deepEqual(prefs.get('alice'), { restoreMail: null });
      // A rename onto a name that had choices: the renamed account's replace them.
      prefs.setRestoreMail('bob', false);
      await handlePanelEvent(ctx, { kind: 'renamed', account: 'alicia', newAccount: 'bob', source: 'cli' });
      assert.deepEqual(prefs.get('bob'), { restoreMail: true });
      await handlePanelEvent(ctx, { kind: 'removed', account: 'bob', newAccount: null, source: 'cli' });
      assert.deepEqual(prefs.get('bob'), { restoreMail: null }, 'a later account of that name starts afresh');
      assert.deepEqual(prefs.get('carol'), { restoreMail: true }, 'other accounts keep theirs');
    } finally {
      ctx.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a snapshot is found by its key: destination, account and id, never another one of the same id', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    const s = await openStore(dir);
    const dest = (name: string): number => s.destinations.insert({ name, type: 'local', settings: { path: `/${name}` }, owner: 'root', enabled: true, snapshotsVisible: true, readOnly: false, freeSpaceLimitMb: 0 }).id;
    const [d1, d2] = [dest('one'), dest('two')];
    const snap = (destinationId: number, account: string, note: string) => s.snapshots.insert({
      id: '20261130T120000Z-abcd', destinationId, account, jobId: null, structure: 'incremental', status: 'completed', startedAt: '2026-11-30T11:59:00.000Z',
      finishedAt: '2026-11-30T12:00:00.000Z', items: ['files'], files: 1, bytes: 1, storedBytes: 1, databases: [], locked: false, note,
    });
    snap(d1, 'alice', 'a1'); snap(d1, 'bob', 'b1'); snap(d2, 'alice', 'a2');
    assert.equal(s.snapshots.byKey(d1, 'alice', '20261130T120000Z-abcd')?.note, 'a1');
    assert.equal(s.snapshots.byKey(d2, 'alice', '20261130T120000Z-abcd')?.note, 'a2');
    assert.equal(s.snapshots.byKey(d1, 'bob', '20261130T120000Z-abcd')?.note, 'b1');
    assert.equal(s.snapshots.byKey(d2, 'bob', '20261130T120000Z-abcd'), undefined);
    assert.equal(s.snapshots.byKey(d1, 'alice', '20261130T120000Z-abce'), undefined);
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
