/**
 * The V8 flags a command-line run sets for itself (gc-policy.ts): a batch command runs without
 * incremental marking, whose task restarted right after every full GC of a small heap; the
 * daemon keeps V8's default.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gcFlagsFor } from '../server/cli/gc-policy.js';

const POLICY = fileURLToPath(new URL('../server/cli/gc-policy.js', import.meta.url));
const BATCH = fileURLToPath(new URL('../server/util/batch-gc.js', import.meta.url));

// Objects that survive two scavenges (so are promoted), then die: the old generation grows and is collected.
const CHURN = `
const { applyGcPolicy } = await import(process.argv[1]);
applyGcPolicy(process.argv.slice(2));
let window = [];
for (let i = 0; i < 400000; i++) {
  window.push({ i, s: 'x' + i, a: [i, i + 1, i + 2] });
  if (window.length > 20000) window = [];
}
`;

/** How often V8 started incremental marking in a process that churned after applying the policy for `args`. */
function markingStarts(args: string[]): number {
  const r = spawnSync(process.execPath, ['--trace-incremental-marking', '--input-type=module', '-e', CHURN, POLICY, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.includes('[IncrementalMarking] Start')).length;
}

test('every command but serve turns incremental marking off; serve keeps the default', () => {
  assert.deepEqual(gcFlagsFor(['--data-dir', '/x', 'backup', '--job', 'j', '--wait']), ['--no-incremental-marking']);
  assert.deepEqual(gcFlagsFor(['restore', 'id', '--wait']), ['--no-incremental-marking']);
  assert.deepEqual(gcFlagsFor(['--data-dir', '/x', 'serve']), []);
});

test('the flag set at run time takes effect: a backup process never starts incremental marking, the daemon does', () => {
  assert.equal(markingStarts(['backup', '--job', 'j']), 0);
  assert.ok(markingStarts(['serve']) > 0, 'the same churn under V8\'s default starts incremental marking (else this test proves nothing)');
});

// The daemon's runs: marking off while a hold is taken (two overlapping holds: off until both end), on again after.
const HELD = `
const { holdBatchGc, batchGcForProcess } = await import(process.argv[1]);
if (process.argv[2] === 'cli') batchGcForProcess();
const churn = () => {
  let window = [];
  for (let i = 0; i < 400000; i++) {
    window.push({ i, s: 'x' + i, a: [i, i + 1, i + 2] });
    if (window.length > 20000) window = [];
  }
};
const a = holdBatchGc();
const b = holdBatchGc();
churn();
a();
a();
churn();
console.log('--- released');
b();
// More than once: the full GCs made while marking was off may have raised the old generation's limit.
for (let i = 0; i < 4; i++) churn();
`;

function markingStartsHeld(mode: 'daemon' | 'cli'): { held: number; after: number } {
  const r = spawnSync(process.execPath, ['--trace-incremental-marking', '--input-type=module', '-e', HELD, BATCH, mode], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [held, after] = r.stdout.split('--- released');
  const starts = (s: string | undefined): number => (s ?? '').split('\n').filter((l) => l.includes('[IncrementalMarking] Start')).length;
  return { held: starts(held), after: starts(after) };
}

test('the daemon runs backups without incremental marking: off while any hold is taken, on again after the last release', () => {
  const daemon = markingStartsHeld('daemon');
  assert.equal(daemon.held, 0, 'no marking while a backup holds it off (a second release of one hold does not end the other)');
  assert.ok(daemon.after > 0, 'marking starts again once every hold is released');
  const cli = markingStartsHeld('cli');
  assert.deepEqual(cli, { held: 0, after: 0 }, 'a command-line run keeps it off after its holds end');
});
