// A compressed restore's gathered files (NewFiles with copyChunks) are copied into reused,
// page-aligned arenas, because the inflated members they come from are reused once read past.
// The arenas must never hand out memory a file not yet written still holds, and NewFiles must
// write what it was given, not what a lent chunk holds later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatherArenas } from '../server/engine/worker/gather-arenas.js';
import { pageAlignedBuffer } from '../server/native/aligned-buffer.js';
import { NewFiles } from '../server/engine/worker/new-files.js';
import { makeEntry } from '../server/engine/format/entry.js';
import { toDisplay } from '../server/util/byte-path.js';

const sha = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();
const overlaps = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;

test('GatherArenas: slots held at the same time never overlap; a released arena is filled again; large and empty files get memory of their own', () => {
  const arenas = new GatherArenas();
  const held = Array.from({ length: 40 }, (_, i) => ({ size: 1 + ((i * 7919) % 300_000), ...arenas.reserve(1 + ((i * 7919) % 300_000)) }));
  for (const [i, a] of held.entries()) {
    assert.equal(a.slot.length, a.size);
    for (const b of held.slice(i + 1)) assert.ok(!overlaps(a.slot, b.slot), 'two files held at once share no byte');
  }
  // Every file written: the arena being filled starts again, the full ones are spare.
  for (const h of held) arenas.release(h.arena);
  const again = arenas.reserve(100);
  assert.ok(held.some((h) => overlaps(again.slot, h.slot)), 'memory of written files is reused');
  const big = arenas.reserve(3 << 20);
  assert.equal(big.arena, null);
  assert.equal(big.slot.length, 3 << 20);
  const empty = arenas.reserve(0);
  assert.equal(empty.slot.length, 0);
  assert.equal(empty.arena, null);
  arenas.release(null);
});

test('pageAlignedBuffer: a writable Buffer of the size asked for; sizes out of range are refused', () => {
  const b = pageAlignedBuffer(10_000);
  assert.equal(b.length, 10_000);
  b.fill(7);
  assert.equal(b[9_999], 7);
  assert.throws(() => pageAlignedBuffer(0), RangeError);
});

test('regression: NewFiles with copyChunks writes the bytes it was given, though each lent chunk is overwritten as soon as add() returns', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-copy-chunks-'));
  try {
    const count = 120;
    const contents = Array.from({ length: count }, (_, i) => crypto.randomBytes((i * 7919) % 1_500_000));
    const done: string[] = [];
    const files = NewFiles.create({
      abs: (rel) => Buffer.from(path.join(dir, rel)),
      owner: () => null,
      done: (e) => { done.push(toDisplay(e.path)); },
      warn: (rel, m) => assert.fail(`${toDisplay(rel)}: ${m}`),
      ownerWarning: () => undefined,
      taken: () => assert.fail('no name is taken here'),
      takenFrom: () => assert.fail('no name is taken here'),
      checkHash: true,
      copyChunks: true,
    })!;
    // One lent buffer, as a reused inflated member: filled with each piece, then scribbled over.
    const lent = Buffer.alloc(64 << 10);
    for (const [i, c] of contents.entries()) {
      const e = makeEntry({ kind: 'f', path: `f${i}`, size: c.length, mode: 0o640, mtimeSec: 1_600_000_000 + i, mtimeNsec: 7, hash: sha(c) });
      assert.ok(files.takes(e, true));
      for (let at = 0; at < c.length; at += lent.length) {
        const n = c.copy(lent, 0, at, Math.min(c.length, at + lent.length));
        files.add(lent.subarray(0, n));
        lent.fill(0xee);
      }
      await files.submit();
    }
    await files.drain();
    files.throwIfFailed();
    assert.equal(done.length, count);
    for (const [i, c] of contents.entries()) assert.ok(fs.readFileSync(path.join(dir, `f${i}`)).equals(c), `f${i} exact`);
    // More bytes than the entry's size: its check fails and it never gets a name.
    const c = crypto.randomBytes(1000);
    assert.ok(files.takes(makeEntry({ kind: 'f', path: 'long', size: 999, mode: 0o600, hash: sha(c.subarray(0, 999)) }), true));
    files.add(c);
    await files.submit();
    await files.drain();
    assert.throws(() => files.throwIfFailed(), /"long" in the snapshot does not match its hash/);
    assert.equal(fs.existsSync(path.join(dir, 'long')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
