import { createHash, randomFillSync } from 'node:crypto';

/**
 * ssh2 fills the 4-19 bytes of random padding of every packet it sends with a randomFillSync
 * call of its own: about 7 µs each, half a second of the event loop for a 20,000-file backup
 * (~70,000 packets). The padding is taken here from a pool filled by one randomFillSync per
 * 64 KiB instead: the same generator's bytes, each used once, for the AES-GCM cipher ssh2
 * picks where the CPU has AES instructions (the others keep ssh2's own call).
 */
const POOL_BYTES = 64 << 10;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let used = POOL_BYTES;

/** Copies `len` (≤ 64 KiB) bytes of the pool, never handed out before, into `into` at `offset`. */
export function fillPadding(into: Buffer, offset: number, len: number): void {
  if (used + len > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  pool.copy(into, offset, used, used + len);
  used += len;
}

/**
 * SHA-256 of the body of ssh2 1.x's AESGCMCipherBinding.allocPacket (lib/protocol/crypto.js),
 * whitespace removed, whose behaviour the replacement keeps: the packet layout of RFC 4253
 * (length, padding length, payload, 4-19 bytes of padding to a 16-byte boundary) with the
 * 16-byte tag after it. A method of any other source is left to ssh2.
 */
const EXPECTED_BODY_SHA256 = '2e1504fd1be272444f24696f8ac628a4861af5fe2d9a1d60c4bdb61c078dee2f';

function gcmAllocPacket(payloadLen: number): Buffer {
  let pktLen = 4 + 1 + payloadLen;
  let padLen = 16 - ((pktLen - 4) & 15);
  if (padLen < 4) padLen += 16;
  pktLen += padLen;
  // 16 bytes more for the authentication tag, written by the encryption in place.
  const packet = Buffer.allocUnsafe(pktLen + 16);
  packet.writeUInt32BE(pktLen - 4, 0);
  packet[4] = padLen;
  fillPadding(packet, 5 + payloadLen, padLen);
  return packet;
}

const PATCHED = Symbol('tidemark.pooledPadding');

interface CipherLike { allocPacket(payloadLen: number): Buffer }

/**
 * Makes the class of `cipher` (an ssh2 outbound cipher) take its padding from the pool when
 * it is ssh2's AES-GCM binding with the expected allocPacket; true when that class uses the
 * pool (now or already). Every instance of the class shares it, rekeyed ones included.
 */
export function poolPadding(cipher: unknown): boolean {
  if (!cipher || typeof cipher !== 'object') return false;
  const proto = Object.getPrototypeOf(cipher) as (CipherLike & { [PATCHED]?: boolean; constructor: { name: string } }) | null;
  if (!proto || typeof proto.allocPacket !== 'function') return false;
  if (proto[PATCHED]) return true;
  if (proto.constructor.name !== 'AESGCMCipherBinding') return false;
  const src = proto.allocPacket.toString();
  const body = src.slice(src.indexOf('{') + 1, src.lastIndexOf('}')).replace(/\s+/g, '');
  if (createHash('sha256').update(body).digest('hex') !== EXPECTED_BODY_SHA256) return false;
  proto.allocPacket = gcmAllocPacket;
  proto[PATCHED] = true;
  return true;
}

/** Pools the padding of an ssh2 client's cipher (see poolPadding), once its keys are in use. */
export function poolClientPadding(client: unknown): boolean {
  return poolPadding((client as { _protocol?: { _cipher?: unknown } })._protocol?._cipher);
}
