/**
 * An account worker starts at root's priority and takes the configured politeness itself
 * (politeness.ts takePoliteness) before it reads the home: every one of its threads (the main
 * one, libuv's pool that does the reads, V8's helpers) must have the configured niceness and
 * I/O priority by then, whether the worker was a standby or started for its account.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { prestartAccountWorker, spawnAccountWorker, type WorkerHandle } from '../server/engine/worker/spawn-worker.js';
import { parsePoliteness, workerTakesPoliteness, type Politeness } from '../server/util/politeness.js';

const skip = process.getuid?.() !== 0 || !workerTakesPoliteness();
const POLITE: Politeness = { nice: 10, ioClass: 'best-effort', ioPriority: 7 };

let homeRoot: string;
let account: TestAccount;

before(() => {
  if (skip) return;
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(`${account.home}/file.txt`, 'x');
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
});

after(() => {
  if (skip) return;
  removeAccount(account);
  fs.rmSync(homeRoot, { recursive: true, force: true });
});

interface ThreadState { tid: string; uid: number; nice: number; io: string }

/** Each thread of a process: its real uid, niceness (stat field 19) and `ionice -p` of it. */
function threadsOf(pid: number): ThreadState[] {
  const out: ThreadState[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The fields after the name (which may hold spaces): state is field 3, nice field 19.
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]);
      out.push({ tid, uid, nice, io: execFileSync('ionice', ['-p', tid], { encoding: 'utf8' }).trim() });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * Waits until the worker is the account (it then waits for the previous index on its stdin,
 * which the test never sends, so it has not read the home yet), then lists its threads.
 */
async function threadsOnceAccount(worker: WorkerHandle): Promise<ThreadState[]> {
  const pid = worker.child.pid!;
  for (let i = 0; i < 600; i++) {
    const threads = threadsOf(pid);
    if (threads.length > 0 && threads.every((t) => t.uid === account.uid) && threads.every((t) => t.nice === threads[0]!.nice && t.io === threads[0]!.io) && threads[0]!.nice !== os.getPriority(0)) return threads;
    if (worker.child.exitCode !== null) break;
    await sleep(50);
  }
  return threadsOf(pid);
}

const panelAccount = (): Parameters<typeof spawnAccountWorker>[0] => ({ username: account.username, uid: account.uid, gid: account.gid, home: account.home } as Parameters<typeof spawnAccountWorker>[0]);

async function stop(worker: WorkerHandle): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.done.catch(() => undefined);
}

test('a standby worker starts at root\'s priority and, once named, has every thread at the configured niceness and I/O priority before it reads the home', { skip }, async () => {
  const pid = prestartAccountWorker()!;
  const before = threadsOf(pid);
  assert.equal(before[0]!.nice, os.getPriority(0), 'the standby starts at root\'s niceness');
  const worker = spawnAccountWorker(panelAccount(), { mode: 'backup', excludes: [], previous: true, tar: false }, { politeness: POLITE });
  assert.equal(worker.child.pid, pid);
  try {
    const threads = await threadsOnceAccount(worker);
    assert.ok(threads.length > 3, 'the pool and V8 threads are listed too');
    for (const t of threads) assert.deepEqual({ nice: t.nice, io: t.io }, { nice: Math.min(19, os.getPriority(0) + 10), io: 'best-effort: prio 7' }, `thread ${t.tid}`);
  } finally {
    await stop(worker);
  }
});

test('a worker started for its account (no standby) takes the idle I/O class and niceness on every thread', { skip }, async () => {
  const worker = spawnAccountWorker(panelAccount(), { mode: 'backup', excludes: [], previous: true, tar: false }, { politeness: { nice: 15, ioClass: 'idle', ioPriority: 4 } });
  try {
    const threads = await threadsOnceAccount(worker);
    for (const t of threads) assert.deepEqual({ nice: t.nice, io: t.io }, { nice: Math.min(19, os.getPriority(0) + 15), io: 'idle' }, `thread ${t.tid}`);
  } finally {
    await stop(worker);
  }
});

test('a polite worker still backs up the home as the account', { skip }, async () => {
  const worker = spawnAccountWorker(panelAccount(), { mode: 'backup', excludes: [], previous: false, tar: false }, { politeness: POLITE });
  worker.input.end();
  let bytes = 0;
  for await (const chunk of worker.output) bytes += (chunk as Buffer).length;
  await worker.done;
  assert.ok(bytes > 0);
});

test('a politeness received by a worker is refused unless every field is in range', () => {
  assert.deepEqual(parsePoliteness({ nice: 10, ioClass: 'best-effort', ioPriority: 7, extra: 1 }), POLITE);
  for (const bad of [null, 5, {}, { nice: -1, ioClass: 'none', ioPriority: 4 }, { nice: 20, ioClass: 'none', ioPriority: 4 }, { nice: 1.5, ioClass: 'none', ioPriority: 4 },
    { nice: 10, ioClass: 'realtime', ioPriority: 4 }, { nice: 10, ioClass: 'idle', ioPriority: 8 }, { nice: '10', ioClass: 'idle', ioPriority: 4 }]) {
    assert.throws(() => parsePoliteness(bad), /malformed politeness/, JSON.stringify(bad));
  }
});
