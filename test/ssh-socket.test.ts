import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import crypto from 'node:crypto';
import { coalesceWrites, readsIntoSlabs, ROOT_SLAB_GROWTH, rootSlabGrowth } from '../server/destinations/ssh-socket.js';

/**
 * The SSH destination's socket sends the packets ssh2 writes in one run of JavaScript in one
 * writev: every byte arrives, in the order written, whether the writes come in one run or in
 * several, and a write's callback and end() still work.
 */
async function pair(): Promise<{ client: net.Socket; received: () => Promise<Buffer>; close: () => void }> {
  const chunks: Buffer[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => { ended = resolve; });
  const server = net.createServer((s) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => { s.end(); ended(); });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  return {
    client,
    received: async () => { await done; return Buffer.concat(chunks); },
    close: () => { client.destroy(); server.close(); },
  };
}

test('writes of one run go out together, in order; later runs too; end() sends what is left', async () => {
  const { client, received, close } = await pair();
  try {
    const writes: number[] = [];
    const origWritev = client._writev!.bind(client);
    client._writev = (chunks, cb) => { writes.push(chunks.length); origWritev(chunks, cb); };
    coalesceWrites(client);
    const expected: Buffer[] = [];
    const put = (i: number, size: number): void => {
      const b = Buffer.alloc(size, i & 0xff);
      b.writeUInt32BE(i, 0);
      expected.push(b);
      client.write(b);
    };
    for (let i = 0; i < 50; i++) put(i, 100 + i * 37);
    await new Promise((r) => setImmediate(r));
    for (let i = 50; i < 60; i++) put(i, 70000);
    let called = false;
    await new Promise<void>((resolve) => { client.write(Buffer.from('cb'), () => { called = true; resolve(); }); });
    expected.push(Buffer.from('cb'));
    assert.ok(called);
    put(60, 5);
    client.end();
    assert.deepEqual(await received(), Buffer.concat(expected));
    // The 50 writes of the first run went out in one writev, not in 50 writes.
    assert.ok(writes.length > 0 && writes[0]! >= 50, `writev sizes: ${writes.join(',')}`);
  } finally {
    close();
  }
});

test('readsIntoSlabs: every byte arrives as data events, in order; no part of memory is read into twice, so every view handed on keeps its bytes', async () => {
  const sent = crypto.randomBytes(9 << 20);
  const server = net.createServer((s) => {
    // Writes of odd sizes, some waiting for the reader: reads of every length.
    let at = 0;
    const go = (): void => {
      while (at < sent.length) {
        const n = Math.min(sent.length - at, 1000 + ((at * 7) % 200_000));
        const more = s.write(sent.subarray(at, at + n));
        at += n;
        if (!more) { s.once('drain', go); return; }
      }
      s.end();
    };
    go();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const views: Buffer[] = [];
  const copies: Buffer[] = [];
  const client: net.Socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', onread: readsIntoSlabs(() => client) });
  client.on('data', (d: Buffer) => { views.push(d); copies.push(Buffer.from(d)); });
  await once(client, 'end');
  client.destroy();
  server.close();
  assert.ok(Buffer.concat(views).equals(sent), 'the views, read at the end, hold what was sent');
  assert.ok(Buffer.concat(copies).equals(sent));
  // No two reads share memory.
  const byMemory = new Map<ArrayBufferLike, [number, number][]>();
  for (const v of views) {
    const list = byMemory.get(v.buffer) ?? [];
    for (const [a, b] of list) assert.ok(v.byteOffset >= b || v.byteOffset + v.length <= a, 'reads overlap');
    list.push([v.byteOffset, v.byteOffset + v.length]);
    byMemory.set(v.buffer, list);
  }
  assert.ok(views.length > 1 && byMemory.size < views.length, `${views.length} reads in ${byMemory.size} slabs`);
  assert.ok(views.every((v) => v.length <= 256 << 10));
});

test('readsIntoSlabs: beforeNewSlab is called before each new slab (where root collects its dead slabs)', async () => {
  const sent = crypto.randomBytes(6 << 20);
  const server = net.createServer((s) => { s.end(sent); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let hooks = 0;
  const views: Buffer[] = [];
  const client: net.Socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', onread: readsIntoSlabs(() => client, () => { hooks++; }) });
  client.on('data', (d: Buffer) => { views.push(d); });
  await once(client, 'end');
  client.destroy();
  server.close();
  assert.ok(Buffer.concat(views).equals(sent));
  const slabs = new Set(views.map((v) => v.buffer)).size;
  // The first slab is made with the reader; each later one after a call (and perhaps one more for the read that met the end).
  assert.ok(slabs >= 6, `slabs: ${slabs}`);
  assert.ok(hooks >= slabs - 1 && hooks <= slabs, `${hooks} calls for ${slabs} slabs`);
});

test('slabCollector: root collects its dead slabs in a command-line run only, at most once per heap\'s worth of slabs', () => {
  assert.equal(rootSlabGrowth(1 << 20), ROOT_SLAB_GROWTH);
  assert.equal(rootSlabGrowth(200 << 20), 200 << 20, 'a heap that holds a large index collects less often');
  const mod = new URL('../server/destinations/ssh-socket.js', import.meta.url).href;
  const gc = new URL('../server/util/batch-gc.js', import.meta.url).href;
  const probe = (batch: boolean): string => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `const b = await import(${JSON.stringify(gc)}); if (${batch}) b.batchGcForProcess(); const s = await import(${JSON.stringify(mod)}); console.log(typeof s.slabCollector());`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  assert.equal(probe(false), 'undefined', 'the daemon (no batch run) keeps V8\'s own timing');
  assert.equal(probe(true), 'function');
});
