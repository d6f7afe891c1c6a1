import fs from 'node:fs';

/** Reads go into the free end of a slab of this size; a new slab when less than MIN_READ is left. */
const SLAB = 4 << 20;
const MIN_READ = 256 << 10;

/**
 * The bytes of `fd` (a pipe or socket) as they arrive, each read a view into a large slab
 * that the next reads go on filling. fs.createReadStream allocates its highWaterMark for each
 * read and copies a short read (all of them, on a pipe) into a buffer of its size: a second
 * copy of every byte of a restore, and a fresh allocation per read. A consumer may keep the
 * views: a slab is never written twice.
 */
export async function* slabReads(fd: number): AsyncGenerator<Buffer> {
  let slab = Buffer.allocUnsafeSlow(SLAB);
  let used = 0;
  for (;;) {
    if (SLAB - used < MIN_READ) { slab = Buffer.allocUnsafeSlow(SLAB); used = 0; }
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, slab, used, SLAB - used, null, (err, bytes) => (err ? reject(err) : resolve(bytes)));
    });
    if (n === 0) return;
    yield slab.subarray(used, used + n);
    used += n;
  }
}
