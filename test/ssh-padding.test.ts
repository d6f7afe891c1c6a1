import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fillPadding, poolPadding } from '../server/destinations/ssh-padding.js';

/**
 * The SSH destination takes ssh2's packet padding from a pool of random bytes instead of one
 * randomFillSync per packet (ssh-padding.ts): the installed ssh2's AES-GCM cipher must be the
 * one the replacement was written for, and packets must keep their layout.
 */
const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const crypto2 = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean; createCipher: (cfg: unknown) => { allocPacket(n: number): Buffer } };

function gcmCipher(): { allocPacket(n: number): Buffer } {
  return crypto2.createCipher({
    outbound: {
      onWrite: () => undefined, seqno: 0,
      cipherInfo: { sslName: 'aes-128-gcm', isGCM: true, keyLen: 16, ivLen: 12, authLen: 16, blockLen: 16, discardLen: 0 },
      cipherKey: Buffer.alloc(16, 1), cipherIV: Buffer.alloc(12, 2), macInfo: {}, macKey: null,
    },
  });
}

test('pooled padding: the installed ssh2 AES-GCM cipher is recognised, and packets keep the layout of ssh2\'s own', { skip: !crypto2.bindingAvailable && 'ssh2 built without its binding' }, () => {
  const cipher = gcmCipher();
  const original = Object.getPrototypeOf(cipher).allocPacket as (n: number) => Buffer;
  const theirs = new Map<number, Buffer>();
  for (const n of [0, 1, 10, 11, 12, 26, 27, 100, 32768]) theirs.set(n, original.call(cipher, n));
  assert.equal(poolPadding(cipher), true, 'ssh2 changed its AES-GCM allocPacket: the pool is no longer used');
  assert.equal(poolPadding(gcmCipher()), true, 'a second instance shares the patched class');
  for (const [n, t] of theirs) {
    const ours = cipher.allocPacket(n);
    assert.equal(ours.length, t.length, `length for a payload of ${n}`);
    assert.equal(ours.readUInt32BE(0), t.readUInt32BE(0), `packet length field for ${n}`);
    assert.equal(ours[4], t[4], `padding length for ${n}`);
    assert.ok(ours[4]! >= 4 && (ours.length - 16 - 4) % 16 === 0, `padding of ${n}: at least 4 and to the block`);
  }
});

test('pooled padding: other ciphers and objects are left alone', () => {
  assert.equal(poolPadding(null), false);
  assert.equal(poolPadding({ allocPacket: () => Buffer.alloc(0) }), false);
  class AESGCMCipherBinding { allocPacket(n: number): Buffer { return Buffer.alloc(n); } }
  const fake = new AESGCMCipherBinding();
  assert.equal(poolPadding(fake), false, 'an allocPacket of another shape is not replaced');
  assert.equal(fake.allocPacket(3).length, 3);
});

test('pooled padding: bytes are never handed out twice, across refills of the pool', () => {
  const seen = new Set<string>();
  const out = Buffer.alloc(19);
  // 20,000 x 19 bytes: several 64 KiB pools; a repeated 19-byte run of random bytes would mean reuse.
  for (let i = 0; i < 20000; i++) {
    fillPadding(out, 0, 19);
    const k = out.toString('hex');
    assert.ok(!seen.has(k), 'padding bytes repeated');
    seen.add(k);
  }
  const b = Buffer.alloc(40);
  fillPadding(b, 30, 10);
  assert.ok(b.subarray(0, 30).equals(Buffer.alloc(30)), 'nothing written before the offset');
});
