/**
 * When the CLI's helper threads go under SCHED_BATCH (native/sched-batch.ts): only once the
 * command's modules are loaded. Node's ES module loader reads every module through libuv's
 * pool, one round trip after another; a batch pool thread waits for the running thread's turn
 * to end, and on a busy machine that wait came back on every module of the start-up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CLI, makeDataDir } from './support/cli.js';

const SCHED_BATCH = 3;

/** Counts this process's threads (the main one aside) under SCHED_BATCH, from /proc. */
const COUNT_BATCH = `(() => {
  const fs = process.getBuiltinModule ? process.getBuiltinModule('node:fs') : globalThis.__fs;
  let n = 0;
  for (const t of fs.readdirSync('/proc/self/task')) {
    if (Number(t) === process.pid) continue;
    try {
      const s = fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[38]) === ${SCHED_BATCH}) n++;
    } catch {}
  }
  return n;
})()`;

/**
 * A loader hook (it runs beside the main thread) that reports, when the source of the `job`
 * command's module is loaded, how many threads are batch; and, at exit, how many are then.
 */
const HOOKS = `import fs from 'node:fs'; globalThis.__fs = fs;
let said = false;
export async function load(url, context, next) {
  const r = await next(url, context);
  if (!said && r.source && /\\.command\\(['"]job['"]\\)/.test(String(r.source))) { said = true; fs.writeSync(2, 'while-loading ' + ${COUNT_BATCH} + '\\n'); }
  return r;
}`;
const PRELOAD = `import fs from 'node:fs'; import { register } from 'node:module'; globalThis.__fs = fs;
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));
process.on('exit', () => fs.writeSync(2, 'at-exit ' + ${COUNT_BATCH} + '\\n'));`;

test('the CLI puts its pool threads under SCHED_BATCH only after the command\'s modules are loaded (module reads waited on batch threads)', { skip: process.getuid?.() !== 0 && 'needs root (the CLI runs as root)' }, () => {
  const dataDir = makeDataDir({ panel: 'standalone', logLevel: 'silent' });
  const r = spawnSync(process.execPath, ['--no-warnings', '--import', `data:text/javascript,${encodeURIComponent(PRELOAD)}`, CLI, '--data-dir', dataDir, 'job', 'list'], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  const loading = /while-loading (\d+)/.exec(r.stderr);
  const exit = /at-exit (\d+)/.exec(r.stderr);
  assert.ok(loading && exit, r.stderr);
  assert.equal(Number(loading[1]), 0, 'no thread is batch while the command\'s modules load');
  assert.ok(Number(exit[1]) >= 4, `libuv's four pool threads at least are batch once they are loaded (${exit[1]})`);
});
