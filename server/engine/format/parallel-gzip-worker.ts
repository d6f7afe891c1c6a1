import { parentPort } from 'node:worker_threads';
import { compressMember, type WorkerJob, type WorkerResult } from './parallel-gzip.js';

/** Worker thread of ParallelGzip: compresses one block per message into one gzip member. */
const port = parentPort!;
port.on('message', (job: WorkerJob) => {
  let result: WorkerResult;
  try {
    const out = compressMember(new Uint8Array(job.buf, 0, job.len), job.level);
    result = { seq: job.seq, out: out.buffer as ArrayBuffer, buf: job.buf };
    port.postMessage(result, [result.out, job.buf]);
  } catch (err) {
    result = { seq: job.seq, error: err instanceof Error ? err.stack ?? err.message : String(err), buf: job.buf };
    port.postMessage(result, [job.buf]);
  }
});
