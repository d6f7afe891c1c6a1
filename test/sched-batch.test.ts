import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { batchHelperThreads } from '../server/native/sched-batch.js';

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** A thread's scheduling policy and nice value, from /proc (fields after the command name, which may hold spaces). */
function schedOf(tid: string): { policy: number; nice: number } {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): nice is field 19, policy field 41.
  return { nice: Number(fields[19 - 3]), policy: Number(fields[41 - 3]) };
}

test('the pool and helper threads run under SCHED_BATCH, the event loop keeps the default policy, nice values are kept', () => {
  fs.accessSync('/');
  fs.access('/', () => undefined);
  // A nice value set on each thread beforehand (setpriority takes a thread id on Linux) must survive.
  for (const tid of fs.readdirSync('/proc/self/task')) os.setPriority(Number(tid), Number(tid) === process.pid ? 0 : 5);
  const changed = batchHelperThreads();
  const tids = fs.readdirSync('/proc/self/task');
  assert.ok(changed >= 4, `libuv's four pool threads at least (changed ${changed} of ${tids.length})`);
  for (const tid of tids) {
    const { policy, nice } = schedOf(tid);
    if (Number(tid) === process.pid) assert.equal(policy, SCHED_OTHER, 'the main thread');
    else if (policy === SCHED_BATCH) assert.equal(nice, 5, `thread ${tid} kept its nice value`);
  }
  assert.equal(tids.filter((t) => schedOf(t).policy === SCHED_BATCH).length, changed);
});

test('the helper threads go under SCHED_BATCH after the process has become an account (the worker batches them once its modules are loaded)', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const script = `
    import fs from 'node:fs';
    import { batchHelperThreads } from ${JSON.stringify(new URL('../server/native/sched-batch.js', import.meta.url).href)};
    await fs.promises.access('/');
    process.setgroups([65534]); process.setgid(65534); process.setuid(65534);
    const changed = batchHelperThreads();
    const batch = fs.readdirSync('/proc/self/task').filter((t) => {
      const s = fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
      return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[38]) === ${SCHED_BATCH};
    }).length;
    process.stdout.write(JSON.stringify({ uid: process.getuid(), changed, batch }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { uid: number; changed: number; batch: number };
  assert.equal(out.uid, 65534);
  assert.ok(out.changed >= 4, `libuv's four pool threads at least (changed ${out.changed})`);
  assert.equal(out.batch, out.changed);
});
