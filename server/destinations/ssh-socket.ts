import type net from 'node:net';

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
 */
export function readsIntoSlabs(sock: () => net.Socket): { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean } {
  let slab = Buffer.allocUnsafeSlow(SLAB);
  let used = 0;
  return {
    buffer: () => {
      if (SLAB - used < READ_MIN) { slab = Buffer.allocUnsafeSlow(SLAB); used = 0; }
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
