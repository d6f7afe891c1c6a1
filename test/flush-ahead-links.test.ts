/**
 * A run that mostly links (a second incremental after a small change) asks its destination to
 * write out ahead too (flush-ahead-policy.ts): before, only new content counted, and all the
 * links' changes were left to the commit's flush, after the walk.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FLUSH_AHEAD_BYTES, FLUSH_AHEAD_LINKS, FlushAheadPolicy } from '../server/engine/flush-ahead-policy.js';
import { BlobSink } from '../server/engine/files-sink.js';
import { PreviousBlobs } from '../server/engine/previous-blobs.js';
import { LocalDestination } from '../server/destinations/local.js';
import { makeEntry } from '../server/engine/format/entry.js';
import { layout } from '../server/engine/snapshot-layout.js';

const made: string[] = [];
after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

test('regression: a run that only links is due for a write-out once FLUSH_AHEAD_LINKS files were linked', () => {
  const policy = new FlushAheadPolicy();
  assert.equal(policy.due(0, 0), false);
  assert.equal(policy.due(0, FLUSH_AHEAD_LINKS - 1), false);
  assert.equal(policy.due(0, FLUSH_AHEAD_LINKS), true, 'links alone make a write-out due');
  assert.equal(policy.due(0, FLUSH_AHEAD_LINKS + 10), false, 'counted again from the last write-out');
  assert.equal(policy.due(0, 2 * FLUSH_AHEAD_LINKS), true);
});

test('new content alone still makes a write-out due, and both counts start again from it', () => {
  const policy = new FlushAheadPolicy();
  assert.equal(policy.due(FLUSH_AHEAD_BYTES - 1, 10), false);
  assert.equal(policy.due(FLUSH_AHEAD_BYTES, 10), true);
  assert.equal(policy.due(2 * FLUSH_AHEAD_BYTES - 1, FLUSH_AHEAD_LINKS), false, 'links counted from the last write-out (10)');
  assert.equal(policy.due(2 * FLUSH_AHEAD_BYTES - 1, FLUSH_AHEAD_LINKS + 10), true);
});

test('BlobSink counts the unchanged files it has handed to the destination to link', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-flush-links-'));
  fs.chmodSync(root, 0o700);
  made.push(root);
  const dest = new LocalDestination(root);
  await dest.open();
  const n = 700;
  const blobs = new PreviousBlobs();
  for (let i = 0; i < n; i++) {
    await dest.writeFile(`acct/s1/${layout.blob(i)}`, `content ${i}`);
    blobs.add(i, undefined);
  }
  const sink = new BlobSink(dest, dest.hardLinks, 'acct/.partial-s2', { dir: 'acct/s1', blobs, clone: false });
  assert.equal(sink.linkedFiles(), 0);
  for (let i = 0; i < n; i++) {
    const e = makeEntry({ kind: 'f', path: `f${i}`, size: 9, prevRef: i });
    await sink.begin(e, false);
  }
  // A new file is stored, not linked.
  await sink.begin(makeEntry({ kind: 'f', path: 'new', size: 3 }), true);
  await sink.data(Buffer.from('new'));
  await (await sink.endData()).hash;
  await sink.finish();
  assert.equal(sink.linkedFiles(), n);
  for (const i of [0, 255, 256, 699]) {
    assert.equal(await dest.linkCount(`acct/.partial-s2/${layout.blob(i)}`), 2, layout.blob(i));
  }
  await dest.close();
});
