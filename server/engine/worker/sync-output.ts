import fs from 'node:fs';

/**
 * Buffered, blocking writes to a pipe the worker inherited. Blocking is the
 * backpressure: when the root process is slower, the worker waits in write(2).
 */
export class SyncOutput {
  private readonly buf: Buffer;
  private used = 0;

  /**
   * `flushAt`: once this much is buffered, the next write() (a record, not content read in
   * through reserve) sends it, so that the reader works on records while more are gathered
   * instead of receiving them all when the buffer is full or the walk ends.
   */
  constructor(private readonly fd: number, size = 4 << 20, private readonly flushAt = size) {
    this.buf = Buffer.allocUnsafe(size);
  }

  write(data: Buffer): void {
    if (data.length > this.buf.length - this.used) this.flush();
    if (data.length > this.buf.length) {
      this.writeAll(data);
      return;
    }
    data.copy(this.buf, this.used);
    this.used += data.length;
    if (this.used >= this.flushAt) this.flush();
  }

  /** Room at the end of the buffer, for reading file content straight into it. */
  reserve(min: number): { buffer: Buffer; offset: number; length: number } {
    if (this.buf.length - this.used < min) this.flush();
    return { buffer: this.buf, offset: this.used, length: this.buf.length - this.used };
  }

  commit(n: number): void {
    this.used += n;
  }

  flush(): void {
    if (this.used === 0) return;
    this.writeAll(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  private writeAll(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      try {
        off += fs.writeSync(this.fd, data, off, data.length - off);
      } catch (err) {
        // A pipe may have been left non-blocking by whoever created it.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
          continue;
        }
        throw err;
      }
    }
  }
}
