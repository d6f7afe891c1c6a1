/**
 * The files a restore wrote (written-files.ts), the only targets a hard link may have: packed
 * while the stream is in walk order, a Set otherwise; the answers are a Set's either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';
import { compareWalkOrder } from '../server/util/walk-order.js';
import { WrittenFiles } from '../server/engine/worker/written-files.js';

test('WrittenFiles answers as a Set of the written paths, with completions out of order, in walk order and out of it', () => {
  let s = 99;
  const rnd = (n: number): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return (s >>> 8) % n; };
  for (let round = 0; round < 400; round++) {
    const paths = [...new Set(Array.from({ length: 20 + rnd(200) }, () => `d${rnd(5)}/${['a', 'a.b', 'a/b', 'b'][rnd(4)]}${rnd(30)}`))].sort(compareWalkOrder);
    // Sometimes a path named again later (a stream out of walk order).
    if (rnd(3) === 0) paths.splice(rnd(paths.length), 0, paths[rnd(paths.length)]!);
    const w = new WrittenFiles();
    const ref = new Set<string>();
    const inFlight: Entry[] = [];
    const complete = (e: Entry): void => { w.add(e); ref.add(e.path); };
    for (const p of paths) {
      const e = makeEntry({ kind: (['f', 'f', 'f', 'h', 'd', 'l'] as const)[rnd(6)]!, path: p });
      w.named(e);
      ref.delete(p);
      if (e.kind === 'f' || e.kind === 'h') {
        // Finished now, later (after other entries), or never (failed).
        const r = rnd(4);
        if (r === 0) complete(e); else if (r !== 3) inFlight.push(e);
      }
      while (inFlight.length > 0 && rnd(2) === 0) complete(inFlight.splice(rnd(inFlight.length), 1)[0]!);
      const probe = paths[rnd(paths.length)]!;
      assert.equal(w.has(probe), ref.has(probe), probe);
    }
    for (const e of inFlight) complete(e);
    for (const p of [...paths, 'd0', 'd9/x', '']) assert.equal(w.has(p), ref.has(p), p);
  }
});

test('WrittenFiles: a file named again after it was written no longer counts, until it is written again', () => {
  const w = new WrittenFiles();
  const a = makeEntry({ kind: 'f', path: 'a' });
  w.named(a);
  w.add(a);
  assert.equal(w.has('a'), true);
  const again = makeEntry({ kind: 'd', path: 'a' });
  w.named(again);
  assert.equal(w.has('a'), false);
  const third = makeEntry({ kind: 'f', path: 'a' });
  w.named(third);
  w.add(third);
  assert.equal(w.has('a'), true);
  assert.equal(w.has('b'), false);
});
