import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * V8's incremental marking, off while batch work runs in a process that otherwise keeps it.
 *
 * A backup's root side keeps a small live heap (10-20 MB) while hundreds of MB of Buffers
 * pass through it; just above V8's activation threshold, incremental marking starts again
 * right after every full GC. Command-line runs turn it off for their whole life
 * (cli/gc-policy.ts). The daemon runs queued backups in-process and keeps V8's default for
 * its pages, so it turns marking off only while at least one backup runs: a first backup of
 * 20,000 files then made 1 full GC instead of about 10. V8 reads the flag each time it would
 * start marking, so the change takes effect at once; a marking already under way finishes.
 */
let processWide = false;
let holders = 0;

/** The whole process runs without incremental marking (a command-line run): holds change nothing. */
export function batchGcForProcess(): void {
  processWide = true;
  v8.setFlagsFromString('--no-incremental-marking');
}

/** Whether this process is a batch run (batchGcForProcess was called). */
export function isBatchProcess(): boolean {
  return processWide;
}

/** Incremental marking off until the returned function is called (counted: the last release turns it on again). */
export function holdBatchGc(): () => void {
  if (processWide) return () => {};
  if (holders++ === 0) v8.setFlagsFromString('--no-incremental-marking');
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0 && !processWide) v8.setFlagsFromString('--incremental-marking');
  };
}

/**
 * A full collection whenever the memory of ArrayBuffers has grown by `growth` bytes since the
 * last one; null where the collector cannot be reached. For a process of its own with a small
 * heap through which Buffers pass in bulk: the restore writer fed by a remote destination's
 * content. Call the returned function where a new large Buffer is about to be made.
 *
 * Why: slabs of that writer's stream still viewed by files being written outlive two young
 * collections: they reach the old generation, where V8 frees them only once external memory
 * has grown about 64 MB since its last full collection (72 MiB of the writer's 118-131 MiB
 * peak in a restore from SSH of 20,000 files were ArrayBuffers). Its live heap is about 5 MB,
 * so a full collection costs a few milliseconds. In root, whose heap holds the index, one every
 * 24 MiB of ArrayBuffers cost 1.5-2 s of CPU in the same restore, when the index was read
 * whole: `growth` may depend on the live heap (a function of heapUsed), so that a process whose
 * heap holds more collects less often (a full collection costs about what the heap holds).
 */
export function bufferGrowthCollector(growth: number | ((heapUsed: number) => number)): (() => void) | null {
  let collect: () => void;
  try {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
  if (typeof collect !== 'function') return null;
  /** ArrayBuffers after the last full collection (or the lowest seen since). */
  let base = process.memoryUsage().arrayBuffers;
  return () => {
    const usage = process.memoryUsage();
    const now = usage.arrayBuffers;
    if (now < base) base = now;
    if (now - base < (typeof growth === 'number' ? growth : growth(usage.heapUsed))) return;
    collect();
    base = process.memoryUsage().arrayBuffers;
  };
}

/**
 * A batch process (a command-line run, batchGcForProcess) that restores by descriptor (a local
 * destination: the writer's pool reads, checks and writes the bytes, restore-descriptors.ts)
 * runs on without V8's optimizing compiler (interpreter and baseline code only), as its
 * writer does (spawn-worker.ts). Root's JavaScript there is a few short loops per index entry
 * (read, encode, send); in a restore into a new folder of 20,000 files TurboFan's threads
 * compiled for about 0.3 s of CPU and the optimized code did not win it back. Root and writer
 * together (/usr/bin/time, interleaved pairs against the build without it): set here, 80.4 ->
 * 77.6 CPU-s over 14 pairs (incremental and archive, as root and as the account), lower in 10;
 * set for every restore at the CLI's start, 68.3 -> 64.0 over 13 pairs. Not from a remote
 * destination, where root parses every byte (the SSH protocol, tar). Not in the daemon,
 * whose pages and backups keep it. V8 reads the flag each time it would optimize a function,
 * so it takes effect at once (what is optimized already stays so). True when it was set.
 */
export function noOptimizingCompilerForDescriptorRestore(): boolean {
  if (!processWide) return false;
  v8.setFlagsFromString('--max-opt=1');
  return true;
}
