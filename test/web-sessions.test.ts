import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../server/store/database.js';
import { SessionRepository } from '../server/store/sessions.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-sessions-'));
let db: Db;
let clock = 1_800_000_000_000;
const repo = async (): Promise<SessionRepository> => {
  db ??= await openDatabase(dir);
  return new SessionRepository(db, () => clock);
};

after(() => { db?.close(); fs.rmSync(dir, { recursive: true, force: true }); });

test('a login token opens one session, once, within its lifetime', async () => {
  const r = await repo();
  const { token } = r.createLoginToken({ name: 'alice', role: 'user' }, 120_000);
  assert.deepEqual(r.consumeLoginToken(token), { name: 'alice', role: 'user' });
  assert.equal(r.consumeLoginToken(token), null, 'used');
  const late = r.createLoginToken({ name: 'alice', role: 'user' }, 120_000);
  clock += 120_000;
  assert.equal(r.consumeLoginToken(late.token), null, 'expired');
  assert.equal(r.consumeLoginToken('guessed'), null);
});

test('a session slides with use until it is idle too long or reaches its absolute end', async () => {
  const r = await repo();
  const idle = 30 * 60_000;
  const s = r.createSession({ name: 'alice', role: 'user' }, idle, 12 * 3_600_000);
  for (let i = 0; i < 20; i++) { // 20 x 29 minutes: well past the idle time, short of the absolute end
    clock += idle - 1000;
    assert.equal(r.touch(s.id)?.actor.name, 'alice', `use ${i}`);
  }
  clock = s.expiresAt;
  assert.equal(r.touch(s.id), null, 'absolute expiry, however active');
  const t = r.createSession({ name: 'bob', role: 'user' }, idle, 12 * 3_600_000);
  clock += idle;
  assert.equal(r.touch(t.id), null, 'idle expiry');
  clock -= idle;
  assert.equal(r.touch(t.id), null, 'an expired session is gone, not just hidden');
});

test('the store holds hashes, never the secrets', async () => {
  const r = await repo();
  const { token } = r.createLoginToken({ name: 'root', role: 'admin' }, 120_000);
  const s = r.createSession({ name: 'root', role: 'admin' }, 60_000, 3_600_000);
  const rows = JSON.stringify([db.prepare('SELECT * FROM login_tokens').all(), db.prepare('SELECT * FROM sessions').all()]);
  assert.ok(!rows.includes(token) && !rows.includes(s.id));
  r.destroy(s.id);
  assert.equal(r.touch(s.id), null);
});
