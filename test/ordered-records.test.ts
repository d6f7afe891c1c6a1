/**
 * A backup's index records go out in walk order while changed files' hashes are still being
 * computed (ordered-records.ts). Records that need nothing are written at once, without a
 * promise each (most records of a second backup); none may overtake a file still waiting for
 * its hash, and a failed hash fails the run when its turn comes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedRecords } from '../server/engine/ordered-records.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';

const file = (path: string): Entry => makeEntry({ kind: 'f', path });

function deferred(): { promise: Promise<Buffer>; resolve: (b: Buffer) => void; reject: (e: Error) => void } {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<Buffer>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

test('a complete record with none waiting before it is written at once, with no promise to wait for', () => {
  const written: string[] = [];
  const records = new OrderedRecords((e) => { written.push(e.path); return undefined; });
  assert.equal(records.push(file('a'), null), undefined);
  assert.equal(records.push(file('b'), null), undefined);
  assert.deepEqual(written, ['a', 'b']);
});

test('records after a file waiting for its hash wait too, and go out in walk order once it has come', async () => {
  const written: { path: string; hash: string | null }[] = [];
  const records = new OrderedRecords((e) => { written.push({ path: e.path, hash: e.hash?.toString() ?? null }); return undefined; }, 4);
  const h = deferred();
  await records.push(file('changed'), h.promise);
  assert.equal(records.push(file('after-1'), null), undefined, 'room left: nothing to wait for yet');
  assert.equal(records.push(file('after-2'), null), undefined);
  assert.equal(written.length, 0, 'nothing overtakes the file whose hash is coming');
  h.resolve(Buffer.from('H'));
  // The fourth record reaches the limit: the caller waits, and everything goes out in order.
  await records.push(file('after-3'), null);
  assert.deepEqual(written.map((w) => w.path), ['changed', 'after-1', 'after-2', 'after-3']);
  assert.equal(written[0]!.hash, 'H');
  await records.finish();
});

test('a write that must be waited for is waited for; a failed hash fails the run at its turn', async () => {
  let release!: () => void;
  const slow = new Promise<void>((r) => { release = r; });
  const written: string[] = [];
  const records = new OrderedRecords((e) => { written.push(e.path); return e.path === 'slow' ? slow : undefined; });
  const waiting = records.push(file('slow'), null);
  assert.ok(waiting instanceof Promise, 'the writer asked to be waited for');
  release();
  await waiting;
  const h = deferred();
  await records.push(file('broken'), h.promise);
  h.reject(new Error('ENOSPC'));
  await assert.rejects(records.finish(), /ENOSPC/);
  assert.deepEqual(written, ['slow']);
});
