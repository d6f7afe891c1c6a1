import fs from 'node:fs';
import { recvWithFds } from '../../native/pass-fds.js';

/** Reads go into the free end of a slab of this size; a new slab when less than MIN_READ is left. */
const SLAB = 4 << 20;
const MIN_READ = 256 << 10;

/**
 * Slabs below glibc's mmap threshold (128 KiB, fixed by mallocPolicy) come from malloc's heap,
 * whose freed memory is used again; a slab of 4 MiB is a mapping of its own, every page of it
 * faulted in when first written and unmapped when the slab is collected.
 */
export const SMALL_SLAB = { slab: 112 << 10, minRead: 16 << 10 };

/**
 * The bytes of `fd` (a pipe or socket) as they arrive, each read a view into a large slab
 * that the next reads go on filling. fs.createReadStream allocates its highWaterMark for each
 * read and copies a short read (all of them, on a pipe) into a buffer of its size: a second
 * copy of every byte of a restore, and a fresh allocation per read. A consumer may keep the
 * views: a slab is never written twice. `beforeSlab` is called before each new slab is made
 * (bufferGrowthCollector: the dead ones are freed first). `sizes`: SMALL_SLAB, or the default
 * 4 MiB slabs read at least 256 KiB at a time.
 */
export async function* slabReads(fd: number, beforeSlab?: () => void, sizes = { slab: SLAB, minRead: MIN_READ }): AsyncGenerator<Buffer> {
  const size = sizes.slab;
  let slab = Buffer.allocUnsafeSlow(size);
  let used = 0;
  for (;;) {
    if (size - used < sizes.minRead) { beforeSlab?.(); slab = Buffer.allocUnsafeSlow(size); used = 0; }
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, slab, used, size - used, null, (err, bytes) => (err ? reject(err) : resolve(bytes)));
    });
    if (n === 0) return;
    yield slab.subarray(used, used + n);
    used += n;
  }
}

/**
 * slabReads for a Unix socket that also carries descriptors (native/pass-fds.c): those that
 * come with a read are appended to `received` before its bytes are handed on, so a record is
 * never seen before the descriptor sent with it.
 */
export async function* socketSlabReads(fd: number, received: number[]): AsyncGenerator<Buffer> {
  let slab = Buffer.allocUnsafeSlow(SLAB);
  let used = 0;
  for (;;) {
    if (SLAB - used < MIN_READ) { slab = Buffer.allocUnsafeSlow(SLAB); used = 0; }
    const [n, fds] = await recvWithFds(fd, slab, used, SLAB - used);
    for (const d of fds) received.push(d);
    if (n === 0) return;
    yield slab.subarray(used, used + n);
    used += n;
  }
}
