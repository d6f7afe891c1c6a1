/**
 * bufferGrowthCollector (util/batch-gc.ts): the restore writer fed by a remote destination
 * collects its dead slabs once they have added up, instead of waiting for V8's own trigger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SMALL_SLAB, slabReads } from '../server/engine/worker/slab-reader.js';

const BATCH = fileURLToPath(new URL('../server/util/batch-gc.js', import.meta.url));

// Makes `mib` MiB of 1 MiB Buffers, dropped by fours, calling the collector (threshold 32 MiB) after each; prints
// the ArrayBuffer memory before and after, in MiB.
const DROP = `
const { bufferGrowthCollector } = await import(process.argv[1]);
const mib = Number(process.argv[2]);
const before = process.memoryUsage().arrayBuffers;
const growth = process.argv[3] === undefined ? 32 << 20 : (heapUsed) => Math.max(Number(process.argv[3]) << 20, heapUsed);
const collect = bufferGrowthCollector(growth);
let dead = [];
for (let i = 0; i < mib; i++) {
  dead.push(Buffer.alloc(1 << 20, i));
  if (dead.length === 4) dead = [];
  collect();
}
await new Promise((resolve) => setTimeout(resolve, 50));
const after = process.memoryUsage().arrayBuffers;
console.log(JSON.stringify({ on: collect !== null, before: before / 2 ** 20, after: after / 2 ** 20 }));
`;

/** `heapGrowthMib`: the threshold is a function of the live heap, max(that many MiB, heapUsed). */
function drop(mib: number, heapGrowthMib?: number): { on: boolean; before: number; after: number; markCompacts: number } {
  const extra = heapGrowthMib === undefined ? [] : [String(heapGrowthMib)];
  const r = spawnSync(process.execPath, ['--trace-gc', '--input-type=module', '-e', DROP, BATCH, String(mib), ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  return { ...JSON.parse(lines.at(-1)!), markCompacts: lines.filter((l) => /Mark-Compact/.test(l)).length };
}

test('bufferGrowthCollector: dead Buffers that add up to the threshold are collected at the next call', () => {
  const r = drop(40);
  assert.ok(r.on, 'the collector is available');
  assert.ok(r.markCompacts >= 1, `mark-compacts: ${r.markCompacts}`);
  // 40 MiB were made and dropped: the collection at 32 MiB freed them (at most the 8 made after it remain).
  assert.ok(r.after - r.before <= 12, `ArrayBuffers ${r.before.toFixed(1)} -> ${r.after.toFixed(1)} MiB`);
});

test('bufferGrowthCollector: below the threshold no collection is made', () => {
  const r = drop(8);
  assert.equal(r.markCompacts, 0);
});

test('bufferGrowthCollector with a threshold that follows the heap: the function is asked at each call', () => {
  // max(16 MiB, heap): as a fixed 16 MiB, with this small heap. 24 MiB made and dropped.
  const low = drop(24, 16);
  assert.ok(low.markCompacts >= 1, `mark-compacts: ${low.markCompacts}`);
  assert.ok(low.after - low.before <= 12, `ArrayBuffers ${low.before.toFixed(1)} -> ${low.after.toFixed(1)} MiB`);
  // A threshold far above what is made: no collection (V8 makes none of its own for 24 MiB either).
  assert.equal(drop(24, 1024).markCompacts, 0);
});

test('slabReads with a hook: called before every new slab, and every byte comes through in order, the views of earlier slabs unchanged', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-slabs-'));
  try {
    const data = crypto.randomBytes(18 << 20);
    fs.writeFileSync(path.join(dir, 'data'), data);
    const fd = fs.openSync(path.join(dir, 'data'), 'r');
    let hooks = 0;
    const views: Buffer[] = [];
    try {
      for await (const v of slabReads(fd, () => { hooks++; })) views.push(v);
    } finally {
      fs.closeSync(fd);
    }
    // 4 MiB slabs: 18 MiB fill four and start a fifth (and one more for the read that finds the end).
    assert.ok(hooks >= 4, `hooks: ${hooks}`);
    assert.ok(Buffer.concat(views).equals(data));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('slabReads in small slabs (remote content): every byte in order, a hook per slab, no slab larger than SMALL_SLAB', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-slabs-'));
  try {
    const data = crypto.randomBytes(3 << 20);
    fs.writeFileSync(path.join(dir, 'data'), data);
    const fd = fs.openSync(path.join(dir, 'data'), 'r');
    let hooks = 0;
    const views: Buffer[] = [];
    try {
      for await (const v of slabReads(fd, () => { hooks++; }, SMALL_SLAB)) views.push(v);
    } finally {
      fs.closeSync(fd);
    }
    assert.ok(SMALL_SLAB.slab < 128 << 10, 'below the mmap threshold');
    assert.ok(views.every((v) => v.buffer.byteLength <= SMALL_SLAB.slab));
    assert.ok(hooks >= Math.floor((3 << 20) / SMALL_SLAB.slab), `hooks: ${hooks}`);
    assert.ok(Buffer.concat(views).equals(data));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
