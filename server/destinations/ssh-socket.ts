import type net from 'node:net';
import { bufferGrowthCollector, isBatchProcess } from '../util/batch-gc.js';

/**
 * ssh2 writes each SSH packet with a socket write of its own (a system call, a write request
 * and its callbacks): the packets written in one run of JavaScript go out together instead,
 * in one writev once it ends (process.nextTick), in the order written.
 */
export function coalesceWrites(sock: net.Socket): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  sock.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as typeof sock.write;
}

/** Socket reads go into slabs of this size, one after the other; each read gets at most READ_MAX, at least READ_MIN. */
const SLAB = 1 << 20;
const READ_MAX = 256 << 10;
const READ_MIN = 64 << 10;

/**
 * The `onread` option of a socket whose data goes to ssh2 (as 'data' events of `sock()`):
 * each read lands in the next free part of a 1 MiB slab, up to 256 KiB, instead of a new
 * 64 KiB buffer per read. No part of a slab is ever read into twice, so the views ssh2 hands on
 * (it decrypts in place, and a packet's payload is a view of the read that held it) stay what
 * they were, and a slab is freed once none is left. Reads of up to 256 KiB hold more packets
 * whole: ssh2 copies each packet cut by the end of a read into a buffer of its own (with
 * 64 KiB reads, about every other packet of 32 KiB), a copy and an allocation the collector
 * counts against external memory (which starts most of root's full collections in a restore).
 * `beforeNewSlab` is called before each new slab is made (slabCollector).
 */
export function readsIntoSlabs(sock: () => net.Socket, beforeNewSlab?: () => void): { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean } {
  let slab = Buffer.allocUnsafeSlow(SLAB);
  let used = 0;
  return {
    buffer: () => {
      if (SLAB - used < READ_MIN) {
        beforeNewSlab?.();
        slab = Buffer.allocUnsafeSlow(SLAB);
        used = 0;
      }
      return slab.subarray(used, Math.min(SLAB, used + READ_MAX));
    },
    callback: (n, buf) => {
      // `buf` is the part buffer() gave for this read: the next read goes after what it filled.
      if (buf.buffer === slab.buffer) used = buf.byteOffset - slab.byteOffset + n;
      sock().emit('data', buf.subarray(0, n));
      return true;
    },
  };
}

/**
 * Root's dead slabs are collected once they may amount to this, or to its live heap if that
 * is more (a command-line run only). V8 frees them only once external memory has grown about
 * 64 MB since its last full collection: in a restore from SSH of 20,000 files root held up to
 * that much of them beside the writer's peak (the two peaked at 286 MiB together). Root's live
 * heap there is about 24 MB, so a full collection costs it about 20 ms. A collection costs
 * about what the heap holds, so with a larger heap (the index of 200,000 files) they come no
 * more often than one per heap's worth of slabs, and V8's own comes first, as before.
 */
export const ROOT_SLAB_GROWTH = 32 << 20;

/** The ArrayBuffers made since the last full collection that start the next one, for a live heap of `heapUsed` bytes. */
export const rootSlabGrowth = (heapUsed: number): number => Math.max(ROOT_SLAB_GROWTH, heapUsed);

/**
 * What a connection calls before each new slab (readsIntoSlabs): a full collection once
 * rootSlabGrowth of ArrayBuffers were made since the last one, in a command-line run
 * (batchGcForProcess); nothing in the daemon, whose pages would wait for it and whose larger
 * heap makes each collection dearer, nor where the collector cannot be reached.
 */
export function slabCollector(): (() => void) | undefined {
  if (!isBatchProcess()) return undefined;
  return bufferGrowthCollector(rootSlabGrowth) ?? undefined;
}
