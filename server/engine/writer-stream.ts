import fs from 'node:fs';
import net from 'node:net';
import type { Account } from '../panels/types.js';
import { spawnAccountWorker } from './worker/spawn-worker.js';
import { setSendBuffer, socketPair } from '../native/pass-fds.js';

/**
 * What root may have written to a restore's writer before it waits for the writer to read.
 * The writer's stdin is a Unix stream socket, whose default send buffer (212,992 bytes) is
 * less than one of root's gathered writes from a remote destination (256 KiB): root waited
 * for the writer after nearly every write, and each woke the other thousands of times a
 * restore, on a machine with fewer cores than busy threads. A restore from SSH of 20,000
 * files (871 MiB) took 0.86x the wall time with this buffer (8 interleaved pairs, all faster);
 * 1 MiB and 16 MiB were both slower than 4 MiB.
 */
export const WRITER_SEND_BUFFER = 4 << 20;

export interface StreamedWriter {
  worker: ReturnType<typeof spawnAccountWorker>;
  /** Root's end of the writer's stdin (a failed write is the writer's exit, read from `worker.done`). */
  input: net.Socket;
}

/**
 * Root's end `fd` of a Unix stream socket as a writable stream, its send buffer
 * WRITER_SEND_BUFFER where it can be set (the default works too, with more waiting).
 */
export function writerInput(fd: number): net.Socket {
  try {
    setSendBuffer(fd, WRITER_SEND_BUFFER);
  } catch {
    // Left at the system's default.
  }
  const input = new net.Socket({ fd, readable: false, writable: true });
  input.on('error', () => undefined);
  return input;
}

/**
 * An account worker for `job` whose stdin is one end of a new Unix socket pair; root keeps the
 * other end, `sock` (close-on-exec, so no other child inherits it). Nothing is left open when
 * the worker cannot be started.
 */
export function spawnOnSocketPair(account: Account, job: Record<string, unknown>): { worker: ReturnType<typeof spawnAccountWorker>; sock: number } {
  const [sock, theirs] = socketPair();
  try {
    return { worker: spawnAccountWorker(account, job, { stdin: theirs }), sock };
  } catch (err) {
    fs.closeSync(sock);
    throw err;
  } finally {
    fs.closeSync(theirs);
  }
}

/** The account's restore writer for `job`, its stdin a socket whose other end is `input` (writerInput). */
export function startStreamedWriter(account: Account, job: Record<string, unknown>): StreamedWriter {
  const { worker, sock } = spawnOnSocketPair(account, job);
  return { worker, input: writerInput(sock) };
}
