import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
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
