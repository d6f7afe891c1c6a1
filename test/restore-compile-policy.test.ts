/**
 * A command-line run that restores by descriptor runs on without V8's optimizing compiler
 * (batch-gc.ts noOptimizingCompilerForDescriptorRestore, called by restore.ts); the daemon,
 * which never turned itself into a batch process, keeps it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BATCH = fileURLToPath(new URL('../server/util/batch-gc.js', import.meta.url));

// A hot function, run long enough that V8 optimizes it with TurboFan under its default.
const HOT = `
const { batchGcForProcess, noOptimizingCompilerForDescriptorRestore } = await import(process.argv[1]);
if (process.argv[2] === 'cli') batchGcForProcess();
console.log('set: ' + noOptimizingCompilerForDescriptorRestore());
function step(o, i) { return { a: o.a + (i & 7), b: o.b ^ i, s: o.s.length > 8 ? 'x' : o.s + 'y' }; }
let o = { a: 0, b: 0, s: '' };
for (let i = 0; i < 3000000; i++) o = step(o, i);
console.log(o.a > 0 ? 'done' : 'never');
`;

function run(mode: 'cli' | 'daemon'): { set: boolean; optimized: number } {
  const r = spawnSync(process.execPath, ['--trace-opt', '--input-type=module', '-e', HOT, BATCH, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.ok(lines.includes('done'));
  return { set: lines.includes('set: true'), optimized: lines.filter((l) => l.includes('completed optimizing') || l.includes('completed compiling')).length };
}

test('a command-line restore by descriptor turns the optimizing compiler off at run time; the daemon keeps it', () => {
  const daemon = run('daemon');
  assert.equal(daemon.set, false);
  assert.ok(daemon.optimized > 0, 'the same hot code is optimized under V8\'s default (else this test proves nothing)');
  assert.deepEqual(run('cli'), { set: true, optimized: 0 });
});
