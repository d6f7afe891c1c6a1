import util from 'node:util';
import type { BatchWriter } from '../native/write-file.js';

interface Waiting {
  path: string;
  parts: Buffer[];
  resolve(hash: Buffer): void;
  reject(err: Error): void;
}

/** A batch goes out at this many files or bytes, or when the event loop has nothing else to run. */
const BATCH_FILES = 32;
const BATCH_BYTES = 1 << 20;

/**
 * Gathers the small files a backup writes and hands them to the pool in batches. One pool job
 * per file woke a pool thread per file, and on a loaded machine the woken thread took the
 * event loop's processor from it; a batch wakes one thread for up to BATCH_FILES files.
 * The files of one batch are written in the order they were added; each file's promise
 * settles on its own (one failing file does not fail the others).
 */
export class SmallFileBatch {
  private waiting: Waiting[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(private readonly write: BatchWriter, private readonly mode: number) {}

  /** Creates or truncates `path` (never through a symlink: ELOOP) with `parts`; resolves with their SHA-256. */
  add(path: string, parts: Buffer[]): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.push({ path, parts, resolve, reject });
      for (const p of parts) this.bytes += p.length;
      if (this.waiting.length >= BATCH_FILES || this.bytes >= BATCH_BYTES) {
        this.send();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.send();
        });
      }
    });
  }

  private send(): void {
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    this.bytes = 0;
    const parts: Buffer[] = [];
    const counts: number[] = [];
    for (const w of batch) {
      for (const p of w.parts) parts.push(p);
      counts.push(w.parts.length);
    }
    let written: Promise<(Buffer | number)[]>;
    try {
      written = this.write(batch.map((w) => w.path), parts, counts, this.mode);
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
      return;
    }
    written.then(
      (results) => batch.forEach((w, i) => {
        const r = results[i];
        if (Buffer.isBuffer(r)) w.resolve(r);
        else w.reject(errnoError(typeof r === 'number' ? r : 5, w.path));
      }),
      (err: Error) => { for (const w of batch) w.reject(err); },
    );
  }
}

/** An error shaped as Node's own fs errors are (code, errno, syscall, path). */
function errnoError(errno: number, path: string): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(-errno);
  const err: NodeJS.ErrnoException = new Error(`${code}: ${util.getSystemErrorMap().get(-errno)?.[1] ?? 'error'}, open '${path}'`);
  err.code = code;
  err.errno = -errno;
  err.syscall = 'open';
  err.path = path;
  return err;
}
