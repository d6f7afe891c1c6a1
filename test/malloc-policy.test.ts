/**
 * The allocation policy of the CLI and the account worker (malloc-policy.ts): glibc's mmap
 * threshold stays fixed, so that large Buffers freed after a larger one are still mapped on
 * their own (and returned to the system when freed) instead of staying in the brk heap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MMAP_THRESHOLD } from '../server/native/malloc-policy.js';
import { nativeAddon } from '../server/native/addon.js';

const POLICY = fileURLToPath(new URL('../server/native/malloc-policy.js', import.meta.url));
const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);

// A freed 8 MiB Buffer (mapped) raises glibc's dynamic threshold; then 32 Buffers of 1 MiB are
// allocated and kept. Prints how much the brk heap grew meanwhile, in MiB.
const PROBE = `
const heapRss = () => { const s = require('fs').readFileSync('/proc/self/smaps', 'utf8'); const i = s.indexOf('[heap]'); if (i < 0) return 0; return Number(/Rss:\\s+(\\d+)/.exec(s.slice(i))[1]) / 1024; };
const apply = process.argv[2] === 'policy';
(async () => {
  if (apply) { const m = await import(process.argv[1]); if (m.applyMallocPolicy() === 0) throw new Error('not applied'); }
  let big = Buffer.allocUnsafeSlow(8 << 20); big.fill(1); big = null; global.gc(); global.gc();
  const before = heapRss();
  const keep = [];
  for (let i = 0; i < 32; i++) { const b = Buffer.allocUnsafeSlow(1 << 20); b.fill(i); keep.push(b); }
  process.stdout.write(String(heapRss() - before));
})();
`;

const heapGrowth = (mode: string): number => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', PROBE, POLICY, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout);
};

test('the native addon sets the threshold on glibc, and refuses a nonsense one', { skip: !glibc || !nativeAddon('mallocPolicy') }, () => {
  const addon = nativeAddon<{ mallocPolicy(n: number): number }>('mallocPolicy')!;
  assert.equal(addon.mallocPolicy(MMAP_THRESHOLD), MMAP_THRESHOLD);
  assert.throws(() => addon.mallocPolicy(0), RangeError);
  assert.throws(() => addon.mallocPolicy(1 << 30), RangeError);
});

test('regression: after a large Buffer was freed, 1 MiB Buffers filled the brk heap (glibc raised its mmap threshold)', { skip: !glibc || !nativeAddon('mallocPolicy') }, () => {
  // Without the policy the flaw shows (so the probe measures what it should)...
  assert.ok(heapGrowth('default') >= 24, 'glibc default: the 1 MiB Buffers come from the brk heap');
  // ...and with it, they are mapped on their own.
  assert.ok(heapGrowth('policy') < 8, 'with the policy: the brk heap does not hold them');
});

// 32 Buffers of 1 MiB are filled, freed, and 32 more filled: prints the minor page faults of
// the second round (each page of a new mapping faults on its first touch).
const REUSE_PROBE = `
const mode = process.argv[2];
(async () => {
  const m = await import(process.argv[1]);
  if (m.applyMallocPolicy() === 0) throw new Error('not applied');
  if (mode === 'reuse' && m.reuseLargeBuffers() === 0) throw new Error('not applied');
  const round = () => { let keep = []; for (let i = 0; i < 32; i++) { const b = Buffer.allocUnsafeSlow(1 << 20); b.fill(i); keep.push(b); } keep = null; global.gc(); global.gc(); };
  round();
  await new Promise((r) => setTimeout(r, 100));
  const before = process.resourceUsage().minorPageFault;
  round();
  process.stdout.write(String(process.resourceUsage().minorPageFault - before));
})();
`;

const secondRoundFaults = (mode: string): number => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', REUSE_PROBE, POLICY, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout);
};

test('reuseLargeBuffers: 1 MiB Buffers freed are taken again from glibc\'s heap, not mapped anew (a compressed restore\'s members)', { skip: !glibc || !nativeAddon('mallocPolicy') }, () => {
  const addon = nativeAddon<{ mallocPolicy(n: number, trim?: number): number }>('mallocPolicy')!;
  assert.throws(() => addon.mallocPolicy(MMAP_THRESHOLD, 0), RangeError);
  assert.throws(() => addon.mallocPolicy(MMAP_THRESHOLD, 1 << 30), RangeError);
  const fixed = secondRoundFaults('fixed');
  const reused = secondRoundFaults('reuse');
  // 32 new mappings of 256 pages fault about 8,192 times; reused memory hardly at all.
  assert.ok(fixed >= 4096, `with the fixed threshold every round maps anew (${fixed} faults)`);
  assert.ok(reused < fixed / 4, `reused: ${reused} faults against ${fixed}`);
});
