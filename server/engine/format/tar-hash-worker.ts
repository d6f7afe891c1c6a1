// A worker thread of root (never the account's): the per-file hashes of the tar stream, and
// optionally the hash of the whole stream, computed beside the main thread (see tar-hash-thread.ts).
import crypto from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { TarContentHashes } from './tar-hasher.js';

const files = new TarContentHashes();
const whole = (workerData as { whole: boolean }).whole ? crypto.createHash('sha256') : null;

parentPort!.on('message', (m: ArrayBuffer | null) => {
  if (m === null) {
    parentPort!.postMessage({ ack: 0, hashes: files.takeAll(), whole: whole ? whole.digest('hex') : null, done: true });
    return;
  }
  const chunk = Buffer.from(m);
  files.update(chunk);
  whole?.update(chunk);
  parentPort!.postMessage({ ack: chunk.length, hashes: files.takeAll() });
});
