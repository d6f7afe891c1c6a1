import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Awaitable writes with backpressure that fail fast once the stream has errored (full disk, lost link). */
export class StreamWriter {
  private error: Error | null = null;
  bytes = 0;

  constructor(readonly stream: Writable) {
    stream.on('error', (err: Error) => { this.error ??= err; });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.error) throw this.error;
    this.bytes += chunk.length;
    if (this.stream.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.stream.off('drain', onDrain);
        this.stream.off('error', onError);
        this.stream.off('close', onClose);
        if (err) reject(err); else resolve();
      };
      const onDrain = (): void => done();
      const onError = (err: Error): void => done(err);
      const onClose = (): void => done(this.error ?? new Error('stream closed before it was finished'));
      this.stream.on('drain', onDrain);
      this.stream.on('error', onError);
      this.stream.on('close', onClose);
    });
  }

  async end(): Promise<void> {
    if (this.error) throw this.error;
    this.stream.end();
    await finished(this.stream);
    if (this.error) throw this.error;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Gathers many small records into large writes (a zlib stream costs per write, not per byte). */
export class BatchedWriter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly out: StreamWriter, private readonly batch = 256 * 1024) {}

  /** Returns a promise only when a batch is sent on: the caller waits for that, and for nothing else. */
  write(chunk: Buffer): Promise<void> | undefined {
    this.parts.push(chunk);
    this.size += chunk.length;
    return this.size >= this.batch ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    if (this.size === 0) return;
    const data = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    await this.out.write(data);
  }

  async end(): Promise<void> {
    await this.flush();
    await this.out.end();
  }
}
