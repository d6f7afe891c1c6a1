import fs from 'node:fs';
import { nativeAddon } from './addon.js';

interface Addon { schedBatch(tid: number): number }

/**
 * Puts every thread of this process but the main one (libuv's pool, V8's helpers) under
 * SCHED_BATCH (native/sched-batch.c: a woken pool thread then no longer takes the processor from
 * the event loop that woke it). The pool is started first, so its threads are among them;
 * threads started later keep the default policy. Returns how many threads were changed (0
 * without the addon or /proc).
 */
export function batchHelperThreads(): number {
  const addon = nativeAddon<Addon>('schedBatch');
  if (!addon) return 0;
  // libuv starts all of its pool's threads inside the first call that queues work.
  fs.access('/', () => undefined);
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  let changed = 0;
  for (const t of tids) {
    const tid = Number(t);
    if (tid !== process.pid && addon.schedBatch(tid) === 0) changed++;
  }
  return changed;
}
