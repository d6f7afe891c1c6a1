import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fits, tasksToStart } from '../server/queue/plan.js';

type T = { id: number; type: 'backup' | 'restore' | 'download'; account: string | null; destinationId: number | null; pid: number };
const task = (id: number, type: T['type'], account: string, destinationId: number, pid = 1): T => ({ id, type, account, destinationId, pid });
const limits = { maxBackups: 2, maxTasksPerDestination: 3 };

test('one task per account, whatever its type', () => {
  assert.equal(fits(task(2, 'restore', 'a', 2), [task(1, 'backup', 'a', 1)], limits), false);
  assert.equal(fits(task(2, 'restore', 'b', 2), [task(1, 'backup', 'a', 1)], limits), true);
});

test('the limit of concurrent backups leaves restores free to run', () => {
  const running = [task(1, 'backup', 'a', 1), task(2, 'backup', 'b', 2)];
  assert.equal(fits(task(3, 'backup', 'c', 3), running, limits), false);
  assert.equal(fits(task(4, 'restore', 'c', 3), running, limits), true);
});

test('the limit per destination counts every type of task', () => {
  const running = [task(1, 'backup', 'a', 1), task(2, 'restore', 'b', 1), task(3, 'restore', 'c', 1)];
  assert.equal(fits(task(4, 'restore', 'd', 1), running, limits), false);
  assert.equal(fits(task(5, 'restore', 'd', 2), running, limits), true);
});

test('a task that waits keeps its place: a later one never takes the slot it needs', () => {
  // Queue order: 10 (another process), 11 and 12 (ours). One backup slot is free.
  const queued = [task(10, 'backup', 'x', 1, 2), task(11, 'backup', 'y', 1), task(12, 'restore', 'z', 2)];
  const started = tasksToStart(queued, [task(1, 'backup', 'a', 3)], limits, (t) => t.pid === 1);
  // 10 takes the last backup slot (its own process starts it); 11 waits; the restore runs.
  assert.deepEqual(started.map((t) => t.id), [12]);
});

test('a task blocked by its busy account does not hold up the ones behind it', () => {
  const queued = [task(10, 'backup', 'a', 1), task(11, 'backup', 'b', 1)];
  assert.deepEqual(tasksToStart(queued, [task(1, 'restore', 'a', 2)], limits, () => true).map((t) => t.id), [11]);
});

test('never more than the limits, however many wait', () => {
  const queued = Array.from({ length: 20 }, (_, i) => task(100 + i, 'backup', `acct${i}`, i % 2));
  const started = tasksToStart(queued, [], { maxBackups: 5, maxTasksPerDestination: 2 }, () => true);
  assert.deepEqual(started.map((t) => t.id), [100, 101, 102, 103]);
});
