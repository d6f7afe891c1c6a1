// spawnPolitely: the child starts with the niceness and I/O priority that nice(1) and ionice(1)
// gave it, without those processes, and the spawning thread keeps its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { FULL_SPEED, ioPriorityValue, politely, spawnPolitely, type Politeness } from '../server/util/politeness.js';
import { nativeAddon } from '../server/native/addon.js';

const addon = nativeAddon<{ ioPriority(value?: number): number }>('ioPriority');

/** What the child sees of itself: its niceness, `ionice` of itself, and the command it runs. */
async function childSees(p: Politeness): Promise<{ nice: string; io: string; comm: string }> {
  const child = spawnPolitely(p, '/bin/sh', ['-c', 'echo "$(ps -o ni= -p $$)|$(ionice -p $$)|$(cat /proc/$$/comm)"'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  await new Promise((resolve) => child.on('close', resolve));
  const [nice, io, comm] = out.trim().split('|');
  return { nice: nice!.trim(), io: io!.trim(), comm: comm!.trim() };
}

test('spawnPolitely: the child has the configured niceness and I/O class; the calling thread keeps its own', async () => {
  const niceBefore = os.getPriority(0);
  const ioBefore = addon?.ioPriority();
  assert.deepEqual(await childSees({ nice: 10, ioClass: 'best-effort', ioPriority: 7 }), { nice: String(niceBefore + 10), io: 'best-effort: prio 7', comm: 'sh' });
  assert.deepEqual(await childSees({ nice: 15, ioClass: 'idle', ioPriority: 4 }), { nice: String(niceBefore + 15), io: 'idle', comm: 'sh' });
  assert.equal((await childSees({ nice: 3, ioClass: 'none', ioPriority: 4 })).nice, String(niceBefore + 3));
  const plain = await childSees(FULL_SPEED);
  assert.equal(plain.nice, String(niceBefore));
  assert.equal(os.getPriority(0), niceBefore, 'niceness of the calling thread restored');
  if (addon) assert.equal(addon.ioPriority(), ioBefore, 'I/O priority of the calling thread restored');
});

test('spawnPolitely as root with the addon starts no nice or ionice process', { skip: process.getuid?.() !== 0 || !addon }, async () => {
  // The child is the command itself: its parent is this process.
  const child = spawnPolitely({ nice: 10, ioClass: 'best-effort', ioPriority: 7 }, '/bin/sh', ['-c', 'cat /proc/$PPID/comm; echo $PPID'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  await new Promise((resolve) => child.on('close', resolve));
  assert.equal(out.trim().split('\n')[1], String(process.pid));
});

test('ioPriorityValue is what ionice sets; politely() is the command line used without root or the addon', () => {
  assert.equal(ioPriorityValue({ nice: 0, ioClass: 'idle', ioPriority: 4 }), 3 << 13);
  assert.equal(ioPriorityValue({ nice: 0, ioClass: 'best-effort', ioPriority: 7 }), (2 << 13) | 7);
  assert.equal(ioPriorityValue(FULL_SPEED), null);
  const line = politely({ nice: 10, ioClass: 'best-effort', ioPriority: 7 }, '/bin/true', []);
  assert.deepEqual([line.command, ...line.args], ['/usr/bin/ionice', '-c', '2', '-n', '7', '/usr/bin/nice', '-n', '10', '/bin/true']);
  const r = spawnSync(line.command, line.args);
  assert.equal(r.status, 0);
});
