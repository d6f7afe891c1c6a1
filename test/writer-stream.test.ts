// Root's stream to a restore's writer (engine/writer-stream.ts): a socket whose send buffer
// lets root write ahead of the writer by a few MiB instead of waiting after every write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { setSendBuffer, socketPair } from '../server/native/pass-fds.js';
import { WRITER_SEND_BUFFER, writerInput } from '../server/engine/writer-stream.js';

/** Resolves once `s` has handed everything written to the kernel, or after `ms` with what it still holds. */
function handedOver(s: net.Socket, ms: number): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const look = (): void => {
      if (s.writableLength === 0 || Date.now() - started > ms) resolve(s.writableLength);
      else setTimeout(look, 10);
    };
    look();
  });
}

test('setSendBuffer: the kernel takes the size asked (it counts twice that), also beyond the system limit as root', () => {
  const [a, b] = socketPair();
  try {
    const limit = Number(fs.readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const asked = Math.max(WRITER_SEND_BUFFER, limit * 2);
    assert.equal(setSendBuffer(a, asked), asked * 2);
  } finally {
    fs.closeSync(a);
    fs.closeSync(b);
  }
});

test('setSendBuffer refuses what is not a socket (a clear errno, nothing changed)', () => {
  const fd = fs.openSync('/dev/null', 'w');
  try {
    assert.throws(() => setSendBuffer(fd, 1 << 20), (err: NodeJS.ErrnoException) => err.code === 'ENOTSOCK');
    assert.throws(() => setSendBuffer(-1, 1 << 20), TypeError);
    assert.throws(() => setSendBuffer(fd, 0), TypeError);
  } finally {
    fs.closeSync(fd);
  }
});

test('regression: root\'s stream to a restore\'s writer kept the default 208 KiB send buffer, so root waited for the writer after nearly every write', async () => {
  const [ours, theirs] = socketPair();
  const input = writerInput(ours);
  try {
    // 3 MiB, while the writer's end reads nothing: all of it is with the kernel.
    const piece = Buffer.alloc(256 << 10, 7);
    for (let i = 0; i < 12; i++) input.write(piece);
    assert.equal(await handedOver(input, 2000), 0, 'root still holds bytes the kernel did not take');
  } finally {
    input.destroy();
    fs.closeSync(theirs);
  }
});

test('writerInput: what is written arrives whole and in order, and end() is the end of the stream', async () => {
  const [ours, theirs] = socketPair();
  const input = writerInput(ours);
  const reader = new net.Socket({ fd: theirs, readable: true, writable: false });
  const got: Buffer[] = [];
  reader.on('data', (c: Buffer) => got.push(c));
  const ended = new Promise<void>((resolve) => reader.on('end', () => resolve()));
  const sent: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const b = Buffer.alloc(100_000 + i, i);
    sent.push(b);
    if (!input.write(b)) await new Promise((r) => input.once('drain', r));
  }
  input.end();
  await ended;
  reader.destroy();
  assert.ok(Buffer.concat(got).equals(Buffer.concat(sent)));
});

test('writerInput: a reader that went away is not an unhandled error (the writer\'s exit says why)', async () => {
  const [ours, theirs] = socketPair();
  const input = writerInput(ours);
  fs.closeSync(theirs);
  const failed = new Promise<NodeJS.ErrnoException>((resolve) => input.once('error', resolve));
  for (let i = 0; i < 40; i++) input.write(Buffer.alloc(256 << 10));
  const err = await failed;
  assert.match(String(err.code), /EPIPE|ECONNRESET/);
  input.destroy();
});
